"""The Solana WebSocket client (:mod:`dexscan.chain.stream`) against the loopback fake
(:mod:`dexscan.demo.servers.rpc_ws`): subscriptions, decoding, pool attribution, dedupe, faults
(disconnect, silence, duplicates, out-of-order, malformed base64, failed transactions), fail-over,
the per-connection subscription limit. On virtual time: time-outs and backoff are simulated seconds."""

from __future__ import annotations

import asyncio
import base64
import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from dexscan.chain.events import PROGRAM_IDS, Event, Swap
from dexscan.chain.events import raydium_cpmm as cpmm
from dexscan.chain.events.codec import b58encode
from dexscan.chain.stream import LogStream, StreamOptions, from_settings, ws_endpoints, ws_url_for
from dexscan.config import load_settings, settings_for_display
from dexscan.demo.servers.rpc_ws import RpcWsFake
from dexscan.errors import ConfigError

pytestmark = pytest.mark.virtual_time

RAY, CPMM = PROGRAM_IDS["raydium_amm_v4"], PROGRAM_IDS["raydium_cpmm"]
RAY_POOL = b58encode(bytes([7]) * 32)
CPMM_POOL = b58encode(bytes([1]) * 32)


def cpmm_logs(amount_in: int) -> list[str]:
    raw = cpmm.SWAP + bytes([1]) * 32 + struct.pack("<6Q?", 10, 20, amount_in, 7, 0, 0, True)
    return [f"Program {CPMM} invoke [1]", "Program data: " + base64.b64encode(raw).decode(),
            f"Program {CPMM} success"]


def ray_logs(amount_in: int) -> list[str]:
    raw = struct.pack("<B7Q", 3, amount_in, 1, 2, amount_in, 10**9, 10**8, 99)
    return [f"Program {RAY} invoke [1]", "Program log: ray_log: " + base64.b64encode(raw).decode(),
            f"Program {RAY} success"]


async def until(pred: Callable[[], bool], seconds: float = 120.0) -> None:
    async with asyncio.timeout(seconds):
        while not pred():  # noqa: ASYNC110 - counts across client and fake, no event to await
            await asyncio.sleep(0.05)


def opts(**kw: float) -> StreamOptions:
    base = {"silence_timeout_s": 30.0, "reconnect_base_s": 0.5, "reconnect_max_s": 5.0, "open_timeout_s": 5.0}
    return StreamOptions(**{**base, **kw})  # type: ignore[arg-type]


def test_endpoints_come_from_the_http_urls_or_are_set() -> None:
    assert ws_url_for("https://mainnet.helius-rpc.com/?api-key=K") == "wss://mainnet.helius-rpc.com/?api-key=K"
    assert ws_url_for("http://127.0.0.1:8899") == "ws://127.0.0.1:8899"
    assert ws_endpoints(["https://a.example", "https://a.example", "http://b"]) == ["wss://a.example", "ws://b"]
    assert ws_endpoints(["https://a.example"], ["wss://c.example/ws"]) == ["wss://c.example/ws"]
    with pytest.raises(ValueError):
        ws_url_for("ftp://x")


def test_settings_give_endpoints_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEXSCAN_RPC_URLS", "https://rpc.example/?api-key=SECRET")
    endpoints, options = from_settings(load_settings(None))
    assert endpoints == ["wss://rpc.example/?api-key=SECRET", "wss://api.mainnet-beta.solana.com"]
    assert options.max_subscriptions_per_connection == 100 and options.silence_timeout_s == 30.0
    cfg = tmp_path / "c.toml"
    cfg.write_text('[stream]\nws_endpoints = ["wss://ws.example/KEY123"]\nsilence_timeout_s = 5\n')
    settings = load_settings(cfg)
    assert from_settings(settings)[0] == ["wss://ws.example/KEY123"]
    assert "KEY123" not in str(settings_for_display(settings))
    cfg.write_text('[stream]\nws_endpoints = ["https://ws.example"]\n')
    with pytest.raises(ConfigError):
        load_settings(cfg)


