#!/usr/bin/env python3
"""The only renderer of benchmark results: the JSON that ./bench/run writes -> the tables of
docs/performance.md, the README's performance table (between its two `bench/report.py`
markers) and the PNG charts in docs/ (bench/charts.py).

    .venv-gil/bin/python bench/report.py                    # from docs/results/*.json
    .venv-gil/bin/python bench/report.py --results bench/results --out /tmp/perf
    python3 bench/report.py --no-charts                     # no matplotlib needed

From a directory of results it takes, per driver, `<driver>.json` (what `./bench/run
--save` writes) or else the newest `<driver>-<time>.json`; a driver without results is
left out. Every figure comes from the JSON: medians over the rounds; ratios taken per
round (both sides measured moments apart), then their median; a † where a round was
disturbed by other processes. Charts need matplotlib, which has no cp313t wheel: run
this from .venv-gil.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DRIVERS = ("http1", "plumbing", "h2", "websocket", "streams", "static", "db", "compression")
DRIVERS += ("scaling", "loops", "metrics", "slowloris", "soak", "micro")
README_BEGIN = "<!-- bench/report.py: performance table begin -->"
README_END = "<!-- bench/report.py: performance table end -->"
PATH_TITLES = {
    "/": "`/`: Hello, World (13 bytes)",
    "/sleep": "`/sleep`: a handler that blocks 10 ms (asyncio.sleep on the ASGI servers)",
    "/cpu": "`/cpu`: about 1 ms of pure-Python CPU work",
}
HTTP_CHART = "http-requests-per-second.png"
GIL_CHART = "http-gil-vs-free-threaded.png"
COMPRESSION_CHART = "compression-scaling.png"

Cell = dict[str, Any]
Data = dict[str, Any]
Column = tuple[str, Callable[[Cell], str]]


# Reading and picking.


def read_results(directory: Path) -> dict[str, tuple[Path, Data]]:
    found = {}
    for driver in DRIVERS:
        runs = sorted(directory.glob(f"{driver}-*.json"))
        saved = directory / f"{driver}.json"
        path = saved if saved.exists() else (runs[-1] if runs else None)
        data = json.loads(path.read_text()) if path else {}
        if path and data["cells"]:
            found[driver] = (path, data)
    return found


def med(cell: Cell | None, key: str) -> Any:
    return None if cell is None else cell["median"].get(key)


def pick(cells: Iterable[Cell], **want: str) -> list[Cell]:
    return [c for c in cells if all(c[k] == v for k, v in want.items())]


def one(cells: Iterable[Cell], **want: str) -> Cell | None:
    return next(iter(pick(cells, **want)), None)


def free(cell: Cell) -> bool:
    return bool(cell["interpreter"].endswith("t"))


def paired_ratio(top: Cell | None, bottom: Cell | None, key: str = "rps") -> str:
    """Median over the rounds of top ÷ bottom in the same round; how many of those rounds
    neither side was disturbed, when not all."""
    if top is None or bottom is None:
        return "—"
    under = {r["round"]: r for r in bottom["rounds"] if r["metrics"].get(key)}
    pairs = [(r, under[r["round"]]) for r in top["rounds"] if r["round"] in under]
    pairs = [(a, b) for a, b in pairs if a["metrics"].get(key)]
    if not pairs:
        return "—"
    value = statistics.median(a["metrics"][key] / b["metrics"][key] for a, b in pairs)
    quiet = sum(not (a["disturbed"] or b["disturbed"]) for a, b in pairs)
    return f"{value:.2f}x" + ("" if quiet == len(pairs) else f" ({quiet}/{len(pairs)} quiet)")


# Formatting.


def num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:,.{digits}f}"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"


def metric(title: str, key: str, digits: int = 0) -> Column:
    if key.endswith("_ms"):
        return title, lambda c: ms(med(c, key))
    return title, lambda c: num(med(c, key), digits)


SERVER: Column = ("server", lambda c: c["server"])
INTERP: Column = (
    "interpreter",
    lambda c: (
        c["interpreter"] + (" (GIL re-enabled!)" if free(c) and med(c, "gil_enabled") else "")
    ),
)
SETTINGS: Column = ("settings", lambda c: c["settings"])
WORKLOAD: Column = ("workload", lambda c: c["workload"])
RPS = metric("req/s", "rps")
P50, P99 = metric("p50", "p50_ms"), metric("p99", "p99_ms")
CPU = metric("server CPU (cores)", "server_cpu", 2)
SERVICE_CPU = metric("PostgreSQL CPU (cores)", "service_cpu", 2)
THREAD = metric("busiest thread (cores)", "busiest_thread", 2)


def table(header: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return out + ["| " + " | ".join(row) + " |" for row in rows] + [""]


class Notes:
    """The † marks of a section and the footnotes they point to."""

    def __init__(self) -> None:
        self.lines: dict[str, None] = {}

    def mark(self, cell: Cell) -> str:
        rounds, notes = cell["rounds"], []
        if cell["disturbed_rounds"]:
            worst = max(rounds, key=lambda r: r["other_cpu"] or 0)
            busiest = "; ".join(worst["busiest_others"]) or "short-lived processes"
            notes.append(
                f"{cell['disturbed_rounds']} of {len(rounds)} rounds disturbed (other"
                f" processes up to {worst['other_cpu']:.2f} cores: {busiest})"
            )
        notes += [f"error: {e}" for e in dict.fromkeys(r["error"] for r in rounds if r["error"])]
        output = list(dict.fromkeys(line for r in rounds for line in r["server_output"]))
        if output:
            notes.append(f"server output: `{output[0][:120]}` ({len(output)} lines)")
        if not notes:
            return ""
        who = f"{cell['server']} {cell['interpreter']} {cell['settings']}, {cell['workload']}"
        self.lines[f"- {who}: {'; '.join(notes)}"] = None
        return " †"

    def table(self, cells: list[Cell], columns: list[Column], numeric_from: int) -> list[str]:
        rows = [[get(c) for _, get in columns] for c in cells]
        for row, c in zip(rows, cells, strict=True):
            row[0] += self.mark(c)
        return table([title for title, _ in columns], rows, numeric_from)

    def render(self) -> list[str]:
        return ["† From the rounds:", "", *self.lines, ""] if self.lines else []


def source(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def header(path: Path, data: Data) -> list[str]:
    m, s = data["machine"], data["settings"]
    mummy = m["mummy_commit"][:10] + (" + changes" if m["mummy_uncommitted_changes"] else "")
    builds = ", ".join(f"{label} ({i['version']})" for label, i in data["interpreters"].items())
    peers = sorted({p for info in data["peers"].values() for p in info["pinned"]})
    load = next((r["load_command"] for c in data["cells"] for r in c["rounds"]), None)
    rounds = f"{s['rounds']} interleaved round{'s' * (s['rounds'] != 1)}"
    out = [f"## {data['title']}", ""]
    if data["quick"]:
        out += ["**A `--quick` smoke run: the harness working, not figures to quote.**", ""]
    text = f"From `{source(path)}`: {m['date']}, {m['cpu']}, {m['cores']} cores, Linux"
    text += f" {m['kernel']}; mummy {mummy}; {builds}"
    text += f"; peers {', '.join(peers)}" if peers else ""
    text += f". `{' '.join(data['invocation'])}`: {rounds} of {s['duration_s']:g} s per cell,"
    text += " the median shown; † marks a round during which other processes used more than"
    text += f" {s['disturbed_above_cores']} cores."
    text += f" Command, e.g.: `{shlex.join(load)}`." if load else ""
    out += [text, ""]
    if data["skipped"]:
        out += [f"Not run: {'; '.join(f'{k}: {v}' for k, v in data['skipped'].items())}.", ""]
    return out


# Sections, one per driver.


def main_rows(data: Data) -> list[Cell]:
    """HTTP/1.1 cells with the pools every server gets (mummy's worker sweep and the
    defaults group aside)."""
    s = data["settings"]
    pools = {f"workers={s['pool']}", f"workers={s['sleep_pool']}"}
    defaults = set(data["settings"].get("defaults", []))
    cells = [c for c in data["cells"] if c["settings"] not in defaults]
    return [c for c in cells if c["server"] != "mummy" or c["settings"] in pools]


def default_rows(data: Data) -> list[Cell]:
    """HTTP/1.1 cells of the defaults group: the settings a new user starts with."""
    labels = data["settings"].get("defaults", [])
    return [c for c in data["cells"] if c["settings"] in labels]


def fixed_pools(data: Data) -> list[Cell]:
    """mummy on 3.13t with `workers=N`: its fixed pools and the sweep."""
    cells = [c for c in data["cells"] if c["server"] == "mummy" and free(c)]
    return [c for c in cells if c["settings"].startswith("workers=")]


def defaults_table(data: Data, notes: Notes) -> list[str]:
    """Each path with default settings, mummy's default ÷ each row, and the best fixed
    mummy pool of the same run (its sweep) for the target 'within 10% of the best'."""
    rows, out, fixed = default_rows(data), [], fixed_pools(data)
    for path in PATH_TITLES:
        cells = sorted(pick(rows, workload=path), key=lambda c: -(med(c, "rps") or 0))
        ref = next((c for c in cells if c["server"] == "mummy"), None)
        best = max(pick(fixed, workload=path), key=lambda c: med(c, "rps") or 0, default=None)
        if ref is None:
            continue
        ratio: Column = ("mummy default ÷ row", lambda c, ref=ref: paired_ratio(ref, c))
        columns = [SERVER, INTERP, SETTINGS, RPS, P99, CPU, ratio]
        out += [
            f"#### {PATH_TITLES[path]}",
            "",
            *notes.table([*cells, *[best] * bool(best)], columns, 3),
        ]
    return out


def gil_pairs(data: Data) -> list[tuple[Cell, Cell]]:
    """(3.13t cell, GIL-build cell) of the same server, settings and path."""
    rows = main_rows(data)
    pairs = []
    for ft in (c for c in rows if free(c)):
        same = (ft["server"], ft["settings"], ft["workload"])
        gil = [
            c for c in rows if not free(c) and (c["server"], c["settings"], c["workload"]) == same
        ]
        if gil and med(ft, "rps") and med(gil[0], "rps"):
            pairs.append((ft, gil[0]))
    return pairs


def http1(data: Data, notes: Notes) -> list[str]:
    out = [f"![HTTP/1.1 req/s by server]({HTTP_CHART})", ""]
    for path, title in PATH_TITLES.items():
        rows = sorted(pick(main_rows(data), workload=path), key=lambda c: -(med(c, "rps") or 0))
        ref = next((c for c in rows if c["server"] == "mummy" and free(c)), None)
        conns: Column = ("conns", lambda c: str(c["params"]["connections"]))
        ratio: Column = ("mummy 3.13t ÷ row", lambda c, ref=ref: paired_ratio(ref, c))
        if rows:
            columns = [SERVER, INTERP, SETTINGS, conns, RPS, P99, CPU, ratio]
            out += [f"### {title}", "", *notes.table(rows, columns, 3)]
    if default_rows(data):
        out += ["### With default settings", ""]
        out += ["mummy's adaptive pool, granian's own defaults and granian with 128"]
        out += ["blocking threads; the last row of each table is mummy's best fixed pool.", ""]
        out += defaults_table(data, notes)
    sweep = fixed_pools(data)
    if len({c["settings"] for c in sweep}) > 2:
        sweep.sort(key=lambda c: (c["workload"], int(c["settings"].split("=")[1])))
        out += ["### mummy on 3.13t by number of workers", ""]
        out += notes.table(sweep, [WORKLOAD, SETTINGS, RPS, P99, CPU], 2)
    if pairs := gil_pairs(data):
        out += ["### Free-threaded vs GIL build, same server and settings", ""]
        out += [f"![3.13t ÷ 3.13 by server]({GIL_CHART})", ""]
        ft_rps: Column = ("3.13t req/s", lambda c: num(med(c, "rps")))
        gil_of = {id(ft): gil for ft, gil in pairs}
        gil_rps: Column = ("3.13 req/s", lambda c: num(med(gil_of[id(c)], "rps")))
        ratio: Column = ("3.13t ÷ 3.13", lambda c: paired_ratio(c, gil_of[id(c)]))
        columns = [SERVER, ("path", lambda c: c["workload"]), ft_rps, gil_rps, ratio]
        out += table([t for t, _ in columns], [[f(ft) for _, f in columns] for ft, _ in pairs], 2)
    return out


def plumbing(data: Data, notes: Notes) -> list[str]:
    inline = one(data["cells"], settings="inline (IO thread answers)")
    ratio: Column = ("÷ the inline ceiling", lambda c: paired_ratio(c, inline))
    return notes.table(data["cells"], [SERVER, INTERP, SETTINGS, RPS, P99, CPU, THREAD, ratio], 3)


def h2(data: Data, notes: Notes) -> list[str]:
    s = data["settings"]
    limit = s["clients"] * s["streams_per_client"] / s["sleep_s"]
    out = []
    for path in ("/", "/sleep"):
        rows = sorted(pick(data["cells"], workload=path), key=lambda c: -(med(c, "rps") or 0))
        ref = next((c for c in rows if c["server"] == "mummy" and free(c)), None)
        ratio: Column = ("mummy 3.13t ÷ row", lambda c, ref=ref: paired_ratio(ref, c))
        columns = [SERVER, INTERP, SETTINGS, RPS, P50, P99, CPU, THREAD, ratio]
        if path == "/sleep":
            share = f"of the {limit:,.0f} req/s limit"
            columns.insert(4, (share, lambda c: f"{(med(c, 'rps') or 0) / limit:.0%}"))
        if rows:
            out += [f"### {PATH_TITLES[path]}", "", *notes.table(rows, columns, 3)]
    return out


def websocket(data: Data, notes: Notes) -> list[str]:
    s, out = data["settings"], []
    echo = [c for c in data["cells"] if c["workload"].startswith("echo")]
    idle = [c for c in data["cells"] if c not in echo]
    if echo:
        deflate: Column = (
            "deflate offered / negotiated",
            lambda c: (
                f"{num(c['params']['deflate_offered'])} / {num(med(c, 'deflate_negotiated'))}"
            ),
        )
        lost: Column = ("errors / stalled", lambda c: f"{med(c, 'errors')} / {med(c, 'stalled')}")
        columns = [WORKLOAD, SERVER, INTERP, SETTINGS, deflate, metric("echoes/s", "msgs_per_s")]
        columns += [P50, P99, CPU, lost, metric("server bytes per echo", "wire_bytes_per_echo")]
        out += [f"### Echo: {s['clients']} clients, one message in flight each"]
        echo.sort(key=lambda c: (c["workload"], -(med(c, "msgs_per_s") or 0)))
        out += ["", *notes.table(echo, columns, 5)]
    if idle:
        columns = [SERVER, INTERP, metric("connections", "connections")]
        columns += [metric("failed", "failed"), metric("s to open all", "open_s", 1)]
        columns += [metric("KiB per connection", "kib_per_connection", 1)]
        columns += [metric("server threads", "server_threads")]
        columns += [metric("broadcast: queued", "broadcast_queued_ms")]
        columns += [metric("broadcast: all received", "broadcast_received_ms")]
        out += [f"### Idle connections, then {s['broadcasts']} broadcasts to all", ""]
        out += notes.table(idle, columns, 2)
    return out


def streams(data: Data, notes: Notes) -> list[str]:
    s, out = data["settings"], []
    sse = [c for c in data["cells"] if "streams" in c["params"]]
    bodies = [c for c in data["cells"] if c not in sse]
    if sse:
        columns = [SERVER, INTERP, SETTINGS, metric("streams", "streams")]
        columns += [metric("failed", "failed"), metric("s to open all", "open_s", 1)]
        columns += [metric("KiB per stream", "kib_per_stream", 1)]
        columns += [metric("server threads", "server_threads")]
        columns += [metric("broadcast: queued", "broadcast_queued_ms")]
        columns += [metric("broadcast: all received", "broadcast_received_ms")]
        n = s["broadcasts"]
        out += [f"### Open Server-Sent Events streams, then {n} broadcast{'s' * (n != 1)} to all"]
        out += ["", *notes.table(sse, columns, 3)]
    if bodies:
        columns = [SERVER, INTERP, SETTINGS, ("protocol", lambda c: c["params"]["protocol"])]
        columns += [metric("MB/s", "mb_per_s"), metric("bytes read", "bytes"), CPU, THREAD]
        size, chunk = bodies[0]["workload"].split(",")[0], s["chunk_bytes"] // 1024
        out += [f"### A streamed {size}, {chunk} KiB chunks, uncompressed, read by curl", ""]
        out += notes.table(bodies, columns, 4)
    return out


def page_cache(cell: Cell) -> str:
    """Cold: in how many rounds the file was out of the page cache; warm: how much of it
    was in."""
    rounds = [r["metrics"] for r in cell["rounds"] if "resident_before_mib" in r["metrics"]]
    if cell["params"]["cache"] == "cold":
        evicted = sum(bool(m.get("evicted")) for m in rounds)
        text = f"evicted in {evicted}/{len(rounds)} rounds"
        return text if evicted == len(rounds) else f"**{text}**"
    return f"{num(med(cell, 'resident_before_mib'))} MiB resident"


def http_version(cell: Cell) -> str:
    """What the server answered with, from curl's %{http_version} ("1" is 1.0)."""
    spoken = med(cell, "http_version")
    return "—" if spoken is None else {"1": "1.0"}.get(spoken, spoken)


