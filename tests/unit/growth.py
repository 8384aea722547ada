"""How a parser's running time grows with a hostile input, for the tests that guard
against backtracking blow-ups where no step can be counted (a regex runs in C).

The time at the size under test is compared with the time at size 10, on the same
machine in the same second, and may be at most `slack` times the linear ratio: no
absolute threshold, so a slow or busy machine does not decide the test. Each time is
the best of several runs, which drops the pauses of a busy machine. A blow-up
(quadratic and worse) exceeds the bound by orders of magnitude; the sizes are tried
smallest first, so that one fails in milliseconds rather than running for minutes.
"""

import time
from collections.abc import Callable


def best_time(run: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def assert_linear(
    case: Callable[[int], Callable[[], object]], *sizes: int, slack: float = 10.0
) -> None:
    """`case(n)` returns a call that handles a hostile input of size n; its time at
    each of `sizes` must be at most `slack` x (size / 10) x its time at size 10."""
    small = best_time(case(10), 50)
    for size in sorted(sizes):
        large = best_time(case(size), 5)
        bound = slack * size / 10 * small
        assert large <= bound, (
            f"size {size} took {large * 1e3:.3f} ms, size 10 {small * 1e3:.3f} ms: "
            f"more than {slack:g}x the linear ratio ({bound * 1e3:.3f} ms)"
        )
