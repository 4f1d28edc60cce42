"""``dexscan stream decode FILE [--json] [--all] [--text]``: decode recorded stream input, line by line.

Each line of FILE (``-`` for stdin) is one JSON value: a raw ``logsNotification`` message exactly as
the Solana WebSocket sends it, or a ``getTransaction`` answer (the whole JSON-RPC response or its
``result``; ``json``, ``jsonParsed`` or ``base64`` encoding). Every decoded swap is printed to stdout
as one JSON object (``signature``, ``slot``, ``block_time``, ``program``, ``pool``, ``mint``,
``amount_in``, ``amount_out``, ``side``, ``signer``, ...); ``--text`` prints a readable line instead,
``--all`` adds new pools and graduations. A failed transaction records nothing. Lines that give
nothing are counted by reason on stderr (``not_json``, ``tx_failed``, ``no_event``, ...), as are the
decoders' rejections; ``--json`` writes those counts as one JSON object. Exit 0 when the file was
read (whatever it held), 2 when it could not be.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from dexscan.chain.events import PoolEvent, Swap, decode_any
from dexscan.errors import InputError


@dataclass
class DecodeReport:
    lines: int = 0
    swaps: int = 0
    pool_events: int = 0
    unused_lines: Counter[str] = field(default_factory=Counter)  # line-level: why a line gave nothing
    rejections: Counter[str] = field(default_factory=Counter)  # every rejection of the decoders

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "swaps": self.swaps, "pool_events": self.pool_events,
                "unused_lines": dict(sorted(self.unused_lines.items())),
                "rejections": dict(sorted(self.rejections.items()))}


def decode_lines(lines: Iterable[str], report: DecodeReport, include_pools: bool = False
                 ) -> Iterator[Swap | PoolEvent]:
    """The events of each JSON line, in order; ``report`` counts everything."""
    for raw in lines:
        text = raw.strip()
        if not text:
            continue
        report.lines += 1
        try:
            obj = json.loads(text)
        except ValueError:
            report.unused_lines["not_json"] += 1
            report.rejections["not_json"] += 1
            continue
        out = decode_any(obj)
        out.count_into(report.rejections)
        swaps = [e for e in out.events if isinstance(e, Swap)]
        pools = [e for e in out.events if isinstance(e, PoolEvent)]
        report.swaps += len(swaps)
        report.pool_events += len(pools)
        if not out.events:
            report.unused_lines[out.rejections[0].reason if out.rejections else "no_event"] += 1
        for e in out.events:
            if isinstance(e, Swap) or include_pools:
                yield e


def format_event(e: Swap | PoolEvent) -> str:
    when = f"slot {e.slot}" if e.slot is not None else "slot ?"
    if isinstance(e, Swap):
        side = f" {e.side}" if e.side else ""
        return (f"{when} {e.program:<14} {e.event:<12}{side:<5} in {e.amount_in} out {e.amount_out} "
                f"pool {e.pool or '-'} mint {e.mint or '-'} sig {e.signature}")
    return f"{when} {e.program:<14} {e.kind:<12} pool {e.pool or '-'} mint {e.mint or '-'} sig {e.signature}"


@contextmanager
def _open(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdin
        return
    p = Path(path).expanduser()
    try:
        f = p.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError(f"stream decode: {path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"stream decode: {path}: is a directory, not a file of JSON lines") from None
    except OSError as exc:
        raise InputError(f"stream decode: {path}: cannot read it ({exc.strerror or exc})") from None
    with f:
        yield f


def decode_file(path: str, as_json: bool, include_pools: bool = False, out: TextIO | None = None,
                err: TextIO | None = None, text: bool = False) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    report = DecodeReport()
    with _open(path) as f:
        try:
            for e in decode_lines(f, report, include_pools):
                out.write((format_event(e) if text else json.dumps(e.to_json())) + "\n")
        except OSError as exc:  # a read error part-way (not a decode problem)
            raise InputError(f"stream decode: {path}: read failed after {report.lines} lines ({exc})") from None
    if as_json:
        err.write(json.dumps({"stream_decode": report.to_json()}) + "\n")
    else:
        err.write(f"dexscan stream decode: {report.lines} lines, {report.swaps} swaps, "
                  f"{report.pool_events} pool events\n")
        if report.unused_lines:
            err.write("lines not used, by reason: "
                      + ", ".join(f"{k}={v}" for k, v in sorted(report.unused_lines.items())) + "\n")
        if report.rejections:
            err.write("rejections, by reason: "
                      + ", ".join(f"{k}={v}" for k, v in sorted(report.rejections.items())) + "\n")
    return 0


def run_stream(settings: Any, args: argparse.Namespace) -> int:
    """``dexscan stream ACTION``; only ``decode`` so far."""
    if args.stream_command == "decode":
        return decode_file(args.file, args.json, args.all, text=args.text)
    raise InputError(f"stream: unknown action {args.stream_command!r}")


def add_parser(sub: Any) -> None:
    """The ``stream`` command's arguments, for :func:`dexscan.cli.build_parser`."""
    st = sub.add_parser(
        "stream", help="tools for the on-chain trade stream (decode recorded notifications)",
        description="Tools for the Solana WebSocket trade stream. `dexscan stream decode FILE` decodes "
                    "recorded logsNotification messages and getTransaction answers, one JSON value per line.")
    actions = st.add_subparsers(dest="stream_command", metavar="ACTION", required=True,
                                help="what to do (`decode`)")
    dec = actions.add_parser(
        "decode", help="decode recorded logsNotification / getTransaction JSON lines into swaps",
        description="Reads JSON lines (raw logsNotification messages or getTransaction answers, json or "
                    "jsonParsed) and prints each decoded swap as one JSON object; failed transactions record "
                    "nothing; lines that give nothing are counted by reason on stderr. Exit 0 when the file was "
                    "read, 2 when it could not be.")
    dec.add_argument("file", metavar="FILE", help="a file of JSON lines, or - for stdin")
    dec.add_argument("--json", action="store_true",
                     help="also the counts (lines, swaps, unused lines and rejections by reason) as one JSON object "
                          "on stderr; stdout is one JSON object per swap either way")
    dec.add_argument("--all", action="store_true", help="also print new pools and graduations")
    dec.add_argument("--text", action="store_true", help="a readable line per swap instead of JSON")
