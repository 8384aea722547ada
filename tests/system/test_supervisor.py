"""`python -m mummy APP --processes N`: the children share the port, a dead child is
replaced (with backoff when it keeps dying), SIGTERM drains them all, and a SIGHUP
rolling restart under load loses no request."""

from __future__ import annotations

import collections
import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from tests.servers import HANG_S, ServerProcess, wait_for

# os.getpid() of the child that answered; /crash kills that child; /slow waits for a file.
APP = """
import os, pathlib, time

def handler(request):
    if request.path == "/crash":
        os._exit(3)
    if request.path == "/slow":
        pathlib.Path(os.environ["MARK"]).write_text("started")
        time.sleep(1.0)
    request.respond(200, {"Content-Type": "text/plain"}, str(os.getpid()))
"""


def supervised(tmp_path: Path, *args: str) -> ServerProcess:
    (tmp_path / "pidapp.py").write_text(APP)
    argv = [sys.executable, "-m", "mummy", "pidapp:handler", "--host", "127.0.0.1"]
    argv += ["--port", "{port}", "--workers", "2", *args]
    env = {**os.environ, "MARK": str(tmp_path / "mark")}
    return ServerProcess(argv, cwd=tmp_path, env=env)


def get(port: int, path: str = "/", keep: http.client.HTTPConnection | None = None) -> str:
    conn = keep or http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_S)
    conn.request("GET", path, headers={} if keep else {"Connection": "close"})
    response = conn.getresponse()
    body = response.read().decode()
    assert response.status == 200, (response.status, body)
    if keep is None:
        conn.close()
    return body


def children(supervisor: ServerProcess) -> set[int]:
    pid = supervisor.proc.pid
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def pids_answering(port: int, wanted: set[int] | int) -> collections.Counter[int]:
    """Requests answered by each PID, over fresh connections from 4 threads, until
    `wanted` (a count of PIDs, or a set that must all be seen) or HANG_S."""
    seen: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def enough() -> bool:
        return len(seen) >= wanted if isinstance(wanted, int) else wanted <= set(seen)

    def client() -> None:
        while not enough():
            pid = int(get(port))
            with lock:
                seen[pid] += 1

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_S)
    return seen


def test_answers_come_from_every_child_and_each_is_the_supervisors(tmp_path: Path) -> None:
    with supervised(tmp_path, "--processes", "2") as server:
        server.wait_for_output("child 1 (pid")
        assert wait_for(lambda: server.output.count("is listening") == 2), server.output
        kids = children(server)
        assert len(kids) == 2
        assert set(pids_answering(server.port, kids)) == kids
        assert server.stop() == 0, server.output
        assert not any(Path(f"/proc/{pid}").exists() for pid in kids)


def test_io_threads_in_each_child(tmp_path: Path) -> None:
    with supervised(tmp_path, "--processes", "2", "--io-threads", "2") as server:
        assert wait_for(lambda: server.output.count("2 IO threads") == 2), server.output
        assert len(pids_answering(server.port, 2)) == 2
        assert server.stop() == 0, server.output


def test_a_killed_child_is_replaced(tmp_path: Path) -> None:
    with supervised(tmp_path, "--processes", "2") as server:
        assert wait_for(lambda: len(children(server)) == 2)
        first = children(server)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        server.wait_for_output(f"(pid {victim}) exited with status -9")
        assert wait_for(lambda: len(children(server) - first) == 1), server.output
        replacement = children(server) - first
        assert victim not in children(server)
        assert set(pids_answering(server.port, replacement | (first - {victim}))) >= replacement
        assert server.stop() == 0, server.output


def test_a_child_that_keeps_dying_is_restarted_with_growing_delays(tmp_path: Path) -> None:
    with supervised(tmp_path, "--processes", "1") as server:
        delays = []
        for crash in range(3):
            assert wait_for(lambda n=crash + 1: server.output.count("is listening") == n)
            try:
                get(server.port, "/crash")
            except (ConnectionError, http.client.HTTPException):
                pass  # the child died without answering: that is the point
            server.wait_for_output("restarting it in", timeout=HANG_S)
            assert wait_for(lambda n=crash: len(re.findall("restarting it in", server.output)) > n)
            delays = [float(d) for d in re.findall(r"restarting it in ([\d.]+) s", server.output)]
        # The first death after start counts as quick too: at once, then 0.5 s, 1 s.
        assert delays == [0.0, 0.5, 1.0], server.output
        assert wait_for(lambda: server.output.count("is listening") == 4), server.output
        assert server.stop() == 0, server.output


