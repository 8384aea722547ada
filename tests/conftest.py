"""Shared fixtures: a real server on 127.0.0.1, started on port 0 and always closed."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mummy


@pytest.fixture
def serve() -> Iterator[Callable[..., mummy.Server]]:
    servers: list[mummy.Server] = []

    def start(handler: Callable[[mummy.Request], None], **options: Any) -> mummy.Server:
        options.setdefault("workers", 8)
        server = mummy.Server(handler, **options)
        server.start(0, "127.0.0.1")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close(timeout=5.0)