async def test_subscribes_decodes_and_names_the_ray_pool_from_its_subscription() -> None:
    async with RpcWsFake() as fake:
        got: list[Event] = []
        stream = LogStream([fake.url], [RAY_POOL, CPMM], on_event=got.append, options=opts(),
                           rng=random.Random(1))
        runner = asyncio.create_task(stream.run())
        await until(lambda: fake.active_subscriptions == 2)
        assert fake.methods["logsSubscribe"] == 2 and sorted(fake.subscribed) == sorted([RAY_POOL, CPMM])
        await fake.publish("s1", 10, ray_logs(500), [RAY_POOL, RAY])
        await fake.publish("s2", 11, cpmm_logs(300), [CPMM, CPMM_POOL])
        await until(lambda: len(got) == 2)
        ray, cp = got
        assert isinstance(ray, Swap) and (ray.program, ray.pool, ray.amount_in, ray.slot) == (
            "raydium_amm_v4", RAY_POOL, 500, 10)
        assert isinstance(cp, Swap) and (cp.program, cp.pool, cp.amount_in) == ("raydium_cpmm", CPMM_POOL, 300)
        st = stream.stats.as_dict()
        assert st["notifications"] == 2 and st["decoded"] == 2 and st["swaps"] == 2 and st["last_slot"] == 11
        assert all(isinstance(e, Swap) for e in got)
        # a route through two v4 pools: which ray_log is the watched pool's cannot be told from logs
        await fake.publish("route", 12, ray_logs(1) + ray_logs(2), [RAY_POOL])
        await until(lambda: len(got) == 4)
        assert [(e.signature, e.pool) for e in got[2:]] == [("route", None), ("route", None)]
        assert stream.stats.counts["raydium_pool_ambiguous"] == 2
        await stream.unwatch(CPMM)
        await until(lambda: fake.methods["logsUnsubscribe"] == 1 and fake.active_subscriptions == 1)
        await stream.stop()
        await runner


async def test_a_transaction_seen_by_two_subscriptions_is_delivered_once() -> None:
    async with RpcWsFake() as fake:
        q: asyncio.Queue[Event] = asyncio.Queue()
        stream = LogStream([fake.url], [CPMM, RAY_POOL], queue=q, options=opts())
        runner = asyncio.create_task(stream.run())
        await until(lambda: fake.active_subscriptions == 2)
        fake.duplicate = True
        assert await fake.publish("both", 5, cpmm_logs(1), [CPMM, RAY_POOL]) == 4
        await until(lambda: stream.stats.counts["duplicates"] == 3)
        assert q.qsize() == 1
        await stream.stop()
        await runner


async def test_disconnect_reconnects_with_backoff_and_resubscribes_everything() -> None:
    async with RpcWsFake() as fake:
        got: list[Event] = []
        stream = LogStream([fake.url], [CPMM, RAY_POOL], on_event=got.append, options=opts(), rng=random.Random(3))
        runner = asyncio.create_task(stream.run())
        await until(lambda: fake.active_subscriptions == 2)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await fake.disconnect_all()
        await until(lambda: fake.connections_total == 2 and fake.active_subscriptions == 2)
        assert 0.25 <= loop.time() - t0 <= 1.0  # first step of the backoff, jittered (50-100% of 0.5 s)
        await fake.publish("after", 20, cpmm_logs(9), [CPMM])
        await until(lambda: len(got) == 1)
        c = stream.stats.counts
        assert (c["reconnects"], c["resubscribes"], c["subscribes"]) == (1, 2, 2)
        assert c["disconnects"] == 1
        await stream.stop()
        await runner


async def test_a_silent_stream_fails_over_to_the_next_endpoint() -> None:
    async with RpcWsFake() as first, RpcWsFake() as second:
        first.silent = True  # acknowledges, never notifies
        got: list[Event] = []
        stream = LogStream([first.url, second.url], [CPMM], on_event=got.append,
                           options=opts(silence_timeout_s=10.0))
        runner = asyncio.create_task(stream.run())
        await until(lambda: second.active_subscriptions == 1, seconds=60)
        assert stream.stats.counts["silent_timeouts"] == 1 and stream.stats.counts["failovers"] == 1
        await second.publish("s", 1, cpmm_logs(4), [CPMM])
        await until(lambda: len(got) == 1)
        await stream.stop()
        await runner


async def test_an_unreachable_endpoint_is_skipped() -> None:
    async with RpcWsFake() as live:
        dead = RpcWsFake()
        await dead.start()
        dead_url = dead.url
        await dead.stop()  # nothing listens there now
        stream = LogStream([dead_url, live.url], [CPMM], options=opts())
        runner = asyncio.create_task(stream.run())
        await until(lambda: live.active_subscriptions == 1)
        assert stream.stats.counts["connect_errors"] >= 1
        await stream.stop()
        await runner


