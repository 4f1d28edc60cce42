"""Config files and command lines get the corpus treatment: every bad one exits 2 with one line.

The generators live in :mod:`tests.support.corpus` (``scripts/corpus_run.py`` runs more of them);
every fuzzed command line runs under ``no_long_running()``, so one that got past validation would
fail here instead of starting a scanner, a bot or a network check.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dexscan.cli import main
from tests.support.corpus import CliCase, cli_cases, config_cases, no_long_running, run_cli_case, run_cli_cases

ROOT = Path(__file__).resolve().parents[2]


def test_fuzzed_config_files_are_all_refused_in_one_line(tmp_path: Path) -> None:
    cases = config_cases(seed=7, n=360)
    tally = run_cli_cases(cases, tmp_path)
    assert tally.failures == 0, tally.samples
    assert tally.refused == tally.cases == 360
    assert set(tally.by_family) == {"unknown_key", "unknown_section", "wrong_type", "out_of_range", "nan",
                                    "bad_toml", "huge", "nested", "non_utf8", "secrets", "section_type", "bad_url"}


def test_fuzzed_command_lines_are_all_refused_in_one_line(tmp_path: Path) -> None:
    tally = run_cli_cases(cli_cases(seed=7, n=300, workdir=tmp_path), tmp_path)
    assert tally.failures == 0, tally.samples
    assert tally.refused == tally.cases == 300
    assert len(tally.by_family) == 10


def _refusal(tmp_path: Path, argv: list[str], config: bytes | None = None) -> str:
    with no_long_running():
        outcome = run_cli_case(CliCase("exact", tuple(argv), config), tmp_path)
    assert outcome.problem is None, (outcome.code, outcome.stderr)
    assert outcome.stdout == ""
    return outcome.stderr


@pytest.mark.parametrize(("config", "message"), [
    (b"[app]\nlog_level = \"IN\x80FO\"\n", "is not UTF-8 text (bad byte at offset 21)"),
    (b"[app]\nx = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "is not valid TOML: nested too deeply"),
    (b"[scan]\nqueue_size = " + b"1" * 5000 + b"\n", "is not valid TOML: a number is too long"),
])
def test_config_files_python_could_not_read_are_config_errors(tmp_path: Path, config: bytes, message: str) -> None:
    """tomllib raised UnicodeDecodeError, RecursionError and a bare ValueError: tracebacks before."""
    err = _refusal(tmp_path, ["--config", "{config}", "config"], config)
    assert err == f"dexscan: error: config file {tmp_path / 'fuzz.toml'} {message}\n"


@pytest.mark.parametrize(("config", "message"), [
    (b"[http]\ntimeout_s = nan\n", "http.timeout_s: Input should be a finite number (got nan)"),
    (b"[scoring]\nbias = inf\n", "scoring.bias: Input should be a finite number (got inf)"),
    (b"[scoring.weights]\nrise = nan\n", "scoring.weights.rise: Input should be a finite number (got nan)"),
    (b"[telegram]\nchat_ids = [18446744073709551616]\n",
     "telegram.chat_ids.0: Input should be less than or equal to 4503599627370496 (got 18446744073709551616)"),
    (b"[scoring]\nmin_calibration_samples = 999999999999999999999\n",
     "scoring.min_calibration_samples: Input should be less than or equal to 100000000 (got 999999999999999999999)"),
    (b"[sources.jupiter]\nbase_url = \"https//api.jup.ag?key=SECRET\"\n",
     "sources.jupiter.base_url: Value error, '***' is not a http/https URL, e.g. https://host"),
    (b"[app]\n\"a\\nb\" = 1\n", "app.'a\\nb': unknown key (check the spelling against dexscan/default.toml)"),
])
def test_values_the_settings_could_not_mean_are_refused(tmp_path: Path, config: bytes, message: str) -> None:
    """NaN and infinity were accepted for unbounded floats, 2^64 chat ids for list[int], any text as a
    base URL; an unknown key with a newline in it printed two lines."""
    err = _refusal(tmp_path, ["--config", "{config}", "config"], config)
    assert err == f"dexscan: error: {tmp_path / 'fuzz.toml'}: {message}\n"
    assert "SECRET" not in err


def test_config_paths_that_are_not_files(tmp_path: Path) -> None:
    assert _refusal(tmp_path, ["--config", str(tmp_path), "config"]) == (
        f"dexscan: error: config file {tmp_path} is a directory; give a .toml file\n")
    assert _refusal(tmp_path, ["--config", "", "config"]) == (
        "dexscan: error: argument --config: needs a path, got an empty string (see `dexscan --help`)\n")


@pytest.mark.parametrize(("argv", "line"), [
    (["check"], "check: the following arguments are required: MINT (see `dexscan check --help`)"),
    (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate' (choose from 'scan', 'backfill', 'evaluate', "
                     "'calibrate', 'check', 'bot', 'config', 'doctor', 'stream') (see `dexscan --help`)"),
    (["scan", "--speed", "inf"], "scan: argument --speed: expected a positive number, got 'inf' "
                                 "(see `dexscan scan --help`)"),
    (["scan", "--serve", ""], "scan: argument --serve: needs HOST:PORT, e.g. 127.0.0.1:8787 "
                              "(see `dexscan scan --help`)"),
    (["evaluate", "--db", ""], "evaluate: argument --db: needs a path, got an empty string "
                               "(see `dexscan evaluate --help`)"),
    (["backfill", "--tokens", "abc"], "backfill: argument --tokens: not a Solana address: 'abc' decodes to 3 "
                                      "bytes; a Solana address is 32 bytes (see `dexscan backfill --help`)"),
    (["scan", "--serve", "0.0.0.0:8787"], "scan: argument --serve: host 0.0.0.0 is not a loopback address; the "
                                          "local API has no authentication, so it only listens on 127.0.0.1 (or ::1) "
                                          "(see `dexscan scan --help`)"),
    (["scan", "--demo", "--serve", "localhost"],
     "scan: argument --serve: 'localhost': port must be a number from 0 to 65535 (HOST:PORT, e.g. 127.0.0.1:8787) "
     "(see `dexscan scan --help`)"),
    (["bot"], "telegram: set DEXSCAN_TELEGRAM_TOKEN (from @BotFather) to run the bot, or try `dexscan bot --demo`"),
])
def test_argument_errors_are_one_line(tmp_path: Path, argv: list[str], line: str) -> None:
    """argparse printed its usage block first; --speed inf, --serve "" and --db "" were accepted."""
    assert _refusal(tmp_path, argv) == f"dexscan: error: {line}\n"


def test_a_database_path_sqlite_cannot_open_is_one_line(tmp_path: Path) -> None:
    """Store.open raised sqlite3.OperationalError / FileNotFoundError out of the command: a traceback."""
    assert _refusal(tmp_path, ["calibrate", "--db", str(tmp_path)]) == (
        f"dexscan: error: --db {tmp_path}: is a directory; give a file such as {tmp_path / 'dexscan.db'}\n")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _refusal(tmp_path, ["backfill", "--db", str(blocker / "x.db")])
    assert err == (f"dexscan: error: --db {blocker / 'x.db'}: cannot open a database there "
                   f"([Errno 17] File exists: '{blocker}')\n")


@pytest.mark.parametrize("command", ["evaluate", "calibrate"])
def test_read_commands_never_create_a_database(tmp_path: Path, command: str) -> None:
    typo = tmp_path / "dexscna.db"
    assert _refusal(tmp_path, [command, "--db", str(typo)]) == (
        f"dexscan: error: --db {typo}: no such database; `dexscan {command}` reads one that "
        f"`dexscan backfill --db {typo}` (or `dexscan scan`) has filled\n")
    assert not typo.exists()
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    assert _refusal(tmp_path, [command, "--db", str(text)]) == (
        f"dexscan: error: --db {text}: cannot read it as a database (file is not a database)\n")
    assert text.read_text() == "not a database"


def test_bot_without_a_token_says_so_before_loading_telegram(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DEXSCAN_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    code = ("import sys; from dexscan.cli import main; rc = main(['bot']); "
            "print(rc, 'aiogram' in sys.modules, 'dexscan.alerts.telegram' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, text=True, capture_output=True,
                       timeout=120)
    assert r.stdout == "2 False False\n"
    assert r.stderr == ("dexscan: error: telegram: set DEXSCAN_TELEGRAM_TOKEN (from @BotFather) to run the bot, "
                        "or try `dexscan bot --demo`\n")


def test_every_command_has_a_description_and_every_option_a_help_text() -> None:
    import argparse

    from dexscan.cli import COMMANDS, build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(sub.choices) == sorted([*COMMANDS, "config"])
    for name, cmd in sub.choices.items():
        assert cmd.description and len(cmd.description) > 40, name
        for action in cmd._actions:
            assert action.help, (name, action.dest)
    for action in parser._actions:
        assert action.help, action.dest


def test_the_default_command_is_never_run_by_the_fuzz(tmp_path: Path) -> None:
    with no_long_running():
        outcome = run_cli_case(CliCase("valid", ("scan", "--demo", "--once")), tmp_path)
    assert (outcome.code, outcome.stderr) == (-1, "reached dexscan.scan_command._run_demo\n")
    assert main(["config", "--json"]) == 0  # the fuzz harness left the real entry points in place


def test_as_a_subprocess_the_same_refusals_hold(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[http]\nretries = \"\xff\"\n")
    argvs = [["--config", str(bad), "config"], ["scan", "--bogus"], ["check", "So1111O"],
             ["scan", "--serve", "8.8.8.8:80"], ["--config", str(tmp_path / "missing.toml"), "doctor"],
             ["backfill", "--days", "nan"]]
    env = {"PATH": "/usr/bin:/bin", "DEXSCAN_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "dexscan", *argv], cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv in argvs]
    results = [(p.wait(timeout=120), p.stdout.read() if p.stdout else "", p.stderr.read() if p.stderr else "")
               for p in procs]
    for argv, (code, out, err) in zip(argvs, results, strict=True):
        assert code == 2, (argv, err)
        assert out == ""
        assert len(err.splitlines()) == 1 and err.startswith("dexscan: error: "), (argv, err)
        assert "Traceback" not in err
    assert results[0][2] == f"dexscan: error: config file {bad} is not UTF-8 text (bad byte at offset 18)\n"


def test_config_show_names_the_database_in_effect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["config", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["app"]["db_path"] == ""  # the setting as written: "" = the default place
    assert shown["paths"] == {"database": str(tmp_path / "data" / "dexscan.db"), "data_dir": str(tmp_path / "data")}
    assert main(["config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[lines.index("[paths]") + 1] == f'database = "{tmp_path / "data" / "dexscan.db"}"'
    assert main(["--config", str(_toml(tmp_path, 'db_path = "~/x.db"')), "config", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["paths"]["database"] == str(Path("~/x.db").expanduser())


def _toml(tmp_path: Path, app_line: str) -> Path:
    path = tmp_path / "my.toml"
    path.write_text(f"[app]\n{app_line}\n")
    return path
