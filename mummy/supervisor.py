"""`python -m mummy APP --processes N`: one listening socket, N processes serving it.

The supervisor binds the socket once and starts each child as a new interpreter
(`python -m mummy` with the same arguments, the socket passed as an inherited fd,
as for `--fd`): nothing is forked after imports or threads, so every child
imports the app itself and no database or Redis connection is shared by two
processes. The children wait on the one socket with EPOLLEXCLUSIVE (one of them
is woken per new connection) and the kernel queues connections in its backlog
whenever none is accepting, so a child restarting loses nothing.

- A child that dies is started again: at once after a stable life (at least
  STABLE_AFTER_S), else after a backoff doubling from BACKOFF_FIRST_S up to
  BACKOFF_MAX_S. A child that fails with exit status 2 (a configuration error:
  the app does not import, a bad option) before any child was ever ready stops
  the supervisor with that status: restarting cannot fix it.
- SIGTERM and SIGINT: every child closes gracefully (its `Server.close()`:
  stop accepting, answer what was received, close), the supervisor waits for
  them (killing what is left after `stop_timeout`) and exits 0. A second SIGINT
  kills the children at once.
- SIGHUP: a rolling restart. For each child in turn, a new child is started
  and, once it listens (it writes a byte to a pipe), the old one is closed
  gracefully. If a new child does not come up, the restart stops there and the
  old children keep serving.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("mummy")

STABLE_AFTER_S = 10.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
READY_TIMEOUT_S = 60.0
CONFIG_ERROR = 2  # the CLI's exit status for a MummyError


@dataclass(eq=False)
class Child:
    slot: int
    proc: subprocess.Popen[bytes]
    ready_fd: int  # read end of the pipe the child writes b"1" to once listening
    started: float
    ready: bool = False
    metrics_fd: int = -1  # read end of the pipe of its metrics snapshots (--metrics-port)
    partial: bytes = b""  # a snapshot line not complete yet


@dataclass
class Slot:
    child: Child | None = None
    crashes: int = 0  # quick deaths in a row
    restart_at: float = 0.0  # when a dead child is started again (0: not due)


@dataclass
class Supervisor:
    """Runs `processes` children of `argv` (the CLI's arguments) on `listener`."""

    argv: list[str]
    processes: int
    listener: socket.socket
    stop_timeout: float = 15.0
    metrics: tuple[int, str] | None = None  # (port, address): the one /metrics for all
    slots: list[Slot] = field(init=False)
    retiring: list[Child] = field(default_factory=list)  # closing gracefully
    starting: Child | None = None  # a rolling restart's new child, not yet listening
    _ever_ready: bool = False
    _stop: int = 0  # signals asking to stop
    _hup: bool = False

    def __post_init__(self) -> None:
        self.slots = [Slot() for _ in range(self.processes)]

    def run(self) -> int:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        previous_wakeup = signal.set_wakeup_fd(wake_w)
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)
        restore = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        self._wake_fd = wake_r
        exporter = None
        if self.metrics is not None:
            from mummy.metrics import Aggregate, serve_metrics

            self._aggregate = Aggregate()
            exporter = serve_metrics(self._aggregate, *self.metrics)
            log.info(
                "metrics of every child on http://%s:%d/metrics", self.metrics[1], self.metrics[0]
            )
        try:
            return self._supervise()
        finally:
            if exporter is not None:
                exporter.shutdown()
                exporter.server_close()
            for sig, handler in restore.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            os.close(wake_r)
            os.close(wake_w)
            self.listener.close()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._hup = True
        elif signum in (signal.SIGTERM, signal.SIGINT):
            self._stop += 1
            if self._stop > 1 and signum == signal.SIGINT:
                log.warning("second SIGINT: killing the children now")
                for child in self._children():
                    _signal(child, signal.SIGKILL)

    def _supervise(self) -> int:
        log.info(
            "mummy supervisor (pid %d): %d processes on %s",
            os.getpid(),
            self.processes,
            self.listener.getsockname() or "a Unix socket",
        )
        for index in range(self.processes):
            self.slots[index].child = self._spawn(index)
        status = 0
        while not self._stop:
            self._wait(0.5)
            failed = self._reap(time.monotonic())
            if failed is not None:
                status = failed
                break
            self._respawn_due(time.monotonic())
            if self._hup and not self._stop:
                self._hup = False
                self._rolling_restart()
        self._stop_all()
        return status

    # --- children ----------------------------------------------------------------

    def _spawn(self, slot: int) -> Child:
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        listen_fd = self.listener.fileno()
        command = [sys.executable, "-m", "mummy", *self.argv]
        command += ["--child-fd", str(listen_fd), "--ready-fd", str(ready_w)]
        passed = [listen_fd, ready_w]
        metrics_r = -1
        if self.metrics is not None:
            metrics_r, metrics_w = os.pipe2(os.O_CLOEXEC)
            command += ["--metrics-fd", str(metrics_w)]
            passed.append(metrics_w)
        try:
            proc = subprocess.Popen(command, pass_fds=passed)
        finally:
            for fd in passed[1:]:
                os.close(fd)
        log.info("supervisor: started child %d (pid %d)", slot, proc.pid)
        return Child(slot, proc, ready_r, time.monotonic(), metrics_fd=metrics_r)

    def _children(self) -> list[Child]:
        current = [slot.child for slot in self.slots if slot.child is not None]
        return current + self.retiring + ([self.starting] if self.starting else [])

    def _wait(self, timeout: float) -> None:
        """Sleep until a signal, a child's ready byte, or `timeout` seconds."""
        children = self._children()
        waiting = {c.ready_fd: c for c in children if not c.ready and c.ready_fd >= 0}
        pushing = {c.metrics_fd: c for c in children if c.metrics_fd >= 0}
        try:
            readable, _, _ = select.select([self._wake_fd, *waiting, *pushing], [], [], timeout)
        except InterruptedError:
            return
        for fd in readable:
            if fd == self._wake_fd:
                try:
                    os.read(fd, 512)
                except BlockingIOError:
                    pass
            elif fd in waiting:
                self._ready_byte(waiting[fd])
            else:
                self._read_metrics(pushing[fd])

    def _read_metrics(self, child: Child) -> bool:
        """Take what the child pushed; the latest complete snapshot replaces its last.
        False at the end of the pipe (the child has exited)."""
        data = os.read(child.metrics_fd, 1 << 20)
        if not data:
            os.close(child.metrics_fd)
            child.metrics_fd = -1
            return False
        *lines, child.partial = (child.partial + data).split(b"\n")
        if lines:
            try:
                self._aggregate.update(child.proc.pid, json.loads(lines[-1]))
            except ValueError:
                log.warning("supervisor: child pid %d sent bad metrics", child.proc.pid)
        return True

    def _gone(self, child: Child) -> None:
        """An exited child: its last snapshot read, its counts retired; pipes closed."""
        self._close_ready(child)
        if child.metrics_fd >= 0:
            while self._read_metrics(child):
                pass
        if self.metrics is not None:
            self._aggregate.retire(child.proc.pid)

    def _ready_byte(self, child: Child) -> None:
        if os.read(child.ready_fd, 1) == b"1":
            child.ready = True
            self._ever_ready = True
            log.info("supervisor: child %d (pid %d) is listening", child.slot, child.proc.pid)
        self._close_ready(child)  # b"": the child exited first

    @staticmethod
    def _close_ready(child: Child) -> None:
        if child.ready_fd >= 0:
            os.close(child.ready_fd)
            child.ready_fd = -1

    def _reap(self, now: float) -> int | None:
        """Collect children that exited; schedule restarts. The exit status when the
        supervisor must give up (a configuration error), else None."""
        for gone in [c for c in self.retiring if c.proc.poll() is not None]:
            self.retiring.remove(gone)
            self._gone(gone)
        for index, slot in enumerate(self.slots):
            child = slot.child
            if child is None or child.proc.poll() is None:
                continue
            self._gone(child)
            slot.child = None
            code = child.proc.returncode
            if code == CONFIG_ERROR and not child.ready and not self._ever_ready:
                log.error("supervisor: child %d failed to start (exit status %d)", index, code)
                return code
            lived = now - child.started
            slot.crashes = 1 if lived >= STABLE_AFTER_S else slot.crashes + 1
            delay = 0.0 if slot.crashes <= 1 else backoff(slot.crashes - 1)
            slot.restart_at = now + delay
            log.warning(
                "supervisor: child %d (pid %d) exited with status %s after %.1f s; "
                "restarting it in %.1f s",
                index,
                child.proc.pid,
                code,
                lived,
                delay,
            )
        return None

    def _respawn_due(self, now: float) -> None:
        for index, slot in enumerate(self.slots):
            if slot.child is None and slot.restart_at and now >= slot.restart_at:
                slot.restart_at = 0.0
                slot.child = self._spawn(index)

    def _rolling_restart(self) -> None:
        log.info("supervisor: SIGHUP, restarting the children one at a time")
        for index, slot in enumerate(self.slots):
            self.starting = new = self._spawn(index)
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not new.ready and new.proc.poll() is None and not self._stop:
                if time.monotonic() >= deadline:
                    break
                self._wait(0.1)
                self._reap(time.monotonic())  # an old child may die meanwhile
            self.starting = None
            if not new.ready:
                log.error(
                    "supervisor: the new child %d did not start listening; the rolling "
                    "restart stops and the running children keep serving",
                    index,
                )
                _signal(new, signal.SIGKILL)
                new.proc.wait()
                self._gone(new)
                return
            old = slot.child
            slot.child = new
            slot.crashes = 0
            if old is not None:
                _signal(old, signal.SIGTERM)  # drains: stops accepting, answers what came
                self.retiring.append(old)
        log.info("supervisor: rolling restart done")

    def _stop_all(self) -> None:
        children = self._children()
        log.info("supervisor: stopping %d children", len(children))
        for child in children:
            _signal(child, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in children:
            try:
                child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("supervisor: child pid %d did not stop; killing it", child.proc.pid)
                _signal(child, signal.SIGKILL)
                child.proc.wait()
            self._gone(child)


def backoff(quick_deaths: int) -> float:
    """Seconds before restarting a child that died quickly `quick_deaths` times in a row."""
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (quick_deaths - 1)))


def _signal(child: Child, sig: signal.Signals) -> None:
    if child.proc.poll() is None:
        try:
            child.proc.send_signal(sig)
        except ProcessLookupError:
            pass
