"""Where and how each token's events are planted: its schedule of pumps, fizzles and rugs (history and
live plan), and their ground truth (:meth:`EventSchedule.planted_events`)."""

from __future__ import annotations

import math

import numpy as np

from dexscan.demo.market_sim.model import (
    CANDLE_S,
    MINUTES_PER_CANDLE,
    EventKind,
    PlantedEvent,
    TokenKind,
    _Event,
    _Schedule,
)
from dexscan.demo.market_sim.universe import SimUniverse

_WARMUP_BARS = 20


class EventSchedule(SimUniverse):
    """Each token's planted events, drawn once per token from its own RNG."""

    def _kmin(self, ti: int, c: int) -> int:
        cs = self.start_ts + c * CANDLE_S
        ref = max(cs - cs % 86_400, self.tokens[ti].listed_at, self.tokens[ti].main_pool.bars_from)
        return max(2, _WARMUP_BARS - (cs - ref) // 300)

    def _schedule(self, ti: int) -> _Schedule:
        sched = self._schedules.get(ti)
        if sched is not None:
            return sched
        cfg, tok = self.config, self.tokens[ti]
        rng = np.random.default_rng([cfg.seed, 4, ti])
        gap = cfg.min_event_gap_candles
        c_first = (tok.listed_at - self.start_ts) // CANDLE_S
        c_hist_end = self._c_live - gap
        events: dict[int, _Event] = {}
        rug: _Event | None = None
        if tok.kind == "rug":
            rank = [t.index for t in self.tokens if t.kind == "rug"].index(ti)
            lo, hi = c_first + 12, self._c_live - 4
            if rank % 2 == 0 and hi > lo:
                c_rug = int(rng.integers(lo, hi))
                live = False
            else:
                c_rug = min(self._c_live + 1 + rank // 2, max(self._c_live, self._c_live_end - 1))
                live = True
            rug = self._make_rug(rng, c_rug, live)
            events[c_rug] = rug
            c_hist_end = min(c_hist_end, c_rug - gap + 1)
        if tok.kind in ("pump", "fizzle", "thin", "rug"):
            candidates = list(range(max(c_first, 0), max(c_first, c_hist_end)))
            days = len(candidates) / 6
            wanted = round(cfg.events_per_token_day * days)
            picked: list[int] = []
            for c in rng.permutation(candidates) if candidates else []:
                if len(picked) >= wanted:
                    break
                c = int(c)
                if all(abs(c - o) >= gap for o in picked) and (rug is None or rug.candle - c >= gap):
                    picked.append(c)
            for c in sorted(picked):
                events[c] = self._make_ignition(rng, ti, c, self._history_kind(rng, tok.kind), live=False)
            for c, slot, kind in self._live_plan.get(ti, []):
                if rug is not None and rug.candle - c < gap:
                    continue
                per = max(1, cfg.live_events_per_candle)
                kmin = self._kmin(ti, c)
                step = min(8, max(0, (30 - kmin) // max(1, per - 1)))
                jitter = int(rng.integers(0, 6)) if slot else 0  # slot 0 ignites first, the others when they do
                events[c] = self._make_ignition(rng, ti, c, kind, live=True, k=kmin + slot * step + jitter)
        if ti == self.migrating and tok.migrated_at is not None:  # it pumps in the candle after migrating
            c = (tok.migrated_at - self.start_ts) // CANDLE_S + 1
            events[c] = self._make_ignition(rng, ti, c, "pump", live=True)
        retrace: dict[int, float] = {}
        for ev in events.values():
            if ev.kind == "pump":
                for d in (1, 2):
                    retrace[ev.candle + d] = float(rng.uniform(-0.16, -0.01))  # the pump fades
        ordered = sorted(events.values(), key=lambda e: e.candle)
        sched = _Schedule(events, ordered, rug, retrace)
        self._schedules[ti] = sched
        return sched

    def _history_kind(self, rng: np.random.Generator, kind: TokenKind) -> EventKind:
        if kind == "fizzle":
            return "fizzle"
        if kind == "thin":
            return "pump" if rng.random() < 0.5 else "fizzle"
        if kind == "rug":
            return "pump"
        return "pump" if rng.random() < self.config.pump_fraction else "fizzle"

    def _make_ignition(self, rng: np.random.Generator, ti: int, c: int, kind: EventKind, *, live: bool,
                       k: int | None = None) -> _Event:
        """One pump or fizzle, drawn from the shapes real pumps take.

        The ignition bar closes +2.6–14.6% over the 4H open (most near the low end) on 3.7–80x the mean
        of the 20 bars before it, and reaches that either in a ramp, a jump in its first minute, or
        with the volume arriving late. A pump then spikes early and holds, grinds or climbs in steps
        to a peak and closes +10.5% to +60%; a fizzle fades (peak a few % higher), pops to +9–25% and
        reverses (past a first target, then back), or dumps right after igniting.
        """
        kmin = self._kmin(ti, c)
        kmax = 30 if kind == "pump" else 36
        draws = rng.random(12)
        if k is None:
            k = kmin + int(draws[0] * (kmax - kmin + 1))
        k = min(max(k, kmin), kmax)
        m_i = 5 * k
        x_pre = -0.01 + 0.016 * float(draws[1])
        x_ign = math.log1p(0.026 + 0.12 * float(draws[2]) ** 2.2)
        surge = min(80.0, 3.7 * (1.0 - 0.999 * float(draws[3])) ** -0.9)  # median ~7x, a tail to 80x
        shape = int(draws[7] * 3)  # 0 ramp, 1 jump, 2 late volume
        room = MINUTES_PER_CANDLE - (m_i + 5) - 20
        style = float(draws[8])
        if kind == "pump":
            x_close = math.log1p(0.105 + 0.5 * float(draws[4]) ** 2)
            x_peak = x_close + 0.01 + 0.3 * float(draws[5]) ** 2
            if style < 0.4:  # spike early, then hold most of it
                ramp = 5 + int(draws[6] * 26)
            elif style < 0.7:  # climb in steps
                ramp = 30 + int(draws[6] * (min(110, room) - 30 + 1))
            else:  # slow grind to a late peak
                ramp = min(room, 90) + int(draws[6] * (room - min(room, 90) + 1))
        elif style < 0.45:  # fade: a little higher, then back near the open
            x_close = math.log1p(-0.04 + 0.1 * float(draws[4]))
            x_peak = min(x_ign + 0.005 + 0.04 * float(draws[5]), max(math.log1p(0.085), x_ign + 0.005))
            ramp = 3 + int(draws[6] * 23)
        elif style < 0.8:  # pop past a first target, then reverse
            x_close = math.log1p(-0.12 + 0.17 * float(draws[4]))
            x_peak = max(math.log1p(0.09 + 0.16 * float(draws[5])), x_ign + 0.01)
            ramp = 5 + int(draws[6] * 36)
        else:  # dump right after igniting
            x_close = math.log1p(-0.18 + 0.14 * float(draws[4]))
            x_peak = x_ign + 0.002 + 0.01 * float(draws[5])
            ramp = 2 + int(draws[6] * 6)
        x_peak = max(x_peak, x_ign + 0.002, x_close + 0.003)
        peak_minute = m_i + 5 + ramp - 1
        return _Event(kind, c, m_i, x_pre, x_ign, x_peak, x_close, peak_minute, surge, 0, 1.0, live, shape)

    def _make_rug(self, rng: np.random.Generator, c: int, live: bool) -> _Event:
        draws = rng.random(7)
        m_r = 40 + int(draws[0] * 161) if not live else 40 + int(draws[0] * 30)
        x_pre = -0.01 + 0.016 * float(draws[1])
        x_bottom = x_pre + math.log(0.05 + 0.10 * float(draws[2]))
        x_close = x_bottom - 0.03 + 0.06 * float(draws[3])
        drop = 1 + int(draws[4] * 3)
        surge = 15.0 + 25.0 * float(draws[5])
        liq = 0.02 + 0.06 * float(draws[6])
        return _Event("rug", c, m_r, x_pre, x_bottom, x_pre, x_close, m_r, surge, drop, liq, live, 0)

    def planted_events(self, start: int, end: int) -> list[PlantedEvent]:
        """Events whose 4H candle starts in ``[start, end)``, by candle time then mint."""
        out: list[PlantedEvent] = []
        for tok in self.tokens:
            sched = self._schedule(tok.index)
            for ev in sched.ordered:
                cs = self.start_ts + ev.candle * CANDLE_S
                if not start <= cs < end:
                    continue
                if ev.kind == "rug":
                    ignite = cs + ev.start_minute * 60
                    peak = math.expm1(ev.x_ign - ev.x_pre) * 100
                else:
                    ignite = cs + ev.start_minute * 60 + 300
                    peak = math.expm1(ev.x_peak) * 100
                out.append(PlantedEvent(
                    mint=tok.mint, pool=tok.main_pool.address, kind=ev.kind, candle_ts=cs, ignite_ts=ignite,
                    peak_pct=peak, close_pct=math.expm1(ev.x_close) * 100, symbol=tok.symbol,
                    token_kind=tok.kind, eligible=tok.safe and tok.kind != "thin", live=ev.live,
                ))
        out.sort(key=lambda e: (e.candle_ts, e.mint))
        return out

    def rug_time(self, mint: str) -> int | None:
        """When the token's liquidity is pulled (start of the crash minute), if ever."""
        tok = self.token(mint)
        rug = self._schedule(tok.index).rug
        if rug is None:
            return None
        return self.start_ts + rug.candle * CANDLE_S + rug.start_minute * 60
