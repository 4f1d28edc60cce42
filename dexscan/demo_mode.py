"""``--demo``, as the commands see it: where demo data lives, and what a command run with ``--demo``
is given.

The demo world itself (simulated market, LiteSVM chain, every loopback fake) lives in
:mod:`dexscan.demo`, which no product module imports: the one module that does,
:mod:`dexscan.demo_entry`, is handed to a command by the CLI as a :class:`DemoLauncher`. Every
command (``scan``, ``check``, ``backfill``, ``bot``, ``doctor``) opens the same world through it: the
same simulated tokens, and one demo data folder (:func:`demo_dir`) holding the demo database, its
log, the Bot API fake's journal and the demo's calibrator, so demo and live data never mix.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dexscan.clock import Clock
from dexscan.config import Settings

#: Store key where a demo run keeps its simulated clock (a demo restarted on its database resumes there).
DEMO_CLOCK_KEY = "demo.clock"


def demo_dir(settings: Settings) -> Path:
    """The demo's own folder in the per-user data directory."""
    return settings.data_dir() / "demo"


def demo_db_path(settings: Settings) -> Path:
    """The demo database every ``--demo`` command uses unless given ``--db``."""
    return demo_dir(settings) / "dexscan-demo.db"


def is_demo_db(settings: Settings, db: Path) -> bool:
    """Whether ``db`` holds demo data: under the demo folder, or the ``demo.db`` older versions of
    ``backfill --demo`` wrote next to the live database."""
    path = db.expanduser().resolve()
    legacy = (settings.data_dir() / "demo.db").expanduser().resolve()
    return path == legacy or demo_dir(settings).resolve() in path.parents


def bot_api_journal(db: Path) -> Path:
    """Where the demo's Bot API fake keeps the chat's state next to a demo database, so a demo
    restarted on the same database talks to the same "Telegram" (message ids, delivered alerts)."""
    return db.with_name(db.name + ".botapi.jsonl")


def _exists(path: Path) -> bool:
    return path.exists()


async def demo_resume_at(db: Path) -> float | None:
    """Where a demo on ``db`` resumes its simulated clock: where the last run on it stopped (None:
    a new database, the world's own start)."""
    from dexscan.store import Store

    if not _exists(db):
        return None
    store = await Store.open(db)
    try:
        stored = await store.kv_get(DEMO_CLOCK_KEY)
    finally:
        await store.close()
    return float(stored) if stored else None


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """A started demo world, as a command needs it.

    ``settings`` point every client at the world's loopback fakes (real keys replaced by the fakes'
    own); ``clock`` is the world's simulated clock; ``tokens`` the simulated tokens' mints (the same
    for every command); ``mints`` labelled mints to try (``check --demo`` prints them: chain-only
    demo mints with one property each, and a few simulated tokens); ``spl_mints`` the simulated
    tokens on the classic SPL Token program; ``birdeye_api_key`` the Birdeye fake's key (configured
    only where a command asks for the optional source).
    """

    settings: Settings
    clock: Clock
    tokens: tuple[str, ...]
    mints: Mapping[str, str]
    spl_mints: tuple[str, ...]
    birdeye_api_key: str


class DemoLauncher(Protocol):
    """What the CLI hands a command run with ``--demo`` (:class:`dexscan.demo_entry.DemoEntry`)."""

    def world(self, settings: Settings, *, db: Path | None = None, telegram: bool = False,
              rpc_endpoints: int = 3, public_rpc: bool = True, history_days: float | None = None,
              at_history_end: bool = False, chain_history: bool = False) -> AbstractAsyncContextManager[DemoSetup]:
        """Start the demo world for the time of the ``async with``.

        ``db``: the run's database: the clock resumes where the last run on it stopped, and the Bot
        API fake (``telegram``) keeps its journal next to it. ``rpc_endpoints``: how many RPC
        endpoints serve the chain; the first plays the public endpoint (it refuses holder lists of
        SPL Token mints) unless ``public_rpc`` is false. ``history_days``: at least this much
        simulated history (``backfill --days``); ``at_history_end``: the clock starts where the
        history ends and the live period begins (a backfill fetches only history). ``chain_history``:
        the RPC fake also serves the pools' simulated history as transactions (``getSignaturesForAddress``
        / ``getTransaction``, for ``backfill --source chain``).
        """
        ...

    async def bot_chat(self, settings: Settings, duration: float | None, db: str | None) -> int:
        """``dexscan bot --demo``: the scanner and the bot on the demo world, and a console chat."""
        ...
