"""The database schema: one migration per version, counted in ``PRAGMA user_version``.

:meth:`dexscan.store.connection.Database.migrate` applies the ones a file has not had yet, each in
its own transaction.
"""

from __future__ import annotations

#: Each entry upgrades the schema by one version. Append only; never edit a released migration.
MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE tokens (
        mint TEXT PRIMARY KEY,
        symbol TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL DEFAULT '',
        decimals INTEGER,
        sources TEXT NOT NULL DEFAULT '[]',
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        in_universe INTEGER NOT NULL DEFAULT 0,
        universe_since INTEGER,
        failing_since INTEGER,
        watched INTEGER NOT NULL DEFAULT 0,
        main_pool TEXT
    );
    CREATE TABLE pools (
        address TEXT PRIMARY KEY,
        mint TEXT NOT NULL,
        dex_id TEXT NOT NULL DEFAULT '',
        quote_mint TEXT NOT NULL DEFAULT '',
        quote_symbol TEXT NOT NULL DEFAULT '',
        liquidity_usd REAL,
        volume_h24_usd REAL,
        pair_created_at INTEGER,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX pools_by_mint ON pools(mint);
    CREATE TABLE candles (
        pool TEXT NOT NULL,
        timeframe INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL,
        volume REAL NOT NULL,
        PRIMARY KEY (pool, timeframe, ts)
    ) WITHOUT ROWID;
    CREATE TABLE history_coverage (
        pool TEXT NOT NULL,
        timeframe INTEGER NOT NULL,
        start_ts INTEGER NOT NULL,
        end_ts INTEGER NOT NULL,
        PRIMARY KEY (pool, timeframe, start_ts)
    );
    CREATE TABLE gate_verdicts (
        mint TEXT NOT NULL,
        gate TEXT NOT NULL,
        checked_at INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'unverified')),
        reason TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (mint, gate, checked_at)
    );
    CREATE TABLE mint_facts (
        mint TEXT PRIMARY KEY,
        checked_at INTEGER NOT NULL,
        facts TEXT NOT NULL
    );
    CREATE TABLE signals (
        id INTEGER PRIMARY KEY,
        mint TEXT NOT NULL,
        strategy TEXT NOT NULL,
        candle_ts INTEGER NOT NULL,
        layer TEXT NOT NULL,
        ts INTEGER NOT NULL,
        symbol TEXT NOT NULL DEFAULT '',
        pool TEXT,
        price REAL NOT NULL,
        rise_pct REAL,
        volume_ratio REAL,
        liquidity_usd REAL,
        levels TEXT,
        reasons TEXT NOT NULL,
        features TEXT NOT NULL DEFAULT '{}',
        raw_score REAL,
        confidence REAL,
        calibrator_version TEXT,
        status TEXT NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'closed', 'untracked')),
        UNIQUE (mint, strategy, candle_ts)
    );
    CREATE INDEX signals_by_ts ON signals(ts);
    CREATE INDEX signals_by_status ON signals(status);
    CREATE TABLE outcomes (
        signal_id INTEGER PRIMARY KEY REFERENCES signals(id),
        result TEXT NOT NULL,
        realized_r REAL NOT NULL,
        max_r REAL NOT NULL DEFAULT 0,
        hits TEXT NOT NULL DEFAULT '{}',
        closed_at INTEGER,
        last_price REAL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE candle_states (
        mint TEXT NOT NULL,
        candle_ts INTEGER NOT NULL,
        state TEXT NOT NULL,
        ignited_at INTEGER,
        confirmed_at INTEGER,
        PRIMARY KEY (mint, candle_ts)
    );
    CREATE TABLE alert_outbox (
        id INTEGER PRIMARY KEY,
        signal_id INTEGER REFERENCES signals(id),
        chat_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'digested')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL DEFAULT 0,
        message_id INTEGER,
        last_error TEXT,
        sent_at INTEGER,
        UNIQUE (signal_id, chat_id, kind)
    );
    CREATE INDEX outbox_pending ON alert_outbox(state, chat_id, id);
    CREATE TABLE calibrators (
        version TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        artifact TEXT NOT NULL
    );
    CREATE TABLE chat_settings (
        chat_id INTEGER PRIMARY KEY,
        settings TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE mutes (
        chat_id INTEGER NOT NULL,
        mint TEXT NOT NULL,
        PRIMARY KEY (chat_id, mint)
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # v2: the trade tape (issue 13): on-chain trades of universe pools, kept stream.tape_retention_s
    """
    CREATE TABLE trades (
        signature TEXT NOT NULL,
        idx INTEGER NOT NULL,
        pool TEXT NOT NULL,
        mint TEXT NOT NULL,
        slot INTEGER,
        block_time INTEGER NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        base_amount REAL NOT NULL,
        quote_amount REAL NOT NULL,
        price_usd REAL NOT NULL,
        signer TEXT,
        PRIMARY KEY (signature, idx)
    );
    CREATE INDEX trades_pool_time ON trades(pool, block_time);
    CREATE INDEX trades_time ON trades(block_time);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def split_sql(script: str) -> list[str]:
    """The statements of a migration script, in order."""
    return [s.strip() for s in script.split(";") if s.strip()]
