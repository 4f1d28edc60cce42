"""Faults injected into a running demo scanner; every assertion is about data.

Each test runs the real scanner (:func:`dexscan.scan_command.scan`, in-process) on the demo world through
:mod:`tests.support.fault_harness`, flips one of the loopback fakes' fault switches at a chosen moment of
simulated time, and checks afterwards:

* the scanner kept running and kept finding what the simulator planted: every planted ignition of a
  gate-passing token from the moment the fault began is a stored signal, every stored ignition is
  a planted one of a gate-passing token, and no signal at all exists for an unsafe or thin token;
* the counters saw exactly the injected faults: the HTTP layer's per-kind error counters, its 429
  and bad-record counters, the RPC pool's failures, and the same numbers on ``/metrics`` — and the
  fakes, which log every request, agree with them request for request;
* nothing was asked beyond a budget (the fakes' logs, re-checked window by window);
* stored rows are unique by their natural keys, and every alert reached the Bot API fake once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dexscan.alerts.format import AlertMessage
from tests.support.fault_harness import (
    CHAIN_GATES,
    LEAD_S,
    Result,
    Run,
    assert_alerts_delivered_once_in_order,
    assert_clean_data,
    assert_metrics_match,
    assert_rpc_metrics_match,
    keys,
    run_scanner,
)

pytestmark = [pytest.mark.slow, pytest.mark.virtual_time]

#: Simulated seconds (after the world's start) each market-fault run lasts: the first planted pump
#: of a gate-passing token ignites near 600 s, a planted pump of an unsafe token near 1,200 s.
MARKET_RUN_S = 1400
#: When the market faults start (or as soon as the universe is gated): histories are still
#: loading, live refreshes are running, and the planted pump is still a few simulated minutes away.
MARKET_FAULT_AT_S = 150


# ---------------------------------------------------------------------------------------------
# Market-data provider faults on the live refresh path (DexScreener)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketFault:
    kind: str
    count: int = 1
    seconds: float = 0.0
    retry_after: float | None = None
    errors: dict[str, int] = field(default_factory=dict)  # the HTTP layer's counters by kind, exactly
    rate_limited: int = 0
    bad_records: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)


MARKET_FAULTS = [
    # more failures in a row than the breaker allows (5): it opens, then half-open trials finish the burst
    MarketFault("500", count=8, errors={"http_5xx": 8}),
    MarketFault("429", count=12, rate_limited=12),
    MarketFault("429", count=3, retry_after=20.0, rate_limited=3),
    # a stall beyond the client's timeout (both on the loop's clock: simulated seconds)
    MarketFault("stall", count=2, seconds=1.0, errors={"timeout": 2}, overrides={"http.timeout_s": 0.4}),
    MarketFault("reset", count=6, errors={"connection": 6}),
    MarketFault("html", count=3, errors={"not_json": 3}),
    MarketFault("truncated", count=3, errors={"not_json": 3}),
    MarketFault("malformed_record", count=1, bad_records=1),
]


@pytest.mark.parametrize("fault", MARKET_FAULTS,
                         ids=lambda f: f"{f.kind}x{f.count}" + ("-retry-after" if f.retry_after else ""))
async def test_market_fault_on_the_live_path(tmp_path: Path, fault: MarketFault) -> None:
    provider = "dexscreener"

    async def script(run: Run) -> None:
        await run.until(lambda: bool(run.members()), what="universe gated")
        await run.at(MARKET_FAULT_AT_S)
        run.notes["fault_at"] = run.since_start()
        before = run.http_stats(provider)
        assert before.error_total == 0 and before.rate_limited == 0
        run.notes["members"] = run.members()
        run.inject(provider, fault.kind, fault.count, fault.seconds, fault.retry_after)
        await run.until(lambda: not run.pending_faults(provider), what="every injected fault served")
        ok = run.http_stats(provider).ok
        await run.until(lambda: run.http_stats(provider).ok > ok and run.http_stats(provider).breaker == "closed",
                        what="a good answer after the faults")
        run.notes["cleared"] = run.since_start()
        run.notes["snapshots"] = run.engine.counters.snapshots
        await run.at(MARKET_RUN_S)
        assert run.engine.counters.snapshots > run.notes["snapshots"]  # still judging fresh snapshots
        assert run.warmed_up()

    # the polled live path (since issue 13 the fallback of the chain stream, which would otherwise
    # price these tokens and slow their DexScreener polls to stats_refresh_s)
    r = await run_scanner(tmp_path, script, overrides={**fault.overrides, "stream.enabled": False})

    st = r.http[provider]
    assert {k: v for k, v in st.errors.items() if k != "circuit_open"} == fault.errors
    assert st.rate_limited == fault.rate_limited == r.fakes[provider].rate_limited
    assert sum(st.bad_records.values()) == fault.bad_records
    for p in ("jupiter", "geckoterminal"):
        assert r.http[p].error_total == 0 and r.http[p].rate_limited == 0
    if fault.kind == "reset":
        assert r.fakes[provider].by_status.get(0, 0) == fault.count  # dropped without an answer
    if fault.kind == "500":
        assert st.breaker_opened >= 1 and st.breaker == "closed"
        assert r.fakes[provider].by_status[500] == fault.count
    assert_metrics_match(r)
    assert r.members == r.notes["members"]  # an outage on our side neither drops nor admits anyone
    assert r.notes["fault_at"] < LEAD_S  # the planted pump ignites during or after the fault
    assert_clean_data(r, after=r.notes["fault_at"])


#: A DexScreener outage this long (simulated seconds) blinds the scanner for 12 of the 20 bars its
#: volume baseline spans.
LONG_OUTAGE_S = 3600


async def test_after_a_one_hour_outage_of_the_live_source_no_false_ignitions(tmp_path: Path) -> None:
    async def script(run: Run) -> None:
        await run.until(run.warmed_up, what="universe gated and history loaded")
        run.notes["down_at"] = run.since_start()
        run.inject("dexscreener", "down", seconds=LONG_OUTAGE_S)
        await run.at(run.notes["down_at"] + LONG_OUTAGE_S + 1200)

    r = await run_scanner(tmp_path, script)

    false = r.ignitions() - r.eligible_ignitions()
    assert not false, f"{len(false)} ignitions of tokens without a planted event after the outage"


# ---------------------------------------------------------------------------------------------
# Solana RPC faults: the safety gates read the chain through the failover pool
# ---------------------------------------------------------------------------------------------

def first_round(r: Result) -> list[tuple[str, str, int, str]]:
    first = min(v[2] for v in r.verdicts)
    return [v for v in r.verdicts if v[2] == first]


def assert_unsafe_refused(r: Result, verdicts: list[tuple[str, str, int, str]]) -> None:
    """Every checked unsafe token failed a chain gate (fail, not unverified); none is a member."""
    unsafe = r.unsafe()
    checked_unsafe = {m for m, _, _, _ in verdicts if m in unsafe}
    assert checked_unsafe, "the round checked unsafe tokens"
    failed = {m for m, gate, _, status in verdicts if gate in CHAIN_GATES and status == "fail"}
    assert checked_unsafe <= failed
    assert not r.members & unsafe
    assert not [s for _, s, _ in r.signals if s.mint in unsafe]


async def test_rpc_primary_down_at_start_is_ranked_last(tmp_path: Path) -> None:
    """The first health check finds the primary refusing connections: every read goes elsewhere."""

    async def primary_down(world: Any) -> None:
        await world.rpc[0].inject("down")

    async def script(run: Run) -> None:
        await run.until(lambda: bool(run.members()), what="first gating round")
        await run.at(120)

    r = await run_scanner(tmp_path, script, before_start=primary_down)

    round1 = first_round(r)
    chain = [v for v in round1 if v[1] in CHAIN_GATES]
    assert chain and {status for _, _, _, status in chain} <= {"pass", "fail"}  # nothing left unverified
    primary, *others = r.rpc
    assert r.rpc_fakes[0].http_requests == 0  # nothing reached it ...
    assert primary.failures == primary.requests >= 1  # ... every attempt was refused and counted
    assert primary.served == 0 and not primary.healthy and sum(ep.served for ep in others) >= 1
    assert_rpc_metrics_match(r)
    assert r.members
    assert_unsafe_refused(r, round1)


@pytest.mark.parametrize("fault,value", [("down", 0.0), ("lagging", 400.0), ("rate_limited", 0.0), ("slow", 1.5)])
async def test_rpc_primary_failing_mid_run_moves_the_call_to_another_endpoint(
        tmp_path: Path, fault: str, value: float) -> None:
    """The endpoint the pool ranks first breaks between health checks (the pool still ranks it
    first): the next gating round's reads hit it, fail, and move to another endpoint within the
    same call."""

    async def script(run: Run) -> None:
        await run.until(lambda: bool(run.members()), what="first gating round")
        pool = run.engine.rpc
        first = pool._ranked("getMultipleAccounts", set())[0].index  # where the next read goes
        state = pool.state()[first]
        assert state.healthy and state.failures == 0
        run.notes["first"] = first
        run.notes["served_before"] = state.served
        run.notes["http_before"] = run.world.rpc[first].stats.http_requests
        await run.world.rpc[first].inject(fault, value)
        run.notes["fault_at"] = run.now
        await run.until_async(lambda: _rechecked_since(run, run.notes["fault_at"]),
                              what="a gating round after the fault")
        await run.at(run.since_start() + 30)

    r = await run_scanner(tmp_path, script, overrides={
        "rpc.health_interval_s": 3600.0,  # no probe between: the calls themselves must find out
        "rpc.timeout_s": 0.3,
        "universe.discovery_interval_s": 300.0, "universe.recheck_failed_after_s": 240.0})

    rechecked = [v for v in r.verdicts if v[2] > r.notes["fault_at"]]
    chain = [v for v in rechecked if v[1] in CHAIN_GATES]
    assert chain and {status for _, _, _, status in chain} <= {"pass", "fail"}  # re-read elsewhere, none unverified
    assert_unsafe_refused(r, rechecked)
    first = r.notes["first"]
    broken, fake = r.rpc[first], r.rpc_fakes[first]
    others = [ep for i, ep in enumerate(r.rpc) if i != first]
    assert broken.served == r.notes["served_before"]  # not one read answered by it after the fault
    assert broken.failures >= 1 and sum(ep.served for ep in others) >= 1
    after = fake.http_requests - r.notes["http_before"]
    if fault == "down":
        assert after == 0  # refused: nothing reached it, yet every attempt was counted
    elif fault == "rate_limited":
        assert broken.rate_limited == broken.failures == after == fake.rate_limited  # each 429 counted
    elif fault == "lagging":
        assert broken.failures == after and broken.lag == int(value)  # each -32005 counted
    else:
        assert broken.failures == after  # each timeout counted (the fake answered too late)
    assert_rpc_metrics_match(r)


async def _rechecked_since(run: Run, t: float) -> bool:
    unsafe = {tok.mint for tok in run.world.sim.tokens if not tok.safe}
    return any(m in unsafe and gate in CHAIN_GATES and checked > t for m, gate, checked, _ in await run.verdicts())


async def test_all_rpc_endpoints_down_then_back(tmp_path: Path) -> None:
    async def all_down(world: Any) -> None:
        for server in world.rpc:
            await server.inject("down")

    async def script(run: Run) -> None:
        await run.until_async(lambda: _has_verdicts(run), what="first gating round")
        run.notes["round1"] = await run.verdicts()
        run.notes["status1"] = run.engine.status()
        run.notes["members1"] = run.members()
        await run.at(150)  # two and a half minutes without any RPC
        for server in run.world.rpc:
            await server.recover()
        run.notes["recovered"] = run.since_start()
        await run.until(lambda: bool(run.members()), what="admissions after the chain came back")
        await run.at(run.since_start() + 60)

    r = await run_scanner(tmp_path, script, before_start=all_down, overrides={
        "universe.discovery_interval_s": 300.0, "universe.recheck_failed_after_s": 240.0})

    round1 = r.notes["round1"]
    chain1 = [v for v in round1 if v[1] in CHAIN_GATES]
    assert chain1 and {status for _, _, _, status in chain1} == {"unverified"}
    checked = {m for m, _, _, _ in round1}
    assert r.notes["members1"] == set() and r.notes["status1"].universe_size == 0
    assert r.notes["status1"].gates_unverified + r.notes["status1"].gates_failed == len(checked)
    market_ok = {m for m in checked
                 if all(status == "pass" for mm, gate, _, status in round1 if mm == m and gate not in CHAIN_GATES)}
    expected = market_ok - r.unsafe()
    assert expected and r.members == expected  # every gate-passing token admitted once the chain is back
    later = [v for v in r.verdicts if v[2] > r.started + r.notes["recovered"]]
    assert_unsafe_refused(r, later)
    assert sum(ep.served for ep in r.rpc) >= 1
    assert all(ep.failures >= 1 for ep in r.rpc)
    assert_rpc_metrics_match(r)


async def _has_verdicts(run: Run) -> bool:
    return bool(await run.verdicts())


# ---------------------------------------------------------------------------------------------
# Telegram down for minutes: every alert delivered once, in order, afterwards
# ---------------------------------------------------------------------------------------------

#: Simulated seconds the Bot API stays unreachable: the first pump's alerts are decided inside it.
TELEGRAM_DOWN_S = 900


async def _telegram_outage(tmp_path: Path, mode: str, *, anchored: bool) -> Result:
    """The Bot API goes down before the first alert and stays down for ``TELEGRAM_DOWN_S``.

    ``anchored``: as in any real private chat, the user wrote first (``/start``) and the bot
    answered, so the sender knows message ids in the chat (what its crash recovery probes from).
    Otherwise the outage starts once the bot is up (``getMe`` answered): before that nothing is sent.
    """
    chat_box: dict[str, int] = {}

    async def user_starts(world: Any) -> None:
        chat_box["chat"] = world.chat_ids[0]
        if anchored:
            world.telegram.inject_user_message(world.chat_ids[0], "/start")

    async def script(run: Run) -> None:
        assert run.world.telegram is not None
        fake, chat = run.world.telegram, chat_box["chat"]
        if anchored:
            await run.until(lambda: len(fake.sent(chat)) == 1, what="the bot answered /start")
        else:
            await run.until(lambda: any(q.method == "getme" and q.status == 200 for q in fake.requests),
                            what="the bot is up")
        await fake.set_down(mode)
        run.notes["down_at"] = run.since_start()
        before = len(await run.outbox())
        run.notes["in_chat_at_outage"] = len(fake.sent(chat))
        await run.at(TELEGRAM_DOWN_S)
        run.notes["decided_while_down"] = len(await run.outbox()) - before
        run.notes["in_chat_while_down"] = len(fake.sent(chat))
        await fake.set_down(None)

        async def drained() -> bool:
            rows = await run.outbox()
            return bool(rows) and all(row["state"] in ("sent", "digested", "failed") for row in rows)

        await run.until_async(drained, what="outbox drained after the outage")
        await run.at(run.since_start() + 60)  # time for a late duplicate to show up

    return await run_scanner(tmp_path, script, telegram=True, before_start=user_starts)


@pytest.mark.parametrize("mode", ["refuse", "reset", "accept_then_reset"])
async def test_telegram_down_for_minutes_then_every_alert_once_in_order(tmp_path: Path, mode: str) -> None:
    r = await _telegram_outage(tmp_path, mode, anchored=True)

    assert r.notes["decided_while_down"] >= 2  # alerts were decided during the outage
    if mode != "accept_then_reset":
        assert r.notes["in_chat_while_down"] == r.notes["in_chat_at_outage"]  # nothing got through
    assert_alerts_delivered_once_in_order(r, answers=1)
    ks = keys(r.signals)
    assert len(ks) == len(set(ks))


async def test_telegram_ambiguous_outage_in_a_chat_without_history_sends_one_copy_at_most(tmp_path: Path) -> None:
    """No message id known in the chat: recovery cannot probe, so it resends (the documented
    limit), but once, when Telegram answers again, not once per failed attempt."""
    r = await _telegram_outage(tmp_path, "accept_then_reset", anchored=False)

    rows = [row for row in r.outbox if row["chat_id"] == r.world.chat_ids[0]]
    assert rows and {row["state"] for row in rows} <= {"sent", "digested"}
    shown = {row["message_id"] for row in rows}  # a strategy joining a move names the move's message
    head = rows[0]  # the only row tried during the outage (a chat's rows go out in order)
    [swallowed] = [m for m in r.telegram_sent if m.message_id not in shown]  # one copy, not one per attempt
    assert swallowed.html == AlertMessage.from_payload(head["payload"]).text  # the head's card, as first sent
    assert swallowed.message_id < head["message_id"]  # the resend came after it
    texts = [m.text for m in r.telegram_sent if m.message_id in shown]
    assert len(texts) == len(set(texts)) == len(shown)
    assert len(r.telegram_sent) == len(shown) + 1


# ---------------------------------------------------------------------------------------------
# SQLite busy: another process holds the database file's write lock
# ---------------------------------------------------------------------------------------------

#: The engine's connections let SQLite wait this long (real milliseconds, in their threads) for a
#: lock before the store waits in the event loop, where simulated time goes on.
BUSY_TIMEOUT_MS = 20
#: Simulated seconds after the start when another connection takes ``BEGIN EXCLUSIVE``, and how
#: long it holds it: the planted pump (near 600 s) ignites under the lock.
LOCK_AT_S = 350
LOCK_HOLD_S = 750
SQLITE_RUN_S = 1300


async def test_sqlite_locked_by_another_connection_loses_nothing(tmp_path: Path) -> None:
    """Another connection (a thread of the test, as a backup or a ``sqlite3`` shell would be another
    process) holds the file's write lock for 750 simulated seconds; the scanner goes on finding
    signals and stores every one of them once the lock is gone."""
    db = tmp_path / "locked.db"
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        con = sqlite3.connect(db, timeout=30.0, isolation_level=None)
        try:
            con.execute("BEGIN EXCLUSIVE")
            locked.set()
            release.wait(120.0)
            con.execute("COMMIT")
        finally:
            con.close()

    async def script(run: Run) -> None:
        engine = run.engine
        for store in {id(s): s for s in (engine.store, engine.history_store, engine.universe.store)}.values():
            await store.db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await run.until(lambda: bool(run.members()), what="universe gated")
        await run.at(LOCK_AT_S)
        # a plain thread, not asyncio.to_thread: the loop's clock must not wait for it (it is the
        # outside world), only for the scanner's own database calls
        holder = threading.Thread(target=hold_lock, daemon=True)
        holder.start()
        await asyncio.to_thread(locked.wait, 30.0)  # real seconds; the clock waits for it
        run.notes["locked_at"] = run.since_start()
        await run.at(LOCK_AT_S + LOCK_HOLD_S)  # the planted pump ignites while the file is locked
        release.set()
        await asyncio.to_thread(holder.join, 30.0)
        run.notes["released_at"] = run.since_start()
        await run.at(SQLITE_RUN_S)
        await run.until(lambda: engine.status().queue_depths["snapshots"] == 0, what="backlog processed")
        await run.until_async(lambda: _outbox_settled(run), what="alerts decided under the lock delivered")

    # on the streamed live path (the demo's default): trades that arrive while the engine waits for the
    # lock keep their arrival time, so the backlog judged after it is not dated to the release
    r = await run_scanner(tmp_path, script, db=db, telegram=True)

    log = (tmp_path / "scan.log").read_text()
    assert "database" in log and "is locked by another connection" in log  # the writers did run into it
    assert r.notes["released_at"] - r.notes["locked_at"] >= LOCK_HOLD_S
    found_under_lock = [s for _, s, _ in r.signals
                        if r.started + r.notes["locked_at"] <= s.ts <= r.started + r.notes["released_at"]]
    assert found_under_lock, "signals were found while the database was locked"
    assert_clean_data(r, after=0)
    assert r.warmed_up_all  # every member's history was stored and loaded despite the lock
    assert_alerts_delivered_once_in_order(r, answers=0)
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def _outbox_settled(run: Run) -> bool:
    rows = await run.outbox()
    return bool(rows) and all(row["state"] in ("sent", "digested") for row in rows)
