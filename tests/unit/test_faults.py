"""The log of per-connection failures is rate-limited."""

import logging

from mummy.core import faults
from mummy.core.faults import FaultLog


def test_tracebacks_are_limited_per_window_and_the_rest_counted(caplog, monkeypatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(faults.time, "monotonic", lambda: now[0])
    log = logging.getLogger("mummy.test-faults")
    fault_log = FaultLog(log)
    with caplog.at_level(logging.ERROR, logger="mummy.test-faults"):
        for i in range(500):
            try:
                raise ValueError(f"hostile {i}")
            except ValueError as exc:
                fault_log.report("10.0.0.1", exc)
        tracebacks = [r for r in caplog.records if r.exc_info]
        assert len(tracebacks) == faults.TRACEBACKS_PER_WINDOW
        assert "hostile 0" in caplog.text and "hostile 11" not in caplog.text
        caplog.clear()
        now[0] += faults.WINDOW_SECONDS
        fault_log.flush(now[0])
        assert "490 more connections failed" in caplog.text
        caplog.clear()
        try:
            raise ValueError("a new window")
        except ValueError as exc:
            fault_log.report("10.0.0.1", exc)
        assert "a new window" in caplog.text
