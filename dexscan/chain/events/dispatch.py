"""Turns a ``logsNotification`` or a ``getTransaction`` answer into decoded events.

Logs are walked with the invoke stack: ``Program X invoke [n]`` pushes X, ``Program X success`` /
``Program X failed: ...`` pops it, and a ``Program data:`` or ``Program log: ray_log:`` line belongs to
the program on top (several programs share discriminators: CPMM's and CLMM's SwapEvent are also
Jupiter's and OKX's). ``Log truncated`` ends the logs: what came before is decoded, the rest is
counted as a ``log_truncated`` rejection. A failed transaction (``err`` not null) yields no event.

A ``getTransaction`` answer adds the self-CPI inner instructions (``EVENT_IX_TAG`` + event): the only
place Meteora DLMM's Swap appears, and a second copy of pump.fun's and PumpSwap's events, which is
matched against the log copy by its bytes so each event counts once (and fills in when the logs
were truncated). Every function here is pure and total: bad input becomes a
:class:`~dexscan.chain.events.model.Rejection`, never an exception.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dexscan.chain.events.codec import EVENT_IX_TAG, b58decode, b58encode, b64decode, side_from_mints
from dexscan.chain.events.layouts import read_fields
from dexscan.chain.events.model import Decoded, Event, Rejection, Swap, TxContext
from dexscan.chain.events.raydium_amm_v4 import LAYOUTS as RAY_LAYOUTS
from dexscan.chain.events.raydium_amm_v4 import LOG_PREFIX as RAY_LOG_PREFIX
from dexscan.chain.events.raydium_amm_v4 import decode_ray_log
from dexscan.chain.events.registry import PROGRAMS, RAYDIUM_AMM_V4

_DATA = "Program data: "
_RAY_LOG = RAY_LOG_PREFIX
_TRUNCATED = "Log truncated"


def decode_payload(program_id: str, payload: bytes, ctx: TxContext, index: int) -> Event | Rejection | None:
    """One Anchor event payload (discriminator + borsh) of ``program_id``; None when the program is
    not one dexscan decodes (a foreign program's event is not an error)."""
    spec = PROGRAMS.get(program_id)
    if spec is None:
        return None
    if len(payload) < 8:
        return Rejection("short_payload", f"{len(payload)} bytes, no discriminator", spec.name)
    entry = spec.events.get(bytes(payload[:8]))
    if entry is None:
        return Rejection("other_event", f"discriminator {bytes(payload[:8]).hex()}", spec.name)
    return entry[1](payload, ctx, index)


def _add(out: Decoded, got: Event | Rejection | None) -> None:
    if got is None:
        return
    if isinstance(got, Rejection):
        out.rejections.append(got)
    else:
        out.events.append(got)


def decode_logs(logs: Any, ctx: TxContext, out: Decoded, default_program: str | None = None,
                seen: Counter[tuple[str, bytes]] | None = None,
                locate: list[tuple[int, int, int | None]] | None = None) -> None:
    """Decode ``logs`` (a list of log lines) into ``out``. ``default_program`` is credited when a
    data line comes with no invoke line above it (log excerpts). ``seen`` collects the payloads
    decoded, for matching their self-CPI copies. ``locate`` collects, for each ray_log event, the
    instruction that emitted it: (event position, top-level index, inner index or None), counted
    from the invoke lines (each ``invoke [1]`` is the next top-level instruction, each deeper invoke
    the next inner instruction of it, as ``innerInstructions`` lists them)."""
    if not isinstance(logs, list):
        out.reject("bad_logs", f"logs is {type(logs).__name__}, not a list")
        return
    stack: list[str] = []
    frames: list[tuple[int, int | None]] = []  # parallel to stack, only when locating
    top_ix, inner_ix = -1, -1
    for line in logs:
        if not isinstance(line, str):
            out.reject("bad_log_line", f"log line is {type(line).__name__}")
            continue
        # Most lines are invokes, successes, "consumed" and plain logs: tell them apart by their ends
        # first (cheap), and look closer only at the few that can matter.
        if line[-1:] == "]":  # "Program X invoke [n]" (or a log line that happens to end in "]")
            if line.startswith("Program ") and " invoke [" in line:
                who = line[8:line.find(" ", 8)]
                if not who.endswith(":"):
                    stack.append(who)
                    if locate is not None:
                        if line.endswith(" invoke [1]"):
                            top_ix, inner_ix = top_ix + 1, -1
                            frames.append((top_ix, None))
                        else:
                            inner_ix += 1
                            frames.append((top_ix, inner_ix))
            continue
        if line.endswith(" success"):
            if line.startswith("Program "):
                _pop(stack, line[8:-8])
                del frames[len(stack):]
            continue
        kind = line[8:13]
        if kind == "data:" and line.startswith(_DATA):
            top = stack[-1] if stack else default_program
            if top is None or top not in PROGRAMS:
                continue
            payload = b64decode(line[14:])
            if payload is None:
                out.reject("bad_base64", f"Program data is not base64: {line[14:54]!r}", PROGRAMS[top].name)
                continue
            got = decode_payload(top, payload, ctx, len(out.events))
            _add(out, got)
            if seen is not None and got is not None and not isinstance(got, Rejection):
                seen[(top, payload)] += 1
        elif kind == "log: ":
            if line.startswith(_RAY_LOG):
                top = stack[-1] if stack else default_program
                if top == RAYDIUM_AMM_V4:
                    got = decode_ray_log(line[len(_RAY_LOG):], ctx, len(out.events))
                    if locate is not None and got is not None and not isinstance(got, Rejection) and frames \
                            and len(frames) == len(stack):
                        locate.append((len(out.events), *frames[-1]))
                    _add(out, got)
        elif " failed" in line and line.startswith("Program "):  # "Program X failed: <why>"
            sp = line.find(" ", 8)
            if line.startswith(" failed", sp):
                _pop(stack, line[8:sp])
                del frames[len(stack):]
        elif line.startswith(_TRUNCATED):
            out.truncated = True
            out.reject("log_truncated", "logs end with 'Log truncated'; later events are lost")
            return


def _pop(stack: list[str], who: str) -> None:
    """``who`` returned: pop it (and anything above it, if the logs skipped a return)."""
    if stack and stack[-1] == who:
        stack.pop()
    elif who in stack:
        del stack[len(stack) - 1 - stack[::-1].index(who):]


def payload_fields(program_id: str, payload: bytes | str) -> tuple[str, dict[str, Any]] | None:
    """(event name, every field the payload holds) for an event of ``program_id``: an Anchor payload
    (bytes, discriminator first), or for Raydium AMM v4 the ray_log base64 text. None if unknown."""
    spec = PROGRAMS.get(program_id)
    if spec is None:
        return None
    if isinstance(payload, str):
        raw = b64decode(payload.strip())
        if raw is None or not raw or program_id != RAYDIUM_AMM_V4 or raw[0] not in RAY_LAYOUTS:
            return None
        name = RAY_LAYOUTS[raw[0]][0]
        return name, read_fields(raw, spec.name, name + "Log", start=0)
    entry = spec.events.get(bytes(payload[:8]))
    if entry is None:
        return None
    return entry[0], read_fields(payload, spec.name, entry[0])


# -- inputs ------------------------------------------------------------------------------------


def _int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def decode_notification(msg: Any) -> Decoded:
    """A ``logsNotification`` message exactly as the WebSocket sends it (``params.result`` with
    ``context.slot`` and ``value`` {signature, err, logs}), or its ``params.result``, or its ``value``."""
    return _decode_safely(_notification, msg)


def _decode_safely(decode: Callable[[Any, Decoded], None], raw: Any) -> Decoded:
    out = Decoded()
    try:
        decode(raw, out)
    except Exception as exc:  # a safety net: the decoders are total, the fuzz test proves it
        out.events.clear()
        out.reject("internal_error", f"{type(exc).__name__}: {exc}")
    return out


def _notification(msg: Any, out: Decoded) -> None:
    if not isinstance(msg, dict):
        out.reject("not_an_object", f"message is {type(msg).__name__}")
        return
    result: Any = msg
    if "params" in msg:
        params = msg["params"]
        result = params.get("result") if isinstance(params, dict) else None
    slot = None
    if isinstance(result, dict) and "value" in result:
        ctx_obj = result.get("context")
        slot = _int_or_none(ctx_obj.get("slot")) if isinstance(ctx_obj, dict) else None
        value = result["value"]
    else:
        value = result
    if not isinstance(value, dict) or "logs" not in value:
        out.reject("not_a_notification", "no params.result.value.logs")
        return
    sig = value.get("signature")
    if not isinstance(sig, str) or not sig:
        out.reject("missing_field", "value.signature")
        return
    out.signature, out.slot = sig, slot
    if value.get("err") is not None:
        out.failed = True
        out.reject("tx_failed", f"err={str(value.get('err'))[:80]}")
        return
    decode_logs(value.get("logs"), TxContext(sig, slot), out)


def decode_transaction(answer: Any) -> Decoded:
    """A ``getTransaction`` answer: the whole JSON-RPC response or its ``result``; encodings
    ``json`` and ``jsonParsed`` (and ``base64``, whose logs are still decoded)."""
    return _decode_safely(_transaction, answer)


def _transaction(answer: Any, out: Decoded) -> None:
    if not isinstance(answer, dict):
        out.reject("not_an_object", f"answer is {type(answer).__name__}")
        return
    tx: Any = answer
    if "jsonrpc" in answer or ("result" in answer and "meta" not in answer):
        if answer.get("error") is not None:
            out.reject("rpc_error", str(answer.get("error"))[:120])
            return
        tx = answer.get("result")
        if tx is None:
            out.reject("tx_not_found", "result is null")
            return
        if isinstance(tx, bool | int):  # a logsSubscribe / logsUnsubscribe answer in a recorded feed
            out.reject("rpc_answer", f"a subscription answer (result {tx}), not a transaction")
            return
    if not isinstance(tx, dict) or not isinstance(tx.get("meta"), dict) or "transaction" not in tx:
        out.reject("not_a_transaction", "no meta/transaction")
        return
    meta, body = tx["meta"], tx["transaction"]
    sig, keys = _signature_and_keys(body, meta)
    if sig is None:
        out.reject("missing_field", "transaction.signatures[0]")
        return
    slot, block_time = _int_or_none(tx.get("slot")), _int_or_none(tx.get("blockTime"))
    out.signature, out.slot = sig, slot
    if meta.get("err") is not None:
        out.failed = True
        out.reject("tx_failed", f"err={str(meta.get('err'))[:80]}")
        return
    ctx = TxContext(sig, slot, block_time, keys[0] if keys else None)
    seen: Counter[tuple[str, bytes]] = Counter()
    located: list[tuple[int, int, int | None]] = []
    logs = meta.get("logMessages")
    if logs is not None:
        decode_logs(logs, ctx, out, seen=seen, locate=located)
    for pos, top, inner in located:  # ray_log names no pool; the instruction that logged it does
        ix = _instruction(body, meta, top, inner)
        if ix is not None:
            out.events[pos] = _with_raydium_accounts(out.events[pos], ix, keys)
    decode_inner_instructions(meta.get("innerInstructions"), keys, ctx, out, seen)


def decode_inner_instructions(inner: Any, keys: list[str], ctx: TxContext, out: Decoded,
                              seen: Counter[tuple[str, bytes]] | None = None) -> None:
    """Self-CPI events (``EVENT_IX_TAG`` + event) among the inner instructions; those already seen
    in the logs (same program, same bytes) are skipped."""
    if inner is None:
        return
    if not isinstance(inner, list):
        out.reject("bad_inner_instructions", f"innerInstructions is {type(inner).__name__}")
        return
    for group in inner:
        ixs = group.get("instructions") if isinstance(group, dict) else None
        if not isinstance(ixs, list):
            out.reject("bad_inner_instructions", "group without an instruction list")
            continue
        for ix in ixs:
            if not isinstance(ix, dict):
                continue
            pid = ix.get("programId")
            if pid is None:
                idx = ix.get("programIdIndex")
                pid = keys[idx] if isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < len(keys) \
                    else None
            if pid not in PROGRAMS or not isinstance(ix.get("data"), str):
                continue
            decode_event_instruction(pid, ix["data"], ctx, out, seen)


def decode_event_instruction(program_id: str, data: str | bytes, ctx: TxContext, out: Decoded,
                             seen: Counter[tuple[str, bytes]] | None = None) -> None:
    """One instruction of ``program_id`` (data base58 text or bytes): an event when it is a self-CPI."""
    if isinstance(data, str):
        try:
            raw = b58decode(data)
        except ValueError:
            out.reject("bad_base58", "inner instruction data", PROGRAMS[program_id].name)
            return
    else:
        raw = data
    if raw[:8] != EVENT_IX_TAG:
        return  # an ordinary instruction (a swap, a transfer), not an event
    payload = raw[8:]
    if seen is not None and seen[(program_id, payload)] > 0:
        seen[(program_id, payload)] -= 1
        return
    _add(out, decode_payload(program_id, payload, ctx, len(out.events)))


def _instruction(body: Any, meta: dict[str, Any], top: int, inner: int | None) -> dict[str, Any] | None:
    """Top-level instruction ``top``, or inner instruction ``inner`` of it; None when absent."""
    try:
        if inner is None:
            ix = body["message"]["instructions"][top]
        else:
            group = next(g for g in meta["innerInstructions"] if isinstance(g, dict) and g.get("index") == top)
            ix = group["instructions"][inner]
    except (KeyError, IndexError, TypeError, StopIteration):
        return None
    return ix if isinstance(ix, dict) else None


#: Raydium AMM v4 instruction tag -> index of the amm (pool) account; Initialize2 also names the mints
_RAY_AMM_ACCOUNT = {9: 1, 11: 1, 16: 1, 17: 1, 1: 4}


def _with_raydium_accounts(ev: Event, ix: dict[str, Any], keys: list[str]) -> Event:
    """``ev`` (from a ray_log) with the pool, and for Initialize2 the mints, its instruction names:
    swaps (tags 9, 11, 16, 17) name the amm at account 1, Initialize2 (tag 1) at 4 with the coin
    and pc mints at 8 and 9."""
    pid = ix.get("programId")
    if pid is None:
        idx = ix.get("programIdIndex")
        pid = keys[idx] if isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < len(keys) else None
    data, accounts = ix.get("data"), ix.get("accounts")
    if pid != RAYDIUM_AMM_V4 or not isinstance(data, str) or not isinstance(accounts, list):
        return ev
    try:
        raw = b58decode(data)
    except ValueError:
        return ev
    amm_at = _RAY_AMM_ACCOUNT.get(raw[0]) if raw else None
    named = [keys[a] if isinstance(a, int) and not isinstance(a, bool) and 0 <= a < len(keys)
             else a if isinstance(a, str) else "" for a in accounts]
    if amm_at is None or amm_at >= len(named) or not named[amm_at]:
        return ev
    if isinstance(ev, Swap):
        return replace(ev, pool=named[amm_at]) if ev.event in ("SwapBaseIn", "SwapBaseOut") and amm_at == 1 else ev
    if ev.event == "Init" and amm_at == 4 and len(named) > 9:
        side, mint = side_from_mints(named[9], named[8])  # "buy" = pc is the quote: coin is the token
        quote = named[9] if side == "buy" else named[8] if side == "sell" else None
        return replace(ev, pool=named[4], mint=mint, quote_mint=quote)
    return ev


def _signature_and_keys(body: Any, meta: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(first signature, account keys incl. loaded addresses) of a json/jsonParsed/base64 transaction."""
    if isinstance(body, list) and body and isinstance(body[0], str):  # ["<base64>", "base64"]
        raw = b64decode(body[0])
        if raw is None or len(raw) < 65 or not 0 < raw[0] < 0x80:
            return None, []
        return b58encode(raw[1:65]), []
    if not isinstance(body, dict):
        return None, []
    sigs = body.get("signatures")
    sig = sigs[0] if isinstance(sigs, list) and sigs and isinstance(sigs[0], str) and sigs[0] else None
    message = body.get("message")
    keys: list[str] = []
    raw_keys = message.get("accountKeys") if isinstance(message, dict) else None
    if isinstance(raw_keys, list):
        for k in raw_keys:
            if isinstance(k, str):
                keys.append(k)
            elif isinstance(k, dict) and isinstance(k.get("pubkey"), str):
                keys.append(k["pubkey"])
            else:
                keys.append("")
        parsed = bool(raw_keys) and isinstance(raw_keys[0], dict)
        loaded = meta.get("loadedAddresses")
        if not parsed and isinstance(loaded, dict):  # jsonParsed lists them among accountKeys already
            for part in ("writable", "readonly"):
                extra = loaded.get(part)
                if isinstance(extra, list):
                    keys.extend(k if isinstance(k, str) else "" for k in extra)
    return sig, keys


def decode_any(obj: Any) -> Decoded:
    """A logsNotification (or its result/value) or a getTransaction answer, told apart by shape."""
    if isinstance(obj, dict):
        if obj.get("method") == "logsNotification" or "params" in obj:
            return decode_notification(obj)
        res = obj.get("result")
        if isinstance(res, dict) and "value" in res:
            return decode_notification(obj)
        if "value" in obj or "logs" in obj:
            return decode_notification(obj)
        if "meta" in obj or "jsonrpc" in obj or "result" in obj or "error" in obj:
            return decode_transaction(obj)
    out = Decoded()
    out.reject("unknown_shape", "neither a logsNotification nor a getTransaction answer")
    return out
