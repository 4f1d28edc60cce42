"""The gate plugin interface and the two functions the universe calls.

A gate is a pure decision: it looks at a :class:`GateInput` that I/O code gathered beforehand
(DexScreener snapshots, on-chain :class:`~dexscan.domain.MintFacts`) and returns one
:class:`~dexscan.domain.GateVerdict` with a human reason that carries the numbers and the
threshold. Gates never read the wall clock (``now`` is an input) and never do I/O, so the same
verdict can be reproduced from stored inputs.

Gates *fail closed*: missing or unreadable data gives ``UNVERIFIED``, never ``PASS``, and a gate that
raises is turned into an ``UNVERIFIED`` verdict rather than taking the caller down.

Adding a gate is one :class:`GateBase` subclass plus its line in :data:`dexscan.plugins.GATES`; its
``Params`` model declares the ``[gates]`` keys it reads (the ``[gates]`` table is built from every
gate's ``Params``, so two gates never declare the same key). A gate that a setting can switch off
says so in :meth:`GateBase.enabled`.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from dexscan.domain import GateStatus, GateVerdict, MintFacts, PairSnapshot
from dexscan.params import P, Plugin, PluginParams


@dataclass(frozen=True, slots=True)
class GateInput:
    """Everything a gate may look at, gathered by I/O code beforehand."""

    mint: str
    now: int
    pairs: Sequence[PairSnapshot] = ()  # the token's pools (DexScreener snapshots)
    facts: MintFacts | None = None  # on-chain facts; None = not read -> unverified


class Gate(Protocol):
    """What the universe calls: a verdict on one token. Concrete gates are :class:`GateBase` classes."""

    @property
    def name(self) -> str: ...

    @property
    def point_in_time_safe(self) -> bool:  # True when it can judge history from snapshots of that time
        ...

    def evaluate(self, inp: GateInput) -> GateVerdict: ...


def evaluate_gates(gates: Sequence[Gate], inp: GateInput) -> list[GateVerdict]:
    """One verdict per gate, in order. A gate that raises yields ``UNVERIFIED`` (fail closed)."""
    verdicts: list[GateVerdict] = []
    for gate in gates:
        try:
            verdicts.append(gate.evaluate(inp))
        except Exception as exc:  # a bug in one gate must not admit the token nor stop the others
            verdicts.append(unverified(gate.name, inp, f"gate error: {type(exc).__name__}: {exc}"))
    return verdicts


def admitted(verdicts: Sequence[GateVerdict]) -> bool:
    """True only when there is at least one verdict and every verdict passed (fail closed)."""
    return bool(verdicts) and all(v.status is GateStatus.PASS for v in verdicts)


# -- helpers for gate implementations ------------------------------------------------------------


def verdict(gate: str, inp: GateInput, status: GateStatus, reason: str, **details: Any) -> GateVerdict:
    return GateVerdict(inp.mint, gate, status, reason, inp.now, details)


def passed(gate: str, inp: GateInput, reason: str, **details: Any) -> GateVerdict:
    return verdict(gate, inp, GateStatus.PASS, reason, **details)


def failed(gate: str, inp: GateInput, reason: str, **details: Any) -> GateVerdict:
    return verdict(gate, inp, GateStatus.FAIL, reason, **details)


def unverified(gate: str, inp: GateInput, reason: str, **details: Any) -> GateVerdict:
    return verdict(gate, inp, GateStatus.UNVERIFIED, reason, **details)


Comparison = Literal[">=", ">", "<=", "<"]
_HOLDS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_OPPOSITE: dict[Comparison, Comparison] = {">=": "<", ">": "<=", "<=": ">", "<": ">="}


def compared(gate: str, inp: GateInput, value: float, op: Comparison, limit: float, text: str, shown_limit: str,
             **details: Any) -> GateVerdict:
    """A threshold check: PASS when ``value op limit`` holds, reason ``"<text> <op> <shown_limit>"``;
    else FAIL with the opposite operator (``liquidity $42,310 < $50,000``)."""
    if _HOLDS[op](value, limit):
        return passed(gate, inp, f"{text} {op} {shown_limit}", **details)
    return failed(gate, inp, f"{text} {_OPPOSITE[op]} {shown_limit}", **details)


def usd(value: float) -> str:
    """Whole dollars with thousands separators: ``$42,310``."""
    return f"${value:,.0f}"


class GateBase(Plugin[P]):
    """Base of gate classes: ``Params`` (its ``[gates]`` keys), enabled whenever configured unless
    :meth:`enabled` says otherwise."""

    kind = "gate"

    @classmethod
    def enabled(cls, params: PluginParams) -> bool:
        """Whether the gate runs with these parameters (a switch among them may turn it off)."""
        return True

    def evaluate(self, inp: GateInput) -> GateVerdict:
        raise NotImplementedError
