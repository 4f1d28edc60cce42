"""The refresh scheduler: hot first, overdue first, full batches, honest interval reporting."""

from __future__ import annotations

import pytest

from dexscan.scheduler import Heat, HistoryQueue, RefreshScheduler, classify_heat


def test_classify_heat_orders_live_ignited_near_cold() -> None:
    kw = {"ignition_rise_pct": 2.0, "near_threshold_pct": 1.5}
    assert classify_heat(live=True, ignited=True, rise_pct=5.0, **kw) is Heat.LIVE
    assert classify_heat(live=False, ignited=True, rise_pct=0.0, **kw) is Heat.IGNITED
    assert classify_heat(live=False, ignited=False, rise_pct=0.5, **kw) is Heat.NEAR
    assert classify_heat(live=False, ignited=False, rise_pct=0.49, **kw) is Heat.COLD
    assert classify_heat(live=False, ignited=False, rise_pct=None, **kw) is Heat.COLD
    assert Heat.NEAR.hot and not Heat.COLD.hot


def test_new_tokens_are_due_at_once_in_batches_of_thirty() -> None:
    s = RefreshScheduler(hot_s=15, cold_s=120, batch_size=30)
    for i in range(70):
        s.add(f"m{i:03d}", now=0)
    b1 = s.next_batch(0)
    b2 = s.next_batch(0)
    b3 = s.next_batch(0)
    assert b1 == [f"m{i:03d}" for i in range(30)]
    assert b2 == [f"m{i:03d}" for i in range(30, 60)]
    assert b3 == [f"m{i:03d}" for i in range(60, 70)]
    assert s.next_batch(0) == []  # everything is in flight
    assert s.stats(0).in_flight == 70


def test_hot_tokens_are_served_before_more_overdue_cold_ones() -> None:
    s = RefreshScheduler(hot_s=15, cold_s=120, batch_size=2)
    for m in ("a", "b", "c"):
        s.add(m, now=0)
    s.complete(s.next_batch(0, fill=False) + s.next_batch(0, fill=False), now=0)
    s.set_heat("c", Heat.IGNITED)
    assert s.next_batch(14, fill=False) == []
    assert s.next_batch(15, fill=False) == ["c"]
    s.complete(["c"], 15)
    # at t=200 all three are due; a and b have waited 80 s longer but c is hot
    s.set_heat("b", Heat.NEAR)
    assert s.next_batch(200, fill=False) == ["c", "b"]  # ignited before near
    assert s.next_batch(200, fill=False) == ["a"]


def test_fill_tops_up_a_batch_with_the_tokens_due_soonest() -> None:
    s = RefreshScheduler(hot_s=15, cold_s=120, batch_size=3)
    for m, t in (("a", 0), ("b", 10), ("c", 20), ("d", 30)):
        s.add(m, now=t)
        s.complete(s.next_batch(t, fill=False), now=t)
    s.set_heat("d", Heat.LIVE)
    # at t=45 only d is due (30 + 15); a (due 120) and b (due 130) ride along, c waits
    assert s.next_batch(45) == ["d", "a", "b"]
    assert s.next_batch(45) == []


def test_complete_records_achieved_intervals_per_class() -> None:
    s = RefreshScheduler(hot_s=15, cold_s=120, batch_size=30)
    s.add("hot", 0, Heat.IGNITED)
    s.add("cold", 0)
    s.complete(s.next_batch(0), 0)
    s.complete(s.next_batch(16, fill=False), 16)  # hot only
    s.complete(s.next_batch(33, fill=False), 33)
    s.complete(s.next_batch(130, fill=False), 130)  # both due: hot 100 s late, cold 10 s late
    st = s.stats(130)
    assert (st.hot, st.cold, st.tokens) == (1, 1, 2)
    assert st.hot_intervals.samples == 3
    assert st.hot_intervals.max == 97.0
    assert st.hot_intervals.p50 == 17.0
    assert st.cold_intervals.samples == 1
    assert st.cold_intervals.mean == 130.0


def test_failed_batch_is_retried_after_the_retry_delay() -> None:
    s = RefreshScheduler(hot_s=15, cold_s=120, batch_size=30, retry_s=5)
    s.add("a", 0)
    s.add("b", 0)
    batch = s.next_batch(0)
    s.failed(batch, 1)
    assert s.next_batch(5.9) == []
    assert s.next_batch(6) == ["a", "b"]


def test_removed_tokens_are_never_handed_out_and_late_completion_is_ignored() -> None:
    s = RefreshScheduler(hot_s=15, cold_s=120)
    s.add("a", 0)
    s.add("b", 0)
    batch = s.next_batch(0)
    s.remove("a")
    s.complete(batch, 1)
    assert "a" not in s and s.mints() == ["b"]
    assert s.next_due_at() == 121.0


def test_planned_requests_per_minute_counts_full_batches() -> None:
    s = RefreshScheduler(hot_s=15, cold_s=120, batch_size=30)
    for i in range(2000):
        s.add(f"m{i}", 0, Heat.NEAR if i < 45 else Heat.COLD)
    # 2 hot batches every 15 s (8/min) + 66 cold batches every 120 s (33/min)
    assert s.planned_requests_per_min() == pytest.approx(8 + 33)


def test_a_universe_too_large_for_the_budget_stretches_cold_not_hot() -> None:
    """Simulate a budget of one request per second against 1,000 tokens (need ~2.5/s)."""
    s = RefreshScheduler(hot_s=15, cold_s=120, batch_size=30)
    for i in range(1000):
        s.add(f"m{i:04d}", 0, Heat.LIVE if i < 10 else Heat.COLD)
    for t in range(0, 1200):
        batch = s.next_batch(float(t))
        if batch:
            s.complete(batch, float(t))
    st = s.stats(1200)
    assert st.hot_intervals.max is not None and st.hot_intervals.max <= 15 + 1
    assert st.cold_intervals.p50 is not None and st.cold_intervals.p50 >= 120


def test_history_queue_serves_hot_tokens_first_then_in_arrival_order() -> None:
    q = HistoryQueue()
    for m in ("a", "b", "c"):
        q.push(m)
    q.push("c", Heat.IGNITED)
    q.push("a", Heat.COLD)  # no demotion, no duplicate
    assert len(q) == 3 and "b" in q
    assert [q.pop(), q.pop(), q.pop(), q.pop()] == ["c", "a", "b", None]
    q.push("x")
    q.discard("x")
    assert q.pop() is None


def test_streamed_tokens_are_polled_at_their_own_slow_cadence() -> None:
    s = RefreshScheduler(hot_s=15, cold_s=120, batch_size=2, streamed_s=300)
    s.add("a", 0.0, Heat.STREAMED)
    s.add("b", 0.0, Heat.COLD)
    assert s.next_batch(0.0) == ["b", "a"] and not Heat.STREAMED.hot  # streamed ones last
    s.complete(["a", "b"], 0.0)
    assert (s.due_at("a"), s.due_at("b"), s.next_batch(120.0, fill=False)) == (300.0, 120.0, ["b"])
    s.complete(["b"], 120.0)
    assert s.next_batch(239.0, fill=False) == [] and s.next_batch(300.0, fill=False) == ["b", "a"]
    assert s.planned_requests_per_min() == 60.0 * (1 / 120 + 1 / 300)
    with pytest.raises(ValueError, match="streamed_s"):
        RefreshScheduler(hot_s=15, cold_s=120, streamed_s=0)
