"""Outbox delivery against the fake Bot API: order, flood limits, 429s, outages, crashes, digests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from solders.pubkey import Pubkey

from dexscan.alerts.format import AlertMessage, CardExtras, outcome_card, signal_card
from dexscan.alerts.telegram.outbox import OutboxSender
from dexscan.alerts.telegram.transport import create_bot
from dexscan.clock import LoopClock, SimClock
from dexscan.config import Settings, load_settings
from dexscan.demo.servers.telegram import FakeTelegram
from dexscan.domain import Candle, Confidence, Levels, Outcome, Reason, Signal, Timeframe
from dexscan.store import Store

TOKEN = "123456789:TEST-token_for_the_fake_bot_api"
CHAT = 1001
OTHER = 1002
T0 = 1_763_700_000


def mint_of(i: int) -> str:
    return str(Pubkey(bytes([i % 256] * 31 + [i // 256 + 1])))


def make_signal(i: int, ts: int, *, symbol: str | None = None, strategy: str = "ignition",
                conf: Confidence | None = None, mint: str | None = None) -> Signal:
    price = 0.001 * (1 + i)
    return Signal(
        mint=mint or mint_of(i), strategy=strategy,
        layer="ignition" if strategy == "ignition" else "confirmation" if strategy == "confirmation" else "strategy",
        candle_ts=Timeframe.H4.floor(ts), ts=ts, price=price,
        reasons=(Reason("rise", 3.0, ">=", 2.0, "%"),), symbol=symbol or f"TOK{i:02d}", pool=f"pool{i}",
        rise_pct=3.0, volume_ratio=4.0,
        levels=Levels(price, price * 0.8, price * 1.3, price * 1.6, price * 2.0, price * 0.1, "4h", "atr"),
        confidence=conf or Confidence(0.62), liquidity_usd=100_000.0,
    )


async def queue(store: Store, sig: Signal, chats: list[int], now: int, payload: str | None = None) -> int:
    text = signal_card(sig, CardExtras()).to_payload() if payload is None else payload
    sid, created = await store.save_signal(sig, chats, text, now=now)
    assert created
    return sid


def settings_for(fake: FakeTelegram, **overrides: Any) -> Settings:
    base: dict[str, Any] = {"telegram.base_url": fake.base_url, "telegram.chat_ids": [CHAT, OTHER]}
    base.update(overrides)
    return load_settings(env={}).with_overrides(base)


@dataclass
class Rig:
    fake: FakeTelegram
    store: Store
    bot: Bot
    sender: OutboxSender
    clock: SimClock
    settings: Settings

    def first_lines(self, chat: int = CHAT) -> list[str]:
        return [m.text.split("\n", 1)[0] for m in self.fake.sent(chat)]

    async def rows(self, chat: int = CHAT) -> list[dict[str, Any]]:
        return await self.store.outbox_rows(chat_id=chat)

    async def drain_until_settled(self, step_s: float = 1.0, limit_s: float = 900) -> None:
        start = self.clock.now()
        while self.clock.now() - start < limit_s:
            await self.sender.drain_once()
            if not await self.store.outbox_heads():
                return
            self.clock.advance(step_s)
        raise AssertionError("outbox did not settle")


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, loop_clock: bool = False, db: str = "bot.db", **overrides: Any) -> AsyncIterator[Rig]:
    """``loop_clock``: the clock follows the (virtual-time) event loop; else it moves only by hand."""
    clock: Any = LoopClock(T0) if loop_clock else SimClock(T0)
    async with FakeTelegram(TOKEN, clock, chats=[CHAT, OTHER]) as fake:
        settings = settings_for(fake, **overrides)
        store = await Store.open(tmp_path / db)
        bot = create_bot(settings, store, clock, token=TOKEN)
        try:
            yield Rig(fake, store, bot, OutboxSender(store, bot, settings, clock), clock, settings)
        finally:
            await bot.session.close()
            await store.close()


# -- acceptance -------------------------------------------------------------------------------


@pytest.mark.virtual_time
async def test_thirty_signals_in_ten_seconds_arrive_in_order_without_429_or_duplicates(tmp_path: Path) -> None:
    async with rig(tmp_path, loop_clock=True, **{"telegram.digest_threshold": 1000}) as r:
        stop = asyncio.Event()
        runner = asyncio.create_task(r.sender.run(stop))
        try:
            for i in range(30):
                await r.clock.sleep(T0 + i / 3 - r.clock.now())
                await queue(r.store, make_signal(i, int(r.clock.now())), [CHAT], int(r.clock.now()))
                r.sender.wake()
            assert r.clock.now() - T0 < 10.5
            while len(r.fake.sent(CHAT)) < 30 and r.clock.now() < T0 + 200:
                await r.clock.sleep(0.5)
        finally:
            stop.set()
            await runner
        sent = r.fake.sent(CHAT)
        assert [m.text.split("\n", 1)[0] for m in sent] == [
            f"🔥 IGNITION · ignition · $TOK{i:02d}" for i in range(30)]
        assert [r for r in r.fake.requests if r.status != 200] == []
        rows = await r.rows()
        assert [row["state"] for row in rows] == ["sent"] * 30
        assert [row["message_id"] for row in rows] == [m.message_id for m in sent]
        assert len({m.message_id for m in sent}) == 30
        assert all(b.date >= a.date for a, b in itertools.pairwise(sent))
        assert sent[-1].date - sent[0].date >= 29  # one chat, at most ~1 message per second


async def test_forced_429_is_waited_out_then_sent_once(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await queue(r.store, make_signal(0, T0), [CHAT], T0)
        r.fake.force_429(retry_after=7)
        await r.sender.drain_once()
        [row] = await r.rows()
        assert row["state"] == "pending" and row["next_attempt_at"] >= T0 + 7
        assert row["last_error"] == "TelegramRetryAfter: retry after 7s"
        await r.drain_until_settled()
        [msg] = r.fake.sent(CHAT)
        statuses = [(q.method, q.status) for q in r.fake.requests]
        assert statuses == [("sendmessage", 429), ("sendmessage", 200)]
        assert msg.date >= T0 + 7


async def test_hostile_token_name_renders_literally(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        sig = make_signal(0, T0, symbol="<>&*_[]")
        name = "<b>x</b> & <i>*_[]</i> <script>"
        await queue(r.store, sig, [CHAT], T0, signal_card(sig, CardExtras(name=name)).to_payload())
        await r.drain_until_settled()
        [msg] = r.fake.sent(CHAT)
        assert msg.text.split("\n", 1)[0] == f"🔥 IGNITION · ignition · $<>&*_[] ({name})"
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await r.bot.send_message(CHAT, f"<b>{name}</b>", parse_mode="HTML")


@pytest.mark.parametrize("mode", ["refuse", "reset", "accept_then_reset"])
async def test_five_minute_outage_delivers_every_alert_exactly_once_in_order(tmp_path: Path, mode: str) -> None:
    async with rig(tmp_path) as r:
        await queue(r.store, make_signal(0, T0), [CHAT], T0)
        await r.sender.drain_once()
        assert len(r.fake.sent(CHAT)) == 1
        await r.fake.set_down(mode)  # type: ignore[arg-type]
        down_at = r.clock.now()
        for i in range(1, 11):
            now = int(r.clock.now())
            await queue(r.store, make_signal(i, now), [CHAT], now)
            await r.sender.drain_once()
            r.clock.advance(30)
        assert r.clock.now() - down_at >= 300
        assert any(row["state"] != "sent" for row in await r.rows())
        await r.fake.set_down(None)
        await r.drain_until_settled(step_s=5)
        assert r.first_lines() == [f"🔥 IGNITION · ignition · $TOK{i:02d}" for i in range(11)]
        rows = await r.rows()
        assert [row["state"] for row in rows] == ["sent"] * 11
        assert [row["message_id"] for row in rows] == [m.message_id for m in r.fake.sent(CHAT)]


async def test_crash_after_telegram_accepted_leaves_no_duplicate_after_restart(tmp_path: Path) -> None:
    async with rig(tmp_path, db="crash.db") as r:
        for i in range(2):
            await queue(r.store, make_signal(i, T0), [CHAT], T0)
        await r.sender.drain_once()
        r.fake.inject_user_message(CHAT, "/status")
        await r.store.telegram_note_message_id(CHAT, 3, who="user")
        await queue(r.store, make_signal(2, T0 + 5), [CHAT], T0 + 5)

        task = asyncio.create_task(r.sender.drain_once())
        r.fake.on_accept = lambda _msg: task.cancel()  # "kill -9" while the response is on its way
        with contextlib.suppress(asyncio.CancelledError):
            await task
        r.fake.on_accept = None
        assert [row["state"] for row in await r.rows()] == ["sent", "sent", "sending"]
        assert len(r.fake.sent(CHAT)) == 3
        r.fake.inject_user_message(CHAT, "anyone there?")
        await r.bot.session.close()
        await r.store.close()

        store2 = await Store.open(tmp_path / "crash.db")
        bot2 = create_bot(r.settings, store2, r.clock, token=TOKEN)
        try:
            await OutboxSender(store2, bot2, r.settings, r.clock).drain_once()
            rows = await store2.outbox_rows(chat_id=CHAT)
        finally:
            await bot2.session.close()
            await store2.close()
        sent = r.fake.sent(CHAT)
        assert [m.text.split("\n", 1)[0] for m in sent] == [
            f"🔥 IGNITION · ignition · $TOK{i:02d}" for i in range(3)]
        assert [m.message_id for m in sent] == [1, 2, 4]
        assert [(row["state"], row["message_id"]) for row in rows] == [("sent", 1), ("sent", 2), ("sent", 4)]
        probes = [q.description.split(":")[1].strip() for q in r.fake.requests if q.method == "editmessagetext"]
        assert probes == ["message is not modified"]  # from above the counter's high before the send (3, the user's)
        assert sent[2].edits == 0


async def test_crash_with_two_chats_on_one_id_counter_sends_each_alert_once(tmp_path: Path) -> None:
    """Telegram numbers the messages of all of a bot's private chats with one counter. The alert to
    CHAT is accepted (id 3) but the sender dies before hearing so; OTHER then gets three alerts (ids
    4-6) and the user writes in CHAT (id 7). Probing from CHAT's last recorded id (2) + 5 would stop
    at 7 and find the lost alert; here the window is 1, as small as it may be, and the probe must
    still start at the counter's high before the send, not at CHAT's own last id."""
    async with rig(tmp_path, db="crash2.db", **{"telegram.digest_threshold": 1000}) as r:
        r.sender.probe_window = 1
        await queue(r.store, make_signal(0, T0), [CHAT], T0)
        await queue(r.store, make_signal(1, T0), [OTHER], T0)
        await r.sender.drain_once()
        assert [m.message_id for m in r.fake.sent(CHAT)] == [1]
        assert [m.message_id for m in r.fake.sent(OTHER)] == [2]
        await queue(r.store, make_signal(2, T0 + 5), [CHAT], T0 + 5)
        task = asyncio.create_task(r.sender.drain_once())
        r.fake.on_accept = lambda _msg: task.cancel()  # "kill -9" while the response is on its way
        with contextlib.suppress(asyncio.CancelledError):
            await task
        r.fake.on_accept = None
        assert [m.message_id for m in r.fake.sent(CHAT)] == [1, 3]
        for i in range(3, 6):
            await queue(r.store, make_signal(i, T0 + 10), [OTHER], T0 + 10)
        other = OutboxSender(r.store, r.bot, r.settings, r.clock)
        for row in await r.store.outbox_rows(chat_id=OTHER):  # only OTHER's rows go now
            if row["state"] == "pending":
                await other._send_row(row, AlertMessage.from_payload(row["payload"]), None)
        user_mid = r.fake.inject_user_message(CHAT, "anyone there?")
        assert ([m.message_id for m in r.fake.sent(OTHER)], user_mid) == ([2, 4, 5, 6], 7)
        await r.bot.session.close()
        await r.store.close()

        store2 = await Store.open(tmp_path / "crash2.db")
        bot2 = create_bot(r.settings, store2, r.clock, token=TOKEN)
        try:
            sender2 = OutboxSender(store2, bot2, r.settings, r.clock)
            sender2.probe_window = 1
            await sender2.drain_once()
            rows = await store2.outbox_rows(chat_id=CHAT)
        finally:
            await bot2.session.close()
            await store2.close()
        copies = Counter(m.text.split("\n", 1)[0] for m in r.fake.sent(CHAT))
        assert copies == {"🔥 IGNITION · ignition · $TOK00": 1, "🔥 IGNITION · ignition · $TOK02": 1}
        assert [(row["state"], row["message_id"]) for row in rows] == [("sent", 1), ("sent", 3)]


async def test_crash_before_the_request_left_sends_once_after_probing(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await queue(r.store, make_signal(0, T0), [CHAT], T0)
        await r.sender.drain_once()
        await queue(r.store, make_signal(1, T0), [CHAT], T0)
        row = (await r.rows())[1]
        await r.store.outbox_mark_sending(row["id"])
        await r.sender.drain_once()
        assert r.first_lines() == ["🔥 IGNITION · ignition · $TOK00", "🔥 IGNITION · ignition · $TOK01"]
        probes = [q.description for q in r.fake.requests if q.method == "editmessagetext"]
        assert probes == ["Bad Request: message to edit not found"] * 5
        assert [row["state"] for row in await r.rows()] == ["sent", "sent"]


# -- digest -----------------------------------------------------------------------------------


async def test_digest_boundary_five_alerts_stay_five_six_become_one_digest(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        for i in range(5):
            await queue(r.store, make_signal(i, T0), [CHAT], T0)
        for i in range(10, 16):
            await queue(r.store, make_signal(i, T0), [OTHER], T0)
        await r.drain_until_settled()
        assert len(r.fake.sent(CHAT)) == 5
        assert [row["state"] for row in await r.rows(CHAT)] == ["sent"] * 5
        [digest] = r.fake.sent(OTHER)
        lines = digest.text.split("\n")
        assert lines[0] == "⚡ 6 alerts within 2m — digest"
        assert [ln.split(" ")[1] for ln in lines if ln.startswith("🔥")] == [f"TOK{i}" for i in range(10, 16)]
        rows = await r.rows(OTHER)
        assert [(row["state"], row["message_id"]) for row in rows] == [("digested", digest.message_id)] * 6


async def test_a_sixth_alert_inside_the_window_is_digested_and_outcomes_reply_to_the_digest(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        for i in range(5):
            await queue(r.store, make_signal(i, T0 + i), [CHAT], T0 + i)
        await r.drain_until_settled()
        late = make_signal(5, T0 + 100)
        sid = await queue(r.store, late, [CHAT], T0 + 100)
        r.clock.advance(100)
        await r.drain_until_settled()
        assert len(r.fake.sent(CHAT)) == 6
        digest = r.fake.sent(CHAT)[5]
        assert digest.text.startswith("⚡ 1 alerts within 2m — digest")
        outcome = Outcome("sl", -1.0, {"sl": T0 + 200}, closed_at=T0 + 200, last_price=late.price * 0.8)
        await r.store.save_outcome(sid, outcome, T0 + 200, [CHAT], outcome_card(late, outcome).to_payload())
        await r.drain_until_settled()
        update = r.fake.sent(CHAT)[6]
        assert update.reply_to == digest.message_id
        assert update.text.split("\n")[3] == "🛑 Stopped out · realized -1.00R · best +0.00R"

        await queue(r.store, make_signal(6, T0 + 400), [CHAT], T0 + 400)
        r.clock.advance(300)
        await r.drain_until_settled()
        assert r.fake.sent(CHAT)[7].text.startswith("🔥 IGNITION · ignition · $TOK06")


async def test_a_digest_that_failed_once_is_retried_as_the_same_digest(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        for i in range(6):
            await queue(r.store, make_signal(i, T0), [CHAT], T0)
        r.fake.force_429(retry_after=3)
        await r.sender.drain_once()
        assert [row["state"] for row in await r.rows()] == ["pending"] + ["digested"] * 5
        await r.store.mute(CHAT, mint_of(0))  # muting the carrier's mint now must not lose the other five
        await r.drain_until_settled()
        [digest] = r.fake.sent(CHAT)
        assert digest.text.startswith("⚡ 6 alerts within 2m — digest")
        assert [(row["state"], row["message_id"]) for row in await r.rows()] == [("digested", digest.message_id)] * 6


# -- replies, permanent failures, filters -------------------------------------------------------


async def test_outcome_update_replies_to_the_original_alert(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        sig = make_signal(0, T0)
        sid = await queue(r.store, sig, [CHAT, OTHER], T0)
        await r.drain_until_settled()
        outcome = Outcome("tp2", 3.0, {"tp1": T0 + 60, "tp2": T0 + 120}, closed_at=T0 + 120, last_price=sig.price * 1.6)
        await r.store.save_outcome(sid, outcome, T0 + 120, [CHAT, OTHER], outcome_card(sig, outcome).to_payload())
        await r.drain_until_settled()
        for chat in (CHAT, OTHER):
            alert, update = r.fake.sent(chat)
            assert update.reply_to == alert.message_id
            assert update.text.startswith("📣 UPDATE · ignition · $TOK00")


async def test_blocked_chat_fails_for_good_without_holding_up_others(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.fake.block(OTHER)
        for i in range(2):
            await queue(r.store, make_signal(i, T0), [CHAT, OTHER], T0)
        await r.drain_until_settled()
        assert len(r.fake.sent(CHAT)) == 2
        rows = await r.rows(OTHER)
        assert [(row["state"], row["attempts"]) for row in rows] == [("failed", 1), ("failed", 1)]
        assert rows[0]["last_error"] == "Telegram refused: Forbidden: bot was blocked by the user"
        assert sum(1 for q in r.fake.requests if q.chat_id == OTHER) == 2


async def test_unlisted_or_unknown_chats_and_broken_payloads_fail_with_a_reason(tmp_path: Path) -> None:
    async with rig(tmp_path, **{"telegram.chat_ids": [CHAT, 4242]}) as r:
        await queue(r.store, make_signal(0, T0), [OTHER, 4242], T0)
        bad = AlertMessage("<b>unclosed").to_payload()
        await queue(r.store, make_signal(1, T0), [CHAT], T0, bad)
        await r.drain_until_settled()
        errors = {row["chat_id"]: row["last_error"] for row in await r.store.outbox_rows(state="failed")}
        assert errors == {
            OTHER: "chat is not in telegram.chat_ids",
            4242: "Telegram refused: Bad Request: chat not found",
            CHAT: "Telegram refused: Bad Request: can't parse entities: "
                  "Can't find end tag corresponding to start tag \"b\"",
        }
        assert r.fake.requests[-1].chat_id == CHAT


async def test_empty_payload_is_rendered_from_the_store_and_kept(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        sig = make_signal(0, T0)
        await r.store.upsert_token(sig.mint, T0, symbol="TOK00", name="Stored Name")
        await queue(r.store, sig, [CHAT], T0, payload="")
        await r.drain_until_settled()
        [msg] = r.fake.sent(CHAT)
        assert msg.text.split("\n", 1)[0] == "🔥 IGNITION · ignition · $TOK00 (Stored Name)"
        [row] = await r.rows()
        assert AlertMessage.from_payload(row["payload"]).text == msg.html


async def test_chat_filters_mute_strategy_and_min_confidence(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.store.mute(CHAT, mint_of(0))
        await r.store.set_chat_settings(CHAT, {"strategies": ["ignition"], "min_confidence_pct": 60})
        await queue(r.store, make_signal(0, T0), [CHAT], T0)
        await queue(r.store, make_signal(1, T0, strategy="god_candle"), [CHAT], T0)
        await queue(r.store, make_signal(2, T0, conf=Confidence(0.9, 0.55, "c")), [CHAT], T0)
        await queue(r.store, make_signal(3, T0, conf=Confidence(0.61)), [CHAT], T0)
        await r.drain_until_settled()
        assert r.first_lines() == ["🔥 IGNITION · ignition · $TOK03"]
        assert [row["last_error"] for row in await r.rows()] == [
            "skipped: mint muted in this chat",
            "skipped: strategy god_candle is filtered out in this chat",
            "skipped: confidence below the chat's minimum 60%",
            None,
        ]


async def test_quiet_hours_send_silently(tmp_path: Path) -> None:
    async with rig(tmp_path, **{"app.timezone": "Asia/Kolkata"}) as r:
        await r.store.set_chat_settings(CHAT, {"quiet": [9 * 60, 11 * 60]})  # T0 is 10:10 IST
        await queue(r.store, make_signal(0, T0), [CHAT, OTHER], T0)
        await r.drain_until_settled()
        assert [m.disable_notification for m in r.fake.sent(CHAT)] == [True]
        assert [m.disable_notification for m in r.fake.sent(OTHER)] == [False]


async def test_chart_goes_as_a_silent_photo_reply_once(tmp_path: Path) -> None:
    async with rig(tmp_path, **{"telegram.send_charts": True}) as r:
        sig = make_signal(0, T0)
        bars4 = [Candle(Timeframe.H4.floor(T0) - k * 14400, 1.0, 1.2, 0.9, 1.1, 1000.0) for k in range(20, 0, -1)]
        bars5 = [Candle(Timeframe.M5.floor(T0) - k * 300, 1.0, 1.05, 0.98, 1.02, 50.0) for k in range(60, 0, -1)]
        await r.store.upsert_candles("pool0", Timeframe.H4, bars4)
        await r.store.upsert_candles("pool0", Timeframe.M5, bars5)
        await queue(r.store, sig, [CHAT], T0)
        await r.drain_until_settled()
        card, chart = r.fake.sent(CHAT)
        assert chart.photo is not None and chart.photo.startswith(b"\x89PNG")
        assert (chart.reply_to, chart.disable_notification) == (card.message_id, True)
        assert await r.store.telegram_last_message_id(CHAT) == chart.message_id


async def test_the_token_never_reaches_logs_or_stored_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with rig(tmp_path) as r:
        await queue(r.store, make_signal(0, T0), [CHAT], T0)
        await r.fake.set_down("refuse")
        await r.sender.drain_once()
        await r.fake.set_down(None)
        r.fake.token = "123456789:another-token-the-server-expects"
        r.clock.advance(10)
        await r.sender.drain_once()
        [row] = await r.rows()
        assert row["last_error"] == (
            "Telegram rejected the bot token (401 Unauthorized); check DEXSCAN_TELEGRAM_TOKEN")
        assert row["state"] == "pending"
    secret = TOKEN.split(":", 1)[1]
    assert "ClientConnectorError" in caplog.text
    assert secret not in caplog.text
