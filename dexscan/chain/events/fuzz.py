"""Seeded mutations of real notifications through the decoders: no crash, every rejection named.

:func:`seed_corpus` builds ``logsNotification`` messages and ``getTransaction`` answers from the real
mainnet transactions in ``../shared/data/onchain`` (when given) plus hand-built ones for every
program (so the fuzzer has seeds without that folder). :func:`mutate` damages one at the JSON,
log-line, base64 or byte level; :func:`run` pushes ``n`` mutants through
:func:`~dexscan.chain.events.dispatch.decode_any` and reports counts: decoded events, rejections by
reason, crashes (an exception escaping, or the dispatcher's ``internal_error`` safety net firing)
and malformed events (any event whose fields are not what the type promises). Deterministic for a
seed. Used by ``tests/unit/test_events_fuzz.py`` and ``scripts/fuzz_decoders.py``.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import struct
from collections import Counter
from pathlib import Path
from typing import Any

from dexscan.chain.events.dispatch import decode_any
from dexscan.chain.events.model import PROGRAM_NAMES, PoolEvent, Swap
from dexscan.chain.events.registry import PROGRAM_IDS, PROGRAMS

U64_MAX = 2**64 - 1


def _note(sig: str, slot: int, logs: list[str], err: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "logsNotification", "params": {
        "result": {"context": {"slot": slot}, "value": {"signature": sig, "err": err, "logs": logs}},
        "subscription": 1}}


def _wrap(pid: str, *lines: str) -> list[str]:
    return [f"Program {pid} invoke [1]", "Program log: Instruction: Swap", *lines,
            f"Program {pid} consumed 1000 of 2000 compute units", f"Program {pid} success"]


def _data(raw: bytes) -> str:
    return "Program data: " + base64.b64encode(raw).decode()


def synthetic_seeds() -> list[Any]:
    """One hand-built notification per program and event kind (bytes per the documented layouts)."""
    k = bytes(range(32))
    seeds: list[Any] = []
    ray = PROGRAM_IDS["raydium_amm_v4"]
    seeds.append(_note("s-ray", 1, _wrap(ray, "Program log: ray_log: " + base64.b64encode(
        struct.pack("<B7Q", 3, 5_000, 1, 2, 9_000, 10**12, 10**11, 4_900)).decode())))
    for pid, spec in PROGRAMS.items():
        for disc, (name, _fn) in spec.events.items():
            body = bytes((i * 7 + len(name)) % 256 for i in range(400))
            raw = disc + k + body[:360]
            if name == "CreateEvent":
                raw = disc + b"".join(struct.pack("<I", 3) + b"abc" for _ in range(3)) + k * 5
            seeds.append(_note(f"s-{spec.name}-{name}", 2, _wrap(pid, _data(raw))))
    return seeds


def seed_corpus(data_dir: Path | None) -> list[Any]:
    """Synthetic seeds, plus (when ``data_dir`` exists) every real transaction as a getTransaction
    answer and as the logsNotification the WebSocket would have sent for it."""
    seeds = synthetic_seeds()
    if data_dir is None or not data_dir.is_dir():
        return seeds
    for path in sorted(data_dir.glob("*/*.json")):
        if path.name.endswith(".expected.json"):
            continue
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(raw, dict):
            continue
        tx = raw.get("result", raw)
        if isinstance(tx, dict) and isinstance(tx.get("meta"), dict) and tx["meta"].get("logMessages"):
            seeds.append(raw)
            sigs = tx.get("transaction", {}).get("signatures") if isinstance(tx.get("transaction"), dict) else None
            sig = sigs[0] if sigs else path.stem
            seeds.append(_note(sig, tx.get("slot") or 1, list(tx["meta"]["logMessages"])))
        elif raw.get("logMessages"):
            logs = list(raw["logMessages"])
            if raw.get("program_id") and not any(" invoke [" in line for line in logs):
                logs = _wrap(raw["program_id"], *logs)
            seeds.append(_note(raw.get("signature") or path.stem, 3, logs))
    return seeds


# -- mutations -------------------------------------------------------------------------------------


def _value(obj: Any) -> dict[str, Any] | None:
    """The notification's value or the transaction's meta: where the logs are."""
    if not isinstance(obj, dict):
        return None
    try:
        if "params" in obj:
            return obj["params"]["result"]["value"]
        tx = obj.get("result", obj)
        return tx["meta"]
    except (KeyError, TypeError):
        return None


def _logs_key(holder: dict[str, Any]) -> str:
    return "logs" if "logs" in holder else "logMessages"


def _mutate_bytes(raw: bytes, rng: random.Random) -> bytes:
    b = bytearray(raw)
    op = rng.randrange(6)
    if op == 0 and b:
        del b[rng.randrange(len(b)):]  # truncate
    elif op == 1:
        b += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))  # extend
    elif op == 2 and b:
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)  # flip a bit
    elif op == 3 and b:
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] = rng.choice((0, 1, 2, 0x7F, 0x80, 0xFF))
    elif op == 4 and len(b) >= 8:  # another program's discriminator
        spec = rng.choice(list(PROGRAMS.values()))
        if spec.events:
            b[:8] = rng.choice(list(spec.events))
    elif op == 5 and len(b) > 12:  # a huge borsh length somewhere
        i = rng.randrange(8, len(b) - 4)
        b[i:i + 4] = struct.pack("<I", rng.choice((0xFFFFFFFF, 1 << 20, len(b))))
    return bytes(b)


def _mutate_line(line: str, rng: random.Random) -> str:
    for prefix in ("Program data: ", "Program log: ray_log: "):
        if line.startswith(prefix):
            text = line[len(prefix):]
            op = rng.randrange(4)
            if op == 0:  # malformed base64
                i = rng.randrange(len(text) + 1)
                return prefix + text[:i] + rng.choice("!*@ é\x00=") + text[i:]
            if op == 1:
                return prefix + text[: rng.randrange(len(text) + 1)]
            try:
                raw = base64.b64decode(text, validate=True)
            except ValueError:
                return line
            return prefix + base64.b64encode(_mutate_bytes(raw, rng)).decode()
    choices = [line[: rng.randrange(len(line) + 1)], "Log truncated", "Program " + line,
               f"Program {rng.choice(list(PROGRAMS))} invoke [{rng.randrange(9)}]",
               f"Program {rng.choice(list(PROGRAMS))} success", "Program data: " + line[-20:],
               f"Program {rng.choice(list(PROGRAMS))} failed: custom program error: 0x1"]
    return rng.choice(choices)


def _mutate_logs(logs: list[Any], rng: random.Random) -> list[Any]:
    logs = list(logs)
    op = rng.randrange(7)
    idx = [i for i, line in enumerate(logs) if isinstance(line, str) and ("data: " in line or "ray_log" in line)]
    if op <= 2 and idx:
        i = rng.choice(idx)
        logs[i] = _mutate_line(logs[i], rng)
    elif op == 3 and logs:
        i = rng.randrange(len(logs))
        logs[i] = _mutate_line(logs[i], rng) if isinstance(logs[i], str) else logs[i]
    elif op == 4 and logs:
        del logs[rng.randrange(len(logs))]
    elif op == 5 and logs:
        logs = [*logs[: rng.randrange(len(logs) + 1)], "Log truncated"]
    elif op == 6 and logs:
        i, j = rng.randrange(len(logs)), rng.randrange(len(logs))
        logs[i], logs[j] = logs[j], logs[i]
        if rng.random() < 0.3:
            logs.insert(rng.randrange(len(logs) + 1), rng.choice([None, 5, {"x": 1}, "", "Program "]))
    return logs


_JUNK: tuple[Any, ...] = (None, 0, -1, True, "x", "", [], {}, 2**70, 1.5, [None], {"Ok": None})


def _mutate_structure(obj: Any, rng: random.Random) -> Any:
    """Replace or drop one random key somewhere in the object."""
    path: list[tuple[Any, Any]] = []
    node = obj
    for _ in range(rng.randrange(1, 6)):
        if isinstance(node, dict) and node:
            k = rng.choice(list(node))
        elif isinstance(node, list) and node:
            k = rng.randrange(len(node))
        else:
            break
        path.append((node, k))
        node = node[k]
    if not path:
        return rng.choice(_JUNK)
    parent, k = path[-1]
    if isinstance(parent, dict) and rng.random() < 0.4:
        del parent[k]
    else:
        parent[k] = rng.choice(_JUNK)
    return obj


def mutate(seed: Any, rng: random.Random) -> Any:
    """One damaged copy of ``seed`` (never modifies ``seed``); may also be raw text that is not JSON."""
    obj = copy.deepcopy(seed)
    op = rng.randrange(10)
    holder = _value(obj)
    if op <= 4 and holder is not None and isinstance(holder.get(_logs_key(holder)), list):
        key = _logs_key(holder)
        for _ in range(rng.randrange(1, 4)):
            holder[key] = _mutate_logs(holder[key], rng)
        return obj
    if op == 5 and holder is not None:
        holder["err"] = rng.choice(({"InstructionError": [0, {"Custom": 1}]}, "x", 1, None))
        return obj
    if op == 6:  # the text, cut or corrupted
        text = json.dumps(obj)
        i = rng.randrange(len(text) + 1)
        text = text[:i] + rng.choice(("", "}", "\x00", "\ud800", '"')) + text[i + rng.randrange(3):]
        try:
            return json.loads(text)
        except ValueError:
            return text
    if op == 7 and holder is not None and "innerInstructions" in holder:
        inner = holder.get("innerInstructions")
        if isinstance(inner, list) and inner:
            g = rng.choice(inner)
            ixs = g.get("instructions") if isinstance(g, dict) else None
            if isinstance(ixs, list) and ixs and isinstance(ixs[-1], dict) and isinstance(ixs[-1].get("data"), str):
                d = ixs[-1]["data"]
                ixs[-1]["data"] = rng.choice((d[: rng.randrange(len(d) + 1)], d + "0", d.replace("1", "l"), d[::-1]))
                return obj
    return _mutate_structure(obj, rng)


# -- the run ---------------------------------------------------------------------------------------


def check_event(e: Any) -> str | None:
    """Why ``e`` is malformed (it must never be), or None."""
    if not isinstance(e, Swap | PoolEvent):
        return f"not an event: {type(e).__name__}"
    if not isinstance(e.signature, str) or not e.signature or e.program not in PROGRAM_NAMES:
        return "bad signature or program"
    if isinstance(e, Swap):
        for v in (e.amount_in, e.amount_out):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= U64_MAX:
                return f"bad amount {v!r}"
        if e.side not in (None, "buy", "sell"):
            return f"bad side {e.side!r}"
    for addr in (e.pool, e.mint):
        if addr is not None and (not isinstance(addr, str) or not 32 <= len(addr) <= 44):
            return f"bad address {addr!r}"
    return None


def run(n: int, seed: int = 13, data_dir: Path | None = None) -> dict[str, Any]:
    """``n`` seeded mutants through the decoders; the counts as a JSON-able dict."""
    rng = random.Random(seed)
    corpus = seed_corpus(data_dir)
    reasons: Counter[str] = Counter()
    crashes: list[str] = []
    malformed: list[str] = []
    events = inputs_with_events = not_json = 0
    for i in range(n):
        mutant = mutate(rng.choice(corpus), rng)
        if isinstance(mutant, str):  # what a line reader sees: not JSON at all
            not_json += 1
            reasons["not_json"] += 1
            continue
        try:
            out = decode_any(mutant)
        except Exception as exc:
            crashes.append(f"#{i}: {type(exc).__name__}: {exc}")
            continue
        for r in out.rejections:
            if not r.reason:
                crashes.append(f"#{i}: a rejection without a reason")
            if r.reason == "internal_error":
                crashes.append(f"#{i}: {r.detail}")
            reasons[r.reason] += 1
        for e in out.events:
            problem = check_event(e)
            if problem:
                malformed.append(f"#{i}: {problem}")
        events += len(out.events)
        inputs_with_events += bool(out.events)
    return {
        "mutations": n, "seed": seed, "corpus": len(corpus), "crashes": len(crashes), "crash_examples": crashes[:5],
        "malformed_events": len(malformed), "malformed_examples": malformed[:5], "events": events,
        "inputs_with_events": inputs_with_events, "not_json": not_json,
        "rejections": sum(reasons.values()), "rejections_by_reason": dict(sorted(reasons.items())),
    }