async def test_a_refusing_endpoint_backs_off_exponentially() -> None:
    async with RpcWsFake() as fake:
        fake.refuse = True
        stream = LogStream([fake.url], [CPMM], options=opts(reconnect_base_s=1.0, reconnect_max_s=8.0),
                           rng=random.Random(5))
        runner = asyncio.create_task(stream.run())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await until(lambda: fake.connections_total >= 6, seconds=200)
        # waits of 1, 2, 4, 8, 8 s at 50-100% each: between 11.5 and 23 simulated seconds
        assert 11.5 <= loop.time() - t0 <= 23.5
        fake.refuse = False
        await until(lambda: fake.active_subscriptions == 1, seconds=60)
        await stream.stop()
        await runner


async def test_out_of_order_bad_base64_and_failed_transactions_are_counted() -> None:
    async with RpcWsFake() as fake:
        got: list[Event] = []
        stream = LogStream([fake.url], [CPMM], on_event=got.append, options=opts())
        runner = asyncio.create_task(stream.run())
        await until(lambda: fake.active_subscriptions == 1)
        fake.reorder = True
        await fake.publish("early", 100, cpmm_logs(1), [CPMM])
        await fake.publish("late", 101, cpmm_logs(2), [CPMM])  # sent before "early"
        fake.reorder = False
        await fake.publish("bad", 102, [f"Program {CPMM} invoke [1]", "Program data: %%%not-base64",
                                        f"Program {CPMM} success"], [CPMM])
        await fake.publish("failed", 103, cpmm_logs(3), [CPMM], err={"InstructionError": [0, {"Custom": 1}]})
        await fake.send_raw("{not json")
        await until(lambda: stream.stats.counts["messages"] == 5 + 2)  # + answers to logs- and slotSubscribe
        assert [e.signature for e in got] == ["late", "early"]
        c, rej = stream.stats.counts, stream.stats.rejected
        assert c["out_of_order"] == 1 and c["failed_transactions"] == 1
        assert rej["bad_base64"] == 1 and rej["tx_failed"] == 1 and rej["not_json"] == 1
        await stream.stop()
        await runner


async def test_subscriptions_are_spread_under_the_per_connection_limit() -> None:
    async with RpcWsFake(max_subscriptions_per_connection=2) as fake:
        keys = [b58encode(bytes([i]) * 32) for i in range(10, 15)]
        stream = LogStream([fake.url], keys, options=opts(max_subscriptions_per_connection=2))
        runner = asyncio.create_task(stream.run())
        await until(lambda: fake.active_subscriptions == 5)
        assert len(fake.clients) == 3 and max(len(c.subs) for c in fake.clients) == 2
        await stream.watch(b58encode(bytes([20]) * 32))  # fits the third connection
        await stream.watch(b58encode(bytes([21]) * 32))  # needs a fourth
        await until(lambda: fake.active_subscriptions == 7)
        assert len(fake.clients) == 4 and stream.stats.counts["subscribe_errors"] == 0
        await stream.stop()
        await runner


async def test_a_refused_subscription_is_counted() -> None:
    async with RpcWsFake(max_subscriptions_per_connection=1) as fake:
        stream = LogStream([fake.url], [CPMM, RAY_POOL], options=opts(max_subscriptions_per_connection=5))
        runner = asyncio.create_task(stream.run())
        await until(lambda: stream.stats.counts["subscribe_errors"] == 1)
        assert fake.active_subscriptions == 1
        await stream.stop()
        await runner


async def test_a_full_queue_drops_and_counts() -> None:
    async with RpcWsFake() as fake:
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize=1)
        stream = LogStream([fake.url], [CPMM], queue=q, options=opts())
        runner = asyncio.create_task(stream.run())
        await until(lambda: fake.active_subscriptions == 1)
        for i in range(3):
            await fake.publish(f"q{i}", i + 1, cpmm_logs(i), [CPMM])
        await until(lambda: stream.stats.counts["notifications"] == 3)
        assert q.qsize() == 1 and stream.stats.counts["dropped"] == 2
        await stream.stop()
        await runner


async def test_content_faults_of_the_fake_are_counted_not_delivered() -> None:
    async with RpcWsFake() as fake:
        got: list[Event] = []
        stream = LogStream([fake.url], [CPMM], on_event=got.append, options=opts())
        runner = asyncio.create_task(stream.run())
        await until(lambda: fake.active_subscriptions == 1)
        fake.malformed_base64 = True
        await fake.publish("m", 1, cpmm_logs(1), [CPMM])
        fake.malformed_base64, fake.truncate_logs_at = False, 1  # the invoke line survives, the event does not
        await fake.publish("t", 2, cpmm_logs(2), [CPMM])
        fake.truncate_logs_at, fake.fail_transactions = None, True
        await fake.publish("f", 3, cpmm_logs(3), [CPMM])
        fake.fail_transactions = False
        await fake.publish("ok", 4, cpmm_logs(4), [CPMM])
        await until(lambda: stream.stats.counts["notifications"] == 4)
        assert [e.signature for e in got] == ["ok"]
        c, rej = stream.stats.counts, stream.stats.rejected
        assert (rej["bad_base64"], rej["log_truncated"], rej["tx_failed"]) == (1, 1, 1)
        assert (c["truncated_logs"], c["failed_transactions"], c["decoded"]) == (1, 1, 1)
        await stream.stop()
        await runner


