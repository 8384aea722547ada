"""TechEmpower's single query test with wrk: per request one `SELECT id, randomnumber FROM
world WHERE id = $1` of a random row (1..10,000) of PostgreSQL, answered as JSON
`{"id": N, "randomNumber": M}`. The query code is bench/apps/db_common.py (psycopg 3, its
Python implementation over libpq, a psycopg_pool pool with a connection per worker
thread, statements prepared as psycopg does by default), served by mummy
(bench/apps/db_app.py) on 3.13t and on the GIL build and by granian WSGI
(bench/apps/db_wsgi_app.py, the `granian-db` peer venv; `--servers granian` selects it)
on 3.13t, all with 16 threads and 16 connections; wrk -t2 -c64 on /db.

The driver starts a PostgreSQL of its own for its whole run (ci/services.py: a new
cluster on 127.0.0.1, stopped when the run ends, however it ends), fills `world` with psql
(10,000 rows, random numbers 1..10,000 from a fixed seed, then VACUUM ANALYZE), and gives
the servers its URL as $DATABASE_URL. Before each measurement, 20 GET /db must answer 200,
Content-Type application/json, exactly those two integer fields, matching the table, not
all the same row. PostgreSQL runs on the same cores as the server and wrk; its CPU (the
postmaster and its children) is counted apart, as PostgreSQL CPU, not as other processes'.
TechEmpower runs 512 connections on many-core machines; this is sized for 2 cores.
--quick: mummy on 3.13t only."""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

from harness import REPO, load, peers, procs
from harness.runner import Context, Group, Running, Sample, Workload

TITLE = "Database: TechEmpower's single query on PostgreSQL (wrk)"
PATH = "/db"
ROWS = 10_000
THREADS = 16  # each server's worker threads, and the connections in its pool
CONNECTIONS = 64
TECHEMPOWER_CONNECTIONS = 512
CHECKS = 20  # GET /db checked before each measurement
SEED = 10_000
PSQL_TIMEOUT_S = 120


def load_services() -> ModuleType:
    """ci/services.py, by path: it is a script, not a package, and stdlib only."""
    spec = importlib.util.spec_from_file_location("ci_services", REPO / "ci/services.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def psql(url: str, script: str) -> list[str]:
    """Run `script` with psql, stopping at the first error; the lines it printed."""
    argv = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url]
    try:
        done = subprocess.run(
            argv, input=script, capture_output=True, text=True, timeout=PSQL_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"psql took over {PSQL_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise RuntimeError(f"psql exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return done.stdout.splitlines()


def start_database(ctx: Context, world: list[int]) -> tuple[str, int, str]:
    """A PostgreSQL for this driver's run, stopped by ctx.closing, with `world` filled:
    its URL, its postmaster's pid and its version."""
    if shutil.which("psql") is None:
        raise RuntimeError("psql is missing: apt-get install postgresql-client")
    services = load_services()
    try:
        url: str = ctx.closing.enter_context(services.postgres())
    except services.ServiceError as exc:
        raise RuntimeError(f"no PostgreSQL: {exc}") from None
    rows = "".join(f"{row}\t{number}\n" for row, number in enumerate(world, 1))
    psql(
        url,
        "CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL);\n"
        f"COPY world (id, randomnumber) FROM STDIN;\n{rows}\\.\n"
        "VACUUM ANALYZE world;\n",
    )
    data, version = psql(url, "SHOW data_directory;\nSHOW server_version;\n")
    postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
    return url, postmaster, version


def check_answers(port: int, world: list[int]) -> str | None:
    """What is wrong with the server's answers to GET /db, or None."""
    ids = set()
    for _ in range(CHECKS):
        try:
            status, fields, body = procs.http_get(port, PATH)
        except OSError as exc:
            return f"GET {PATH}: {exc}"
        kind = fields.get("content-type", "")
        if status != 200 or kind.partition(";")[0].strip() != "application/json":
            return f"GET {PATH} answered {status}, Content-Type {kind!r}: {body[:100]!r}"
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not (
            isinstance(answer, dict)
            and answer.keys() == {"id", "randomNumber"}
            and all(type(value) is int for value in answer.values())
        ):
            return f'GET {PATH} answered {body[:100]!r}, not {{"id": N, "randomNumber": M}}'
        row = answer["id"]
        stored = world[row - 1] if 1 <= row <= ROWS else None
        if answer["randomNumber"] != stored:
            return f"GET {PATH} answered {body!r}, but row {row} holds {stored}"
        ids.add(row)
    if len(ids) == 1:
        return f"GET {PATH} answered row {ids.pop()} {CHECKS} times: not a random row"
    return None


def single_query(world: list[int], warmup_s: float) -> Workload:
    """wrk on /db, after checking the server's answers (an error instead of a figure if
    they are wrong); a response that is not 2xx is an error too."""
    work = load.wrk(PATH, PATH, CONNECTIONS, warmup_s=warmup_s, params={"rows": ROWS})
    warm, timed = work.warmup, work.measure
    problem: str | None = None

    def warmup(running: Running) -> None:
        nonlocal problem
        problem = check_answers(running.port, world)
        if problem is None and warm is not None:
            warm(running)

    def measure(running: Running, seconds: float) -> Sample:
        if problem is not None:
            return Sample({}, [], problem)
        sample = timed(running, seconds)
        if sample.error is None and (failed := sample.metrics.get("non_2xx")):
            sample.error = f"{failed:,} responses were not 2xx"
        return sample

    work.warmup, work.measure = warmup, measure
    return work


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    rng = random.Random(SEED)
    world = [rng.randint(1, ROWS) for _ in range(ROWS)]
    url, postmaster, version = start_database(ctx, world)
    env = {"DATABASE_URL": url}
    pool = f"{THREADS} connections"
    specs = [
        ctx.mummy(interp, "db_app.py", [str(THREADS)], f"workers={THREADS}, {pool}", env=env)
        for interp in (ctx.builds("ft") if ctx.quick else ctx.builds())
    ]
    ft = ctx.interpreters["ft"]
    if not ctx.quick and (venv := ctx.peer("granian-db", ft)):
        argv = peers.granian(venv, "db_wsgi_app:app", "wsgi", THREADS, "auto")
        label = f"WSGI, 1 worker, --blocking-threads {THREADS}, {pool}"
        env_pool = {**env, "DATABASE_POOL_SIZE": str(THREADS)}
        specs.append(ctx.peer_spec("granian", ft, label, argv, env=env_pool))
    groups = [
        Group(spec, [single_query(world, ctx.warmup(2))], services=(postmaster,)) for spec in specs
    ]
    settings = {
        "path": PATH,
        "rows": ROWS,
        "threads": THREADS,
        "pool_connections": THREADS,
        "connections": CONNECTIONS,
        "techempower_connections": TECHEMPOWER_CONNECTIONS,
        "query": "SELECT id, randomnumber FROM world WHERE id = $1",
        "postgres": version,
        "postgres_settings": "a new cluster by ci/services.py on 127.0.0.1, with fsync,"
        " synchronous_commit and full_page_writes off, nothing being written while measured;"
        " the rest PostgreSQL's defaults",
    }
    return groups, settings
