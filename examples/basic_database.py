"""A SQLite counter used by every worker at once: GET /get answers `Count: <n>`,
GET /inc adds one and answers `Done`.

Handlers may block on a database: each runs on its own worker thread. Each worker
opens its own connection on first use (sqlite3 connections belong to one thread),
so there is no pool and no lock of ours: SQLite itself lets readers run in
parallel (WAL mode) and queues writers, and the increment is one UPDATE, atomic.

Run: .venv-ft/bin/python examples/basic_database.py (DATABASE sets the file),
then curl http://localhost:8080/inc and curl http://localhost:8080/get
"""

import os
import sqlite3
import threading

import mummy

DATABASE = os.environ.get("DATABASE", "basic_database.sqlite3")

_per_thread = threading.local()


def connection() -> sqlite3.Connection:
    """This worker thread's connection, opened on its first request."""
    conn: sqlite3.Connection | None = getattr(_per_thread, "conn", None)
    if conn is None:
        # Autocommit: each statement is its own transaction. A writer that finds
        # another one busy waits for it (up to 30 s) instead of failing.
        conn = sqlite3.connect(DATABASE, timeout=30, autocommit=True)
        _per_thread.conn = conn
    return conn


def create_database() -> None:
    conn = sqlite3.connect(DATABASE, autocommit=True)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
        conn.execute(
            "CREATE TABLE IF NOT EXISTS counter"
            " (id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL)"
        )
        conn.execute("INSERT OR IGNORE INTO counter (id, count) VALUES (1, 0)")
    finally:
        conn.close()


router = mummy.Router()


@router.get("/get")
def get_count(request: mummy.Request) -> None:
    (count,) = connection().execute("SELECT count FROM counter WHERE id = 1").fetchone()
    request.respond(200, {"Content-Type": "text/plain"}, f"Count: {count}\n")


@router.get("/inc")
def increment(request: mummy.Request) -> None:
    connection().execute("UPDATE counter SET count = count + 1 WHERE id = 1")
    request.respond(200, {"Content-Type": "text/plain"}, "Done")


if __name__ == "__main__":
    create_database()
    mummy.Server(router).serve(int(os.environ.get("PORT", "8080")))
