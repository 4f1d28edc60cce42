"""On-chain safety gates (SPEC §3): authorities, Token-2022 extensions, top-10 holder share.

They judge :class:`~dexscan.domain.MintFacts` read from the chain, never a third-party API. No
facts, or facts with ``read_error``, give ``UNVERIFIED``; an account that does not exist or is not
a mint gives ``FAIL`` (both are definite answers). A holder share the RPC endpoints refuse to give
(``holders_unavailable``: ``getTokenLargestAccounts`` answered ``-32010``/``-32601``) leaves only the
top-10 gate *unverified*, and only when that gate is on; the other gates judge the mint as read.
They describe the chain *now*, so they are not point-in-time safe for judging history. The authority
verdicts record which RPC endpoints vouched for the facts (``vouched_by``; see :mod:`dexscan.chain.mint`
for when a second endpoint must agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, create_model

from dexscan.domain import GateVerdict, MintFacts
from dexscan.gates.base import GateBase, GateInput, compared, failed, passed, unverified
from dexscan.params import P, PluginParams

SPL_TOKEN = "spl-token"
SPL_TOKEN_2022 = "spl-token-2022"


def facts_problem(gate: str, inp: GateInput) -> GateVerdict | None:
    """The verdict every on-chain gate gives when there is no usable mint to judge, else None."""
    f = inp.facts
    if f is None:
        return unverified(gate, inp, "mint not read from the chain (unverified)")
    if f.read_error:
        return unverified(gate, inp, f"chain read failed: {f.read_error}", endpoint=f.endpoint)
    if not f.exists:
        return failed(gate, inp, "account does not exist on chain", slot=f.slot)
    if not f.is_mint:
        return failed(gate, inp, not_a_mint_reason(f), owner_program=f.owner_program, slot=f.slot)
    return None


def vouching(f: MintFacts) -> dict[str, Any]:
    """Verdict details saying where the facts come from: the slot and the endpoints that vouched for
    them (one name alone: only one endpoint's word, not cross-checked)."""
    return {"slot": f.slot, "vouched_by": list(f.vouched_by)}


def not_a_mint_reason(f: MintFacts) -> str:
    if f.owner_program in (SPL_TOKEN, SPL_TOKEN_2022):
        return f"account is owned by {f.owner_program} but is not an initialized mint (a token account or multisig)"
    return f"account is not a token mint: owned by {f.owner_program}, not the SPL Token or Token-2022 program"


def transfer_fee_bps(state: Mapping[str, Any]) -> int:
    """The higher of the older and newer fee: the older one applies until the newer's epoch."""
    fees = [state.get(k) or {} for k in ("olderTransferFee", "newerTransferFee")]
    return max(int(fee.get("transferFeeBasisPoints") or 0) for fee in fees)


class ChainGate(GateBase[P]):
    """A gate on the on-chain mint: without usable facts :func:`facts_problem` answers; else :meth:`judge`.
    It sees the chain as it is now, so it is not point-in-time safe."""

    point_in_time_safe = False

    def evaluate(self, inp: GateInput) -> GateVerdict:
        problem = facts_problem(self.name, inp)
        if problem is not None:
            return problem
        assert inp.facts is not None
        return self.judge(inp, inp.facts)

    def judge(self, inp: GateInput, facts: MintFacts) -> GateVerdict:
        raise NotImplementedError


class AuthorityGate(ChainGate[PluginParams]):
    """The mint's ``<authority>_authority`` must be renounced (null); ``require_<authority>_renounced``
    switches the gate. A subclass names the authority and what a set one can do; its ``Params`` (that
    one switch, on by default) is made here, so the key, its meaning and :meth:`enabled` agree."""

    authority: ClassVar[str]  # "mint" or "freeze"
    consequence: ClassVar[str]  # what a set authority can do
    switch: ClassVar[str]  # require_<authority>_renounced

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.switch = f"require_{cls.authority}_renounced"
        field: dict[str, Any] = {cls.switch: (bool, Field(
            True, description=f"run this gate (false: a set {cls.authority} authority passes)"))}
        cls.Params = create_model("Params", __base__=PluginParams, __module__=cls.__module__,
                                  __qualname__=f"{cls.__qualname__}.Params", **field)

    @classmethod
    def enabled(cls, params: PluginParams) -> bool:
        return bool(getattr(params, cls.switch))

    def judge(self, inp: GateInput, facts: MintFacts) -> GateVerdict:
        key = f"{self.authority}_authority"
        auth = getattr(facts, key)
        if auth is None:
            return passed(self.name, inp, f"{self.authority} authority renounced", **vouching(facts))
        return failed(self.name, inp, f"{self.authority} authority is set ({auth}): {self.consequence}",
                      **{key: auth}, **vouching(facts))


class MintAuthorityGate(AuthorityGate):
    name = "mint_authority"
    description = "The mint authority must be renounced (null): nobody can mint more supply."
    authority = "mint"
    consequence = "supply can be inflated"


class FreezeAuthorityGate(AuthorityGate):
    name = "freeze_authority"
    description = "The freeze authority must be renounced (null): nobody can freeze holders' tokens."
    authority = "freeze"
    consequence = "holders can be frozen"


class Token2022ExtensionsGate(ChainGate["Token2022ExtensionsGate.Params"]):
    name = "token2022_extensions"
    description = (
        "Rejects Token-2022 extensions that let someone take, block or tax holders' tokens: permanent delegate, "
        "transfer hook with a program, non-transferable, default-frozen accounts, pausable, transfer fee above "
        "the limit. Other extensions and the top-10 holder share are reported in the details."
    )

    class Params(PluginParams):
        max_transfer_fee_bps: int = Field(100, ge=0, le=10_000,
                                          description="highest acceptable transfer fee (basis points)")

    def judge(self, inp: GateInput, f: MintFacts) -> GateVerdict:
        risks: list[str] = []
        notes: list[str] = []
        unknown: list[str] = []
        fee: int | None = None
        max_fee = self.params.max_transfer_fee_bps
        for ext in f.extensions:
            s = ext.state
            if ext.name == "permanentDelegate" and s.get("delegate"):
                risks.append(f"permanent delegate {s['delegate']} can move or burn any holder's tokens")
            elif ext.name == "transferHook" and s.get("programId"):
                risks.append(f"transfer hook program {s['programId']} runs on every transfer")
            elif ext.name == "nonTransferable":
                risks.append("token is non-transferable")
            elif ext.name == "defaultAccountState" and s.get("accountState") == "frozen":
                risks.append("new token accounts start frozen")
            elif ext.name == "pausableConfig":
                paused = " (paused now)" if s.get("paused") else ""
                risks.append(f"token is pausable{paused}")
            elif ext.name == "transferFeeConfig":
                fee = transfer_fee_bps(s)
                if fee > max_fee:
                    risks.append(f"transfer fee {fee} bps > {max_fee} bps")
                else:
                    notes.append(f"transfer fee {fee} bps <= {max_fee} bps")
            elif ext.name == "unparseableExtension":
                unknown.append(str(s.get("type", "?")))
        names = [e.name for e in f.extensions]
        details = {"owner_program": f.owner_program, "extensions": names, "transfer_fee_bps": fee,
                   "max_transfer_fee_bps": max_fee, "top10_share_pct": f.top10_share_pct,
                   "slot": f.slot}
        if f.holders_unavailable:
            details["holders_unavailable"] = f.holders_unavailable
        if risks:
            return failed(self.name, inp, "; ".join(risks), **details)
        if unknown:
            return unverified(self.name, inp, f"unrecognised Token-2022 extension type(s) {', '.join(unknown)}",
                              **details)
        if not names:
            kind = "classic SPL token" if f.owner_program == SPL_TOKEN else "Token-2022 mint"
            return passed(self.name, inp, f"{kind}: no extensions", **details)
        harmless = [n for n in names if n != "transferFeeConfig"]
        parts = [*notes, *([f"other extensions: {', '.join(harmless)}"] if harmless else [])]
        return passed(self.name, inp, "no risky extensions; " + "; ".join(parts), **details)


class Top10HoldersGate(ChainGate["Top10HoldersGate.Params"]):
    name = "top10_holders"
    description = "Share of supply held by the 10 largest holders, pool vaults and bonding curves excluded."

    class Params(PluginParams):
        max_top10_pct: float = Field(-1.0, ge=-1, le=100, description=(
            "highest acceptable top-10 share in percent (0-100); below 0 (-1) the gate is off and the share "
            "is only reported"))

    @classmethod
    def enabled(cls, params: PluginParams) -> bool:
        return isinstance(params, cls.Params) and params.max_top10_pct >= 0

    def judge(self, inp: GateInput, facts: MintFacts) -> GateVerdict:
        share, limit = facts.top10_share_pct, self.params.max_top10_pct
        details = {"top10_share_pct": share, "max_top10_pct": limit}
        if share is None and facts.holders_unavailable:
            return unverified(self.name, inp, f"top-10 holder share unknown: {facts.holders_unavailable}",
                              holders_unavailable=facts.holders_unavailable, **details)
        if share is None:
            return unverified(self.name, inp, "top-10 holder share unknown (largest accounts not read)", **details)
        return compared(self.name, inp, share, "<=", limit, f"top-10 holders hold {share:.1f}%", f"{limit:.1f}%",
                        **details)
