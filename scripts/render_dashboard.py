"""Renders the dashboard to ``docs/dashboard.png`` (for the README).

Dev tool: ``python scripts/render_dashboard.py [--from-demo SECONDS] [--out docs/dashboard.png]
[--width 160] [--height LINES] [--svg]``. With ``--height`` the picture is what a terminal of that
many lines shows (``--width 80 --height 24``: the layout degrades to fit, as the live dashboard
does). With ``--from-demo`` the picture is the real scanner's last frame after
running the built-in demo (``dexscan scan --demo``) for that many real seconds; without it, a sample
is drawn instead. The sample is built from domain objects (signals, ladders, outcomes) through the same row helpers
the engine uses, so the picture shows what the scanner really draws. rich exports SVG; the PNG is
made by CairoSVG when it is installed (``pip install cairosvg``, needs the system cairo library)
or else by a headless Chromium found on PATH. With neither, the SVG is written and the script says
what to install. Prints one JSON line with what it wrote.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.terminal_theme import MONOKAI

from dexscan.domain import Confidence, Layer, Levels, Outcome, OutcomeResult, Reason, Signal
from dexscan.status import ClosedRow, LiveRow, RpcEndpointStatus, ScannerStatus, SignalRow, SourceStatus
from dexscan.ui.dashboard import dashboard_height, render

NOW = 1_773_479_525  # 2026-03-14 09:12:05 UTC = 14:42:05 IST
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _mint(rng: random.Random, pump: bool) -> str:
    body = "".join(rng.choice(_B58) for _ in range(40 if pump else 44))
    return body + "pump" if pump else body


def _signal(
    rng: random.Random, symbol: str, price: float, strategy: str, layer: Layer, ts: int, rise: float, vol: float,
    liq: float, prob: float | None, pump: bool = True,
) -> Signal:
    atr = price * rng.uniform(0.035, 0.07)
    risk = 1.5 * atr
    levels = Levels(price, price - risk, price + 1.5 * risk, price + 3 * risk, price + 5 * risk, atr, "4h", "atr")
    raw = rng.uniform(0.45, 0.8)
    reasons: tuple[Reason, ...] = (
        Reason("rise", rise, ">=", 2.0, "%"),
        Reason("vol5m", vol, ">", 3.0, "×"),
    )
    if strategy == "confirmation":
        reasons = (Reason("rise4h", rise, ">=", 10.0, "%"),)
    elif strategy == "volume_surge":
        reasons = (Reason("vol_z", 4.0 + vol / 3, ">=", 4.0), Reason("close_pos", 0.81, ">=", 0.67))
    elif strategy == "god_candle":
        reasons = (Reason("rise10", rise, ">=", 12.0, "%"), Reason("vol", vol, ">=", 5.0, "×"),
                   Reason("wick", 31.0, "<=", 60.0, "%"))
    return Signal(
        mint=_mint(rng, pump), strategy=strategy, layer=layer, candle_ts=ts - ts % 14400, ts=ts, price=price,
        reasons=reasons, symbol=symbol, rise_pct=rise, volume_ratio=vol, levels=levels,
        confidence=Confidence(raw, prob, "v3" if prob is not None else None), liquidity_usd=liq,
    )


_R_OF: dict[str, float] = {"sl": -1.0, "breakeven": 0.0, "tp1": 1.5, "tp2": 3.0, "tp3": 5.0, "expired": 0.4}
_TARGETS_HIT = {"sl": (), "expired": (), "breakeven": ("tp1",), "tp1": ("tp1",), "tp2": ("tp1", "tp2"),
                "tp3": ("tp1", "tp2", "tp3")}


def _outcome(sig: Signal, result: OutcomeResult, minutes: int) -> Outcome:
    assert sig.levels is not None
    closed = sig.ts + minutes * 60
    hits = {name: sig.ts + (k + 1) * minutes * 60 // 4 for k, name in enumerate(_TARGETS_HIT[result])}
    if result in ("sl", "breakeven"):
        hits[result] = closed
    exit_price = sig.levels.entry + _R_OF[result] * sig.levels.risk
    return Outcome(result, _R_OF[result], hits, closed, exit_price, max(_R_OF[result], 0.8))


def sample_status(now: int = NOW) -> ScannerStatus:
    """A busy afternoon: 11 new signals (more than fit), 5 live trades, 9 closed ones."""
    rng = random.Random(7)
    m = 60
    new = [
        _signal(rng, "BONK", 0.00002345, "ignition", "ignition", now - 2 * m, 2.4, 3.8, 1_840_000, 0.64),
        _signal(rng, "WIF", 1.873, "ignition", "ignition", now - 6 * m, 3.1, 4.6, 12_300_000, 0.71, pump=False),
        _signal(rng, "MOODENG", 0.000004567, "god_candle", "strategy", now - 9 * m, 14.2, 7.9, 412_000, None),
        _signal(rng, "POPCAT", 0.4123, "volume_surge", "strategy", now - 14 * m, 4.8, 6.1, 3_950_000, 0.58),
        _signal(rng, "CHILLGUY", 0.06234, "confirmation", "confirmation", now - 21 * m, 11.3, 2.2, 2_100_000, 0.77),
        _signal(rng, "GOAT", 0.3051, "ignition", "ignition", now - 33 * m, 2.1, 3.2, 5_600_000, 0.52),
        _signal(rng, "FWOG", 0.0001872, "volume_surge", "strategy", now - 47 * m, 6.3, 9.4, 890_000, 0.49),
        _signal(rng, "PNUT", 0.2214, "ignition", "ignition", now - 58 * m, 2.9, 3.5, 7_200_000, 0.61),
        _signal(rng, "MEW", 0.003987, "god_candle", "strategy", now - 71 * m, 12.8, 5.3, 4_400_000, 0.55),
        _signal(rng, "SIGMA", 0.00001123, "ignition", "ignition", now - 83 * m, 2.2, 3.1, 260_000, None),
        _signal(rng, "RETARDIO", 0.0412, "ignition", "ignition", now - 95 * m, 2.6, 4.0, 610_000, 0.57),
    ]
    new_rows = [SignalRow.from_signal(s, now, i + 1) for i, s in enumerate(new)]

    live_specs = [
        (new[1], 1.961, ("tp1",)), (new[3], 0.4021, ()), (new[4], 0.07410, ("tp1", "tp2")),
        (new[7], 0.2199, ()), (new[8], 0.004102, ("tp1",)),
    ]
    live_rows = []
    for i, (sig, price, hit) in enumerate(live_specs):
        hits = {h: sig.ts + (k + 1) * 600 for k, h in enumerate(hit)}
        outcome = Outcome("open", 0.0, hits, None, price, 1.5 * len(hit) + 0.3)
        live_rows.append(LiveRow.from_signal(sig, outcome, now, price, 100 + i))

    closed_specs: list[tuple[str, float, str, Layer, OutcomeResult, int]] = [
        ("JUP", 0.8123, "ignition", "ignition", "tp2", 190),
        ("SLERF", 0.0003411, "volume_surge", "strategy", "sl", 42),
        ("BOME", 0.008765, "ignition", "ignition", "tp1", 75),
        ("MYRO", 0.03456, "god_candle", "strategy", "breakeven", 310),
        ("PONKE", 0.2876, "ignition", "ignition", "expired", 1440),
        ("MICHI", 0.000008912, "god_candle", "strategy", "tp3", 520),
        ("GIGA", 0.01987, "confirmation", "confirmation", "sl", 95),
        ("ZEREBRO", 0.0512, "ignition", "ignition", "tp1", 130),
        ("ACT", 0.2310, "volume_surge", "strategy", "tp2", 260),
    ]
    closed_rows = []
    for i, (sym, price, strat, layer, result, minutes) in enumerate(closed_specs):
        ts = now - 34 * 3600 + i * 3 * 3600 - minutes * 60
        sig = _signal(rng, sym, price, strat, layer, ts, 2.5 + i, 3.5 + i / 2, 900_000 + i * 250_000, 0.6)
        closed_rows.append(ClosedRow.from_outcome(sig, _outcome(sig, result, minutes), 200 + i))

    return ScannerStatus(
        now=now, local_zone="Asia/Kolkata", universe_size=143, gates_passed=143, gates_failed=402,
        gates_unverified=3, warming_up=11, calibrator_label="v3 · n=812 · ECE 0.031",
        sources=[
            SourceStatus("jupiter", True, "ok", 182.0, 1_204, 0, 0, 19, 30, 60),
            SourceStatus("dexscreener", True, "ok", 96.0, 8_911, 0, 2, 211, 300, 60),
            SourceStatus("geckoterminal", True, "degraded", 640.0, 1_877, 3, 1, 24, 25, 60),
        ],
        rpc=[
            RpcEndpointStatus("https://mainnet.helius-rpc.com/***", True, "closed", 84.0, 0, 5_310, 4),
            RpcEndpointStatus("https://api.mainnet-beta.solana.com", True, "closed", 141.0, 2, 2_120, 17),
            RpcEndpointStatus("https://solana-rpc.publicnode.com", False, "open", None, None, 310, 40),
        ],
        active_rpc="https://mainnet.helius-rpc.com/***",
        queue_depths={"snapshots": 3, "history": 41, "alerts": 0},
        outbox_backlog=0, new_signals=new_rows, live_signals=live_rows, closed_signals=closed_rows,
        signals_by_strategy={"ignition": 31, "confirmation": 9, "god_candle": 6, "volume_surge": 11},
        started_at=now - 6 * 3600 - 23 * 60,
    )


def _offline_fonts(svg: str) -> str:
    """rich's SVG asks for Fira Code from a CDN; offline converters then fall back to a proportional
    font and the columns drift. Ask for common installed monospace fonts instead."""
    return svg.replace("font-family: Fira Code, monospace;",
                       "font-family: 'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace;")


def _shrink(png: Path) -> None:
    """A terminal picture has few colours: a 128-colour palette keeps it sharp at a third of the size."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(png) as img:
        small = img.convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    small.save(png, optimize=True)


