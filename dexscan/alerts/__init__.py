"""Alerts: cards (:mod:`.format`), optional charts (:mod:`.charts`), Telegram delivery and commands
(:mod:`.telegram`, imported on demand since it pulls in aiogram)."""

from dexscan.alerts.format import AlertMessage, Button, CardExtras, digest_card, outcome_card, signal_card

__all__ = ["AlertMessage", "Button", "CardExtras", "digest_card", "outcome_card", "signal_card"]
