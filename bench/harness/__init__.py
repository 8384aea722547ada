"""What every benchmark driver shares: paths, processes and ports, peer venvs, the
machine and its CPU accounting, the load generators and the results record.

Only the standard library, so that `bench/run` works on any python3 >= 3.11: the servers
under test run on their own interpreters, in their own processes.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
APPS = BENCH / "apps"
VENVS = BENCH / ".venvs"
RESULTS = BENCH / "results"  # scratch, git-ignored
LOGS = RESULTS / "logs"
SAVED = REPO / "docs/results"  # the runs that the README and docs quote
HOST = "127.0.0.1"
