"""What the bot answers, as Telegram HTML: pure functions from the backend's answers to text
(the command handlers in :mod:`.commands` only parse, ask :class:`~dexscan.backend.ScannerBackend`
and send what these return)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from dexscan.alerts.chat_settings import ChatSettings
from dexscan.alerts.format import (
    LAYER_LABEL,
    RESULT_LABEL,
    fmt_clock,
    reason_text,
    utf16_len,
    verdict_lines,
)
from dexscan.backend import ScoreRow, StoredSignal, TopToken, WhyAnswer
from dexscan.config import Settings
from dexscan.domain import GateVerdict, Signal
from dexscan.fmt import fmt_duration, fmt_price, fmt_usd
from dexscan.status import open_r, stop_in_force


def top_text(tokens: Sequence[TopToken]) -> str:
    """``/top``: the universe's tokens by 24h volume, with liquidity (and price and change when known)."""
    if not tokens:
        return "No tokens in the universe yet."
    lines = ["<b>Top tokens</b> (24h volume)"]
    for i, t in enumerate(tokens, 1):
        extra = f" · {fmt_price(t.price_usd)}" if t.price_usd is not None else ""
        if t.change_pct is not None:
            extra += f" {t.change_pct:+.1f}%"
        symbol = t.symbol or f"{t.mint[:4]}…{t.mint[-4:]}"
        lines.append(
            f"{i}. <b>{escape(symbol)}</b> vol {fmt_usd(t.volume_h24_usd)} · "
            f"liq {fmt_usd(t.liquidity_usd)}{extra}\n<code>{escape(t.mint)}</code>"
        )
    return "\n".join(lines)


def stale_note(stale_after_s: float, runs_gates: bool) -> str:
    """What ``/check`` adds under verdicts older than ``stale_after_s``: why they were not renewed."""
    return f"\n\nStale: older than {fmt_duration(int(stale_after_s))}" + (
        ", and the gates could not be run now (the chain or the market did not answer)."
        if runs_gates else
        "; this bot runs without the scanner and cannot run the gates (<code>dexscan check MINT</code> can).")


def render_strategies(known: Sequence[str], cs: ChatSettings, notes: Callable[[str], Sequence[str]]) -> str:
    """The /strategies answer: each enabled strategy, whether it alerts in this chat, and what the
    scanner measured of it (no-skill text, record; a negative record marked ⚠️)."""
    lines = ["<b>Strategies</b>"]
    for name in known:
        state = "alerts here" if cs.alerts_for(name) else (
            "muted here" if name in cs.muted_strategies else "filtered out here")
        said = list(notes(name))
        mark = "⚠️ " if any(n.startswith("negative record") for n in said) else ""
        lines.append(f"\n{mark}<b>{escape(name)}</b>: {state}")
        lines += [f"  {escape(n)}" for n in said]
        if not said:
            lines.append("  no measured record (no calibrator loaded, or none of its signals in the calibrator's data)")
    lines.append("\n/mute STRATEGY or /unmute STRATEGY; /strategies a,b or all to choose the list.")
    return "\n".join(lines)


def render_worth(worth: Mapping[str, Any]) -> list[str]:
    """Each strategy against the baselines measured on the calibrator's data and ladder, with the
    lift (TP1-first points and mean R), a negative expectancy marked ⚠️."""
    strategies = worth.get("strategies") or {}
    if not strategies:
        return []
    baselines = worth.get("baselines") or {}
    lines = ["<b>Measured on history</b> (the calibrator's data, same ladder; lift = strategy − baseline)"]
    for name, b in baselines.items():
        lines.append(f"{escape(name)}: {b.get('closed', 0)} closed · TP1 first {_pct_or_na(b.get('tp1_first_rate'))}"
                     f" · mean {_r_or_na(b.get('mean_r'))}")
    for name, t in sorted(strategies.items()):
        mark = "⚠️ negative expectancy · " if t.get("expectancy") == "negative" else ""
        lines.append(f"{mark}<b>{escape(name)}</b>: {t.get('closed', 0)} closed · TP1 first "
                     f"{_pct_or_na(t.get('tp1_first_rate'))} · mean {_r_or_na(t.get('mean_r'))}")
        for base, lift in (t.get("lift") or {}).items():
            rate = lift.get("tp1_first_rate")
            lines.append(f"  lift vs {escape(base.removeprefix('baseline: '))}: "
                         f"{'n/a' if rate is None else f'{rate * 100:+.1f} pts'} TP1 first, "
                         f"{_r_or_na(lift.get('mean_r'))} mean")
    return lines


def _pct_or_na(v: Any) -> str:
    return "n/a" if v is None else f"{float(v) * 100:.1f}%"


def _r_or_na(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):+.2f}R"


