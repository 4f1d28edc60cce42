"""Alert cards: what a trader reads on their phone, in Telegram's HTML parse mode.

Pure functions over domain objects (no I/O, no clock): the engine renders a card when it stores
a signal and hands the text to the outbox, so what was decided and what was announced are written
in one transaction, and a resend after a crash sends byte-identical text (the sender's crash
recovery compares texts).

**One alert per move.** Signals of several strategies on the same token and 4H candle within
``scan.move_window_s`` are one *move* (:func:`dexscan.signal_ledger.move_members`): :func:`move_card`
renders them as one card — the first signal's price and context, then one section per strategy
(its confidence or, without measured skill, its historical TP1 rate; its measured record, marked
when negative; its ladder) and every strategy's reasons. :func:`signal_card` is the card of a
move of one.

HTML rather than MarkdownV2 because token names are full of punctuation: in HTML only ``<``, ``>``
and ``&`` need escaping, and every dynamic value here goes through :func:`html.escape`. Names and
symbols are cut *before* escaping, and the card is cut by dropping whole reason lines, so a cut
never lands inside a tag or an entity. Lengths are counted in UTF-16 code units (Telegram's unit)
against :data:`MAX_CARD` = 4,000, a margin under Telegram's 4,096.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from html import escape
from typing import TYPE_CHECKING, Any

from dexscan.domain import GateStatus, GateVerdict, Levels, Outcome, Reason, Signal
from dexscan.fmt import fmt_duration, fmt_pct, fmt_price, fmt_usd

if TYPE_CHECKING:
    from dexscan.calibration import StrategyRecord
    from dexscan.config import Settings

MAX_CARD = 4000
MAX_NAME = 48
MAX_SYMBOL = 16

LAYER_LABEL = {"ignition": "🔥 IGNITION", "confirmation": "✅ CONFIRMED", "strategy": "⚡ SIGNAL"}
RESULT_LABEL = {
    "open": "📍 Open",
    "sl": "🛑 Stopped out",
    "breakeven": "⚖️ Breakeven (stop moved to entry after TP1)",
    "tp1": "🎯 TP1 reached",
    "tp2": "🎯 TP2 reached",
    "tp3": "🏆 TP3 reached",
    "expired": "⏱ Expired (time stop)",
}


@dataclass(frozen=True, slots=True)
class Button:
    """An inline-keyboard URL button."""

    text: str
    url: str


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """A rendered message as the outbox stores it (``payload`` JSON) and the sender posts it.

    ``digest_of`` is set on a digest: the outbox row ids it stands for. ``join_of`` is set on the
    card of a strategy that joined a move already announced: the signal ids of the move's earlier
    signals, whose message the sender edits into this text instead of posting a second alert.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    digest_of: tuple[int, ...] = ()
    join_of: tuple[int, ...] = ()

    def to_payload(self) -> str:
        data: dict[str, Any] = {
            "v": 1,
            "text": self.text,
            "buttons": [[{"text": b.text, "url": b.url} for b in row] for row in self.buttons],
        }
        if self.digest_of:
            data["digest_of"] = list(self.digest_of)
        if self.join_of:
            data["join_of"] = list(self.join_of)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_payload(cls, payload: str) -> AlertMessage:
        """Parse an outbox payload; ``ValueError`` names what is wrong with it."""
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise ValueError(f"alert payload is not JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not data["text"]:
            raise ValueError("alert payload has no text")
        rows = data.get("buttons") or []
        try:
            buttons = tuple(tuple(Button(str(b["text"]), str(b["url"])) for b in row) for row in rows)
            digest_of = tuple(int(i) for i in data.get("digest_of") or ())
            join_of = tuple(int(i) for i in data.get("join_of") or ())
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"alert payload has malformed buttons, digest or move ids ({exc})") from None
        return cls(data["text"], buttons, digest_of, join_of)


