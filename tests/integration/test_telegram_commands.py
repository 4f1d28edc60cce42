"""Bot commands through the Dispatcher and getUpdates against the fake Bot API; access; /stats; /check."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot

import dexscan.alerts.telegram.commands as telegram_module
from dexscan.alerts.chat_settings import ChatSettings
from dexscan.alerts.telegram.cli import run_bot
from dexscan.alerts.telegram.commands import build_dispatcher
from dexscan.alerts.telegram.outbox import OutboxSender
from dexscan.alerts.telegram.runner import run_telegram
from dexscan.alerts.telegram.transport import UpdatePoller, create_bot
from dexscan.backend import ScannerBackend, ScoreRow, StoreBackend
from dexscan.clock import LoopClock, SimClock
from dexscan.config import Settings
from dexscan.demo.servers.telegram import FakeTelegram
from dexscan.domain import Confidence, GateStatus, GateVerdict, Outcome
from dexscan.errors import ConfigError
from dexscan.store import Store
from tests.integration.test_telegram_delivery import (
    CHAT,
    OTHER,
    T0,
    TOKEN,
    make_signal,
    mint_of,
    queue,
    settings_for,
)

STRANGER = 666


@dataclass
class Bench:
    fake: FakeTelegram
    store: Store
    bot: Bot
    poller: UpdatePoller
    clock: SimClock
    settings: Settings

    async def say(self, text: str, chat: int = CHAT) -> list[str]:
        """The user writes ``text``; returns the bot's new messages in that chat (plain text)."""
        before = len(self.fake.sent(chat))
        self.fake.inject_user_message(chat, text)
        await self.poller.poll_once()
        return [m.text for m in self.fake.sent(chat)[before:]]


@contextlib.asynccontextmanager
async def bench(tmp_path: Path, backend: ScannerBackend | None = None, *,
                make_backend: Callable[[Store, SimClock], ScannerBackend] | None = None,
                **overrides: Any) -> AsyncIterator[Bench]:
    clock = SimClock(T0)
    async with FakeTelegram(TOKEN, clock, chats=[CHAT, STRANGER]) as fake:
        settings = settings_for(fake, **overrides)
        store = await Store.open(tmp_path / "cmd.db")
        bot = create_bot(settings, store, clock, token=TOKEN)
        if backend is None:
            backend = (make_backend or (lambda s, c: StoreBackend(s, clock=c)))(store, clock)
        dp = build_dispatcher(backend, store, settings, clock)
        try:
            yield Bench(fake, store, bot, UpdatePoller(bot, dp, store, clock), clock, settings)
        finally:
            await bot.session.close()
            await store.close()


async def seed_outcomes(store: Store) -> None:
    """Closed signals over two strategies and several confidence deciles, plus open and unscored ones."""
    plan = [
        ("ignition", Confidence(0.62), "tp1", 1.5), ("ignition", Confidence(0.65), "sl", -1.0),
        ("ignition", Confidence(0.68), "breakeven", 0.0), ("ignition", Confidence(0.3, 0.81, "c1"), "tp3", 5.0),
        ("ignition", Confidence(0.2, 0.85, "c1"), "expired", 0.4), ("confirmation", Confidence(0.99), "tp2", 3.0),
        ("confirmation", Confidence(0.12), "sl", -1.0), ("confirmation", Confidence(0.15), "open", 0.0),
    ]
    for i, (strategy, conf, result, r) in enumerate(plan):
        sig = make_signal(i, T0 + i, strategy=strategy, conf=conf)
        sid, _ = await store.save_signal(sig)
        if result != "open":
            await store.save_outcome(sid, Outcome(result, r, {}, closed_at=T0 + 999), T0 + 999)  # type: ignore[arg-type]


