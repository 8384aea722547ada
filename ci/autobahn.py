#!/usr/bin/env python3
"""Run the Autobahn|Testsuite fuzzing client against examples/autobahn_echo.py.

    ci/autobahn.py --python .venv-ft/bin/python           # the CI set (ci/autobahn-spec-ci.json)
    ci/autobahn.py --python .venv-gil/bin/python --all    # every case, 1.* to 13.*
    ci/autobahn.py --cases 5.*,7.1.1 --keep-report /tmp/ab   # some cases; keep the HTML report

Autobahn|Testsuite runs on Python 2.7 only. The first run installs it (pinned, below) with
that interpreter's pip into ~/.cache/mummy/autobahn/, and later runs reuse it. Python 2.7
is found by --python2, else $MUMMY_PYTHON2, else ~/.pyenv/versions/2.7.*, else python2.7
on PATH.

Prints the number of cases by outcome (OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED,
FAILED), then each case that is not OK or INFORMATIONAL with what Autobahn expected and
got. Exits 1 if a case FAILED, 2 if the suite could not run (the reason is printed).
Runs on any python3 >= 3.11; it only orchestrates.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ECHO_SERVER = REPO / "examples/autobahn_echo.py"
SPEC_CI = REPO / "ci/autobahn-spec-ci.json"
SPEC_ALL = REPO / "ci/autobahn-spec-all.json"
CACHE = Path.home() / ".cache/mummy/autobahn"
# 25.10.1 pins every dependency to a release that still supports Python 2.7 (Twisted
# 19.10.0, autobahn 0.10.9, cryptography 3.3.2...), so a plain pip install works.
AUTOBAHN_PACKAGE = "autobahntestsuite==25.10.1"
INSTALL_TIMEOUT_S = 900
START_TIMEOUT_S = 30.0
# The CI set takes well under a minute; every case, about ten. Past this, something hangs.
SUITE_TIMEOUT_S = 3600
OUTCOMES = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")


class SuiteError(Exception):
    """The suite could not run; the message says why and what to do."""


def find_python2(explicit: str | None) -> Path:
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get("MUMMY_PYTHON2"):
        candidates.append(Path(os.environ["MUMMY_PYTHON2"]))
    else:
        candidates += sorted(Path.home().glob(".pyenv/versions/2.7.*/bin/python"), reverse=True)
        on_path = shutil.which("python2.7")
        if on_path:
            candidates.append(Path(on_path))
    for path in candidates:
        if path.exists():
            return path
    raise SuiteError(
        "Autobahn|Testsuite needs Python 2.7 and none was found "
        f"(looked at: {', '.join(map(str, candidates)) or '~/.pyenv/versions/2.7.*, python2.7'}); "
        "install one (`pyenv install 2.7.18`) or pass --python2 PATH"
    )


def wstest_command(python2: Path) -> list[str]:
    """wstest, run from the install dir. site.addsitedir (not PYTHONPATH) so that the
    .pth files of namespace packages (zope.interface) are read."""
    code = (
        "import site, sys; site.addsitedir(sys.argv.pop(1)); sys.argv[0] = 'wstest'; "
        "from autobahntestsuite.wstest import run; sys.exit(run())"
    )
    return [str(python2), "-c", code, str(CACHE / "site")]


def ensure_autobahn(python2: Path) -> None:
    marker = CACHE / "installed.txt"
    probe = [*wstest_command(python2), "--help"]
    if (
        marker.exists()
        and marker.read_text().strip() == f"{python2} {AUTOBAHN_PACKAGE}"
        and subprocess.run(probe, capture_output=True, timeout=120).returncode == 0
    ):
        return
    print(f"== installing {AUTOBAHN_PACKAGE} with {python2} into {CACHE}", flush=True)
    shutil.rmtree(CACHE, ignore_errors=True)
    CACHE.mkdir(parents=True)
    install = subprocess.run(
        [str(python2), "-m", "pip", "install", "--target", str(CACHE / "site"), AUTOBAHN_PACKAGE],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    if install.returncode != 0:
        raise SuiteError(
            f"pip could not install {AUTOBAHN_PACKAGE} for Python 2.7:\n"
            + install.stdout[-3000:]
            + install.stderr[-3000:]
        )
    check = subprocess.run(probe, capture_output=True, text=True, timeout=120)
    if check.returncode != 0:
        raise SuiteError(f"wstest does not start after the install:\n{check.stderr[-3000:]}")
    marker.write_text(f"{python2} {AUTOBAHN_PACKAGE}\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_echo_server(python: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(python), str(ECHO_SERVER), str(port)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SuiteError(
                f"the echo server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SuiteError(f"the echo server was not listening after {START_TIMEOUT_S:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_spec(template: Path, cases: list[str] | None, url: str, outdir: Path) -> Path:
    spec = json.loads(template.read_text())
    spec["outdir"] = str(outdir)
    spec["servers"] = [{"agent": "mummy", "url": url}]
    if cases:
        spec["cases"] = cases
    path = outdir.parent / "spec.json"
    path.write_text(json.dumps(spec, indent=2))
    return path


def summarize(outdir: Path) -> tuple[collections.Counter[str], list[str]]:
    """Count outcomes from the report's index.json; describe each case worth a look."""
    index_file = outdir / "index.json"
    if not index_file.exists():
        raise SuiteError(f"wstest wrote no report ({index_file} is missing)")
    results = json.loads(index_file.read_text()).get("mummy", {})
    if not results:
        raise SuiteError("the report has no results for the echo server")
    counts: collections.Counter[str] = collections.Counter()
    notes = []
    for case in sorted(results, key=lambda c: [int(p) for p in c.split(".")]):
        result = results[case]
        behavior, close = result["behavior"], result["behaviorClose"]
        counts[behavior] += 1
        if behavior in ("OK", "INFORMATIONAL") and close in ("OK", "INFORMATIONAL"):
            continue
        detail = json.loads((outdir / result["reportfile"]).read_text())
        notes.append(
            f"{case} {behavior} (close: {close}, remote close code "
            f"{result.get('remoteCloseCode')}): {detail.get('description', '')}\n"
            f"    expected: {detail.get('expectation', '')}\n"
            f"    result:   {detail.get('result', '')}\n"
            f"    close:    {detail.get('resultClose', '')}"
        )
    return counts, notes


