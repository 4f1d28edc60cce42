"""The command line: ``dexscan [--config FILE] COMMAND``; with no command it runs ``scan``.

Each command lives in the module that owns it; this file only parses arguments, loads settings,
and turns expected errors into one clear line and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from dexscan import __version__
from dexscan.config import Settings, load_settings, settings_for_display
from dexscan.errors import ConfigError, InputError

#: command -> "module:function"; the function takes (settings, args) and returns an exit code.
COMMANDS: dict[str, str] = {
    "scan": "dexscan.engine:run_scan",
    "backfill": "dexscan.backfill:run_backfill",
    "evaluate": "dexscan.evaluate:run_evaluate",
    "calibrate": "dexscan.evaluate:run_calibrate",
    "check": "dexscan.check:run_check",
    "bot": "dexscan.alerts.telegram:run_bot",
    "doctor": "dexscan.doctor:run_doctor",
}


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``dexscan: error: ...``, like every other error
    (argparse prints the whole usage block first; scripts and people then read the wrong line)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("dexscan").strip()
        text = " ".join(message.splitlines())
        self.exit(2, f"dexscan: error: {where + ': ' if where else ''}{text} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="dexscan",
        description="Finds early pumps in Solana DEX tokens, safely. With no command, runs `scan`.",
    )
    p.add_argument("--version", action="version", version=f"dexscan {__version__}")
    p.add_argument("--config", type=_path, metavar="FILE", help="a TOML file layered over config/default.toml")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    scan = sub.add_parser("scan", help="run the live scanner with its dashboard (the default command)")
    _scan_args(scan)

    bf = sub.add_parser("backfill", help="fetch and store OHLCV history (resumable, idempotent)")
    bf.add_argument("--days", type=_positive_float, default=None, help="how far back (default 30)")
    bf.add_argument("--tokens", nargs="+", type=_mint, metavar="MINT", help="these mints instead of the universe")
    bf.add_argument("--from-files", type=_path, metavar="DIR", help="import local OHLCV CSV/Parquet files instead")
    bf.add_argument("--source", choices=["geckoterminal", "birdeye"], default=None)
    bf.add_argument("--demo", action="store_true", help="fetch from the built-in simulated market")
    bf.add_argument("--db", type=_path, metavar="PATH", help="SQLite file (default: per-user data directory)")

    ev = sub.add_parser("evaluate", help="replay stored history through the detector; write a report")
    ev.add_argument("--tokens", nargs="+", type=_mint, metavar="MINT")
    ev.add_argument("--out", type=_path, metavar="DIR", help="report directory (default reports/<run>)")
    ev.add_argument("--db", type=_path, metavar="PATH")

    cal = sub.add_parser("calibrate", help="fit the confidence calibrator on labelled history")
    cal.add_argument("--out", type=_path, metavar="FILE", help="artifact path (default: next to the database)")
    cal.add_argument("--db", type=_path, metavar="PATH")

    ck = sub.add_parser("check", help="run every safety gate on mints and print the verdicts")
    ck.add_argument("mints", nargs="+", metavar="MINT")
    ck.add_argument("--json", action="store_true", help="JSON output for scripts")
    ck.add_argument("--demo", action="store_true", help="check against the built-in simulated chain")
    ck.add_argument("--db", type=_path, metavar="PATH")

    bot = sub.add_parser("bot", help="run the Telegram alert bot alone (outbox delivery and commands)")
    bot.add_argument("--demo", action="store_true")
    bot.add_argument("--duration", type=_positive_float, default=None, metavar="SECONDS")
    bot.add_argument("--db", type=_path, metavar="PATH")

    cfg = sub.add_parser("config", help="show the effective settings (secrets masked)")
    cfg.add_argument("action", choices=["show"], nargs="?", default="show")
    cfg.add_argument("--json", action="store_true")

    doc = sub.add_parser("doctor", help="check each data source and RPC endpoint")
    doc.add_argument("--demo", action="store_true", help="check the built-in loopback fakes instead")
    doc.add_argument("--timeout", type=_positive_float, default=5.0, metavar="SECONDS")
    return p


def _scan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", action="store_true", help="run on the built-in simulated market (no internet)")
    p.add_argument("--speed", type=_speed, default=None, metavar="X|max",
                   help="the demo's pace: at most X simulated seconds per real second (default 60); "
                        "'max': as fast as the machine can (the demo runs on virtual time either way)")
    p.add_argument("--duration", type=_positive_float, default=None, metavar="SECONDS",
                   help="stop after this many real seconds")
    p.add_argument("--once", action="store_true", help="one full cycle, then exit")
    p.add_argument("--json", action="store_true", help="signals as JSON lines on stdout, no dashboard")
    p.add_argument("--serve", type=_listen, metavar="HOST:PORT", help="serve /healthz /metrics /signals /ws locally")
    p.add_argument("--tokens", nargs="+", type=_mint, metavar="MINT", help="also watch these mints")
    p.add_argument("--db", type=_path, metavar="PATH")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _speed(text: str) -> float:
    """``--speed``: a positive number, or ``max`` (returned as infinity: no pacing)."""
    return math.inf if text.strip().lower() == "max" else _positive_float(text)


def _path(text: str) -> str:
    """A file or directory argument; ``--db ""`` would otherwise silently mean the default one."""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs a path, got an empty string")
    return text


def _listen(text: str) -> str:
    """Only emptiness is refused here (``--serve ""`` would otherwise mean "no API", silently);
    the scanner checks HOST:PORT itself before it starts anything."""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs HOST:PORT, e.g. 127.0.0.1:8787")
    return text


def _mint(text: str) -> str:
    from dexscan.chain.mint import address_problem  # solders loads only when a mint is given

    problem = address_problem(text.strip())
    if problem is not None:
        raise argparse.ArgumentTypeError(f"not a Solana address: {problem}")
    return text.strip()


def _check_db(path: str) -> None:
    """Fail with one line now, rather than with a traceback from inside the command, when ``--db``
    names something SQLite cannot open (a directory, a path under a file, no permission)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"--db {path}: is a directory; give a file such as {p / 'dexscan.db'}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(p).close()
    except (OSError, sqlite3.Error) as exc:
        raise InputError(f"--db {path}: cannot open a database there ({exc})") from None


def _resolve(target: str) -> Any:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def _config_show(settings: Settings, as_json: bool) -> int:
    data = settings_for_display(settings)
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    for section, values in data.items():
        _print_section(section, values)
    return 0


def _print_section(name: str, values: Any) -> None:
    scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in values.items() if isinstance(v, dict)}
    if scalars:
        print(f"[{name}]")
        for k, v in scalars.items():
            print(f"{k} = {json.dumps(v)}")
        print()
    for k, v in tables.items():
        _print_section(f"{name}.{k}", v)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        args = parser.parse_args([*(["--config", args.config] if args.config else []), "scan"])
    try:
        settings = load_settings(args.config)
        if getattr(args, "db", None):
            _check_db(args.db)
        if args.command == "config":
            return _config_show(settings, args.json)
        runner = _resolve(COMMANDS[args.command])
        result = runner(settings, args)
        if asyncio.iscoroutine(result):
            if args.command == "scan" and args.demo:  # the demo world runs on virtual time
                from dexscan.engine import ScanOptions
                from dexscan.vtime import run as run_virtual

                result = run_virtual(result, speed=ScanOptions.from_args(args).pace)
            else:
                result = asyncio.run(result)
        return int(result or 0)
    except (ConfigError, InputError) as exc:
        print(f"dexscan: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dexscan: interrupted", file=sys.stderr)
        return 130
