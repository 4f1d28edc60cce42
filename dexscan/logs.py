"""Logging set-up: a file while the dashboard owns the terminal, text or JSON lines.

Nothing logs secrets: a filter masks every configured secret value, and anything shaped like one,
that might slip into a message, an exception's text or its traceback (a URL with a key echoed by an
error page, say) before the handler writes it, with :func:`dexscan.config.mask_text`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from dexscan.config import mask_text


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, ensure_ascii=False)


class SecretFilter(logging.Filter):
    """Masks the given secret strings, and anything shaped like a secret, with ``***`` in every record:
    its message, its exception's text and traceback, and its stack.

    The traceback is formatted here, masked, and kept as the record's ``exc_text``, which every
    formatter (logging's own and the JSON one) writes instead of formatting the exception again.
    """

    _formatter = logging.Formatter()

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = mask_text(msg, self._secrets)
        if masked != msg:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info, self._secrets)
        return True


class RepeatFilter(logging.Filter):
    """Lets the first of identical log lines through and drops its repeats for ``window_s`` seconds.

    Lines are identical when logger, level and formatted message are (tracebacks aside): a failure
    repeated a thousand times a second (a flood of clients, a dead descriptor table) costs one line
    per window instead of filling the disk. The first line of the same kind after the window passes
    with ``" [N similar messages suppressed]"`` appended, so nothing is silently lost from the
    count. Time is each record's own ``created`` stamp, so the filter reads no clock. At most
    ``max_kinds`` kinds are remembered (the least recently seen is forgotten first), so the filter
    itself stays small whatever the messages. Attach it to a handler (after the secret filter).
    """

    def __init__(self, window_s: float = 60.0, max_kinds: int = 1024) -> None:
        super().__init__()
        if not window_s > 0 or max_kinds < 1:
            raise ValueError("RepeatFilter needs window_s > 0 and max_kinds >= 1")
        self.window_s = window_s
        self.max_kinds = max_kinds
        self.suppressed_total = 0
        # kind -> [time the last line of this kind was let through, repeats suppressed since then]
        self._kinds: OrderedDict[tuple[str, int, str], list[float]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        kind = (record.name, record.levelno, msg)
        seen = self._kinds.get(kind)
        if seen is not None:
            self._kinds.move_to_end(kind)
            if record.created - seen[0] < self.window_s:
                seen[1] += 1
                self.suppressed_total += 1
                return False
            suppressed = int(seen[1])
            seen[0], seen[1] = record.created, 0
            if suppressed:
                record.msg, record.args = f"{msg} [{suppressed} similar messages suppressed]", None
            return True
        self._kinds[kind] = [record.created, 0]
        if len(self._kinds) > self.max_kinds:
            self._kinds.popitem(last=False)
        return True


class _LogFile(logging.FileHandler):
    """The log file; when it cannot be written (a full disk), one line on stderr says so, once,
    instead of logging's traceback per record."""

    _reported = False

    def handleError(self, record: logging.LogRecord) -> None:
        if self._reported:
            return
        self._reported = True
        exc = sys.exc_info()[1]
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        with contextlib.suppress(Exception):
            print(f"dexscan: cannot write the log file {self.baseFilename} ({reason}); log lines are lost "
                  "until it can be written again: free disk space", file=sys.stderr, flush=True)


def setup_logging(
    level: str = "INFO",
    fmt: str = "text",
    file: Path | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Route logs to ``file`` (if given) or stderr; stdout stays for the dashboard / JSON output."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = _LogFile(file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(secrets))
    handler.addFilter(RepeatFilter())
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("aiohttp.access", "httpx", "httpx2", "aiogram.event", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
