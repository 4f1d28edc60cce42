"""Price and volume paths: a token's 4H anchor chain and, inside each candle, the 1-minute bars bridged
between two anchors (events, volume spikes and ignition volumes included), regenerated on demand."""

from __future__ import annotations

import math

import numpy as np

from dexscan.demo.market_sim.model import (
    BARS5_PER_CANDLE,
    CANDLE_S,
    MINUTES_PER_CANDLE,
    QUIET_GROUP_BARS,
    SimToken,
    _CandleData,
    _Event,
    _Path,
)
from dexscan.demo.market_sim.schedule import _WARMUP_BARS, EventSchedule

_SIGMA_MINUTE = 0.0016
_WICK = 0.0025
_CANDLE_CLIP = 0.085  # an ordinary 4H candle closes at most +8.9% (a +10% close is always planted)
_CANDLE_FLOOR = -0.30  # ... and at worst -26%
_REVERSION = 0.03
_BRIDGE_AMP = 0.03
_PRE_EVENT_MAX = 0.008  # closes before an ignition/rug stay below +0.8% (+1.0% with wicks)
_PRE_EVENT_MIN = -0.02
_PRE_EVENT_WICK = 0.002
_BASE_STEP = 0.075  # max |Δ log baseline volume| per candle
_BASE_SPREAD = 0.22  # max |log baseline - log initial baseline|
_DEAD_VOLUME = 0.02  # baseline volume multiplier after a rug
_BLOCK = 256  # candles per anchor-chain extension block
_SPIKE_PRICE_CAP = 1.015  # volume spikes only on bars (and the bar after) below +1.5% over the 4H open
#: The ignition bar's minutes, by shape (ramp, jump, late volume): share of the move done ...
_IGNITION_PRICE = (np.array([0.2, 0.4, 0.6, 0.8, 1.0]), np.array([0.8, 0.85, 0.9, 0.95, 1.0]),
                   np.array([0.5, 0.8, 0.95, 1.0, 1.0]))
#: ... and share of the bar's volume traded.
_IGNITION_VOLUME = (np.arange(1, 6) / 15, np.array([0.6, 0.1, 0.1, 0.1, 0.1]),
                    np.array([0.04, 0.06, 0.1, 0.3, 0.5]))