def peak_rss(cell: Cell) -> str:
    """VmHWM during the download, over the server's processes."""
    kib = med(cell, "peak_rss_kib")
    return "—" if kib is None else f"{kib / 1024:,.1f} MiB"


def static(data: Data, notes: Notes) -> list[str]:
    s, out = data["settings"], []
    speed = "mb_per_s"
    for cache, what in (("cold", s["cold"]), ("warm", s["warm"])):
        cells = [c for c in data["cells"] if c["params"]["cache"] == cache]
        cells.sort(key=lambda c: -(med(c, speed) or 0))
        ref = next((c for c in cells if c["server"] == "mummy" and free(c)), None)
        ratio: Column = ("mummy 3.13t ÷ row", lambda c, ref=ref: paired_ratio(ref, c, speed))
        columns = [SERVER, INTERP, SETTINGS, ("page cache before", page_cache)]
        columns += [metric("MB/s", speed), ("HTTP", http_version)]
        columns += [("server peak RSS", peak_rss), CPU, THREAD, ratio]
        if cells:
            out += [f"### {cells[0]['workload']} ({what})", ""]
            out += notes.table(cells, columns, 4)
    if pick(data["cells"], server="http.server"):
        out += ["http.server's busiest thread reads 0: its thread per connection is gone"]
        out += ["before the CPU meter reads the threads (its server CPU is right).", ""]
    return out