@dataclass(frozen=True, slots=True)
class CardExtras:
    """What a card shows beyond the :class:`Signal` itself (the engine knows these when it fires).

    ``no_skill``: per strategy, what to say instead of a percentage when the calibrator measured
    no skill for it (``TP1 first 23% historically, no edge measured``); ``records``: per strategy,
    its measured record (:class:`~dexscan.scoring.StrategyRecord`)."""

    name: str = ""
    volume_h24_usd: float | None = None
    pair_created_at: int | None = None
    gates: Sequence[GateVerdict] = ()
    local_zone: tzinfo | None = None
    notes: Sequence[str] = field(default_factory=tuple)
    market_cap_usd: float | None = None
    no_skill: Mapping[str, str] = field(default_factory=dict)
    records: Mapping[str, StrategyRecord] = field(default_factory=dict)


# -- public renderers ---------------------------------------------------------------------------


def signal_card(signal: Signal, extra: CardExtras | None = None) -> AlertMessage:
    """The alert for a new signal: levels, confidence, context, reasons and links."""
    return move_card([signal], extra)


def move_card(signals: Sequence[Signal], extra: CardExtras | None = None, join_of: Sequence[int] = ()
              ) -> AlertMessage:
    """One alert for a move: every strategy that fired on the token's 4H candle, first one first.

    A move of one signal is the classic card (levels in full). With several, the first signal
    sets the headline (price, rise, volume, context, time) and each strategy gets a section with
    its confidence, record and ladder; the reasons of all of them follow, each tagged with its
    strategy. ``join_of`` (the earlier signals' ids) marks the card of a strategy that joined.
    """
    if not signals:
        raise ValueError("a move has at least one signal")
    extra = extra or CardExtras()
    lead = signals[0]
    several = len(signals) > 1
    names = " + ".join(escape(s.strategy) for s in signals)
    head: list[str] = [
        f"{LAYER_LABEL.get(lead.layer, '⚡ SIGNAL')} · {names} · {_title(lead, extra.name)}",
        f"<code>{escape(lead.mint)}</code>",
        "",
    ]
    price_line = f"Price <b>{fmt_price(lead.price)}</b>"
    if lead.rise_pct is not None:
        price_line += f" · {fmt_pct(lead.rise_pct)} vs 4H open"
    head.append(price_line)
    if lead.volume_ratio is not None:
        head.append(f"Volume ×{lead.volume_ratio:.1f} vs its average")
    if several:
        head.append(f"<b>{len(signals)} strategies fired on this move</b>")
        for s in signals:
            head += ["", f"{LAYER_LABEL.get(s.layer, '⚡ SIGNAL').split(' ')[0]} <b>{escape(s.strategy)}</b> · "
                         f"{fmt_clock(s.ts)}"]
            head += _strategy_lines(s, extra)
            if s.levels is not None:
                head.append(_compact_levels(s.levels))
            else:
                head.append("<i>No levels: not enough candle history for an ATR ladder.</i>")
    else:
        head += _strategy_lines(lead, extra)
        lv = lead.levels
        if lv is not None:
            head += [
                "",
                f"Entry <b>{fmt_price(lv.entry)}</b>",
                f"SL {fmt_price(lv.sl)} ({fmt_pct(_pct(lv.sl, lv.entry))})",
                f"TP1 {fmt_price(lv.tp1)} ({fmt_pct(_pct(lv.tp1, lv.entry))})",
                f"TP2 {fmt_price(lv.tp2)} ({fmt_pct(_pct(lv.tp2, lv.entry))})",
                f"TP3 {fmt_price(lv.tp3)} ({fmt_pct(_pct(lv.tp3, lv.entry))})",
            ]
            ladder_note = escape(ladder_text(lv))
            if lv.flags:
                ladder_note += " · ⚠️ " + escape(", ".join(lv.flags))
            head.append(f"<i>{ladder_note}</i>")
        else:
            head += ["", "<i>No levels: not enough candle history for an ATR ladder.</i>"]
    context = [f"Liquidity {fmt_usd(lead.liquidity_usd)}"]
    if extra.market_cap_usd is not None:
        context.append(f"MCap {fmt_usd(extra.market_cap_usd)}")
    context.append(f"Vol 24h {fmt_usd(extra.volume_h24_usd)}")
    if extra.pair_created_at is not None:
        context.append(f"Age {fmt_duration(lead.ts - extra.pair_created_at)}")
    head += ["", " · ".join(context)]
    gates = gate_summary(extra.gates)
    if gates:
        head.append(gates)
    head += [escape(n) for n in extra.notes]
    foot = ["", f"<i>{fmt_time(lead.ts, extra.local_zone)}</i>"]
    reasons = [f"• {f'[{escape(s.strategy)}] ' if several else ''}{escape(reason_text(r))}"
               for s in signals for r in s.reasons]
    text = _fit(head, ["", "<b>Why</b>"] if reasons else [], reasons, foot)
    return AlertMessage(text, link_buttons(lead.mint, lead.pool), join_of=tuple(join_of))


