"""Packaging: build the wheel and the sdist, install the wheel into a fresh venv made from
the interpreter running this test (3.13t on the free-threaded run, 3.13 on the GIL run),
with no index, and serve examples/basic.py from that venv.

Network, or the local package index that pip is configured with, is used once: `pip
download` fetches setuptools (the build backend) and the wheels of mummy's dependencies,
pinned to the versions installed here, into a folder. zstandard's cp313t wheel is not on
PyPI: ci/provision builds it and caches it in ~/.cache/mummy/wheels ($MUMMY_CACHE/wheels),
which pip is pointed at. Everything after that is offline (`--no-index`): the wheel is
built with `pip wheel --no-build-isolation` against that setuptools, the sdist with
`python -m build --sdist` when `build` is installed and otherwise with setuptools' own
PEP 517 hook (what `build` calls), and the install takes wheels from those folders only.
"""

import http.client
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.servers import ROOT, ServerProcess

CACHE_WHEELS = Path(os.environ.get("MUMMY_CACHE", Path.home() / ".cache/mummy")) / "wheels"
DEPENDENCIES = ("h11", "wsproto", "zstandard")
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
PIP_TIMEOUT_S = 300


def run(
    argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=PIP_TIMEOUT_S
    )
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would let the work tree's mummy in
    (PYTHONPATH, an active venv) or force the GIL either way (PYTHON_GIL)."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHON_GIL", "PYTHONHOME")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The source (copied aside), the dependency wheels, setuptools, the wheel and sdist."""
    root = tmp_path_factory.mktemp("packaging")
    src, wheels, tools, dist = (root / name for name in ("src", "wheels", "tools", "dist"))
    # Only what a release contains: building in a copy leaves no build/ in the work tree.
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "mummy", src / "mummy", ignore=shutil.ignore_patterns("__pycache__"))

    pins = [f"{name}=={importlib.metadata.version(name)}" for name in DEPENDENCIES]
    if FREE_THREADED:
        cached = list(
            CACHE_WHEELS.glob(f"zstandard-{importlib.metadata.version('zstandard')}-*t-*.whl")
        )
        assert cached, f"no cp313t zstandard wheel in {CACHE_WHEELS}: run ./ci/provision"
    pip = [sys.executable, "-m", "pip"]
    run(
        [
            *(*pip, "download", "--only-binary=:all:", "--dest", str(wheels)),
            *("--find-links", str(CACHE_WHEELS), "setuptools>=77", *pins),
        ]
    )
    offline = ["--no-index", "--find-links", str(wheels)]
    run([*pip, "install", "--quiet", *offline, "--target", str(tools), "setuptools"])
    with_tools = clean_env(PYTHONPATH=str(tools))
    run(
        [*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", *offline, "-w", str(dist)],
        env=with_tools,
    )
    if importlib.util.find_spec("build") is not None:
        run(
            [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(dist)],
            cwd=src,
            env=with_tools,
        )
    else:
        hook = f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})"
        run([sys.executable, "-c", hook], cwd=src, env=with_tools)
    return {"root": root, "wheels": wheels, "dist": dist}


def only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {folder}, found {found}"
    return found[0]


def test_wheel_contents_and_metadata(built: dict[str, Path]) -> None:
    wheel = only(built["dist"], "mummy_server-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(metadata_name).decode()
    assert {"mummy/py.typed", "mummy/__init__.py", "mummy/core/loop.py"} <= names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "examples/", "ci/"))]
    for line in (
        "Name: mummy-server",
        "Requires-Python: >=3.13",
        "License-Expression: MIT",
        "Classifier: Programming Language :: Python :: Free Threading :: 3 - Stable",
        "Classifier: Typing :: Typed",
        "Provides-Extra: h2",
        "Provides-Extra: test",
        'Requires-Dist: h2>=4.1; extra == "h2"',
    ):
        assert line in metadata.splitlines(), f"{line!r} not in the wheel's METADATA"
    for dependency in DEPENDENCIES:
        assert any(ln.startswith(f"Requires-Dist: {dependency}>=") for ln in metadata.splitlines())


def test_sdist_contents(built: dict[str, Path]) -> None:
    sdist = only(built["dist"], "mummy_server-*.tar.gz")
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as tf:
        names = set(tf.getnames())
    for name in ("pyproject.toml", "README.md", "PKG-INFO", "mummy/py.typed", "mummy/server.py"):
        assert f"{top}/{name}" in names, f"{name} missing from {sdist.name}"


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_wheel_installs_offline_and_serves_an_example(built: dict[str, Path]) -> None:
    root = built["root"]
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin/python")
    wheel = only(built["dist"], "mummy_server-*-py3-none-any.whl")
    offline = ["--no-index", "--find-links", str(built["wheels"])]
    run([python, "-m", "pip", "install", "--quiet", *offline, str(wheel)], env=clean_env())

    probe = (
        "import json, sys, importlib.resources, mummy\n"
        "print(json.dumps({'file': mummy.__file__, 'version': mummy.__version__,"
        " 'typed': importlib.resources.files('mummy').joinpath('py.typed').is_file(),"
        " 'gil': getattr(sys, '_is_gil_enabled', lambda: True)()}))"
    )
    facts = json.loads(run([python, "-c", probe], cwd=root, env=clean_env()).stdout)
    assert Path(facts["file"]).is_relative_to(venv), facts["file"]
    assert facts["typed"]
    assert facts["version"] == importlib.metadata.version("mummy-server")
    # On 3.13t, importing mummy and its dependencies must not turn the GIL back on.
    assert facts["gil"] is not FREE_THREADED

    example = root / "basic.py"
    shutil.copy2(ROOT / "examples/basic.py", example)
    with ServerProcess([python, str(example)], cwd=root, env=clean_env()) as server:
        assert get(server.port, "/") == (200, b"Hello, World!")
        assert get(server.port, "/nope")[0] == 404
        # serve() closes gracefully and returns.
        assert server.stop(signal.SIGTERM) == 0, server.output
