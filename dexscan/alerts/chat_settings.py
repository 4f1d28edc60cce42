"""A chat's alert choices (``/minconf``, ``/strategies``, ``/mute STRATEGY``, ``/quiet``) and the rules
that apply them at delivery: which alerts the chat skips, and when they arrive silently.

Stored as JSON in the ``chat_settings`` table; read by the outbox sender (at delivery) and by the
scanner backend (the bot's commands change them). Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dexscan.domain import Signal


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What a chat chose with /minconf, /strategies and /quiet (stored as JSON in ``chat_settings``)."""

    min_confidence_pct: float | None = None
    strategies: tuple[str, ...] | None = None
    quiet: tuple[int, int] | None = None  # minutes after local midnight: [start, end)
    muted_strategies: tuple[str, ...] = ()  # /mute STRATEGY: e.g. one with a negative record

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChatSettings:
        quiet = data.get("quiet")
        strategies = data.get("strategies")
        return cls(
            min_confidence_pct=data.get("min_confidence_pct"),
            strategies=tuple(strategies) if strategies else None,
            quiet=(int(quiet[0]), int(quiet[1])) if quiet else None,
            muted_strategies=tuple(str(x) for x in data.get("muted_strategies") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "min_confidence_pct": self.min_confidence_pct,
            "strategies": list(self.strategies) if self.strategies else None,
            "quiet": list(self.quiet) if self.quiet else None,
            "muted_strategies": list(self.muted_strategies),
        }

    def alerts_for(self, strategy: str) -> bool:
        """Whether this chat gets the strategy's alerts (its /strategies list and /mute STRATEGY)."""
        return strategy not in self.muted_strategies and (self.strategies is None or strategy in self.strategies)

    def is_quiet(self, local: datetime) -> bool:
        if self.quiet is None:
            return False
        start, end = self.quiet
        minute = local.hour * 60 + local.minute
        return start <= minute < end if start < end else minute >= start or minute < end

    def skip_reason(self, signal: Signal) -> str | None:
        """Why this chat does not want the signal, or None."""
        if signal.strategy in self.muted_strategies:
            return f"skipped: strategy {signal.strategy} is muted in this chat"
        if self.strategies is not None and signal.strategy not in self.strategies:
            return f"skipped: strategy {signal.strategy} is filtered out in this chat"
        if self.min_confidence_pct is not None:
            conf = signal.confidence
            score = None if conf is None else (conf.probability if conf.calibrated else conf.raw_score)
            if score is None or score * 100 < self.min_confidence_pct:
                if conf is not None and conf.calibrated:
                    return f"skipped: confidence below the chat's minimum {self.min_confidence_pct:g}%"
                return f"skipped: raw score below the chat's minimum {self.min_confidence_pct / 100:.2f}"
        return None

    def min_confidence_text(self, calibrated: bool) -> str:
        """The chat's minimum in words: a percentage only for calibrated probabilities (SPEC §7);
        while uncalibrated the same number is a minimum *raw score*, which is not a probability."""
        if self.min_confidence_pct is None:
            return "any"
        if calibrated:
            return f"≥ {self.min_confidence_pct:g}% (calibrated probability)"
        return f"raw score ≥ {self.min_confidence_pct / 100:.2f}"

    def describe(self, calibrated: bool = False) -> list[str]:
        """The chat's settings in words; ``calibrated``: the scanner's confidences are calibrated
        probabilities with measured skill (else the minimum is shown as a raw score)."""
        conf = self.min_confidence_text(calibrated)
        if self.min_confidence_pct is not None and not calibrated:
            conf += " (uncalibrated: no skill measured yet, so no percentage)"
        quiet = "off" if self.quiet is None else f"{_hhmm(self.quiet[0])}–{_hhmm(self.quiet[1])} local (silent)"
        return [
            f"Min confidence: {conf}",
            f"Strategies: {', '.join(self.strategies) if self.strategies else 'all'}"
            + (f" (muted: {', '.join(self.muted_strategies)})" if self.muted_strategies else ""),
            f"Quiet hours: {quiet}",
        ]


def parse_quiet(text: str) -> tuple[int, int]:
    """``22-07`` or ``22:30-07:00`` → minutes after midnight; ``ValueError`` says what is wrong."""
    m = re.fullmatch(r"\s*(\d{1,2})(?::(\d{2}))?\s*-\s*(\d{1,2})(?::(\d{2}))?\s*", text)
    if not m:
        raise ValueError("expected HH-HH or HH:MM-HH:MM, e.g. 22-07")
    start = int(m.group(1)) * 60 + int(m.group(2) or 0)
    end = int(m.group(3)) * 60 + int(m.group(4) or 0)
    if not (0 <= start < 1440 and 0 <= end < 1440) or int(m.group(2) or 0) >= 60 or int(m.group(4) or 0) >= 60:
        raise ValueError("hours run 00-23 and minutes 00-59")
    if start == end:
        raise ValueError("start and end are the same time")
    return start, end


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
