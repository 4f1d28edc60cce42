"""The four market-data providers the fakes serve: their names, rate limits and hosts."""

from __future__ import annotations

JUPITER = "jupiter"
DEXSCREENER = "dexscreener"
GECKOTERMINAL = "geckoterminal"
BIRDEYE = "birdeye"
PROVIDERS = (JUPITER, DEXSCREENER, GECKOTERMINAL, BIRDEYE)
#: (limit, window seconds) per bucket; the keys a caller may override through ``limits``.
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "jupiter": (30, 60.0),
    "dexscreener.pairs": (300, 60.0),
    "dexscreener.profiles": (60, 60.0),
    "geckoterminal": (30, 60.0),
    "birdeye": (1, 1.0),
}
_HOSTS = {"jupiter": "api.jup.ag", "dexscreener": "api.dexscreener.com", "geckoterminal": "api.geckoterminal.com",
          "birdeye": "public-api.birdeye.so"}
GECKO_PREFIX = "/api/v2"
