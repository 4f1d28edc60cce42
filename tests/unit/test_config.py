from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import dexscan
from dexscan.cli import main
from dexscan.config import DEFAULT_CONFIG, load_settings, mask_url, settings_for_display
from dexscan.errors import ConfigError


def test_defaults_carry_the_spec_numbers() -> None:
    s = load_settings(env={})
    assert s.gates.min_liquidity_usd == 50_000.0
    assert s.gates.min_volume_24h_usd == 100_000.0
    assert s.gates.impact_size_usd == 500.0 and s.gates.max_price_impact_pct == 2.0
    assert s.strategies.ignition.rise_pct == 2.0 and s.strategies.ignition.volume_mult == 3.0
    assert s.strategies.ignition.sma_bars == 20
    assert s.strategies.confirmation.rise_pct == 10.0
    assert s.ladder.tp_r == [1.5, 3.0, 5.0] and s.ladder.sl_atr_mult == 1.5 and s.ladder.time_stop_h == 24
    assert s.sources.jupiter.requests_per_minute == 30
    assert s.sources.dexscreener.pairs_per_minute == 300 and s.sources.dexscreener.profiles_per_minute == 60
    assert s.sources.geckoterminal.requests_per_minute == 25
    assert s.rpc.requests_per_10s == 100 and s.rpc.method_requests_per_10s == 40
    assert s.universe.discovery_interval_s == 600 and s.universe.exit_after_s == 3600
    assert s.scoring.min_calibration_samples == 500
    assert s.evaluate.embargo_days == 1.0
    assert s.store.lock_wait_s == 1800.0  # half an hour: tests/unit/test_store.py counts its 367 attempts
    assert not s.gates.top10_gate_enabled


