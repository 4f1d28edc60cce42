"""A Solana chain for the fakes: one LiteSVM world whose accounts are made by the real token programs.

:class:`FakeChain` is one solders ``LiteSVM`` world. ``LiteSVM()`` bundles the SPL Token, Token-2022
and Associated Token Account programs, so every mint here is created by **real transactions**:
system ``create_account`` + Token-2022 extension initialisers + ``InitializeMint2``; holders get
associated token accounts and ``MintTo``; renouncing is a real ``SetAuthority`` to None. The bytes
the fake serves are therefore exactly what mainnet would hold for such a mint, which is what makes
the layout parsing in :mod:`dexscan.chain.mint` testable without the internet.

:class:`TxArchive` holds the DEX transactions the demo streamed (what ``getSignaturesForAddress`` and
``getTransaction`` answer). :mod:`dexscan.demo.servers.rpc` serves a chain over JSON-RPC.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

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

from dexscan.chain.mint import ACCOUNT_LEN, MINT_LEN

if TYPE_CHECKING:
    from dexscan.demo.market_sim import MarketSim, SimToken

U64_MAX = 2**64 - 1
START_SLOT = 341_197_247
#: PumpSwap AMM: owner of the pool account that owns a ``pool_vault_holder``'s token account.
PUMPSWAP_PROGRAM = Pubkey.from_string("pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA")
#: A program id used as the hook of ``transferHook`` mints (no code needs to exist for the mint to hold it).
DEMO_HOOK_PROGRAM = Pubkey.from_string("HooKzJ9wLDafnh34NkTUemrYWx6JJfC95ALM5DNxKVvW")
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
        stopping before ``until``, at most ``limit`` (the contract in :mod:`dexscan.demo.servers.rpc`)."""
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
    """One LiteSVM world shared by several :class:`~dexscan.demo.servers.rpc.RpcFakeServer` instances.

    Its slot moves only by :meth:`advance_slots` (LiteSVM's clock stands still between warps), so
    :attr:`slot` is kept here rather than asked of the LiteSVM thread on every RPC answer.
    """

    def __init__(self) -> None:
        self.svm = SvmThread()
        self._slot = START_SLOT
        self.svm.warp_to_slot(START_SLOT)
        self.authority = Keypair.from_seed(hashlib.sha256(b"dexscan-fakechain:authority").digest())
        self._airdrop(self.authority.pubkey(), 10**13)
        self._token_accounts: dict[str, list[str]] = {}
        self.transactions = 0
        self.archive = TxArchive()

    # -- reading ----------------------------------------------------------------------------------

    @property
    def slot(self) -> int:
        """The chain's slot (LiteSVM's clock: every warp goes through :meth:`advance_slots`)."""
        return self._slot

    def advance_slots(self, n: int) -> None:
        self.svm.warp_to_slot(self._slot + n)
        self._slot += n

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