def test_an_app_that_does_not_import_stops_the_supervisor_with_status_2(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise ImportError('no such thing')\n")
    argv = [sys.executable, "-m", "mummy", "broken:handler", "--port", "0", "--processes", "2"]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == 2, done.stderr
    assert "failed to start" in done.stderr


def test_processes_flag_errors(tmp_path: Path) -> None:
    for extra in (["--processes", "0"], ["--processes", "2", "--reload"]):
        argv = [sys.executable, "-m", "mummy", "x:y", "--port", "0", *extra]
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=HANG_S)
        assert done.returncode == 2 and "error:" in done.stderr, done.stderr


def test_sigterm_drains_every_child(tmp_path: Path) -> None:
    with supervised(tmp_path, "--processes", "2") as server:
        assert wait_for(lambda: server.output.count("is listening") == 2)
        kids = children(server)
        answer: list[str] = []
        slow = threading.Thread(target=lambda: answer.append(get(server.port, "/slow")))
        slow.start()
        assert wait_for((tmp_path / "mark").exists)  # the handler is running
        assert server.stop(signal.SIGTERM) == 0, server.output
        slow.join(HANG_S)
        assert answer and int(answer[0]) in kids  # answered before its child exited
        assert not any(Path(f"/proc/{pid}").exists() for pid in kids)


def test_sighup_restarts_every_child_under_load_and_loses_no_request(tmp_path: Path) -> None:
    with supervised(tmp_path, "--processes", "2") as server:
        assert wait_for(lambda: server.output.count("is listening") == 2)
        before = children(server)
        stop = threading.Event()
        answered: collections.Counter[str] = collections.Counter()
        failures: list[str] = []
        lock = threading.Lock()

        def client(keep_alive: bool) -> None:
            conn = None
            while not stop.is_set():
                try:
                    if keep_alive and conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HANG_S)
                    pid = get(server.port, keep=conn) if keep_alive else get(server.port)
                    with lock:
                        answered[pid] += 1
                    if conn is not None and conn.sock is None:  # Connection: close
                        conn = None
                except Exception as exc:  # every failure is a lost request
                    with lock:
                        failures.append(repr(exc))
                    conn = None

        threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for restart in (1, 2):
            assert wait_for(lambda n=100 * restart: sum(answered.values()) > n)
            server.send_signal(signal.SIGHUP)
            assert wait_for(lambda n=restart: server.output.count("rolling restart done") == n)
        total = sum(answered.values())
        assert wait_for(lambda: sum(answered.values()) > total + 100)  # served after it too
        stop.set()
        for thread in threads:
            thread.join(HANG_S)
        assert wait_for(lambda: len(children(server)) == 2)  # the old ones drained and left
        after = children(server)
        assert failures == []
        assert len(after) == 2 and not after & before
        assert {int(pid) for pid in answered} >= after  # the new children served too
        assert server.stop() == 0, server.output


def test_the_supervisors_metrics_cover_every_child_and_survive_a_rolling_restart(
    tmp_path: Path,
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from tests.servers import free_port

    metrics_port = free_port()

    def answered() -> float:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=HANG_S) as response:
            text = response.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "mummy_requests_total"
        )

    with supervised(tmp_path, "--processes", "2", "--metrics-port", str(metrics_port)) as server:
        assert wait_for(lambda: server.output.count("is listening") == 2)
        seen = pids_answering(server.port, children(server))  # both children answer
        for _ in range(20):
            get(server.port)
        total = 20 + seen.total()
        # Each child pushes its counts every second: the sum of both arrives.
        assert len(seen) == 2 and wait_for(lambda: answered() == total), answered()
        server.send_signal(signal.SIGHUP)
        server.wait_for_output("rolling restart done")
        assert wait_for(lambda: len(children(server)) == 2)  # the old children have left
        # Their counts stay, counted once; the new children add theirs.
        assert answered() == total
        for _ in range(10):
            get(server.port)
        assert wait_for(lambda: answered() == total + 10), answered()
        assert server.stop() == 0, server.output
