"""Plugin parameters: the one pydantic base every strategy's and gate's ``Params`` model derives from.

A plugin (a strategy or a gate, listed in :mod:`dexscan.plugins`) declares its tunables once, as a
nested ``Params`` model: each field with its default, its bounds (``Field(gt=..., le=...)``) and its
meaning (``description``). :mod:`dexscan.config` builds the ``[strategies.<name>]`` tables and the
``[gates]`` table from these models, so a setting's default and range exist in one place.

:class:`Plugin` is generic over that model: ``class Ignition(Strategy["Ignition.Params"])`` stores
the validated ``Params`` instance once, as ``self.params`` (typed as the plugin's own model), and the
plugin reads ``self.params.rise_pct``; it copies nothing field by field.

The model's configuration is the one every settings section uses (:data:`SECTION_CONFIG`): unknown
keys are refused, values are frozen, and no setting means anything as NaN or infinity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from dexscan.errors import ConfigError

#: The configuration of every settings section and plugin ``Params`` model (TOML spells NaN and
#: infinity ``nan`` and ``inf``; no setting means anything as either).
SECTION_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PluginParams(BaseModel):
    """Base of a plugin's ``Params`` model (no fields: a plugin without tunables uses it as is)."""

    model_config = SECTION_CONFIG


P = TypeVar("P", bound=PluginParams)
_PL = TypeVar("_PL", bound="Plugin")


def _problem(err: Mapping[str, Any]) -> str:
    """One pydantic error as the plugin messages word it (``3 is above the maximum 2``)."""
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind in ("int_from_float", "int_parsing_size"):
        return f"expected a whole number, got {value!r}"
    if kind in ("float_type", "float_parsing", "int_type", "int_parsing"):
        return f"expected a number, got {value!r}"
    if kind == "finite_number":
        return f"expected a finite number, got {value!r}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true/false, got {value!r}"
    if kind == "greater_than_equal":
        return f"{value} is below the minimum {ctx['ge']}"
    if kind == "greater_than":
        return f"{value} must be above {ctx['gt']}"
    if kind == "less_than_equal":
        return f"{value} is above the maximum {ctx['le']}"
    if kind == "less_than":
        return f"{value} must be below {ctx['lt']}"
    return str(err["msg"])


def build_params(kind: str, name: str, model: type[P], values: Mapping[str, Any]) -> P:
    """``values`` validated by ``model``, or one :class:`ConfigError` naming the plugin and the
    parameter (``strategy ignition: parameter sma_bars: expected a whole number, got 2.5``)."""
    where = f"{kind} {name}"
    unknown = sorted(set(values) - set(model.model_fields))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {', '.join(unknown)}; "
                          f"known: {', '.join(model.model_fields) or '(none)'}")
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{where}: parameter {field}: {_problem(err)}") from None


def describe_params(model: type[PluginParams]) -> list[dict[str, Any]]:
    """Each field of ``model``: name, default, bounds and meaning (for ``dexscan config`` and docs)."""
    out: list[dict[str, Any]] = []
    for fname, info in model.model_fields.items():
        bounds: dict[str, Any] = {}
        for meta in info.metadata:
            for attr in ("gt", "ge", "lt", "le"):
                if getattr(meta, attr, None) is not None:
                    bounds[attr] = getattr(meta, attr)
        out.append({"name": fname, "default": info.default, **bounds, "description": info.description or ""})
    return out


class Plugin(Generic[P]):
    """What strategies and gates share: a name, a meaning, one ``Params`` model, and whether it can
    judge history (``point_in_time_safe``: it only uses what a replay of stored data can show it).

    A subclass names its ``Params`` model twice, once as the type argument (so ``self.params`` has
    the model's type) and once by defining it: ``class MyGate(GateBase["MyGate.Params"])`` with a
    nested ``class Params(PluginParams)``. ``self.params`` is that model's instance, its defaults
    when none is given."""

    kind: ClassVar[str]  # "strategy" or "gate", for messages
    name: ClassVar[str]
    description: ClassVar[str]
    point_in_time_safe: ClassVar[bool] = True
    Params: ClassVar[type[PluginParams]] = PluginParams

    def __init__(self, params: P | None = None) -> None:
        if params is None:
            params = cast(P, self.Params())
        elif not isinstance(params, self.Params):
            raise TypeError(f"{self.kind} {self.name}: parameters must be {self.Params.__qualname__}, "
                            f"got {type(params).__qualname__}")
        self.params: P = params

    @classmethod
    def configured(cls: type[_PL], **values: Any) -> _PL:
        """The plugin with ``values`` validated by its ``Params`` (a ConfigError naming the plugin and
        the parameter otherwise)."""
        return cls(build_params(cls.kind, cls.name, cls.Params, values))

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Self-description for ``dexscan config`` and docs."""
        return {"name": cls.name, "description": cls.description, "point_in_time_safe": cls.point_in_time_safe,
                "params": describe_params(cls.Params)}