def confidence_text(signal: Signal, no_skill: str | None = None) -> str:
    """The confidence in words: a calibrated percentage; else, when the calibrator measured no skill
    for the strategy, its historical TP1 rate (``TP1 first 23% historically, no edge measured``),
    never a per-signal percentage; else the raw score, labelled uncalibrated."""
    conf = signal.confidence
    if conf is not None and conf.probability is not None:
        return conf.label()
    if no_skill is not None:
        return no_skill
    return conf.label() if conf is not None else "not scored"


def _strategy_lines(signal: Signal, extra: CardExtras) -> list[str]:
    """Confidence (or no-skill text) and the strategy's measured record, escaped."""
    lines = [f"Confidence <b>{escape(confidence_text(signal, extra.no_skill.get(signal.strategy)))}</b>"]
    record = extra.records.get(signal.strategy)
    if record is not None:
        lines.append(f"⚠️ <b>{escape(record.text())}</b>" if record.negative else f"📊 {escape(record.text())}")
    return lines


def _compact_levels(lv: Levels) -> str:
    """``Entry $1.000 · SL $0.8800 (−12.0%) · TP1 … · TP2 … · TP3 …`` on one line."""
    parts = [f"Entry <b>{fmt_price(lv.entry)}</b>", f"SL {fmt_price(lv.sl)} ({fmt_pct(_pct(lv.sl, lv.entry))})"]
    parts += [f"TP{i} {fmt_price(tp)} ({fmt_pct(_pct(tp, lv.entry))})"
              for i, tp in enumerate((lv.tp1, lv.tp2, lv.tp3), 1)]
    line = " · ".join(parts)
    if lv.flags:
        line += " · ⚠️ " + escape(", ".join(lv.flags))
    return line


def outcome_card(signal: Signal, outcome: Outcome, local_zone: tzinfo | None = None) -> AlertMessage:
    """The update that replies to an alert once its ladder has played out (or moved)."""
    lines = [
        f"📣 <b>UPDATE</b> · {escape(signal.strategy)} · {_title(signal, '')}",
        f"<code>{escape(signal.mint)}</code>",
        "",
        f"<b>{escape(RESULT_LABEL.get(outcome.result, outcome.result))}</b> · realized "
        f"<b>{outcome.realized_r:+.2f}R</b> · best {outcome.max_r:+.2f}R",
    ]
    entry = signal.levels.entry if signal.levels else signal.price
    if outcome.last_price is not None:
        lines.append(
            f"Entry {fmt_price(entry)} → last {fmt_price(outcome.last_price)} "
            f"({fmt_pct(_pct(outcome.last_price, entry))})"
        )
    if outcome.hits:
        hits = sorted(outcome.hits.items(), key=lambda kv: (kv[1], kv[0]))
        lines.append("Hits: " + " · ".join(f"{escape(k.upper())} {fmt_clock(ts)}" for k, ts in hits))
    lines.append(f"Signal {fmt_time(signal.ts, local_zone)}")
    if outcome.closed_at is not None:
        lines.append(f"Closed {fmt_time(outcome.closed_at, local_zone)}")
    return AlertMessage(_fit(lines, [], [], []), link_buttons(signal.mint, signal.pool))