async def test_unwatch_before_the_answer_drops_the_late_subscription_and_status_shows_it() -> None:
    async with RpcWsFake() as fake:
        stream = LogStream([fake.url + "/?api-key=SECRET"], [CPMM], options=opts())
        runner = asyncio.create_task(stream.run())
        await until(lambda: fake.active_subscriptions == 1)
        await stream.watch(RAY_POOL)
        await stream.unwatch(RAY_POOL)  # before the fake's answer was read
        await until(lambda: fake.methods["logsUnsubscribe"] == 1 and fake.active_subscriptions == 1)
        (st,) = stream.status()
        assert st["connected"] and st["watched"] == 1 and st["subscribed"] == 1
        assert "SECRET" not in str(st)
        await stream.stop()
        await runner


async def test_slot_heartbeat_tells_a_quiet_market_from_a_dead_stream() -> None:
    """No swap for far longer than the silence timeout, but slots keep coming: the stream stays up. When
    the provider goes silent (slots stop too), the connection is declared dead and replaced."""
    async with RpcWsFake() as fake:
        stream = LogStream([fake.url], [CPMM], options=opts(silence_timeout_s=10.0))
        runner = asyncio.create_task(stream.run())
        await until(lambda: fake.active_subscriptions == 1 and sum(len(c.slot_subs) for c in fake.clients) == 1)
        assert fake.methods["slotSubscribe"] == 1
        loop = asyncio.get_running_loop()
        start = loop.time()
        for slot in range(1000, 1000 + 60):  # 60 s of heartbeats, one a second, and no notification
            assert await fake.publish_slot(slot) == 1
            await asyncio.sleep(1.0)
        assert loop.time() - start >= 60.0
        c = stream.stats.counts
        assert (c["slot_notifications"], c["notifications"], c["silent_timeouts"], c["reconnects"]) == (60, 0, 0, 0)
        assert stream.stats.heartbeat_slot == 1059
        fake.silent = True
        assert await fake.publish_slot(2000) == 0
        await until(lambda: stream.stats.counts["silent_timeouts"] == 1)
        await until(lambda: stream.stats.counts["connects"] == 2)
        assert stream.stats.counts["slot_subscribes"] == 2  # the heartbeat is subscribed again on reconnect
        await stream.stop()
        await runner


async def test_a_program_subscription_leaves_raydium_v4_swaps_to_their_pools_subscription() -> None:
    """Subscribed to the Raydium v4 program (discovery) and to a v4 pool: the program's copy of a swap
    cannot name the pool (ray_log does not), the pool's copy can. Whichever arrives first, the swap is
    delivered once, with its pool, and the transaction's other events once."""
    async with RpcWsFake() as fake:
        got: list[Event] = []
        stream = LogStream([fake.url], [RAY, RAY_POOL], on_event=got.append, options=opts())
        runner = asyncio.create_task(stream.run())
        await until(lambda: fake.active_subscriptions == 2)
        cpmm_and_ray = [*cpmm_logs(3), *ray_logs(500)]
        # the fake notifies in subscription order: the program's copy first, then the pool's
        assert await fake.publish("s1", 10, cpmm_and_ray, [RAY, RAY_POOL]) == 2
        await until(lambda: stream.stats.counts["notifications"] == 2)
        assert [(e.signature, e.program, e.pool) for e in got] == [
            ("s1", "raydium_cpmm", got[0].pool), ("s1", "raydium_amm_v4", RAY_POOL)]
        c = stream.stats.counts
        assert (c["duplicates"], c["raydium_left_to_pool"], c["swaps"]) == (1, 1, 2)  # the pool's copy, used
        await fake.publish("s1", 10, cpmm_and_ray, [RAY, RAY_POOL])  # a provider's repeat: both copies dropped
        await until(lambda: stream.stats.counts["notifications"] == 4)
        assert len(got) == 2 and c["duplicates"] == 3
        await stream.stop()
        await runner
