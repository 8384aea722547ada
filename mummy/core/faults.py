"""Tracebacks of per-connection failures, rate-limited: a hostile peer that makes
its connection fail on purpose cannot flood the log. IO thread only."""

import logging
import time

WINDOW_SECONDS = 60.0
TRACEBACKS_PER_WINDOW = 10


class FaultLog:
    """The first TRACEBACKS_PER_WINDOW failures of each window are logged with
    their traceback; the rest are counted, and the count is logged once the
    window is over."""

    __slots__ = ("_log", "_logged", "_suppressed", "_window_end")

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._window_end = 0.0
        self._logged = 0
        self._suppressed = 0

    def report(self, peer: str, exc: BaseException) -> None:
        now = time.monotonic()
        self.flush(now)
        if self._logged < TRACEBACKS_PER_WINDOW:
            self._logged += 1
            self._log.error(
                "closing the connection from %s: serving it failed",
                peer or "-",
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        else:
            self._suppressed += 1

    def flush(self, now: float) -> None:
        """Start a new window when the current one is over."""
        if now < self._window_end:
            return
        if self._suppressed:
            self._log.error(
                "%d more connections failed in the last %.0f s (tracebacks not logged)",
                self._suppressed,
                WINDOW_SECONDS,
            )
        self._window_end = now + WINDOW_SECONDS
        self._logged = self._suppressed = 0
