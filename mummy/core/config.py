"""The server's options, checked once and frozen: every thread reads them freely."""

import os
from dataclasses import dataclass, field

from mummy.errors import MummyError

# Chosen from the size/speed table in docs/compression.md (bench/compression_levels.py).
DEFAULT_GZIP_LEVEL = 5
DEFAULT_ZSTD_LEVEL = 3


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MummyError(f"{name} must be a positive int, got {value!r}")
    return value


def _seconds(name: str, value: object, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        allowed = "None or " if optional else ""
        raise MummyError(f"{name} must be {allowed}a number of seconds > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """`mummy.Server`'s keyword options (the README's table says what each does)."""

    workers: int
    max_headers_len: int = 8192
    max_body_len: int = 1 << 20
    max_message_len: int = 1 << 16
    compress: bool = True
    compress_min_size: int = 860
    gzip_level: int = DEFAULT_GZIP_LEVEL
    zstd_level: int = DEFAULT_ZSTD_LEVEL
    access_log: bool = False
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 30.0
    queue_timeout: float | None = None
    max_connections: int = 50_000
    max_pending_requests: int = 4096
    websocket_send_buffer_len: int = 1 << 20
    websocket_ping_interval: float | None = None
    websocket_close_timeout: float = 5.0
    websocket_compression: bool | str = True
    http2: bool = True  # False here when the h2 package is missing
    h2_max_concurrent_streams: int = 100

    # Input kept per connection while its request is with a worker: one more request.
    max_buffered: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        """Check every option (MummyError saying what to do) and normalize types."""
        for name in (
            "workers",
            "max_headers_len",
            "max_body_len",
            "max_message_len",
            "max_connections",
            "max_pending_requests",
            "websocket_send_buffer_len",
            "h2_max_concurrent_streams",
        ):
            _positive_int(name, getattr(self, name))
        if not isinstance(self.gzip_level, int) or not 1 <= self.gzip_level <= 9:
            raise MummyError(f"gzip_level must be from 1 to 9, got {self.gzip_level!r}")
        if not isinstance(self.zstd_level, int) or not 1 <= self.zstd_level <= 22:
            raise MummyError(f"zstd_level must be from 1 to 22, got {self.zstd_level!r}")
        size = self.compress_min_size
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise MummyError(f"compress_min_size must be an int >= 0, got {size!r}")
        if self.websocket_compression not in (True, False, "context_takeover"):
            raise MummyError(
                "websocket_compression must be True, False or 'context_takeover', "
                f"got {self.websocket_compression!r}"
            )
        fixed: dict[str, object] = {
            name: _seconds(name, getattr(self, name))
            for name in ("header_timeout", "body_timeout", "keep_alive_timeout")
        }
        fixed["websocket_close_timeout"] = _seconds(
            "websocket_close_timeout", self.websocket_close_timeout
        )
        for name in ("queue_timeout", "websocket_ping_interval"):
            fixed[name] = _seconds(name, getattr(self, name), optional=True)
        for name in ("compress", "access_log", "http2"):
            fixed[name] = bool(getattr(self, name))
        fixed["max_buffered"] = self.max_headers_len + self.max_body_len
        for name, value in fixed.items():
            object.__setattr__(self, name, value)  # frozen: normalized once, here


def default_workers() -> int:
    """Mummy's default: 10 x the number of CPUs (handlers may block)."""
    return 10 * (os.cpu_count() or 1)
