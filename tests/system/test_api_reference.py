"""The API reference builds (ci/docs.py, pdoc, in a subprocess) and names everything
in `mummy.__all__`, and nothing of mummy.core."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import mummy
from tests.servers import ROOT

GIL_PYTHON = ROOT / ".venv-gil/bin/python"


def pdoc_python() -> str:
    """pdoc is installed in .venv-gil only (ci/requirements-lint.txt); use this interpreter
    when it has pdoc itself."""
    if importlib.util.find_spec("pdoc") is not None:
        return sys.executable
    return str(GIL_PYTHON)


def test_api_reference_names_every_public_name(tmp_path: Path) -> None:
    python = pdoc_python()
    assert Path(python).exists(), f"{python} is missing: run ./ci/test to provision .venv-gil"
    # ci/test sets PYTHON_GIL=0 for the free-threaded run; the GIL build refuses to start
    # with it, and it says nothing about the docs.
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    done = subprocess.run(
        [python, str(ROOT / "ci/docs.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = (tmp_path / "mummy.html").read_text()
    assert (tmp_path / "index.html").exists()
    missing = []
    for name in mummy.__all__:
        if isinstance(getattr(mummy, name), type(mummy)):
            if not (tmp_path / "mummy" / f"{name}.html").exists():
                missing.append(f"module {name} (mummy/{name}.html)")
        elif f'id="{name}"' not in page:
            missing.append(name)
    assert not missing, f"not in the API reference: {missing}"
    assert not (tmp_path / "mummy" / "core.html").exists(), "mummy.core is not public"
