"""What kind each test is, and the `serve` fixture.

A test's folder says its kind, and the kind is its marker (`pytest -m unit`):

- tests/unit: no server, no network socket, no subprocess (a guard below makes the last
  two raise); threads are allowed, for the ring's stress tests, and a socketpair, for
  the poller's; hypothesis and differential tests are here too.
- tests/integration: a server in this process on 127.0.0.1 and real clients over
  real sockets (the clients may be programs: curl, h2load, openssl for a certificate).
- tests/system: the server in a subprocess (examples run as scripts, the CLI, a fresh
  interpreter), a browser, the soak, slowloris, wheel builds, the API reference build,
  the Redis and PostgreSQL that ci/services.py starts.

Collection fails if a test is in none of these folders or carries another kind's
marker. Unit tests run first, then integration, then system.

Servers, ports and waits are in tests/servers.py; raw-socket clients in tests/client.py;
the services' URLs in tests/services.py.
"""

import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

import mummy
from tests.servers import serving

KINDS = ("unit", "integration", "system")
TESTS = Path(__file__).resolve().parent


def kind_of_folder(path: Path) -> str | None:
    if not path.is_relative_to(TESTS):
        return None
    folder = path.relative_to(TESTS).parts[0]
    return folder if folder in KINDS else None


# Before the -m selection (pytest's own hook) reads the markers.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    wrong = []
    kind_of: dict[str, int] = {}
    for item in items:
        folder = kind_of_folder(item.path)
        if folder is not None:
            item.add_marker(folder)
        kinds = {mark.name for mark in item.iter_markers() if mark.name in KINDS}
        if len(kinds) != 1:
            wrong.append(f"  {item.nodeid}: {', '.join(sorted(kinds)) or 'no kind'}")
        else:
            kind_of[item.nodeid] = KINDS.index(kinds.pop())
    if wrong:
        raise pytest.UsageError(
            "each test needs exactly one kind, from its folder (tests/unit, "
            "tests/integration or tests/system):\n" + "\n".join(wrong)
        )
    items.sort(key=lambda item: kind_of[item.nodeid])  # stable: file order within a kind


def _no_subprocess(*args: object, **kwargs: object) -> None:
    raise AssertionError("a unit test must not start a subprocess: it belongs in tests/system")


_open_socket = socket.socket.__init__


def _local_socket_only(self: socket.socket, family: int = -1, *args: Any, **kwargs: Any) -> None:
    # -1 is socket.socket()'s default: AF_INET, unless it wraps an fd.
    if family in (-1, socket.AF_INET, socket.AF_INET6):
        raise AssertionError("a unit test must not open a network socket: see tests/integration")
    _open_socket(self, family, *args, **kwargs)


@pytest.fixture(autouse=True)
def unit_tests_stay_in_process(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For unit tests: no network sockets and no subprocesses. A socketpair (AF_UNIX,
    two connected fds, what the poller's tests poll) and threads are allowed."""
    if request.node.get_closest_marker("unit") is None:
        return
    monkeypatch.setattr(socket.socket, "__init__", _local_socket_only)
    # Where every Popen (run, check_output...) starts its child; Popen cleans up after it.
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _no_subprocess)


@pytest.fixture
def serve() -> Iterator[Callable[..., mummy.Server]]:
    """`serve(handler, **options)`: a `mummy.Server` (8 workers unless told) listening
    on 127.0.0.1 on a free port, closed when the test ends."""
    with ExitStack() as servers:

        def start(handler: Callable[[mummy.Request], None], **options: Any) -> mummy.Server:
            options.setdefault("workers", 8)
            return servers.enter_context(serving(mummy.Server(handler, **options)))

        yield start
