"""Raw account layouts: mints and Token-2022 extensions made by the real token programs (LiteSVM)."""

from __future__ import annotations

import hashlib
import struct

import pytest
from solders.account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from dexscan.chain.mint import (
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
    account_kind,
    address_problem,
    b58decode,
    mint_facts_from_account,
    parse_extensions,
    settled,
    token_account_owner,
)
from dexscan.demo.servers.fake_chain import DEMO_HOOK_PROGRAM, FakeChain, FakeChainError
from dexscan.domain import MintExtension, MintFacts

SYSTEM = "11111111111111111111111111111111"


@pytest.fixture(scope="module")
def chain() -> FakeChain:
    return FakeChain()


def facts_of(chain: FakeChain, mint: str) -> MintFacts:
    return mint_facts_from_account(mint, chain.account(mint), checked_at=100, slot=7, endpoint="e")


def test_classic_mint_with_both_authorities(chain: FakeChain) -> None:
    mint = chain.create_mint(b"layout-classic", decimals=9, mint_authority=True, freeze_authority=True,
                             holders=(1_000, 234))
    assert mint == str(Keypair.from_seed(hashlib.sha256(b"layout-classic").digest()).pubkey())
    data = bytes(chain.account(mint).data)  # type: ignore[union-attr]
    assert len(data) == 82 and account_kind(TOKEN_PROGRAM, data) == "mint"
    f = facts_of(chain, mint)
    auth = str(chain.authority.pubkey())
    assert (f.exists, f.is_mint, f.owner_program, f.decimals, f.supply) == (True, True, "spl-token", 9, 1_234)
    assert (f.mint_authority, f.freeze_authority, f.extensions) == (auth, auth, ())
    assert (f.checked_at, f.slot, f.endpoint, f.read_error) == (100, 7, "e", None)
    assert not settled(f)


def test_renounce_is_a_real_set_authority(chain: FakeChain) -> None:
    mint = chain.create_mint(b"layout-renounce", mint_authority=True, freeze_authority=True)
    chain.renounce(mint, "mint")
    f = facts_of(chain, mint)
    assert f.mint_authority is None and f.freeze_authority == str(chain.authority.pubkey())
    chain.renounce(mint, "freeze")
    f = facts_of(chain, mint)
    assert (f.mint_authority, f.freeze_authority) == (None, None)
    assert settled(f)


def test_token2022_transfer_fee_extension(chain: FakeChain) -> None:
    mint = chain.create_mint(b"layout-fee", token2022=True, transfer_fee_bps=500, holders=(10,))
    data = bytes(chain.account(mint).data)  # type: ignore[union-attr]
    assert len(data) == 166 + 4 + 108 and data[165] == 1  # account type byte: mint
    f = facts_of(chain, mint)
    auth = str(chain.authority.pubkey())
    fee = {"epoch": 0, "maximumFee": 2**64 - 1, "transferFeeBasisPoints": 500}
    assert f.owner_program == "spl-token-2022" and f.is_mint and f.supply == 10
    assert f.extensions == (MintExtension("transferFeeConfig", {
        "transferFeeConfigAuthority": auth, "withdrawWithheldAuthority": auth, "withheldAmount": 0,
        "olderTransferFee": fee, "newerTransferFee": fee}),)
    assert not settled(f)  # the fee authority could still raise the fee


def test_every_extension_litesvm_supports(chain: FakeChain) -> None:
    mint = chain.create_mint(b"layout-all", holders=(9, 8), pool_vault_holder=1, extensions={
        "permanentDelegate": True, "nonTransferable": True, "defaultAccountState": "frozen",
        "transferHook": True, "pausableConfig": True, "mintCloseAuthority": True, "interestBearingConfig": 250,
        "groupPointer": True,
        "tokenMetadata": {"name": "Layout", "symbol": "LAY", "uri": "https://example.invalid/l.json"}})
    f = facts_of(chain, mint)
    auth = str(chain.authority.pubkey())
    states = {e.name: dict(e.state) for e in f.extensions}
    assert list(states) == ["permanentDelegate", "nonTransferable", "defaultAccountState", "transferHook",
                            "pausableConfig", "mintCloseAuthority", "interestBearingConfig", "groupPointer",
                            "metadataPointer", "tokenMetadata"]
    assert states["permanentDelegate"] == {"delegate": auth}
    assert states["nonTransferable"] == {}
    assert states["defaultAccountState"] == {"accountState": "frozen"}
    assert states["transferHook"] == {"authority": auth, "programId": str(DEMO_HOOK_PROGRAM)}
    assert states["pausableConfig"] == {"authority": auth, "paused": False}
    assert states["mintCloseAuthority"] == {"closeAuthority": auth}
    assert states["interestBearingConfig"]["rateAuthority"] == auth
    assert states["interestBearingConfig"]["currentRate"] == 250
    assert states["groupPointer"] == {"authority": auth, "groupAddress": mint}
    assert states["metadataPointer"] == {"authority": auth, "metadataAddress": mint}
    assert states["tokenMetadata"] == {"updateAuthority": auth, "mint": mint, "name": "Layout", "symbol": "LAY",
                                       "uri": "https://example.invalid/l.json", "additionalMetadata": []}
    assert (f.mint_authority, f.freeze_authority, f.supply) == (None, None, 17)
    # holders' token accounts carry the account-side extensions the programs require
    ata = chain.token_accounts(mint)[0]
    acc = chain.account(ata)
    assert acc is not None
    assert token_account_owner(acc) is not None
    names = [e.name for e in parse_extensions(bytes(acc.data))]
    assert "immutableOwner" in names and "nonTransferableAccount" in names


