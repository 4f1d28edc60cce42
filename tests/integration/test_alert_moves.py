"""One alert per move: the engine's store-and-queue step and the outbox sender against the Bot API fake.

Three strategies firing on one token's 4H candle within ``scan.move_window_s`` are one move: each
signal is stored (and will be scored) on its own, but the chat gets one message, edited as each
strategy joins, and the dashboard one row. A strategy outside the window alerts on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiogram import Bot

from dexscan.alerts.format import AlertMessage
from dexscan.alerts.telegram.outbox import OutboxSender
from dexscan.alerts.telegram.transport import create_bot
from dexscan.calibration import Calibrator, IsotonicBlocks, LinearModel
from dexscan.clock import SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.servers.telegram import FakeTelegram
from dexscan.detector import Detector
from dexscan.domain import Outcome, Reason, Signal
from dexscan.engine import Engine
from dexscan.service import event_json
from dexscan.signal_ledger import Found, move_members
from dexscan.store import Store
from tests.integration.test_telegram_delivery import CHAT, T0, TOKEN, make_signal

MINT = "So11111111111111111111111111111111111111112"


def calibrator() -> Calibrator:
    """A "no skill" artifact whose measured records make confirmation's expectancy negative."""
    return Calibrator(
        version="v-test", created_at=T0, data_start=T0 - 86_400 * 30, data_end=T0 - 86_400, n=600, positives=150,
        model=LinearModel(0.0, {}), blocks=IsotonicBlocks((), (0.25,), (600,)), min_block=50,
        base_rates={"all": {"n": 600.0, "positives": 150.0, "rate": 0.25},
                    "ignition": {"n": 300.0, "positives": 69.0, "rate": 0.23, "mean_r": 0.12},
                    "volume_surge": {"n": 247.0, "positives": 62.0, "rate": 62 / 247, "mean_r": 0.08},
                    "confirmation": {"n": 53.0, "positives": 6.0, "rate": 6 / 53, "mean_r": -0.96}},
        skill={"all": {"has_skill": False}}, world="live",
        worth={"baselines": {"baseline: every 4H close": {"closed": 900, "tp1_first_rate": 0.226, "mean_r": 0.17}},
               "strategies": {
                   "confirmation": {"closed": 53, "tp1_first_rate": 0.113, "mean_r": -0.96, "expectancy": "negative",
                                    "lift": {"baseline: every 4H close": {"tp1_first_rate": -0.113, "mean_r": -1.13}}},
                   "ignition": {"closed": 300, "tp1_first_rate": 0.23, "mean_r": 0.12, "expectancy": "positive",
                                "lift": {"baseline: every 4H close": {"tp1_first_rate": 0.004, "mean_r": -0.05}}}}},
    )


@dataclass
class Rig:
    fake: FakeTelegram
    store: Store
    engine: Engine
    bot: Bot
    sender: OutboxSender
    clock: SimClock
    settings: Settings

    async def fire(self, sig: Signal) -> None:
        self.clock.advance(sig.ts - self.clock.now())
        await self.engine.writer.persist([Found(sig, float(sig.ts))], [], [])


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, **overrides: Any) -> AsyncIterator[Rig]:
    clock = SimClock(T0)
    async with FakeTelegram(TOKEN, clock, chats=[CHAT]) as fake:
        settings = load_settings(env={"DEXSCAN_TELEGRAM_TOKEN": TOKEN}).with_overrides(
            {"telegram.base_url": fake.base_url, "telegram.chat_ids": [CHAT], **overrides})
        store = await Store.open(tmp_path / "moves.db")
        engine = Engine(settings, store, clock, http=None, clients=None, universe=None,
                        detector=Detector(settings, calibrator()))
        bot = create_bot(settings, store, clock, token=TOKEN)
        try:
            yield Rig(fake, store, engine, bot, OutboxSender(store, bot, settings, clock), clock, settings)
        finally:
            await bot.session.close()
            await store.close()


def signal(strategy: str, ts: int, reason: str) -> Signal:
    """A signal as the strategies make it: a 5m strategy's candle is its 5m bar, a 4H one's the 4H candle."""
    sig = replace(make_signal(0, ts, strategy=strategy, mint=MINT, symbol="PUMP"),
                  reasons=(Reason(reason, 5.0, ">=", 2.0, "x"),))
    if strategy in ("volume_surge", "god_candle"):
        sig = replace(sig, candle_ts=ts - ts % 300 - 300)  # the completed 5m bar that fired it
    return sig


