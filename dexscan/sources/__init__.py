"""Market-data clients. Each returns domain objects; all of them share one :class:`HttpLayer`.

``build_clients(settings, http)`` is the one place that decides which clients exist: Birdeye only
when its key is configured (and the source is enabled), so code can test ``clients.birdeye is None``.
:func:`provider_specs` lists the sources the HTTP layer serves, each as its client declares it
(name, base URL, budgets, headers).
"""

from __future__ import annotations

from dataclasses import dataclass

from dexscan.config import Settings
from dexscan.sources.birdeye import BirdeyeClient, BirdeyeSecurity
from dexscan.sources.dexscreener import DexScreenerClient, main_pool
from dexscan.sources.geckoterminal import GeckoTerminalClient
from dexscan.sources.http import CircuitOpen, HttpLayer, HttpStatusError, ProviderSpec, ProviderStats
from dexscan.sources.jupiter import JupiterClient

__all__ = [
    "BirdeyeClient",
    "BirdeyeSecurity",
    "CircuitOpen",
    "Clients",
    "DexScreenerClient",
    "GeckoTerminalClient",
    "HttpLayer",
    "HttpStatusError",
    "JupiterClient",
    "ProviderSpec",
    "ProviderStats",
    "build_clients",
    "main_pool",
    "provider_specs",
]


#: The market-data sources, in the order the dashboard and ``doctor`` list them.
SOURCES = (JupiterClient, DexScreenerClient, GeckoTerminalClient, BirdeyeClient)


@dataclass
class Clients:
    jupiter: JupiterClient
    dexscreener: DexScreenerClient
    geckoterminal: GeckoTerminalClient
    birdeye: BirdeyeClient | None


def birdeye_configured(settings: Settings) -> bool:
    key = settings.secrets.birdeye_api_key
    return settings.sources.birdeye.enabled and key is not None and bool(key.get_secret_value())


def provider_specs(settings: Settings) -> list[ProviderSpec]:
    """Every source's provider as its client declares it, Birdeye too (configured or not)."""
    return [client.provider(settings) for client in SOURCES]


def build_clients(settings: Settings, http: HttpLayer) -> Clients:
    return Clients(
        jupiter=JupiterClient(http, settings),
        dexscreener=DexScreenerClient(http, settings),
        geckoterminal=GeckoTerminalClient(http, settings),
        birdeye=BirdeyeClient(http, settings) if birdeye_configured(settings) else None,
    )