def digest_card(items: Sequence[Signal], window_s: float | None = None) -> AlertMessage:
    """One message standing for a storm of alerts: one compact line per signal."""
    span = f" within {fmt_duration(int(window_s))}" if window_s else ""
    head = [f"⚡ <b>{len(items)} alerts</b>{span} — digest", ""]
    lines = []
    for s in items:
        conf = escape(s.confidence.label()) if s.confidence else "not scored"
        rise = f" {fmt_pct(s.rise_pct)}" if s.rise_pct is not None else ""
        lines.append(
            f"{LAYER_LABEL.get(s.layer, '⚡ SIGNAL').split(' ')[0]} <b>{escape(_cut(s.symbol or '?', MAX_SYMBOL))}</b> "
            f"{escape(s.strategy)} · {fmt_price(s.price)}{rise} · {conf}\n<code>{escape(s.mint)}</code>"
        )
    text = _fit(head, [], lines, ["", "<i>Quiet down a token with /mute MINT.</i>"])
    buttons = tuple(
        tuple(Button(f"📈 {_cut(s.symbol or s.mint[:6], MAX_SYMBOL)}", dexscreener_url(s.mint, s.pool))
              for s in items[i:i + 3])
        for i in range(0, min(len(items), 9), 3)
    )
    return AlertMessage(text, buttons)


_ATR_SOURCES = {"4h": "4h candles", "1h*2": "1h candles ×2, too few 4h candles yet"}


def ladder_text(lv: Levels) -> str:
    """How the levels were set, in words: ``stop 1.5 ATR below entry (ATR of 4h candles) · targets
    1.5R, 3R, 5R`` (R = entry − stop)."""
    source = _ATR_SOURCES.get(lv.atr_source, f"{lv.atr_source} candles")
    risk = lv.risk
    if lv.sl_mode == "structural":
        stop = "stop under the signal candle's low"
    elif lv.atr > 0:
        stop = f"stop {risk / lv.atr:.3g} ATR below entry"
    else:
        stop = f"stop mode {lv.sl_mode}"
    text = f"{stop} (ATR of {source})"
    if risk > 0:
        text += " · targets " + ", ".join(f"{(tp - lv.entry) / risk:.3g}R" for tp in (lv.tp1, lv.tp2, lv.tp3))
    return text


#: Plain-language forms of the strategies' reason names (``dexscan/strategies``): name pattern → text,
#: with the reason's ``value`` and ``threshold`` (also as ``*_usd``, ``*_price`` and ``*_pct`` = × 100)
#: and ``n``, the number the pattern captures. A name not listed here is shown as the reason itself.
_REASON_TEXTS = {
    r"rise_vs_4h_open": "price {value:+.1f}% vs the 4H open (needs {threshold:g}%)",
    r"close_vs_4h_open": "4H candle closed {value:+.1f}% over its open (needs {threshold:g}%)",
    r"volume_5m_vs_sma(\d+)": "5m volume {value:.1f}× its {n}-bar average (needs {threshold:g}×)",
    r"volume_5m_after_empty_bars": "5m volume {value_usd} after bars without trades",
    r"volume_z(\d+)": "volume {value:.1f}σ above its {n}-bar mean (needs {threshold:g}σ)",
    r"volume_vs_flat_mean(\d+)": "volume {value_usd} against a flat {n}-bar mean of {threshold_usd}",
    r"volume_vs_mean(\d+)": "volume {value:.1f}× its {n}-bar mean (needs {threshold:g}×)",
    r"volume_after_empty_bars": "volume {value_usd} after bars without trades",
    r"rise_in_(\d+)_bars": "up {value:.1f}% within {n} bars (needs {threshold:g}%)",
    r"close_vs_prior_(\d+)_bar_high": "closed at {value_price}, above the prior {n}-bar high {threshold_price}",
    r"close_position_in_range": "closed {value_pct:.0f}% up the bar's range (needs {threshold_pct:.0f}%)",
    r"upper_wick_share": "upper wick {value_pct:.0f}% of the range (at most {threshold_pct:.0f}%)",
}
_REASON_PATTERNS = tuple((re.compile(pattern), text) for pattern, text in _REASON_TEXTS.items())


def reason_text(reason: Reason) -> str:
    """A reason as a trader reads it (``5m volume 7.3× its 20-bar average (needs 3×)``) rather than
    the strategy's variable name (``volume_5m_vs_sma20 7.3x > 3x``)."""
    for pattern, text in _REASON_PATTERNS:
        m = pattern.fullmatch(reason.name)
        if m is not None:
            fields: dict[str, object] = {"n": int(m.group(1)) if m.groups() else 0}
            for key, v in (("value", reason.value), ("threshold", reason.threshold)):
                fields |= {key: v, f"{key}_usd": fmt_usd(v), f"{key}_price": fmt_price(v), f"{key}_pct": v * 100}
            return text.format(**fields)
    return str(reason)


