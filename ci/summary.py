"""Print the GIL vs no-GIL summary of a ci/test run from the two JUnit reports."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def totals(path: Path) -> dict[str, float]:
    if not path.exists():
        return {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    suite = ET.parse(path).getroot()
    if suite.tag == "testsuites":
        suite = suite[0]
    return {k: float(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped", "time")}


def main() -> int:
    ft, gil = (totals(Path(p)) for p in sys.argv[1:3])
    print("\n== summary: free-threaded 3.13t vs GIL 3.13")
    print(f"{'':12}{'3.13t (no GIL)':>16}{'3.13 (GIL)':>14}")
    for key in ("tests", "failures", "errors", "skipped"):
        print(f"{key:12}{int(ft[key]):>16}{int(gil[key]):>14}")
    print(f"{'seconds':12}{ft['time']:>16.1f}{gil['time']:>14.1f}")
    ok = all(t["tests"] > 0 and t["failures"] == 0 and t["errors"] == 0 for t in (ft, gil))
    print("result:", "PASS on both interpreters" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
