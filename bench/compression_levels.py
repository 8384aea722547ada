#!/usr/bin/env python3
"""Size/speed table for gzip and zstd levels on a ~100 KB JSON response body.

Run: .venv-ft/bin/python bench/compression_levels.py
The defaults (Server(gzip_level=5, zstd_level=3)) were chosen from this table.
"""

import json
import random
import sys
import time
import zlib

import zstandard


def sample_body() -> bytes:
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "mummy", "server", "thread", "python"]
    items = [
        {
            "id": i,
            "name": " ".join(rng.choice(words) for _ in range(3)),
            "score": round(rng.random() * 100, 3),
            "tags": rng.sample(words, 3),
            "active": rng.random() < 0.5,
        }
        for i in range(900)
    ]
    return json.dumps({"items": items}).encode()


def measure(compress, body: bytes) -> tuple[int, float]:
    size = len(compress(body))
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.3:
        compress(body)
        runs += 1
    return size, runs * len(body) / (time.perf_counter() - start) / 1e6


def gzip_at(level: int):
    def run(body: bytes) -> bytes:
        obj = zlib.compressobj(level, zlib.DEFLATED, 31)
        return obj.compress(body) + obj.flush()

    return run


def main() -> None:
    body = sample_body()
    print(f"Python {sys.version.split()[0]}, body {len(body):,} bytes of JSON\n")
    print("| coding | level | bytes | ratio | MB/s (one thread) |")
    print("|---|---|---|---|---|")
    for level in (1, 3, 4, 5, 6, 7, 9):
        size, speed = measure(gzip_at(level), body)
        print(f"| gzip | {level} | {size:,} | {len(body) / size:.1f} | {speed:.0f} |")
    for level in (1, 2, 3, 4, 6, 9, 12, 19):
        cctx = zstandard.ZstdCompressor(level=level)
        size, speed = measure(cctx.compress, body)
        print(f"| zstd | {level} | {size:,} | {len(body) / size:.1f} | {speed:.0f} |")


if __name__ == "__main__":
    main()
