"""Typed decoding of the JSON-RPC answers the mint inspector reads (``getMultipleAccounts``,
``getTokenLargestAccounts``).

solders' serde decoders refuse a malformed answer with "data did not match any variant of untagged
enum Resp": true, but it names no field, so a bad endpoint could not be told from a bad account. And
a ``getTokenLargestAccounts`` amount is a free string that ``int()`` would turn into a negative or
endless holder balance. Here every key the inspector relies on is checked and a refusal is an
:class:`~dexscan.errors.RpcBadAnswer` naming the field (``result.value[3].owner``). JSON-RPC error
answers still go through solders, so ``-32005`` and ``-32602`` keep their typed
:class:`~solana.rpc.core.RPCException` and the pool's failover rules, and so do the refusals of a
method (``reference/external-apis.md`` §5.1): ``-32010`` (the public endpoint's "… excluded from account
secondary indexes; this RPC method unavailable for key" for ``getTokenLargestAccounts`` of SPL Token
mints) and ``-32601`` (method not found), which the pool treats as answers, not failures.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, NamedTuple

from solana.rpc.core import RPCException
from solders.account import Account
from solders.errors import SerdeJSONError
from solders.pubkey import Pubkey
from solders.rpc.responses import GetMultipleAccountsResp, GetTokenLargestAccountsResp, RPCError

from dexscan.errors import RpcBadAnswer
from dexscan.sources.http import decode_json
from dexscan.sources.parse import describe_value as _show

GET_MULTIPLE_ACCOUNTS = "getMultipleAccounts"
GET_TOKEN_LARGEST_ACCOUNTS = "getTokenLargestAccounts"
U64_MAX = 2**64 - 1
_RPC_ERRORS = RPCError.__args__  # type: ignore[attr-defined]


def _u64(value: Any, method: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RpcBadAnswer(method, field, f"expected an unsigned integer, got {_show(value)}")
    if not 0 <= value <= U64_MAX:
        raise RpcBadAnswer(method, field, f"expected 0 to 2^64-1, got {_show(value)}")
    return value


def _obj(value: Any, method: str, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RpcBadAnswer(method, field, f"expected an object, got {_show(value)}")
    return value


def _list(value: Any, method: str, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise RpcBadAnswer(method, field, f"expected a list, got {_show(value)}")
    return value


def _address(value: Any, method: str, field: str) -> Pubkey:
    if not isinstance(value, str):
        raise RpcBadAnswer(method, field, f"expected a base58 address, got {_show(value)}")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise RpcBadAnswer(method, field, f"not a Solana address: {_show(value)}") from None


def _result(raw: str | bytes, method: str, parser: Any) -> tuple[int, list[Any]]:
    """``(context.slot, value)`` of a success answer; an error answer raises as solana-py would."""
    body = _body_or_raise(raw, method, parser)
    result = _obj(body.get("result"), method, "result")
    context = _obj(result.get("context"), method, "result.context")
    slot = _u64(context.get("slot"), method, "result.context.slot")
    return slot, _list(result.get("value"), method, "result.value")


def _account(entry: Any, method: str, field: str) -> Account | None:
    if entry is None:
        return None
    rec = _obj(entry, method, field)
    data = rec.get("data")
    if (not isinstance(data, list) or len(data) != 2 or not isinstance(data[0], str)
            or data[1] != "base64"):
        raise RpcBadAnswer(method, f"{field}.data", f"expected [base64 text, \"base64\"], got {_show(data)}")
    try:
        raw = base64.b64decode(data[0], validate=True)
    except (binascii.Error, ValueError):
        raise RpcBadAnswer(method, f"{field}.data", "not valid base64") from None
    space = rec.get("space")
    if space is not None and _u64(space, method, f"{field}.space") != len(raw):
        raise RpcBadAnswer(method, f"{field}.space", f"says {space} bytes, data holds {len(raw)}")
    executable = rec.get("executable")
    if not isinstance(executable, bool):
        raise RpcBadAnswer(method, f"{field}.executable", f"expected a boolean, got {_show(executable)}")
    return Account(
        lamports=_u64(rec.get("lamports"), method, f"{field}.lamports"),
        data=raw,
        owner=_address(rec.get("owner"), method, f"{field}.owner"),
        executable=executable,
        rent_epoch=_u64(rec.get("rentEpoch"), method, f"{field}.rentEpoch"),
    )


def decode_multiple_accounts(raw: str | bytes) -> tuple[int, list[Account | None]]:
    """``(slot, accounts)`` from a base64 ``getMultipleAccounts`` answer, ``None`` where none exists."""
    method = GET_MULTIPLE_ACCOUNTS
    slot, value = _result(raw, method, GetMultipleAccountsResp)
    return slot, [_account(entry, method, f"result.value[{i}]") for i, entry in enumerate(value)]


def decode_largest_accounts(raw: str | bytes) -> list[tuple[str, int]]:
    """``(token account, raw amount)`` rows of a ``getTokenLargestAccounts`` answer."""
    method = GET_TOKEN_LARGEST_ACCOUNTS
    _, value = _result(raw, method, GetTokenLargestAccountsResp)
    rows: list[tuple[str, int]] = []
    for i, entry in enumerate(value):
        field = f"result.value[{i}]"
        rec = _obj(entry, method, field)
        address = _address(rec.get("address"), method, f"{field}.address")
        amount = rec.get("amount")
        if not isinstance(amount, str) or not amount.isascii() or not amount.isdigit():
            raise RpcBadAnswer(method, f"{field}.amount", f"expected a decimal string, got {_show(amount)}")
        if len(amount) > 20 or int(amount) > U64_MAX:
            raise RpcBadAnswer(method, f"{field}.amount", f"expected at most 2^64-1, got {_show(amount)}")
        decimals = rec.get("decimals")
        if decimals is not None and _u64(decimals, method, f"{field}.decimals") > 255:
            raise RpcBadAnswer(method, f"{field}.decimals", f"expected 0 to 255, got {decimals}")
        rows.append((str(address), int(amount)))
    return rows


GET_SIGNATURES_FOR_ADDRESS = "getSignaturesForAddress"
GET_TRANSACTION = "getTransaction"


def _body_or_raise(raw: str | bytes, method: str, parser: Any) -> Mapping[str, Any]:
    """The answer as an object; an error answer raises as solana-py would (``RPCException`` for a
    JSON-RPC error object, :class:`RpcBadAnswer` for anything else that is not an answer)."""
    try:
        body = decode_json(raw)
    except ValueError as exc:
        raise RpcBadAnswer(method, "<body>", f"not JSON: {exc}") from None
    body = _obj(body, method, "<body>")
    if body.get("error") is not None:
        try:
            parsed = parser.from_json(raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))
        except SerdeJSONError:
            raise RpcBadAnswer(method, "error", f"not a JSON-RPC error object: {_show(body['error'])}") from None
        if isinstance(parsed, _RPC_ERRORS):
            raise RPCException(parsed)
        raise RpcBadAnswer(method, "error", f"the node answered an error: {_show(body['error'])}")
    return body


class SignatureRow(NamedTuple):
    """One row of a ``getSignaturesForAddress`` answer: ``err`` non-null is ``failed``; ``block_time``
    is None when the node does not know it."""

    signature: str
    failed: bool
    block_time: int | None


def decode_signatures(raw: str | bytes) -> list[SignatureRow]:
    """The rows of a ``getSignaturesForAddress`` answer, newest first."""
    from solders.rpc.responses import GetSignaturesForAddressResp

    method = GET_SIGNATURES_FOR_ADDRESS
    body = _body_or_raise(raw, method, GetSignaturesForAddressResp)
    rows: list[SignatureRow] = []
    for i, entry in enumerate(_list(body.get("result"), method, "result")):
        rec = _obj(entry, method, f"result[{i}]")
        sig = rec.get("signature")
        if not isinstance(sig, str) or not 64 <= len(sig) <= 90 or not sig.isalnum():
            raise RpcBadAnswer(method, f"result[{i}].signature", f"expected a base58 signature, got {_show(sig)}")
        block_time = rec.get("blockTime")
        known = isinstance(block_time, int) and not isinstance(block_time, bool)
        rows.append(SignatureRow(sig, rec.get("err") is not None, block_time if known else None))
    return rows


def decode_transaction_answer(raw: str | bytes) -> Mapping[str, Any] | None:
    """The ``result`` of a ``getTransaction`` answer (None: not found), for :mod:`dexscan.chain.events`,
    whose decoder checks every field it reads."""
    from solders.rpc.responses import GetTransactionResp

    body = _body_or_raise(raw, GET_TRANSACTION, GetTransactionResp)
    result = body.get("result")
    return None if result is None else _obj(result, GET_TRANSACTION, "result")
