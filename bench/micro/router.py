"""Routing cost with 10 and with 1,000 literal routes (plus the same 5 pattern routes).

Usage: .venv-ft/bin/python bench/micro/router.py [--iterations N] [--json]
(or `./bench/run --only micro`)

Times `Router.match` (what a Router does per request before calling the handler)
for a literal hit, a pattern hit, a HEAD served by a GET route and a miss (404), and
prints the best of 5 runs, in nanoseconds per match. Literal routes are a dict
lookup, so the two columns should be close; only pattern routes are scanned. With
--json: one JSON object {"case, N literals": ns}.
"""

import argparse
import json
import sys
import time

import mummy


def handler(request: mummy.Request) -> None:
    request.respond(200)


def build(literals: int) -> mummy.Router:
    router = mummy.Router()
    # Pattern routes before the literals: a literal hit must still try these first.
    router.get("/static/**/*.css", handler)
    router.get("/users/@id", handler)
    router.post("/users/@id/avatar", handler)
    for i in range(literals):
        router.get(f"/api/v1/resource{i}/list", handler)
    router.get("/files/**", handler)
    router.get("/blog/@year/@slug", handler)
    return router


def best_ns_per_call(router: mummy.Router, method: str, path: str, iterations: int) -> float:
    match = router.match
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter_ns()
        for _ in range(iterations):
            match(method, path)
        best = min(best, (time.perf_counter_ns() - started) / iterations)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    cases = [
        ("literal hit (the last literal route)", "GET", None),
        ("pattern hit /users/@id", "GET", "/users/42"),
        ("pattern hit /blog/@year/@slug (last route)", "GET", "/blog/2024/hello"),
        ("HEAD served by the GET literal route", "HEAD", None),
        ("miss (404)", "GET", "/nothing/here"),
    ]
    sizes = (10, 1000)
    routers = {n: build(n) for n in sizes}
    results: dict[str, float] = {}
    for label, method, path in cases:
        for n in sizes:
            target = path or f"/api/v1/resource{n - 1}/list"
            assert (routers[n].match(method, target) is None) == (path == "/nothing/here")
            ns = best_ns_per_call(routers[n], method, target, args.iterations)
            results[f"{label}, {n:,} literals"] = ns
    if args.json:
        print(json.dumps(results))
        return
    gil = "GIL" if getattr(sys, "_is_gil_enabled", lambda: True)() else "free-threaded"
    version = sys.version.split()[0]
    print(f"Router.match, ns per call (best of 5 x {args.iterations:,}); Python {version} {gil}")
    print(f"{'case':<46}" + "".join(f"{f'{n:,} literals':>16}" for n in sizes))
    for label, _, _ in cases:
        row = "".join(f"{results[f'{label}, {n:,} literals']:>16.0f}" for n in sizes)
        print(f"{label:<46}{row}")


if __name__ == "__main__":
    main()
