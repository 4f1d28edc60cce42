"""Fuzz the on-chain event decoders: N seeded mutations of real notifications, one JSON line out.

    python scripts/fuzz_decoders.py [--n 10000] [--seed 13] [--data ../shared/data/onchain]

Seeds: the real mainnet transactions in ``../shared/data/onchain`` (next to the repo root) when that
folder exists, plus hand-built notifications for every program. Exit 1 if anything crashed or a
malformed event came out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dexscan.chain.events.fuzz import run  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="mutations (default 10000)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "onchain",
                   help="folder of real transactions (default ../shared/data/onchain)")
    args = p.parse_args()
    t0 = time.perf_counter()
    report = run(args.n, args.seed, args.data if args.data.is_dir() else None)
    report["real_seeds"] = args.data.is_dir()
    report["seconds"] = round(time.perf_counter() - t0, 3)
    print(json.dumps(report))
    return 1 if report["crashes"] or report["malformed_events"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
