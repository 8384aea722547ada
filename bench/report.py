#!/usr/bin/env python3
"""Benchmark results -> docs/performance.md (one table per workload) and PNG charts in docs/.

    .venv-gil/bin/python bench/report.py              # newest results under bench/results/
    .venv-gil/bin/python bench/report.py --http bench/results/runs/http-20261125T234149.md
    python3 bench/report.py --no-charts               # markdown only, no matplotlib needed

Reads what the benchmark scripts write (bench/results/ is not committed; this turns it into
files that are):

- HTTP (bench/http_servers.py): the newest `bench/results/runs/http-*.json`, or its `.md`
  when the JSON is missing: one table each for `/`, `/sleep` and `/cpu`, the mummy worker
  sweep, and 3.13t vs 3.13 per server. Charts: docs/http-requests-per-second.png and
  docs/http-gil-vs-free-threaded.png.
- Compression (bench/compression.py): every `bench/results/compression*.json` (the
  default run writes compression.json; `--name` others): req/s and bytes per response by
  coding and workers, and the scaling from 1 worker. Chart (of the first):
  docs/compression-scaling.png.
- WebSocket (bench/websocket.py): the newest `bench/results/websocket*.json`, if any:
  echo throughput and the idle-connection memory. No chart.

A missing input leaves its section out (and says so on stderr). Charts need matplotlib,
which has no cp313t wheel: run this from .venv-gil (ci/requirements-lint.txt pins it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench/results"
DOCS = REPO / "docs"

PATHS = ("/", "/sleep", "/cpu")
PATH_TITLES = {
    "/": "`/`: Hello, World (13 bytes)",
    "/sleep": "`/sleep`: a handler that blocks 10 ms (time.sleep; asyncio.sleep on uvicorn)",
    "/cpu": "`/cpu`: about 1 ms of pure-Python CPU work",
}
FT, GIL = "3.13t", "3.13"
COLORS = {FT: "#1f77b4", GIL: "#ff7f0e"}
HTTP_CHART = "http-requests-per-second.png"
GIL_CHART = "http-gil-vs-free-threaded.png"
COMPRESSION_CHART = "compression-scaling.png"
THOUSANDS = "{x:,.0f}"  # matplotlib turns a format string into a StrMethodFormatter


# Reading HTTP results.


@dataclass
class HttpRow:
    server: str
    interpreter: str  # "3.13t" or "3.13"
    settings: str
    path: str
    connections: int
    rps: float | None
    p99_ms: float | None
    server_cpu: float | None
    gil_reenabled: bool = False
    problem: str = ""


@dataclass
class HttpRun:
    source: Path
    meta: dict[str, str]  # Date, Machine, mummy, Client, ...
    rows: list[HttpRow]


def _number(text: str) -> float | None:
    text = text.strip().rstrip("x").replace(",", "")
    if text in ("", "—", "-"):
        return None
    if text.endswith(" ms"):
        text = text[:-3]
    return float(text)


def read_http_markdown(path: Path) -> HttpRun:
    """Parse the report bench/http_servers.py writes (its table, bullets and Problems)."""
    meta: dict[str, str] = {}
    rows: list[HttpRow] = []
    header: list[str] = []
    problems: dict[tuple[str, str, str], str] = {}
    section = ""
    for line in path.read_text().splitlines():
        if line.startswith("- ") and ": " in line and not rows and not header:
            key, _, value = line[2:].partition(": ")
            meta[key] = value
        elif line.startswith("| server |"):
            header = [c.strip() for c in line.strip("|").split("|")]
        elif line.startswith("|") and header and not line.startswith("|---"):
            cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
            interpreter = cells["interpreter"]
            rows.append(
                HttpRow(
                    server=cells["server"],
                    interpreter=interpreter.split()[0],
                    settings=cells["settings"],
                    path=cells["path"],
                    connections=int(cells["conns"]),
                    rps=_number(cells["req/s"]),
                    p99_ms=_number(cells["p99"]),
                    server_cpu=_number(cells["server CPU"]),
                    gil_reenabled="GIL re-enabled" in interpreter,
                )
            )
        elif line.endswith(":") and not line.startswith(("-", "|")):
            section = line
        elif section == "Problems:" and (m := re.match(r"- (.+) \((3\.13t?)\) (\S+): (.+)", line)):
            problems[(m.group(1), m.group(2), m.group(3))] = m.group(4)
    for row in rows:
        row.problem = problems.get((row.server, row.interpreter, row.path), "")
    return HttpRun(path, meta, rows)


def read_http_json(path: Path) -> HttpRun:
    data = json.loads(path.read_text())
    machine = data["machine"]
    meta = {
        "Date": str(machine.get("date", "")),
        "Machine": f"{machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('platform')}",
        "mummy": str(machine.get("mummy_revision", "")),
        "Load average at start": str(machine.get("load_average_at_start", "")),
        "Client": f"{machine.get('wrk')}, `wrk -t2 -c<conns> -d{data.get('duration_s')}s"
        " --latency` after a 1 s warm-up, on the same machine as the server (loopback)",
    }
    rows = []
    for cell in data["cells"]:
        notes = [cell["error"]] if cell.get("error") else []
        if (cell.get("other_cpu") or 0) > 0.2:
            notes.append(f"other processes used {cell['other_cpu']:.2f} cores during the run")
        rows.append(
            HttpRow(
                server=cell["server"],
                interpreter=cell["interpreter"],
                settings=cell["settings"],
                path=cell["path"],
                connections=int(cell["connections"]),
                rps=cell.get("rps"),
                p99_ms=cell.get("p99_ms"),
                server_cpu=cell.get("server_cpu"),
                gil_reenabled=cell["interpreter"] == FT and bool(cell.get("gil_enabled")),
                problem="; ".join(notes),
            )
        )
    return HttpRun(path, meta, rows)


def newest_http_run(runs: Path) -> Path | None:
    """The newest runs/http-<stamp>.json, or .md when that run has no JSON."""
    stamps = sorted(
        {p.stem for p in runs.glob("http-*.md")} | {p.stem for p in runs.glob("http-*.json")}
    )
    if not stamps:
        return None
    newest = runs / stamps[-1]
    json_path = newest.with_suffix(".json")
    return json_path if json_path.exists() else newest.with_suffix(".md")


def read_http(path: Path) -> HttpRun:
    return read_http_json(path) if path.suffix == ".json" else read_http_markdown(path)


# Formatting.


def fmt_int(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"


def fmt_float(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table(header: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def source_line(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


# Sections.


def http_sections(run: HttpRun) -> list[str]:
    meta = run.meta
    out = [
        "## HTTP/1.1: mummy and its peers",
        "",
        f"From `{source_line(run.source)}` (bench/http_servers.py), {meta.get('Date', '')}.",
        "",
        f"- Machine: {meta.get('Machine', 'unknown')}",
        f"- mummy: {meta.get('mummy', 'unknown')}",
        f"- Client: {meta.get('Client', 'wrk')}",
        f"- Load average at start: {meta.get('Load average at start', 'unknown')}",
        "- Every server is one process (gunicorn x2: two) with its thread pool at 2 x cores on"
        " `/` and `/cpu` and 100 on `/sleep`; uvicorn is async and has no pool.",
        "- wrk runs on the same cores as the server, so CPU-bound rows understate every"
        " server alike. Rows marked † had other processes busy during the run.",
        "",
        f"![HTTP req/s by server]({HTTP_CHART})",
        "",
    ]
    for path in PATHS:
        rows = [r for r in run.rows if r.path == path and r.server != "mummy (sweep)"]
        if not rows:
            continue
        ref = next((r for r in rows if r.server == "mummy" and r.interpreter == FT), None)
        body = []
        for r in sorted(rows, key=lambda r: -(r.rps or 0)):
            ratio = "—"
            if ref is not None and ref.rps and r.rps:
                ratio = f"{ref.rps / r.rps:.2f}x"
            interp = r.interpreter + (" (GIL re-enabled!)" if r.gil_reenabled else "")
            mark = " †" if r.problem else ""
            body.append(
                [
                    r.server + mark,
                    interp,
                    r.settings,
                    str(r.connections),
                    fmt_int(r.rps),
                    fmt_ms(r.p99_ms),
                    fmt_float(r.server_cpu),
                    ratio,
                ]
            )
        header = ["server", "interpreter", "settings", "conns", "req/s", "p99"]
        header += ["server CPU (cores)", "mummy 3.13t ÷ row"]
        out += [f"### {PATH_TITLES[path]}", "", *table(header, body, 3), ""]

    sweep = [r for r in run.rows if r.server.startswith("mummy") and r.interpreter == FT]
    if any(r.server == "mummy (sweep)" for r in sweep):
        out += ["### mummy on 3.13t by number of workers", ""]
        body = []
        for path in PATHS:
            for r in sorted((r for r in sweep if r.path == path), key=workers_of):
                body.append(
                    [
                        path,
                        str(workers_of(r)),
                        fmt_int(r.rps),
                        fmt_ms(r.p99_ms),
                        fmt_float(r.server_cpu),
                    ]
                )
        out += [*table(["path", "workers", "req/s", "p99", "server CPU (cores)"], body, 1), ""]

    pairs = gil_pairs(run)
    if pairs:
        out += [
            "### Free-threaded (3.13t) vs GIL (3.13), same server and settings",
            "",
            f"![3.13t ÷ 3.13 by server]({GIL_CHART})",
            "",
        ]
        body = [
            [server, path, fmt_int(ft.rps), fmt_int(gil.rps), f"{(ft.rps or 0) / gil.rps:.2f}x"]
            for (server, path), (ft, gil) in pairs.items()
            if gil.rps
        ]
        out += [*table(["server", "path", "3.13t req/s", "3.13 req/s", "3.13t ÷ 3.13"], body, 2)]
        out += [""]
    # A markdown run names a problem by server, interpreter and path only, so a note on a
    # sweep row marks every sweep row of that path; list each note once.
    noisy = dict.fromkeys(
        f"- {r.server} ({r.interpreter}) {r.path}: {r.problem}" for r in run.rows if r.problem
    )
    if noisy:
        out += ["† Problems reported by the run:", "", *noisy, ""]
    return out


def workers_of(row: HttpRow) -> int:
    m = re.search(r"workers=(\d+)", row.settings)
    return int(m.group(1)) if m else 0


def gil_pairs(run: HttpRun) -> dict[tuple[str, str], tuple[HttpRow, HttpRow]]:
    """(server, path) -> (3.13t row, 3.13 row) where both builds ran the same settings."""
    pairs = {}
    for path in PATHS:
        for ft in (r for r in run.rows if r.path == path and r.interpreter == FT):
            gil = next(
                (
                    r
                    for r in run.rows
                    if r.path == path
                    and r.interpreter == GIL
                    and r.server == ft.server
                    and r.settings == ft.settings
                ),
                None,
            )
            if gil is not None and ft.rps and gil.rps:
                pairs[(ft.server, path)] = (ft, gil)
    return pairs


def compression_sections(data: dict[str, Any], source: Path, chart: bool) -> list[str]:
    m = data["machine"]
    counts = ", ".join(dict.fromkeys(c["workers_label"] for c in data["cells"]))
    out = [
        f"## Compression: a ~100 KB JSON response, zstd and gzip, with {counts} workers",
        "",
        f"From `{source_line(source)}` (bench/compression.py), {m['date']}: {m['cpu']},"
        f" {m['cores']} cores; mummy {m['mummy_revision']}. Body {m.get('body_bytes', 0):,}"
        " bytes, compressed on the workers for every response (zstd level 3, gzip level 5);"
        f" `wrk -t2 -c{data['connections']} -d{data['duration_s']}s` with"
        ' `-H "Accept-Encoding: <coding>"`,'
        f" {data['rounds']} round(s): req/s is the median of the rounds during which other"
        " processes left the cores alone (of all rounds where none did: listed below). wrk"
        f" shares the {m['cores']} cores with the server.",
        "",
    ]
    if chart:
        out += [f"![req/s by workers]({COMPRESSION_CHART})", ""]
    body = []
    for c in data["cells"]:
        body.append(
            [
                c["interpreter"],
                c["coding"],
                c["workers_label"],
                fmt_int(c["rps"]),
                f"{c.get('quiet_rounds', '?')} of {len(c.get('samples') or [])}",
                fmt_ms(c["p99_ms"]),
                fmt_int(c["body_bytes"]),
                fmt_int(c["wire_bytes"]),
                fmt_float(c["server_cpu"]),
            ]
        )
    header = ["interpreter", "coding", "workers", "req/s", "quiet rounds", "p99", "body bytes"]
    header += ["bytes/response on the wire", "server CPU (cores)"]
    out += [*table(header, body, 2), ""]
    scaling = data.get("scaling") or []
    if scaling:
        counts = sorted({int(w) for row in scaling for w in row["ratio"]} - {1})
        header = ["interpreter", "coding", *(f"{w} ÷ 1 workers" for w in counts)]
        body = [
            [row["interpreter"], row["coding"]] + [ratio_cell(row, str(w)) for w in counts]
            for row in scaling
        ]
        out += [
            "Scaling: req/s ÷ req/s with 1 worker in the same round, median over the rounds in"
            " which other processes left both runs alone (how many such rounds in brackets;"
            " over all rounds when there were none):",
            "",
            *table(header, body, 2),
            "",
        ]
    trouble = [c for c in data["cells"] if c.get("errors") or (c.get("other_cpu") or 0) > 0.2]
    if trouble:
        out += ["Problems reported by the run:", ""]
        for c in trouble:
            notes = list(c.get("errors") or [])
            if (c.get("other_cpu") or 0) > 0.2:
                notes.append(
                    f"no quiet round; other processes used up to {c['other_cpu']:.2f} cores"
                )
            out.append(
                f"- {c['interpreter']} {c['coding']} {c['workers_label']}: {'; '.join(notes)}"
            )
        out += [""]
    return out


def ratio_cell(row: dict[str, Any], workers: str) -> str:
    if workers not in row["ratio"]:
        return "—"
    quiet = row.get("quiet_pairs", {}).get(workers)
    note = "" if quiet is None else f" ({quiet} of {row.get('rounds', '?')} quiet)"
    return f"{row['ratio'][workers]:.2f}x{note}"


def websocket_sections(data: dict[str, Any], source: Path) -> list[str]:
    written = datetime.datetime.fromtimestamp(source.stat().st_mtime, datetime.UTC)
    when = written.isoformat(timespec="minutes")
    out = ["## WebSockets", "", f"From `{source_line(source)}` (bench/websocket.py), {when}.", ""]
    echo = data.get("echo") or []
    if echo:
        args = data.get("args", {})
        out += [
            f"Echo: {args.get('clients', '?')} clients, {args.get('size', '?')}-byte text messages,"
            f" one in flight per client, {args.get('duration', '?')} s.",
            "",
        ]
        body = [
            [
                e["server"],
                e["interpreter"],
                e.get("settings", ""),
                "yes" if e.get("deflate_offered") else "no",
                {True: "yes", False: "no"}.get(e.get("deflate"), "—"),
                fmt_int(e.get("msgs_per_s")),
                fmt_ms(e.get("p50_ms")),
                fmt_ms(e.get("p99_ms")),
                fmt_float(e.get("other_cpu")),
                one_line(e["error"]) if e.get("error") else str(e.get("errors", 0)),
            ]
            for e in echo
        ]
        header = ["server", "interpreter", "settings", "deflate offered", "negotiated"]
        header += ["echoes/s", "p50", "p99", "other processes' CPU (cores)", "errors"]
        out += [*table(header, body, 5), ""]
    idle = data.get("idle") or []
    if idle:
        body = [
            [
                i["server"],
                i["interpreter"],
                fmt_int(i.get("connections")),
                fmt_int(i.get("failed")),
                fmt_float(i.get("open_s")),
                fmt_float(i.get("kib_per_connection"), 1),
                fmt_ms(median_of(b.get("all_received_ms") for b in i.get("broadcasts") or [])),
                one_line(i["error"]) if i.get("error") else "",
            ]
            for i in idle
        ]
        header = ["server", "interpreter", "connections", "failed", "seconds to open all"]
        header += ["KiB per idle connection", "broadcast to all, median", "error"]
        out += ["Idle connections:", "", *table(header, body, 2), ""]
    if not echo and not idle:
        out += ["(the file has no results)", ""]
    return out


def one_line(text: str) -> str:
    """An error for a table cell: its last line (a traceback's is the exception)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return (lines[-1] if lines else "").replace("|", "/")


def median_of(values: Any) -> float | None:
    present = sorted(v for v in values if v is not None)
    return present[(len(present) - 1) // 2] if present else None


# Charts.


def charts(run: HttpRun | None, compression: dict[str, Any] | None, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    written = []
    if run is not None:
        written.append(http_chart(plt, run, out_dir / HTTP_CHART))
        if gil_pairs(run):
            written.append(gil_chart(plt, run, out_dir / GIL_CHART))
    if compression is not None:
        written.append(compression_chart(plt, compression, out_dir / COMPRESSION_CHART))
    return written


def save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    # No software/date metadata: the same results give byte-identical PNGs.
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def http_chart(plt: Any, run: HttpRun, path: Path) -> Path:
    paths = [p for p in PATHS if any(r.path == p for r in run.rows)]
    fig, axes = plt.subplots(len(paths), 1, figsize=(9, 3.1 * len(paths)), squeeze=False)
    for ax, p in zip(axes[:, 0], paths, strict=True):
        rows = [r for r in run.rows if r.path == p and r.server != "mummy (sweep)"]
        servers = list(dict.fromkeys(r.server for r in rows))
        width = 0.38
        for offset, interp in ((-width / 2, FT), (width / 2, GIL)):
            xs, ys = [], []
            for i, server in enumerate(servers):
                row = next(
                    (r for r in rows if r.server == server and r.interpreter == interp), None
                )
                if row is not None and row.rps:
                    xs.append(i + offset)
                    ys.append(row.rps)
            bars = ax.bar(xs, ys, width, label=interp, color=COLORS[interp])
            ax.bar_label(bars, labels=[f"{y:,.0f}" for y in ys], fontsize=7, padding=2)
        ax.set_xticks(range(len(servers)), servers)
        ax.set_ylabel("req/s")
        ax.yaxis.set_major_formatter(THOUSANDS)
        ax.set_title(PATH_TITLES[p].replace("`", ""), loc="left")
        ax.margins(y=0.15)
    axes[0, 0].legend(title="interpreter", frameon=False)
    cores = re.search(r"(\d+) cores", run.meta.get("Machine", ""))
    where = f", {cores.group(1)} cores shared with wrk" if cores else ""
    fig.suptitle(f"HTTP/1.1 req/s by server (higher is better{where})")
    return save(plt, fig, path)


def gil_chart(plt: Any, run: HttpRun, path: Path) -> Path:
    pairs = gil_pairs(run)
    servers = list(dict.fromkeys(server for server, _ in pairs))
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / len(PATHS)
    for k, p in enumerate(PATHS):
        xs, ys = [], []
        for i, server in enumerate(servers):
            if (server, p) in pairs:
                ft, gil = pairs[(server, p)]
                xs.append(i + (k - (len(PATHS) - 1) / 2) * width)
                ys.append((ft.rps or 0) / (gil.rps or 1))
        bars = ax.bar(xs, ys, width, label=p)
        ax.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=7, padding=2)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(servers)), servers)
    ax.set_ylabel("3.13t req/s ÷ 3.13 req/s")
    ax.set_title("Free-threaded vs GIL build, same server and settings (above 1: 3.13t faster)")
    ax.legend(title="path", frameon=False)
    ax.margins(y=0.15)
    return save(plt, fig, path)


