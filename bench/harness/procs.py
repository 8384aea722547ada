"""Processes and ports: a server under test in its own process group, started, probed
until it answers, and stopped (SIGTERM, then SIGKILL for the whole group)."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness import HOST, LOGS, REPO, RESULTS

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# Server output that says nothing about a run.
BENIGN_OUTPUT = (
    re.compile(r"free-threaded Python support is experimental"),  # granian, at start
    re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ INFO mummy: "),  # mummy's INFO lines
    # http.server's access log, a line per request that went well
    re.compile(r'^127\.0\.0\.1 - - \[[^]]+\] "GET \S+ HTTP/1\.1" 200 -$'),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def raise_nofile(wanted: int = 65536) -> int:
    """Raise this process's open-file limit (children inherit it) towards `wanted`: 10,000
    WebSockets need as many sockets in the server and in the client."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def snapshot_mummy() -> Path:
    """Copy mummy/ aside and return the directory to put first on the servers' PYTHONPATH
    (ahead of the editable install), so that edits to the tree during a run don't change
    what is measured."""
    root = RESULTS / "mummy-snapshot"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(REPO / "mummy", root / "mummy", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def http_get(
    port: int, path: str, headers: Mapping[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """A one-shot HTTP/1.1 GET over a raw socket: (status, lower-cased fields, body). The
    body ends at its Content-Length (a server may keep the connection), else at close."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{extra}Connection: close\r\n\r\n"
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise ConnectionError(f"not an HTTP response: {head[:80]!r}")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        length = int(fields.get("content-length", -1))
        while (length < 0 or len(body) < length) and (chunk := sock.recv(65536)):
            body += chunk
    return int(parts[1]), fields, body


def h2_get(port: int, path: str) -> bytes:
    """The body of an h2c (prior knowledge) GET, fetched with nghttp (nghttp2-client),
    which exits 0 even when it could not connect: its stderr says so."""
    done = subprocess.run(
        ["nghttp", "-t", "5", f"http://{HOST}:{port}{path}"], capture_output=True, timeout=20
    )
    if done.returncode != 0 or done.stderr.strip():
        raise ConnectionError(done.stderr.decode(errors="replace").strip()[-200:] or "nghttp")
    return done.stdout


def probe_gil(protocol: str, port: int) -> str:
    """GET /gil (every bench app answers it): the body, or raises OSError."""
    if protocol == "h2":
        return h2_get(port, "/gil").decode(errors="replace").strip()
    status, _, body = http_get(port, "/gil", timeout=2.0)
    if status != 200:
        raise ConnectionError(f"GET /gil answered {status}")
    return body.decode(errors="replace").strip()


class ServerFailed(RuntimeError):
    """The server did not start, or did not answer."""


class Server:
    """A server process in its own session (its workers share its process group), its
    output in a log file under bench/results/logs/."""

    def __init__(
        self, argv: Sequence[str], log_name: str, cwd: Path, env: Mapping[str, str]
    ) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.argv = list(argv)
        self.log_path = LOGS / f"{re.sub(r'[^A-Za-z0-9.]+', '-', log_name).strip('-')}.log"
        clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env={**clean, "PYTHONUNBUFFERED": "1", **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, protocol: str, port: int) -> bool | None:
        """Wait until GET /gil answers; returns whether the GIL is on in the server (None
        when its answer says neither)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(f"exited with status {self.proc.returncode}: {self.tail()}")
            try:
                body = probe_gil(protocol, port)
            except (OSError, subprocess.TimeoutExpired) as exc:
                last = str(exc)
                time.sleep(0.1)
                continue
            return {"True": True, "False": False}.get(body)
        raise ServerFailed(f"no answer within {START_TIMEOUT_S:.0f} s ({last}): {self.tail()}")

    def status_field(self, name: str) -> int:
        """A number from /proc/PID/status, e.g. VmRSS (KiB) or Threads."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {name} in /proc/{self.pid}/status")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def output_since(self, offset: int) -> list[str]:
        """Lines the server wrote after `offset` that may matter (not blank, not benign)."""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
        return [ln for ln in lines if not any(p.search(ln) for p in BENIGN_OUTPUT)]

    def tail(self, chars: int = 600) -> str:
        text = self.log_path.read_text(errors="replace")[-chars:]
        return " / ".join(ln for ln in text.splitlines() if ln.strip()) or "no output"

    def stop(self) -> int | None:
        """SIGTERM the group, then SIGKILL it if it lingers; returns the exit status."""
        for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.pid, sig)
                self.proc.wait(timeout=wait_s)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # workers a master left behind (gunicorn, granian) share its group
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.proc.returncode
