"""Candle books: UTC alignment, aggregation, gaps, bars from ticks, bounded memory (SPEC §4)."""

from __future__ import annotations

import pytest

from dexscan.config import Settings, load_settings
from dexscan.detector import Detector
from dexscan.domain import Candle, PairSnapshot, Timeframe, TxnCounts, Window4
from dexscan.market import RollingVolume, Tick, TokenMarket, time_ordered

M5, H1, H4 = Timeframe.M5, Timeframe.H1, Timeframe.H4
T = 1_750_003_200  # 16:00 UTC, a 4H boundary


@pytest.fixture(scope="module")
def settings() -> Settings:
    # Only the books matter here: no strategies, so nothing else runs.
    return load_settings(env={}).with_overrides({"strategies.enabled": []})


def c(ts: int, o: float, h: float, lo: float, cl: float, v: float) -> Candle:
    return Candle(ts, o, h, lo, cl, v)


def test_4h_windows_are_utc_aligned_and_aggregate_their_5m_bars(settings: Settings) -> None:
    det = Detector(settings)
    start = T - 600  # 15:50: the last two bars of the previous window, then 48 bars of the window at T
    for k in range(50):
        p = 1.0 + k / 100
        det.on_bar("A", M5, c(start + k * 300, p, p + 0.005, p - 0.003, p + 0.01, 10.0 + k))
    m = det.market("A")
    assert m is not None
    assert [b.ts for b in m.h4.bars] == [T - 14_400, T]
    partial, window = m.h4.bars
    assert (partial.open, partial.close, partial.volume) == (1.0, pytest.approx(1.02), 21.0)
    assert window.open == pytest.approx(1.02)
    assert window.high == pytest.approx(1.49 + 0.005)
    assert window.low == pytest.approx(1.02 - 0.003)
    assert window.close == pytest.approx(1.50)
    assert window.volume == pytest.approx(sum(10.0 + k for k in range(2, 50)))
    assert [b.ts for b in m.h1.bars][-4:] == [T, T + 3600, T + 7200, T + 10_800]
    assert m.h4.forming is None
    det.on_bar("A", M5, c(T + 14_400, 1.5, 1.6, 1.5, 1.55, 3.0))
    assert m.h4.forming is not None and (m.h4.forming.ts, m.h4.forming.open) == (T + 14_400, 1.5)


def test_an_empty_interval_is_a_flat_zero_volume_bar_at_the_previous_close(settings: Settings) -> None:
    det = Detector(settings)
    det.on_bar("A", M5, c(T, 1.0, 1.2, 0.9, 1.1, 50.0))
    det.on_bar("A", M5, c(T + 900, 1.1, 1.3, 1.05, 1.25, 70.0))
    m = det.market("A")
    assert m is not None
    assert list(m.m5) == [
        c(T, 1.0, 1.2, 0.9, 1.1, 50.0),
        c(T + 300, 1.1, 1.1, 1.1, 1.1, 0.0),
        c(T + 600, 1.1, 1.1, 1.1, 1.1, 0.0),
        c(T + 900, 1.1, 1.3, 1.05, 1.25, 70.0),
    ]
    assert m.count5 == 4
    assert list(m.volume_window(20).values) == [50.0, 0.0, 0.0, 70.0]


def test_a_gap_longer_than_the_ring_keeps_counts_and_fills_whole_4h_windows(settings: Settings) -> None:
    det = Detector(settings)
    det.on_bar("A", M5, c(T, 1.0, 1.0, 1.0, 2.0, 5.0))
    det.on_bar("A", M5, c(T + 3 * 86_400, 2.0, 2.1, 1.9, 2.05, 9.0))  # three days later
    m = det.market("A")
    assert m is not None
    assert m.count5 == 3 * 288 + 1
    assert len(m.m5) == det.m5_capacity
    assert all(b.volume == 0.0 and b.open == b.close == 2.0 for b in list(m.m5)[:-1])
    h4 = list(m.h4.bars)
    assert h4[0] == c(T, 1.0, 1.0, 1.0, 2.0, 5.0)
    assert [b.ts for b in h4] == [T + k * 14_400 for k in range(18)]
    assert all(b == c(b.ts, 2.0, 2.0, 2.0, 2.0, 0.0) for b in h4[1:])