def db(data: Data, notes: Notes) -> list[str]:
    s, cores = data["settings"], data["machine"]["cores"]
    text = f"`{s['query']}` of a random row of {s['rows']:,}, one per request, answered as"
    text += ' JSON `{"id": N, "randomNumber": M}` (TechEmpower\'s single query test; the'
    text += " answers checked against the table before each measurement). Every server has"
    text += f" {s['threads']} threads and a pool of {s['pool_connections']} connections"
    text += " (psycopg 3, its Python implementation over libpq; psycopg_pool). PostgreSQL"
    text += f" {s['postgres'].split()[0]} shares the {cores} cores with the server and wrk"
    text += f" ({s['postgres_settings']}); its CPU (the postmaster and its backends) is the"
    text += f" PostgreSQL column, not counted as other processes'. {s['connections']}"
    text += f" connections: TechEmpower uses {s['techempower_connections']} on many-core"
    text += " machines."
    rows = sorted(data["cells"], key=lambda c: -(med(c, "rps") or 0))
    ref = next((c for c in rows if c["server"] == "mummy" and free(c)), None)
    conns: Column = ("conns", lambda c: str(c["params"]["connections"]))
    ratio: Column = ("mummy 3.13t ÷ row", lambda c: paired_ratio(ref, c))
    columns = [SERVER, INTERP, SETTINGS, conns, RPS, P99, CPU, SERVICE_CPU, ratio]
    return [text, "", *notes.table(rows, columns, 3)]