def gate_summary(verdicts: Sequence[GateVerdict]) -> str:
    """``🛡 Gates 6/6 pass`` or which gates did not pass, escaped."""
    if not verdicts:
        return ""
    passed = sum(1 for v in verdicts if v.status is GateStatus.PASS)
    if passed == len(verdicts):
        return f"🛡 Gates {passed}/{len(verdicts)} pass"
    bad = ", ".join(f"{escape(v.gate)} {v.status.value}" for v in verdicts if v.status is not GateStatus.PASS)
    return f"⚠️ Gates {passed}/{len(verdicts)} pass ({bad})"


def verdict_lines(verdicts: Sequence[GateVerdict]) -> list[str]:
    """One escaped line per gate verdict: icon, gate, reason."""
    icon = {GateStatus.PASS: "✅", GateStatus.FAIL: "❌", GateStatus.UNVERIFIED: "❔"}
    return [f"{icon[v.status]} <b>{escape(v.gate)}</b>: {escape(v.reason)}" for v in verdicts]


# -- links --------------------------------------------------------------------------------------


def dexscreener_url(mint: str, pool: str | None) -> str:
    return f"https://dexscreener.com/solana/{pool or mint}"


def link_buttons(mint: str, pool: str | None) -> tuple[tuple[Button, ...], ...]:
    return ((
        Button("DexScreener", dexscreener_url(mint, pool)),
        Button("Birdeye", f"https://birdeye.so/token/{mint}?chain=solana"),
        Button("Solscan", f"https://solscan.io/token/{mint}"),
    ),)


# -- time formatting (numbers: dexscan.fmt) -----------------------------------------------------


def fmt_clock(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M UTC")


def fmt_time(ts: int, zone: tzinfo | None = None) -> str:
    """``2025-11-21 04:15 UTC`` and, with a zone, `` · 09:45 IST``."""
    utc = datetime.fromtimestamp(ts, UTC)
    text = utc.strftime("%Y-%m-%d %H:%M UTC")
    if zone is not None:
        local = utc.astimezone(zone)
        text += f" · {local.strftime('%H:%M')} {escape(local.tzname() or '')}"
    return text


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# -- internals ----------------------------------------------------------------------------------


def _pct(level: float, entry: float) -> float | None:
    return None if entry == 0 else (level / entry - 1.0) * 100.0


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(signal: Signal, name: str) -> str:
    symbol = _cut(signal.symbol or "?", MAX_SYMBOL)
    title = f"<b>${escape(symbol)}</b>"
    if name:
        title += f" ({escape(_cut(name, MAX_NAME))})"
    return title


def _fit(head: list[str], list_head: list[str], items: list[str], foot: list[str]) -> str:
    """Join the parts, dropping whole trailing ``items`` until the text fits :data:`MAX_CARD`."""
    def build(k: int) -> str:
        shown = items[:k]
        if k < len(items):
            shown = [*shown, f"… and {len(items) - k} more"]
        return "\n".join(head + (list_head if shown else []) + shown + foot)

    k = len(items)
    text = build(k)
    while utf16_len(text) > MAX_CARD and k > 0:
        k -= 1
        text = build(k)
    if utf16_len(text) > MAX_CARD:
        raise ValueError(f"alert card is {utf16_len(text)} characters even without its list; limit {MAX_CARD}")
    return text


def bot_setup_problem(settings: Settings) -> str | None:
    """Why ``dexscan bot`` cannot run with these settings (no token, no allowed chat), or None.

    Plain text, so the command line can say it before it loads the Telegram library."""
    if settings.secrets.telegram_token is None:
        return ("telegram: set DEXSCAN_TELEGRAM_TOKEN (from @BotFather) to run the bot, "
                "or try `dexscan bot --demo`")
    if not settings.telegram.chat_ids:
        return ("telegram.chat_ids is empty: add your chat id ([telegram] chat_ids = [123456789]) "
                "to your config file; the bot answers and alerts only allow-listed chats")
    return None
