"""The machine: what it is (CPU, cores, kernel, interpreters), and where its CPU time went
during a measurement (the server's process group, the services it uses such as a
database, our own processes, everybody else), so that a round which other work on this
shared machine disturbed is marked."""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from harness import REPO

CORES = os.cpu_count() or 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
DISTURBED_CORES = 0.2  # other processes' CPU above which a round is marked disturbed
LOAD_GENERATORS = ("wrk", "h2load", "node")  # other benchmarks' clients, waited out
INTERPRETERS = {  # key: (environment variable, the build ci/provision caches)
    "ft": ("MUMMY_PYTHON_FT", Path.home() / ".cache/mummy/cpython-3.13.5-ft/bin/python3.13t"),
    "gil": ("MUMMY_PYTHON_GIL", Path.home() / ".cache/mummy/cpython-3.13.5-gil/bin/python3.13"),
}
DESCRIBE = (
    "import json, sys, sysconfig; print(json.dumps({'version': sys.version.split()[0],"
    " 'free_threaded_build': bool(sysconfig.get_config_var('Py_GIL_DISABLED')),"
    " 'base': sys.base_prefix, 'executable': sys.executable}))"
)


@dataclass(frozen=True)
class Interpreter:
    key: str  # "ft" or "gil"
    base: Path  # the interpreter peers' venvs are made from
    venv_python: Path  # .venv-<key>/bin/python: mummy runs here
    version: str
    free_threaded: bool

    @property
    def label(self) -> str:
        return ".".join(self.version.split(".")[:2]) + ("t" if self.free_threaded else "")

    def describe(self) -> dict[str, object]:
        return {
            "base": str(self.base),
            "venv_python": str(self.venv_python.relative_to(REPO)),
            "version": self.version,
            "free_threaded_build": self.free_threaded,
        }


def find_interpreters() -> tuple[dict[str, Interpreter], dict[str, str]]:
    """The interpreters found ($MUMMY_PYTHON_FT/GIL, else the cached builds) and why any
    other is missing."""
    found, missing = {}, {}
    for key, (variable, default) in INTERPRETERS.items():
        base = Path(os.environ.get(variable) or default)
        venv_python = REPO / f".venv-{key}/bin/python"
        if not base.exists():
            missing[key] = f"no interpreter at {base} (set ${variable})"
            continue
        if not venv_python.exists():
            missing[key] = f"{venv_python.relative_to(REPO)} missing: run ./ci/provision"
            continue
        done = subprocess.run([str(base), "-c", DESCRIBE], capture_output=True, text=True)
        info = json.loads(done.stdout)
        found[key] = Interpreter(
            key, base, venv_python, info["version"], info["free_threaded_build"]
        )
    return found, missing


def first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    return ((done.stdout or done.stderr).strip().splitlines() or ["?"])[0]


def describe() -> dict[str, object]:
    """CPU model, cores, kernel and the time."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": model,
        "cores": CORES,
        "kernel": platform.release(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def mummy_revision() -> dict[str, object]:
    """The commit of the tree and whether mummy/ differs from it: taken when the copy of
    mummy/ that the servers run is made."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "mummy"], capture_output=True, text=True)
    return {
        "mummy_commit": head.stdout.strip() or "unknown",
        "mummy_uncommitted_changes": bool(dirty.stdout.strip()),
    }


# CPU accounting from /proc.


@dataclass(frozen=True)
class Proc:
    pgrp: int
    ppid: int
    ticks: int  # utime + stime
    name: str


def read_procs() -> dict[int, Proc]:
    procs = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, tail = stat.read_text().rpartition(")")
        except OSError:
            continue
        fields = tail.split()  # fields[0] is the state, then ppid, pgrp, ...
        if len(fields) >= 13:
            ticks = int(fields[11]) + int(fields[12])
            pid = int(stat.parent.name)
            procs[pid] = Proc(int(fields[2]), int(fields[1]), ticks, head.partition("(")[2])
    return procs


def machine_busy_ticks() -> int:
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks[:8]) - ticks[3] - ticks[4]  # all but idle and iowait


@dataclass(frozen=True)
class ThreadTicks:
    pid: int  # the process it belongs to
    name: str  # its kernel name: mummy names its threads mummy-io, mummy-io-N, mummy-worker-N
    ticks: int  # utime + stime


def thread_ticks(pgrp: int, procs: dict[int, Proc]) -> dict[int, ThreadTicks]:
    """Every thread of the processes in a group, by thread id."""
    threads = {}
    for pid, proc in procs.items():
        if proc.pgrp != pgrp:
            continue
        for stat in Path(f"/proc/{pid}/task").glob("[0-9]*/stat"):
            try:
                head, _, tail = stat.read_text().rpartition(")")
            except OSError:
                continue
            fields = tail.split()
            name = head.partition("(")[2]
            threads[int(stat.parent.name)] = ThreadTicks(
                pid, name, int(fields[11]) + int(fields[12])
            )
    return threads


def process_tree(roots: Collection[int], procs: dict[int, Proc]) -> set[int]:
    """The live processes among `roots` and all their descendants."""
    tree, grew = {pid for pid in roots if pid in procs}, True
    while grew:
        more = {pid for pid, p in procs.items() if p.ppid in tree and pid not in tree}
        tree |= more
        grew = bool(more)
    return tree


