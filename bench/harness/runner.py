"""Rounds: every cell of a driver measured once per round, rounds one after another (A B
A B ...) within one invocation, so that a noisy minute on this shared machine lands in
one round of many cells rather than in every round of one.

A driver's plan is a list of groups: one server configuration (started afresh each
round) and the workloads measured on it in turn. Before each group the run waits for
other benchmarks to finish and the machine to settle; a measurement during which other
processes used more than machine.DISTURBED_CORES is tried again (--retries) and, if
still over, kept and marked disturbed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import APPS, REPO, procs
from harness.machine import CpuMeter, Interpreter, wait_until_quiet
from harness.peers import PINNED, PeerUnavailable, ensure_venv
from harness.results import Cell, Round


@dataclass(frozen=True)
class ServerSpec:
    """A server on an interpreter with its settings; `{port}` in argv is filled in."""

    name: str
    interpreter: Interpreter
    settings: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    protocol: str = "http1"  # how GET /gil is asked when probing it: "http1" or "h2"

    def command(self, port: int) -> list[str]:
        return [arg.replace("{port}", str(port)) for arg in self.argv]


@dataclass
class Running:
    """What a workload sees of the server it measures (no server: micro-benchmarks)."""

    port: int
    server: procs.Server | None


@dataclass
class Sample:
    metrics: dict[str, Any]
    command: list[str]
    error: str | None = None


@dataclass
class Workload:
    name: str
    params: dict[str, Any]
    measure: Callable[[Running, float], Sample]
    warmup: Callable[[Running], None] | None = None
    main: tuple[str, str] = ("rps", "req/s")  # the metric printed while running, its unit


@dataclass
class Group:
    spec: ServerSpec | None
    workloads: list[Workload]
    label: str = ""  # for a group without a server
    interpreter: str = ""
    once: bool = False  # measured in the first round only (a soak is one long run)
    services: tuple[int, ...] = ()  # root pids of what the server uses (a database)
    cells: list[Cell] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    quick: bool
    rounds: int
    duration: float
    retries: int
    servers: frozenset[str] | None  # peers wanted; None: all
    max_wait_s: float
    settle_s: float


class Context:
    """What a driver builds its plan from: the options, the interpreters found, the mummy
    code to run, and the peers' venvs (made on first use). What the driver enters into
    `closing` (a database it starts) is closed once its run ends, however it ends."""

    def __init__(
        self,
        options: Options,
        interpreters: dict[str, Interpreter],
        snapshot: Path | None,
        skipped: dict[str, str],
    ) -> None:
        self.options = options
        self.interpreters = interpreters
        self.snapshot = snapshot
        self.skipped = skipped
        self.peers: dict[str, Any] = {}
        self.closing = contextlib.ExitStack()

    @property
    def quick(self) -> bool:
        return self.options.quick

    def warmup(self, seconds: float) -> float:
        """A load generator's warm-up: none in a --quick smoke run."""
        return 0.0 if self.quick else seconds

    def builds(self, *keys: str) -> list[Interpreter]:
        """The interpreters among `keys` (default: both) that this run has."""
        return [self.interpreters[k] for k in keys or ("ft", "gil") if k in self.interpreters]

    def mummy(
        self,
        interp: Interpreter,
        script: str,
        args: list[str],
        settings: str,
        protocol: str = "http1",
        env: Mapping[str, str] | None = None,
    ) -> ServerSpec:
        """A bench app in bench/apps/ on mummy, from the copy of mummy/ made at the start;
        `env`: variables for the server besides its PYTHONPATH."""
        path = (("PYTHONPATH", str(self.snapshot)),) if self.snapshot else ()
        argv = (str(interp.venv_python), str(APPS / script), "{port}", *args)
        return ServerSpec("mummy", interp, settings, argv, (*path, *(env or {}).items()), protocol)

    def peer_spec(
        self,
        name: str,
        interp: Interpreter,
        settings: str,
        argv: list[str],
        protocol: str = "http1",
        env: Mapping[str, str] | None = None,
    ) -> ServerSpec:
        """A peer serving a twin app from bench/apps/; `env` as for mummy()."""
        variables = (("PYTHONPATH", str(APPS)), *(env or {}).items())
        return ServerSpec(name, interp, settings, tuple(argv), variables, protocol)

    def peer(self, name: str, interp: Interpreter) -> Path | None:
        """The peer's venv on that interpreter, or None (not wanted, or it failed: noted
        in `skipped`)."""
        servers = self.options.servers
        if servers is not None and not {name, name.partition("-")[0]} & servers:
            return None
        key = f"{name}-{interp.key}"
        if key in self.skipped:
            return None
        try:
            venv, found = ensure_venv(name, interp.key, interp.base)
        except PeerUnavailable as exc:
            self.skipped[key] = str(exc)
            print(f"  {key}: skipped: {exc}", flush=True)
            return None
        installed = found["distributions"]
        assert isinstance(installed, dict)
        self.peers[key] = {
            "pinned": list(PINNED[name]["install"]),
            "gil_after_import": found["gil_after_import"],
            "installed": installed,
        }
        return venv


