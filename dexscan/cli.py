"""The command line: ``dexscan [--config FILE] COMMAND``; with no command it runs ``scan``.

Each command lives in the module that owns it; this file only parses arguments, loads settings,
and turns expected errors into one clear line and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import math
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from dexscan import __version__
from dexscan.config import Settings, load_settings, settings_for_display
from dexscan.errors import ConfigError, InputError, StoreError

#: command -> "module:function"; the function takes (settings, args) and returns an exit code (or a
#: coroutine of one). Run with ``--demo``, it also gets ``demo=``, the demo world's launcher
#: (:mod:`dexscan.demo_entry`, the one place that handles ``--demo``).
COMMANDS: dict[str, str] = {
    "scan": "dexscan.scan_command:run_scan",
    "backfill": "dexscan.backfill:run_backfill",
    "evaluate": "dexscan.evaluate:run_evaluate",
    "calibrate": "dexscan.evaluate:run_calibrate",
    "check": "dexscan.check:run_check",
    "bot": "dexscan.alerts.telegram.cli:run_bot",
    "doctor": "dexscan.doctor:run_doctor",
    "stream": "dexscan.stream_cli:run_stream",
}


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``dexscan: error: ...``, like every other error
    (argparse prints the whole usage block first; scripts and people then read the wrong line)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("dexscan").strip()
        text = " ".join(message.splitlines())
        self.exit(2, f"dexscan: error: {where + ': ' if where else ''}{text} (see `{self.prog} --help`)\n")


_DB_HELP = "the SQLite file (default: dexscan.db in the per-user data directory; see `dexscan config show`)"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="dexscan",
        description="Finds early pumps in Solana DEX tokens, safely. With no command, runs `scan`.",
    )
    p.add_argument("--version", action="version", version=f"dexscan {__version__}")
    p.add_argument("--config", type=_path, metavar="FILE", help="a TOML file layered over config/default.toml")
    sub = p.add_subparsers(dest="command", metavar="COMMAND",
                           help="what to run (default: scan); `dexscan COMMAND --help` describes each")

    scan = sub.add_parser(
        "scan", help="run the live scanner with its dashboard (the default command)",
        description="Discovers tokens, gates them on-chain, watches their markets and shows signals, live "
                    "trades and outcomes on a dashboard; alerts go to Telegram when a bot token is set. "
                    "--demo runs it on a built-in simulated market (no internet, no keys).")
    _scan_args(scan)

    bf = sub.add_parser(
        "backfill", help="fetch and store OHLCV history (resumable, idempotent)",
        description="Fetches 5m, 1h and 4h OHLCV history of each token's main pool (the universe's tokens, or "
                    "--tokens) and stores it; a second run fetches only what is missing. --from-files imports "
                    "local CSV/Parquet files instead.")
    bf.add_argument("--days", type=_positive_float, default=None, help="how far back (default 30)")
    bf.add_argument("--tokens", nargs="+", type=_mint, metavar="MINT", help="these mints instead of the universe")
    bf.add_argument("--from-files", type=_path, metavar="DIR", help="import local OHLCV CSV/Parquet files instead")
    bf.add_argument("--source", choices=["geckoterminal", "birdeye", "chain"], default=None,
                    help="history provider (default geckoterminal; birdeye needs DEXSCAN_BIRDEYE_API_KEY; chain "
                         "builds 1m and 5m bars from the main pool's transactions through your RPC endpoints, "
                         "one getTransaction per swap, SOL-quoted pools priced at today's SOL/USD)")
    bf.add_argument("--demo", action="store_true", help="fetch from the built-in simulated market")
    bf.add_argument("--db", type=_path, metavar="PATH", help=_DB_HELP)

    ev = sub.add_parser(
        "evaluate", help="replay stored history through the detector; write a report",
        description="Replays the stored history (from `dexscan backfill`) through the same detector in time "
                    "order and writes a report: recall, precision, lead time, outcomes per strategy and "
                    "confidence, purged walk-forward folds. Reads the database; never creates one.")
    ev.add_argument("--tokens", nargs="+", type=_mint, metavar="MINT", help="only these mints (default: all stored)")
    ev.add_argument("--out", type=_path, metavar="DIR", help="report directory (default reports/<run>)")
    ev.add_argument("--db", type=_path, metavar="PATH", help=_DB_HELP + "; it must exist")

    cal = sub.add_parser(
        "calibrate", help="fit the confidence calibrator on labelled history",
        description="Fits the isotonic calibrator on signals labelled from stored history (TP1 before the stop) "
                    "and writes it only when it beats the base rate on held-out folds. Reads the database; "
                    "never creates one.")
    cal.add_argument("--out", type=_path, metavar="FILE", help="artifact path (default: next to the database)")
    cal.add_argument("--db", type=_path, metavar="PATH", help=_DB_HELP + "; it must exist")

    ck = sub.add_parser(
        "check", help="run every safety gate on mints and print the verdicts",
        description="Runs every gate (market and on-chain safety) on the given mints and prints each verdict "
                    "with its reason. Exit 0: all pass; 1: any fails or is unverified; 2: bad input.")
    ck.add_argument("mints", nargs="+", metavar="MINT", help="token mint addresses (base58)")
    ck.add_argument("--json", action="store_true", help="JSON output for scripts")
    ck.add_argument("--demo", action="store_true", help="check against the built-in simulated chain")
    ck.add_argument("--db", type=_path, metavar="PATH", help="also store the verdicts in this SQLite file")

    bot = sub.add_parser(
        "bot", help="run the Telegram alert bot alone (outbox delivery and commands)",
        description="Sends the queued alerts and answers the bot's commands, from the database, without "
                    "scanning. Needs DEXSCAN_TELEGRAM_TOKEN and telegram.chat_ids; --demo needs neither.")
    bot.add_argument("--demo", action="store_true",
                     help="chat with the bot in this console on the simulated market (no token): type /top, "
                          "/check MINT, /why MINT...; from a pipe, one command per line")
    bot.add_argument("--duration", type=_positive_float, default=None, metavar="SECONDS",
                     help="stop after this many seconds (default: run until Ctrl-C)")
    bot.add_argument("--db", type=_path, metavar="PATH", help=_DB_HELP)

    cfg = sub.add_parser(
        "config", help="show the effective settings (secrets masked)",
        description="Prints the settings in effect (defaults, your --config file and the environment), "
                    "with secrets masked.")
    cfg.add_argument("action", choices=["show"], nargs="?", default="show", help="what to do (only `show`)")
    cfg.add_argument("--json", action="store_true", help="print them as JSON")

    doc = sub.add_parser(
        "doctor", help="check each data source and RPC endpoint",
        description="Calls each data source and RPC endpoint once and reports reachability, latency, auth and "
                    "budget. Exit 0 when every check is ok, 1 when not.")
    doc.add_argument("--demo", action="store_true", help="check the built-in loopback fakes instead")
    doc.add_argument("--timeout", type=_positive_float, default=5.0, metavar="SECONDS",
                     help="give up on a check after this many seconds (default 5)")

    from dexscan.stream_cli import add_parser as add_stream_parser  # the on-chain stream's tools

    add_stream_parser(sub)
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
    p.add_argument("--serve", type=_listen, metavar="HOST:PORT",
                   help="serve /healthz /metrics /signals /ws on this loopback address, e.g. 127.0.0.1:8787")
    p.add_argument("--tokens", nargs="+", type=_mint, metavar="MINT", help="also watch these mints")
    p.add_argument("--db", type=_path, metavar="PATH", help=_DB_HELP)


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
    """``--serve``: a loopback HOST:PORT, checked by :func:`dexscan.service.parse_listen` while the
    arguments are parsed, so a bad one fails before anything starts (``--serve ""`` too: it would
    otherwise mean "no API", silently)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs HOST:PORT, e.g. 127.0.0.1:8787")
    from dexscan.service import parse_listen

    try:
        parse_listen(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--serve ")) from None
    return text


def _mint(text: str) -> str:
    from dexscan.chain.mint import address_problem  # solders loads only when a mint is given

    problem = address_problem(text.strip())
    if problem is not None:
        raise argparse.ArgumentTypeError(f"not a Solana address: {problem}")
    return text.strip()


#: Commands that only read the database: a ``--db`` that does not exist is a mistake, not a new file.
READ_COMMANDS = frozenset({"evaluate", "calibrate"})


def _check_db(path: str, command: str | None = None) -> None:
    """Fail with one line now, rather than with a traceback from inside the command, when ``--db``
    names something SQLite cannot open (a directory, a path under a file, no permission), or,
    for a command that only reads (:data:`READ_COMMANDS`), a file that does not exist or is not a
    database: a mistyped path must not leave an empty database behind."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"--db {path}: is a directory; give a file such as {p / 'dexscan.db'}")
    if command in READ_COMMANDS:
        if not p.exists():
            raise InputError(f"--db {path}: no such database; `dexscan {command}` reads one that "
                             f"`dexscan backfill --db {path}` (or `dexscan scan`) has filled")
        try:
            with contextlib.closing(sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)) as db:
                db.execute("PRAGMA schema_version").fetchone()
        except sqlite3.Error as exc:
            raise InputError(f"--db {path}: cannot read it as a database ({exc})") from None
        return
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(p).close()
    except (OSError, sqlite3.Error) as exc:
        raise InputError(f"--db {path}: cannot open a database there ({exc})") from None


def _resolve(target: str) -> Any:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def _config_show(settings: Settings, as_json: bool) -> int:
    """The settings in effect, then (like ``[secrets]``, for reading, not a config section) the
    ``[paths]`` they resolve to: ``app.db_path = ""`` means dexscan.db in the per-user data
    directory, and this says which file that is."""
    data = settings_for_display(settings)
    data["paths"] = {"database": str(settings.db_file()), "data_dir": str(settings.data_dir())}
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
            _check_db(args.db, args.command)
        if args.command == "config":
            return _config_show(settings, args.json)
        if args.command == "bot" and not args.demo:
            from dexscan.alerts.format import bot_setup_problem  # not the Telegram library: that takes seconds

            problem = bot_setup_problem(settings)
            if problem is not None:
                raise ConfigError(problem)
        runner = _resolve(COMMANDS[args.command])
        if getattr(args, "demo", False):
            from dexscan import demo_entry

            result = runner(settings, args, demo=demo_entry.DemoEntry())
            if asyncio.iscoroutine(result) and args.command in demo_entry.VIRTUAL_TIME_COMMANDS:
                from dexscan.vtime import run as run_virtual

                result = run_virtual(result, speed=demo_entry.pace(args))
        else:
            result = runner(settings, args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except (ConfigError, InputError, StoreError) as exc:
        print(f"dexscan: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dexscan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `dexscan config | head`: the reader left; say nothing more
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
