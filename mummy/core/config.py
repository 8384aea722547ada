"""The server's options, checked once and frozen: every thread reads them freely."""

import os
from dataclasses import dataclass, field

from mummy.core.forwarded import TrustedProxies
from mummy.errors import MummyError

# Chosen from the size/speed table in docs/compression.md (bench/micro/compression_levels.py).
DEFAULT_GZIP_LEVEL = 5
DEFAULT_ZSTD_LEVEL = 3


def available_cores() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


# The adaptive pool's bounds (docs/performance.md has the measurements): 2 x cores
# hot threads serve CPU-bound and short requests best; blocking handlers grow it.
DEFAULT_MIN_WORKERS = max(2, 2 * available_cores())
DEFAULT_MAX_WORKERS = 256


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MummyError(f"{name} must be a positive int, got {value!r}")
    return value


def _size(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MummyError(f"{name} must be an int >= 0, got {value!r}")
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

    # None: an adaptive pool of min_workers..max_workers threads; N: exactly N.
    workers: int | None = None
    min_workers: int | None = None  # normalized: the pool's floor
    max_workers: int | None = None  # normalized: the pool's ceiling
    worker_idle_timeout: float = 30.0
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
    websocket_compress_min_size: int = 1024
    http2: bool = True  # False here when the h2 package is missing
    h2_max_concurrent_streams: int = 100
    stream_buffer_len: int = 256 * 1024
    sse_send_buffer_len: int = 1 << 20
    sse_keepalive_interval: float | None = 15.0
    forwarded_allow_ips: str | list[str] | None = None
    # Event loops (IO threads), each with its own epoll, connections and timers.
    io_threads: int = 1

    # Input kept per connection while its request is with a worker: one more request.
    max_buffered: int = field(init=False, default=0)
    # The peers trusted for Forwarded / X-Forwarded-*: None when nobody is.
    trusted_proxies: TrustedProxies | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        """Check every option (MummyError saying what to do) and normalize types."""
        self._pool_bounds()
        for name in (
            "max_headers_len",
            "max_body_len",
            "max_message_len",
            "max_connections",
            "max_pending_requests",
            "websocket_send_buffer_len",
            "h2_max_concurrent_streams",
            "stream_buffer_len",
            "sse_send_buffer_len",
            "io_threads",
        ):
            _positive_int(name, getattr(self, name))
        if not isinstance(self.gzip_level, int) or not 1 <= self.gzip_level <= 9:
            raise MummyError(f"gzip_level must be from 1 to 9, got {self.gzip_level!r}")
        if not isinstance(self.zstd_level, int) or not 1 <= self.zstd_level <= 22:
            raise MummyError(f"zstd_level must be from 1 to 22, got {self.zstd_level!r}")
        for name in ("compress_min_size", "websocket_compress_min_size"):
            _size(name, getattr(self, name))
        if self.websocket_compression not in (True, False, "context_takeover"):
            raise MummyError(
                "websocket_compression must be True, False or 'context_takeover', "
                f"got {self.websocket_compression!r}"
            )
        fixed: dict[str, object] = {
            name: _seconds(name, getattr(self, name))
            for name in ("header_timeout", "body_timeout", "keep_alive_timeout")
        }
        for name in ("websocket_close_timeout", "worker_idle_timeout"):
            fixed[name] = _seconds(name, getattr(self, name))
        for name in ("queue_timeout", "websocket_ping_interval", "sse_keepalive_interval"):
            fixed[name] = _seconds(name, getattr(self, name), optional=True)
        for name in ("compress", "access_log", "http2"):
            fixed[name] = bool(getattr(self, name))
        fixed["max_buffered"] = self.max_headers_len + self.max_body_len
        trusted = TrustedProxies(self.forwarded_allow_ips)  # MummyError when malformed
        fixed["trusted_proxies"] = trusted if trusted.anyone else None
        for name, value in fixed.items():
            object.__setattr__(self, name, value)  # frozen: normalized once, here

    def _pool_bounds(self) -> None:
        workers, low, high = self.workers, self.min_workers, self.max_workers
        if workers is not None:
            _positive_int("workers", workers)
            if (low is not None and low != workers) or (high is not None and high != workers):
                raise MummyError(
                    f"workers={workers} fixes the pool at {workers} threads: leave min_workers "
                    "and max_workers unset (or drop workers for an adaptive pool)"
                )
            low = high = workers
        else:
            low = DEFAULT_MIN_WORKERS if low is None else _positive_int("min_workers", low)
            high = DEFAULT_MAX_WORKERS if high is None else _positive_int("max_workers", high)
            if high < low:
                raise MummyError(f"max_workers ({high}) must be >= min_workers ({low})")
        object.__setattr__(self, "min_workers", low)
        object.__setattr__(self, "max_workers", high)

    def per_loop(self, total: int) -> int:
        """A server-wide bound (max_connections, max_pending_requests) as each
        loop's share: split evenly, rounded up."""
        return -(-total // self.io_threads)

    def pool_bounds(self) -> tuple[int, int]:
        """(min_workers, max_workers), equal for a fixed pool."""
        low, high = self.min_workers, self.max_workers
        assert low is not None and high is not None  # set by __post_init__
        return low, high

    def describe_pool(self) -> str:
        low, high = self.pool_bounds()
        if low == high:
            return f"{low} workers"
        idle = f"{self.worker_idle_timeout:g}"
        return f"adaptive pool of {low}-{high} workers, idle ones retire after {idle} s"
