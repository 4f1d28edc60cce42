"""Tolerant, typed field extraction from provider payloads.

Providers disagree on formats (DexScreener and GeckoTerminal send numbers as strings, Jupiter as
JSON numbers; DexScreener times are milliseconds, Jupiter's ISO-8601) and live APIs drift from
their docs. These helpers accept every documented spelling of a value and reject anything else with
a :class:`~dexscan.errors.BadPayload` that names the field, so one malformed record is skipped,
counted and logged while the good records of the same response still get through
(:func:`parse_records`). Nothing half-parsed leaves a client.

A *missing* key and a JSON ``null`` are the same thing here: "absent". Optional helpers return
``None`` for it; required helpers raise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from dexscan.address import address_problem
from dexscan.domain import Candle
from dexscan.errors import BadPayload

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Values above this are taken as milliseconds where a field may be either (year 5138 in seconds).
_MS_THRESHOLD = 100_000_000_000
#: The largest epoch second accepted anywhere (9999-12-31T23:59:59Z): beyond it ``datetime`` fails
#: and the value is a unit mistake or garbage, never a time.
MAX_EPOCH_S = 253_402_300_799
#: SQLite stores signed 64-bit integers; a larger integer is garbage that would fail at the store.
_INT64_MAX = 2**63 - 1
#: Token decimals are a ``u8`` on chain.
MAX_DECIMALS = 255
#: Plausibility bounds (issue 17): a finite number past these is garbage (duplicate JSON keys, a
#: broken or hostile provider), never a market. The priciest tokens trade far below 1e9 USD, and
#: all the money in the world is below 1e13 USD of liquidity or volume in any one window.
MAX_PRICE_USD = 1e9
MAX_USD_AMOUNT = 1e13


@dataclass(frozen=True, slots=True)
class ParseContext:
    """Where a payload came from, and who counts the records that had to be skipped."""

    provider: str
    endpoint: str
    on_bad: Callable[[str, str, str], None] | None = None  # (provider, endpoint, field)

    def bad(self, field: str, problem: str) -> BadPayload:
        """A contract break inside a record (counted when the record is skipped)."""
        return BadPayload(self.provider, self.endpoint, field, problem)

    def reject(self, field: str, problem: str) -> BadPayload:
        """A contract break of the whole answer: counted now, raised by the caller."""
        exc = self.bad(field, problem)
        self.count(exc)
        return exc

    def count(self, exc: BadPayload) -> None:
        if self.on_bad is not None:
            self.on_bad(self.provider, self.endpoint, exc.field)

    def skip(self, exc: BadPayload, where: str) -> None:
        """Count and log one skipped record (one line naming provider, endpoint and field)."""
        self.count(exc)
        log.warning("%s (%s skipped)", exc, where)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_value(value: Any) -> str:
    """A bad value as an error message names it: its kind for null, booleans, objects and lists,
    else its repr cut to 40 characters (shared with the RPC answer decoders)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return _show(value)


def lookup(record: Any, path: str, ctx: ParseContext) -> Any:
    """The value at dotted ``path`` in ``record``, or ``None`` when any step is absent.

    A step that exists but is not an object (``"liquidity": "n/a"`` for ``liquidity.usd``) is a
    contract break, not an absence, and raises.
    """
    node = record
    walked: list[str] = []
    for step in path.split("."):
        if node is None:
            return None
        if not isinstance(node, Mapping):
            where = ".".join(walked) or "<record>"
            raise ctx.bad(where, f"expected an object, got {describe_value(node)}")
        node = node.get(step)
        walked.append(step)
    return node


# -- numbers -------------------------------------------------------------------------------


def to_float(value: Any, field: str, ctx: ParseContext, *, non_negative: bool = False,
             positive: bool = False, at_most: float | None = None) -> float:
    """A finite float from a JSON number or a numeric string; bools, NaN and Infinity are rejected."""
    if isinstance(value, bool) or value is None:
        raise ctx.bad(field, f"expected a number, got {describe_value(value)}")
    if isinstance(value, int | float):
        try:
            out = float(value)
        except OverflowError:
            raise ctx.bad(field, f"expected a finite number, got {_show(value)}") from None
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            raise ctx.bad(field, f"expected a number, got {_show(value)}") from None
    else:
        raise ctx.bad(field, f"expected a number, got {describe_value(value)}")
    if not math.isfinite(out):
        raise ctx.bad(field, f"expected a finite number, got {_show(value)}")
    if positive and out <= 0:
        raise ctx.bad(field, f"expected a positive number, got {_show(value)}")
    if non_negative and out < 0:
        raise ctx.bad(field, f"expected a non-negative number, got {_show(value)}")
    if at_most is not None and abs(out) > at_most:
        raise ctx.bad(field, f"implausible: {_show(value)} is beyond {at_most:g}")
    return out


