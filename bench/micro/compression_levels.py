#!/usr/bin/env python3
"""Size/speed table for gzip and zstd levels on the ~100 KB JSON body that the
compression driver serves (bench/apps/twins.py).

Run: .venv-ft/bin/python bench/micro/compression_levels.py [--json]
(or `./bench/run --only micro`). The defaults (gzip level 5, zstd level 3) were chosen
from this table: docs/compression.md. With --json: one JSON object
{"body_bytes": n, "<coding> <level> bytes": n, "<coding> <level> MB/s": x, ...}.
"""

import argparse
import json
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "apps"))
from twins import json_body

LEVELS = {"gzip": (1, 3, 4, 5, 6, 7, 9), "zstd": (1, 2, 3, 4, 6, 9, 12, 19)}


def measure(compress: Callable[[bytes], bytes], body: bytes, seconds: float) -> tuple[int, float]:
    size = len(compress(body))
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        compress(body)
        runs += 1
    return size, runs * len(body) / (time.perf_counter() - start) / 1e6


def compressor(coding: str, level: int) -> Callable[[bytes], bytes]:
    if coding == "zstd":
        return zstandard.ZstdCompressor(level=level).compress

    def gzip(body: bytes) -> bytes:
        obj = zlib.compressobj(level, zlib.DEFLATED, 31)
        return obj.compress(body) + obj.flush()

    return gzip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="per level (0.3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    body = json_body()
    results = {}
    for coding, levels in LEVELS.items():
        for level in levels:
            size, speed = measure(compressor(coding, level), body, args.seconds)
            results[f"{coding} {level}"] = {"bytes": size, "mb_per_s": speed}
    if args.json:
        flat: dict[str, float] = {"body_bytes": len(body)}
        for name, r in results.items():
            flat[f"{name} bytes"], flat[f"{name} MB/s"] = r["bytes"], r["mb_per_s"]
        print(json.dumps(flat))
        return
    print(f"Python {sys.version.split()[0]}, body {len(body):,} bytes of JSON\n")
    print("| coding | level | bytes | ratio | MB/s (one thread) |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        coding, level = name.split()
        ratio = len(body) / r["bytes"]
        print(f"| {coding} | {level} | {r['bytes']:,} | {ratio:.1f} | {r['mb_per_s']:.0f} |")


if __name__ == "__main__":
    main()