def test_user_file_layers_over_defaults(tmp_path: Path) -> None:
    f = tmp_path / "my.toml"
    f.write_text("[gates]\nmin_liquidity_usd = 75000\n")
    s = load_settings(f, env={})
    assert s.gates.min_liquidity_usd == 75_000
    assert s.gates.min_volume_24h_usd == 100_000  # untouched default


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[gates]\nmin_liquidty_usd = 1\n", "gates.min_liquidty_usd: unknown key; did you mean"),
        ("[gates]\nmin_liquidity_usd = 'lots'\n", "gates.min_liquidity_usd: Input should be a valid number"),
        ("[ladder]\nsl_floor_frac = 1.5\n", "ladder.sl_floor_frac: Input should be less than 1"),
        ("[ladder]\ntp_r = [3.0, 1.5, 5.0]\n", "ladder.tp_r: Value error, needs three increasing"),
        ("[app]\ntimezone = 'Mars/Base'\n", "app.timezone: Value error, unknown IANA time zone"),
        ("[store]\nlock_wait_s = 0\n", "store.lock_wait_s: Input should be greater than 0 (got 0)"),
    ],
)
def test_bad_values_name_the_key_and_the_file(tmp_path: Path, body: str, expected: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_settings(f, env={})
    assert str(err.value).startswith(f"{f}: {expected}")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[gates]\nmin_liquidty_usd = 1\n",
         "gates.min_liquidty_usd: unknown key; did you mean gates.min_liquidity_usd?"),
        ("[gatez]\nmin_liquidity_usd = 1\n", "gatez: unknown key; did you mean gates?"),
        ("[scoring]\nmin_calibraton_samples = 5\n",
         "scoring.min_calibraton_samples: unknown key; did you mean scoring.min_calibration_samples?"),
        ("[gates]\nzzz = 1\n",
         "gates.zzz: unknown key (check the spelling against dexscan/default.toml)"),
        ("[colours]\nx = 1\n",
         "colours: unknown key (check the spelling against dexscan/default.toml)"),
    ],
)
def test_an_unknown_key_gets_the_nearest_known_one(tmp_path: Path, body: str, message: str) -> None:
    """Issue 16: "did you mean" from the keys of the same section; ``secrets`` is never offered (it is
    read from the environment only), and a key like no known one keeps the plain message."""
    f = tmp_path / "typo.toml"
    f.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_settings(f, env={})
    assert str(err.value) == f"{f}: {message}"


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "broken.toml"
    f.write_text("[gates\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(f, env={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})


def test_secrets_only_from_env_and_always_masked(tmp_path: Path) -> None:
    token = "123456:ABCdefSECRETtoken"
    rpc = "https://mainnet.helius-rpc.com/?api-key=SUPERSECRETKEY"
    s = load_settings(env={"DEXSCAN_TELEGRAM_TOKEN": token, "DEXSCAN_RPC_URLS": rpc})
    assert s.rpc_endpoints()[0] == rpc
    shown = repr(settings_for_display(s)) + repr(s)
    assert token not in shown and "SUPERSECRETKEY" not in shown
    assert settings_for_display(s)["secrets"]["DEXSCAN_RPC_URLS"] == ["https://mainnet.helius-rpc.com/***"]
    f = tmp_path / "s.toml"
    f.write_text("[secrets]\ntelegram_token = 'x'\n")
    with pytest.raises(ConfigError, match="environment only"):
        load_settings(f, env={})


def test_secrets_file_is_read(tmp_path: Path) -> None:
    sf = tmp_path / "secrets.env"
    sf.write_text("# local, never committed\nDEXSCAN_BIRDEYE_API_KEY='bird-key-123456'\n")
    s = load_settings(env={"DEXSCAN_SECRETS_FILE": str(sf)})
    assert s.secrets.birdeye_api_key is not None
    assert s.secrets.birdeye_api_key.get_secret_value() == "bird-key-123456"


def test_mask_url() -> None:
    assert mask_url("https://api.mainnet-beta.solana.com") == "https://api.mainnet-beta.solana.com"
    assert mask_url("https://rpc.example.com/v2/abcdef") == "https://rpc.example.com/***"
    assert mask_url("http://127.0.0.1:8899/") == "http://127.0.0.1:8899/"
    assert mask_url("https://user:pw@host.io/") == "https://host.io/***"


def test_cli_config_show_masks_and_exits_zero(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEXSCAN_TELEGRAM_TOKEN", "999:verysecretvalue")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "[gates]" in out and "min_liquidity_usd = 50000.0" in out
    assert "verysecretvalue" not in out and '"DEXSCAN_TELEGRAM_TOKEN" = ' not in out


def test_cli_bad_config_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("[scan]\nhot_refresh_s = -1\n")
    assert main(["--config", str(f), "config", "show"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "scan.hot_refresh_s" in err and str(f) in err


def test_default_file_is_package_data() -> None:
    # read through importlib.resources from inside the package, so a wheel install carries its defaults
    assert DEFAULT_CONFIG.name == "default.toml" and DEFAULT_CONFIG.is_file()
    assert Path(str(DEFAULT_CONFIG)).parent == Path(dexscan.__file__).parent


def test_python_dash_m_help_runs() -> None:
    r = subprocess.run([sys.executable, "-m", "dexscan", "--help"], capture_output=True, text=True, check=False)
    assert r.returncode == 0
    for cmd in ("scan", "backfill", "evaluate", "calibrate", "check", "bot", "config", "doctor"):
        assert cmd in r.stdout


@pytest.mark.parametrize("listen", ["0.0.0.0:8787", "garbage", "127.0.0.1:8787"])
def test_service_listen_is_refused_with_the_one_way_to_bind(tmp_path: Path, listen: str) -> None:
    """The key was accepted and never used; ``--serve`` (loopback only) is the one way to bind."""
    f = tmp_path / "user.toml"
    f.write_text(f"[service]\nlisten = {listen!r}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(f, env={})
    assert str(err.value) == (
        f"{f}: service.listen: there is no such setting any more; the local API is started with "
        "`dexscan scan --serve 127.0.0.1:8787` (loopback addresses only): remove service.listen")
