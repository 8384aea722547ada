"""Coverage-guided fuzzing of mummy's parsers with atheris, for a bounded time each.

Runs fuzz/http_parser.py, fuzz/websocket_frames.py, fuzz/multipart.py and
fuzz/static_paths.py for --seconds each (default 30) on .venv-gil: atheris has no
build for the free-threaded interpreter, and is pip-installed into .venv-gil
(pinned) when missing there. Each target starts from its seeds in fuzz/corpus/<target>/; inputs
it finds go to a scratch folder, never into the repository. Exits 1 if a target
crashed (an exception), hung (one input over 10 s) or ran out of memory, printing
the path of the input that did it; replay one with
    .venv-gil/bin/python fuzz/<target>.py <path>

Usage: .venv-gil/bin/python ci/fuzz.py [--seconds N] [--artifacts DIR] [TARGET ...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
TARGETS = ("http_parser", "websocket_frames", "multipart", "static_paths")
ATHERIS = "atheris==3.1.0"  # ships a cp313 manylinux wheel; none for cp313t
ARTIFACT_PREFIXES = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")


def ensure_atheris(python: str) -> bool:
    if not Path(python).exists():
        print(f"ci/fuzz.py: no {python}; run ./ci/provision first", file=sys.stderr)
        return False
    check = [python, "-c", "import atheris"]
    if subprocess.run(check, capture_output=True).returncode == 0:
        return True
    print(f"== installing {ATHERIS} into {python}", flush=True)
    install = subprocess.run([python, "-m", "pip", "install", "-q", ATHERIS])
    if install.returncode == 0 and subprocess.run(check, capture_output=True).returncode == 0:
        return True
    print(
        f"ci/fuzz.py: could not install {ATHERIS} into {python}; atheris needs CPython "
        "with the GIL (there is no free-threaded build) and, without a wheel, clang and "
        "libFuzzer to build",
        file=sys.stderr,
    )
    return False


def run_target(python: str, name: str, seconds: int, artifacts: Path) -> tuple[bool, str]:
    """Fuzz one target; returns (passed, one summary line)."""
    scratch = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    target_artifacts = artifacts / name
    target_artifacts.mkdir(parents=True, exist_ok=True)
    log_path = target_artifacts / "fuzz.log"
    command = [
        python,
        str(FUZZ / f"{name}.py"),
        str(scratch),  # the first folder gets the new inputs
        str(FUZZ / "corpus" / name),
        f"-max_total_time={seconds}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-max_len=4096",
        "-print_final_stats=1",
        f"-artifact_prefix={target_artifacts}/",
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.monotonic()
    with log_path.open("wb") as log:
        try:
            # libFuzzer stops itself at max_total_time; this bound is for a wedged process.
            rc = subprocess.run(
                command, cwd=ROOT, env=env, stdout=log, stderr=log, timeout=seconds + 120
            ).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    elapsed = time.monotonic() - started
    output = log_path.read_text(errors="replace")
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", output)
    execs = int(runs[-1]) if runs else 0
    corpus = len(list(scratch.iterdir()))
    shutil.rmtree(scratch, ignore_errors=True)
    found = sorted(p for p in target_artifacts.iterdir() if p.name.startswith(ARTIFACT_PREFIXES))
    line = (
        f"{name:17} {elapsed:6.1f} s  {execs:9d} execs  {execs / max(elapsed, 1e-9):8.0f}/s  "
        f"{corpus:5d} new inputs"
    )
    if rc == 0 and not found:
        return True, line + "  ok"
    print(f"== {name}: FAILED (exit code {rc}); log {log_path}", file=sys.stderr)
    print("\n".join(output.splitlines()[-40:]), file=sys.stderr)
    for path in found:
        print(f"   failing input: {path}", file=sys.stderr)
    return False, line + f"  FAILED, exit code {rc}, inputs: {' '.join(map(str, found))}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help=f"some of {', '.join(TARGETS)} (all)")
    parser.add_argument("--seconds", type=int, default=30, help="fuzzing time per target")
    parser.add_argument("--python", default=str(ROOT / ".venv-gil" / "bin" / "python"))
    parser.add_argument(
        "--artifacts", type=Path, help="where failing inputs and logs go (default: a temp dir)"
    )
    args = parser.parse_args()
    args.targets = args.targets or list(TARGETS)
    if unknown := set(args.targets) - set(TARGETS):
        parser.error(f"unknown targets {sorted(unknown)}; the targets are {TARGETS}")
    if not ensure_atheris(args.python):
        return 2
    artifacts = args.artifacts or Path(tempfile.mkdtemp(prefix="mummy-fuzz-"))
    print(f"== fuzzing {', '.join(args.targets)} for {args.seconds} s each", flush=True)
    results = [run_target(args.python, name, args.seconds, artifacts) for name in args.targets]
    for _, line in results:
        print(line)
    return 0 if all(passed for passed, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
