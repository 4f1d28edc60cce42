"""What ``dexscan scan`` writes on stdout when there is no dashboard: JSON lines (``--json``) or
one readable line per signal and closed outcome. Both serialise the engine's domain events
(:mod:`dexscan.domain_events`); the JSON form is the local API's ``/ws`` form
(:func:`dexscan.service.event_json`).
"""

from __future__ import annotations

import json
from typing import IO

from dexscan.domain_events import DomainEvent, OutcomeChanged, SignalStored


class JsonLines:
    """Writes one JSON object per line to ``stream`` (stdout), flushed, for scripts and pipes."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, event: DomainEvent) -> None:
        from dexscan.service import event_json

        self._stream.write(json.dumps(event_json(event), separators=(",", ":"), allow_nan=False) + "\n")
        self._stream.flush()


class TextLines:
    """One readable line per signal and closed outcome, when stdout is neither a dashboard nor JSON."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, event: DomainEvent) -> None:
        if isinstance(event, SignalStored):
            s = event.signal
            lv = s.levels
            levels = (f" entry {lv.entry:.6g} SL {lv.sl:.6g} TP1 {lv.tp1:.6g} TP2 {lv.tp2:.6g} "
                      f"TP3 {lv.tp3:.6g}") if lv is not None else " (no ladder)"
            conf = s.confidence.label() if s.confidence is not None else "not scored"
            who = s.symbol or s.mint
            line = f"#{event.signal_id} {s.layer}/{s.strategy} {who} at {s.price:.6g}{levels} · {conf}"
        elif isinstance(event, OutcomeChanged) and event.outcome.result != "open":
            o = event.outcome
            line = f"#{event.signal_id} closed: {o.result} {o.realized_r:+.2f}R"
        else:
            return
        self._stream.write(line + "\n")
        self._stream.flush()
