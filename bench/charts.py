"""The PNG charts of docs/ from the benchmark JSON, for bench/report.py: HTTP/1.1 req/s by
server and path, 3.13t ÷ 3.13 per server, and compression req/s by workers. Needs
matplotlib (in .venv-gil); the same JSON gives byte-identical PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from report import (
    COMPRESSION_CHART,
    GIL_CHART,
    HTTP_CHART,
    PATH_TITLES,
    Data,
    free,
    gil_pairs,
    main_rows,
    med,
    one,
    pick,
)

FT_COLOR, GIL_COLOR = "#1f77b4", "#ff7f0e"


def write(results: dict[str, tuple[Path, Data]], out: Path) -> list[Path]:
    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    written = []
    if "http1" in results:
        data = results["http1"][1]
        written.append(http_chart(data, out / HTTP_CHART))
        if gil_pairs(data):
            written.append(gil_chart(data, out / GIL_CHART))
    if "compression" in results:
        written.append(compression_chart(results["compression"][1], out / COMPRESSION_CHART))
    return written


def save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def http_chart(data: Data, path: Path) -> Path:
    rows = main_rows(data)
    paths = [p for p in PATH_TITLES if pick(rows, workload=p)]
    labels = list(dict.fromkeys(c["interpreter"] for c in rows))
    fig, axes = plt.subplots(len(paths), 1, figsize=(9, 3.1 * len(paths)), squeeze=False)
    width = 0.8 / len(labels)
    for ax, p in zip(axes[:, 0], paths, strict=True):
        servers = list(dict.fromkeys(c["server"] for c in pick(rows, workload=p)))
        for k, label in enumerate(labels):
            xs, ys = [], []
            for i, server in enumerate(servers):
                rps = med(one(rows, server=server, interpreter=label, workload=p), "rps")
                if rps:
                    xs.append(i + (k - (len(labels) - 1) / 2) * width)
                    ys.append(rps)
            color = FT_COLOR if label.endswith("t") else GIL_COLOR
            bars = ax.bar(xs, ys, width, label=label, color=color)
            ax.bar_label(bars, labels=[f"{y:,.0f}" for y in ys], fontsize=7, padding=2)
        ax.set_xticks(range(len(servers)), servers)
        ax.set_ylabel("req/s")
        ax.yaxis.set_major_formatter("{x:,.0f}")
        ax.set_title(PATH_TITLES[p].replace("`", ""), loc="left")
        ax.margins(y=0.15)
    axes[0, 0].legend(title="interpreter", frameon=False)
    cores = data["machine"]["cores"]
    fig.suptitle(f"HTTP/1.1 req/s by server (higher is better, {cores} cores shared with wrk)")
    return save(fig, path)


def gil_chart(data: Data, path: Path) -> Path:
    pairs = gil_pairs(data)
    servers = list(dict.fromkeys(ft["server"] for ft, _ in pairs))
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / len(PATH_TITLES)
    for k, p in enumerate(PATH_TITLES):
        chosen = [(ft, gil) for ft, gil in pairs if ft["workload"] == p]
        xs = [servers.index(ft["server"]) + (k - 1) * width for ft, _ in chosen]
        ys = [med(ft, "rps") / med(gil, "rps") for ft, gil in chosen]
        bars = ax.bar(xs, ys, width, label=p)
        ax.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=7, padding=2)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(servers)), servers)
    ax.set_ylabel("3.13t req/s ÷ 3.13 req/s")
    ax.set_title("Free-threaded vs GIL build, same server and settings (above 1: 3.13t faster)")
    ax.legend(title="path", frameon=False)
    ax.margins(y=0.15)
    return save(fig, path)


def compression_chart(data: Data, path: Path) -> Path:
    cells = data["cells"]
    labels = list(dict.fromkeys(c["settings"].removeprefix("workers=") for c in cells))
    fig, ax = plt.subplots(figsize=(8, 4))
    styles = {"zstd": "-", "gzip": "--", "deflate": ":"}
    for label in dict.fromkeys(c["interpreter"] for c in cells):
        for coding in dict.fromkeys(c["workload"] for c in cells):
            group = [c for c in pick(cells, interpreter=label, workload=coding) if med(c, "rps")]
            if not group:
                continue
            xs = [labels.index(c["settings"].removeprefix("workers=")) for c in group]
            ys = [med(c, "rps") for c in group]
            color = FT_COLOR if free(group[0]) else GIL_COLOR
            ax.plot(xs, ys, styles.get(coding, "-"), marker="o", color=color)
            ax.annotate(
                f"{label} {coding}",
                (xs[-1], ys[-1]),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("workers")
    ax.set_ylabel("req/s")
    ax.yaxis.set_major_formatter("{x:,.0f}")
    ax.set_ylim(bottom=0)
    ax.set_xlim(-0.2, len(labels) - 0.3)
    cores = data["machine"]["cores"]
    ax.set_title(f"~100 KB JSON, compressed per response ({cores} cores shared with wrk)")
    return save(fig, path)