async def test_three_strategies_on_one_move_send_exactly_one_alert_listing_the_three(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.fire(signal("ignition", T0 + 60, "rise_vs_4h_open"))
        await r.sender.drain_once()  # the first alert goes out at once
        await r.fire(signal("volume_surge", T0 + 180, "volume_z20"))  # 2 min later: the same pump
        await r.sender.drain_once()
        await r.fire(signal("confirmation", T0 + 600, "close_vs_4h_open"))
        await r.sender.drain_once()

        sent = r.fake.sent(CHAT)
        assert len(sent) == 1  # one alert, not three
        assert [q.method for q in r.fake.requests if q.status == 200] == [
            "sendmessage", "editmessagetext", "editmessagetext"]
        card = sent[0].text
        assert card.split("\n", 1)[0] == "🔥 IGNITION · ignition + volume_surge + confirmation · $PUMP"
        assert "3 strategies fired on this move" in card
        for line in ("🔥 ignition · 04:41 UTC", "⚡ volume_surge · 04:43 UTC", "✅ confirmation · 04:50 UTC"):
            assert line in card, card
        # every strategy's reasons, tagged with the strategy; no per-signal percentage without skill
        assert "• [ignition] price +5.0% vs the 4H open (needs 2%)" in card
        assert "• [volume_surge] volume 5.0σ above its 20-bar mean (needs 2σ)" in card
        assert "• [confirmation] 4H candle closed +5.0% over its open (needs 2%)" in card
        assert card.count("Confidence TP1 first 23% historically, no edge measured") == 1
        assert "Confidence TP1 first 25% historically, no edge measured" in card  # volume_surge 62/247
        assert "⚠️ negative record: −0.96R mean over 53 signals" in card
        assert "📊 record: TP1 first 23%, +0.12R mean over 300 signals" in card

        # each strategy's signal is stored on its own (evaluation per strategy is unchanged)
        stored = await r.store.signals(mint=MINT)
        assert [s.strategy for _, s, _ in stored] == ["ignition", "volume_surge", "confirmation"]
        rows = await r.store.outbox_rows(chat_id=CHAT)
        assert [(row["kind"], row["state"], row["message_id"]) for row in rows] == [
            ("signal", "sent", sent[0].message_id), ("join", "sent", sent[0].message_id),
            ("join", "sent", sent[0].message_id)]
        assert AlertMessage.from_payload(rows[2]["payload"]).join_of == (stored[0][0], stored[1][0])

        # one dashboard row listing the three strategies, with what is known of their worth
        [row] = r.engine.new_signal_rows(r.clock.now())
        assert row.strategies == ("ignition", "volume_surge", "confirmation")
        assert row.signal_ids == tuple(sid for sid, _, _ in stored)
        assert row.negative_record
        assert "confirmation: negative record: −0.96R mean over 53 signals" in row.notes
        assert "ignition: TP1 first 23% historically, no edge measured" in row.notes
        assert not any("%" in n and "historically" not in n and "record" not in n for n in row.notes)

        # --json / ws events: one per signal, each naming its move
        events = [event_json(r.engine._events.get_nowait()) for _ in range(r.engine._events.qsize())]
        assert [e["move"] for e in events if e["type"] == "signal"] == [
            {"id": stored[0][0], "strategies": ["ignition"], "signal_ids": [stored[0][0]]},
            {"id": stored[0][0], "strategies": ["ignition", "volume_surge"],
             "signal_ids": [stored[0][0], stored[1][0]]},
            {"id": stored[0][0], "strategies": ["ignition", "volume_surge", "confirmation"],
             "signal_ids": [sid for sid, _, _ in stored]}]

        # the confirmation's own outcome later replies to the move's message
        await r.store.save_outcome(stored[2][0], Outcome("sl", -1.0, {"sl": T0 + 900}, closed_at=T0 + 900),
                                   T0 + 900, [CHAT], "")
        await r.sender.drain_once()
        update = r.fake.sent(CHAT)[1]
        assert update.text.startswith("📣 UPDATE · confirmation") and update.reply_to == sent[0].message_id


async def test_joins_queued_before_delivery_still_make_one_message(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.fire(signal("ignition", T0 + 60, "rise_vs_4h_open"))
        await r.fire(signal("volume_surge", T0 + 150, "volume_z20"))
        await r.fire(signal("god_candle", T0 + 200, "rise_in_10_bars"))
        await r.sender.drain_once()
        [msg] = r.fake.sent(CHAT)
        assert msg.text.split("\n", 1)[0] == "🔥 IGNITION · ignition + volume_surge + god_candle · $PUMP"
        assert msg.edits == 2


async def test_a_join_left_sending_by_a_crash_is_edited_again_never_sent_twice(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.fire(signal("ignition", T0 + 60, "rise_vs_4h_open"))
        await r.sender.drain_once()
        await r.fire(signal("volume_surge", T0 + 120, "volume_z20"))
        join = (await r.store.outbox_rows(chat_id=CHAT))[1]
        # the edit reached Telegram, then the process died before the row was marked sent
        first = r.fake.sent(CHAT)[0]
        message = AlertMessage.from_payload(join["payload"])
        await r.bot.edit_message_text(chat_id=CHAT, message_id=first.message_id, text=message.text,
                                      parse_mode="HTML")
        await r.store.outbox_mark_sending(int(join["id"]))
        fresh = OutboxSender(r.store, r.bot, r.settings, r.clock)
        assert await fresh.drain_once() == 1
        assert len(r.fake.sent(CHAT)) == 1
        row = (await r.store.outbox_rows(chat_id=CHAT))[1]
        assert (row["state"], row["message_id"]) == ("sent", first.message_id)
        assert "ignition + volume_surge" in r.fake.sent(CHAT)[0].text


async def test_outside_the_window_or_with_the_lead_muted_a_strategy_alerts_on_its_own(tmp_path: Path) -> None:
    async with rig(tmp_path, **{"scan.move_window_s": 300.0}) as r:
        await r.store.set_chat_settings(CHAT, {"muted_strategies": ["ignition"]})
        await r.fire(signal("ignition", T0 + 60, "rise_vs_4h_open"))
        await r.sender.drain_once()
        assert r.fake.sent(CHAT) == []  # muted here: no message for the move yet
        await r.fire(signal("volume_surge", T0 + 120, "volume_z20"))
        await r.sender.drain_once()  # the join becomes the move's message in this chat
        await r.fire(signal("god_candle", T0 + 200, "rise_in_10_bars"))
        await r.sender.drain_once()  # ... which the next strategy edits
        await r.fire(signal("confirmation", T0 + 14_400, "close_vs_4h_open"))  # 4 hours later: a new alert
        await r.sender.drain_once()
        heads = [m.text.split("\n", 1)[0] for m in r.fake.sent(CHAT)]
        assert heads == ["🔥 IGNITION · ignition + volume_surge + god_candle · $PUMP",
                         "✅ CONFIRMED · confirmation · $PUMP"]
        states = [(row["kind"], row["state"]) for row in await r.store.outbox_rows(chat_id=CHAT)]
        assert states == [("signal", "failed"), ("join", "sent"), ("join", "sent"), ("signal", "sent")]
        assert len(r.engine.new_signal_rows(r.clock.now())) == 2


def test_moves_are_cut_from_the_first_signal_within_the_window() -> None:
    a = signal("ignition", T0, "x")
    b = signal("volume_surge", T0 + 600, "x")
    c = signal("god_candle", T0 + 1000, "x")
    stored = [(1, a), (2, b)]
    assert move_members(stored, c, 900) == []  # 1000 s after the move's first signal
    assert move_members(stored, c, 1000) == [(1, a), (2, b)]
    assert move_members(stored, b, 900) == [(1, a)]
    assert move_members(stored, a, 900) == []  # itself: the same natural key
    assert move_members(stored, c, 0) == []
    other_candle = replace(signal("god_candle", T0 + 600, "x"), candle_ts=T0 - T0 % 14_400 - 300)
    assert move_members(stored, other_candle, 900) == []  # its bar is in the previous 4H candle
