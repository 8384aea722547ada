#!/usr/bin/env python3
"""Run a command with a throwaway Redis and PostgreSQL of its own, stopped afterwards.

    python ci/services.py run -- .venv-ft/bin/python -m pytest -q tests/system/test_services.py

Each service listens on 127.0.0.1 on a free port, lives in a new temporary directory, and
the command finds it in its environment:

    MUMMY_TEST_REDIS_URL=redis://127.0.0.1:PORT/0         redis-server, no persistence
    MUMMY_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/postgres
                                                          initdb + pg_ctl, trust auth

Debian's default instances (Redis on 6379, the cluster 15/main) are never used. A service
that cannot start is reported (why, and what to do) and left out: the command still runs,
without that variable, and the tests that need it fail saying so (tests/services.py).

However the command ends, also on SIGINT or SIGTERM, both services are stopped and their
directories removed. The exit status is the command's (128 + N if signal N ended it).
SIGTERM is passed on to the command; so is SIGINT, unless it came from the terminal's
Ctrl-C, which the command (in this process's group) has received already.

As root, PostgreSQL's programs run as the `postgres` user through runuser (initdb and
pg_ctl refuse root). Standard library only, any python3 >= 3.11: it only orchestrates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

USAGE = "usage: python ci/services.py run -- COMMAND [ARGS...]"
REDIS_VARIABLE = "MUMMY_TEST_REDIS_URL"
DATABASE_VARIABLE = "MUMMY_TEST_DATABASE_URL"
# Bounds on a hang only: Redis answers within milliseconds, PostgreSQL within seconds.
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
FORWARDED = (signal.SIGINT, signal.SIGTERM)
# A throwaway cluster: nothing in it must survive a crash, so nothing waits for the disk.
POSTGRES_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_directory}'
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class ServiceError(Exception):
    """A service could not start; the message says why and what to do."""


def log(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the service binds it next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until(answers: Callable[[], bool], what: str, log_path: Path) -> None:
    """Poll `answers` until it is true; ServiceError (with the log's end) after
    START_TIMEOUT_S seconds."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers():
        if time.monotonic() > deadline:
            raise ServiceError(f"no answer in {START_TIMEOUT_S} s from {what}:\n{tail(log_path)}")
        time.sleep(0.05)


def run_step(argv: list[str], what: str, cwd: Path, log_path: Path | None = None) -> None:
    """Run one setup command to completion; ServiceError with its output if it fails."""
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ServiceError(f"{what}: {error}") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        if log_path is not None:
            output += "\n" + tail(log_path)
        raise ServiceError(f"{what} exited with {done.returncode}:\n{output}")


@contextlib.contextmanager
def redis() -> Iterator[str]:
    """A redis-server on a free port with no persistence (no RDB, no AOF), in a temporary
    directory; yields its URL; on exit, SIGTERM (SIGKILL if it lingers) and the directory
    removed."""
    server = shutil.which("redis-server")
    if server is None:
        raise ServiceError("redis-server is not installed (./ci/provision installs it)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="mummy-redis-") as directory:
        log_path = Path(directory, "redis.log")
        argv = [server, "--bind", "127.0.0.1", "--port", str(port), "--dir", directory]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with log_path.open("wb") as output:
            process = subprocess.Popen(
                argv,
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C interrupts the command, not the service under it.
                start_new_session=True,
            )
        try:

            def answers() -> bool:
                if process.poll() is not None:
                    raise ServiceError(
                        f"redis-server exited with {process.returncode}:\n{tail(log_path)}"
                    )
                return redis_pongs(port)

            wait_until(answers, "redis-server", log_path)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    log(f"redis-server still running {STOP_TIMEOUT_S} s after SIGTERM: SIGKILL")
                    process.kill()
                    process.wait()


def redis_pongs(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def postgres_bindir() -> Path:
    """Where initdb and pg_ctl are: on PATH, else `pg_config --bindir`, else Debian's
    /usr/lib/postgresql/VERSION/bin (the newest), which is on no PATH."""
    candidates = []
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    if pg_config := shutil.which("pg_config"):
        # libpq-dev's pg_config may name another major version's directory: checked below.
        try:
            bindir = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
        else:
            candidates.append(Path(bindir))

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in bindir.parent.name.split(".") if part.isdigit())

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise ServiceError(
        "PostgreSQL's initdb and pg_ctl are not on PATH, in `pg_config --bindir` or in "
        "/usr/lib/postgresql/*/bin (./ci/provision installs Debian's postgresql)"
    )


def as_postgres_owner() -> tuple[list[str], pwd.struct_passwd | None]:
    """The prefix that runs PostgreSQL's programs, and the account that must own its
    directory: as root, runuser and `postgres` (initdb and pg_ctl refuse to run as
    root); as anyone else, nothing and that user."""
    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServiceError("runuser is not installed (Debian's util-linux has it)")
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceError(
            "there is no `postgres` user to run PostgreSQL as (Debian's postgresql creates it)"
        ) from None
    return [runuser, "-u", "postgres", "--"], account


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A new cluster (initdb, trust authentication) in a temporary directory, started
    by pg_ctl on a free port on 127.0.0.1, its unix socket in that directory; yields its
    URL once it accepts connections; on exit, stopped and the directory removed."""
    bindir = postgres_bindir()
    prefix, account = as_postgres_owner()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="mummy-postgres-") as directory:
        root = Path(directory)
        if account is not None:
            os.chown(root, account.pw_uid, account.pw_gid)
        data, log_path = root / "data", root / "postgres.log"
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        initdb += ["-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]
        run_step([*prefix, *initdb], "initdb", root)
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(POSTGRES_SETTINGS.format(port=port, socket_directory=root))
        pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data)]
        try:
            start = [*pg_ctl, "-l", str(log_path), "-w", "-t", str(START_TIMEOUT_S), "start"]
            run_step(start, "pg_ctl start", root, log_path)
            wait_until(lambda: accepts(port), f"PostgreSQL on port {port}", log_path)
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            stop_postgres(pg_ctl, root)


def stop_postgres(pg_ctl: list[str], root: Path) -> None:
    """Fast shutdown (clients cut off; the command has ended anyway), else immediate."""
    if not (root / "data" / "postmaster.pid").exists():
        return
    for mode in ("fast", "immediate"):
        stop = [*pg_ctl, "-m", mode, "-w", "-t", str(STOP_TIMEOUT_S), "stop"]
        try:
            run_step(stop, f"pg_ctl stop -m {mode}", root)
            return
        except ServiceError as error:
            log(str(error))


def terminal_sent(signum: int) -> bool:
    """Whether `signum` is most likely the terminal's Ctrl-C: a SIGINT while this process
    group is its terminal's foreground group, which the terminal signals as a whole."""
    if signum != signal.SIGINT:
        return False
    try:
        tty = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(tty) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(tty)


def run(command: list[str]) -> int:
    """Start the services, run `command` with their URLs, stop them; its exit status."""
    child: subprocess.Popen[bytes] | None = None
    # Signals before the command starts. Startup is not cut short (a setup step killed
    # midway would leave its own children writing into a directory being removed): it
    # ends, then the services stop and the command does not run.
    early: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if child is None:
            early.append(signum)
        elif child.poll() is None and not terminal_sent(signum):
            child.send_signal(signum)

    for forwarded in FORWARDED:
        signal.signal(forwarded, on_signal)
    environment = dict(os.environ)
    with contextlib.ExitStack() as services:
        for name, variable, service in (
            ("Redis", REDIS_VARIABLE, redis),
            ("PostgreSQL", DATABASE_VARIABLE, postgres),
        ):
            environment.pop(variable, None)
            if early:
                continue
            try:
                environment[variable] = services.enter_context(service())
            except ServiceError as error:
                log(f"no {name}, so no ${variable} for the command: {error}")
            else:
                log(f"{name} at {environment[variable]} (${variable})")
        if early:
            log(f"{signal.Signals(early[0]).name} before the command started: not running it")
            return 128 + early[0]
        try:
            child = subprocess.Popen(command, env=environment)
        except OSError as error:
            log(f"cannot run {command[0]}: {error}")
            return 127
        if early:  # it came between the check above and `child` being set
            child.send_signal(early[0])
        code = child.wait()
        for forwarded in FORWARDED:  # the services' shutdown must not be cut short
            signal.signal(forwarded, signal.SIG_IGN)
    return code if code >= 0 else 128 - code


def main(argv: list[str]) -> int:
    if argv[:1] != ["run"]:
        print(USAGE, file=sys.stderr)
        return 2
    command = argv[2:] if argv[1:2] == ["--"] else argv[1:]
    if not command:
        print(USAGE, file=sys.stderr)
        return 2
    return run(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
