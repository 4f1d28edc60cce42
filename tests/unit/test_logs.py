"""Log set-up: identical lines repeated in a flood are written once per window, with their count."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from dexscan.logs import RepeatFilter, setup_logging

T0 = 1_773_479_525.0


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in root.handlers:
        h.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def emit(logger: logging.Logger, at: float, level: int, msg: str, *args: object) -> None:
    """A record stamped ``at`` (the filter reads each record's own time, never a clock)."""
    record = logger.makeRecord(logger.name, level, __file__, 1, msg, args, None)
    record.created = at
    logger.handle(record)


def test_a_thousand_identical_errors_make_two_lines_with_the_count(tmp_path: Path, root_restored: None) -> None:
    log_file = tmp_path / "scan.log"
    setup_logging("INFO", file=log_file, secrets=["sekret-bot-token"])
    log = logging.getLogger("dexscan.alerts.telegram")
    for i in range(1000):  # ten seconds of a flood
        emit(log, T0 + i * 0.01, logging.ERROR, "send failed: %s (%s)", "[Errno 24] Too many open files",
             "sekret-bot-token")
        if i == 500:
            emit(log, T0 + 5, logging.WARNING, "another thing happened")
    emit(log, T0 + 61, logging.ERROR, "send failed: %s (%s)", "[Errno 24] Too many open files", "sekret-bot-token")
    emit(log, T0 + 62, logging.ERROR, "send failed: %s (%s)", "[Errno 24] Too many open files", "sekret-bot-token")
    lines = [line.split(" ", 2)[2] for line in log_file.read_text().splitlines()]
    assert lines == [
        "ERROR dexscan.alerts.telegram: send failed: [Errno 24] Too many open files (***)",
        "WARNING dexscan.alerts.telegram: another thing happened",
        "ERROR dexscan.alerts.telegram: send failed: [Errno 24] Too many open files (***) "
        "[999 similar messages suppressed]",
    ]


def test_repeat_filter_tells_kinds_apart_and_forgets_the_oldest() -> None:
    f = RepeatFilter(window_s=10, max_kinds=2)
    log = logging.getLogger("x")

    def passes(at: float, msg: str, level: int = logging.ERROR, name: str = "x") -> bool:
        record = log.makeRecord(name, level, __file__, 1, msg, (), None)
        record.created = at
        return f.filter(record)

    assert passes(T0, "a") and passes(T0, "a", logging.WARNING) and not passes(T0 + 1, "a")
    assert passes(T0 + 1, "a", name="y")  # another logger: another kind; the least recent one goes
    assert passes(T0 + 2, "a", logging.WARNING)  # forgotten (max_kinds=2), so it is new again
    assert not passes(T0 + 9.9, "a", logging.WARNING) and passes(T0 + 12, "a", logging.WARNING)
    assert f.suppressed_total == 2
    with pytest.raises(ValueError):
        RepeatFilter(window_s=0)