def req_float(record: Any, path: str, ctx: ParseContext, *, non_negative: bool = False,
              positive: bool = False, at_most: float | None = None) -> float:
    value = lookup(record, path, ctx)
    if value is None:
        raise ctx.bad(path, "missing")
    return to_float(value, path, ctx, non_negative=non_negative, positive=positive, at_most=at_most)


def opt_float(record: Any, path: str, ctx: ParseContext, *, non_negative: bool = False,
              positive: bool = False, at_most: float | None = None) -> float | None:
    value = lookup(record, path, ctx)
    if value is None:
        return None
    return to_float(value, path, ctx, non_negative=non_negative, positive=positive, at_most=at_most)


def to_int(value: Any, field: str, ctx: ParseContext, *, non_negative: bool = False) -> int:
    """An int from a JSON integer, an integral float (``12.0``) or a numeric string."""
    if isinstance(value, bool) or value is None:
        raise ctx.bad(field, f"expected an integer, got {describe_value(value)}")
    out: int
    if isinstance(value, int):
        out = value
    elif isinstance(value, float | str):
        if isinstance(value, str):
            text = value.strip()
            try:
                out = int(text)
            except ValueError:
                out = _integral(to_float(text, field, ctx), value, field, ctx)
        else:
            out = _integral(to_float(value, field, ctx), value, field, ctx)
    else:
        raise ctx.bad(field, f"expected an integer, got {describe_value(value)}")
    if not -_INT64_MAX <= out <= _INT64_MAX:
        raise ctx.bad(field, f"integer out of range, got {_show(value)}")
    if non_negative and out < 0:
        raise ctx.bad(field, f"expected a non-negative integer, got {_show(value)}")
    return out


def _integral(f: float, original: Any, field: str, ctx: ParseContext) -> int:
    if not f.is_integer():
        raise ctx.bad(field, f"expected an integer, got {_show(original)}")
    return int(f)


def opt_decimals(record: Any, path: str, ctx: ParseContext) -> int | None:
    """Token decimals: an integer from 0 to 255 (a ``u8`` on chain)."""
    out = opt_int(record, path, ctx, non_negative=True)
    if out is not None and out > MAX_DECIMALS:
        raise ctx.bad(path, f"expected decimals from 0 to {MAX_DECIMALS}, got {out}")
    return out


def req_int(record: Any, path: str, ctx: ParseContext, *, non_negative: bool = False) -> int:
    value = lookup(record, path, ctx)
    if value is None:
        raise ctx.bad(path, "missing")
    return to_int(value, path, ctx, non_negative=non_negative)


def opt_int(record: Any, path: str, ctx: ParseContext, *, non_negative: bool = False) -> int | None:
    value = lookup(record, path, ctx)
    if value is None:
        return None
    return to_int(value, path, ctx, non_negative=non_negative)


# -- strings and booleans ------------------------------------------------------------------