def test_scaled_ui_amount_and_the_programs_own_combination_rule(chain: FakeChain) -> None:
    mint = chain.create_mint(b"layout-scaled", extensions={"scaledUiAmountConfig": 1.5})
    (ext,) = facts_of(chain, mint).extensions
    assert ext == MintExtension("scaledUiAmountConfig", {
        "authority": str(chain.authority.pubkey()), "multiplier": "1.5", "newMultiplierEffectiveTimestamp": 0,
        "newMultiplier": "1.5"})
    with pytest.raises(FakeChainError, match="invalid combination of extensions"):
        chain.create_mint(b"layout-scaled-interest", extensions={"scaledUiAmountConfig": 2, "interestBearingConfig": 5})


def test_not_a_mint(chain: FakeChain) -> None:
    wallet = chain.create_wallet(b"layout-wallet")
    f = facts_of(chain, wallet)
    assert (f.exists, f.is_mint, f.owner_program) == (True, False, SYSTEM)
    mint = chain.create_mint(b"layout-holder", holders=(5,))
    ata = chain.token_accounts(mint)[0]
    acc = chain.account(ata)
    assert acc is not None and len(acc.data) == 165
    f = facts_of(chain, ata)
    assert (f.exists, f.is_mint, f.owner_program) == (True, False, "spl-token")
    assert token_account_owner(acc) == str(chain._holder_owner(b"layout-holder", 0))
    missing = str(Keypair.from_seed(bytes(32)).pubkey())
    f = mint_facts_from_account(missing, None, 100, 7, "e")
    assert (f.exists, f.is_mint, f.read_error) == (False, False, None)


def test_uninitialized_mint_account_is_not_a_mint() -> None:
    acc = Account(lamports=1_461_600, data=bytes(82), owner=Pubkey.from_string(TOKEN_PROGRAM))
    f = mint_facts_from_account("m", acc, 1)
    assert (f.exists, f.is_mint, f.owner_program) == (True, False, "spl-token")


def test_account_kind_by_length_and_type_byte() -> None:
    assert account_kind(TOKEN_PROGRAM, bytes(82)) == "mint"
    assert account_kind(TOKEN_PROGRAM, bytes(165)) == "token-account"
    assert account_kind(TOKEN_PROGRAM, bytes(355)) == "multisig"
    assert account_kind(TOKEN_2022_PROGRAM, bytes(165) + b"\x01" + bytes(10)) == "mint"
    assert account_kind(TOKEN_2022_PROGRAM, bytes(165) + b"\x02" + bytes(10)) == "token-account"
    assert account_kind(TOKEN_2022_PROGRAM, bytes(200)) == "uninitialized"
    assert account_kind(SYSTEM, bytes(82)) == "other"


def test_tlv_unknown_truncated_and_padding() -> None:
    head = bytes(165) + b"\x01"
    pause = struct.pack("<HH", 26, 33) + bytes(32) + b"\x01"
    unknown = struct.pack("<HH", 999, 2) + b"\xff\xff"
    wrong_size = struct.pack("<HH", 12, 4) + b"\x01\x02\x03\x04"
    truncated = struct.pack("<HH", 3, 32) + bytes(5)
    exts = parse_extensions(head + pause + unknown + wrong_size + truncated)
    assert exts == (MintExtension("pausableConfig", {"authority": None, "paused": True}),
                    MintExtension("unparseableExtension", {"type": 999}),
                    MintExtension("unparseableExtension", {"type": 12}),
                    MintExtension("unparseableExtension", {"type": 3}))
    assert parse_extensions(head + pause + bytes(12)) == (MintExtension("pausableConfig",
                                                                        {"authority": None, "paused": True}),)


def test_addresses() -> None:
    key = Keypair.from_seed(bytes(range(32))).pubkey()
    assert b58decode(str(key)) == bytes(key)
    assert b58decode("11111111111111111111111111111111") == bytes(32)
    assert address_problem(str(key)) is None
    assert address_problem("") == "empty address"
    assert address_problem("0OIl") == "'0OIl' is not base58 (character '0' is not base58)"
    assert address_problem("abc") == "'abc' decodes to 3 bytes; a Solana address is 32 bytes"
    assert address_problem("x" * 90) == "'xxxxxxxxxxxxxxxxxxxx'... is 90 characters; a Solana address has 32 to 44"
