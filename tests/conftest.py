"""Shared fixtures. Every test gets its own data directory and no secrets from the real env.

A test marked ``virtual_time`` runs on a :class:`~dexscan.vtime.VirtualTimeLoop`: its clock jumps to
the next timer whenever nothing can run, so a simulated day takes as long as its work and ends the
same on a slow, a busy or a fast machine. Every test that runs the scanner or the demo world is one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from dexscan.store import Store
from dexscan.vtime import VirtualTimeLoop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    """pytest-asyncio's hook: the ``virtual_time`` tests get a virtual-time loop, the rest the default."""
    if item.get_closest_marker("virtual_time") is not None:
        return {"virtual_time": VirtualTimeLoop}
    return {"asyncio": asyncio.new_event_loop}

_SECRET_VARS = (
    "DEXSCAN_TELEGRAM_TOKEN",
    "DEXSCAN_BIRDEYE_API_KEY",
    "DEXSCAN_JUPITER_API_KEY",
    "DEXSCAN_RPC_URLS",
    "DEXSCAN_DB",
    "DEXSCAN_SECRETS_FILE",
)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in _SECRET_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DEXSCAN_DATA_DIR", str(tmp_path / "data"))
    yield


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "test.db")
    try:
        yield s
    finally:
        await s.close()