def _text(value: str, field: str, ctx: ParseContext) -> str:
    """``value`` if it can be stored as UTF-8; JSON ``\\ud800`` escapes decode to lone surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ctx.bad(field, "not valid Unicode text (an unpaired surrogate)") from None
    return value


def req_str(record: Any, path: str, ctx: ParseContext) -> str:
    """A non-empty string (addresses, ids)."""
    value = lookup(record, path, ctx)
    if value is None:
        raise ctx.bad(path, "missing")
    if not isinstance(value, str):
        raise ctx.bad(path, f"expected a string, got {describe_value(value)}")
    if not value.strip():
        raise ctx.bad(path, "empty string")
    return _text(value, path, ctx)


def to_address(value: str, field: str, ctx: ParseContext) -> str:
    """``value`` when it is a Solana address (base58 of 32 bytes): the only kind of mint, pool or
    pair id that may go into a URL, a batch or the store."""
    problem = address_problem(value)
    if problem is not None:
        raise ctx.bad(field, f"not a Solana address: {problem}")
    return value


def req_address(record: Any, path: str, ctx: ParseContext) -> str:
    """A mint, pool or pair address (see :func:`to_address`)."""
    return to_address(req_str(record, path, ctx), path, ctx)


def opt_address(record: Any, path: str, ctx: ParseContext) -> str | None:
    value = opt_str(record, path, ctx)
    return None if value is None else to_address(value, path, ctx)


def valid_addresses(addresses: Iterable[str], ctx: ParseContext, field: str = "<address>") -> list[str]:
    """The addresses of a caller's batch that are Solana addresses; each other one is dropped,
    counted under ``field`` and logged, so one bad id never fails the request of the good ones."""
    out: list[str] = []
    for a in addresses:
        try:
            out.append(to_address(a, field, ctx) if isinstance(a, str) else _not_text(a, field, ctx))
        except BadPayload as exc:
            ctx.skip(exc, "before the request")
    return out


def _not_text(value: Any, field: str, ctx: ParseContext) -> str:
    raise ctx.bad(field, f"expected an address, got {describe_value(value)}")


def opt_str(record: Any, path: str, ctx: ParseContext, default: str | None = None) -> str | None:
    value = lookup(record, path, ctx)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ctx.bad(path, f"expected a string, got {describe_value(value)}")
    return _text(value, path, ctx)


def str_or(record: Any, path: str, ctx: ParseContext, default: str = "") -> str:
    """An optional string with a non-None default (symbols and names of brand-new tokens)."""
    out = opt_str(record, path, ctx, default)
    return default if out is None else out


def opt_bool(record: Any, path: str, ctx: ParseContext) -> bool | None:
    value = lookup(record, path, ctx)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ctx.bad(path, f"expected a boolean, got {describe_value(value)}")


def opt_str_list(record: Any, path: str, ctx: ParseContext) -> tuple[str, ...]:
    value = lookup(record, path, ctx)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ctx.bad(path, f"expected a list of strings, got {describe_value(value)}")
    return tuple(_text(v, path, ctx) for v in value)


# -- times ---------------------------------------------------------------------------------


def _epoch(seconds: int, original: Any, field: str, ctx: ParseContext) -> int:
    if not 0 <= seconds <= MAX_EPOCH_S:
        raise ctx.bad(field, f"expected a time between 1970 and 9999, got {_show(original)}")
    return seconds


def to_epoch(value: Any, field: str, ctx: ParseContext) -> int:
    """Epoch seconds sent as an integer (or integral number/string), 1970 to 9999."""
    return _epoch(to_int(value, field, ctx, non_negative=True), value, field, ctx)


def iso_to_epoch(value: Any, field: str, ctx: ParseContext) -> int:
    """Epoch seconds from ISO-8601 (``...Z``, ``+00:00`` or naive = UTC, as Birdeye sends)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ctx.bad(field, f"expected an ISO-8601 time, got {_show(value)}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return _epoch(int(dt.timestamp()), value, field, ctx)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = int(to_float(value, field, ctx, non_negative=True))
        return _epoch(seconds // 1000 if seconds > _MS_THRESHOLD else seconds, value, field, ctx)
    raise ctx.bad(field, f"expected an ISO-8601 time, got {describe_value(value)}")


def opt_iso_ts(record: Any, path: str, ctx: ParseContext) -> int | None:
    value = lookup(record, path, ctx)
    return None if value is None else iso_to_epoch(value, path, ctx)


def opt_epoch(record: Any, path: str, ctx: ParseContext) -> int | None:
    value = lookup(record, path, ctx)
    return None if value is None else to_epoch(value, path, ctx)


def req_ts(record: Any, path: str, ctx: ParseContext) -> int:
    """Epoch seconds sent as an integer (Birdeye, GeckoTerminal OHLCV)."""
    value = lookup(record, path, ctx)
    if value is None:
        raise ctx.bad(path, "missing")
    return to_epoch(value, path, ctx)


def ms_to_s(ms: int) -> int:
    return ms // 1000


def opt_ms_ts(record: Any, path: str, ctx: ParseContext) -> int | None:
    """Epoch seconds from a millisecond timestamp (DexScreener ``pairCreatedAt``)."""
    value = lookup(record, path, ctx)
    if value is None:
        return None
    return _epoch(ms_to_s(int(to_float(value, path, ctx, non_negative=True))), value, path, ctx)


# -- bars ----------------------------------------------------------------------------------


def check_bar(bar: Candle, high_field: str, low_field: str, ctx: ParseContext) -> Candle:
    """``bar`` when its high and low bracket its open and close; a bar that does not is garbage."""
    if bar.high < max(bar.open, bar.close, bar.low):
        raise ctx.bad(high_field, f"high {bar.high!r} is below the bar's open/close/low")
    if bar.low > min(bar.open, bar.close):
        raise ctx.bad(low_field, f"low {bar.low!r} is above the bar's open/close")
    return bar


def bar_series(bars: Sequence[Candle], tf_s: int, ts_field: str, ctx: ParseContext) -> list[Candle]:
    """The bars of one OHLCV answer, ascending and unique, when they form a series of ``tf_s``-second bars.

    Bar times are parsed as plain integers (``ts`` of :func:`bar_time`) and judged here, over the
    whole answer: times in milliseconds, a bar off the timeframe's grid (bars start on UTC multiples
    of the timeframe), or two *different* bars at one time mean the provider answered something
    else than what was asked (another unit, another timeframe, a broken merge). Such an answer is
    refused whole: one :class:`BadPayload` naming ``ts_field``, counted once, nothing of it kept —
    rather than a warning per bar and a store full of bars no detector may read. An exact repeat of
    a bar is harmless and merged.
    """
    in_ms = [b.ts for b in bars if b.ts > _MS_THRESHOLD]
    if in_ms:
        raise ctx.reject(ts_field, f"{len(in_ms)} of {len(bars)} bar times are milliseconds or garbage, not epoch "
                                   f"seconds (e.g. {in_ms[0]}); the whole answer is refused")
    off_grid = [b.ts for b in bars if b.ts % tf_s]
    if off_grid:
        raise ctx.reject(ts_field, f"{len(off_grid)} of {len(bars)} bars do not start on the {tf_s} s grid (e.g. "
                                   f"{off_grid[0]}, {off_grid[0] % tf_s} s past a bar start); the whole answer is "
                                   "refused")
    by_ts: dict[int, Candle] = {}
    for b in bars:
        seen = by_ts.setdefault(b.ts, b)
        if seen != b:
            raise ctx.reject(ts_field, f"two different bars at {b.ts} (close {seen.close!r} and {b.close!r}, volume "
                                       f"{seen.volume!r} and {b.volume!r}); the whole answer is refused")
    return [by_ts[ts] for ts in sorted(by_ts)]


def bar_time(value: Any, field: str, ctx: ParseContext) -> int:
    """A bar's start as a non-negative integer; its unit and grid are judged by :func:`bar_series`."""
    return to_int(value, field, ctx, non_negative=True)


# -- whole responses -----------------------------------------------------------------------


def as_object(data: Any, ctx: ParseContext, field: str = "<body>") -> Mapping[str, Any]:
    """The answer (or a part of it that holds the records) as an object; counted when it is not."""
    if not isinstance(data, Mapping):
        raise ctx.reject(field, f"expected an object, got {describe_value(data)}")
    return data


def as_list(data: Any, ctx: ParseContext, field: str = "<body>") -> list[Any]:
    """A JSON array of records; ``null`` is a valid empty answer (DexScreener ``pairs: null``)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise ctx.reject(field, f"expected a list, got {describe_value(data)}")
    return data


def parse_single(parse: Callable[[], T], ctx: ParseContext) -> T:
    """Parse a one-record answer (Birdeye overview): a bad record is counted, logged and raised."""
    try:
        return parse()
    except BadPayload as exc:
        ctx.count(exc)
        log.warning("%s", exc)
        raise


def parse_records(records: Any, parse_one: Callable[[Any], T], ctx: ParseContext,
                  field: str = "<body>") -> list[T]:
    """Parse each record; skip (count, log) the bad ones, keep the good ones in order.

    ``None`` and ``[]`` are valid empty answers. A non-list raises for the whole response.
    """
    out: list[T] = []
    for i, item in enumerate(as_list(records, ctx, field)):
        try:
            out.append(parse_one(item))
        except BadPayload as exc:
            ctx.skip(exc, f"record {i}")
    return out


def parse_entries(entries: Any, parse_one: Callable[[str, Any], T], ctx: ParseContext,
                  field: str = "<body>") -> dict[str, T]:
    """Like :func:`parse_records` for an object keyed by id (Jupiter Price v3)."""
    out: dict[str, T] = {}
    if entries is None:
        return out
    for key, item in as_object(entries, ctx, field).items():
        try:
            out[key] = parse_one(key, item)
        except BadPayload as exc:
            ctx.skip(exc, f"entry {key}")
    return out
