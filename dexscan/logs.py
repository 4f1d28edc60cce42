"""Logging set-up: a file while the dashboard owns the terminal, text or JSON lines.

Nothing logs secrets: a filter masks every configured secret value that might slip into a message
(a URL with a key in an exception text, say) before any handler sees it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class SecretFilter(logging.Filter):
    """Replaces any of the given secret strings with ``***`` in every record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        msg = record.getMessage()
        masked = msg
        for s in self._secrets:
            masked = masked.replace(s, "***")
        if masked != msg:
            record.msg, record.args = masked, None
        return True


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
        handler = logging.FileHandler(file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter(secrets))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("aiohttp.access", "httpx", "httpx2", "aiogram.event", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