def scaling_table(cells: list[Cell], notes: Notes) -> list[str]:
    """Per interpreter and workload: req/s ÷ req/s at workers=1, paired per round."""
    others = list(dict.fromkeys(c["settings"] for c in cells if c["settings"] != "workers=1"))
    rows = []
    for label in dict.fromkeys(c["interpreter"] for c in cells):
        for work in dict.fromkeys(c["workload"] for c in cells):
            base = one(cells, interpreter=label, workload=work, settings="workers=1")
            tops = [one(cells, interpreter=label, workload=work, settings=s) for s in others]
            marks = "".join(dict.fromkeys(notes.mark(c) for c in [base, *tops] if c))
            rows.append([label + marks, work, *(paired_ratio(t, base) for t in tops)])
    titles = [f"{s.removeprefix('workers=')} ÷ 1 worker" for s in others]
    return table(["interpreter", "workload", *titles], rows, 2)


def compression(data: Data, notes: Notes) -> list[str]:
    columns = [INTERP, ("coding", lambda c: c["workload"]), SETTINGS, RPS, P99]
    columns += [metric("body bytes (Content-Length)", "body_bytes")]
    columns += [metric("bytes per response read by wrk", "bytes_per_response"), CPU]
    out = [f"![req/s by workers]({COMPRESSION_CHART})", ""]
    out += notes.table(data["cells"], columns, 3)
    out += ["Scaling, the median over the rounds of req/s ÷ req/s at 1 worker in that round:"]
    return [*out, "", *scaling_table(data["cells"], notes)]


