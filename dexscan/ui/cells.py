"""What one dashboard cell says and how it looks: token and strategy labels, confidence, clock times
in the trader's zone and UTC, and the styles of signed values and outcomes. Numbers are written by
:mod:`dexscan.fmt` (the same formatters as the alert cards and the report)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.text import Text

from dexscan.domain import Confidence
from dexscan.fmt import DASH
from dexscan.status import ScannerStatus


def short_mint(mint: str) -> str:
    """First and last four characters: ``7xKX…pump`` (pump.fun mints end in "pump")."""
    return mint if len(mint) <= 9 else f"{mint[:4]}…{mint[-4:]}"


def token_label(symbol: str, mint: str) -> str:
    """``BONK 7xKX…pump``; the symbol is cut to 6 characters so the mint always shows."""
    sym = symbol.strip()
    if len(sym) > 6:
        sym = sym[:5] + "…"
    return f"{sym} {short_mint(mint)}" if sym else short_mint(mint)


def confidence_label(conf: Confidence | None) -> str:
    """``72%`` when calibrated; ``r0.61`` (the raw score, explicitly not a probability) otherwise."""
    if conf is None:
        return DASH
    if conf.probability is not None:
        return f"{conf.probability * 100:.0f}%"
    return f"r{conf.raw_score:.2f}"


def strategy_label(strategy: str, layer: str) -> str:
    """Strategy name, with the detector layer when the name does not already say it."""
    name = strategy.replace("_", " ").replace("confirmation", "confirm").replace("volume", "vol")
    if layer in ("ignition", "confirmation") and layer not in strategy:
        name = f"{name}/{'ign' if layer == 'ignition' else 'conf'}"
    return name


def zone_of(name: str) -> tzinfo:
    """The IANA zone ``name``, or UTC if this machine does not know it (the dashboard must not die)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def clock_text(ts: float, zone: tzinfo, seconds: bool = False) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%H:%M:%S" if seconds else "%H:%M")


def zone_abbrev(ts: float, zone: tzinfo) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%Z") or "local"



@dataclass(frozen=True, slots=True)
class Zones:
    local: tzinfo
    name: str  # abbreviation shown in headers, e.g. "IST"
    is_utc: bool


UTC_NAMES = frozenset({"UTC", "ETC/UTC", "GMT", "ETC/GMT", "Z", "ZULU", "UNIVERSAL", "ETC/UNIVERSAL"})


def zones(status: ScannerStatus) -> Zones:
    zone = zone_of(status.local_zone)
    is_utc = zone is UTC or status.local_zone.upper() in UTC_NAMES
    return Zones(zone, "UTC" if is_utc else zone_abbrev(status.now, zone), is_utc)


def styled(text: str, style: str = "") -> Text:
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def signed_style(value: float | None) -> str:
    if value is None or value == 0:
        return ""
    return "green" if value > 0 else "red"


def conf_cell(conf: Confidence | None) -> Text:
    if conf is None or conf.probability is None:
        return styled(confidence_label(conf), "dim")
    return styled(confidence_label(conf), "bold" if conf.probability >= 0.6 else "")


OUTCOME_STYLES = {
    "tp1": "green",
    "tp2": "bold green",
    "tp3": "bold bright_green",
    "sl": "bold red",
    "breakeven": "yellow",
    "expired": "dim",
    "open": "",
}
