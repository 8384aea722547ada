"""The benchmark smoke run at the end of ./ci/test: `./bench/run --quick --servers mummy`,
every driver for a second or so against mummy alone, so that the harness cannot rot
between issues; it ends with the GIL vs no-GIL figure (the scaling driver: `/cpu` at 1
and 2 workers on each build). Kept so that ./ci/test's call works until it runs
./bench/run itself."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    sys.exit(subprocess.run([str(ROOT / "bench/run"), "--quick", "--servers", "mummy"]).returncode)
