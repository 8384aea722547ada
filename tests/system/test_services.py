"""The services that ./ci/test starts (tests/services.py) answer, on each interpreter,
through the clients the tests use: redis-py and psycopg (pure Python over libpq) with
psycopg_pool."""

import psycopg_pool
import redis

from tests.servers import HANG_S
from tests.services import database_url, redis_url


def test_redis_answers_ping() -> None:
    client = redis.Redis.from_url(redis_url(), socket_timeout=HANG_S)
    try:
        assert client.ping() is True
    finally:
        client.close()


def test_postgresql_answers_select_1_through_a_connection_pool() -> None:
    with (
        psycopg_pool.ConnectionPool(database_url(), min_size=1, timeout=HANG_S) as pool,
        pool.connection() as conn,
    ):
        assert conn.execute("SELECT 1").fetchone() == (1,)
