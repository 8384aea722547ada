"""A PostgreSQL counter used by every worker at once: GET /get answers `Count: <n>`,
GET /inc adds one and answers `Done`.

Handlers may block on a database: each runs on its own worker thread. The workers share
one `psycopg_pool.ConnectionPool`; a handler borrows a connection for its one statement
and gives it back. Sizes: the server has a fixed pool of WORKERS (10) threads and the
connection pool opens up to as many connections (2 kept open when idle), so a worker
never waits for another worker's connection: requests beyond 10 at once wait in the
server's queue, not in the pool, and PostgreSQL sees at most 10 connections from each
process (its default max_connections is 100). A worker does wait when no connection is
free, that is, when the pool is still opening one (PostgreSQL restarting or refusing):
at most POOL_TIMEOUT_S (5 s), then it answers 503. Give the server more workers than
connections (or its default adaptive pool, which grows while handlers block) and the
extra workers queue for connections the same way, each for at most 5 s.

Connections are in autocommit mode: each statement is its own transaction, one round
trip. The increment is one statement, `UPDATE ... SET n = n + 1 RETURNING n`: PostgreSQL
locks the row for it, so concurrent increments are never lost. At start the table and
its single row are created if missing (an existing count is kept); if the database
cannot be reached within 5 s, the example exits with psycopg_pool's PoolTimeout.

How this differs from Mummy's examples/basic_database.nim (ported to SQLite as
examples/basic_database.py): Mummy's shares waterpark's pool of 10 SQLite connections
among the default worker pool (more threads than connections), where a handler waits
for a connection without a bound; it also resets the count to 0 at every start.
DATABASE_URL (default postgresql://localhost/postgres) names the database, PORT (default
8080) the port.

Run: .venv-ft/bin/python examples/postgres_database.py, then curl
http://localhost:8080/inc and curl http://localhost:8080/get
"""

import os

import psycopg
import psycopg_pool

import mummy

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://localhost/postgres")
WORKERS = 10
POOL_TIMEOUT_S = 5.0

# Opened in main, not at import: until then it holds no connection.
pool = psycopg_pool.ConnectionPool(
    DATABASE_URL,
    min_size=2,
    max_size=WORKERS,
    timeout=POOL_TIMEOUT_S,
    kwargs={"autocommit": True},
    open=False,
)


def create_table() -> None:
    with pool.connection() as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS counter"
            " (id integer PRIMARY KEY CHECK (id = 1), n bigint NOT NULL)"
        )
        conn.execute("INSERT INTO counter (id, n) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")


def query(request: mummy.Request, sql: str) -> int | None:
    """The one value `sql` returns; None once a 503 is answered, when no connection
    came within POOL_TIMEOUT_S or the database is out of reach."""
    try:
        with pool.connection() as conn:
            row = conn.execute(sql).fetchone()
    except psycopg_pool.PoolTimeout:
        why = f"No database connection within {POOL_TIMEOUT_S} s: all busy, or none can be opened"
    except psycopg.OperationalError:
        why = "The database is unavailable"
    else:
        assert row is not None, "the counter row is missing"
        return int(row[0])
    request.respond(503, {"Content-Type": "text/plain", "Retry-After": "1"}, f"{why}\n")
    return None


router = mummy.Router()


@router.get("/get")
def get_count(request: mummy.Request) -> None:
    count = query(request, "SELECT n FROM counter WHERE id = 1")
    if count is not None:
        request.respond(200, {"Content-Type": "text/plain"}, f"Count: {count}\n")


@router.get("/inc")
def increment(request: mummy.Request) -> None:
    if query(request, "UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n") is not None:
        request.respond(200, {"Content-Type": "text/plain"}, "Done")


if __name__ == "__main__":
    with pool:  # opens it; closes its connections once the server has stopped
        create_table()  # PoolTimeout after POOL_TIMEOUT_S if the database is out of reach
        mummy.Server(router, workers=WORKERS).serve(int(os.environ.get("PORT", "8080")))
