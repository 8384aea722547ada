"""`FileLogger`: a `logging.Handler` that appends to a file from its own thread."""

from __future__ import annotations

import logging
import os
import sys
import threading

from mummy.errors import MummyError

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class FileLogger(logging.Handler):
    """Appends log records to a file without making the logging thread wait for disk IO.

    >>> logging.getLogger("mummy").setLevel(logging.INFO)
    >>> mummy.Server(router, log_handler=mummy.FileLogger("server.log")).serve(8080)

    Records below ERROR are formatted by the caller, put on a bounded queue and
    written, in batches, by one writer thread; the call returns at once. If the
    writer falls `max_queue` records behind (a stalled disk), further records
    below ERROR are dropped, and a line saying how many is written once it
    catches up. Records at ERROR and above are never dropped and are written
    through: the call returns once the record, and every record queued before
    it, is in the file (flushed to the OS), as Mummy does for its error level.

    `flush()` waits until everything logged so far is written; `close()` writes
    what is queued, stops the writer and closes the file (`logging.shutdown`,
    run at exit, does both). Records logged after `close()` are dropped.

    The file is opened in append mode and grows without bound: rotate it with
    an external tool in copytruncate mode (logrotate's ``copytruncate``), since
    appends land at the new end of a truncated file.

    Thread safety: any thread may log; `_lock` guards the queue and the
    counters and is held only to append to or swap the queue, never during IO.
    Only the writer thread touches the file until `close()` has joined it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        level: int = logging.NOTSET,
        *,
        max_queue: int = 10_000,
    ) -> None:
        if not isinstance(max_queue, int) or isinstance(max_queue, bool) or max_queue < 1:
            raise MummyError(f"max_queue must be a positive int, got {max_queue!r}")
        super().__init__(level)
        self.path = os.fspath(path)
        try:
            self._file = open(self.path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        except OSError as exc:
            raise MummyError(f"cannot open log file {self.path!r}: {exc.strerror}") from None
        self.setFormatter(logging.Formatter(DEFAULT_FORMAT))
        self._max_queue = max_queue
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)
        self._written_up_to = threading.Condition(self._lock)
        self._pending: list[str] = []
        self._queued = 0  # lines queued since the start (a sequence number)
        self._written = 0  # lines written and flushed since the start
        self._dropped = 0  # lines dropped since the writer last took the queue
        self._closing = False
        self._writer_done = False
        self._writer = threading.Thread(
            target=self._write_loop, name=f"mummy-filelogger {self.path}", daemon=True
        )
        self._writer.start()

    def handle(self, record: logging.LogRecord) -> bool:
        # logging.Handler.handle holds the handler's lock around emit(), which would
        # serialize every worker's formatting; emit() here needs only `_lock`.
        result = self.filter(record)
        if isinstance(result, logging.LogRecord):
            record = result
        if result:
            self.emit(record)
        return bool(result)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        urgent = record.levelno >= logging.ERROR
        with self._lock:
            if self._closing:
                return
            if not urgent and len(self._pending) >= self._max_queue:
                self._dropped += 1
                return
            self._pending.append(line)
            self._queued += 1
            self._has_work.notify()
            if urgent:
                self._wait_written(self._queued)

    def flush(self) -> None:
        """Wait until every record logged so far is written to the file."""
        with self._lock:
            self._wait_written(self._queued)

    def close(self) -> None:
        """Write what is queued, stop the writer thread and close the file."""
        with self._lock:
            already = self._closing
            self._closing = True
            self._has_work.notify()
        if not already:
            self._writer.join()
            self._file.close()
        super().close()

    def _wait_written(self, line: int) -> None:
        # Called with `_lock` held; Condition.wait releases it while waiting.
        while self._written < line and not self._writer_done:
            self._written_up_to.wait()

    def _write_loop(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._pending and not self._closing:
                        self._has_work.wait()
                    if not self._pending:
                        return
                    batch, self._pending = self._pending, []
                    up_to = self._queued
                    dropped, self._dropped = self._dropped, 0
                if dropped:
                    batch.append(
                        f"mummy.FileLogger: dropped {dropped} log records: the disk was too slow\n"
                    )
                self._write("".join(batch))
                with self._lock:
                    self._written = up_to
                    self._written_up_to.notify_all()
        finally:
            with self._lock:
                self._writer_done = True
                self._written_up_to.notify_all()

    def _write(self, text: str) -> None:
        try:
            self._file.write(text)
            self._file.flush()
        except (OSError, ValueError) as exc:
            # Like Mummy, never fail the caller; unlike it, say so once per failed batch.
            print(f"mummy.FileLogger: cannot write to {self.path}: {exc}", file=sys.stderr)

    def __repr__(self) -> str:
        return f"<FileLogger {self.path} ({logging.getLevelName(self.level)})>"
