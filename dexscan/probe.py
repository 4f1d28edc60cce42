"""Can this machine reach the market-data sources at all? A TCP connection to each enabled source's
host, before ``dexscan scan`` starts: it costs no request budget, and a machine without internet
gets one clear line (and the way to the demo) instead of a dashboard of errors.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from dexscan.config import Settings, mask_url


def _host_port(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


async def unreachable_sources(settings: Settings, timeout_s: float = 4.0) -> dict[str, str]:
    """Each enabled market-data source whose host does not accept a TCP connection, with why.

    A connection costs no request budget, so this check can run before every start.
    """
    src = settings.sources
    targets = {name: cfg.base_url for name, cfg in
               (("jupiter", src.jupiter), ("dexscreener", src.dexscreener), ("geckoterminal", src.geckoterminal))
               if cfg.enabled}

    async def probe(url: str) -> str | None:
        hp = _host_port(url)
        if hp is None:
            return "not a URL"
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(*hp), timeout_s)
        except TimeoutError:
            return f"no answer within {timeout_s:g}s"
        except OSError as exc:
            return exc.strerror or type(exc).__name__
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None

    results = await asyncio.gather(*(probe(u) for u in targets.values()))
    return {name: f"{urlsplit(targets[name]).hostname or mask_url(targets[name])}: {why}"
            for name, why in zip(targets, results, strict=True) if why}


def unreachable_message(problems: dict[str, str]) -> str:
    listed = "; ".join(problems.values())
    return (
        f"dexscan: no market-data source is reachable ({listed}). The scanner needs at least one of "
        "Jupiter, DexScreener or GeckoTerminal: check this machine's internet connection, proxy and "
        "firewall, or the base URLs in your config (`dexscan config show`); `dexscan doctor` tests each "
        "source in detail. To watch the scanner work without internet, run `dexscan scan --demo`: the "
        "same scanner on a simulated market served on this machine."
    )

