"""Numbers as a trader reads them: one set of formatters for the dashboard, the alert cards, the bot's
replies, the charts and the evaluation report, so one price is written one way everywhere.

* Prices have **4 significant digits**, never a fixed number of decimals: a micro-cap at
  0.00001234 keeps its digits (``$0.00001234``), 1.8734 is ``$1.873``, and from 1,000 up whole
  units with separators (``$12,346``); never scientific notation. :func:`fmt_price` writes the
  zeros out (the card's and the bot's text, which a trader copies into a limit order);
  :func:`fmt_price_cell` is the same number for a fixed-width cell: no ``$``, and three or more
  zeros after the point as a subscript count, as DEX screeners do (``0.0₄1234``, at most ~9
  characters).
* Dollar amounts (liquidity, volume, market cap) have 3 significant digits: ``$850``, ``$1.5K``,
  ``$412K``, ``$1.84M``, ``$7B``.
* Percent changes are signed, one decimal below 100 (``+2.4%``, ``-11.0%``, ``+245%``);
  :func:`fmt_share` writes a 0–1 fraction (a rate) as a percentage (``23.0%``).
* Durations: ``45s``, ``12m``, ``3h05m``, ``2d04h`` (negative ones signed: a lead time may be).

A value that is missing (None, NaN, infinite) is written as ``missing``: ``n/a`` in prose by default;
tables pass their blank (the dashboard's :data:`DASH`, the report's ``–``).
"""

from __future__ import annotations

import math

MISSING = "n/a"
#: A blank table cell (the dashboard's; :func:`fmt_price_cell` writes it by default).
DASH = "—"
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
#: Zeros after the decimal point from which a cell writes their count as a subscript.
_SUBSCRIPT_FROM_ZEROS = 3


def _significant(price: float, subscript: bool) -> str:
    """``|price| > 0`` with 4 significant digits (whole units from 1,000 up), without a sign."""
    mantissa, exp_text = f"{price:.3e}".split("e")  # rounds first: 0.000099999 is 1.000e-04
    exp = int(exp_text)
    if exp >= 3:
        return f"{price:,.0f}"
    if exp >= 0:
        return f"{price:.{3 - exp}f}"
    digits = mantissa.replace(".", "")
    zeros = -exp - 1
    if subscript and zeros >= _SUBSCRIPT_FROM_ZEROS:
        return f"0.0{str(zeros).translate(_SUBSCRIPT)}{digits}"
    return f"0.{'0' * zeros}{digits}"


def _price(price: float | None, missing: str, unit: str, subscript: bool) -> str:
    if price is None or not math.isfinite(price):
        return missing
    if price == 0:
        return f"{unit}0"
    return f"{'-' if price < 0 else ''}{unit}{_significant(abs(price), subscript)}"


def fmt_price(price: float | None, missing: str = MISSING) -> str:
    """A USD price with 4 significant digits and its zeros written out: ``$0.00001234``, ``$0.5000``,
    ``$1.873``, ``$12,346``."""
    return _price(price, missing, "$", subscript=False)


def fmt_price_cell(price: float | None, missing: str = DASH) -> str:
    """:func:`fmt_price` for a fixed-width cell: no ``$``, and 3+ zeros after the point as a
    subscript count: ``0.0₅1234``, ``0.001234``, ``1.873``, ``12,346``."""
    return _price(price, missing, "", subscript=True)


def fmt_usd(value: float | None, missing: str = MISSING) -> str:
    """Compact dollars with 3 significant digits: ``$850``, ``$12.3K``, ``$412K``, ``$4.56M``, ``$1.2B``."""
    if value is None or not math.isfinite(value):
        return missing
    v = abs(value)
    sign = "-" if value < 0 else ""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if v >= scale:
            q = v / scale
            return f"{sign}${q:.3g}{unit}" if q < 100 else f"{sign}${q:.0f}{unit}"
    return f"{sign}${v:.0f}"


def fmt_pct(value: float | None, missing: str = MISSING) -> str:
    """A change in percent, signed, one decimal below 100: ``+2.4%``, ``-11.0%``, ``+245%``."""
    if value is None or not math.isfinite(value):
        return missing
    return f"{value:+.1f}%" if abs(value) < 100 else f"{value:+.0f}%"


def fmt_share(fraction: float | None, missing: str = MISSING) -> str:
    """A 0–1 fraction (a rate, a precision) in percent with one decimal: ``23.0%``."""
    return f"{fraction * 100:.1f}%" if fraction is not None and math.isfinite(fraction) else missing


def fmt_ratio(value: float | None, missing: str = MISSING) -> str:
    """A multiple (volume against its average): ``4.2×``, ``37×``, ``1.2k×``."""
    if value is None or not math.isfinite(value):
        return missing
    if value >= 1000:
        return f"{value / 1000:.1f}k×"
    return f"{value:.1f}×" if value < 100 else f"{value:.0f}×"


def fmt_r(value: float | None, missing: str = MISSING) -> str:
    """A result in R (multiples of the risk): ``+1.50R``, ``-1.00R``."""
    if value is None or not math.isfinite(value):
        return missing
    return f"{value:+.2f}R" if abs(value) < 100 else f"{value:+.0f}R"


def fmt_duration(seconds: float | None, missing: str = MISSING) -> str:
    """A duration, two units at most: ``45s``, ``12m``, ``3h05m``, ``2d04h``; ``-30s`` before zero."""
    if seconds is None or not math.isfinite(seconds):
        return missing
    sign = "-" if seconds <= -1 else ""
    s = abs(int(seconds))
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m"
    if s < 86400:
        return f"{sign}{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{sign}{s // 86400}d{s % 86400 // 3600:02d}h"