async def test_help_lists_every_command(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        [text] = await b.say("/start")
        for cmd in ("/status", "/top", "/signals", "/live", "/stats", "/check", "/why", "/watch", "/mute",
                    "/unmute", "/settings", "/minconf", "/strategies", "/quiet"):
            assert f"\n{cmd} — " in text
        assert await b.say("/frobnicate") == ["Unknown command. /help lists them."]
        assert await b.say("just chatting") == []


async def test_a_command_answer_waits_out_a_429(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        b.fake.force_429(retry_after=4, chat_id=CHAT)
        started = b.clock.now()
        [text] = await b.say("/status")
        assert text.startswith("Status\nUniverse: 0 tokens")
        assert b.clock.now() - started >= 4
        assert [q.status for q in b.fake.requests if q.method == "sendmessage"] == [429, 200]


async def test_a_stranger_gets_one_refusal_and_no_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with bench(tmp_path) as b:
        await queue(b.store, make_signal(0, T0, symbol="SECRET"), [CHAT], T0)
        first = await b.say("/signals", chat=STRANGER)
        assert first == ["This is a private dexscan bot. Your chat id is 666; its operator can allow it by "
                         "adding it to telegram.chat_ids."]
        assert await b.say("/start", chat=STRANGER) == []
        assert await b.say("/check " + mint_of(0), chat=STRANGER) == []
        assert "SECRET" in (await b.say("/signals"))[0]
        assert await b.store.kv_get(f"telegram:refused:{STRANGER}") == str(T0)
        refusals = [r for r in caplog.records if "refused chat 666" in r.getMessage()]
        assert len(refusals) == 1 and refusals[0].levelno == logging.WARNING
        assert TOKEN.split(":")[1] not in caplog.text


class UnsafeChecker:
    """A checker that knows one mint keeps its mint authority; its verdicts are reached now."""

    def __init__(self, unsafe: str, clock: SimClock) -> None:
        self.unsafe = unsafe
        self.clock = clock
        self.calls: list[str] = []

    async def __call__(self, mint: str) -> Sequence[GateVerdict]:
        self.calls.append(mint)
        now = int(self.clock.now())
        status = GateStatus.FAIL if mint == self.unsafe else GateStatus.PASS
        reason = "mint authority is set (Auth111): supply can be inflated" if mint == self.unsafe else "renounced"
        return [GateVerdict(mint, "freeze_authority", GateStatus.PASS, "freeze authority renounced", now),
                GateVerdict(mint, "mint_authority", status, reason, now)]


async def test_check_shows_each_verdict_with_its_age_and_reruns_the_gates_when_stale(tmp_path: Path) -> None:
    """Issue 16: /check gives every gate's verdict with its age; stored verdicts younger than a
    discovery interval (600 s) are shown as they are, older ones are replaced by a fresh check."""
    unsafe = mint_of(7)
    async with bench(tmp_path) as b:
        checker = UnsafeChecker(unsafe, b.clock)
        b.poller.dispatcher = build_dispatcher(StoreBackend(b.store, checker, b.clock), b.store, b.settings, b.clock)
        [text] = await b.say(f"/check {unsafe}")
        assert text.split("\n") == [
            f"Gate check {unsafe}",
            "✅ freeze_authority: freeze authority renounced · checked just now",
            "❌ mint_authority: mint authority is set (Auth111): supply can be inflated · checked just now",
        ]
        assert [v.status for v in await b.store.latest_verdicts(unsafe)] == [GateStatus.PASS, GateStatus.FAIL]
        b.clock.advance(240)
        [again] = await b.say(f"/check {unsafe}")
        assert again.split("\n")[1:] == [
            "✅ freeze_authority: freeze authority renounced · checked 4m ago",
            "❌ mint_authority: mint authority is set (Auth111): supply can be inflated · checked 4m ago",
        ]
        assert checker.calls == [unsafe]  # 4 minutes old: not stale, not re-run
        b.clock.advance(360)
        [fresh] = await b.say(f"/check {unsafe}")
        assert fresh.split("\n")[1] == "✅ freeze_authority: freeze authority renounced · checked just now"
        assert checker.calls == [unsafe, unsafe]
        [why] = await b.say(f"/why {unsafe}")
        assert why.split("\n") == [
            f"Why {unsafe}",
            "Not in the universe: 1 gate did not pass (checked 04:50 UTC, just now):",
            "❌ mint_authority: mint authority is set (Auth111): supply can be inflated",
        ]
        usage = "Usage: /check MINT — a Solana token address (base58, 32 bytes)."
        assert await b.say("/check") == [usage]
        assert await b.say("/check 0OIl-not-base58") == [usage]
        assert await b.say("/check " + "1" * 44) == [usage]
        assert checker.calls == [unsafe, unsafe]


async def test_check_without_gates_says_its_verdicts_are_stale_and_why_differs(tmp_path: Path) -> None:
    mint = mint_of(5)
    async with bench(tmp_path) as b:  # StoreBackend without a checker
        await b.store.save_verdicts([
            GateVerdict(mint, "mint_authority", GateStatus.FAIL, "mint authority is set", T0 - 7500)])
        [check] = await b.say(f"/check {mint}")
        assert check.split("\n") == [
            f"Gate check {mint}", "❌ mint_authority: mint authority is set · checked 2h05m ago", "",
            "Stale: older than 10m; this bot runs without the scanner and cannot run the gates "
            "(dexscan check MINT can).",
        ]
        [why] = await b.say(f"/why {mint}")
        assert why.split("\n") == [f"Why {mint}",
                                    "Not in the universe: 1 gate did not pass (checked 02:35 UTC, 2h05m ago):",
                                    "❌ mint_authority: mint authority is set"]
        member = mint_of(6)
        await b.store.upsert_token(member, T0, symbol="OK")
        await b.store.set_universe_membership(member, True, T0 - 600, None)
        await b.store.save_verdicts([GateVerdict(member, g, GateStatus.PASS, "renounced", T0 - 300)
                                     for g in ("freeze_authority", "mint_authority")])
        [why_member] = await b.say(f"/why {member}")
        assert why_member.split("\n") == [f"Why {member}",
                                           "In the universe: it passes every gate (checked 04:35 UTC, 5m ago)."]
        [never] = await b.say(f"/why {mint_of(9)}")
        assert never.split("\n") == [
            f"Why {mint_of(9)}",
            "Not in the universe: it has never been checked by the gates (discovery has not found it; "
            "/watch MINT adds it)."]


async def test_standalone_bot_check_runs_the_real_gates_on_the_litesvm_chain_when_stale(tmp_path: Path) -> None:
    """The standalone `dexscan bot`'s /check: a 2-hour-old PASS is stale, so the gates of
    `dexscan check` run on the chain now and the mint, which kept its authority, fails."""
    from dexscan.backend import standalone_backend
    from dexscan.demo.servers.fake_chain import FakeChain
    from dexscan.demo.servers.rpc import RpcFakeServer

    chain = FakeChain()
    unsafe = chain.create_mint(b"telegram-unsafe", mint_authority=True, holders=(1_000_000,))
    async with RpcFakeServer(chain) as rpc, bench(tmp_path) as b:
        chain_settings = b.settings.with_overrides({"rpc.endpoints": [rpc.url],
                                                    "sources.dexscreener.enabled": False})
        await b.store.save_verdicts([
            GateVerdict(unsafe, "mint_authority", GateStatus.PASS, "renounced", T0 - 7200)])
        backend = standalone_backend(chain_settings, b.store, b.clock)
        b.poller.dispatcher = build_dispatcher(backend, b.store, b.settings, b.clock)
        [text] = await b.say(f"/check {unsafe}")
        lines = text.split("\n")
        failing = [ln for ln in lines if ln.startswith("❌")]
        assert failing == [f"❌ mint_authority: mint authority is set ({chain.authority.pubkey()}): "
                           "supply can be inflated · checked just now"]
        assert "✅ freeze_authority: freeze authority renounced · checked just now" in lines
        assert not any(ln.startswith("Stale") for ln in lines)
        stored = {v.gate: v.status for v in await b.store.latest_verdicts(unsafe)}
        assert stored["mint_authority"] is GateStatus.FAIL and stored["freeze_authority"] is GateStatus.PASS

        await rpc.close()  # the chain stops answering: 15 minutes later the fresh check says so
        b.clock.advance(900)
        [down] = await b.say(f"/check {unsafe}")
        line = next(ln for ln in down.split("\n") if "mint_authority" in ln)
        assert line.startswith("❔ mint_authority: chain read failed: no RPC endpoint could serve")
        assert line.endswith(" · checked just now")

        async def broken(mint: str) -> Sequence[GateVerdict]:
            raise RuntimeError("the checker broke")

        b.clock.advance(900)  # a checker that raises: the stored verdicts, said stale
        b.poller.dispatcher = build_dispatcher(StoreBackend(b.store, broken, b.clock), b.store, b.settings, b.clock)
        [stale] = await b.say(f"/check {unsafe}")
        assert stale.split("\n")[-1] == ("Stale: older than 10m, and the gates could not be run now "
                                          "(the chain or the market did not answer).")
        assert "· checked 15m ago" in stale


async def test_stats_equals_a_direct_query_of_the_store(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        await seed_outcomes(b.store)
        rows = await StoreBackend(b.store).scorecard()
        direct = await b.store._all(
            """SELECT s.strategy, s.raw_score, s.confidence, o.result, o.realized_r
               FROM signals s JOIN outcomes o ON o.signal_id = s.id""")
        expected: dict[tuple[str, int | None], list[float]] = {}
        hits: dict[tuple[str, int | None], int] = {}
        for r in direct:
            if r["result"] == "open":
                continue
            score = r["confidence"] if r["confidence"] is not None else r["raw_score"]
            key = (r["strategy"], min(9, int(score * 10)))
            expected.setdefault(key, []).append(r["realized_r"])
            hits[key] = hits.get(key, 0) + (r["result"] in ("tp1", "tp2", "tp3", "breakeven"))
        assert {(x.strategy, x.decile): (x.n, x.hits, round(x.mean_r, 9)) for x in rows} == {
            k: (len(v), hits[k], round(sum(v) / len(v), 9)) for k, v in expected.items()}
        assert rows == [
            ScoreRow("confirmation", 1, 1, 0, -1.0), ScoreRow("confirmation", 9, 1, 1, 3.0),
            ScoreRow("ignition", 6, 3, 2, pytest.approx(0.5 / 3)), ScoreRow("ignition", 8, 2, 1, 2.7, True),
        ]
        [text] = await b.say("/stats")
        lines = text.split("\n")
        assert "ignition: 5 closed · hit 60.0% · mean +1.18R" in lines
        assert "  raw score 0.60–0.69: 3 · hit 66.7% · mean +0.17R" in lines  # uncalibrated: no percentage
        assert "  conf 80–89%: 2 · hit 50.0% · mean +2.70R" in lines  # calibrated probabilities
        assert "confirmation: 2 closed · hit 50.0% · mean +1.00R" in lines


async def test_uncalibrated_stats_never_show_a_percentage_band(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        for i, (score, result, r) in enumerate([(0.42, "sl", -1.0), (0.47, "tp1", 1.5), (0.71, "tp2", 3.0)]):
            sid, _ = await b.store.save_signal(make_signal(i, T0 + i, conf=Confidence(score)))
            await b.store.save_outcome(sid, Outcome(result, r, {}, closed_at=T0 + 999), T0 + 999)  # type: ignore[arg-type]
        [text] = await b.say("/stats")
        assert text.split("\n") == [
            "Scorecard (closed live signals; hit = TP1 before the stop)",
            "Uncalibrated: grouped by raw score, which is not a probability.",
            "", "ignition: 3 closed · hit 66.7% · mean +1.17R",
            "  raw score 0.40–0.49: 2 · hit 50.0% · mean +0.25R",
            "  raw score 0.70–0.79: 1 · hit 100.0% · mean +3.00R",
        ]
        assert "%: " not in text


async def test_minconf_is_a_percentage_only_once_calibrated(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        await b.store.save_signal(make_signal(0, T0, conf=Confidence(0.55)))
        assert await b.say("/minconf 60") == [
            "Min confidence: raw score ≥ 0.60 (uncalibrated: no skill measured yet, so no percentage)"]
        await b.store.save_signal(make_signal(1, T0 + 60, conf=Confidence(0.4, 0.66, "c1")))
        assert await b.say("/minconf 60") == ["Min confidence: ≥ 60% (calibrated probability)"]
        assert await b.say("/minconf off") == ["Min confidence: any"]
    chat = ChatSettings(min_confidence_pct=60)
    assert chat.skip_reason(make_signal(0, T0, conf=Confidence(0.55))) == (
        "skipped: raw score below the chat's minimum 0.60")
    assert chat.skip_reason(make_signal(0, T0, conf=Confidence(0.9, 0.55, "c1"))) == (
        "skipped: confidence below the chat's minimum 60%")


async def test_open_trades_show_r_now_at_the_latest_stored_price(tmp_path: Path) -> None:
    from dexscan.domain import Candle, Timeframe
    from dexscan.status import LiveRow

    async with bench(tmp_path) as b:
        fresh = make_signal(7, T0 + 7, strategy="confirmation")  # entry 0.008, SL 0.0064: 1R = 0.0016
        await b.store.save_signal(fresh)
        [before] = await b.say("/live")
        assert before.split("\n")[1].endswith("· 📍 Open (no price yet), stop $0.006400")
        bar_ts = Timeframe.M5.floor(T0 + 7) + 300
        await b.store.upsert_candles("pool7", Timeframe.M5, [Candle(bar_ts, 0.0085, 0.0095, 0.0084, 0.0093, 5e3)])
        [live] = await b.say("/live")
        [signals] = await b.say("/signals")
        expected = "· 📍 Open +0.81R now, stop $0.006400"
        assert live.split("\n")[1].endswith(expected) and signals.split("\n")[1].endswith(expected)
        stored = (await b.store.signals(status="live"))[0][2]
        dashboard = LiveRow.from_signal(fresh, stored, T0 + 600, price=0.0093)
        assert f"{dashboard.r_now:+.2f}R" == "+0.81R"  # the dashboard's R now for the same price

        hit = make_signal(3, T0 + 3)  # entry 0.004, SL 0.0032, TP1 0.0052, touched: the stop moves to entry
        sid, _ = await b.store.save_signal(hit)
        await b.store.save_outcome(sid, Outcome("open", 1.5, {"tp1": T0 + 100}, None, 0.0054, 1.75), T0 + 100)
        [live] = await b.say("/live")
        assert "TOK03 ignition · $0.004000 · uncalibrated (raw 0.62) · 04:40 UTC · 📍 Open +1.75R now, stop $0.004000" \
            in live


async def test_open_trade_stop_follows_breakeven_after_tp1(tmp_path: Path) -> None:
    async with bench(tmp_path, **{"ladder.breakeven_after_tp1": False}) as b:
        sid, _ = await b.store.save_signal(make_signal(3, T0 + 3))
        await b.store.save_outcome(sid, Outcome("open", 1.5, {"tp1": T0 + 100}, None, 0.0054, 1.75), T0 + 100)
        [live] = await b.say("/live")
        assert live.split("\n")[1].endswith("· 📍 Open +1.75R now, stop $0.003200")


async def test_top_reads_what_the_scanner_stores(tmp_path: Path) -> None:
    from dexscan.domain import GateStatus as GS

    async with bench(tmp_path) as b:
        small, big, nameless, unknown = mint_of(1), mint_of(2), mint_of(3), mint_of(4)
        for mint, symbol, liq, vol in ((small, "SMALL", 80_000.0, 150_000.0), (big, "BIG", 2.5e6, 4.2e6),
                                       (nameless, "", 300_000.0, 900_000.0), (unknown, "", None, None)):
            await b.store.upsert_token(mint, T0, symbol=symbol, source="dexscreener:profiles")
            await b.store.set_universe_membership(mint, True, T0, None, main_pool=f"pool-{mint[:4]}")
            if liq is not None:
                await b.store.save_verdicts([
                    GateVerdict(mint, "liquidity", GS.PASS, "ok", T0 - 600, {"liquidity_usd": 1.0}),
                    GateVerdict(mint, "liquidity", GS.PASS, "ok", T0, {"liquidity_usd": liq, "pair": "p"}),
                    GateVerdict(mint, "volume_24h", GS.PASS, "ok", T0, {"volume_24h_usd": vol}),
                ])
        await b.store.save_signal(make_signal(3, T0, symbol="NONAME", mint=nameless))
        [top] = await b.say("/top")
        assert top.split("\n") == [
            "Top tokens (24h volume)",
            "1. BIG vol $4.2M · liq $2.5M", big,
            "2. NONAME vol $900K · liq $300K", nameless,
            "3. SMALL vol $150K · liq $80K", small,
            f"4. {unknown[:4]}…{unknown[-4:]} vol n/a · liq n/a", unknown,
        ]
        # a backfilled pool row newer than the last gate round wins
        await b.store.upsert_pool(f"pool-{small[:4]}", small, T0 + 60, liquidity_usd=90_000.0, volume_h24_usd=5e6)
        assert (await b.store.top_tokens(1))[0]["volume_h24_usd"] == 5e6


async def test_signals_live_top_status_watch(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        assert await b.say("/signals") == ["No signals yet."]
        await seed_outcomes(b.store)
        [signals] = await b.say("/signals")
        lines = signals.split("\n")
        assert lines[0] == "Latest signals"
        assert lines[1].startswith("✅ TOK07 confirmation · $0.008000 · uncalibrated (raw 0.15)")
        assert lines[2] == mint_of(7)
        assert len(lines) == 1 + 2 * 8
        [live] = await b.say("/live")
        assert live.split("\n")[1].startswith("✅ TOK07 confirmation")
        assert len(live.split("\n")) == 3
        await b.store.upsert_token(mint_of(1), T0, symbol="BIG")
        await b.store.upsert_pool("poolBIG", mint_of(1), T0, liquidity_usd=2e6, volume_h24_usd=9e6)
        await b.store.set_universe_membership(mint_of(1), True, T0, None, main_pool="poolBIG")
        [top] = await b.say("/top")
        assert top.split("\n")[:3] == ["Top tokens (24h volume)", "1. BIG vol $9M · liq $2M", mint_of(1)]
        [status] = await b.say("/status")
        assert status.split("\n")[:5] == ["Status", "Universe: 1 tokens", "Signals stored: 8 (last: 04:40 UTC)",
                                          "Live signals: 1", "Alerts waiting: 0"]
        [watch] = await b.say(f"/watch {mint_of(9)}")
        assert watch.split("\n")[0] == mint_of(9)
        assert await b.store.watched_mints() == [mint_of(9)]


async def test_mute_settings_and_their_effect_on_delivery(tmp_path: Path) -> None:
    async with bench(tmp_path, **{"app.timezone": "UTC"}) as b:
        muted = mint_of(0)
        assert await b.say(f"/mute {muted}") == [f"Muted {muted} in this chat. /unmute to undo."]
        assert await b.say("/minconf 150") == ["Usage: /minconf 60 (percent, 1–100) or /minconf off"]
        assert await b.say("/minconf 60%") == [
            "Min confidence: raw score ≥ 0.60 (uncalibrated: no skill measured yet, so no percentage)"]
        assert (await b.say("/strategies ignition,nonsense"))[0].startswith("Usage: /strategies ignition,confirmation")
        assert await b.say("/strategies ignition, god_candle") == ["Strategies: ignition, god_candle"]
        assert (await b.say("/quiet 25-07"))[0].endswith("hours run 00-23 and minutes 00-59")
        assert await b.say("/quiet 22-07") == ["Quiet hours: 22:00–07:00 local (silent)"]
        [shown] = await b.say("/settings")
        assert shown.split("\n") == [
            "Alert settings for this chat",
            "Min confidence: raw score ≥ 0.60 (uncalibrated: no skill measured yet, so no percentage)",
            "Strategies: ignition, god_candle", "Quiet hours: 22:00–07:00 local (silent)", "Time zone: UTC",
            "Muted: 1", muted]
        assert await b.store.chat_settings(CHAT) == {
            "min_confidence_pct": 60.0, "strategies": ["ignition", "god_candle"], "quiet": [1320, 420],
            "muted_strategies": []}

        await queue(b.store, make_signal(0, T0), [CHAT], T0)
        await queue(b.store, make_signal(1, T0, strategy="confirmation"), [CHAT], T0)
        await queue(b.store, make_signal(2, T0, conf=Confidence(0.5)), [CHAT], T0)
        await queue(b.store, make_signal(3, T0, conf=Confidence(0.7)), [CHAT], T0)
        before = len(b.fake.sent(CHAT))
        await OutboxSender(b.store, b.bot, b.settings, b.clock).drain_once()
        new = b.fake.sent(CHAT)[before:]
        assert [m.text.split("\n", 1)[0] for m in new] == ["🔥 IGNITION · ignition · $TOK03"]
        assert new[0].disable_notification is True  # 04:40 UTC is inside 22:00-07:00
        assert await b.say(f"/unmute {muted}") == [f"Unmuted {muted}"]
        assert await b.say(f"/unmute {muted}") == [f"Was not muted: {muted}"]
        assert await b.say("/quiet off") == ["Quiet hours: off"]


async def test_strategies_lists_records_and_a_strategy_can_be_muted_per_chat(tmp_path: Path) -> None:
    from dexscan.scoring import Scorer
    from tests.integration.test_alert_moves import calibrator

    async with bench(tmp_path) as b:
        scorer = Scorer(b.settings.scoring, calibrator())
        b.poller.dispatcher = build_dispatcher(StoreBackend(b.store, clock=b.clock, scorer=scorer), b.store,
                                               b.settings, b.clock)
        [listing] = await b.say("/strategies")
        lines = listing.split("\n")
        assert lines[0] == "Strategies"
        i = lines.index("⚠️ confirmation: alerts here")
        assert lines[i + 1:i + 3] == ["  TP1 first 11% historically, no edge measured",
                                      "  negative record: −0.96R mean over 53 signals"]
        assert "ignition: alerts here" in lines
        assert await b.say("/mute confirmation") == [
            "Muted strategy confirmation in this chat: its alerts are not sent here (it is still scanned and "
            "scored). /unmute confirmation to undo."]
        assert "⚠️ confirmation: muted here" in (await b.say("/strategies"))[0].split("\n")
        assert (await b.store.chat_settings(CHAT))["muted_strategies"] == ["confirmation"]
        assert (await b.say("/mute nonsense"))[0].startswith("Usage: /mute MINT (a Solana token address) or "
                                                             "/mute STRATEGY (one of: ignition, confirmation")
        await queue(b.store, make_signal(1, T0, strategy="confirmation"), [CHAT], T0)
        await queue(b.store, make_signal(2, T0), [CHAT], T0)
        before = len(b.fake.sent(CHAT))
        await OutboxSender(b.store, b.bot, b.settings, b.clock).drain_once()
        assert [m.text.split("\n", 1)[0] for m in b.fake.sent(CHAT)[before:]] == ["🔥 IGNITION · ignition · $TOK02"]
        rows = await b.store.outbox_rows(chat_id=CHAT)
        assert rows[0]["last_error"] == "skipped: strategy confirmation is muted in this chat"
        assert await b.say("/unmute confirmation") == ["Unmuted strategy confirmation"]
        assert await b.say("/unmute confirmation") == ["Was not muted: strategy confirmation"]
        [help_text] = await b.say("/help")
        assert "/mute — stop alerts for a mint or a strategy in this chat: /mute MINT or /mute STRATEGY" in help_text
        [stats] = await b.say("/stats")
        assert stats.startswith("No closed signals yet")
        assert stats.split("\n")[-6:] == [
            "Measured on history (the calibrator's data, same ladder; lift = strategy − baseline)",
            "baseline: every 4H close: 900 closed · TP1 first 22.6% · mean +0.17R",
            "⚠️ negative expectancy · confirmation: 53 closed · TP1 first 11.3% · mean -0.96R",
            "  lift vs every 4H close: -11.3 pts TP1 first, -1.13R mean",
            "ignition: 300 closed · TP1 first 23.0% · mean +0.12R",
            "  lift vs every 4H close: +0.4 pts TP1 first, -0.05R mean",
        ]


async def test_update_offset_survives_a_restart(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        b.fake.inject_user_message(CHAT, "/help")
        b.fake.inject_user_message(CHAT, "/status")
        assert await b.poller.poll_once() == 2
        assert await b.store.kv_get(UpdatePoller.OFFSET_KEY) == "3"
        assert await b.store.telegram_last_user_message_id(CHAT) == 2  # both written before the bot answered
        fresh = UpdatePoller(b.bot, build_dispatcher(StoreBackend(b.store), b.store, b.settings), b.store, b.clock)
        assert await fresh.poll_once() == 0
        assert len(b.fake.sent(CHAT)) == 2


@pytest.mark.virtual_time
async def test_run_telegram_delivers_and_answers_until_stopped(tmp_path: Path) -> None:
    clock = LoopClock(T0)
    async with FakeTelegram(TOKEN, clock, chats=[CHAT]) as fake:
        settings = settings_for(fake)
        store = await Store.open(tmp_path / "run.db")
        try:
            await queue(store, make_signal(0, T0), [CHAT], T0)
            fake.inject_user_message(CHAT, "/status")
            stop = asyncio.Event()
            fake.on_accept = lambda _m: stop.set() if len(fake.sent(CHAT)) == 2 else None
            senders: list[OutboxSender] = []
            await asyncio.wait_for(run_telegram(settings, store, StoreBackend(store), stop, clock, TOKEN, 1,
                                                on_sender=senders.append), 10)
            assert len(senders) == 1 and senders[0].store is store
        finally:
            await store.close()
        assert sorted(m.text.split("\n", 1)[0] for m in fake.sent(CHAT)) == [
            "Status", "🔥 IGNITION · ignition · $TOK00"]
        assert {q.method for q in fake.requests} >= {"getme", "deletewebhook", "setmycommands", "getupdates"}

        fake.token = "123456789:another-token-the-server-expects"
        with pytest.raises(ConfigError, match=r"401 Unauthorized\); check DEXSCAN_TELEGRAM_TOKEN"):
            store = await Store.open(tmp_path / "run.db")
            try:
                await run_telegram(settings, store, StoreBackend(store), asyncio.Event(), clock, TOKEN, 1)
            finally:
                await store.close()


async def test_run_bot_needs_a_token_and_an_allow_list(tmp_path: Path) -> None:
    from dexscan.config import load_settings

    args = type("Args", (), {"demo": False, "duration": 1.0, "db": str(tmp_path / "x.db")})()
    with pytest.raises(ConfigError, match="set DEXSCAN_TELEGRAM_TOKEN"):
        await run_bot(load_settings(env={}), args)
    with pytest.raises(ConfigError, match=r"telegram\.chat_ids is empty"):
        await run_bot(load_settings(env={"DEXSCAN_TELEGRAM_TOKEN": TOKEN}), args)


def test_a_bot_message_in_the_console_demo_chat() -> None:
    """How `dexscan bot --demo` prints what the bot sends (tests/e2e/test_bot_demo.py drives the chat)."""
    from dexscan.demo.bot_chat import message_lines

    assert message_lines("🔥 IGNITION · $PUMP\nEntry $0.01\n\nWhy", True,
                         ((("DexScreener", "https://x"), ("Birdeye", "https://y")), (("Solscan", "https://z"),))) == [
        "bot › [chart image]", "      🔥 IGNITION · $PUMP", "      Entry $0.01", "", "      Why",
        "      buttons: [DexScreener] [Birdeye]", "      buttons: [Solscan]"]
    assert message_lines("Unknown command. /help lists them.", False, ()) == [
        "bot › Unknown command. /help lists them."]


class CountingBackend(StoreBackend):
    """The store's answers, counting the /watch calls that reach the backend (each one a round in the scanner)."""

    def __init__(self, store: Store, clock: SimClock) -> None:
        super().__init__(store, clock=clock)
        self.watched: list[str] = []

    async def watch(self, mint: str) -> str:
        self.watched.append(mint)
        return await super().watch(mint)


async def test_watch_list_of_a_chat_stops_at_its_cap(tmp_path: Path) -> None:
    backends: list[CountingBackend] = []

    def make(store: Store, clock: SimClock) -> CountingBackend:
        backends.append(CountingBackend(store, clock))
        return backends[-1]

    async with bench(tmp_path, make_backend=make, **{"telegram.max_watched_per_chat": 3}) as b:
        [backend] = backends
        added = "Added to the watch list: it is checked by the gates at the next discovery cycle."
        for i in range(3):
            assert await b.say(f"/watch {mint_of(i)}") == [f"{mint_of(i)}\n{added}"]
        assert await b.say(f"/watch {mint_of(1)}") == [f"{mint_of(1)}\nAlready on this chat's watch list."]
        for i in (3, 4):
            assert await b.say(f"/watch {mint_of(i)}") == [
                f"{mint_of(i)}\nNot added: this chat already watches 3 mints, the most it may "
                "(telegram.max_watched_per_chat in the config)."]
        assert backend.watched == [mint_of(0), mint_of(1), mint_of(2)]  # no round for a repeat or a refusal
        assert await b.store.watched_mints() == sorted(mint_of(i) for i in range(3))
        assert (await b.store.token_row(mint_of(3))) is None
        # another chat has its own list
        assert await b.say(f"/watch {mint_of(3)}", chat=OTHER) == [f"{mint_of(3)}\n{added}"]
        assert backend.watched[-1] == mint_of(3)


async def test_refused_strangers_are_remembered_up_to_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(telegram_module, "MAX_REFUSED_CHATS", 20)
    async with bench(tmp_path) as b:
        strangers = [10_000 + i for i in range(30)]
        for i, chat in enumerate(strangers):
            b.clock.advance(1)
            b.fake.inject_user_message(chat, f"/status {i}")
        await b.poller.poll_once()
        assert all(len(b.fake.sent(chat)) == 1 for chat in strangers)  # one refusal each
        rows = await b.store.db.execute_fetchall(
            "SELECT key FROM kv WHERE key LIKE 'telegram:refused:%' ORDER BY key")
        assert [r[0] for r in rows] == [f"telegram:refused:{chat}" for chat in strangers[10:]]  # the 20 newest
        # one still remembered stays silent; a forgotten one is refused once more, and remembered again
        b.fake.inject_user_message(strangers[-1], "/status")
        b.clock.advance(1)
        b.fake.inject_user_message(strangers[0], "/status")
        await b.poller.poll_once()
        assert (len(b.fake.sent(strangers[-1])), len(b.fake.sent(strangers[0]))) == (1, 2)
        rows = await b.store.db.execute_fetchall("SELECT COUNT(*) FROM kv WHERE key LIKE 'telegram:refused:%'")
        assert rows[0][0] == 20
        assert await b.store.kv_get(f"telegram:refused:{strangers[0]}") is not None
        assert await b.store.kv_get(f"telegram:refused:{strangers[10]}") is None  # the oldest went