class PricePaths(EventSchedule):
    """The anchor chain and the minute paths of every token (an LRU of candles, totals kept longer)."""

    # ------------------------------------------------------------------ anchor chain

    def _path(self, ti: int, upto: int) -> _Path:
        """The token's anchor chain, extended so that candle ``upto`` (and its end) exists."""
        path = self._paths.get(ti)
        tok = self.tokens[ti]
        if path is None:
            lb0 = math.log(tok.daily_volume_usd / 288)
            path = _Path([], [], math.log(tok.initial_price), lb0)
            self._paths[ti] = path
        if len(path.anchors) > upto + 1:
            return path
        cfg = self.config
        sched = self._schedule(ti)
        c_first = (tok.listed_at - self.start_ts) // CANDLE_S
        events, retrace = sched.events, sched.retrace
        anchors, log_base, lb0 = path.anchors, path.log_base, path.lb0
        clip, rev, sigma, step = _CANDLE_CLIP, _REVERSION, tok.volatility, _BASE_STEP
        lo, hi = lb0 - _BASE_SPREAD, lb0 + _BASE_SPREAD
        while len(anchors) <= upto + 1:
            block = len(anchors) // _BLOCK
            rng = np.random.default_rng([cfg.seed, 2, ti, block])
            z = (rng.standard_t(4, _BLOCK) / math.sqrt(2.0)).tolist()  # unit variance, fat tails
            zb = rng.normal(0.0, 1.0, _BLOCK).tolist()
            for j in range(_BLOCK):
                c = block * _BLOCK + j
                if c < c_first:
                    anchors.append(math.nan)
                    log_base.append(math.nan)
                    continue
                if c == c_first:
                    anchors.append(math.log(tok.initial_price))
                    log_base.append(lb0)
                # the anchor and baseline of candle c are known: append those of c + 1
                a = anchors[c]
                ev = events.get(c)
                if ev is not None:
                    inc = ev.x_close
                    if ev.kind == "rug":
                        path.ref = a + ev.x_close
                elif c in retrace:
                    inc = retrace[c]
                else:
                    inc = -rev * (a - path.ref) + sigma * z[j]
                    if inc > clip:  # reflected below the cap: no pile of candles closing at exactly +8.9%
                        inc = 2 * clip - inc
                    inc = max(inc, _CANDLE_FLOOR)
                anchors.append(a + inc)
                lb = log_base[c]
                nxt = lb0 + 0.95 * (lb - lb0) + 0.04 * zb[j]
                nxt = lb + step if nxt > lb + step else (lb - step if nxt < lb - step else nxt)
                log_base.append(hi if nxt > hi else (lo if nxt < lo else nxt))
        return path

    # ------------------------------------------------------------------ minute paths

    def _candle(self, ti: int, c: int) -> _CandleData:
        key = (ti, c)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        data = self._generate(ti, c)
        self._cache[key] = data
        if len(self._cache) > self.config.candle_cache:
            self._cache.popitem(last=False)
        self._remember_total(key, data.volume_before(MINUTES_PER_CANDLE))
        return data

    def _remember_total(self, key: tuple[int, int], total: float) -> None:
        self._totals[key] = total
        if len(self._totals) > 16 * self.config.candle_cache:
            self._totals.popitem(last=False)

    def _candle_total(self, ti: int, c: int) -> float:
        """A whole candle's volume; generates the candle without caching it when needed."""
        key = (ti, c)
        total = self._totals.get(key)
        if total is None:
            hit = self._cache.get(key)
            total = (hit or self._generate(ti, c)).volume_before(MINUTES_PER_CANDLE)
            self._remember_total(key, total)
        return total

    def _generate(self, ti: int, c: int) -> _CandleData:
        tok = self.tokens[ti]
        path = self._path(ti, c + 1)
        sched = self._schedule(ti)
        a0, a1 = path.anchors[c], path.anchors[c + 1]
        if math.isnan(a0):
            raise ValueError(f"{tok.symbol}: no data before its listing at {tok.listed_at}")
        rng = np.random.default_rng([self.config.seed, 3, ti, c])
        thin = tok.kind == "thin"
        q5, qm = (0.6, 0.35) if thin else (0.15, 0.08)
        g_draw = rng.random(BARS5_PER_CANDLE // QUIET_GROUP_BARS)
        g_pos = rng.integers(0, QUIET_GROUP_BARS - 1, BARS5_PER_CANDLE // QUIET_GROUP_BARS)
        mult5 = rng.uniform(0.7, 1.35, BARS5_PER_CANDLE)
        minute_quiet = rng.random(MINUTES_PER_CANDLE) < qm
        weights = rng.exponential(1.0, MINUTES_PER_CANDLE)
        steps = rng.normal(0.0, _SIGMA_MINUTE, MINUTES_PER_CANDLE)
        wick_up = np.abs(rng.normal(0.0, _WICK, MINUTES_PER_CANDLE))
        wick_dn = np.abs(rng.normal(0.0, _WICK, MINUTES_PER_CANDLE))
        noise = rng.uniform(0.7, 1.3, MINUTES_PER_CANDLE)

        quiet5 = np.zeros(BARS5_PER_CANDLE, dtype=bool)
        for g in range(len(g_draw)):
            if g_draw[g] < q5:
                quiet5[g * QUIET_GROUP_BARS + int(g_pos[g])] = True
        active = ~np.repeat(quiet5, 5) & ~minute_quiet
        by_bar = active.reshape(BARS5_PER_CANDLE, 5)
        empty_bars = ~quiet5 & ~by_bar.any(axis=1)
        by_bar[empty_bars, 4] = True
        active = by_bar.ravel()
        active[-1] = True

        base = math.exp(path.log_base[c])
        rug = sched.rug
        dead_before = rug is not None and rug.candle < c
        if dead_before:
            base *= _DEAD_VOLUME
        v5 = base * mult5 * ~quiet5
        w = (weights * active).reshape(BARS5_PER_CANDLE, 5)
        ws = w.sum(axis=1)
        volume = (w * (v5 / np.where(ws > 0, ws, 1.0))[:, None]).ravel()

        ev = sched.events.get(c)
        peak: float | None = None
        if ev is None:
            x = _bridge(active, steps, 0.0, a1 - a0, _BRIDGE_AMP + 0.25 * abs(a1 - a0))
        else:
            x = self._event_path(ev, active, steps, volume, noise, base, a1 - a0)
            wick_up[:ev.start_minute] = np.minimum(wick_up[:ev.start_minute], _PRE_EVENT_WICK)
            if ev.kind != "rug":
                peak = math.exp(a0 + ev.x_peak)
        open0 = math.exp(a0)
        close = np.exp(a0 + x)
        close[-1] = math.exp(a1)
        if peak is not None and ev is not None:
            close[ev.peak_minute] = peak
        # a quiet minute holds the previous close bit for bit (no float drift through exp)
        last_active = np.where(active, np.arange(MINUTES_PER_CANDLE), -1)
        np.maximum.accumulate(last_active, out=last_active)
        close = np.where(last_active >= 0, close[np.maximum(last_active, 0)], open0)
        open_ = np.empty_like(close)
        open_[0] = open0
        open_[1:] = close[:-1]
        wick_up[~active] = 0.0
        wick_dn[~active] = 0.0
        body_hi = np.maximum(open_, close)
        high = body_hi * np.exp(wick_up)
        low = np.minimum(open_, close) * np.exp(-wick_dn)
        if peak is not None and ev is not None:
            high[ev.start_minute:] = np.maximum(np.minimum(high[ev.start_minute:], peak),
                                                body_hi[ev.start_minute:])
        high = np.maximum(high, body_hi)
        volume[~active] = 0.0
        self._add_spikes(tok, c, open0, close, high, low, volume, ev)
        if ev is not None and ev.kind != "rug":
            self._size_ignition(ti, c, ev, volume)
        cum_volume = np.cumsum(volume)
        for arr in (high, low, close, volume, cum_volume):
            arr.flags.writeable = False
        return _CandleData(open0, high, low, close, volume, cum_volume)

    def _event_path(self, ev: _Event, active: np.ndarray, steps: np.ndarray, volume: np.ndarray,
                    noise: np.ndarray, base: float, x_end: float) -> np.ndarray:
        """Candle-relative log path of an event candle (edits ``active``/``volume`` in place)."""
        m0 = ev.start_minute
        x = np.empty(MINUTES_PER_CANDLE)
        x[:m0] = np.clip(_bridge(active[:m0], steps[:m0], 0.0, ev.x_pre, 0.012), _PRE_EVENT_MIN, _PRE_EVENT_MAX)
        if ev.kind == "rug":
            n = ev.drop_minutes
            active[m0:m0 + n] = True
            x[m0:m0 + n] = ev.x_pre + (ev.x_ign - ev.x_pre) * np.arange(1, n + 1) / n
            x[m0 + n - 1] = ev.x_ign
            volume[m0:m0 + n] = base * ev.surge / n
            after = slice(m0 + n, MINUTES_PER_CANDLE)
            volume[after] *= _DEAD_VOLUME
            x[after] = _bridge(active[after], steps[after], ev.x_ign, x_end, 0.015)
            return x
        active[m0:] = True
        x[m0:m0 + 5] = ev.x_pre + (ev.x_ign - ev.x_pre) * _IGNITION_PRICE[ev.shape]
        x[m0 + 4] = ev.x_ign  # its volume is set by _size_ignition, once the bars before it are final
        p = ev.peak_minute
        up = slice(m0 + 5, p + 1)
        x[up] = np.minimum(_bridge(active[up], steps[up], ev.x_ign, ev.x_peak, 0.25 * (ev.x_peak - ev.x_ign)),
                           ev.x_peak)
        x[p] = ev.x_peak
        down = slice(p + 1, MINUTES_PER_CANDLE)
        amp = 0.3 * abs(ev.x_peak - x_end) + 0.004
        x[down] = np.minimum(_bridge(active[down], steps[down], ev.x_peak, x_end, amp), ev.x_peak)
        tau = np.arange(MINUTES_PER_CANDLE - m0 - 5, dtype=float)
        level, decay, floor = (8.0, 40.0, 1.5) if ev.kind == "pump" else (5.0, 20.0, 1.2)
        level *= math.sqrt(ev.surge / 7.0)  # a bigger ignition draws a bigger crowd after it
        volume[m0 + 5:] = base / 5 * (level * np.exp(-tau / decay) + floor) * noise[m0 + 5:]
        return x

    def _add_spikes(self, tok: SimToken, c: int, open0: float, close: np.ndarray, high: np.ndarray,
                    low: np.ndarray, volume: np.ndarray, ev: _Event | None) -> None:
        """Sell-side volume spikes (2.6–25x the bar) where they cannot look like an ignition (in place).

        Only on a 5m bar that ends at its lowest close, in the lower half of its range (so it never
        closes in its upper third, where a volume-surge strategy would read buyers), and
        whose highs, and the next bar's, stay below +1.5% over the 4H open; never in the last bar
        of the candle, nor in or right before an event's first bar. The rolling 5-minute volume a
        scanner polls is therefore never large while the price is +2% up, outside planted events.
        """
        limit = BARS5_PER_CANDLE - 1 if ev is None else ev.start_minute // 5 - 1
        if limit <= 0 or tok.spike_rate <= 0:
            return
        rng = np.random.default_rng([self.config.seed, 5, tok.index, c])
        draw = rng.random(BARS5_PER_CANDLE)
        size = np.minimum(25.0, 2.6 * np.exp(rng.exponential(0.7, BARS5_PER_CANDLE)))
        bars = (BARS5_PER_CANDLE, 5)
        below = high.reshape(bars).max(axis=1) < open0 * _SPIKE_PRICE_CAP
        opens = np.r_[open0, close[:-1]].reshape(bars)
        closes = close.reshape(bars)
        hi5, lo5 = high.reshape(bars).max(axis=1), low.reshape(bars).min(axis=1)
        ends_low = ((closes[:, 4] <= np.minimum(opens.min(axis=1), closes.min(axis=1)))
                    & (closes[:, 4] - lo5 < 0.5 * (hi5 - lo5)))
        traded = volume.reshape(bars).sum(axis=1) > 0
        ok = np.zeros(BARS5_PER_CANDLE, dtype=bool)
        ok[:-1] = below[:-1] & below[1:] & ends_low[:-1] & traded[:-1]
        ok[limit:] = False
        chosen = ok & (draw < min(0.95, 8.0 * tok.spike_rate))
        if chosen.any():
            by_bar = volume.reshape(bars)
            by_bar[chosen] *= size[chosen, None]

    def _size_ignition(self, ti: int, c: int, ev: _Event, volume: np.ndarray) -> None:
        """The ignition bar's volume: ``ev.surge`` x the mean of the 20 bars before it (in place)."""
        k = ev.start_minute // 5
        own = volume.reshape(BARS5_PER_CANDLE, 5).sum(axis=1)[max(0, k - _WARMUP_BARS):k]
        total = float(own.sum())
        need = _WARMUP_BARS - len(own)
        if need:  # the warm-up reaches into the previous candle (same UTC day, see _kmin)
            prev = self._candle(ti, c - 1).volume.reshape(BARS5_PER_CANDLE, 5).sum(axis=1)
            total += float(prev[BARS5_PER_CANDLE - need:].sum())
        volume[ev.start_minute:ev.start_minute + 5] = ev.surge * total / _WARMUP_BARS * _IGNITION_VOLUME[ev.shape]


def _bridge(active: np.ndarray, steps: np.ndarray, x_start: float, x_end: float, amp: float) -> np.ndarray:
    """A random walk over active minutes pinned at ``x_end`` on the last minute; |excursion| <= amp.

    Quiet minutes have a zero step and no share of the drift, so their value equals the previous
    minute's bit for bit (an empty interval is O=H=L=C=previous close, exactly).
    """
    n = np.cumsum(active)
    total = n[-1] if len(n) else 0
    if total == 0:
        return np.full(len(active), x_start)
    s = np.cumsum(steps * active)
    frac = n / total
    br = s - frac * s[-1]
    peak = float(np.abs(br).max())
    if peak > amp:
        br = br * (amp / peak)
    return x_start + frac * (x_end - x_start) + br
