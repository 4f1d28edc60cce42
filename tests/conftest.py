"""Shared fixtures. Every test gets its own data directory and no secrets from the real env."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dexscan.store import Store

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