def render_scorecard(rows: Sequence[ScoreRow], worth: Mapping[str, Any] | None = None) -> str:
    """The /stats text: per strategy a total, then one line per band: a calibrated probability
    decile (``conf 60–69%``) or, for uncalibrated signals, a raw-score band (``raw score
    0.60–0.69``), never a percentage for a score without measured skill (SPEC §7); then, with a
    calibrator, each strategy against the baselines on history with its lift (:func:`render_worth`)."""
    history = render_worth(worth or {})
    if not rows:
        empty = "No closed signals yet: the scorecard fills as live signals reach a stop, a target or expire."
        return "\n\n".join([empty, "\n".join(history)]) if history else empty
    lines = ["<b>Scorecard</b> (closed live signals; hit = TP1 before the stop)"]
    if not any(r.calibrated for r in rows):
        lines.append("Uncalibrated: grouped by raw score, which is not a probability.")
    by_strategy: dict[str, list[ScoreRow]] = {}
    for r in rows:
        by_strategy.setdefault(r.strategy, []).append(r)
    for strategy, cells in by_strategy.items():
        n = sum(c.n for c in cells)
        hits = sum(c.hits for c in cells)
        mean_r = sum(c.mean_r * c.n for c in cells) / n if n else 0.0
        lines.append(f"\n<b>{escape(strategy)}</b>: {n} closed · hit {hits / n * 100:.1f}% · mean {mean_r:+.2f}R")
        for c in cells:
            if c.decile is None:
                band = "not scored"
            elif c.calibrated:
                band = f"conf {c.decile * 10}–{c.decile * 10 + 9}%"
            else:
                band = f"raw score {c.decile / 10:.2f}–{c.decile / 10 + 0.09:.2f}"
            lines.append(f"  {band}: {c.n} · hit {c.hit_rate * 100:.1f}% · mean {c.mean_r:+.2f}R")
    if history:
        lines += ["", *history]
    return "\n".join(lines)


def signal_list(title: str, rows: Sequence[StoredSignal], settings: Settings | None = None) -> str:
    """Signals with where each stands: a closed trade's realized R; an open trade's R now at its
    latest price (:func:`dexscan.status.open_r`, the dashboard's "R now"), its stop in force."""
    breakeven = settings.ladder.breakeven_after_tp1 if settings is not None else True
    lines = [f"<b>{escape(title)}</b>"]
    for _, s, o in rows:
        conf = escape(s.confidence.label()) if s.confidence else "not scored"
        state = ""
        if o is not None and o.result == "open":
            r_now = open_r(s, o)
            stop = stop_in_force(s.levels, o.hits, breakeven)
            state = f" · {escape(RESULT_LABEL['open'])}"
            state += f" {r_now:+.2f}R now" if r_now is not None else " (no price yet)"
            if stop is not None:
                state += f", stop {fmt_price(stop)}"
        elif o is not None:
            state = f" · {escape(RESULT_LABEL.get(o.result, o.result))} {o.realized_r:+.2f}R"
        lines.append(
            f"{LAYER_LABEL.get(s.layer, '⚡').split(' ')[0]} <b>{escape(s.symbol or '?')}</b> {escape(s.strategy)} · "
            f"{fmt_price(s.price)} · {conf} · {fmt_clock(s.ts)}{state}\n<code>{escape(s.mint)}</code>"
        )
    return "\n".join(lines)


def _ago(now: float, at: int) -> str:
    return "just now" if now - at < 60 else f"{fmt_duration(int(now) - at)} ago"


def check_text(mint: str, verdicts: Sequence[GateVerdict], now: float) -> str:
    """``/check``: every gate's verdict, each with its age (``checked 4m ago``)."""
    head = f"<b>Gate check</b> <code>{escape(mint)}</code>"
    if not verdicts:
        return head + "\nNo gate verdicts for this mint: it has not been checked yet."
    return "\n".join([head, *(f"{line} · checked {_ago(now, v.checked_at)}"
                               for line, v in zip(verdict_lines(verdicts), verdicts, strict=True))])


def why_text(mint: str, why: WhyAnswer, now: float) -> str:
    """``/why``: whether the mint is in the universe, the gates that keep it out (not every gate:
    that is ``/check``), and why its last signal fired."""
    return _membership_text(mint, why.verdicts, why.in_universe, now) + _last_signal_text(why.last_signal)


def _membership_text(mint: str, verdicts: Sequence[GateVerdict], in_universe: bool, now: float) -> str:
    head = f"<b>Why</b> <code>{escape(mint)}</code>"
    if not verdicts:
        return (head + "\nNot in the universe: it has never been checked by the gates "
                "(discovery has not found it; /watch MINT adds it).")
    when = f"checked {fmt_clock(max(v.checked_at for v in verdicts))}, {_ago(now, max(v.checked_at for v in verdicts))}"
    blocking = [v for v in verdicts if not v.passed]
    if not blocking:
        state = "In the universe" if in_universe else "Not in the universe yet"
        return "\n".join([head, f"{state}: it passes every gate ({when})."])
    state = ("In the universe for now (a market gate must fail for a while before it leaves)" if in_universe
             else "Not in the universe")
    n = len(blocking)
    return "\n".join([head, f"{state}: {n} gate{'s' if n != 1 else ''} did not pass ({when}):",
                       *verdict_lines(blocking)])


def _last_signal_text(sig: Signal | None) -> str:
    if sig is None:
        return ""
    return (f"\n\nLast signal: {escape(sig.strategy)} at {fmt_clock(sig.ts)}, because\n"
            + "\n".join(f"• {escape(reason_text(r))}" for r in sig.reasons))


def clip(text: str, limit: int = 4000) -> str:
    """Cut an answer at a line boundary so no tag or entity is split."""
    if utf16_len(text) <= limit:
        return text
    out: list[str] = []
    lines = text.split("\n")
    for line in lines:
        if utf16_len("\n".join([*out, line, "…"])) > limit:
            break
        out.append(line)
    return "\n".join([*out, "…"])