def measure_once(
    workload: Workload, running: Running, seconds: float, services: tuple[int, ...]
) -> Round:
    if workload.warmup is not None:
        workload.warmup(running)
    server = running.server
    offset = server.log_size() if server else 0
    meter = CpuMeter(server.pid if server else None, services)
    sample = workload.measure(running, seconds)
    shares = meter.read()
    error = sample.error
    rate = sample.metrics.get(workload.main[0])
    if shares.io_loops and rate:
        # The IO threads' CPU per request (or per echo): 1e6 / this is one loop's ceiling.
        sample.metrics["io_loop_cores"] = [round(x, 3) for x in shares.io_loops]
        sample.metrics["io_us_per_request"] = sum(shares.io_loops) / rate * 1e6
    if len(shares.processes) > 1:
        sample.metrics["process_cores"] = [round(x, 3) for x in shares.processes]
    if server is not None and server.proc.poll() is not None:
        error = f"the server exited (status {server.proc.returncode}) during the run"
    return Round(
        round=0,
        metrics=sample.metrics,
        server_cpu=shares.server,
        client_cpu=shares.client,
        other_cpu=shares.other,
        service_cpu=shares.service,
        busiest_thread=shares.busiest_thread,
        busiest_others=shares.busiest_others,
        disturbed=shares.disturbed,
        server_output=server.output_since(offset)[:5] if server else [],
        error=error,
        load_command=sample.command,
    )


def measure(
    workload: Workload, running: Running, options: Options, services: tuple[int, ...] = ()
) -> Round:
    """One round of one cell: the least disturbed of up to 1 + retries tries."""
    tries = [measure_once(workload, running, options.duration, services)]
    while tries[-1].disturbed and not tries[-1].error and len(tries) <= options.retries:
        print(f"[disturbed ({tries[-1].other_cpu:.2f} cores), again] ", end="", flush=True)
        wait_until_quiet(options.max_wait_s, options.settle_s)
        tries.append(measure_once(workload, running, options.duration, services))
    kept = min(tries, key=lambda r: (r.error is not None, r.other_cpu or 0.0))
    key = workload.main[0]
    kept.discarded = [
        {key: r.metrics.get(key), "other_cpu": r.other_cpu} for r in tries if r is not kept
    ]
    kept.tries = len(tries)
    return kept


def fmt_round(r: Round, main: tuple[str, str]) -> str:
    value = r.metrics.get(main[0])
    text = "—" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
    text = f"{text:>9} {main[1]}"
    if (p99 := r.metrics.get("p99_ms")) is not None:
        text += f"  p99 {p99:7.2f} ms"
    if r.server_cpu is not None:
        text += f"  cpu {r.server_cpu:.2f}"
    if r.service_cpu is not None:
        text += f"  services {r.service_cpu:.2f}"
    text += f"  other {r.other_cpu or 0:.2f}" + ("  DISTURBED" if r.disturbed else "")
    return text + (f"  error: {r.error}" if r.error else "")


def run_plan(groups: list[Group], options: Options) -> list[Cell]:
    """Every group once per round, rounds interleaved; returns the cells."""
    for group in groups:
        spec = group.spec
        for w in group.workloads:
            name = spec.name if spec else group.label
            label = spec.interpreter.label if spec else group.interpreter
            settings = spec.settings if spec else ""
            group.cells.append(Cell(name, label, settings, w.name, w.params))
    for number in range(1, options.rounds + 1):
        print(f"  round {number} of {options.rounds}", flush=True)
        for group in groups:
            if group.once and number > 1:
                continue
            wait_until_quiet(options.max_wait_s, options.settle_s)
            run_group(group, number, options)
    return [cell for group in groups for cell in group.cells]


def run_group(group: Group, number: int, options: Options) -> None:
    spec = group.spec
    port = procs.free_port()
    server = gil = None
    failed = None
    if spec is not None:
        log = f"{spec.name}-{spec.interpreter.key}-{spec.settings}-{group.workloads[0].name}"
        server = procs.Server(spec.command(port), log, APPS, dict(spec.env))
        try:
            gil = server.wait_ready(spec.protocol, port)
        except procs.ServerFailed as exc:
            failed = f"{exc} (log: {server.log_path.relative_to(REPO)})"
    try:
        for workload, cell in zip(group.workloads, group.cells, strict=True):
            print(
                f"    {cell.server:<16} {cell.interpreter:<6} {cell.settings[:34]:<34}"
                f" {workload.name[:24]:<24} ",
                end="",
                flush=True,
            )
            if failed:
                result = Round(0, {}, None, None, None, error=failed)
            else:
                result = measure(workload, Running(port, server), options, group.services)
            result.round = number
            result.gil_enabled = gil
            result.server_command = spec.command(port) if spec else []
            cell.rounds.append(result)
            print(fmt_round(result, workload.main), flush=True)
    finally:
        if server is not None:
            server.stop()
