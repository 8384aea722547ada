"""A static file: one curl (HTTP/1.1, into /dev/null) downloading a 1 GiB file over
loopback, first with the file out of the page cache (cold: fsync, then
posix_fadvise(DONTNEED), checked with util-linux's fincore and recorded as `evicted`),
then right after a first download (warm). Servers: mummy.StaticFiles
(bench/apps/static_app.py, default workers; plaintext HTTP/1.1 is sent by the IO thread
with os.sendfile) on 3.13t and the GIL build, `python -m http.server` on the 3.13t
interpreter mummy runs on (a reference, run whatever --servers says), and granian's own
static files (`--static-path-mount`, beside the WSGI twin app) on 3.13t. Per download:
MB/s (curl's speed_download), the size and status checked, the server's peak RSS (VmHWM
reset before it, summed over the server's processes). The file (os.urandom) is made once
per run in a temporary directory, read back once, and removed when the run ends. Cold is
cold for this kernel only: a VM host may still cache the disk. --quick: 64 MiB."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness import HOST, peers
from harness.machine import read_procs
from harness.pagecache import evict, resident_bytes
from harness.runner import Context, Group, Running, Sample, ServerSpec, Workload

TITLE = "Static files: one curl downloading a 1 GiB file, cold and warm page cache"
FILE_MIB = 1024
URL_PATH = "/static/big.bin"  # the same path on every server
CURL_OUT = "%{speed_download} %{size_download} %{http_code} %{http_version}"
CURL_TIMEOUT_S = 600


def ensure_tools() -> None:
    for tool, package in (("curl", "curl"), ("fincore", "util-linux")):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is missing: apt-get install {package}")


def make_tree(mib: int, gil_answer: str) -> Path:
    """root/static/big.bin (`mib` MiB, on disk: fsynced) and root/gil, which answers
    http.server's GET /gil; the whole tree is removed when the run ends."""
    root = Path(tempfile.mkdtemp(prefix="mummy-bench-static-"))
    atexit.register(shutil.rmtree, root, True)
    (root / "static").mkdir()
    path = root / URL_PATH.lstrip("/")
    with path.open("wb") as out:
        for _ in range(mib):
            out.write(os.urandom(1 << 20))
    # Read back once from the disk: a cache below this kernel's (a VM host's) then holds
    # it for every server alike, not for all but the first server measured cold.
    evict(path)
    with path.open("rb") as back:
        while back.read(1 << 20):
            pass
    (root / "gil").write_text(gil_answer)
    return root


def http_server_gil(python: Path) -> str:
    """Whether the GIL is on in `python` once http.server is imported: what a process
    running `python -m http.server` would answer to GET /gil, if it could."""
    code = "import http.server, sys; print(sys._is_gil_enabled())"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or "unknown"


def server_pids(running: Running) -> list[int]:
    """The server's processes: its process group (granian's worker is a child)."""
    assert running.server is not None
    pgrp = running.server.pid
    return [pid for pid, proc in read_procs().items() if proc.pgrp == pgrp]


def reset_peak_rss(pids: list[int]) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: "5" to clear_refs)."""
    try:
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total


def curl(port: int) -> tuple[list[str], str]:
    """One download into /dev/null: the command and what curl's -w printed (or why
    there is nothing)."""
    url = f"http://{HOST}:{port}{URL_PATH}"
    argv = ["curl", "-s", "--http1.1", "--max-time", str(CURL_TIMEOUT_S), "-o", "/dev/null"]
    argv += ["-w", CURL_OUT, url]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=CURL_TIMEOUT_S + 60)
    except subprocess.TimeoutExpired:
        return argv, "timeout"
    return argv, done.stdout if done.returncode == 0 else f"curl exited {done.returncode}"


def download(path: Path, mib: int, cache: str) -> Workload:
    """GET URL_PATH once with the file out of the page cache ("cold") or right after a
    first GET ("warm"): MB/s, the size and status checked."""
    expected = mib << 20

    def measure(running: Running, seconds: float) -> Sample:
        del seconds  # the work is fixed
        if cache == "cold":
            evict(path)
        resident = resident_bytes(path)
        pids = server_pids(running)
        reset = reset_peak_rss(pids)
        argv, out = curl(running.port)
        peak = peak_rss_kib(server_pids(running)) if reset else None
        metrics: dict[str, Any] = {"resident_before_mib": resident / (1 << 20)}
        if cache == "cold":
            metrics["evicted"] = resident == 0
        parts = out.split()
        if len(parts) != 4:
            return Sample(metrics, argv, f"curl: {out!r}"[:300])
        size, status = int(parts[1]), parts[2]
        metrics |= {"mb_per_s": float(parts[0]) / 1e6, "bytes": size, "status": int(status)}
        metrics |= {"http_version": parts[3], "peak_rss_kib": peak}
        error = None
        if status != "200":
            error = f"status {status}"
        elif size != expected:
            error = f"read {size:,} bytes, not {expected:,}"
        return Sample(metrics, argv, error)

    def first(running: Running) -> None:
        curl(running.port)

    size = f"{mib // 1024} GiB" if mib >= 1024 else f"{mib} MiB"
    params = {"path": URL_PATH, "cache": cache, "bytes_expected": expected}
    return Workload(
        f"{size} file, {cache} cache",
        params,
        measure,
        warmup=first if cache == "warm" else None,
        main=("mb_per_s", "MB/s"),
    )


def plan(ctx: Context) -> tuple[list[Group], dict[str, Any]]:
    ensure_tools()
    mib = 64 if ctx.quick else FILE_MIB
    ft = ctx.interpreters["ft"]
    root = make_tree(mib, http_server_gil(ft.venv_python))
    files = root / "static"
    workloads = [download(files / "big.bin", mib, cache) for cache in ("cold", "warm")]
    specs = [
        ctx.mummy(interp, "static_app.py", [str(files)], "StaticFiles, default workers")
        for interp in ctx.builds()
    ]
    argv = [str(ft.venv_python), "-m", "http.server", "--bind", HOST, "--directory", str(root)]
    specs.append(ServerSpec("http.server", ft, "ThreadingHTTPServer", (*argv, "{port}")))
    if venv := ctx.peer("granian", ft):
        argv = peers.granian(venv, "wsgi_app:app", "wsgi", None, "1", static=files)
        specs.append(ctx.peer_spec("granian", ft, "--static-path-mount, 1 worker", argv))
    settings = {
        "file_mib": mib,
        "path": URL_PATH,
        "curl": f"curl -s --http1.1 -o /dev/null -w '{CURL_OUT}'",
        "cold": "fsync, posix_fadvise(POSIX_FADV_DONTNEED), checked with fincore",
        "warm": "a first download right before, not measured",
    }
    return [Group(spec, workloads) for spec in specs], settings