def scaling(data: Data, notes: Notes) -> list[str]:
    out = notes.table(data["cells"], [INTERP, SETTINGS, WORKLOAD, RPS, P99, CPU], 3)
    return out + scaling_table(data["cells"], notes)


def rate(cell: Cell) -> str:
    """req/s, or echoes/s for the WebSocket rows."""
    value = med(cell, "rps") or med(cell, "msgs_per_s")
    return num(value) + (" echo/s" if med(cell, "msgs_per_s") else "")


def loop_cores(cell: Cell) -> str:
    """Each IO thread's CPU (cores), from the last round."""
    shares = med(cell, "io_loop_cores")
    return " + ".join(f"{x:.2f}" for x in shares) if shares else "—"


def loops(data: Data, notes: Notes) -> list[str]:
    per_request = metric("IO threads' CPU µs per request", "io_us_per_request", 1)
    ceiling: Column = (
        "one loop's ceiling (1e6 ÷ µs)",
        lambda c: num(1e6 / v) if (v := med(c, "io_us_per_request")) else "—",
    )
    spread: Column = (
        "CPU per process (cores)",
        lambda c: " / ".join(f"{x:.2f}" for x in med(c, "process_cores") or []) or "—",
    )
    rate_column: Column = ("req/s or echo/s", rate)
    columns = [INTERP, SETTINGS, WORKLOAD, rate_column, P99, CPU]
    columns += [("IO threads (cores)", loop_cores), per_request, ceiling, spread]
    return notes.table(data["cells"], columns, 3)


def metrics_off(cells: list[Cell], cell: Cell) -> Cell | None:
    """The metrics-off cell beside `cell` (same interpreter)."""
    return one(
        cells, interpreter=cell["interpreter"], settings=cell["settings"].replace("on", "off")
    )


