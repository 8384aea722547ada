"""Servers for the tests: a free port, waiting for an event, a `mummy.Server` in this
process that is always closed, and a server in a subprocess that is always stopped.

>>> with serving(mummy.Server(handler, workers=2)) as server:
...     exchange(server.port, b"GET / HTTP/1.0\\r\\n\\r\\n")
>>> with ServerProcess([sys.executable, "examples/basic.py"]) as proc:
...     exchange(proc.port, b"GET / HTTP/1.0\\r\\n\\r\\n")
...     assert proc.stop() == 0, proc.output

Timeouts here only bound a hang; no test passes or fails on how long something took.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import mummy

ROOT = Path(__file__).resolve().parent.parent
HANG_S = 30.0  # the bound on any wait below: generous, it only turns a hang into a failure


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a server that must be
    told its port before it starts (a subprocess, two servers sharing SO_REUSEPORT)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout: float = HANG_S) -> bool:
    """Poll `predicate` until it is true; False if it is still false after `timeout`
    seconds. Use it as `assert wait_for(...)`: the wait ends at the event."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(0.01)
    return True


@contextlib.contextmanager
def serving(
    server: mummy.Server, port: int = 0, address: str = "127.0.0.1", **start: Any
) -> Iterator[mummy.Server]:
    """Start `server` (its IO thread and workers run in the background) on `port`, 0
    for one the kernel picks (`server.port` says which), with `start`'s options (uds,
    fd, reuse_port, certfile...); yield it; close it however the block ends. Closing
    a server the test closed already does nothing."""
    server.start(port, address, **start)
    try:
        yield server
    finally:
        server.close(timeout=5.0)


def tasks_in_flight(server: mummy.Server) -> int:
    """How many tasks the IO thread has given the workers and not seen finish (queued
    in the ring or running): what a test waits for when requests must be queued
    behind a busy worker. The count belongs to the IO thread; reading it is a benign
    race that a wait_for loop absorbs."""
    assert server._loops, "the server is not started"
    return sum(loop.ring.in_flight for loop in server._loops)


class ServerProcess:
    """A server in a subprocess, told a free port in $PORT and in place of "{port}" in
    `argv`. The constructor returns once the port accepts connections, and raises
    AssertionError with the output if the process exits first or does not listen
    within `timeout` seconds. Its output (stdout and stderr together, unbuffered) is
    read as it comes, for `output`, `wait_for_output` and failure messages.

    `stop()` ends it (SIGTERM by default, SIGKILL if it does not exit) and returns
    the exit code; leaving a `with` block kills what is still running.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        timeout: float = HANG_S,
    ) -> None:
        self.port = free_port()
        self.host = host
        self.argv = [arg.replace("{port}", str(self.port)) for arg in argv]
        environment = {**(os.environ if env is None else env)}
        environment.update(PORT=str(self.port), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own process group, so that kill() also reaches what it started
            # (the --reload supervisor's child), which would hold the output pipe open.
            start_new_session=True,
        )
        self._lock = threading.Lock()
        self._chunks: list[str] = []
        self._reader = threading.Thread(target=self._read, name="server-output", daemon=True)
        self._reader.start()
        if not wait_for(lambda: self.proc.poll() is not None or self.accepts(), timeout):
            self.kill()
            raise AssertionError(
                f"{self.argv} was not listening on port {self.port} after {timeout} s:\n"
                + self.output
            )
        if self.proc.poll() is not None:
            self.kill()
            raise AssertionError(
                f"{self.argv} exited with {self.proc.returncode} before listening:\n" + self.output
            )

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self._chunks.append(line)

    @property
    def output(self) -> str:
        """Everything the process has printed so far (all of it once it is stopped)."""
        with self._lock:
            return "".join(self._chunks)

    def accepts(self) -> bool:
        """Whether the port accepts a connection now."""
        try:
            socket.create_connection((self.host, self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def wait_for_output(self, text: str, timeout: float = HANG_S) -> None:
        """Block until the process has printed `text` (AssertionError after `timeout`
        seconds or if it exits without printing it)."""
        seen = wait_for(lambda: text in self.output or self.proc.poll() is not None, timeout)
        if self.proc.poll() is not None:
            self._reader.join(timeout)
        assert seen and text in self.output, f"{text!r} not printed by {self.argv}:\n{self.output}"

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = HANG_S) -> int:
        """Send `sig` (if still running), wait for the exit and return its code. If it
        has not exited after `timeout` seconds: SIGKILL and AssertionError."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.argv} did not exit {timeout} s after {signal.Signals(sig).name}:\n"
                + self.output
            ) from None
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        """The cleanup after a failure: SIGKILL to the process and anything it started,
        then reap it."""
        if self.proc.poll() is None:  # not reaped, so its group id is still its own
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it exited just now
        self.proc.wait()
        self._reader.join(HANG_S)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