def test_ring_buffers_bound_memory_per_token(settings: Settings) -> None:
    det = Detector(settings)
    for k in range(5000):
        det.on_bar("A", M5, c(T + k * 300, 1.0, 1.1, 0.9, 1.0, 1.0))
    m = det.market("A")
    assert m is not None
    assert (len(m.m5), len(m.h1.bars), len(m.h4.bars)) == (det.m5_capacity, 24, 42)
    assert m.m5.maxlen == det.m5_capacity == 43  # RSI's 3 x 14 + 1 closes; the strategies need fewer
    assert Detector(load_settings(env={})).m5_capacity == 50  # god candle's 50-bar breakout
    assert m.count5 == 5000


def test_an_official_4h_bar_wins_over_the_aggregate_and_stands_alone_without_5m(settings: Settings) -> None:
    det = Detector(settings)
    for k in range(48):
        det.on_bar("A", M5, c(T + k * 300, 1.0, 1.05, 0.95, 1.0, 1.0))
    official = c(T, 1.0, 1.06, 0.94, 1.0, 48.5)
    det.on_bar("A", H4, official)
    m = det.market("A")
    assert m is not None and m.h4.bars[-1] == official and len(m.h4.bars) == 1
    det.on_bar("B", H4, official)
    det.on_bar("B", H4, c(T + 2 * 14_400, 1.0, 1.0, 1.0, 1.0, 1.0))
    mb = det.market("B")
    assert mb is not None
    assert [b.ts for b in mb.h4.bars] == [T, T + 14_400, T + 28_800]
    assert mb.h4.bars[1] == c(T + 14_400, 1.0, 1.0, 1.0, 1.0, 0.0)


def test_bars_from_ticks_open_at_the_previous_close_and_read_volume_at_the_boundary(settings: Settings) -> None:
    det = Detector(settings)
    det.bootstrap("A", M5, [c(T - 300, 1.0, 1.0, 1.0, 2.0, 10.0)])
    det.on_tick("A", Tick(T + 20, 2.2, volume_m5=100.0))
    det.on_tick("A", Tick(T + 150, 1.9, volume_m5=120.0))
    det.on_tick("A", Tick(T + 240, 2.1, volume_m5=130.0))  # 60 s before the boundary
    det.on_tick("A", Tick(T + 330, 2.3, volume_m5=140.0))  # 30 s after: nearer, so it wins
    m = det.market("A")
    assert m is not None
    assert m.m5[-1] == c(T, 2.0, 2.2, 1.9, 2.1, 140.0)
    assert m.live is not None and (m.live.ts, m.live.open) == (T + 300, 2.1)
    det.on_tick("A", Tick(T + 590, 2.4, volume_m5=150.0))  # 10 s before the boundary
    det.on_tick("A", Tick(T + 660, 2.5, volume_m5=160.0))  # 60 s after: the inside reading wins
    assert m.m5[-1] == c(T + 300, 2.1, 2.4, 2.1, 2.4, 150.0)
    det.on_tick("A", Tick(T + 1500, 2.6, volume_m5=170.0))  # two polls missed
    assert list(m.m5)[-3:] == [
        c(T + 600, 2.4, 2.5, 2.4, 2.5, 160.0),
        c(T + 900, 2.5, 2.5, 2.5, 2.5, 0.0),  # no tick seen: an empty bar
        c(T + 1200, 2.5, 2.5, 2.5, 2.5, 0.0),
    ]