def run(args: argparse.Namespace, workdir: Path) -> int:
    python = Path(args.python)
    if not python.exists():
        raise SuiteError(f"--python {python} does not exist (run ./ci/provision first?)")
    python2 = find_python2(args.python2)
    ensure_autobahn(python2)
    port = free_port()
    outdir = workdir / "reports"
    cases = args.cases.split(",") if args.cases else None
    spec = write_spec(SPEC_ALL if args.all else SPEC_CI, cases, f"ws://127.0.0.1:{port}", outdir)
    server_log = workdir / "echo-server.log"
    wstest_log = workdir / "wstest.log"
    server = start_echo_server(python, port, server_log)
    started = time.monotonic()
    try:
        with wstest_log.open("wb") as out:
            try:
                wstest = subprocess.run(
                    [*wstest_command(python2), "-m", "fuzzingclient", "-s", str(spec)],
                    cwd=workdir,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=SUITE_TIMEOUT_S,
                )
            except subprocess.TimeoutExpired:
                raise SuiteError(f"wstest ran past {SUITE_TIMEOUT_S} s") from None
        server_died = server.poll() is not None
    finally:
        stop(server)
    elapsed = time.monotonic() - started
    if wstest.returncode != 0:
        raise SuiteError(
            f"wstest exited with {wstest.returncode}:\n{wstest_log.read_text()[-3000:]}"
        )
    counts, notes = summarize(outdir)
    version = subprocess.run(
        [
            str(python),
            "-c",
            "import sys; print(sys.version.split()[0], "
            "'GIL' if sys._is_gil_enabled() else 'free-threaded')",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(
        f"== Autobahn|Testsuite against mummy on {python} ({version}): "
        f"{sum(counts.values())} cases in {elapsed:.1f} s"
    )
    for outcome in OUTCOMES:
        print(f"{outcome:>14}: {counts.get(outcome, 0)}")
    for other in sorted(set(counts) - set(OUTCOMES)):
        print(f"{other:>14}: {counts[other]}")
    for note in notes:
        print(note)
    if server_died:
        print(f"the echo server died during the run:\n{server_log.read_text()[-3000:]}")
        return 1
    if args.keep_report:
        shutil.copytree(outdir, args.keep_report, dirs_exist_ok=True)
        print(f"report: {Path(args.keep_report) / 'index.html'}")
    return 1 if counts.get("FAILED") else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python",
        default=str(REPO / ".venv-ft/bin/python"),
        help="the interpreter that runs the echo server (default .venv-ft/bin/python)",
    )
    parser.add_argument("--cases", help="comma-separated case patterns, e.g. 1.*,5.1")
    parser.add_argument("--all", action="store_true", help="every case, 1.* to 13.*")
    parser.add_argument("--python2", help="the Python 2.7 that runs Autobahn|Testsuite")
    parser.add_argument("--keep-report", metavar="DIR", help="copy the HTML report there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mummy-autobahn-") as tmp:
        try:
            return run(args, Path(tmp))
        except SuiteError as exc:
            print(f"ci/autobahn.py: the suite could not run: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
