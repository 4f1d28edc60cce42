"""The plugin registry against the shipped defaults and the settings built from it (issue 15)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from dexscan.config import DEFAULT_CONFIG, load_settings
from dexscan.errors import ConfigError
from dexscan.params import PluginParams
from dexscan.plugins import GATES, STRATEGIES, build_gates, describe, not_point_in_time_safe
from dexscan.strategies import Ignition


def _defaults() -> dict[str, Any]:
    with DEFAULT_CONFIG.open("rb") as fh:
        return tomllib.load(fh)


def _check_table(where: str, model: type[PluginParams], table: dict[str, Any]) -> None:
    """Every key of ``table`` is a field of ``model``, within its bounds, and every field of the
    model is in the table with the model's default as its value."""
    fields = model.model_fields
    assert sorted(set(table) - set(fields)) == [], f"{where}: keys no plugin declares"
    assert sorted(set(fields) - set(table)) == [], f"{where}: parameters missing from default.toml"
    model.model_validate(table)  # every value of the file within the model's bounds
    for key, info in fields.items():
        assert table[key] == info.default, f"{where}.{key}: the file says {table[key]!r}, the model {info.default!r}"
        assert type(table[key]) is type(info.default), f"{where}.{key}: {table[key]!r} vs {info.default!r}"


def test_default_toml_strategy_tables_match_the_registry() -> None:
    strategies = _defaults()["strategies"]
    assert strategies["enabled"] == list(STRATEGIES)
    assert sorted(set(strategies) - {"enabled"}) == sorted(STRATEGIES)
    for name, cls in STRATEGIES.items():
        _check_table(f"strategies.{name}", cls.Params, strategies[name])
    assert "detector" not in _defaults()


def test_default_toml_gates_table_matches_the_registry() -> None:
    gates = dict(_defaults()["gates"])
    for name, cls in GATES.items():
        mine = {key: gates.pop(key) for key in cls.Params.model_fields if key in gates}
        _check_table(f"gates ({name})", cls.Params, mine)
    assert gates == {}, "[gates] keys no gate declares"


def test_settings_sections_are_the_plugins_models() -> None:
    s = load_settings(env={})
    for name, cls in STRATEGIES.items():
        assert getattr(s.strategies, name) == cls.Params()
        assert s.strategies.params_for(cls.Params) is getattr(s.strategies, name)
    for cls in GATES.values():
        assert s.gates.params_for(cls.Params) == cls.Params()
    assert [g.name for g in build_gates(s.gates)] == [
        "liquidity", "volume_24h", "price_impact", "mint_authority", "freeze_authority", "token2022_extensions"]


