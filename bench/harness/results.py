"""The results record that every driver writes and bench/report.py reads: the machine,
the interpreters, the peers and their versions, and per cell (a server with its settings
on a workload) every round with its metrics, CPU shares and the exact command lines,
then the median over the rounds.

    {"schema": 1, "driver": "http1", "title": ..., "quick": false, "invocation": [...],
     "started": ..., "finished": ..., "machine": {...}, "interpreters": {...},
     "tools": {...}, "peers": {...}, "settings": {...}, "skipped": {...},
     "cells": [{"server", "interpreter", "settings", "workload", "params",
                "rounds": [{"round", "metrics", "server_cpu", "client_cpu", "other_cpu",
                            "service_cpu", "busiest_thread", "busiest_others", "disturbed",
                            "tries", "discarded", "gil_enabled", "server_output", "error",
                            "server_command", "load_command"}],
                "median": {...}, "disturbed_rounds": n, "failed_rounds": n}]}
"""

from __future__ import annotations

import datetime
import json
import shutil
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import RESULTS, SAVED

SCHEMA = 1


@dataclass
class Round:
    round: int
    metrics: dict[str, Any]
    server_cpu: float | None
    client_cpu: float | None
    other_cpu: float | None
    service_cpu: float | None = None  # the services the server uses (a database)
    busiest_thread: float | None = None
    busiest_others: list[str] = field(default_factory=list)
    disturbed: bool = False
    tries: int = 1
    discarded: list[dict[str, Any]] = field(default_factory=list)  # disturbed earlier tries
    gil_enabled: bool | None = None
    server_output: list[str] = field(default_factory=list)  # notable lines while measured
    error: str | None = None
    server_command: list[str] = field(default_factory=list)
    load_command: list[str] = field(default_factory=list)


@dataclass
class Cell:
    server: str
    interpreter: str  # "3.13t", "3.13"
    settings: str
    workload: str
    params: dict[str, Any]
    rounds: list[Round] = field(default_factory=list)

    def median(self) -> dict[str, Any]:
        """Per metric, the median over the rounds that measured it (disturbed ones
        included: they are counted and marked, not dropped); CPU shares likewise."""
        good = [r for r in self.rounds if r.error is None] or self.rounds
        out: dict[str, Any] = {}
        keys = dict.fromkeys(k for r in good for k in r.metrics)
        for key in keys:
            values = [r.metrics[key] for r in good if r.metrics.get(key) is not None]
            if values and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values
            ):
                out[key] = statistics.median(values)
            elif values:
                out[key] = values[-1]
        for key in ("server_cpu", "client_cpu", "other_cpu", "service_cpu", "busiest_thread"):
            values = [getattr(r, key) for r in good if getattr(r, key) is not None]
            if values:
                out[key] = statistics.median(values)
        gil = [r.gil_enabled for r in self.rounds if r.gil_enabled is not None]
        out["gil_enabled"] = any(gil) if gil else None
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "median": self.median(),
            "disturbed_rounds": sum(r.disturbed for r in self.rounds),
            "failed_rounds": sum(r.error is not None for r in self.rounds),
        }


@dataclass
class Record:
    driver: str
    title: str
    quick: bool
    invocation: list[str]
    machine: dict[str, Any]
    interpreters: dict[str, Any]
    tools: dict[str, str]
    peers: dict[str, Any]
    settings: dict[str, Any]
    skipped: dict[str, str]
    cells: list[Cell]
    started: str = field(default_factory=lambda: now())
    finished: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cells"] = [c.as_json() for c in self.cells]
        return tidy({"schema": SCHEMA, **data})

    def write(self, save: bool) -> list[Path]:
        """bench/results/<driver>-<stamp>.json, and with `save` a copy as
        docs/results/<driver>.json (what bench/report.py renders)."""
        self.finished = now()
        stamp = self.started.replace("-", "").replace(":", "")[:15]
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.driver}-{stamp}.json"
        path.write_text(json.dumps(self.as_json(), indent=1) + "\n")
        written = [path]
        if save:
            SAVED.mkdir(parents=True, exist_ok=True)
            written.append(Path(shutil.copy2(path, SAVED / f"{self.driver}.json")))
        return written


def tidy(value: Any) -> Any:
    """Floats to 4 decimals: the JSON is committed, and no figure here has more."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tidy(v) for v in value]
    return value


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
