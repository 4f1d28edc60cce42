"""Gates: exact verdicts and reasons from hand-built snapshots and mint facts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dexscan.config import GateSettings
from dexscan.domain import (
    SOL_MINT,
    USDC_MINT,
    GateStatus,
    GateVerdict,
    MintExtension,
    MintFacts,
    PairSnapshot,
    TxnCounts,
    Window4,
)
from dexscan.errors import ConfigError
from dexscan.gates import GateInput, admitted, evaluate_gates
from dexscan.gates.market import LiquidityGate, PriceImpactGate, Volume24hGate, price_impact_pct
from dexscan.gates.safety import (
    FreezeAuthorityGate,
    MintAuthorityGate,
    Token2022ExtensionsGate,
    Top10HoldersGate,
)
from dexscan.plugins import GATES, build_gates

MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
OTHER = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
AUTH = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
NOW = 1_760_000_000


def pair(address: str, liquidity: float | None, volume_h24: float | None = 0.0, base: str = MINT,
         quote: str = SOL_MINT) -> PairSnapshot:
    return PairSnapshot(
        pair_address=address, dex_id="raydium", base_mint=base, base_symbol="TKN", base_name="Token",
        quote_mint=quote, quote_symbol="SOL", price_usd=0.01, price_native=0.0001,
        volume=Window4(h24=volume_h24), price_change=Window4(), txns_m5=TxnCounts(), txns_h1=TxnCounts(),
        txns_h24=TxnCounts(), liquidity_usd=liquidity, fdv=None, market_cap=None, pair_created_at=None,
        observed_at=NOW,
    )


def facts(**kw: object) -> MintFacts:
    base = MintFacts(mint=MINT, checked_at=NOW, exists=True, is_mint=True, owner_program="spl-token",
                     supply=1_000_000, decimals=6, slot=1234)
    return replace(base, **kw)  # type: ignore[arg-type]


def inp(pairs: tuple[PairSnapshot, ...] = (), f: MintFacts | None = None) -> GateInput:
    return GateInput(mint=MINT, now=NOW, pairs=pairs, facts=f)


# -- market gates -------------------------------------------------------------------------------


def test_liquidity_below_threshold_fails_with_numbers() -> None:
    v = LiquidityGate().evaluate(inp((pair("P1", 42_310.4),)))
    assert (v.status, v.reason) == (GateStatus.FAIL, "liquidity $42,310 < $50,000")
    assert v.details["pair"] == "P1" and v.checked_at == NOW and v.gate == "liquidity"


def test_liquidity_at_threshold_passes() -> None:
    v = LiquidityGate().evaluate(inp((pair("P1", 50_000.0),)))
    assert (v.status, v.reason) == (GateStatus.PASS, "liquidity $50,000 >= $50,000")


def test_main_pool_is_deepest_main_quote_pool_with_token_as_base() -> None:
    pools = (
        pair("QUOTE_SIDE", 900_000.0, base=OTHER, quote=MINT),  # token is the quote: not its main pool
        pair("ODD_QUOTE", 800_000.0, quote=OTHER),  # quote is not SOL/USDC/USDT
        pair("SMALL_SOL", 20_000.0),
        pair("DEEP_USDC", 75_000.0, quote=USDC_MINT),
    )
    v = LiquidityGate().evaluate(inp(pools))
    assert (v.status, v.reason, v.details["pair"]) == (GateStatus.PASS, "liquidity $75,000 >= $50,000", "DEEP_USDC")


def test_liquidity_without_pools_or_without_a_figure_is_unverified() -> None:
    v = LiquidityGate().evaluate(inp())
    assert v.status is GateStatus.UNVERIFIED and v.reason.startswith("no pool data")
    v = LiquidityGate().evaluate(inp((pair("P1", None),)))
    assert (v.status, v.reason) == (GateStatus.UNVERIFIED, "main pool P1 reports no liquidity")


def test_liquidity_fails_when_only_non_main_pools_exist() -> None:
    v = LiquidityGate().evaluate(inp((pair("ODD", 1e6, quote=OTHER),)))
    assert (v.status, v.reason) == (GateStatus.FAIL, "no SOL/USDC/USDT pool with this token as base (1 other pools)")


def test_volume_is_summed_over_all_pools_of_the_token() -> None:
    pools = (pair("A", 10.0, 60_000.0), pair("B", 10.0, 40_000.0, quote=OTHER), pair("A", 10.0, 60_000.0),
             pair("X", 10.0, 1e9, base=OTHER, quote=USDC_MINT))  # duplicate A counted once; X is not the token's
    v = Volume24hGate().evaluate(inp(pools))
    assert (v.status, v.reason) == (GateStatus.PASS, "24h volume $100,000 >= $100,000 over 2 pools")
    v = Volume24hGate(Volume24hGate.Params(min_volume_24h_usd=100_001)).evaluate(inp(pools))
    assert (v.status, v.reason) == (GateStatus.FAIL, "24h volume $100,000 < $100,001 over 2 pools")


def test_volume_with_a_missing_figure_below_threshold_is_unverified() -> None:
    v = Volume24hGate().evaluate(inp((pair("A", 10.0, 70_000.0), pair("B", 10.0, None))))
    assert v.status is GateStatus.UNVERIFIED
    assert v.reason == "24h volume $70,000 from 1 of 2 pools < $100,000; 1 report no volume"
    v = Volume24hGate().evaluate(inp((pair("A", 10.0, 170_000.0), pair("B", 10.0, None))))
    assert v.status is GateStatus.PASS


def test_price_impact_constant_product_estimate() -> None:
    assert price_impact_pct(500, 50_000) == pytest.approx(500 / 25_500 * 100)
    v = PriceImpactGate().evaluate(inp((pair("P", 50_000.0),)))
    assert (v.status, v.reason) == (GateStatus.PASS, "price impact of a $500 buy 1.96% < 2.00%")
    v = PriceImpactGate().evaluate(inp((pair("P", 49_000.0),)))  # 500 / 25,000 = exactly 2%
    assert (v.status, v.reason) == (GateStatus.FAIL, "price impact of a $500 buy 2.00% >= 2.00%")
    assert v.details["impact_pct"] == pytest.approx(2.0)
    v = PriceImpactGate().evaluate(inp())
    assert v.status is GateStatus.UNVERIFIED


# -- on-chain gates -----------------------------------------------------------------------------


@pytest.mark.parametrize("gate", [MintAuthorityGate(), FreezeAuthorityGate(), Token2022ExtensionsGate(),
                                  Top10HoldersGate(Top10HoldersGate.Params(max_top10_pct=50))])
def test_missing_or_unreadable_facts_never_pass(gate: object) -> None:
    g = gate  # each gate shares the same fail-closed preconditions
    assert g.evaluate(inp()).status is GateStatus.UNVERIFIED  # type: ignore[attr-defined]
    v = g.evaluate(inp(f=MintFacts(MINT, NOW, read_error="no RPC endpoint could serve")))  # type: ignore[attr-defined]
    assert (v.status, v.reason) == (GateStatus.UNVERIFIED, "chain read failed: no RPC endpoint could serve")
    v = g.evaluate(inp(f=MintFacts(MINT, NOW, exists=False)))  # type: ignore[attr-defined]
    assert (v.status, v.reason) == (GateStatus.FAIL, "account does not exist on chain")
    v = g.evaluate(inp(f=MintFacts(MINT, NOW, exists=True, owner_program="11111111111111111111111111111111")))  # type: ignore[attr-defined]
    assert v.status is GateStatus.FAIL
    assert v.reason == ("account is not a token mint: owned by 11111111111111111111111111111111, "
                        "not the SPL Token or Token-2022 program")
    v = g.evaluate(inp(f=MintFacts(MINT, NOW, exists=True, owner_program="spl-token")))  # type: ignore[attr-defined]
    assert v.reason == "account is owned by spl-token but is not an initialized mint (a token account or multisig)"


def test_authorities() -> None:
    v = MintAuthorityGate().evaluate(inp(f=facts(mint_authority=AUTH)))
    assert (v.status, v.reason) == (GateStatus.FAIL, f"mint authority is set ({AUTH}): supply can be inflated")
    v = MintAuthorityGate().evaluate(inp(f=facts()))
    assert (v.status, v.reason) == (GateStatus.PASS, "mint authority renounced")
    v = FreezeAuthorityGate().evaluate(inp(f=facts(freeze_authority=AUTH)))
    assert (v.status, v.reason) == (GateStatus.FAIL, f"freeze authority is set ({AUTH}): holders can be frozen")
    v = FreezeAuthorityGate().evaluate(inp(f=facts(mint_authority=AUTH)))
    assert v.status is GateStatus.PASS


def fee(bps_older: int, bps_newer: int) -> MintExtension:
    return MintExtension("transferFeeConfig", {
        "olderTransferFee": {"epoch": 0, "maximumFee": 10**9, "transferFeeBasisPoints": bps_older},
        "newerTransferFee": {"epoch": 5, "maximumFee": 10**9, "transferFeeBasisPoints": bps_newer},
    })


def test_transfer_fee_above_limit_fails_with_the_fee_in_the_reason() -> None:
    t22 = facts(owner_program="spl-token-2022", extensions=(fee(500, 500),))
    v = Token2022ExtensionsGate().evaluate(inp(f=t22))
    assert (v.status, v.reason) == (GateStatus.FAIL, "transfer fee 500 bps > 100 bps")
    assert v.details["transfer_fee_bps"] == 500
    v = Token2022ExtensionsGate(Token2022ExtensionsGate.Params(max_transfer_fee_bps=500)).evaluate(inp(f=t22))
    assert (v.status, v.reason) == (GateStatus.PASS, "no risky extensions; transfer fee 500 bps <= 500 bps")
    # a fee being lowered still charges the older rate until its epoch: the higher one counts
    v = Token2022ExtensionsGate().evaluate(inp(f=facts(owner_program="spl-token-2022", extensions=(fee(300, 0),))))
    assert v.reason == "transfer fee 300 bps > 100 bps"


def test_risky_extensions_each_fail_and_are_all_named() -> None:
    exts = (
        MintExtension("permanentDelegate", {"delegate": AUTH}),
        MintExtension("transferHook", {"authority": AUTH, "programId": OTHER}),
        MintExtension("nonTransferable", {}),
        MintExtension("defaultAccountState", {"accountState": "frozen"}),
        MintExtension("pausableConfig", {"authority": AUTH, "paused": True}),
        MintExtension("metadataPointer", {"authority": AUTH, "metadataAddress": MINT}),
    )
    v = Token2022ExtensionsGate().evaluate(inp(f=facts(owner_program="spl-token-2022", extensions=exts)))
    assert v.status is GateStatus.FAIL
    assert v.reason == (f"permanent delegate {AUTH} can move or burn any holder's tokens; "
                        f"transfer hook program {OTHER} runs on every transfer; token is non-transferable; "
                        "new token accounts start frozen; token is pausable (paused now)")
    assert v.details["extensions"] == [e.name for e in exts]


def test_harmless_extension_states_pass() -> None:
    exts = (
        MintExtension("transferHook", {"authority": None, "programId": None}),
        MintExtension("permanentDelegate", {"delegate": None}),
        MintExtension("defaultAccountState", {"accountState": "initialized"}),
        MintExtension("tokenMetadata", {"name": "T"}),
    )
    v = Token2022ExtensionsGate().evaluate(inp(f=facts(owner_program="spl-token-2022", extensions=exts,
                                                      top10_share_pct=31.25)))
    assert v.status is GateStatus.PASS
    assert v.reason == ("no risky extensions; other extensions: transferHook, permanentDelegate, "
                        "defaultAccountState, tokenMetadata")
    assert v.details["top10_share_pct"] == 31.25  # reported even when the top-10 gate is off


def test_classic_and_unparseable() -> None:
    v = Token2022ExtensionsGate().evaluate(inp(f=facts()))
    assert (v.status, v.reason) == (GateStatus.PASS, "classic SPL token: no extensions")
    v = Token2022ExtensionsGate().evaluate(inp(f=facts(owner_program="spl-token-2022", extensions=(
        MintExtension("unparseableExtension", {"type": 99}),))))
    assert (v.status, v.reason) == (GateStatus.UNVERIFIED, "unrecognised Token-2022 extension type(s) 99")


def test_top10_gate() -> None:
    v = Top10HoldersGate(Top10HoldersGate.Params(max_top10_pct=40)).evaluate(inp(f=facts(top10_share_pct=62.5)))
    assert (v.status, v.reason) == (GateStatus.FAIL, "top-10 holders hold 62.5% > 40.0%")
    v = Top10HoldersGate(Top10HoldersGate.Params(max_top10_pct=40)).evaluate(inp(f=facts(top10_share_pct=40.0)))
    assert (v.status, v.reason) == (GateStatus.PASS, "top-10 holders hold 40.0% <= 40.0%")
    v = Top10HoldersGate(Top10HoldersGate.Params(max_top10_pct=40)).evaluate(inp(f=facts()))
    assert v.status is GateStatus.UNVERIFIED


# -- registry, building, evaluation -------------------------------------------------------------


def test_build_gates_follows_settings() -> None:
    assert [g.name for g in build_gates(GateSettings())] == [
        "liquidity", "volume_24h", "price_impact", "mint_authority", "freeze_authority", "token2022_extensions"]
    custom = GateSettings(min_liquidity_usd=10_000, max_top10_pct=35, require_freeze_renounced=False,
                          max_transfer_fee_bps=250)
    gates = {g.name: g for g in build_gates(custom)}
    assert list(gates) == ["liquidity", "volume_24h", "price_impact", "mint_authority", "token2022_extensions",
                           "top10_holders"]
    assert gates["liquidity"].params.min_liquidity_usd == 10_000.0  # type: ignore[attr-defined]
    assert gates["top10_holders"].params.max_top10_pct == 35.0  # type: ignore[attr-defined]
    assert gates["token2022_extensions"].params.max_transfer_fee_bps == 250  # type: ignore[attr-defined]


def test_every_registered_gate_describes_itself() -> None:
    for name, cls in GATES.items():
        assert cls.name == name
        assert cls.description
        assert isinstance(cls.point_in_time_safe, bool)
        for spec in cls.Params.model_fields.values():
            assert spec.description


def test_param_validation() -> None:
    gate = Token2022ExtensionsGate.configured
    assert gate(max_transfer_fee_bps=250.0).params.max_transfer_fee_bps == 250
    with pytest.raises(ConfigError, match="gate token2022_extensions: parameter max_transfer_fee_bps: 20000 is above "
                                          "the maximum 10000"):
        gate(max_transfer_fee_bps=20_000)
    with pytest.raises(ConfigError, match="expected a whole number"):
        gate(max_transfer_fee_bps=2.5)
    with pytest.raises(ConfigError, match="expected a number"):
        gate(max_transfer_fee_bps="many")  # like [gates] in a file: a numeric string is read as its number


class _Broken:
    name = "broken"

    def evaluate(self, inp: GateInput) -> GateVerdict:
        raise KeyError("boom")


def test_evaluate_gates_fails_closed_on_a_broken_gate_and_admitted_needs_all_pass() -> None:
    good = inp((pair("P", 1e6, 1e6),), facts())
    verdicts = evaluate_gates(build_gates(GateSettings()), good)
    assert [v.status for v in verdicts] == [GateStatus.PASS] * 6
    assert admitted(verdicts)
    with_broken = evaluate_gates([*build_gates(GateSettings()), _Broken()], good)  # type: ignore[list-item]
    assert (with_broken[-1].status, with_broken[-1].reason) == (GateStatus.UNVERIFIED, "gate error: KeyError: 'boom'")
    assert not admitted(with_broken)
    assert not admitted([])
    no_chain = evaluate_gates(build_gates(GateSettings()), inp((pair("P", 1e6, 1e6),)))
    assert [v.status for v in no_chain][3:] == [GateStatus.UNVERIFIED] * 3
    assert not admitted(no_chain)
