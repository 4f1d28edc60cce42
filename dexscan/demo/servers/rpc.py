"""A local Solana JSON-RPC server whose accounts are made by the real token programs.

:class:`FakeChain` is one solders ``LiteSVM`` world. ``LiteSVM()`` bundles the SPL Token, Token-2022
and Associated Token Account programs, so every mint here is created by **real transactions**:
system ``create_account`` + Token-2022 extension initialisers + ``InitializeMint2``; holders get
associated token accounts and ``MintTo``; renouncing is a real ``SetAuthority`` to None. The bytes
the fake serves are therefore exactly what mainnet would hold for such a mint, which is what makes
the layout parsing in :mod:`dexscan.chain.mint` testable without the internet.

:class:`RpcFakeServer` serves one :class:`FakeChain` over HTTP on 127.0.0.1 (several servers may
share a chain, as several RPC providers share mainnet) with the real answer and error shapes:
``getHealth``, ``getSlot``, ``getVersion``, ``getAccountInfo`` and ``getMultipleAccounts`` (base64
and jsonParsed), ``getTokenLargestAccounts``, and for the DEX transactions the demo streamed
(:class:`TxArchive`) ``getSignaturesForAddress`` (see the history contract below) and
``getTransaction`` (json encoding with inner instructions, where a Meteora DLMM swap's event is, and
the top-level instructions when recorded, a Raydium v4 ``initialize2`` with its accounts; ``null``
for an unknown signature); ``-32005`` "Node is behind by N slots" with ``data.numSlotsBehind``, the
rpcpool HTTP 429 body, ``-32602`` "Too many inputs provided; max 100", ``-32602`` "Invalid param:
WrongSize", ``value: null`` for missing accounts. Faults are injected at run time: ``down``
(connection refused; open connections closed), ``slow``, ``lagging``, ``stale``, ``rate_limited``,
``oversized``, ``gzip_bomb``, and two lying endpoints: ``slot_lead`` (every slot it tells,
``getSlot`` and every answer's ``context.slot``, is N above the chain's, while ``getHealth`` says
ok) and ``lie_renounced`` (every mint account it serves, base64 and jsonParsed, has its mint and
freeze authority cut to none; the bytes are otherwise the chain's). It also enforces the public
mainnet limits (100 requests and 40 per method per 10 s by default) with HTTP 429, so tests can
prove dexscan never causes one.

Real behaviours modelled (``reference/external-apis.md`` §5):

* ``public_like``: like ``api.mainnet-beta.solana.com``, ``getTokenLargestAccounts`` of an SPL Token
  (Tokenkeg…) mint is refused with ``-32010`` "TokenkegQ… excluded from account secondary indexes;
  this RPC method unavailable for key" (§5.1); Token-2022 mints are served. The demo's first endpoint
  (``"rpc-1"``, :data:`PUBLIC_LIKE_NAMES`) plays the public endpoint by default.
* ``disabled_methods``: methods a provider switched off answer ``-32601`` "Method not found" (§5.1).

The transaction history contract (:class:`TxArchive`), as mainnet nodes answer it:

* ``getSignaturesForAddress(address, {before, until, limit})``: rows ``{signature, slot, err, memo,
  blockTime, confirmationStatus}``, **newest first** (by slot, then signature), starting after
  ``before`` (excluded; an unknown ``before`` gives ``[]``), stopping at ``until`` (excluded), at most
  ``limit`` (1..1000, default 1000; else ``-32602`` "Invalid limit; max 1000"). A failed transaction
  is listed like the others with ``err`` non-null (``{"InstructionError": [0, {"Custom": 6001}]}``,
  a slippage failure), and its ``getTransaction`` has the same ``meta.err``, ``meta.status.Err`` and
  logs ending in ``failed: custom program error: 0x1771``; its logs still carry the event the
  program wrote before failing, which a reader must not count.
* History: an archive may be given a ``history_loader`` (the demo world's, for ``backfill --source
  chain``): it is called once per address, at the first ``getSignaturesForAddress`` of it, and
  records that address's older transactions (the simulated swaps of a pool since the start of the
  simulated history); they are kept whatever ``keep`` says.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_associated_token_account,
    get_associated_token_address,
    initialize_mint2,
    initialize_transfer_fee_config,
    mint_to,
    set_authority,
    thaw_account,
)
from spl.token.models import (
    AuthorityType,
    InitializeMint2Params,
    InitializeTransferFeeConfigParams,
    MintToParams,
    SetAuthorityParams,
    ThawAccountParams,
)

from dexscan.chain.mint import (
    ACCOUNT_LEN,
    MINT_LEN,
    TOKEN_PROGRAMS,
    account_kind,
    b58decode,
    mint_facts_from_account,
    parse_extensions,
)
from dexscan.clock import Clock, RealClock
from dexscan.demo.servers.market import gzip_bomb

if TYPE_CHECKING:
    from dexscan.demo.market_sim import MarketSim, SimToken

API_VERSION = "2.2.14"
U64_MAX = 2**64 - 1
START_SLOT = 341_197_247
#: PumpSwap AMM: owner of the pool account that owns a ``pool_vault_holder``'s token account.
PUMPSWAP_PROGRAM = Pubkey.from_string("pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA")
#: A program id used as the hook of ``transferHook`` mints (no code needs to exist for the mint to hold it).
DEMO_HOOK_PROGRAM = Pubkey.from_string("HooKzJ9wLDafnh34NkTUemrYWx6JJfC95ALM5DNxKVvW")
RPCPOOL_METHOD_LIMIT = "Too many requests for a specific RPC call, contact your app developer or support@rpcpool.com."
RPCPOOL_IP_LIMIT = "Too many requests from your IP, contact your app developer or support@rpcpool.com."
MAX_KEYS = 100
#: Server names that play the public mainnet endpoint unless told otherwise (the demo's first RPC).
PUBLIC_LIKE_NAMES = frozenset({"rpc-1"})
KEY_EXCLUDED_FROM_SECONDARY_INDEX = -32010
METHOD_NOT_FOUND = -32601
_HOLDERS_PER_TX = 5

# Token-2022 instruction tags (spl-token-2022 ``TokenInstruction``) for the initialisers solana-py lacks.
_IX_MINT_CLOSE_AUTHORITY = 25
_IX_DEFAULT_ACCOUNT_STATE = 28
_IX_NON_TRANSFERABLE = 32
_IX_INTEREST_BEARING = 33
_IX_PERMANENT_DELEGATE = 35
_IX_TRANSFER_HOOK = 36
_IX_METADATA_POINTER = 39
_IX_GROUP_POINTER = 40
_IX_SCALED_UI_AMOUNT = 43
_IX_PAUSABLE = 44
_TOKEN_METADATA_INIT = hashlib.sha256(b"spl_token_metadata_interface:initialize_account").digest()[:8]
_FROZEN = 2

#: Extension name -> TLV value size on the mint (``tokenMetadata`` is variable and reallocated).
_EXT_SIZES: Mapping[str, int] = {
    "transferFeeConfig": 108, "mintCloseAuthority": 32, "defaultAccountState": 1, "nonTransferable": 0,
    "interestBearingConfig": 52, "permanentDelegate": 32, "transferHook": 64, "metadataPointer": 64,
    "groupPointer": 64, "scaledUiAmountConfig": 56, "pausableConfig": 33,
}


class FakeChainError(RuntimeError):
    """A transaction the fake chain sent was rejected by the programs (the logs say why)."""


def _seed32(seed: bytes) -> bytes:
    return seed if len(seed) == 32 else hashlib.sha256(seed).digest()


def _borsh_str(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<I", len(raw)) + raw


class SvmThread:
    """A LiteSVM whose every call runs on one dedicated thread.

    LiteSVM's native code changes the floating-point state of the thread that calls it (seen here:
    afterwards numpy's float ``//`` returns NaN on that thread). The demo runs the scanner in the
    same process as this fake, so LiteSVM is confined to its own thread, where that change cannot
    reach the scanner's arithmetic. Calls are serialised, which LiteSVM needs anyway.
    """

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="litesvm")
        self._svm: LiteSVM = self._thread.submit(LiteSVM).result()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._svm, name)
        if not callable(attr):
            return attr

        def on_svm_thread(*args: Any, **kwargs: Any) -> Any:
            return self._thread.submit(attr, *args, **kwargs).result()

        return on_svm_thread


class TxArchive:
    """Confirmed DEX transactions the demo published (signature, slot, block time, logs, accounts),
    for ``getSignaturesForAddress`` and ``getTransaction``; the newest ``keep`` per address."""

    def __init__(self, keep: int = 2000) -> None:
        self.keep = keep
        self.by_signature: dict[str, dict[str, Any]] = {}
        self.by_address: dict[str, deque[str]] = {}
        self.history_loader: Callable[[str], None] | None = None
        self._history_loaded: set[str] = set()

    def record(self, signature: str, slot: int, block_time: int, logs: Sequence[str],
               accounts: Sequence[str], inner: Sequence[dict[str, Any]] = (),
               instructions: Sequence[dict[str, Any]] = ()) -> None:
        """``inner``: ``meta.innerInstructions`` groups as the node lists them (``{"index": top-level
        instruction, "instructions": [{"programIdIndex", "accounts", "data" (base58), "stackHeight"}]}``):
        where self-CPI events live, Meteora DLMM's Swap among them. ``instructions``: the top-level
        ones, same shape (a Raydium v4 ``initialize2``, whose accounts name the new pool and mints)."""
        if signature in self.by_signature:
            return
        self.by_signature[signature] = {
            "slot": slot, "blockTime": block_time, "version": 0,
            "meta": {"err": None, "status": {"Ok": None}, "fee": 5000, "preBalances": [], "postBalances": [],
                     "innerInstructions": list(inner), "logMessages": list(logs), "preTokenBalances": [],
                     "postTokenBalances": [], "rewards": [], "loadedAddresses": {"writable": [], "readonly": []},
                     "computeUnitsConsumed": 41234},
            "transaction": {"signatures": [signature], "message": {
                "header": {"numRequiredSignatures": 1, "numReadonlySignedAccounts": 0,
                           "numReadonlyUnsignedAccounts": 1},
                "accountKeys": list(accounts), "recentBlockhash": "11111111111111111111111111111111",
                "instructions": list(instructions)}},
        }
        for address in accounts:
            ring = self.by_address.setdefault(address, deque())
            ring.append(signature)
            if len(ring) > self.keep:
                self.by_signature.pop(ring.popleft(), None)

    def record_history(self, signature: str, slot: int, block_time: int, logs: Sequence[str],
                       accounts: Sequence[str], inner: Sequence[dict[str, Any]] = (), failed: bool = False) -> None:
        """An older transaction (a history loader's): like :meth:`record`, never trimmed by ``keep``;
        ``failed``: a slippage failure (``err`` set, its logs ending in the failure, event included)."""
        keep, self.keep = self.keep, 1 << 62
        try:
            self.record(signature, slot, block_time, logs, accounts, inner)
        finally:
            self.keep = keep
        if failed:
            self.mark_failed(signature)

    def mark_failed(self, signature: str) -> None:
        """Make an archived transaction a failed one (custom program error 6001, slippage exceeded)."""
        tx = self.by_signature[signature]
        err = {"InstructionError": [0, {"Custom": 6001}]}
        meta = tx["meta"]
        meta["err"], meta["status"] = err, {"Err": err}
        logs = meta["logMessages"]
        if logs and logs[-1].endswith(" success"):
            program = logs[-1].split()[1]
            logs[-1] = f"Program {program} failed: custom program error: 0x1771"

    def signatures_page(self, address: str, before: str | None, until: str | None,
                        limit: int) -> list[dict[str, Any]]:
        """``getSignaturesForAddress``: newest first (slot, then signature), after ``before``,
        stopping before ``until``, at most ``limit`` (see the module docstring)."""
        if self.history_loader is not None and address not in self._history_loaded:
            self._history_loaded.add(address)
            self.history_loader(address)
        known = [s for s in self.by_address.get(address, ()) if s in self.by_signature]
        known.sort(key=lambda s: (self.by_signature[s]["slot"], s), reverse=True)
        start = 0
        if before is not None:
            start = next((i + 1 for i, s in enumerate(known) if s == before), len(known))
        out: list[dict[str, Any]] = []
        for sig in known[start:]:
            if sig == until or len(out) >= limit:
                break
            tx = self.by_signature[sig]
            out.append({"signature": sig, "slot": tx["slot"], "err": tx["meta"]["err"], "memo": None,
                        "blockTime": tx["blockTime"], "confirmationStatus": "confirmed"})
        return out


class FakeChain:
    """One LiteSVM world shared by several :class:`RpcFakeServer` instances."""

    def __init__(self) -> None:
        self.svm = SvmThread()
        self.svm.warp_to_slot(START_SLOT)
        self.authority = Keypair.from_seed(hashlib.sha256(b"dexscan-fakechain:authority").digest())
        self._airdrop(self.authority.pubkey(), 10**13)
        self._token_accounts: dict[str, list[str]] = {}
        self.transactions = 0
        self.archive = TxArchive()

    # -- reading ----------------------------------------------------------------------------------

    @property
    def slot(self) -> int:
        return int(self.svm.get_clock().slot)

    def advance_slots(self, n: int) -> None:
        self.svm.warp_to_slot(self.slot + n)

    def account(self, address: str | Pubkey) -> Account | None:
        key = address if isinstance(address, Pubkey) else Pubkey.from_string(address)
        return self.svm.get_account(key)

    def token_accounts(self, mint: str) -> list[str]:
        """Token accounts this chain created for ``mint`` (holders), in creation order."""
        return list(self._token_accounts.get(mint, ()))

    def largest_accounts(self, mint: str, limit: int = 20) -> list[tuple[str, int]]:
        rows: list[tuple[str, int]] = []
        for address in self._token_accounts.get(mint, ()):
            acc = self.account(address)
            if acc is not None and len(acc.data) >= ACCOUNT_LEN:
                rows.append((address, struct.unpack_from("<Q", bytes(acc.data), 64)[0]))
        rows.sort(key=lambda r: r[1], reverse=True)
        return rows[:limit]

    # -- writing (real transactions) ----------------------------------------------------------------

    def _send(self, ixs: Sequence[Instruction], signers: Sequence[Keypair] = ()) -> None:
        msg = Message(list(ixs), self.authority.pubkey())
        tx = Transaction([self.authority, *signers], msg, self.svm.latest_blockhash())
        res = self.svm.send_transaction(tx)
        if isinstance(res, FailedTransactionMetadata):
            raise FakeChainError(f"transaction failed: {res.err()}; logs: {res.meta().logs()}")
        self.transactions += 1

    def _airdrop(self, to: Pubkey, lamports: int) -> None:
        res = self.svm.airdrop(to, lamports)
        if isinstance(res, FailedTransactionMetadata):
            raise FakeChainError(f"airdrop of {lamports} lamports failed: {res.err()}")

    def create_wallet(self, seed: bytes, lamports: int = 1_000_000_000) -> str:
        """A system-owned account (a wallet): a real account that is not a mint."""
        pk = Keypair.from_seed(_seed32(seed)).pubkey()
        self._airdrop(pk, lamports)
        return str(pk)

    def create_mint(
        self,
        seed: bytes,
        decimals: int = 6,
        mint_authority: bool = False,
        freeze_authority: bool = False,
        token2022: bool = False,
        transfer_fee_bps: int | None = None,
        holders: Sequence[int] = (),
        *,
        pool_vault_holder: int | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a mint at ``Keypair.from_seed(seed)`` (a seed that is not 32 bytes is hashed first).

        ``mint_authority``/``freeze_authority`` True keep that authority (the chain's ``authority``
        key); False renounces it with a real ``SetAuthority`` after the holders are minted.
        ``holders`` are raw amounts minted to distinct owners' associated token accounts; the one at
        index ``pool_vault_holder`` is owned by a PumpSwap pool account (a pool vault, which the
        top-10 share excludes). ``extensions`` adds Token-2022 extensions by jsonParsed name:
        ``permanentDelegate``, ``nonTransferable``, ``defaultAccountState`` ("frozen" or
        "initialized"), ``transferHook`` (program id or True), ``pausableConfig``,
        ``mintCloseAuthority``, ``interestBearingConfig`` (rate in bps), ``groupPointer``,
        ``scaledUiAmountConfig`` (multiplier), ``tokenMetadata`` ({"name", "symbol", "uri"}, with its
        ``metadataPointer``); any extension implies Token-2022.
        """
        exts = dict(extensions or {})
        if transfer_fee_bps is not None:
            exts["transferFeeConfig"] = transfer_fee_bps
        if "tokenMetadata" in exts:
            exts.setdefault("metadataPointer", True)
        program = TOKEN_2022_PROGRAM_ID if (token2022 or exts) else TOKEN_PROGRAM_ID
        unknown = set(exts) - set(_EXT_SIZES) - {"tokenMetadata"}
        if unknown:
            raise ValueError(
                f"unsupported extensions {sorted(unknown)}; supported: {sorted(_EXT_SIZES)} + tokenMetadata")
        mint_kp = Keypair.from_seed(_seed32(seed))
        mint = mint_kp.pubkey()
        if self.svm.get_account(mint) is not None:
            raise FakeChainError(f"account {mint} already exists")
        auth = self.authority.pubkey()
        default_frozen = exts.get("defaultAccountState") == "frozen"
        needs_freeze = freeze_authority or default_frozen

        fixed = [n for n in exts if n in _EXT_SIZES]
        space = MINT_LEN if not fixed else ACCOUNT_LEN + 1 + sum(4 + _EXT_SIZES[n] for n in fixed)
        funded = space
        if "tokenMetadata" in exts:
            md = exts["tokenMetadata"]
            funded += 4 + 64 + sum(4 + len(str(md.get(k, "")).encode()) for k in ("name", "symbol", "uri")) + 4
        ixs: list[Instruction] = [create_account(CreateAccountParams(
            from_pubkey=auth, to_pubkey=mint, lamports=self.svm.minimum_balance_for_rent_exemption(funded),
            space=space, owner=program))]
        ixs += [self._extension_ix(name, exts[name], mint) for name in fixed]
        ixs.append(initialize_mint2(InitializeMint2Params(
            program_id=program, mint=mint, decimals=decimals, mint_authority=auth,
            freeze_authority=auth if needs_freeze else None)))
        if "tokenMetadata" in exts:
            md = exts["tokenMetadata"]
            data = _TOKEN_METADATA_INIT + b"".join(_borsh_str(str(md.get(k, ""))) for k in ("name", "symbol", "uri"))
            ixs.append(Instruction(program, data, [
                AccountMeta(mint, False, True), AccountMeta(auth, False, False), AccountMeta(mint, False, False),
                AccountMeta(auth, True, False)]))
        self._send(ixs, [mint_kp])

        address = str(mint)
        self._token_accounts[address] = []
        for start in range(0, len(holders), _HOLDERS_PER_TX):
            batch_ixs: list[Instruction] = []
            for i in range(start, min(start + _HOLDERS_PER_TX, len(holders))):
                owner = self._vault_owner(mint) if i == pool_vault_holder else self._holder_owner(seed, i)
                ata = get_associated_token_address(owner, mint, program)
                batch_ixs.append(create_associated_token_account(auth, owner, mint, program))
                if default_frozen:
                    batch_ixs.append(thaw_account(ThawAccountParams(
                        program_id=program, account=ata, mint=mint, authority=auth)))
                batch_ixs.append(mint_to(MintToParams(
                    program_id=program, mint=mint, dest=ata, mint_authority=auth, amount=int(holders[i]))))
                self._token_accounts[address].append(str(ata))
            self._send(batch_ixs)
        renounce = [kind for kind, keep in (("mint", mint_authority), ("freeze", not needs_freeze or freeze_authority))
                    if not keep]
        for kind in renounce:
            self.renounce(address, kind)
        return address

    def renounce(self, mint: str, which: str) -> None:
        """Set the ``"mint"`` or ``"freeze"`` authority to None with a real ``SetAuthority``."""
        kinds = {"mint": AuthorityType.MINT_TOKENS, "freeze": AuthorityType.FREEZE_ACCOUNT}
        if which not in kinds:
            raise ValueError(f"which must be 'mint' or 'freeze', got {which!r}")
        acc = self.account(mint)
        if acc is None:
            raise FakeChainError(f"mint {mint} does not exist")
        self._send([set_authority(SetAuthorityParams(
            program_id=acc.owner, account=Pubkey.from_string(mint), authority=kinds[which],
            current_authority=self.authority.pubkey(), new_authority=None))])

    def _holder_owner(self, seed: bytes, i: int) -> Pubkey:
        return Keypair.from_seed(hashlib.sha256(seed + b":holder:%d" % i).digest()).pubkey()

    def _vault_owner(self, mint: Pubkey) -> Pubkey:
        """A PumpSwap pool account (a PDA owned by the PumpSwap program) to own a pool vault."""
        pda, _ = Pubkey.find_program_address([b"pool", bytes(mint)], PUMPSWAP_PROGRAM)
        if self.svm.get_account(pda) is None:
            size = 300
            self.svm.set_account(pda, Account(lamports=self.svm.minimum_balance_for_rent_exemption(size),
                                              data=bytes(size), owner=PUMPSWAP_PROGRAM))
        return pda

    def _extension_ix(self, name: str, value: Any, mint: Pubkey) -> Instruction:
        p = TOKEN_2022_PROGRAM_ID
        auth = self.authority.pubkey()
        meta = [AccountMeta(mint, False, True)]
        if name == "transferFeeConfig":
            return initialize_transfer_fee_config(InitializeTransferFeeConfigParams(
                program_id=p, mint=mint, transfer_fee_config_authority=auth, withdraw_withheld_authority=auth,
                transfer_fee_basis_points=int(value), maximum_fee=U64_MAX))
        if name == "mintCloseAuthority":
            return Instruction(p, bytes([_IX_MINT_CLOSE_AUTHORITY, 1]) + bytes(auth), meta)
        if name == "defaultAccountState":
            state = {"initialized": 1, "frozen": _FROZEN}[str(value)]
            return Instruction(p, bytes([_IX_DEFAULT_ACCOUNT_STATE, 0, state]), meta)
        if name == "nonTransferable":
            return Instruction(p, bytes([_IX_NON_TRANSFERABLE]), meta)
        if name == "interestBearingConfig":
            return Instruction(p, bytes([_IX_INTEREST_BEARING, 0]) + bytes(auth) + struct.pack("<h", int(value)), meta)
        if name == "permanentDelegate":
            return Instruction(p, bytes([_IX_PERMANENT_DELEGATE]) + bytes(auth), meta)
        if name == "transferHook":
            hook = DEMO_HOOK_PROGRAM if value is True else Pubkey.from_string(str(value))
            return Instruction(p, bytes([_IX_TRANSFER_HOOK, 0]) + bytes(auth) + bytes(hook), meta)
        if name == "metadataPointer":
            return Instruction(p, bytes([_IX_METADATA_POINTER, 0]) + bytes(auth) + bytes(mint), meta)
        if name == "groupPointer":
            return Instruction(p, bytes([_IX_GROUP_POINTER, 0]) + bytes(auth) + bytes(mint), meta)
        if name == "scaledUiAmountConfig":
            multiplier = struct.pack("<d", float(value))
            return Instruction(p, bytes([_IX_SCALED_UI_AMOUNT, 0]) + bytes(auth) + multiplier, meta)
        if name == "pausableConfig":
            return Instruction(p, bytes([_IX_PAUSABLE, 0]) + bytes(auth), meta)
        raise ValueError(f"unsupported extension {name}")

    # -- worlds ------------------------------------------------------------------------------------

    @classmethod
    def from_sim(cls, sim: MarketSim) -> FakeChain:
        """A chain holding every simulated token's mint, created as the simulator describes it.

        Each :class:`~dexscan.demo.market_sim.SimToken` gives its ``mint_seed`` and the flags
        ``mint_authority``, ``freeze_authority``, ``token2022``, ``transfer_fee_bps``; its supply is
        minted to a pool vault and ten holders so that the top-10 share (vault excluded) matches
        the token's ``top_holders_pct``.
        """
        chain = cls()
        for tok in sim.tokens:
            chain.create_mint(
                tok.mint_seed, decimals=tok.decimals, mint_authority=tok.mint_authority,
                freeze_authority=tok.freeze_authority, token2022=tok.token2022,
                transfer_fee_bps=tok.transfer_fee_bps, holders=sim_holders(tok), pool_vault_holder=0)
        return chain

    def add_demo_mints(self) -> dict[str, str]:
        """A small fixed set of mints for ``dexscan check --demo``: label -> address."""
        spec: dict[str, dict[str, Any]] = {
            "renounced": {},
            "mint-authority": {"mint_authority": True},
            "freeze-authority": {"freeze_authority": True},
            "fee-500bps": {"token2022": True, "transfer_fee_bps": 500},
            "token2022-metadata": {"extensions": {"tokenMetadata": {"name": "Demo", "symbol": "DEMO",
                                                                    "uri": "https://example.invalid/demo.json"}}},
            "permanent-delegate": {"extensions": {"permanentDelegate": True}},
        }
        out: dict[str, str] = {}
        for label, kw in spec.items():
            seed = f"dexscan-demo:{label}".encode()
            existing = str(Keypair.from_seed(_seed32(seed)).pubkey())
            out[label] = existing if self.account(existing) else self.create_mint(
                seed, holders=(500_000_000_000, 300_000_000_000, 150_000_000_000, 50_000_000_000),
                pool_vault_holder=0, **kw)
        return out


def sim_holders(tok: SimToken) -> list[int]:
    """Raw amounts: the pool vault first, then ten holders (halving) sharing ``top_holders_pct``."""
    raw = max(1, min(int(tok.total_supply * 10**tok.decimals), 10**18))
    top = max(0.0, min(100.0, tok.top_holders_pct)) / 100
    weights = [0.5**k for k in range(10)]
    amounts = [int(raw * top * w / sum(weights)) for w in weights]
    return [raw - sum(amounts), *amounts]


# -- JSON rendering --------------------------------------------------------------------------------


def _ui_amount(amount: int, decimals: int) -> dict[str, Any]:
    ui = amount / 10**decimals
    text = f"{amount / 10**decimals:.{decimals}f}".rstrip("0").rstrip(".") if decimals else str(amount)
    return {"amount": str(amount), "decimals": decimals, "uiAmount": ui, "uiAmountString": text}


def _extensions_json(data: bytes) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in parse_extensions(data):
        entry: dict[str, Any] = {"extension": e.name}
        if e.state and e.name != "unparseableExtension":
            entry["state"] = dict(e.state)
        out.append(entry)
    return out


class _Rpc:
    """Answers JSON-RPC calls from a chain; the HTTP and fault layer lives in RpcFakeServer."""

    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain

    def context(self, slot: int) -> dict[str, Any]:
        return {"slot": slot, "apiVersion": API_VERSION}

    def parsed(self, address: str, acc: Account) -> dict[str, Any] | None:
        owner = str(acc.owner)
        data = bytes(acc.data)
        kind = account_kind(owner, data)
        program = TOKEN_PROGRAMS.get(owner)
        if program is None:
            return None
        if kind == "mint":
            f = mint_facts_from_account(address, acc, 0)
            if not f.is_mint:
                return None
            info: dict[str, Any] = {"mintAuthority": f.mint_authority, "supply": str(f.supply),
                                    "decimals": f.decimals, "isInitialized": True,
                                    "freezeAuthority": f.freeze_authority}
            if len(data) > ACCOUNT_LEN:
                info["extensions"] = _extensions_json(data)
            return {"program": program, "parsed": {"type": "mint", "info": info}, "space": len(data)}
        if kind == "token-account":
            mint = str(Pubkey.from_bytes(data[0:32]))
            mint_acc = self.chain.account(mint)
            decimals = mint_facts_from_account(mint, mint_acc, 0).decimals or 0
            amount = struct.unpack_from("<Q", data, 64)[0]
            state = {0: "uninitialized", 1: "initialized", 2: "frozen"}.get(data[108], "uninitialized")
            info = {"isNative": data[109] == 1, "mint": mint, "owner": str(Pubkey.from_bytes(data[32:64])),
                    "state": state, "tokenAmount": _ui_amount(amount, decimals)}
            if len(data) > ACCOUNT_LEN:
                info["extensions"] = _extensions_json(data)
            return {"program": program, "parsed": {"type": "account", "info": info}, "space": len(data)}
        return None

    def account_json(self, address: str, acc: Account | None, encoding: str,
                     data_slice: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if acc is None:
            return None
        data = bytes(acc.data)
        body: Any = None
        if encoding == "jsonParsed":
            body = self.parsed(address, acc)
        if body is None:
            if data_slice:
                off = int(data_slice.get("offset", 0))
                data = data[off:off + int(data_slice.get("length", len(data)))]
            body = [base64.b64encode(data).decode(), "base64"]
        return {"data": body, "executable": acc.executable, "lamports": acc.lamports, "owner": str(acc.owner),
                "rentEpoch": U64_MAX, "space": len(bytes(acc.data))}


class RpcParamError(Exception):
    def __init__(self, message: str, code: int = -32602) -> None:
        super().__init__(message)
        self.code = code


def _pubkey_param(value: Any) -> str:
    if not isinstance(value, str):
        raise RpcParamError("Invalid params: expected a base58 pubkey string")
    try:
        raw = b58decode(value)
    except ValueError:
        raise RpcParamError("Invalid param: Invalid") from None
    if len(raw) != 32:
        raise RpcParamError("Invalid param: WrongSize")
    return value


def _config(params: list[Any], index: int) -> dict[str, Any]:
    cfg = params[index] if len(params) > index and isinstance(params[index], dict) else {}
    return cfg


def _encoding(cfg: Mapping[str, Any]) -> str:
    enc = str(cfg.get("encoding", "base64"))
    if enc not in ("base64", "jsonParsed"):
        raise RpcParamError(f"Invalid params: this fake serves base64 and jsonParsed, not {enc!r}")
    return enc


@dataclass
class RpcServerStats:
    """What the server saw: JSON-RPC requests by method, and how many it answered with HTTP 429."""

    requests: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    http_requests: int = 0

    @property
    def total(self) -> int:
        return sum(self.requests.values())


FAULTS = ("down", "slow", "lagging", "stale", "rate_limited", "oversized", "gzip_bomb", "slot_lead", "lie_renounced")


async def _huge_answer(request: web.Request, kind: str, size: int) -> web.StreamResponse:
    """An answer of ``size`` bytes (spaces after ``{``), or a gzip body inflating to ``size`` bytes."""
    headers = {"Content-Type": "application/json"}
    if kind == "gzip_bomb":
        body = await asyncio.to_thread(gzip_bomb, size)
        headers["Content-Encoding"] = "gzip"
    resp = web.StreamResponse(status=200, headers=headers)
    try:
        await resp.prepare(request)
        if kind == "gzip_bomb":
            for i in range(0, len(body), 64 * 1024):
                await resp.write(body[i:i + 64 * 1024])
        else:
            block, left = b" " * (256 * 1024), size
            await resp.write(b"{")
            while left > 0:
                await resp.write(block[:min(left, len(block))])
                left -= len(block)
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


class RpcFakeServer:
    """Async context manager: ``async with RpcFakeServer(chain) as srv: srv.url``."""

    def __init__(self, chain: FakeChain, name: str = "rpc", clock: Clock | None = None,
                 limits: tuple[int, int] = (100, 40), public_like: bool | None = None,
                 disabled_methods: Sequence[str] = ()) -> None:
        self.chain = chain
        self.name = name
        #: Refuse ``getTokenLargestAccounts`` of SPL Token mints with -32010, as the public endpoint does.
        self.public_like = name in PUBLIC_LIKE_NAMES if public_like is None else public_like
        #: Methods answered with -32601 "Method not found" (disabled by this provider).
        self.disabled_methods = frozenset(disabled_methods)
        self._clock = clock or RealClock()
        self._limit_total, self._limit_method = limits
        self._rpc = _Rpc(chain)
        self.stats = RpcServerStats()
        self._faults: dict[str, float] = {}
        self._sent: deque[float] = deque()
        self._sent_by_method: dict[str, deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError(f"{self.name}: server not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def faults(self) -> set[str]:
        return set(self._faults)

    async def __aenter__(self) -> RpcFakeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        if not self._port:
            self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def inject(self, fault: str, value: float = 0.0) -> None:
        """Start a fault: ``down``; ``slow`` (value = delay in s); ``lagging`` (value = slots behind:
        ``-32005`` for everything but ``getSlot``); ``stale`` (value = slots behind, yet ``getHealth``
        says ok, as a node behind a careless load balancer); ``rate_limited`` (every request gets the
        rpcpool HTTP 429); ``oversized`` (value = bytes: every answer is that many bytes, streamed);
        ``gzip_bomb`` (value = bytes: every answer is ``Content-Encoding: gzip`` inflating to that many);
        ``slot_lead`` (value = slots: every slot told is that far above the chain's, ``getHealth`` still
        ok); ``lie_renounced`` (mint accounts are served with mint and freeze authority none)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self._faults[fault] = value
        if fault == "down":
            await self.close()

    async def recover(self, fault: str | None = None) -> None:
        """End one fault, or all of them; a server that was down listens again on the same port."""
        was_down = "down" in self._faults
        if fault is None:
            self._faults.clear()
        else:
            self._faults.pop(fault, None)
        if was_down and "down" not in self._faults and self._runner is None:
            await self.start()

    # -- HTTP ------------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="behind" if "lagging" in self._faults else "ok")

    def _over_limit(self, methods: Sequence[str]) -> str | None:
        now = self._clock.now()
        horizon = now - 10.0
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()
        if len(self._sent) >= self._limit_total:
            return RPCPOOL_IP_LIMIT
        for m in methods:
            q = self._sent_by_method.setdefault(m, deque())
            while q and q[0] <= horizon:
                q.popleft()
            if len(q) >= self._limit_method:
                return RPCPOOL_METHOD_LIMIT
        self._sent.append(now)
        for m in methods:
            self._sent_by_method[m].append(now)
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.stats.http_requests += 1
        raw = await request.read()
        for kind in ("oversized", "gzip_bomb"):
            if kind in self._faults:
                return await _huge_answer(request, kind, int(self._faults[kind]))
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"},
                                      "id": None})
        calls = body if isinstance(body, list) else [body]
        methods = [c.get("method", "") if isinstance(c, dict) else "" for c in calls]
        for m in methods:
            self.stats.requests[str(m)] += 1
        if "slow" in self._faults:
            await asyncio.sleep(self._faults["slow"])
        limited = (RPCPOOL_METHOD_LIMIT if "rate_limited" in self._faults
                   else self._over_limit([str(m) for m in methods]))
        if limited is not None:
            self.stats.rate_limited += 1
            first_id = calls[0].get("id", 1) if calls and isinstance(calls[0], dict) else 1
            return web.json_response({"jsonrpc": "2.0", "error": {"code": 429, "message": limited}, "id": first_id},
                                     status=429)
        answers = [self._answer(c) for c in calls]
        return web.json_response(answers if isinstance(body, list) else answers[0])

    def _answer(self, call: Any) -> dict[str, Any]:
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            return {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}, "id": None}
        rid = call.get("id")
        method = call["method"]
        params = call.get("params") or []
        if not isinstance(params, list):
            params = [params]
        behind = int(self._faults.get("lagging", 0)) if "lagging" in self._faults else None
        if behind is not None and method != "getSlot":
            return {"jsonrpc": "2.0", "id": rid, "error": {
                "code": -32005, "message": f"Node is behind by {behind} slots", "data": {"numSlotsBehind": behind}}}
        if method in self.disabled_methods:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": METHOD_NOT_FOUND, "message": "Method not found"}}
        try:
            result = self._dispatch(method, params, behind or int(self._faults.get("stale", 0)))
        except RpcParamError as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": exc.code, "message": str(exc)}}
        return {"jsonrpc": "2.0", "result": result, "id": rid}

    def _account(self, address: str) -> Account | None:
        """The chain's account, or under ``lie_renounced`` a mint's with both authorities cut to none."""
        acc = self.chain.account(address)
        if acc is None or "lie_renounced" not in self._faults:
            return acc
        if account_kind(str(acc.owner), bytes(acc.data)) != "mint":
            return acc
        data = bytearray(bytes(acc.data))
        data[0:36] = bytes(36)  # COption<Pubkey> mint_authority: tag 0, key zeroed
        data[46:82] = bytes(36)  # COption<Pubkey> freeze_authority
        return Account(acc.lamports, bytes(data), acc.owner, acc.executable, acc.rent_epoch)

    def _dispatch(self, method: str, params: list[Any], behind: int) -> Any:
        slot = self.chain.slot - behind + int(self._faults.get("slot_lead", 0))
        if method == "getHealth":
            return "ok"
        if method == "getSlot":
            return slot
        if method == "getVersion":
            return {"solana-core": API_VERSION, "feature-set": 3294202862}
        if method == "getAccountInfo":
            if not params:
                raise RpcParamError("Invalid params: missing pubkey")
            address = _pubkey_param(params[0])
            cfg = _config(params, 1)
            value = self._rpc.account_json(address, self._account(address), _encoding(cfg), cfg.get("dataSlice"))
            return {"context": self._rpc.context(slot), "value": value}
        if method == "getMultipleAccounts":
            keys = params[0] if params and isinstance(params[0], list) else None
            if keys is None:
                raise RpcParamError("Invalid params: expected an array of pubkeys")
            if len(keys) > MAX_KEYS:
                raise RpcParamError(f"Too many inputs provided; max {MAX_KEYS}")
            cfg = _config(params, 1)
            enc = _encoding(cfg)
            addresses = [_pubkey_param(k) for k in keys]
            values = [self._rpc.account_json(a, self._account(a), enc, cfg.get("dataSlice")) for a in addresses]
            return {"context": self._rpc.context(slot), "value": values}
        if method == "getTokenLargestAccounts":
            if not params:
                raise RpcParamError("Invalid params: missing mint")
            mint = _pubkey_param(params[0])
            acc = self.chain.account(mint)
            if acc is None:
                raise RpcParamError("Invalid param: could not find mint")
            if str(acc.owner) not in TOKEN_PROGRAMS:
                raise RpcParamError("Invalid param: not a Token mint")
            if self.public_like and str(acc.owner) == str(TOKEN_PROGRAM_ID):
                raise RpcParamError(f"{TOKEN_PROGRAM_ID} excluded from account secondary indexes; "
                                    "this RPC method unavailable for key", code=KEY_EXCLUDED_FROM_SECONDARY_INDEX)
            facts = mint_facts_from_account(mint, acc, 0)
            if not facts.is_mint:
                raise RpcParamError("Invalid param: Token mint could not be unpacked")
            decimals = facts.decimals or 0
            rows = [{"address": a, **_ui_amount(amount, decimals)} for a, amount in self.chain.largest_accounts(mint)]
            return {"context": self._rpc.context(slot), "value": rows}
        if method == "getSignaturesForAddress":
            if not params:
                raise RpcParamError("Invalid params: missing address")
            address = _pubkey_param(params[0])
            cfg = _config(params, 1)
            limit = cfg.get("limit") or 1000
            if not isinstance(limit, int) or not 1 <= limit <= 1000:
                raise RpcParamError("Invalid limit; max 1000")
            until, before = cfg.get("until"), cfg.get("before")
            return self.chain.archive.signatures_page(address, before if isinstance(before, str) else None,
                                                      until if isinstance(until, str) else None, limit)
        if method == "getTransaction":
            if not params or not isinstance(params[0], str):
                raise RpcParamError("Invalid params: missing signature")
            return self.chain.archive.by_signature.get(params[0])
        raise RpcParamError("Method not found", code=-32601)
