"""The gate plugin interface, its registry, and the two functions the universe calls.

A gate is a pure decision: it looks at a :class:`GateInput` that I/O code gathered beforehand
(DexScreener snapshots, on-chain :class:`~dexscan.domain.MintFacts`) and returns one
:class:`~dexscan.domain.GateVerdict` with a human reason that carries the numbers and the
threshold. Gates never read the wall clock (``now`` is an input) and never do I/O, so the same
verdict can be reproduced from stored inputs.

Gates *fail closed*: missing or unreadable data gives ``UNVERIFIED``, never ``PASS``, and a gate that
raises is turned into an ``UNVERIFIED`` verdict rather than taking the caller down.

Adding a gate is one class with :func:`register_gate` in a module imported by
``dexscan/gates/__init__.py``; its ``params`` declare which ``[gates]`` settings it reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from dexscan.config import GateSettings
from dexscan.domain import GateStatus, GateVerdict, MintFacts, PairSnapshot


@dataclass(frozen=True, slots=True)
class GateInput:
    """Everything a gate may look at, gathered by I/O code beforehand."""

    mint: str
    now: int
    pairs: Sequence[PairSnapshot] = ()  # the token's pools (DexScreener snapshots)
    facts: MintFacts | None = None  # on-chain facts; None = not read -> unverified


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One tunable of a gate: its default, type, allowed range and what it means.

    The parameter's name is the key of the ``[gates]`` setting it is read from.
    """

    default: float | int | bool
    type: type
    description: str
    min: float | None = None
    max: float | None = None

    def validate(self, name: str, value: Any) -> Any:
        """``value`` converted to the declared type, or ``ValueError`` naming the parameter."""
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"gate parameter {name}: expected true/false, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"gate parameter {name}: expected a number, got {value!r}")
        if self.type is int and float(value) != int(value):
            raise ValueError(f"gate parameter {name}: expected a whole number, got {value!r}")
        if self.min is not None and value < self.min:
            raise ValueError(f"gate parameter {name}: {value} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise ValueError(f"gate parameter {name}: {value} is above the maximum {self.max}")
        return self.type(value)


class Gate(Protocol):
    """A gate plugin. Concrete gates are classes registered with :func:`register_gate`."""

    name: str
    description: str
    point_in_time_safe: bool  # True when it can judge history from snapshots of that time
    params: Mapping[str, ParamSpec]  # name -> default, type, validation/range, description

    def evaluate(self, inp: GateInput) -> GateVerdict: ...


class GateFactory(Protocol):
    """What the registry holds: a gate class, built from validated parameters."""

    name: str
    params: Mapping[str, ParamSpec]

    def __call__(self, **params: Any) -> Gate: ...

    def enabled(self, settings: GateSettings) -> bool: ...


#: Registered gates by name, in registration (= evaluation and display) order.
GATE_REGISTRY: dict[str, GateFactory] = {}

_G = TypeVar("_G")


def register_gate(cls: _G) -> _G:
    """Class decorator: make a gate available to :func:`build_gates`. Names must be unique."""
    name: str = cls.name  # type: ignore[attr-defined]
    if name in GATE_REGISTRY:
        raise ValueError(f"gate {name!r} is registered twice")
    GATE_REGISTRY[name] = cls  # type: ignore[assignment]
    return cls


def build_gates(settings: GateSettings) -> list[Gate]:
    """The enabled gates, each with its parameters read from ``settings`` and validated.

    The mint/freeze authority gates follow ``require_*_renounced``; the top-10 holder gate exists
    only when ``max_top10_pct >= 0`` (its share is reported in the extension gate's details always).
    """
    gates: list[Gate] = []
    for factory in GATE_REGISTRY.values():
        if not factory.enabled(settings):
            continue
        values = {
            pname: spec.validate(pname, getattr(settings, pname, spec.default))
            for pname, spec in factory.params.items()
        }
        gates.append(factory(**values))
    return gates


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


def usd(value: float) -> str:
    """Whole dollars with thousands separators: ``$42,310``."""
    return f"${value:,.0f}"


class GateBase:
    """Convenience base for gate classes: enabled whenever configured, unless overridden."""

    @classmethod
    def enabled(cls, settings: GateSettings) -> bool:
        return True