def metrics_cost(data: Data, notes: Notes) -> list[str]:
    cells = data["cells"]
    ratio: Column = (
        "metrics on ÷ off (paired rounds)",
        lambda c: paired_ratio(c, metrics_off(cells, c)) if c["settings"].endswith("on") else "",
    )
    columns = [INTERP, SETTINGS, WORKLOAD, RPS, P99, CPU, metric("scrapes", "scrapes"), ratio]
    return notes.table(cells, columns, 3)


def slowloris(data: Data, notes: Notes) -> list[str]:
    still = metric("attackers still open after header_timeout", "attackers_still_open")
    columns = [INTERP, SETTINGS, WORKLOAD, metric("normal client's requests", "requests")]
    return notes.table(data["cells"], [*columns, P50, P99, still], 3)


def soak(data: Data, notes: Notes) -> list[str]:
    out = []
    for c in data["cells"]:
        m = c["median"]
        kinds = dict.fromkeys(k.rsplit(" ", 1)[0] for k in m if k.endswith((" ok", " failed")))
        faults = [k.removesuffix(" as expected") for k in m if k.endswith(" as expected")]
        out += [f"### {c['interpreter']}{notes.mark(c)}: {c['workload']}", ""]
        rows = [[k, num(m[f"{k} ok"]), num(m[f"{k} failed"])] for k in kinds]
        out += table(["well-formed", "answered correctly", "failed"], rows, 1)
        rows = [[k, num(m[f"{k} as expected"]), num(m[f"{k} otherwise"])] for k in faults]
        out += table(["fault", "handled as expected", "otherwise"], rows, 1)
        checks = [
            f"{k[7:]}: {'pass' if v else '**FAIL**'}" for k, v in m.items() if k[:7] == "check: "
        ]
        text = f"fds {m['fds start']} at the start, {m['fds peak']} at the peak, {m['fds end']}"
        text += f" after the load; threads {m['threads start']} / {m['threads peak']} /"
        text += f" {m['threads end']}; RSS {m['rss_mb start']:.1f} MB idle,"
        text += f" {m['rss_mb after_warmup']:.1f} MB after the warm-up, {m['rss_mb end']:.1f}"
        text += f" MB at the end ({m['rss_mb growth_after_warmup']:+.1f} MB"
        text += ", flagged" * bool(m["rss_growth_flag"]) + f"); {num(m['raising_handler_500s'])}"
        text += f" 500s from the raising handler. Checks: {'; '.join(checks)}."
        out += [text, ""]
    return out


def micro(data: Data, notes: Notes) -> list[str]:
    out = []
    for script in dict.fromkeys(c["server"] for c in data["cells"]):
        group = pick(data["cells"], server=script)
        keys = [
            k for k in dict.fromkeys(k for c in group for k in c["median"]) if k not in CPU_KEYS
        ]
        rows = [
            [k] + [num(v := med(c, k), 0 if (v or 0) >= 100 else 2) for c in group] for k in keys
        ]
        labels = [c["interpreter"] + notes.mark(c) for c in group]
        out += [f"### `bench/micro/{script}`: {group[0]['workload']}", ""]
        out += table(["case", *labels], rows, 1)
    return out


CPU_KEYS = {"server_cpu", "client_cpu", "other_cpu", "busiest_thread", "gil_enabled"}
SECTIONS: dict[str, Callable[[Data, Notes], list[str]]] = {
    "http1": http1,
    "plumbing": plumbing,
    "h2": h2,
    "websocket": websocket,
    "streams": streams,
    "static": static,
    "db": db,
    "compression": compression,
    "scaling": scaling,
    "loops": loops,
    "metrics": metrics_cost,
    "slowloris": slowloris,
    "soak": soak,
    "micro": micro,
}


def performance_page(results: dict[str, tuple[Path, Data]]) -> str:
    out = ["# Performance", ""]
    out += [
        "Generated by `bench/report.py` from the JSON that `./bench/run --save` writes under"
        " `docs/results/`: rerun those, don't edit this page. One small shared machine, with"
        " the load generator on the same cores: compare rows within a table, not with other"
        " machines.",
        "",
    ]
    for driver, (path, data) in results.items():
        notes = Notes()
        out += header(path, data) + SECTIONS[driver](data, notes) + notes.render()
    return "\n".join(out).rstrip() + "\n"


# The README's table: HTTP/1.1 by workload and server, then a line per other driver.

README_COLUMNS = [("mummy", "3.13t"), ("mummy", "3.13")]
README_COLUMNS += [(peer, "3.13t") for peer in ("granian", "uvicorn", "gunicorn", "waitress")]


