"""A 30-second bench/soak.py: mixed load and faults against a server subprocess on this
interpreter. Only invariants: every well-formed request answered correctly, no 5xx but
the expected ones, and the server's fds and threads back to where they started.
(RSS is reported by the script, not checked here.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SECONDS = 30


@pytest.mark.timeout(SECONDS + 300)
def test_soak_30_seconds(tmp_path: Path) -> None:
    result_path = tmp_path / "soak.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--seconds",
            str(SECONDS),
            "--json",
            str(result_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # The script bounds itself (load, joins, the wait for fds, the server's stop):
        # this is the backstop, well past the sum of those bounds.
        timeout=SECONDS + 240,
    )
    assert result_path.exists(), run.stdout + run.stderr
    result = json.loads(result_path.read_text())
    report = run.stdout[-4000:]
    checks = result["checks"]
    assert checks["well_formed_answered_correctly"], report
    assert checks["no_stray_5xx"], report
    assert checks["fds_and_threads_back"], report
    assert run.returncode == 0, report
    # The load really ran: every kind of well-formed request was answered at least once.
    assert all(c["ok"] > 0 for c in result["well_formed"].values()), result["well_formed"]
    assert result["faults"]["malformed"]["as_expected"] > 0
