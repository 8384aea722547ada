"""Prove which interpreter runs the suite: the no-GIL run must really have no GIL, with
the dependencies pyproject.toml asks for imported, and what the examples and the tests of
the services import: Flask (markupsafe's C speedups), redis-py, psycopg (libpq through
ctypes) and psycopg_pool; and the metrics extra, prometheus_client."""

import importlib
import importlib.metadata
import os
import sys
import sysconfig
import tomllib
from pathlib import Path

from packaging.requirements import Requirement  # a dependency of pytest itself

import mummy

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# mummy's dependencies on this interpreter, and the optional h2 (which the tests install).
REQUIRED = [
    requirement
    for requirement in map(
        Requirement, [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["h2"]]
    )
    if requirement.marker is None or requirement.marker.evaluate()
]
# Imported here, before the GIL is checked below; each one's module has its name.
IMPORTED = {requirement.name: importlib.import_module(requirement.name) for requirement in REQUIRED}
# And what the examples (Flask) and the tests of the services that ci/services.py starts
# (redis-py, psycopg, psycopg_pool) import, by distribution and module: imported here too.
EXTRA = {"flask": "flask", "redis": "redis", "psycopg": "psycopg", "psycopg-pool": "psycopg_pool"}
EXTRA["prometheus-client"] = "prometheus_client"  # the metrics extra (mummy.metrics)
EXTRA_IMPORTED = {name: importlib.import_module(module) for name, module in EXTRA.items()}
PINNED = {
    requirement.name: requirement
    for line in (ROOT / "ci/requirements-test.txt").read_text().splitlines()
    if line.partition("#")[0].strip()
    for requirement in [Requirement(line.partition("#")[0])]
}


def test_every_dependency_is_the_installed_release_pyproject_asks_for() -> None:
    assert {"h11", "wsproto", "h2"} <= set(IMPORTED)
    for requirement in REQUIRED:
        installed = importlib.metadata.version(requirement.name)
        assert IMPORTED[requirement.name].__version__ == installed, (
            f"{requirement.name} was imported from elsewhere than its installed {installed}"
        )
        assert requirement.specifier.contains(installed, prereleases=True), (
            f"{requirement.name} {installed} does not meet pyproject.toml's {requirement}"
        )
    assert mummy.__version__ == PROJECT["version"] == importlib.metadata.version("mummy-server")
    assert Path(mummy.__file__).is_relative_to(ROOT / "mummy"), "not the work tree's mummy"


def test_examples_and_services_dependencies_are_the_pinned_releases() -> None:
    for name in EXTRA:
        installed = importlib.metadata.version(name)
        assert PINNED[name].specifier.contains(installed), (
            f"{name} {installed} is not ci/requirements-test.txt's {PINNED[name]}"
        )
    # The pure-Python clients: no hiredis, no psycopg-binary or psycopg-c crept in.
    assert not EXTRA_IMPORTED["redis"].utils.HIREDIS_AVAILABLE
    assert EXTRA_IMPORTED["psycopg"].pq.__impl__ == "python"


def test_gil_state_matches_the_build() -> None:
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    expected = os.environ.get("MUMMY_EXPECT_FREE_THREADED")
    if expected is not None:
        assert free_threaded is (expected == "1"), "ci/test ran the suite on the wrong interpreter"
    # After importing every dependency (above): none of them turned the GIL back on.
    assert sys._is_gil_enabled() is (not free_threaded)
