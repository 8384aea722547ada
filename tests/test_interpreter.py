"""Prove which interpreter runs the suite: the no-GIL run must really have no GIL."""

import os
import sys
import sysconfig

import h11
import wsproto
import zstandard

import mummy


def test_dependencies_import() -> None:
    assert h11.__version__ and wsproto.__version__ and zstandard.__version__ and mummy.__version__


def test_gil_state_matches_the_build() -> None:
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    expected = os.environ.get("MUMMY_EXPECT_FREE_THREADED")
    if expected is not None:
        assert free_threaded is (expected == "1"), "ci/test ran the suite on the wrong interpreter"
    if free_threaded:
        # After importing every dependency (above): none of them turned the GIL back on.
        assert sys._is_gil_enabled() is False
    else:
        assert sys._is_gil_enabled() is True
