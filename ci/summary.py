"""Print the summary of a ci/test run from its JUnit reports (pytest --junitxml): for
each interpreter, how many unit, integration and system tests ran, then failures,
errors, skips and seconds.

    ci/summary.py FT_REPORT [GIL_REPORT]

A test's kind is its folder (tests/unit, tests/integration, tests/system), which the
reports give as the start of each test's class name (tests.unit.test_ring...). Without
a second argument (ci/test had no GIL build) the GIL half is reported as skipped and the
result is the free-threaded half's; a report that was asked for but is missing (a run
that crashed before writing it) fails.
Exits 1 unless each report present ran tests, none failing or in error.
"""

import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("unit", "integration", "system")
SKIPPED_GIL = "GIL half skipped: no GIL interpreter (MUMMY_PYTHON_GIL unset)"


@dataclass
class Report:
    tests: Counter[str] = field(default_factory=Counter)  # by kind, "other" if none
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.tests.total() > 0 and self.failures == 0 and self.errors == 0


def kind_of(case: ET.Element) -> str:
    # A collection error names the module in `name` and leaves `classname` empty.
    dotted = case.get("classname") or case.get("name") or ""
    parts = dotted.split(".")
    if len(parts) > 1 and parts[0] == "tests" and parts[1] in KINDS:
        return parts[1]
    return "other"


def read(path: Path) -> Report:
    root = ET.parse(path).getroot()
    report = Report()
    for suite in [root] if root.tag == "testsuite" else root.iter("testsuite"):
        report.seconds += float(suite.get("time", 0))
        for case in suite.iter("testcase"):
            report.tests[kind_of(case)] += 1
            report.failures += len(case.findall("failure"))
            report.errors += len(case.findall("error"))
            report.skipped += case.find("skipped") is not None
    return report


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    ft_path = Path(argv[0])
    gil_path = Path(argv[1]) if len(argv) == 2 else None
    gil_skipped = gil_path is None
    columns: list[tuple[str, Report]] = []
    problems: list[str] = []
    for label, path in (("free-threaded", ft_path), ("GIL", gil_path)):
        if path is None:
            continue
        try:
            columns.append((label, read(path)))
        except FileNotFoundError:
            problems.append(f"no {label} report: {path} does not exist")
        except ET.ParseError as exc:
            problems.append(f"the {label} report {path} is not JUnit XML: {exc}")

    print("\n== summary: " + " vs ".join(label for label, _ in columns))
    print(f"{'':14}" + "".join(f"{label:>16}" for label, _ in columns))
    other = any(report.tests["other"] for _, report in columns)
    rows = [*KINDS, "other"] if other else list(KINDS)
    for kind in rows:
        print(f"{kind:14}" + "".join(f"{report.tests[kind]:>16}" for _, report in columns))
    for name in ("tests", "failures", "errors", "skipped"):
        values = [r.tests.total() if name == "tests" else getattr(r, name) for _, r in columns]
        print(f"{name:14}" + "".join(f"{value:>16}" for value in values))
    print(f"{'seconds':14}" + "".join(f"{report.seconds:>16.1f}" for _, report in columns))
    for problem in problems:
        print(problem)
    if gil_skipped:
        print(SKIPPED_GIL)

    ok = not problems and bool(columns) and all(report.ok for _, report in columns)
    if not ok:
        print("result: FAIL")
    elif gil_skipped:
        print("result: PASS on the free-threaded interpreter (GIL half skipped)")
    else:
        print("result: PASS on both interpreters")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