def test_stale_and_invalid_inputs_are_ignored_and_counted(settings: Settings) -> None:
    det = Detector(settings)
    det.on_tick("A", Tick(T + 100, 1.0, volume_m5=1.0))
    assert det.on_tick("A", Tick(T + 50, 9.0, volume_m5=1.0)) == []
    m = det.market("A")
    assert m is not None and m.live is not None and m.live.high == 1.0
    det.on_tick("A", Tick(T + 120, float("nan")))
    det.on_bar("B", M5, c(T + 1, 1.0, 1.0, 1.0, 1.0, 1.0))  # not on a 5m boundary
    det.on_bar("B", M5, c(T, 1.0, 1.0, 1.0, -1.0, 1.0))
    det.on_bar("B", M5, c(T, 1.0, 1.0, 1.0, 1.0, float("inf")))
    assert (det.rejected_ticks, det.rejected_bars) == (1, 3)
    det.on_bar("B", M5, c(T, 1.0, 1.0, 1.0, 1.0, 1.0))
    det.on_bar("B", M5, c(T, 5.0, 5.0, 5.0, 5.0, 5.0))  # a replayed bar: ignored
    mb = det.market("B")
    assert mb is not None and list(mb.m5) == [c(T, 1.0, 1.0, 1.0, 1.0, 1.0)]


def test_bootstrap_drops_forming_bars_and_is_order_independent(settings: Settings) -> None:
    now = T + 15_100  # bar 49 ended at T + 15_000, bar 50 ends at T + 15_300
    bars5 = [c(T + k * 300, 1.0 + k / 1000, 1.1, 0.9, 1.0 + (k + 1) / 1000, 2.0) for k in range(51)]
    bars4 = [c(T - 14_400, 0.9, 1.0, 0.8, 1.0, 7.0), c(T, 1.0, 1.2, 0.9, 1.048, 96.5),
             c(T + 14_400, 1.048, 1.1, 1.0, 1.05, 1.0)]  # the last one is still forming at `now`
    a, b = Detector(settings), Detector(settings)
    a.bootstrap("X", M5, bars5, as_of=now)
    a.bootstrap("X", H4, bars4, as_of=now)
    b.bootstrap("X", H4, bars4, as_of=now)
    b.bootstrap("X", M5, bars5, as_of=now)
    ma, mb = a.market("X"), b.market("X")
    assert ma is not None and mb is not None
    assert list(ma.h4.bars) == list(mb.h4.bars) == bars4[:2]
    assert list(ma.m5) == list(mb.m5) == bars5[-44:-1]  # the ring holds 43; bar 50 ends after `now`
    assert ma.h4.forming is not None and mb.h4.forming is not None
    assert (ma.h4.forming.ts, ma.h4.forming.open) == (mb.h4.forming.ts, mb.h4.forming.open) == (T + 14_400, 1.048)
    assert a.warming_up("X") == 0


def test_time_ordered_puts_bars_at_their_end_time_shorter_timeframe_first() -> None:
    b5 = [c(T + 14_400 - 300, 1, 1, 1, 1, 1), c(T + 14_400, 1, 1, 1, 1, 1)]
    b1 = [c(T + 10_800, 1, 1, 1, 1, 1)]
    b4 = [c(T, 1, 1, 1, 1, 1)]
    order = [(int(tf), bar.ts) for tf, bar in time_ordered({H4: b4, H1: b1, M5: b5})]
    assert order == [(300, T + 14_100), (3600, T + 10_800), (14_400, T), (300, T + 14_400)]


def test_rolling_volume_running_sum_stays_exact_through_spikes() -> None:
    rv = RollingVolume(3)
    for v in [1e12, 1.0, 2.0, 3.0, 4.0]:
        rv.push(v)
    assert rv.total == 9.0 and rv.mean == 3.0
    assert rv.pstdev() == pytest.approx((2 / 3) ** 0.5)
    tm = TokenMarket("Z", m5_capacity=5, h1_capacity=15, h4_capacity=15, volume_windows=(3, 3, 2))
    assert sorted(tm.volumes) == [2, 3]


def test_tick_from_a_pair_snapshot() -> None:
    pair = PairSnapshot(
        pair_address="P", dex_id="raydium", base_mint="M", base_symbol="S", base_name="N", quote_mint="Q",
        quote_symbol="SOL", price_usd=0.5, price_native=None, volume=Window4(m5=1234.5), price_change=Window4(),
        txns_m5=TxnCounts(3, 1), txns_h1=TxnCounts(30, 20), txns_h24=TxnCounts(), liquidity_usd=9e4, fdv=None,
        market_cap=None, pair_created_at=1_700_000_000, observed_at=T + 7)
    assert Tick.from_pair(pair) == Tick(T + 7, 0.5, 1234.5, 3, 1, 30, 20, 9e4, 1_700_000_000)
    no_price = PairSnapshot(**{**{f: getattr(pair, f) for f in pair.__dataclass_fields__}, "price_usd": None})
    assert Tick.from_pair(no_price) is None


