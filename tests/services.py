"""The Redis and PostgreSQL that ./ci/test starts for each pytest run (ci/services.py:
throwaway instances on free ports, never Debian's default ones), found through the
environment.

>>> client = redis.Redis.from_url(redis_url())
>>> pool = psycopg_pool.ConnectionPool(database_url())

Without the service, the test fails and says how to get one; it is never skipped.
"""

import os

import pytest

REDIS_VARIABLE = "MUMMY_TEST_REDIS_URL"
DATABASE_VARIABLE = "MUMMY_TEST_DATABASE_URL"


def _url(variable: str, service: str) -> str:
    url = os.environ.get(variable)
    if not url:
        pytest.fail(
            f"this test needs {service}: ${variable} is not set. ./ci/test starts one "
            "(ci/services.py, which says why if it cannot); by hand: "
            "python ci/services.py run -- .venv-ft/bin/python -m pytest ...",
            pytrace=False,
        )
    return url


def redis_url() -> str:
    """redis://127.0.0.1:PORT/0: a Redis of this test run's own, empty when it starts."""
    return _url(REDIS_VARIABLE, "Redis")


def database_url() -> str:
    """postgresql://postgres@127.0.0.1:PORT/postgres: a new PostgreSQL cluster of this
    test run's own (trust authentication, the superuser postgres)."""
    return _url(DATABASE_VARIABLE, "PostgreSQL")
