#!/usr/bin/env python3
"""Run every benchmark (``scripts/bench_*.py``) and collect their JSON lines in ``docs/benchmarks.json``.

    .venv/bin/python scripts/bench_all.py [--only core memory] [--out docs/benchmarks.json]

Each benchmark runs alone, one after the other, in its own subprocess with its default arguments
(so the figures are the ones each script documents), and prints one JSON line; this script echoes
each line as it arrives and writes them all, with the machine they were measured on (CPU model,
cores, Python, OS), the date and each run's wall time and load average, to ``--out``. Benchmarks
are never run in parallel: they would measure each other. Exit status 1 when any benchmark failed
(its entry then carries the error instead of figures).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(terse=True),
        "memory_gb": _memory_gb(),
    }


def _memory_gb() -> float | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def load_avg() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def benchmarks() -> list[Path]:
    return sorted(p for p in SCRIPTS.glob("bench_*.py") if p.name != Path(__file__).name)


def run_one(script: Path) -> dict[str, Any]:
    name = script.stem.removeprefix("bench_")
    load_before = load_avg()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    entry: dict[str, Any] = {"script": f"scripts/{script.name}", "wall_s": round(wall, 1),
                             "load_avg_1m_before": load_before, "load_avg_1m_after": load_avg()}
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-5:]
        entry.update({"bench": name, "error": f"exit status {proc.returncode}: " + " | ".join(tail)})
        return entry
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        entry.update({"bench": name, "error": f"last output line is not JSON ({exc})"})
        return entry
    return {"result": result, **entry}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these (e.g. core memory)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.json")
    args = ap.parse_args()
    scripts = benchmarks()
    if args.only:
        unknown = set(args.only) - {s.stem.removeprefix("bench_") for s in scripts}
        if unknown:
            print(f"bench_all: no benchmark named {', '.join(sorted(unknown))}; "
                  f"known: {', '.join(s.stem.removeprefix('bench_') for s in scripts)}", file=sys.stderr)
            return 2
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    started = dt.datetime.now(dt.UTC)
    runs = []
    failed = False
    for script in scripts:
        entry = run_one(script)
        runs.append(entry)
        if "error" in entry:
            failed = True
            print(json.dumps({"bench": entry["bench"], "error": entry["error"]}), flush=True)
        else:
            print(json.dumps(entry["result"]), flush=True)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": "python scripts/bench_all.py" + (f" --only {' '.join(args.only)}" if args.only else ""),
        "machine": machine(),
        "total_wall_s": round(sum(r["wall_s"] for r in runs), 1),
        "benchmarks": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"bench_all: {len(runs)} benchmark(s) in {report['total_wall_s']} s -> {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
