"""FileLogger writing real files (and a real pipe) under tmp_path."""

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import mummy

BARE = logging.Formatter("%(levelname)s %(message)s")


@pytest.fixture
def logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    log = logging.getLogger(f"tests.filelogger.{request.node.name}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def attach(log: logging.Logger, path: Path, **options) -> mummy.FileLogger:
    handler = mummy.FileLogger(path, **options)
    handler.setFormatter(BARE)
    log.addHandler(handler)
    return handler


def test_lines_are_appended_in_order_and_written_by_close(logger, tmp_path) -> None:
    path = tmp_path / "app.log"
    path.write_text("an earlier line\n")
    handler = attach(logger, path)
    for i in range(100):
        logger.info("line %d", i)
    handler.close()
    lines = path.read_text().splitlines()
    assert lines == ["an earlier line"] + [f"INFO line {i}" for i in range(100)]


def test_the_default_format_has_time_level_and_logger(logger, tmp_path) -> None:
    handler = mummy.FileLogger(tmp_path / "app.log")
    logger.addHandler(handler)
    logger.warning("careful")
    handler.close()
    (line,) = (tmp_path / "app.log").read_text().splitlines()
    assert line.endswith(f" WARNING {logger.name}: careful") and line[:4].isdigit()


def test_errors_are_on_disk_when_the_call_returns_after_what_came_before(logger, tmp_path) -> None:
    path = tmp_path / "app.log"
    attach(logger, path)
    for i in range(50):
        logger.debug("debug %d", i)
    logger.error("boom")
    # No flush, no close: the error and every record before it are already written.
    lines = path.read_text().splitlines()
    assert lines == [f"DEBUG debug {i}" for i in range(50)] + ["ERROR boom"]
    try:
        raise ValueError("with a traceback")
    except ValueError:
        logger.exception("failed")
    text = path.read_text()
    assert "ERROR failed\nTraceback (most recent call last):" in text
    assert text.endswith("ValueError: with a traceback\n")


def test_flush_waits_for_the_writer(logger, tmp_path) -> None:
    path = tmp_path / "app.log"
    handler = attach(logger, path)
    for i in range(1000):
        logger.info("x%d", i)
    handler.flush()
    assert len(path.read_text().splitlines()) == 1000


def test_the_handler_level_filters(logger, tmp_path) -> None:
    path = tmp_path / "app.log"
    handler = attach(logger, path, level=logging.INFO)
    logger.debug("hidden")
    logger.info("shown")
    handler.close()
    assert path.read_text() == "INFO shown\n"


def test_many_threads_at_once_lose_and_mangle_nothing(logger, tmp_path) -> None:
    path = tmp_path / "app.log"
    handler = attach(logger, path, max_queue=1_000_000)
    barrier = threading.Barrier(8)

    def log_many(thread: int) -> None:
        barrier.wait()
        for i in range(2000):
            if i % 500 == 0:
                logger.error("t%d e%d", thread, i)
            else:
                logger.info("t%d i%d", thread, i)

    threads = [threading.Thread(target=log_many, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handler.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 8 * 2000
    for t in range(8):  # each thread's records in the order it logged them
        mine = [line.split()[-1] for line in lines if line.split()[1] == f"t{t}"]
        assert mine == [f"e{i}" if i % 500 == 0 else f"i{i}" for i in range(2000)]


def test_a_stalled_disk_drops_records_below_error_and_says_so(logger, tmp_path) -> None:
    # A pipe nobody reads yet stands in for a stalled disk: the writer blocks on it.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    handler = attach(logger, fifo, max_queue=10)

    def log_all() -> None:
        for i in range(20_000):
            logger.info("record %05d %s", i, "x" * 40)

    # Nobody reads the pipe until the callers are done: a caller that waited for the
    # pipe would never be done (the join's bound only turns that hang into a failure).
    caller = threading.Thread(target=log_all, daemon=True)
    caller.start()
    caller.join(60)
    assert not caller.is_alive(), "a logging call waited for the stalled pipe"
    received = bytearray()
    closer = threading.Thread(target=handler.close)
    closer.start()
    os.set_blocking(reader, True)
    while chunk := os.read(reader, 65536):
        received += chunk
    closer.join()
    os.close(reader)
    lines = received.decode().splitlines()
    records = [line for line in lines if line.startswith("INFO record")]
    notices = [line for line in lines if line.startswith("mummy.FileLogger: dropped")]
    assert len(records) < 20_000 and notices
    dropped = sum(int(line.split()[2]) for line in notices)
    assert len(records) + dropped == 20_000
    numbers = [int(line.split()[2]) for line in records]
    assert numbers == sorted(numbers)


def test_records_after_close_are_dropped_quietly(logger, tmp_path) -> None:
    path = tmp_path / "app.log"
    handler = attach(logger, path)
    logger.info("before")
    handler.close()
    handler.close()  # twice is fine
    handler.emit(logging.LogRecord("x", logging.ERROR, __file__, 1, "after", None, None))
    handler.flush()
    assert path.read_text() == "INFO before\n"


def test_an_unwritable_path_raises_mummy_error(tmp_path) -> None:
    with pytest.raises(mummy.MummyError, match="cannot open log file"):
        mummy.FileLogger(tmp_path / "missing-dir" / "app.log")


@pytest.mark.parametrize("max_queue", [0, -1, 1.5, True])
def test_max_queue_must_be_a_positive_int(tmp_path, max_queue) -> None:
    with pytest.raises(mummy.MummyError, match="max_queue must be a positive int"):
        mummy.FileLogger(tmp_path / "app.log", max_queue=max_queue)