def _png_with_cairosvg(svg: Path, png: Path) -> bool:
    try:
        import cairosvg
    except (ImportError, OSError):
        return False
    cairosvg.svg2png(url=str(svg), write_to=str(png), output_width=1600)
    return True


def _png_with_chromium(svg: Path, png: Path, width: int, height: int) -> bool:
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        return False
    with tempfile.TemporaryDirectory() as profile:
        html = Path(profile) / "page.html"
        html.write_text(
            "<html><body style='margin:0;background:#0c0c0c'>"
            f"<img src='{svg.resolve().as_uri()}' style='width:{width}px'></body></html>"
        )
        subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--allow-file-access-from-files", f"--user-data-dir={profile}/ud",
             f"--screenshot={png.resolve()}", f"--window-size={width},{height}", html.as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    return png.exists()


async def demo_status(seconds: float, speed: float, rows: int) -> ScannerStatus:
    """The status of the real scanner after ``seconds`` of the built-in demo (what its dashboard shows)."""
    from dexscan.config import load_settings
    from dexscan.demo.world import DemoWorld, demo_sim_config
    from dexscan.engine import Engine
    from dexscan.scan_command import ScanOptions, preload, scan

    captured: list[ScannerStatus] = []

    async def stopped(engine: Engine) -> None:
        captured.append(engine.status())

    opts = ScanOptions(demo=True, speed=speed, duration=seconds, dashboard=False, quiet=True)
    preload(opts, telegram=True)
    with tempfile.TemporaryDirectory() as tmp:
        async with DemoWorld(telegram=True, sim_config=demo_sim_config()) as world:
            assert world.clock is not None
            settings = world.apply(load_settings(env={})).with_overrides(
                {"app.log_file": str(Path(tmp) / "demo.log"), "scan.table_rows": rows})
            await scan(settings, opts, world.clock, Path(tmp) / "demo.db", mode="demo", stopped=stopped)
    return captured[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("docs/dashboard.png"))
    p.add_argument("--width", type=int, default=160, help="terminal columns")
    p.add_argument("--height", type=int, default=None,
                   help="terminal lines (default: as tall as the dashboard with --rows rows per table)")
    p.add_argument("--rows", type=int, default=8, help="scan.table_rows")
    p.add_argument("--svg", action="store_true", help="keep the SVG next to the PNG")
    p.add_argument("--from-demo", type=float, metavar="SECONDS",
                   help="draw the real scanner after running the built-in demo this many real seconds")
    p.add_argument("--speed", type=float, default=60.0, help="demo speed (simulated seconds per second)")
    args = p.parse_args(argv)

    if args.from_demo:
        from dexscan.vtime import run as run_virtual  # the demo world runs on virtual time, as `scan --demo` does

        status = run_virtual(demo_status(args.from_demo, args.speed, args.rows), speed=args.speed)
    else:
        status = sample_status()
    height = dashboard_height(status, args.rows, args.height)
    console = Console(record=True, width=args.width, height=height, force_terminal=True, color_system="truecolor",
                      file=io.StringIO())
    console.print(render(status, args.width, args.rows, args.height))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    svg = args.out.with_suffix(".svg")
    svg.write_text(_offline_fonts(console.export_svg(title="dexscan scan", theme=MONOKAI)), encoding="utf-8")

    pixel_width = 1600
    pixel_height = int(pixel_width * (height * 24.4 + 80) / (args.width * 12.2 + 40)) + 4
    made_by = None
    if _png_with_cairosvg(svg, args.out):
        made_by = "cairosvg"
    elif _png_with_chromium(svg, args.out, pixel_width, pixel_height):
        made_by = "chromium"
    if made_by is not None:
        _shrink(args.out)
    if not args.svg and made_by is not None:
        svg.unlink()
    result = {"svg": str(svg) if args.svg or made_by is None else None, "png": str(args.out) if made_by else None,
              "png_by": made_by, "width": args.width, "lines": height,
              "png_bytes": args.out.stat().st_size if made_by else None}
    print(json.dumps(result))
    if made_by is None:
        print("no SVG→PNG converter: `pip install cairosvg` (needs libcairo2) or install chromium", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