def readme_block(results: dict[str, tuple[Path, Data]]) -> list[str]:
    out = []
    if "http1" in results:
        path, data = results["http1"]
        rows = main_rows(data)
        columns = [col for col in README_COLUMNS if pick(rows, server=col[0], interpreter=col[1])]
        body = []
        for workload in PATH_TITLES:
            line = [f"`{workload}`, {data['settings']['connections'][workload]} conns"]
            for server, label in columns:
                cell = one(rows, server=server, interpreter=label, workload=workload)
                text = num(med(cell, "rps"))
                if cell is not None and (server, label) == README_COLUMNS[0]:
                    text = f"**{text}** (p99 {ms(med(cell, 'p99_ms'))})"
                line.append(text)
            if any(text != "—" for text in line[1:]):
                body.append(line)
        m, rounds = data["machine"], data["settings"]["rounds"]
        text = f"HTTP/1.1 req/s (`{source(path)}`: {m['date'][:10]}, {m['cpu']}, {m['cores']}"
        text += " cores" + (", **a --quick smoke run**" if data["quick"] else "")
        text += f"; the median of {rounds} interleaved rounds; all tables in"
        text += " `docs/performance.md`):"
        out += [text, "", *table(["workload", *(f"{s} {i}" for s, i in columns)], body, 1)]
        if default_rows(data):
            out.append(f"- {headline_defaults(data)}")
    for driver, (_, data) in results.items():
        if driver in HEADLINES:
            out.append(f"- {HEADLINES[driver](data['cells'])}")
    return [*out, ""]


def headline_defaults(data: Data) -> str:
    """HTTP/1.1 with default settings: mummy's default ÷ each granian row, by path."""
    rows, parts = default_rows(data), []
    for path in PATH_TITLES:
        ref = one(rows, server="mummy", workload=path)
        for c in (c for c in pick(rows, workload=path) if c is not ref):
            parts.append(f"`{path}` {c['settings'].split(', ')[-1]} {paired_ratio(ref, c)}")
    mummy = ", ".join(f"`{c['workload']}` {num(med(c, 'rps'))}" for c in pick(rows, server="mummy"))
    return f"Default settings, mummy 3.13t req/s: {mummy}; mummy ÷ granian: " + ", ".join(parts)


def headline_plumbing(cells: list[Cell]) -> str:
    parts = [f"{c['server']} {c['settings']} {num(med(c, 'rps'))}" for c in cells]
    return "Plumbing ceiling and mummy on `/`, req/s: " + ", ".join(parts)


def headline_h2(cells: list[Cell]) -> str:
    parts = [f"{c['server']} {c['interpreter']} {num(med(c, 'rps'))}" for c in cells]
    return "HTTP/2 (h2c, `h2load -c 10 -m 10`) on `/`, req/s: " + ", ".join(parts)


def headline_websocket(cells: list[Cell]) -> str:
    parts = []
    for c in cells:
        who = f"{c['server']} {c['interpreter']}"
        if c["workload"].startswith("echo"):
            parts.append(f"{who}, {c['workload']}: {num(med(c, 'msgs_per_s'))} msg/s")
        else:
            parts.append(f"{who}, {c['workload']}: {num(med(c, 'kib_per_connection'), 1)} KiB each")
    return "WebSockets: " + "; ".join(parts)


def headline_streams(cells: list[Cell]) -> str:
    """Per build: KiB per open SSE stream and a broadcast's time, then MB/s per protocol."""
    parts = []
    for label in dict.fromkeys(c["interpreter"] for c in cells):
        texts, bodies = [], []
        for c in pick(cells, interpreter=label):
            if "streams" in c["params"]:
                texts.append(
                    f"{c['workload']} {num(med(c, 'kib_per_stream'), 1)} KiB each, a broadcast"
                    f" received by all in {ms(med(c, 'broadcast_received_ms'))}"
                )
            else:
                bodies.append(c)
        if bodies:
            speeds = [f"{num(med(c, 'mb_per_s'))} MB/s ({c['params']['protocol']})" for c in bodies]
            texts.append(f"a {bodies[0]['workload'].split(',')[0]} at {', '.join(speeds)}")
        parts.append(f"{cells[0]['server']} {label} {cells[0]['settings']}: {', '.join(texts)}")
    return "Streamed responses: " + "; ".join(parts)


def headline_static(cells: list[Cell]) -> str:
    """MB/s with a cold / a warm page cache, per server and build."""
    parts = []
    for cold in (c for c in cells if c["params"]["cache"] == "cold"):
        same = pick(cells, server=cold["server"], interpreter=cold["interpreter"])
        warm = next((c for c in same if c["params"]["cache"] == "warm"), None)
        speeds = f"{num(med(cold, 'mb_per_s'))} / {num(med(warm, 'mb_per_s'))}"
        parts.append(f"{cold['server']} {cold['interpreter']} {speeds}")
    size = cells[0]["workload"].split(" file")[0]
    return f"A {size} static file, one curl (HTTP/1.1), MB/s cold / warm: " + ", ".join(parts)


