"""What the db bench apps share, so that mummy (db_app.py) and granian (db_wsgi_app.py)
run the same query the same way: TechEmpower's single query test, one
`SELECT id, randomnumber FROM world WHERE id = $1` of a random row per request, answered
as `{"id": N, "randomNumber": M}`.

The database is $DATABASE_URL (bench/drivers/db.py starts it and fills `world`). The
pool holds one connection per worker thread, all opened before the server starts; they
are in autocommit, so that a request is the one query (no BEGIN and COMMIT around it),
and psycopg prepares the statement on each connection after its fifth run (its default
prepare_threshold).
"""

import json
import os
import random

from psycopg_pool import ConnectionPool

ROWS = 10_000
QUERY = "SELECT id, randomnumber FROM world WHERE id = %s"
JSON = "application/json"


def open_pool(size: int) -> ConnectionPool:
    """`size` connections to $DATABASE_URL, open once this returns."""
    pool = ConnectionPool(
        os.environ["DATABASE_URL"],
        min_size=size,
        max_size=size,
        kwargs={"autocommit": True},
        open=False,
    )
    pool.open(wait=True)
    return pool


def single_query(pool: ConnectionPool) -> bytes:
    """The JSON of one random row (thread-safe: each call borrows its own connection)."""
    with pool.connection() as connection:
        row = connection.execute(QUERY, (random.randint(1, ROWS),)).fetchone()
    assert row is not None  # every id 1..ROWS exists
    return json.dumps({"id": row[0], "randomNumber": row[1]}).encode()
