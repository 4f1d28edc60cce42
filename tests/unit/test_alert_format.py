"""Alert cards: content, escaping, length limits, payload round trip."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest

from dexscan.alerts.format import (
    MAX_CARD,
    AlertMessage,
    Button,
    CardExtras,
    digest_card,
    ladder_text,
    outcome_card,
    reason_text,
    signal_card,
    utf16_len,
)
from dexscan.demo.servers.telegram import HtmlParseError, parse_telegram_html
from dexscan.domain import Confidence, GateStatus, GateVerdict, Levels, Outcome, Reason, Signal
from dexscan.fmt import fmt_duration, fmt_pct, fmt_price, fmt_usd

MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
POOL = "5quBtoiQqxF9Jv6KYKctB59NT3gtJD2Y65kdnB1Uev3h"
TS = 1_763_700_000  # 2025-11-21 04:40:00 UTC


def make_signal(**kw: object) -> Signal:
    base: dict[str, object] = dict(
        mint=MINT, strategy="ignition", layer="ignition", candle_ts=TS - TS % 14400, ts=TS, price=0.000123456,
        reasons=(Reason("rise", 3.1, ">=", 2.0, "%"), Reason("volume_5m_x", 4.2, ">", 3.0)),
        symbol="PUMP", pool=POOL, rise_pct=3.1, volume_ratio=4.2,
        levels=Levels(0.0001, 0.00008, 0.00013, 0.00016, 0.0002, 0.0000133, "4h", "atr"),
        confidence=Confidence(0.62, 0.71, "cal-1"), liquidity_usd=1_250_000.0,
    )
    base.update(kw)
    return Signal(**base)  # type: ignore[arg-type]


def plain(message: AlertMessage) -> str:
    text, _ = parse_telegram_html(message.text)
    return text


def test_signal_card_spells_out_every_level_with_percentages_from_entry() -> None:
    extras = CardExtras(
        name="Pump Token", volume_h24_usd=3_400_000.0, pair_created_at=TS - (3 * 86400 + 4 * 3600),
        gates=[GateVerdict(MINT, g, GateStatus.PASS, "ok", TS) for g in ("mint_authority", "freeze_authority")],
        local_zone=ZoneInfo("Asia/Kolkata"),
    )
    text = plain(signal_card(make_signal(), extras))
    lines = text.split("\n")
    assert lines[0] == "🔥 IGNITION · ignition · $PUMP (Pump Token)"
    assert lines[1] == MINT
    assert "Price $0.0001235 · +3.1% vs 4H open" in lines
    assert "Volume ×4.2 vs its average" in lines
    assert "Confidence 71%" in lines
    assert "Entry $0.0001000" in lines
    assert "SL $0.00008000 (-20.0%)" in lines
    assert "TP1 $0.0001300 (+30.0%)" in lines
    assert "TP2 $0.0001600 (+60.0%)" in lines
    assert "TP3 $0.0002000 (+100%)" in lines
    assert "stop 1.5 ATR below entry (ATR of 4h candles) · targets 1.5R, 3R, 5R" in lines
    assert "Liquidity $1.25M · Vol 24h $3.4M · Age 3d04h" in lines
    assert "🛡 Gates 2/2 pass" in lines
    assert lines[lines.index("Why") + 1:lines.index("Why") + 3] == ["• rise 3.1% >= 2%", "• volume_5m_x 4.2 > 3"]
    assert lines[-1] == "2025-11-21 04:40 UTC · 10:10 IST"


def test_mint_is_copyable_code_and_links_point_at_the_three_sites() -> None:
    message = signal_card(make_signal())
    _, entities = parse_telegram_html(message.text)
    code = [e for e in entities if e["type"] == "code"]
    assert len(code) == 1 and code[0]["length"] == len(MINT)
    assert message.buttons == ((
        Button("DexScreener", f"https://dexscreener.com/solana/{POOL}"),
        Button("Birdeye", f"https://birdeye.so/token/{MINT}?chain=solana"),
        Button("Solscan", f"https://solscan.io/token/{MINT}"),
    ),)


def test_uncalibrated_confidence_says_so_with_the_raw_score() -> None:
    text = plain(signal_card(make_signal(confidence=Confidence(0.62))))
    assert "Confidence uncalibrated (raw 0.62)" in text.split("\n")


def test_layers_are_labelled() -> None:
    assert plain(signal_card(make_signal(layer="confirmation", strategy="confirmation"))).startswith(
        "✅ CONFIRMED · confirmation · $PUMP")
    assert plain(signal_card(make_signal(layer="strategy", strategy="god_candle"))).startswith(
        "⚡ SIGNAL · god_candle · $PUMP")


def test_hostile_names_are_escaped_and_read_back_literally() -> None:
    name = "<b>Rug</b> & <script>*_[]()~`>#+-=|{}.!"
    sig = make_signal(symbol="<>&*_[]", reasons=(Reason("x<y", 1.0, "<", 2.0, "&"),))
    message = signal_card(sig, CardExtras(name=name))
    text, entities = parse_telegram_html(message.text)
    assert text.split("\n")[0] == f"🔥 IGNITION · ignition · $<>&*_[] ({name})"
    assert "• x<y 1& < 2&" in text.split("\n")
    assert all(e["type"] in ("bold", "code", "italic") for e in entities)


def test_unescaped_text_is_what_the_fake_rejects() -> None:
    with pytest.raises(HtmlParseError, match='Unsupported start tag "script"'):
        parse_telegram_html("<b>x</b> <script>")
    with pytest.raises(HtmlParseError, match='Unsupported start tag "" at byte offset 2'):
        parse_telegram_html("a < b")


def test_long_reason_lists_are_cut_at_whole_lines_under_the_limit() -> None:
    reasons = tuple(Reason(f"condition_{i:03d}_" + "x" * 30, float(i), ">=", 1.0) for i in range(300))
    message = signal_card(make_signal(reasons=reasons), CardExtras(name="N" * 500))
    assert utf16_len(message.text) <= MAX_CARD
    text, _ = parse_telegram_html(message.text)
    lines = text.split("\n")
    shown = [ln for ln in lines if ln.startswith("• condition_")]
    more = [ln for ln in lines if ln.startswith("… and ")]
    assert more == [f"… and {300 - len(shown)} more"]
    assert 0 < len(shown) < 300
    assert shown[-1].startswith(f"• condition_{len(shown) - 1:03d}_")
    assert "(" + "N" * 47 + "…)" in lines[0]


def test_emoji_heavy_text_is_measured_in_utf16_units() -> None:
    reasons = tuple(Reason("🚀" * 20, float(i), ">=", 1.0) for i in range(200))
    message = signal_card(make_signal(reasons=reasons))
    assert utf16_len(message.text) <= MAX_CARD
    assert len(message.text) < utf16_len(message.text)


def test_card_without_levels_or_confidence_says_so() -> None:
    text = plain(signal_card(make_signal(levels=None, confidence=None, rise_pct=None, volume_ratio=None)))
    assert "No levels: not enough candle history for an ATR ladder." in text
    assert "Confidence not scored" in text
    assert "Entry" not in text


def test_outcome_card_reports_result_r_and_hits() -> None:
    outcome = Outcome("tp2", 3.0, {"tp1": TS + 3600, "tp2": TS + 7200}, closed_at=TS + 7200,
                      last_price=0.00016, max_r=3.4)
    lines = plain(outcome_card(make_signal(), outcome)).split("\n")
    assert lines[0] == "📣 UPDATE · ignition · $PUMP"
    assert lines[3] == "🎯 TP2 reached · realized +3.00R · best +3.40R"
    assert lines[4] == "Entry $0.0001000 → last $0.0001600 (+60.0%)"
    assert lines[5] == "Hits: TP1 05:40 UTC · TP2 06:40 UTC"
    assert lines[-1] == "Closed 2025-11-21 06:40 UTC"


def test_digest_lists_each_signal_compactly() -> None:
    sigs = [make_signal(symbol=f"T{i}", mint=MINT[:-1] + str(i)) for i in range(12)]
    message = digest_card(sigs, 120)
    lines = plain(message).split("\n")
    assert lines[0] == "⚡ 12 alerts within 2m — digest"
    assert lines[2] == "🔥 T0 ignition · $0.0001235 +3.1% · 71%"
    assert lines[3] == MINT[:-1] + "0"
    assert [len(r) for r in message.buttons] == [3, 3, 3]


def test_payload_round_trips_and_rejects_garbage() -> None:
    message = signal_card(make_signal(symbol="ü<>&"))
    again = AlertMessage.from_payload(message.to_payload())
    assert again == message
    digest = AlertMessage("x", (), (4, 5, 6))
    assert AlertMessage.from_payload(digest.to_payload()).digest_of == (4, 5, 6)
    assert json.loads(digest.to_payload())["v"] == 1
    with pytest.raises(ValueError, match="not JSON"):
        AlertMessage.from_payload("")
    with pytest.raises(ValueError, match="no text"):
        AlertMessage.from_payload('{"v":1}')
    with pytest.raises(ValueError, match="malformed"):
        AlertMessage.from_payload('{"text":"x","buttons":[[{"text":"a"}]]}')


@pytest.mark.parametrize(("value", "text"), [
    (0.00001234, "$0.00001234"), (0.5, "$0.5000"), (1.5, "$1.500"), (12345.678, "$12,346"), (None, "n/a"),
])
def test_fmt_price(value: float | None, text: str) -> None:
    assert fmt_price(value) == text


def test_small_formatters() -> None:
    assert [fmt_usd(v) for v in (950, 1_500, 2_340_000, 7e9, None)] == ["$950", "$1.5K", "$2.34M", "$7B", "n/a"]
    assert [fmt_pct(v) for v in (3.14159, -20.0, None)] == ["+3.1%", "-20.0%", "n/a"]
    assert [fmt_duration(s) for s in (59, 3600 + 120, 2 * 86400 + 3 * 3600)] == ["59s", "1h02m", "2d03h"]


def test_chart_is_a_png_with_ticks_at_the_levels() -> None:
    from dexscan.alerts.charts import render_chart
    from dexscan.domain import Candle, Timeframe

    bars4 = [Candle(Timeframe.H4.floor(TS) - k * 14400, 1e-4, 1.1e-4, 0.9e-4, 1.05e-4, 1e3) for k in range(20, 0, -1)]
    bars5 = [Candle(Timeframe.M5.floor(TS) - k * 300, 1e-4, 1.02e-4, 0.99e-4, 1.01e-4, 50.0) for k in range(60, 0, -1)]
    png = render_chart(make_signal(), bars4, bars5)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert render_chart(make_signal(levels=None), bars4, []).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="no candles to chart"):
        render_chart(make_signal(), [], [])


@pytest.mark.parametrize(("reason", "text"), [
    (Reason("rise_vs_4h_open", 2.14, ">=", 2.0, "%"), "price +2.1% vs the 4H open (needs 2%)"),
    (Reason("volume_5m_vs_sma20", 7.31, ">", 3.0, "x"), "5m volume 7.3× its 20-bar average (needs 3×)"),
    (Reason("volume_5m_after_empty_bars", 1234.0, ">", 0.0, " USD"), "5m volume $1.23K after bars without trades"),
    (Reason("close_vs_4h_open", 11.26, ">=", 10.0, "%"), "4H candle closed +11.3% over its open (needs 10%)"),
    (Reason("volume_z20", 58.97, ">=", 4.0, "σ"), "volume 59.0σ above its 20-bar mean (needs 4σ)"),
    (Reason("volume_vs_flat_mean20", 5000.0, ">", 120.0, " USD"),
     "volume $5K against a flat 20-bar mean of $120"),
    (Reason("close_position_in_range", 0.812, ">=", 0.67), "closed 81% up the bar's range (needs 67%)"),
    (Reason("volume_vs_mean20", 6.04, ">=", 5.0, "x"), "volume 6.0× its 20-bar mean (needs 5×)"),
    (Reason("rise_in_10_bars", 14.2, ">=", 12.0, "%"), "up 14.2% within 10 bars (needs 12%)"),
    (Reason("close_vs_prior_50_bar_high", 0.0123, ">", 0.0119, ""),
     "closed at $0.01230, above the prior 50-bar high $0.01190"),
    (Reason("upper_wick_share", 0.31, "<=", 0.6), "upper wick 31% of the range (at most 60%)"),
    (Reason("something_new", 1.5, ">=", 1.0, "x"), "something_new 1.5x >= 1x"),
])
def test_reasons_read_as_sentences_not_variable_names(reason: Reason, text: str) -> None:
    assert reason_text(reason) == text


def test_ladder_text_for_a_structural_stop_and_a_1h_atr() -> None:
    lv = Levels(1.0, 0.9, 1.15, 1.3, 1.5, 0.05, "1h*2", "structural")
    assert ladder_text(lv) == ("stop under the signal candle's low (ATR of 1h candles ×2, too few 4h candles yet) · "
                               "targets 1.5R, 3R, 5R")
