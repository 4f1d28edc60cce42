"""Mint safety facts read from the chain: authorities, Token-2022 extensions, holder concentration.

The layout is parsed here from raw account bytes (``getMultipleAccounts``, base64, ≤ 100 keys per
call) rather than trusted from a third party:

* the owner must be the SPL Token or Token-2022 program;
* the 82-byte base mint is parsed with solders ``Mint.from_bytes(data[:82])`` (Token-2022 mints are
  longer, so the slice matters);
* a Token-2022 mint with extensions has the account type byte at offset 165 (``1`` = mint) and TLV
  entries after it (``u16`` type, ``u16`` length, value), decoded into
  :class:`~dexscan.domain.MintExtension` with the names and camelCase fields of RPC ``jsonParsed``;
* the top-10 holder share comes from ``getTokenLargestAccounts``, minus pool vaults and bonding
  curves: token accounts whose owner is a known pool authority, or an account owned by a known DEX
  program (:data:`DEX_PROGRAMS`). The public mainnet endpoint refuses that method for SPL Token mints
  (``-32010``) and several providers disable it (``reference/external-apis.md`` §5.1): when every
  endpoint refuses, the share is ``holders_unavailable`` ("getTokenLargestAccounts unavailable from
  <endpoint>"), the mint's other facts stand, and it is asked again after the re-check interval.

Any read failure yields ``MintFacts(read_error=...)``: the token is *unverified*, never safe.
Renounced authorities are permanent, so a mint whose risks can no longer change is cached forever;
everything else is re-read after ``universe.recheck_failed_after_s``.

Trust (fail closed): one endpoint's word can make a token fail, never pass. When two or more RPC
endpoints are configured, every read that found an initialized mint is read again from a *different*
endpoint; only facts both agree on (:func:`disagreement`) are used and cached, vouched by both
(``MintFacts.vouched_by``). A disagreement, or no second endpoint answering, leaves the mint
unverified (not cached, read again next round); disagreements are counted on both endpoints and
logged with both names. With one endpoint configured its word stands, and ``vouched_by`` says it was
the only one. A cached fact counts only while enough of the endpoints that vouched for it are still
configured (two when two or more are); otherwise it is read and confirmed again.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from solders.account import Account
from solders.pubkey import Pubkey
from solders.token.state import Mint

# The address rule lives in the dependency-free ``dexscan.address`` (the parsing edge of every provider
# client uses it too); re-exported here, where callers have always imported it from.
from dexscan.address import B58_ALPHABET as B58_ALPHABET
from dexscan.address import address_problem as address_problem
from dexscan.address import b58decode as b58decode
from dexscan.address import is_address as is_address
from dexscan.chain.rpc import RpcMethodRefused, RpcPool, Served
from dexscan.clock import Clock
from dexscan.config import Settings
from dexscan.domain import MintExtension, MintFacts
from dexscan.errors import RpcError
from dexscan.store import Store

log = logging.getLogger(__name__)

TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
#: Owner program -> the name RPC ``jsonParsed`` gives it (``MintFacts.owner_program``).
TOKEN_PROGRAMS: Mapping[str, str] = {TOKEN_PROGRAM: "spl-token", TOKEN_2022_PROGRAM: "spl-token-2022"}

MINT_LEN = 82
ACCOUNT_LEN = 165
MULTISIG_LEN = 355
ACCOUNT_TYPE_MINT = 1
ACCOUNT_TYPE_ACCOUNT = 2

#: DEX programs whose accounts (pools, bonding curves, vault authorities) hold tokens for a pool.
#: A largest-holder token account owned by an account of one of these programs is liquidity, not a holder.
DEX_PROGRAMS: Mapping[str, str] = {
    "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8": "Raydium AMM v4",
    "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C": "Raydium CPMM",
    "CAMMCzo5YL8w4VFF8KVHrK22GGUsp5VTaW7grrKgrWqK": "Raydium CLMM",
    "LanMV9sAd7wArD4vJFi2qDdfnVhFxYSUg6eADduJ3uj": "Raydium LaunchLab",
    "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA": "PumpSwap",
    "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P": "pump.fun bonding curve",
    "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo": "Meteora DLMM",
    "Eo7WjKq67rjJQSZxS6z3YkapzY3eMj6Xy8X5EQVn5UaB": "Meteora DAMM v1",
    "24Uqj9JCLxUeoC3hGfh5W3s9FM9uCHDS2SG3LYwBpyTi": "Meteora Vault (DAMM v1 reserves)",
    "cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG": "Meteora DAMM v2",
    "dbcij3LWUppWqq96dh6gJWwBifmcGfLSB5D4DuSMaqN": "Meteora DBC",
    "whirLbMiicVdio4qvUfM5KAg6Ct8VwpYzGff3uctyCc": "Orca Whirlpool",
}

#: Vault authorities that are program-derived addresses without data of their own, so the owner
#: program check cannot see them. Each is ``find_program_address([seed], program)``, checked.
POOL_AUTHORITIES: Mapping[str, str] = {
    "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1": "Raydium AMM v4 authority",  # b"amm authority"
    "GpMZbSM2GgvTKHJirzeGfMFoaZ8UR2X7F4v8vHTvxFbL": "Raydium CPMM authority",  # b"vault_and_lp_mint_auth_seed"
    "WLHv2UAZm6z4KyaaELi5pjdbJh6RESMva1Rnn8pJVVh": "Raydium LaunchLab authority",  # b"vault_auth_seed"
    "HLnpSz9h2S4hiLQ43rnSD9XkcUThA7B8hQMKmDaiTLcC": "Meteora DAMM v2 authority",  # b"pool_authority"
    "FhVo3mqL8PW5pH5U2CN4XE33DokiyZnUwuGpH2hmHLuM": "Meteora DBC authority",  # b"pool_authority"
}

AccountKind = Literal["mint", "token-account", "multisig", "uninitialized", "other"]


# -- raw layouts --------------------------------------------------------------------------------


def account_kind(owner: str, data: bytes) -> AccountKind:
    """What a token-program account is, by the program's own rules (length, then account type byte)."""
    if owner not in TOKEN_PROGRAMS:
        return "other"
    n = len(data)
    if n == MINT_LEN:
        return "mint"
    if n == ACCOUNT_LEN:
        return "token-account"
    if n == MULTISIG_LEN and owner == TOKEN_PROGRAM:
        return "multisig"
    if n > ACCOUNT_LEN and owner == TOKEN_2022_PROGRAM:
        if data[ACCOUNT_LEN] == ACCOUNT_TYPE_MINT:
            return "mint"
        if data[ACCOUNT_LEN] == ACCOUNT_TYPE_ACCOUNT:
            return "token-account"
        if n == MULTISIG_LEN:
            return "multisig"
        return "uninitialized"
    return "other"


