"""Smoke run of ``scripts/bench_stream_scale.py`` (one tiny size): every swap it encodes reaches the
detector as one trade. The RSS figures it prints are measured, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_stream_scale.py"


def test_every_encoded_swap_becomes_one_trade() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--child", "20", "--minutes", "2", "--trades-per-minute", "3"],
                         check=True, capture_output=True, text=True, timeout=120)
    run = json.loads(out.stdout.strip().splitlines()[-1])
    # one subscription per pool, plus the pump.fun program of the default stream.discovery_programs
    assert (run["pools"], run["connections"], run["subscriptions"]) == (20, 1, 20 + 1)
    assert (run["notifications"], run["trades"]) == (20 * 2 * 3, 20 * 2 * 3)
    assert run["trades_rejected"] == {} and run["stream_dropped"] == 0
    assert run["first_pool"] == {"m1_bars": 1, "flow1": 1, "flow5": 0, "m5_bars": 0}