def compression_chart(plt: Any, data: dict[str, Any], path: Path) -> Path:
    cells = data["cells"]
    labels = list(
        dict.fromkeys(c["workers_label"] for c in sorted(cells, key=lambda c: c["workers"]))
    )
    fig, ax = plt.subplots(figsize=(8, 4))
    styles = {"zstd": "-", "gzip": "--", "deflate": ":"}
    for interp in (FT, GIL):
        for coding in dict.fromkeys(c["coding"] for c in cells):
            group = [c for c in cells if c["interpreter"] == interp and c["coding"] == coding]
            if not group:
                continue
            group.sort(key=lambda c: c["workers"])
            xs = [labels.index(c["workers_label"]) for c in group if c["rps"]]
            ys = [c["rps"] for c in group if c["rps"]]
            ax.plot(xs, ys, styles.get(coding, "-"), marker="o", color=COLORS[interp])
            ax.annotate(
                f"{interp} {coding}",
                (xs[-1], ys[-1]),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("workers")
    ax.set_ylabel("req/s")
    ax.yaxis.set_major_formatter(THOUSANDS)
    ax.set_ylim(bottom=0)
    ax.set_xlim(-0.2, len(labels) - 0.3)
    ax.set_title(
        f"~100 KB JSON, compressed per response ({data['machine']['cores']} cores shared with wrk)"
    )
    return save(plt, fig, path)


# Main.


def newest(pattern: str) -> Path | None:
    found = sorted(RESULTS.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http", type=Path, help="an http_servers.py run (.md or .json)")
    parser.add_argument(
        "--compression",
        type=Path,
        action="append",
        help="bench/compression.py's JSON; repeat for several (default: every"
        " bench/results/compression*.json, compression.json first, which gets the chart)",
    )
    parser.add_argument("--websocket", type=Path, help="bench/websocket.py's JSON")
    parser.add_argument("--out", type=Path, default=DOCS, help="where to write (docs/)")
    parser.add_argument("--no-charts", action="store_true", help="markdown only")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    http_path = args.http or newest_http_run(RESULTS / "runs")
    compression_paths = args.compression or sorted(
        RESULTS.glob("compression*.json"), key=lambda p: (p.name != "compression.json", p.name)
    )
    websocket_path = args.websocket or newest("websocket*.json")

    run = read_http(http_path) if http_path and http_path.exists() else None
    compressions = [(p, json.loads(p.read_text())) for p in compression_paths if p.exists()]
    compression = compressions[0][1] if compressions else None
    websocket = None
    if websocket_path is not None and websocket_path.exists():
        websocket = json.loads(websocket_path.read_text())
    for name, found in (("HTTP", run), ("compression", compression), ("WebSocket", websocket)):
        if found is None:
            print(f"no {name} results found: leaving that section out", file=sys.stderr)
    if run is None and compression is None and websocket is None:
        sys.exit("nothing to report: run bench/http_servers.py, compression.py or websocket.py")

    out = [
        "# Performance",
        "",
        "Generated by `bench/report.py` from the results of the benchmark scripts in `bench/`;"
        " edit those, not this file. Numbers come from one small shared machine, with the load"
        " generator on the same cores: compare rows within a table, not with other machines.",
        "",
    ]
    if run is not None:
        out += http_sections(run)
    for i, (path, data) in enumerate(compressions):
        out += compression_sections(data, path, chart=i == 0)
    if websocket is not None and websocket_path is not None:
        out += websocket_sections(websocket, websocket_path)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "performance.md"
    target.write_text("\n".join(out).rstrip() + "\n")
    print(f"wrote {source_line(target)}")
    if args.no_charts:
        return
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.exit("charts need matplotlib: run from .venv-gil, or pass --no-charts")
    for path in charts(run, compression, args.out):
        print(f"wrote {source_line(path)}")


if __name__ == "__main__":
    main()