def own_seconds() -> float:
    """CPU seconds of this process and of its children already reaped (the load
    generators run with subprocess.run)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass
class CpuShares:
    """Cores used over an interval."""

    server: float | None  # the server's process group
    client: float  # this process and its children: the load generator
    other: float  # everything else on the machine
    service: float | None  # the services' process trees (a database); None: no services
    busiest_thread: float | None  # the server's busiest thread (1.0: it never waited)
    busiest_others: list[str] = field(default_factory=list)
    io_loops: list[float] = field(default_factory=list)  # each mummy IO thread (mummy-io*)
    processes: list[float] = field(default_factory=list)  # each process of the server's group

    @property
    def disturbed(self) -> bool:
        return self.other > DISTURBED_CORES


class CpuMeter:
    """Started before a measurement and read after it. `services`: the root pids of the
    services the server uses (a PostgreSQL postmaster, whose backends each lead a process
    group of their own, hence trees, not groups); their CPU is counted apart, not as
    other processes'."""

    def __init__(self, server_pgrp: int | None, services: Collection[int] = ()) -> None:
        self.pgrp = server_pgrp
        self.services = tuple(services)
        self.procs = read_procs()
        self.threads = thread_ticks(server_pgrp, self.procs) if server_pgrp else {}
        self.busy = machine_busy_ticks()
        self.own = own_seconds()
        self.when = time.monotonic()

    def _descendants(self, procs: dict[int, Proc]) -> int:
        """Ticks of our live descendants outside the server's group (load generators, and
        what they start)."""
        ours = process_tree([os.getpid()], procs) - {os.getpid()}
        return sum(procs[pid].ticks for pid in ours if procs[pid].pgrp != self.pgrp)

    def _service_ticks(self, procs: dict[int, Proc]) -> dict[int, int]:
        return {pid: procs[pid].ticks for pid in process_tree(self.services, procs)}

    def read(self) -> CpuShares:
        procs = read_procs()
        elapsed = max(time.monotonic() - self.when, 1e-6)

        def group(snapshot: dict[int, Proc]) -> int:
            return sum(p.ticks for p in snapshot.values() if p.pgrp == self.pgrp)

        server = (group(procs) - group(self.procs)) / CLK_TCK if self.pgrp else 0.0
        live = (self._descendants(procs) - self._descendants(self.procs)) / CLK_TCK
        client = own_seconds() - self.own + live
        # A backend that started during the measurement counts from zero; one that ended
        # before its end is lost (as any process's would be).
        started, services = self._service_ticks(self.procs), self._service_ticks(procs)
        service = sum(t - started.get(pid, 0) for pid, t in services.items()) / CLK_TCK
        busy = (machine_busy_ticks() - self.busy) / CLK_TCK
        others = []
        me = os.getpid()
        for pid, proc in procs.items():
            if proc.pgrp in (self.pgrp, os.getpgrp()) or pid == me or pid in services:
                continue
            earlier = self.procs.get(pid)
            used = (proc.ticks - (earlier.ticks if earlier else 0)) / CLK_TCK / elapsed
            if used >= 0.05:
                others.append((used, f"{command_line(pid, proc.name)} ({used:.2f})"))
        others.sort(reverse=True)
        busiest = None
        loops: list[float] = []
        per_process: dict[int, float] = {}
        if self.pgrp:
            after = thread_ticks(self.pgrp, procs)
            used = {}
            for tid, thread in after.items():
                earlier = self.threads.get(tid)
                share = (thread.ticks - (earlier.ticks if earlier else 0)) / CLK_TCK / elapsed
                used[tid] = share
                per_process[thread.pid] = per_process.get(thread.pid, 0.0) + share
                if thread.name.startswith("mummy-io"):
                    loops.append(share)
            busiest = max(used.values(), default=0.0)
        return CpuShares(
            server=server / elapsed if self.pgrp else None,
            client=client / elapsed,
            other=max(busy - server - client - service, 0.0) / elapsed,
            service=service / elapsed if self.services else None,
            busiest_thread=busiest,
            busiest_others=[text for _, text in others[:3]],
            io_loops=sorted(loops, reverse=True),
            processes=sorted(per_process.values(), reverse=True),
        )


def command_line(pid: int, name: str) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return name
    return (" ".join(raw.replace(b"\0", b" ").decode(errors="replace").split()) or name)[:70]


def other_load_generators() -> list[str]:
    """wrk, h2load or node processes that are not ours: another benchmark is running."""
    me = os.getpid()
    return [
        f"{p.name} (pid {pid})"
        for pid, p in read_procs().items()
        if p.name in LOAD_GENERATORS and p.ppid != me
    ]


def busy_cores(seconds: float) -> float:
    before = machine_busy_ticks()
    time.sleep(seconds)
    return (machine_busy_ticks() - before) / CLK_TCK / seconds


def wait_until_quiet(max_wait_s: float, settle_s: float) -> list[str]:
    """Wait (up to max_wait_s) while another benchmark's load generator runs, then up to
    settle_s for the machine to go idle. Returns the load generators still running when
    the wait ran out (the round runs anyway, and is likely marked disturbed)."""
    deadline = time.monotonic() + max_wait_s
    told = False
    while busy := other_load_generators():
        if time.monotonic() > deadline:
            return busy
        if not told:
            print(f"    [waiting for {', '.join(busy)}]", flush=True)
            told = True
        time.sleep(2)
    settle_until = time.monotonic() + settle_s
    while time.monotonic() < settle_until and busy_cores(0.5) > DISTURBED_CORES:
        pass
    return []