def test_advance_completes_a_due_live_bar_and_closes_the_4h_window(settings: Settings) -> None:
    det = Detector(load_settings(env={}))
    det.bootstrap("A", M5, [c(T + k * 300, 1.0, 1.0, 1.0, 1.0, 1.0) for k in range(47)])
    det.on_tick("A", Tick(T + 47 * 300 + 10, 1.12, volume_m5=1.0))
    assert det.advance("A", T + 14_399) == []
    [sig] = det.advance("A", T + 14_400)
    assert (sig.strategy, sig.candle_ts, sig.ts, sig.price) == ("confirmation", T, T + 14_400, 1.12)
    m = det.market("A")
    assert m is not None and m.live is None and m.h4.bars[-1].close == 1.12


def test_an_outage_of_live_data_is_not_a_quiet_market() -> None:
    """Bars nobody polled are no evidence of zero volume: the token warms up again, no false surge."""
    det = Detector(load_settings(env={}))
    # 40 warm bars at volume 100, then live ticks keep the 5m bars observed at the same volume
    det.bootstrap("A", M5, [c(T + k * 300, 1.0, 1.0, 1.0, 1.0, 100.0) for k in range(40)])
    t0 = T + 40 * 300
    assert det.on_tick("A", Tick(t0 + 10, 1.0, volume_m5=100.0)) == []
    assert det.warming_up("A") == 0
    # a few missed poll windows (up to 25 minutes) are tolerated as a quiet market
    det.on_tick("A", Tick(t0 + 610, 1.0, volume_m5=100.0))
    assert det.warming_up("A") == 0
    det.on_tick("A", Tick(t0 + 610 + 1500, 1.0, volume_m5=100.0))
    assert det.warming_up("A") == 0
    # an hour with no data, then 1.5x the usual volume at +3%: counting the eleven unpolled bars as
    # zero volume sinks the 20-bar mean to 40 and reads 150 as a 3.75x surge: a false ignition
    back = t0 + 610 + 1500 + 3600
    assert det.on_tick("A", Tick(back, 1.03, volume_m5=150.0)) == []
    assert det.warming_up("A") == 20
    m = det.market("A")
    assert m is not None and [b.volume for b in list(m.m5)[-12:]] == [100.0] + [0.0] * 11  # price held flat
    # after 20 observed bars at the usual volume, the token is judged again
    for k in range(1, 21):
        det.on_tick("A", Tick(back + k * 300, 1.0, volume_m5=100.0))
    assert det.warming_up("A") == 0


def test_an_outage_before_the_first_live_tick_is_not_a_quiet_market() -> None:
    """History loaded, then the live source went down before the token's first tick (found by the
    fault suite on virtual time): the hour nobody polled is an outage too, not eleven zero bars."""
    det = Detector(load_settings(env={}))
    det.bootstrap("A", M5, [c(T + k * 300, 1.0, 1.0, 1.0, 1.0, 100.0) for k in range(40)])
    assert det.warming_up("A") == 0
    back = T + 40 * 300 + 3600  # twelve bars without a tick since the history ended
    assert det.on_tick("A", Tick(back + 10, 1.03, volume_m5=150.0)) == []
    assert det.warming_up("A") == 20
    m = det.market("A")
    assert m is not None and [b.volume for b in list(m.m5)[-13:]] == [100.0] + [0.0] * 12
    # a short gap between history and the first tick stays a quiet market (no warm-up again)
    det.bootstrap("B", M5, [c(T + k * 300, 1.0, 1.0, 1.0, 1.0, 100.0) for k in range(40)])
    det.on_tick("B", Tick(T + 40 * 300 + 1500 + 10, 1.0, volume_m5=100.0))
    assert det.warming_up("B") == 0
