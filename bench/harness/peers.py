"""The peer servers: their pinned versions (the one table of them), their venvs under
bench/.venvs/<peer>-<ft|gil> made from the interpreter under test, and their command
lines. `{port}` in a command is filled in when the server starts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from harness import APPS, HOST, REPO, VENVS

PIP_TIMEOUT_S = 900

# What each peer's venv gets, pinned; `import` is what must import for the venv to count.
# `<peer>-<extra>`: that peer with what one driver's apps need besides, in a venv of its
# own, so that the other drivers' venvs (and what they record) stay the peer alone;
# `--servers <peer>` selects it too.
GRANIAN = "granian==2.7.9"
PINNED: dict[str, dict[str, tuple[str, ...]]] = {
    "granian": {"install": (GRANIAN,), "import": ("granian._granian",)},
    # The db driver's WSGI app: psycopg's Python implementation over Debian's libpq5.
    "granian-db": {
        "install": (GRANIAN, "psycopg==3.3.9", "psycopg-pool==3.3.3"),
        "import": ("granian._granian", "psycopg", "psycopg_pool"),
    },
    "uvicorn": {
        "install": ("uvicorn==0.54.0", "httptools==0.9.0", "websockets==17.4"),
        "import": ("uvicorn", "httptools", "websockets"),
    },
    "gunicorn": {"install": ("gunicorn==27.0.1",), "import": ("gunicorn.workers.gthread",)},
    "waitress": {"install": ("waitress==3.0.2",), "import": ("waitress",)},
    "hypercorn": {"install": ("hypercorn==0.18.0",), "import": ("hypercorn", "h2")},
}

# Imports the venv's packages, then prints every installed distribution's version and
# whether the GIL is still off after those imports (an extension can turn it back on).
PROBE = """
import importlib.metadata as m, json, sys
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps({
    "distributions": {d.metadata["Name"]: d.version for d in m.distributions()},
    "gil_after_import": getattr(sys, "_is_gil_enabled", lambda: True)(),
}))
"""


class PeerUnavailable(RuntimeError):
    """A peer's venv could not be made or does not import."""


def probe(python: Path, modules: tuple[str, ...]) -> dict[str, object]:
    done = subprocess.run(
        [str(python), "-c", PROBE, *modules], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise PeerUnavailable(lines[-1] if lines else f"probe exited {done.returncode}")
    result: dict[str, object] = json.loads(done.stdout)
    return result


def ensure_venv(peer: str, interp: str, base_python: Path) -> tuple[Path, dict[str, object]]:
    """The peer's venv for that interpreter, made (or remade, when its pins changed) with
    pip from PyPI; returns it and what the probe found in it."""
    spec = PINNED[peer]
    venv = VENVS / f"{peer}-{interp}"
    marker = venv / ".bench-installed"
    wanted = " ".join(spec["install"])
    if not (marker.exists() and marker.read_text() == wanted):
        print(f"installing {wanted} into {venv.relative_to(REPO)}", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        for step in (
            [str(base_python), "-m", "venv", str(venv)],
            [str(venv / "bin/python"), "-m", "pip", "install", "-q", *spec["install"]],
        ):
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise PeerUnavailable(f"`{' '.join(step[1:])}` timed out") from None
            if done.returncode != 0:
                text = done.stdout + done.stderr
                tail = [ln for ln in text.splitlines() if not re.search(r"WARNING: Loc", ln)]
                raise PeerUnavailable(f"`{' '.join(step[1:])}` failed: {' / '.join(tail[-4:])}")
        marker.write_text(wanted)
    return venv, probe(venv / "bin/python", spec["import"])


# Command lines. Every peer is one process (gunicorn x2: two) bound to 127.0.0.1.


def granian(
    venv: Path,
    app: str,
    interface: str,
    threads: int | None,
    http: str,
    static: Path | None = None,
) -> list[str]:
    """`static`: a directory that granian itself serves (not the app) under /static/."""
    # granian refuses --blocking-threads > 1 on ASGI: there the app awaits instead.
    pool = ["--blocking-threads", str(threads)] if threads and interface == "wsgi" else []
    files = ["--static-path-mount", str(static), "--static-path-route", "/static"] * bool(static)
    return [
        str(venv / "bin/granian"),
        *("--interface", interface, "--http", http, "--host", HOST, "--port", "{port}"),
        *("--workers", "1", *pool, *files, "--no-access-log", "--log-level", "warning"),
        *("--working-dir", str(APPS), app),
    ]


def uvicorn(venv: Path, app: str, websockets: bool = False) -> list[str]:
    ws = ["--ws", "websockets"] if websockets else []
    return [
        str(venv / "bin/uvicorn"),
        *("--host", HOST, "--port", "{port}", "--app-dir", str(APPS), *ws),
        *("--http", "httptools", "--loop", "asyncio", "--workers", "1"),
        *("--no-access-log", "--log-level", "warning", app),
    ]


def gunicorn(venv: Path, app: str, processes: int, threads: int) -> list[str]:
    return [
        str(venv / "bin/gunicorn"),
        *("--bind", f"{HOST}:{{port}}", "--chdir", str(APPS), "--worker-class", "gthread"),
        *("--workers", str(processes), "--threads", str(threads), "--log-level", "warning", app),
    ]


def waitress(venv: Path, app: str, threads: int) -> list[str]:
    # --connection-limit: its default of 100 would sit exactly at /sleep's connections.
    return [
        str(venv / "bin/waitress-serve"),
        *(f"--listen={HOST}:{{port}}", f"--threads={threads}", "--connection-limit=1000", app),
    ]


def hypercorn(venv: Path, app: str) -> list[str]:
    # The config raises keep_alive_max_requests (default 1,000, then GOAWAY).
    return [
        str(venv / "bin/hypercorn"),
        *("--config", str(APPS / "hypercorn_h2.toml"), "--bind", f"{HOST}:{{port}}"),
        *("--workers", "1", "--worker-class", "asyncio", "--log-level", "warning", app),
    ]