def _pubkey(raw: bytes) -> str | None:
    """An ``OptionalNonZeroPubkey``: all zeros means none."""
    return None if not any(raw) else str(Pubkey.from_bytes(raw))


def _fee(raw: bytes) -> dict[str, int]:
    epoch, maximum, bps = struct.unpack("<QQH", raw)
    return {"epoch": epoch, "maximumFee": maximum, "transferFeeBasisPoints": bps}


def _rust_float(v: float) -> str:
    """f64 as agave prints it into jsonParsed (``1`` rather than ``1.0``)."""
    return str(int(v)) if v.is_integer() else repr(v)


def _b64_or_none(raw: bytes) -> str | None:
    return base64.b64encode(raw).decode() if any(raw) else None


def _borsh_str(data: bytes, off: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", data, off)
    end = off + 4 + n
    if end > len(data):
        raise ValueError("string runs past the end")
    return data[off + 4:end].decode("utf-8"), end


def _token_metadata(v: bytes) -> dict[str, Any]:
    off = 64
    name, off = _borsh_str(v, off)
    symbol, off = _borsh_str(v, off)
    uri, off = _borsh_str(v, off)
    (count,) = struct.unpack_from("<I", v, off)
    off += 4
    extra: list[list[str]] = []
    for _ in range(count):
        key, off = _borsh_str(v, off)
        value, off = _borsh_str(v, off)
        extra.append([key, value])
    return {"updateAuthority": _pubkey(v[:32]), "mint": str(Pubkey.from_bytes(v[32:64])), "name": name,
            "symbol": symbol, "uri": uri, "additionalMetadata": extra}


_ACCOUNT_STATES = {0: "uninitialized", 1: "initialized", 2: "frozen"}

_Decoder = Callable[[bytes], dict[str, Any]]

#: Token-2022 ``ExtensionType`` -> (jsonParsed name, value length or None if variable, decoder).
EXTENSIONS: Mapping[int, tuple[str, int | None, _Decoder]] = {
    1: ("transferFeeConfig", 108, lambda v: {
        "transferFeeConfigAuthority": _pubkey(v[0:32]), "withdrawWithheldAuthority": _pubkey(v[32:64]),
        "withheldAmount": struct.unpack_from("<Q", v, 64)[0],
        "olderTransferFee": _fee(v[72:90]), "newerTransferFee": _fee(v[90:108])}),
    2: ("transferFeeAmount", 8, lambda v: {"withheldAmount": struct.unpack("<Q", v)[0]}),
    3: ("mintCloseAuthority", 32, lambda v: {"closeAuthority": _pubkey(v)}),
    4: ("confidentialTransferMint", 65, lambda v: {
        "authority": _pubkey(v[0:32]), "autoApproveNewAccounts": bool(v[32]),
        "auditorElgamalPubkey": _b64_or_none(v[33:65])}),
    5: ("confidentialTransferAccount", None, lambda v: {}),
    6: ("defaultAccountState", 1, lambda v: {"accountState": _ACCOUNT_STATES.get(v[0], str(v[0]))}),
    7: ("immutableOwner", 0, lambda v: {}),
    8: ("memoTransfer", 1, lambda v: {"requireIncomingTransferMemos": bool(v[0])}),
    9: ("nonTransferable", 0, lambda v: {}),
    10: ("interestBearingConfig", 52, lambda v: {"rateAuthority": _pubkey(v[0:32]), **dict(zip(
        ("initializationTimestamp", "preUpdateAverageRate", "lastUpdateTimestamp", "currentRate"),
        struct.unpack_from("<qhqh", v, 32), strict=True))}),
    11: ("cpiGuard", 1, lambda v: {"lockCpi": bool(v[0])}),
    12: ("permanentDelegate", 32, lambda v: {"delegate": _pubkey(v)}),
    13: ("nonTransferableAccount", 0, lambda v: {}),
    14: ("transferHook", 64, lambda v: {"authority": _pubkey(v[0:32]), "programId": _pubkey(v[32:64])}),
    15: ("transferHookAccount", 1, lambda v: {"transferring": bool(v[0])}),
    16: ("confidentialTransferFeeConfig", 129, lambda v: {
        "authority": _pubkey(v[0:32]), "withdrawWithheldAuthorityElgamalPubkey": _b64_or_none(v[32:64]),
        "harvestToMintEnabled": bool(v[64]), "withheldAmount": base64.b64encode(v[65:129]).decode()}),
    17: ("confidentialTransferFeeAmount", None, lambda v: {}),
    18: ("metadataPointer", 64, lambda v: {"authority": _pubkey(v[0:32]), "metadataAddress": _pubkey(v[32:64])}),
    19: ("tokenMetadata", None, _token_metadata),
    20: ("groupPointer", 64, lambda v: {"authority": _pubkey(v[0:32]), "groupAddress": _pubkey(v[32:64])}),
    21: ("tokenGroup", 80, lambda v: {
        "updateAuthority": _pubkey(v[0:32]), "mint": str(Pubkey.from_bytes(v[32:64])),
        "size": struct.unpack_from("<Q", v, 64)[0], "maxSize": struct.unpack_from("<Q", v, 72)[0]}),
    22: ("groupMemberPointer", 64, lambda v: {"authority": _pubkey(v[0:32]), "memberAddress": _pubkey(v[32:64])}),
    23: ("tokenGroupMember", 72, lambda v: {
        "mint": str(Pubkey.from_bytes(v[0:32])), "group": str(Pubkey.from_bytes(v[32:64])),
        "memberNumber": struct.unpack_from("<Q", v, 64)[0]}),
    24: ("confidentialMintBurn", None, lambda v: {}),
    25: ("scaledUiAmountConfig", 56, lambda v: {
        "authority": _pubkey(v[0:32]), "multiplier": _rust_float(struct.unpack_from("<d", v, 32)[0]),
        "newMultiplierEffectiveTimestamp": struct.unpack_from("<q", v, 40)[0],
        "newMultiplier": _rust_float(struct.unpack_from("<d", v, 48)[0])}),
    26: ("pausableConfig", 33, lambda v: {"authority": _pubkey(v[0:32]), "paused": bool(v[32])}),
    27: ("pausableAccount", 0, lambda v: {}),
}


def parse_extensions(data: bytes) -> tuple[MintExtension, ...]:
    """Token-2022 TLV extensions of a mint or token account (data longer than 165 bytes).

    An entry that cannot be decoded becomes ``unparseableExtension`` with its ``type``, so a gate
    can refuse what it does not understand instead of missing it.
    """
    out: list[MintExtension] = []
    off = ACCOUNT_LEN + 1
    while off + 4 <= len(data):
        etype, length = struct.unpack_from("<HH", data, off)
        if etype == 0 and length == 0 and not any(data[off:]):
            break  # zero padding after the last entry
        value = data[off + 4:off + 4 + length]
        off += 4 + length
        known = EXTENSIONS.get(etype)
        if known is None or len(value) != length:
            out.append(MintExtension("unparseableExtension", {"type": etype}))
            continue
        name, size, decode = known
        try:
            if size is not None and len(value) != size:
                raise ValueError(f"{name} is {len(value)} bytes, expected {size}")
            out.append(MintExtension(name, decode(value)))
        except (ValueError, struct.error, UnicodeDecodeError):
            out.append(MintExtension("unparseableExtension", {"type": etype}))
    return tuple(out)


def mint_facts_from_account(mint: str, account: Account | None, checked_at: int, slot: int | None = None,
                            endpoint: str | None = None) -> MintFacts:
    """What one ``getMultipleAccounts`` entry says about ``mint`` (definite answers, no read errors)."""
    if account is None:
        return MintFacts(mint, checked_at, exists=False, slot=slot, endpoint=endpoint)
    owner = str(account.owner)
    data = bytes(account.data)
    program = TOKEN_PROGRAMS.get(owner, owner)
    base = MintFacts(mint, checked_at, exists=True, owner_program=program, slot=slot, endpoint=endpoint)
    if account_kind(owner, data) != "mint":
        return base
    try:
        m = Mint.from_bytes(data[:MINT_LEN])
    except ValueError:
        return base  # e.g. an allocated but never initialized mint
    if not m.is_initialized:
        return base
    return replace(
        base, is_mint=True, supply=m.supply, decimals=m.decimals,
        mint_authority=None if m.mint_authority is None else str(m.mint_authority),
        freeze_authority=None if m.freeze_authority is None else str(m.freeze_authority),
        extensions=parse_extensions(data) if len(data) > ACCOUNT_LEN else (),
    )


def token_account_owner(account: Account | None) -> str | None:
    """The wallet (or PDA) owning a token account, from the raw layout; None if not a token account."""
    if account is None:
        return None
    data = bytes(account.data)
    if account_kind(str(account.owner), data) != "token-account":
        return None
    return str(Pubkey.from_bytes(data[32:64]))


#: Extensions whose state an authority may still change; a mint carrying one is never cached forever.
_MUTABLE_RISKS: Mapping[str, str] = {
    "transferFeeConfig": "transferFeeConfigAuthority",
    "transferHook": "authority",
    "pausableConfig": "authority",
    "permanentDelegate": "delegate",
}


def settled(f: MintFacts) -> bool:
    """True when nothing the gates judge can change any more: both authorities renounced and no
    extension left with an authority that could raise a fee, swap a hook or pause."""
    if not f.is_mint or f.read_error or f.mint_authority or f.freeze_authority:
        return False
    return not any(e.state.get(_MUTABLE_RISKS[e.name]) for e in f.extensions if e.name in _MUTABLE_RISKS)


#: Extension fields that change with ordinary use (fees withheld by transfers, members joining a
#: group): two endpoints a few slots apart may differ on them without either being wrong.
_VOLATILE_EXTENSION_FIELDS = frozenset({"withheldAmount", "size"})


def _safety_view(f: MintFacts) -> list[tuple[str, Any]]:
    """The facts a gate judges, in the order a disagreement is reported."""
    exts = tuple((e.name, tuple(sorted((k, repr(v)) for k, v in e.state.items()
                                      if k not in _VOLATILE_EXTENSION_FIELDS))) for e in f.extensions)
    return [("account exists", f.exists), ("owner program", f.owner_program), ("initialized mint", f.is_mint),
            ("mint authority", f.mint_authority), ("freeze authority", f.freeze_authority),
            ("decimals", f.decimals), ("extensions", exts)]


def _shown(value: Any, f: MintFacts, name: str) -> str:
    if name == "extensions":
        return ", ".join(e.name for e in f.extensions) or "none"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def disagreement(a: MintFacts, b: MintFacts) -> str | None:
    """The first safety fact two reads of one mint differ on ("mint authority: <a's endpoint> says
    none, <b's endpoint> says <address>"); None when they agree. Supply is not compared (it moves)."""
    for (name, va), (_, vb) in zip(_safety_view(a), _safety_view(b), strict=True):
        if va != vb:
            shown_a, shown_b = _shown(va, a, name), _shown(vb, b, name)
            if shown_a == shown_b:
                shown_b += " with other settings"
            return f"{name}: {a.endpoint} says {shown_a}, {b.endpoint} says {shown_b}"
    return None


def _facts(batch: Sequence[str], served: Served[tuple[int, list[Account | None]]], now: int) -> dict[str, MintFacts]:
    """What one ``getMultipleAccounts`` answer says about each mint of ``batch``."""
    slot, accounts = served.value
    if len(accounts) != len(batch):
        err = f"getMultipleAccounts from {served.endpoint} returned {len(accounts)} accounts for {len(batch)} keys"
        return {m: MintFacts(m, now, read_error=err, endpoint=served.endpoint) for m in batch}
    return {m: mint_facts_from_account(m, acc, now, slot, served.endpoint)
            for m, acc in zip(batch, accounts, strict=True)}


# -- the inspector ------------------------------------------------------------------------------


class MintInspector:
    """Reads mint facts in batches through an :class:`~dexscan.chain.rpc.RpcPool`, with caching."""

    def __init__(self, pool: RpcPool, settings: Settings, clock: Clock, store: Store | None = None,
                 holder_concurrency: int = 4) -> None:
        self._pool = pool
        self._batch = settings.rpc.batch_size
        self._recheck_s = settings.universe.recheck_failed_after_s
        self._clock = clock
        self._store = store
        self._cache: dict[str, MintFacts] = {}
        self._holder_sem = asyncio.Semaphore(max(1, holder_concurrency))

    async def inspect(self, mints: Sequence[str], holders: bool = True) -> dict[str, MintFacts]:
        """Facts for each distinct mint, in input order. Never raises for chain problems."""
        now = int(self._clock.now())
        unique = list(dict.fromkeys(mints))
        out: dict[str, MintFacts] = {}
        to_read: list[str] = []
        for m in unique:
            problem = address_problem(m)
            if problem is not None:
                out[m] = MintFacts(m, now, read_error=f"invalid address: {problem}")
                continue
            cached = await self._cached(m)
            if cached is not None and self._fresh(cached, now):
                out[m] = cached
            else:
                to_read.append(m)
        fresh_reads: set[str] = set()
        for start in range(0, len(to_read), self._batch):
            batch = to_read[start:start + self._batch]
            out.update(await self._read_mints(batch, now))
            fresh_reads.update(batch)
        if holders:
            need = [m for m in unique if self._needs_holders(out[m], now, m in fresh_reads)]
            shares, unavailable = await self._top10_shares({m: out[m] for m in need})
            for m, share in shares.items():
                out[m] = replace(out[m], top10_share_pct=share, holders_unavailable=None, checked_at=now)
            for m, why in unavailable.items():
                out[m] = replace(out[m], top10_share_pct=None, holders_unavailable=why, checked_at=now)
        for m in unique:
            f = out[m]
            if f.read_error is None and self._cache.get(m) is not f:
                self._cache[m] = f
                if self._store is not None:
                    await self._store.save_mint_facts(f)
        return {m: out[m] for m in unique}

    def _fresh(self, f: MintFacts, now: int) -> bool:
        if f.read_error or not self._trusted(f):
            return False
        return settled(f) or now - f.checked_at < self._recheck_s

    def _trusted(self, f: MintFacts) -> bool:
        """Cached facts count while enough endpoints that vouched for them are still configured: two
        for an initialized mint when two or more are configured, else one. Facts from before
        ``vouched_by`` was recorded count as vouched by the endpoint that served them."""
        configured = set(self._pool.names)
        vouchers = set(f.vouched_by or ((f.endpoint,) if f.endpoint else ())) & configured
        return len(vouchers) >= (min(2, len(configured)) if f.is_mint else 1)

    def _needs_holders(self, f: MintFacts, now: int, just_read: bool) -> bool:
        if not f.is_mint or f.read_error or not f.supply:
            return False
        stale = now - f.checked_at >= self._recheck_s
        if f.holders_unavailable is not None:  # the endpoints refuse the method: ask again later, not every round
            return stale
        return just_read or f.top10_share_pct is None or stale

    async def _cached(self, mint: str) -> MintFacts | None:
        f = self._cache.get(mint)
        if f is None and self._store is not None:
            f = await self._store.mint_facts(mint)
            if f is not None:
                self._cache[mint] = f
        return f

    async def _read_mints(self, batch: list[str], now: int) -> dict[str, MintFacts]:
        try:
            served = await self._pool.get_multiple_accounts([Pubkey.from_string(m) for m in batch])
        except RpcError as exc:
            log.info("mint read failed for %d mints: %s", len(batch), exc)
            return {m: MintFacts(m, now, read_error=str(exc)) for m in batch}
        first = served.endpoint
        facts = {m: replace(f, vouched_by=(first,)) for m, f in _facts(batch, served, now).items()}
        to_confirm = {m: f for m, f in facts.items() if f.is_mint} if len(self._pool.names) > 1 else {}
        if to_confirm:
            facts.update(await self._confirmed(to_confirm, first, now))
        return facts

    async def _confirmed(self, facts: dict[str, MintFacts], first: str, now: int) -> dict[str, MintFacts]:
        """The same mints read from another endpoint than ``first``: facts both agree on are vouched by
        both; a difference, or no other endpoint answering, leaves the mint unverified (fail closed)."""
        mints = list(facts)
        try:
            served = await self._pool.get_multiple_accounts([Pubkey.from_string(m) for m in mints], exclude=(first,))
        except RpcError as exc:
            why = f"no second RPC endpoint confirmed the answer of {first} ({exc})"
            log.info("mint read of %d mints not confirmed: %s", len(mints), why)
            return {m: MintFacts(m, now, read_error=why, endpoint=first) for m in mints}
        second = served.endpoint
        again = _facts(mints, served, now)
        out: dict[str, MintFacts] = {}
        disputed: dict[str, str] = {}
        for m, f in facts.items():
            other = again[m]
            diff = other.read_error or disagreement(f, other)
            if diff is None:  # the older of the two slots: a slot told by one endpoint alone is not trusted either
                slot = min(f.slot, other.slot) if f.slot is not None and other.slot is not None else None
                out[m] = replace(f, vouched_by=(first, second), slot=slot)
                continue
            if other.read_error is None:
                disputed[m] = diff
                diff = f"RPC endpoints disagree ({diff})"
            out[m] = MintFacts(m, now, read_error=diff, endpoint=first)
        if disputed:
            mint, diff = next(iter(disputed.items()))
            self._pool.note_disagreement(first, second, len(disputed), f"{mint}: {diff}")
        return out

    async def _largest(self, mint: str) -> list[tuple[str, int]] | str | None:
        """The largest accounts; a text when every endpoint refuses the method; None on a failure."""
        async with self._holder_sem:
            try:
                served = await self._pool.get_token_largest_accounts(Pubkey.from_string(mint))
            except RpcMethodRefused as exc:
                log.debug("largest holders of %s: %s", mint, exc)
                return str(exc)
            except RpcError as exc:
                log.info("largest holders of %s not read: %s", mint, exc)
                return None
        value: list[tuple[str, int]] = served.value
        return value

    async def _accounts(self, keys: list[str]) -> dict[str, Account | None] | None:
        """Accounts by address in ``batch_size`` calls; None when any call failed."""
        found: dict[str, Account | None] = {}
        for start in range(0, len(keys), self._batch):
            batch = keys[start:start + self._batch]
            try:
                served = await self._pool.get_multiple_accounts([Pubkey.from_string(k) for k in batch])
            except RpcError as exc:
                log.info("holder owners not read: %s", exc)
                return None
            found.update(zip(batch, served.value[1], strict=False))
        return found

    async def _top10_shares(self, facts: Mapping[str, MintFacts]) -> tuple[dict[str, float], dict[str, str]]:
        """Top-10 share (0–100) of supply per mint, pool vaults and bonding curves excluded; and,
        for mints whose largest accounts every endpoint refused to list, why the share is unavailable.

        Owners are resolved for every mint's largest accounts together, so 250 mints cost 250
        ``getTokenLargestAccounts`` plus a few ``getMultipleAccounts`` rather than 500 more calls.
        Only off-curve owners (program-derived addresses) can be pools, so wallets are not looked up.
        """
        mints = list(facts)
        answers = dict(zip(mints, await asyncio.gather(*(self._largest(m) for m in mints)), strict=True))
        unavailable = {m: a for m, a in answers.items() if isinstance(a, str)}
        largest = {m: a for m, a in answers.items() if not isinstance(a, str)}
        token_accounts = list(dict.fromkeys(a for rows in largest.values() if rows for a, _ in rows))
        if not token_accounts:
            return {m: 0.0 for m, rows in largest.items() if rows is not None}, unavailable
        accounts = await self._accounts(token_accounts)
        if accounts is None:
            return {}, unavailable
        owners = {a: token_account_owner(accounts.get(a)) for a in token_accounts}
        candidates = list(dict.fromkeys(o for o in owners.values() if o and o not in POOL_AUTHORITIES
                                        and not Pubkey.from_string(o).is_on_curve()))
        owner_accounts = await self._accounts(candidates)
        if owner_accounts is None:
            return {}, unavailable
        pool_owned = {o for o, acc in owner_accounts.items() if acc is not None and str(acc.owner) in DEX_PROGRAMS}
        excluded = set(POOL_AUTHORITIES) | pool_owned
        shares: dict[str, float] = {}
        for m, rows in largest.items():
            supply = facts[m].supply
            if rows is None or not supply:
                continue
            kept = sorted((amount for a, amount in rows if owners.get(a) not in excluded), reverse=True)
            shares[m] = sum(kept[:10]) / supply * 100
        return shares, unavailable
