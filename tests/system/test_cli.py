"""`python -m mummy` in a subprocess: serving a handler and a WSGI app, stopping on
signals, reloading on a source change, and the exit codes of its failures."""

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import mummy
from tests.client import exchange
from tests.servers import ROOT, ServerProcess, free_port, wait_for

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def cli(*args: str) -> list[str]:
    """`python -m mummy ARGS` on 127.0.0.1 and the port ServerProcess picks."""
    return [sys.executable, "-m", "mummy", *args, "--host", "127.0.0.1", "--port", "{port}"]


def test_cli_serves_a_handler_and_stops_on_sigterm() -> None:
    with ServerProcess(cli("examples.basic:handler", "--workers", "2")) as server:
        response = exchange(server.port, REQUEST)
        assert response.endswith(b"Hello, World!")
        assert server.stop(signal.SIGTERM) == 0, server.output


def test_cli_reports_a_bad_target() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mummy", "examples.basic:nothing"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "has no attribute 'nothing'" in out.stderr


def test_cli_serves_a_wsgi_app_with_access_log() -> None:
    command = cli("--wsgi", "tests.system.test_cli:wsgi_app", "--workers", "2", "--access-log")
    with ServerProcess(command) as server:
        response = exchange(server.port, REQUEST)
        assert response.startswith(b"HTTP/1.1 200 OK") and response.endswith(b"wsgi says hi")
        assert server.stop(signal.SIGTERM) == 0, server.output
    assert '"GET / HTTP/1.1" 200' in server.output  # the access log line


def wsgi_app(environ: dict, start_response) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi says hi"]


def test_second_sigint_exits_at_once() -> None:
    with (
        ServerProcess(cli("tests.system.test_cli:never_returns", "--workers", "1")) as server,
        socket.create_connection(("127.0.0.1", server.port)) as sock,
    ):
        sock.sendall(REQUEST)  # a handler that never returns holds the graceful close
        server.wait_for_output("handler started")
        server.send_signal(signal.SIGINT)
        server.wait_for_output("received SIGINT, closing gracefully")
        assert server.proc.poll() is None  # still closing gracefully, for the handler
        assert server.stop(signal.SIGINT) == 130, server.output


def never_returns(request: mummy.Request) -> None:
    print("handler started", flush=True)
    threading.Event().wait()


def test_reload_restarts_on_source_change(tmp_path: Path) -> None:
    app = tmp_path / "reloadapp.py"
    app.write_text("def handler(r):\n    r.respond(200, None, 'one')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = cli("reloadapp:handler", "--reload", "--workers", "1")
    with ServerProcess(command, cwd=tmp_path, env=env) as server:
        assert exchange(server.port, REQUEST).endswith(b"one")
        app.write_text("def handler(r):\n    r.respond(200, None, 'two')\n")
        # A later mtime than the one the reloader saw, however coarse the clock.
        mtime = app.stat().st_mtime + 2
        os.utime(app, (mtime, mtime))
        server.wait_for_output("source changed: restarting")

        def answers_two() -> bool:
            try:
                return exchange(server.port, REQUEST).endswith(b"two")
            except OSError:
                return False  # between the old server's exit and the new one's start

        assert wait_for(answers_two), server.output
        server.stop(signal.SIGINT)


def test_the_cli_exits_non_zero_when_the_loop_fails(tmp_path) -> None:
    port = free_port()
    app_file = tmp_path / "failing_app.py"
    app_file.write_text(
        "import threading, socket, time\n"
        "from mummy.core.loop import EventLoop\n"
        "def broken(self):\n"
        "    raise RuntimeError('the mailbox broke')\n"
        "EventLoop._take_messages = broken\n"
        "def handler(request):\n"
        "    request.respond(200, None, 'ok')\n"
        "def poke():\n"
        "    for _ in range(200):\n"
        "        try:\n"
        "            socket.create_connection(('127.0.0.1', PORT)).sendall(\n"
        "                b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
        "            return\n"
        "        except OSError:\n"
        "            time.sleep(0.05)\n"
        f"PORT = {port}\n"
        "threading.Thread(target=poke, daemon=True).start()\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mummy", "failing_app:handler", "--port", str(port)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "IO loop failed" in done.stderr
