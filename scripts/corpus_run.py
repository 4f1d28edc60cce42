#!/usr/bin/env python3
"""Run the whole bad-input corpus (issue 8) and print one JSON line; exit 1 on any failure.

1. Record every parsed answer shape from the loopback fakes (market, Solana RPC, Telegram).
2. ``--per-client`` seeded mutations of those shapes through each client's production parser
   (Jupiter, DexScreener, GeckoTerminal, Birdeye, RPC, Telegram); accepted objects go through the
   store and are read back and checked.
3. Every byte-level mutation (non-UTF-8, truncated, 10 MB, 100,000-deep nesting, HTML, NaN and
   5,000-digit literals...) of one answer per endpoint through the real HTTP layer / RPC pool /
   aiogram session against a loopback server.
4. ``--config`` mutated config files and ``--cli`` mutated command lines through
   ``dexscan.cli.main``: each must exit 2 with one ``dexscan: error:`` line.

Per client: mutations, accepted, rejected by error type and by field, records skipped by field,
stored rows checked, crashes (must be 0), rejections without a field (must be 0), malformed rows
stored (must be 0).

    .venv/bin/python scripts/corpus_run.py [--per-client 10000] [--seed 7] [--config 1200] [--cli 1200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support lives next to dexscan/

from tests.support.corpus import corpus_report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--per-client", type=int, default=10_000, help="mutations per client parser")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--config", type=int, default=1200, help="mutated config files")
    p.add_argument("--cli", type=int, default=1200, help="mutated command lines")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="dexscan-corpus-") as tmp:
        report = corpus_report(Path(tmp), args.per_client, args.seed, config_n=args.config, cli_n=args.cli)
    print(json.dumps(report.as_json()))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
