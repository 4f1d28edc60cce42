"""The whole scanner for one simulated day on the demo world, checked against the planted truth.

The real engine (real clients, HTTP layer, RPC pool, gates, detector, ladder, store and local API)
runs in-process against the loopback fakes on a virtual-time event loop (:mod:`dexscan.vtime`): the
clock jumps whenever nothing can run, so the day takes as long as its work and ends the same way on
any machine. The simulator guarantees that no ordinary candle can satisfy the ignition
rule or close +10%, so the sets of signals are exact: every eligible planted pump gives an ignition
and then a confirmation, every eligible planted fizzle an ignition only, nothing else ignites, and a
token that fails the on-chain gates never gives any signal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dexscan.config import load_settings
from dexscan.demo.world import DemoWorld
from dexscan.engine import Engine
from dexscan.scan_command import ScanOptions, preload, scan

DAY = 86_400
LEAD_S = 600  # the clock starts 10 simulated minutes before the live period
H4 = 14_400
#: A candle counts once its close is this far behind the end of the run (confirmation delivered).
SETTLED_S = 1800

pytestmark = [pytest.mark.slow, pytest.mark.virtual_time]

#: The simulated day's record: every stored signal as (mint, strategy, candle) in the order it was
#: stored, and every alert as it reached the chat. Virtual time makes both the same on any machine
#: (fast, slow, one core, both cores busy); ``DEXSCAN_UPDATE_GOLDEN=1`` rewrites the file after an
#: intended change of the market, the detector or the alerts.
GOLDEN = Path(__file__).with_name("golden") / "simulated_day.json"


def day_record(signals: list[Any], outbox: list[dict[str, Any]], chat: list[Any]) -> dict[str, Any]:
    keys = {sid: [sig.mint, sig.strategy, sig.candle_ts] for sid, sig, _ in signals}
    return {
        "signals": [keys[sid] for sid in sorted(keys)],
        "alerts": [[row["kind"], *keys[row["signal_id"]], row["state"]] for row in outbox],
        "chat": [m.text.split("\n", 1)[0] for m in chat],
    }


async def test_one_simulated_day_gives_exactly_the_planted_signals(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    results: dict[str, Any] = {}

    async def inspect(engine: Engine) -> None:
        assert engine.service is not None
        async with aiohttp.ClientSession() as http, http.get(f"{engine.service.url}/signals?limit=5000") as resp:
            assert resp.status == 200
            results["api"] = await resp.json()
        results["db"] = await engine.store.signals()
        results["outbox"] = await engine.store.outbox_rows()
        rows = await engine.store.db.execute_fetchall("SELECT id, status FROM signals")
        results["statuses"] = {int(r[0]): str(r[1]) for r in rows}
        results["status"] = engine.status()

    opts = ScanOptions(demo=True, run_for=DAY + LEAD_S, dashboard=False, quiet=True, serve="127.0.0.1:0")
    preload(opts, telegram=True)
    async with DemoWorld(seed=7, n_tokens=40, rpc_endpoints=2, telegram=True) as world:
        assert world.clock is not None
        start = world.sim.live_start - LEAD_S
        world.clock.advance(start - world.clock.now())
        settings = world.apply(load_settings()).with_overrides({
            # hot/cold refresh every 1-2 simulated minutes: a day in ~1/4 of the default's requests
            "scan.hot_refresh_s": 60.0,
            "scan.cold_refresh_s": 120.0,
            "app.log_file": str(tmp_path / "scan.log"),
        })
        assert await scan(settings, opts, world.clock, db, mode="demo", stopped=inspect) == 0
        end = world.clock.now()
        assert world.telegram is not None
        chat = world.telegram.sent(world.chat_ids[0])
        planted = world.planted_events(start, end)
        sim = world.sim

    rows = results["db"]
    signals = [(sid, sig) for sid, sig, _ in rows]

    def judged(candle_ts: int) -> bool:
        """A 4H candle wholly inside the run, closed long enough ago for its confirmation to be out."""
        return candle_ts >= start and candle_ts + H4 + SETTLED_S <= end

    settled = [e for e in planted if judged(e.candle_ts)]

    def keys(strategy: str) -> set[tuple[str, int]]:
        return {(s.mint, s.candle_ts) for _, s in signals if s.strategy == strategy and judged(s.candle_ts)}

    want_ignitions = {(e.mint, e.candle_ts) for e in settled if e.eligible and e.kind in ("pump", "fizzle")}
    want_confirmations = {(e.mint, e.candle_ts) for e in settled if e.eligible and e.kind == "pump"}
    assert len(want_confirmations) >= 5 and len(want_ignitions) > len(want_confirmations)
    assert keys("ignition") == want_ignitions
    assert keys("confirmation") == want_confirmations

    first = {(s.mint, s.candle_ts, s.strategy): s.ts for _, s in signals}
    for mint, candle in want_confirmations:
        assert first[(mint, candle, "ignition")] < first[(mint, candle, "confirmation")]

    unsafe = {t.mint for t in sim.tokens if not t.safe}
    thin = {t.mint for t in sim.tokens if t.kind == "thin"}
    assert any(e.mint in unsafe for e in planted), "the day has planted events on unsafe tokens"
    assert not [s for _, s in signals if s.mint in unsafe | thin]

    outcomes = {sid: o for sid, _, o in rows}
    statuses = results["statuses"]
    for sid, sig in signals:
        if sig.levels is None:
            assert statuses[sid] == "untracked"
            continue
        out = outcomes[sid]
        assert out is not None
        assert (statuses[sid] == "closed") == (out.result != "open")
    assert any(o is not None and o.closed for o in outcomes.values())

    api = results["api"]
    assert api["count"] == len(rows)
    by_id = {item["id"]: item for item in api["signals"]}
    for sid, sig, out in rows:
        item = by_id[sid]
        assert (item["mint"], item["strategy"], item["candle_ts"]) == sig.key
        assert item["ts"] == sig.ts
        assert item["price"] == sig.price
        assert item["levels"] == (None if sig.levels is None else {
            "entry": sig.levels.entry, "sl": sig.levels.sl, "tp1": sig.levels.tp1, "tp2": sig.levels.tp2,
            "tp3": sig.levels.tp3, "atr": sig.levels.atr, "atr_source": sig.levels.atr_source,
            "sl_mode": sig.levels.sl_mode, "flags": list(sig.levels.flags)})
        if out is None:
            assert item["outcome"] is None
        else:
            assert item["outcome"]["result"] == out.result
            assert item["outcome"]["realized_r"] == pytest.approx(out.realized_r, rel=1e-12)

    status = results["status"]
    assert status.counters["duplicate_signals"] == 0
    assert sum(status.signals_by_strategy.values()) == len(rows)

    record = day_record(rows, results["outbox"], chat)
    assert len(record["alerts"]) >= len(rows) and len(record["chat"]) >= 1
    if os.environ.get("DEXSCAN_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(record, indent=1) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert record["signals"] == golden["signals"]
    assert record["alerts"] == golden["alerts"]
    assert record["chat"] == golden["chat"]


def test_the_demo_clock_starts_lead_seconds_before_an_eligible_planted_pump() -> None:
    world = DemoWorld(seed=7, n_tokens=40)
    start = world.default_start()
    soon = [e for e in world.planted_events() if start <= e.ignite_ts < start + 3600]
    pumps = [e for e in soon if e.kind == "pump" and e.eligible]
    assert pumps and min(e.ignite_ts for e in pumps) == start + 600
    assert {e.kind if e.eligible else "unsafe" for e in soon} >= {"pump", "rug", "unsafe"}


async def test_without_any_reachable_source_the_scanner_says_so_and_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    import socket

    from dexscan.scan_command import run_scan

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = load_settings().with_overrides({f"sources.{p}.base_url": dead
                                               for p in ("jupiter", "dexscreener", "geckoterminal")})
    args = argparse.Namespace(demo=False, speed=None, duration=None, once=True, json=True, serve=None, tokens=None,
                              db=str(tmp_path / "x.db"))
    assert await run_scan(settings, args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no market-data source is reachable" in err and "dexscan scan --demo" in err
    assert "127.0.0.1" in err and "Traceback" not in err
    assert not (tmp_path / "x.db").exists()


async def test_once_is_one_full_cycle(tmp_path: Path) -> None:
    opts = ScanOptions(demo=True, once=True, dashboard=False, quiet=True)
    preload(opts, telegram=False)
    seen: list[Engine] = []
    async with DemoWorld(seed=7, n_tokens=20, rpc_endpoints=1) as world:
        assert world.clock is not None and world.market is not None
        settings = world.apply(load_settings()).with_overrides({"app.log_file": str(tmp_path / "once.log")})
        assert await scan(settings, opts, world.clock, tmp_path / "once.db", mode="demo", ready=seen.append) == 0
        gecko = world.market.stats("geckoterminal").by_route
        pairs_requests = world.market.stats("dexscreener").by_route
    engine = seen[0]
    members = [v for v in engine.tokens.values() if v.member]
    assert members and all(v.history_done for v in members)
    assert engine.counters.snapshots == len(members)  # every member judged once
    assert sum(gecko.values()) == len(members)  # one history request per member
    assert all(engine.scheduler.last_refreshed(v.mint) is not None for v in members)
    assert sum(pairs_requests.values()) >= 2  # the gates' pools, then one refresh round
    # the REJECTED view (issue 16): every checked token kept out, with the book's reason
    rejected = {r.mint: r for r in engine.status().rejected}
    unsafe = {t.mint for t in world.sim.tokens if t.mint_authority}
    assert unsafe and unsafe <= set(rejected)
    assert not set(rejected) & {v.mint for v in members}
    assert all(rejected[m].reason.startswith("mint_authority fail: mint authority is set") for m in unsafe)
    assert not any(r.left for r in rejected.values())  # the first round: none was a member before


async def test_alerts_reach_telegram_and_the_bot_answers_from_the_running_scanner(tmp_path: Path) -> None:
    """Signal → outbox row (same transaction) → the Bot API fake; /status and /check answered live."""
    from dexscan.demo.servers.telegram import DEMO_CHAT, SentMessage

    opts = ScanOptions(demo=True, run_for=1800.0, dashboard=False, quiet=True)
    preload(opts, telegram=True)
    asked: list[int] = []
    async with DemoWorld(seed=7, n_tokens=40, rpc_endpoints=1, telegram=True) as world:
        assert world.clock is not None and world.telegram is not None
        fake = world.telegram
        unsafe = next(t for t in world.sim.tokens if t.mint_authority)
        settings = world.apply(load_settings()).with_overrides({"app.log_file": str(tmp_path / "tg.log")})

        def on_message(msg: SentMessage) -> None:
            if not asked and "IGNITION" in msg.text:  # the first alert arrived: ask the bot
                asked.append(fake.inject_user_message(DEMO_CHAT, "/status"))
                asked.append(fake.inject_user_message(DEMO_CHAT, f"/check {unsafe.mint}"))

        fake.on_accept = on_message
        seen: list[Engine] = []
        outbox: list[dict[str, Any]] = []

        async def collect(engine: Engine) -> None:
            seen.append(engine)
            outbox.extend(await engine.store.outbox_rows(chat_id=DEMO_CHAT))

        assert await scan(settings, opts, world.clock, tmp_path / "tg.db", mode="demo", stopped=collect) == 0
        messages = fake.sent(DEMO_CHAT)
    assert len(asked) == 2
    engine = seen[0]
    first = engine.stored[0].signal
    cards = [m for m in messages if first.mint in m.text and m.reply_to is None and "IGNITION" in m.text]
    assert cards, [m.text[:80] for m in messages]
    assert first.symbol in cards[0].text and "Entry" in cards[0].text and "TP3" in cards[0].text
    signal_rows = [r for r in outbox if r["kind"] in ("signal", "join")]
    assert len(signal_rows) == len(engine.stored)  # one outbox row per stored signal, queued with it
    first_row = next(r for r in signal_rows if r["signal_id"] == engine.stored[0].signal_id)
    assert first_row["state"] == "sent" and first_row["message_id"] == cards[0].message_id
    status = next(m.text for m in messages if m.text.startswith("Status"))
    assert "Scanner: demo mode" in status and f"Universe: {engine.status().universe_size} tokens" in status
    check = next(m.text for m in messages if m.text.startswith("Gate check"))
    assert unsafe.mint in check and "mint_authority" in check and "❌" in check