def test_an_old_detector_table_is_read_as_its_strategy_table_with_one_notice(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "old.toml"
    f.write_text("[detector.ignition]\nrise_pct = 5.0\nsma_bars = 30\n\n[detector.confirmation]\nrise_pct = 12.0\n\n"
                 "[strategies.ignition]\nsma_bars = 25\n")
    s = load_settings(f, env={})
    assert (s.strategies.ignition.rise_pct, s.strategies.ignition.sma_bars) == (5.0, 25)  # the new table wins
    assert s.strategies.ignition.volume_mult == 3.0 and s.strategies.confirmation.rise_pct == 12.0
    assert Ignition.from_settings(s).params.rise_pct == 5.0
    assert capsys.readouterr().err == (
        f"dexscan: note: {f}: [detector.ignition] is now [strategies.ignition]; [detector.confirmation] is now "
        "[strategies.confirmation]: still read for now, please rename them\n")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[detector.ignition]\nrise_pct = 5000.0\n",
         "strategies.ignition.rise_pct: Input should be less than or equal to 1000 (got 5000.0)"),
        ("[strategies.god_candle]\nwindow_bar = 3\n",
         "strategies.god_candle.window_bar: unknown key; did you mean strategies.god_candle.window_bars?"),
        ("[strategies.ignitoin]\nrise_pct = 3.0\n",
         "strategies.ignitoin: unknown key; did you mean strategies.ignition?"),
        ("[gates]\nimpact_size_usd = 0.001\n",
         "gates.impact_size_usd: Input should be greater than or equal to 0.01 (got 0.001)"),
        ("[detector.warmup]\nbars = 3\n",
         "detector: unknown key (check the spelling against dexscan/default.toml)"),
    ],
)
def test_plugin_settings_errors_name_the_key_and_the_file(tmp_path: Path, body: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_settings(f, env={})
    assert str(err.value) == f"{f}: {message}"


def test_only_point_in_time_safe_plugins_judge_history() -> None:
    assert not_point_in_time_safe(STRATEGIES) == []
    assert not_point_in_time_safe(GATES) == ["mint_authority", "freeze_authority", "token2022_extensions",
                                             "top10_holders"]


def test_every_plugin_describes_its_parameters() -> None:
    d = describe()
    assert [x["name"] for x in d["strategies"]] == list(STRATEGIES)
    assert [x["name"] for x in d["gates"]] == list(GATES)
    ignition = d["strategies"][0]
    assert ignition["params"][0] == {"name": "rise_pct", "default": 2.0, "gt": 0, "le": 1000,
                                     "description": "rise of the price over the forming 4H candle's open, percent (>=)"}
    price_impact = d["gates"][2]["params"]
    assert [(p["name"], p.get("ge"), p.get("gt"), p.get("le")) for p in price_impact] == [
        ("impact_size_usd", 0.01, None, None), ("max_price_impact_pct", None, 0, 100)]


def test_a_plugin_keeps_its_own_params_and_refuses_another_plugins() -> None:
    from dexscan.gates.safety import FreezeAuthorityGate, MintAuthorityGate
    from dexscan.strategies import GodCandle

    assert Ignition().params == Ignition.Params()
    tuned = Ignition.Params(rise_pct=4.0)
    assert Ignition(tuned).params is tuned
    with pytest.raises(TypeError) as err:
        Ignition(GodCandle.Params())  # type: ignore[arg-type]
    assert str(err.value) == "strategy ignition: parameters must be Ignition.Params, got GodCandle.Params"
    assert [(g.Params.__qualname__, _fields(g.Params)) for g in (MintAuthorityGate, FreezeAuthorityGate)] == [
        ("MintAuthorityGate.Params",
         [("require_mint_renounced", True, "run this gate (false: a set mint authority passes)")]),
        ("FreezeAuthorityGate.Params",
         [("require_freeze_renounced", True, "run this gate (false: a set freeze authority passes)")])]
    assert MintAuthorityGate.enabled(MintAuthorityGate.Params(require_mint_renounced=False)) is False


def _fields(model: type[PluginParams]) -> list[tuple[str, Any, str | None]]:
    return [(key, info.default, info.description) for key, info in model.model_fields.items()]


def test_an_evaluation_says_which_gates_it_could_only_judge_as_of_now() -> None:
    """``point_in_time_safe`` is read: strategies that are not are left out of the replay (and listed),
    gates that are not are named in the report, the enabled ones only."""
    from dexscan.metrics import build_metrics
    from dexscan.replay import run_replay
    from dexscan.report import render_markdown

    s = load_settings(env={})
    metrics, _ = build_metrics(s, run_replay(s, []))
    assert metrics["gates_as_of_now"] == ["mint_authority", "freeze_authority", "token2022_extensions"]
    line = ("Gates judged on the chain as it is now, not as it was then (not point-in-time safe; the replayed tokens "
            "are the ones the scanner admitted): mint_authority, freeze_authority, token2022_extensions.")
    assert line in render_markdown(metrics, []).splitlines()
    tuned = s.with_overrides({"gates.max_top10_pct": 30.0, "gates.require_mint_renounced": False})
    assert build_metrics(tuned, run_replay(tuned, []))[0]["gates_as_of_now"] == [
        "freeze_authority", "token2022_extensions", "top10_holders"]
