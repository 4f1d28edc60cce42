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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from dexscan.errors import BadPayload

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Values above this are taken as milliseconds where a field may be either (year 5138 in seconds).
_MS_THRESHOLD = 100_000_000_000


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


def _kind(value: Any) -> str:
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
            raise ctx.bad(where, f"expected an object, got {_kind(node)}")
        node = node.get(step)
        walked.append(step)
    return node


# -- numbers -------------------------------------------------------------------------------


def to_float(value: Any, field: str, ctx: ParseContext, *, non_negative: bool = False,
             positive: bool = False) -> float:
    """A finite float from a JSON number or a numeric string; bools, NaN and Infinity are rejected."""
    if isinstance(value, bool) or value is None:
        raise ctx.bad(field, f"expected a number, got {_kind(value)}")
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            raise ctx.bad(field, f"expected a number, got {_show(value)}") from None
    else:
        raise ctx.bad(field, f"expected a number, got {_kind(value)}")
    if not math.isfinite(out):
        raise ctx.bad(field, f"expected a finite number, got {_show(value)}")
    if positive and out <= 0:
        raise ctx.bad(field, f"expected a positive number, got {_show(value)}")
    if non_negative and out < 0:
        raise ctx.bad(field, f"expected a non-negative number, got {_show(value)}")
    return out


def req_float(record: Any, path: str, ctx: ParseContext, *, non_negative: bool = False,
              positive: bool = False) -> float:
    value = lookup(record, path, ctx)
    if value is None:
        raise ctx.bad(path, "missing")
    return to_float(value, path, ctx, non_negative=non_negative, positive=positive)


def opt_float(record: Any, path: str, ctx: ParseContext, *, non_negative: bool = False,
              positive: bool = False) -> float | None:
    value = lookup(record, path, ctx)
    if value is None:
        return None
    return to_float(value, path, ctx, non_negative=non_negative, positive=positive)


def to_int(value: Any, field: str, ctx: ParseContext, *, non_negative: bool = False) -> int:
    """An int from a JSON integer, an integral float (``12.0``) or a numeric string."""
    if isinstance(value, bool) or value is None:
        raise ctx.bad(field, f"expected an integer, got {_kind(value)}")
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
        raise ctx.bad(field, f"expected an integer, got {_kind(value)}")
    if non_negative and out < 0:
        raise ctx.bad(field, f"expected a non-negative integer, got {_show(value)}")
    return out


def _integral(f: float, original: Any, field: str, ctx: ParseContext) -> int:
    if not f.is_integer():
        raise ctx.bad(field, f"expected an integer, got {_show(original)}")
    return int(f)


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


def req_str(record: Any, path: str, ctx: ParseContext) -> str:
    """A non-empty string (addresses, ids)."""
    value = lookup(record, path, ctx)
    if value is None:
        raise ctx.bad(path, "missing")
    if not isinstance(value, str):
        raise ctx.bad(path, f"expected a string, got {_kind(value)}")
    if not value.strip():
        raise ctx.bad(path, "empty string")
    return value


def opt_str(record: Any, path: str, ctx: ParseContext, default: str | None = None) -> str | None:
    value = lookup(record, path, ctx)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ctx.bad(path, f"expected a string, got {_kind(value)}")
    return value


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
    raise ctx.bad(path, f"expected a boolean, got {_kind(value)}")


def opt_str_list(record: Any, path: str, ctx: ParseContext) -> tuple[str, ...]:
    value = lookup(record, path, ctx)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ctx.bad(path, f"expected a list of strings, got {_kind(value)}")
    return tuple(value)


# -- times ---------------------------------------------------------------------------------


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
        return int(dt.timestamp())
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = int(to_float(value, field, ctx, non_negative=True))
        return seconds // 1000 if seconds > _MS_THRESHOLD else seconds
    raise ctx.bad(field, f"expected an ISO-8601 time, got {_kind(value)}")


def opt_iso_ts(record: Any, path: str, ctx: ParseContext) -> int | None:
    value = lookup(record, path, ctx)
    return None if value is None else iso_to_epoch(value, path, ctx)


def req_ts(record: Any, path: str, ctx: ParseContext) -> int:
    """Epoch seconds sent as an integer (Birdeye, GeckoTerminal OHLCV)."""
    return req_int(record, path, ctx, non_negative=True)


def ms_to_s(ms: int) -> int:
    return ms // 1000


def opt_ms_ts(record: Any, path: str, ctx: ParseContext) -> int | None:
    """Epoch seconds from a millisecond timestamp (DexScreener ``pairCreatedAt``)."""
    value = lookup(record, path, ctx)
    if value is None:
        return None
    return ms_to_s(int(to_float(value, path, ctx, non_negative=True)))


# -- whole responses -----------------------------------------------------------------------


def as_object(data: Any, ctx: ParseContext, field: str = "<body>") -> Mapping[str, Any]:
    """The answer (or a part of it that holds the records) as an object; counted when it is not."""
    if not isinstance(data, Mapping):
        raise ctx.reject(field, f"expected an object, got {_kind(data)}")
    return data


def as_list(data: Any, ctx: ParseContext, field: str = "<body>") -> list[Any]:
    """A JSON array of records; ``null`` is a valid empty answer (DexScreener ``pairs: null``)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise ctx.reject(field, f"expected a list, got {_kind(data)}")
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