def headline_db(cells: list[Cell]) -> str:
    """req/s per server and build, mummy 3.13t's p99 beside it."""
    parts = []
    for c in cells:
        text = f"{c['server']} {c['interpreter']} {num(med(c, 'rps'))}"
        if c["server"] == "mummy" and free(c):
            text += f" (p99 {ms(med(c, 'p99_ms'))})"
        parts.append(text)
    conns = cells[0]["params"]["connections"]
    return f"Single query (TechEmpower, PostgreSQL, {conns} conns), req/s: " + ", ".join(parts)


def headline_ratios(title: str, cells: list[Cell]) -> str:
    """workers=2 ÷ workers=1, per interpreter and workload."""
    parts = []
    for c in pick(cells, settings="workers=2"):
        base = one(
            cells, interpreter=c["interpreter"], workload=c["workload"], settings="workers=1"
        )
        parts.append(f"{c['workload']} on {c['interpreter']} {paired_ratio(c, base)}")
    return f"{title}, 2 ÷ 1 workers: " + ", ".join(parts)


def headline_loops(cells: list[Cell]) -> str:
    parts = []
    for c in cells:
        cost = med(c, "io_us_per_request")
        what = f"{c['workload']} {c['interpreter']} {c['settings'].split(', ')[0]} {rate(c)}"
        parts.append(what + (f" (IO {cost:.1f} µs each)" if cost else ""))
    return "IO loops and processes: " + ", ".join(parts)


def headline_metrics(cells: list[Cell]) -> str:
    parts = []
    for c in (c for c in cells if c["settings"].endswith("on")):
        off = metrics_off(cells, c)
        parts.append(
            f"{c['interpreter']} {num(med(off, 'rps'))} → {num(med(c, 'rps'))}"
            f" ({paired_ratio(c, off)})"
        )
    return "Metrics on (`/metrics` scraped every second) vs off, `/` req/s: " + ", ".join(parts)


def headline_slowloris(cells: list[Cell]) -> str:
    parts = [
        f"{c['interpreter']} with {c['workload']} {ms(med(c, 'p99_ms'))}"
        f" ({num(med(c, 'attackers_still_open'))} still open after header_timeout)"
        for c in cells
    ]
    return "A normal client's p99 among slowloris attackers: " + ", ".join(parts)


def headline_soak(cells: list[Cell]) -> str:
    parts = []
    for c in cells:
        m = c["median"]
        answered = sum(v for k, v in m.items() if k.endswith(" ok"))
        passed = all(v for k, v in m.items() if k.startswith("check: "))
        parts.append(
            f"{c['interpreter']} {c['workload']}: {num(answered)} well-formed requests answered,"
            f" checks {'passed' if passed else 'FAILED'},"
            f" RSS {m['rss_mb growth_after_warmup']:+.1f} MB after the warm-up"
        )
    return "Soak with faults: " + "; ".join(parts)


HEADLINES: dict[str, Callable[[list[Cell]], str]] = {
    "plumbing": headline_plumbing,
    "h2": lambda cells: headline_h2(pick(cells, workload="/")),
    "websocket": headline_websocket,
    "streams": headline_streams,
    "static": headline_static,
    "db": headline_db,
    "compression": lambda cells: headline_ratios("Compression (~100 KB JSON)", cells),
    "scaling": lambda cells: headline_ratios("GIL vs no GIL", cells),
    "loops": headline_loops,
    "metrics": headline_metrics,
    "slowloris": headline_slowloris,
    "soak": headline_soak,
}


def write_readme(readme: Path, block: list[str]) -> bool:
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        return False
    before, rest = text.split(README_BEGIN, 1)
    after = rest.split(README_END, 1)[1]
    readme.write_text(before + README_BEGIN + "\n" + "\n".join(block) + README_END + after)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=REPO / "docs/results", help="JSON dir")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="page and charts dir")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md", help="its table")
    parser.add_argument("--no-charts", action="store_true", help="markdown only")
    args = parser.parse_args()
    results = read_results(args.results)
    if not results:
        sys.exit(f"no results in {args.results}: run ./bench/run --save first")
    if missing := [d for d in DRIVERS if d not in results]:
        print(f"no results for {', '.join(missing)}: left out", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    page = args.out / "performance.md"
    page.write_text(performance_page(results))
    print(f"wrote {source(page)}")
    block = readme_block(results)
    if write_readme(args.readme, block):
        print(f"wrote the performance table of {source(args.readme)}")
    else:
        print(f"{source(args.readme)} has no {README_BEGIN} ... {README_END}; the table:\n")
        print("\n".join(block))
    if not args.no_charts:
        try:
            import charts
        except ImportError as exc:
            sys.exit(f"charts need matplotlib ({exc}): run from .venv-gil, or --no-charts")
        for path in charts.write(results, args.out):
            print(f"wrote {source(path)}")


if __name__ == "__main__":
    main()
