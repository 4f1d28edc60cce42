"""The built wheel works on its own: installed in a fresh venv and run from another directory.

This is what ``pip install dexscan`` or ``pipx install`` gives a user: no source tree next to the
package, so everything dexscan reads at run time (its defaults, ``dexscan/default.toml``) must be
inside the wheel. The test builds the wheel from a copy of the source (nothing is written into the
work tree), installs it with ``--no-deps --no-index`` into a fresh venv and runs ``dexscan config show``,
``dexscan check --help`` and ``dexscan scan --demo --once --json`` there, with the working directory
set to an unrelated temporary directory.

The test suite must not reach the internet, so the fresh venv cannot download dexscan's dependencies.
Instead a ``.pth`` file in its site-packages puts the running interpreter's site-packages on its
``sys.path``, after its own. A path line in a ``.pth`` file only extends ``sys.path``: the ``.pth``
files inside the directory it names are not processed, so the editable-install finder of the project's
own venv (``__editable__.dexscan-*.pth``) is not installed, and ``import dexscan`` resolves to the wheel
in the fresh venv (the test checks ``dexscan.__file__``). Building without isolation needs the build
tools of requirements.lock (setuptools >= 77) in the running venv, which ``scripts/quickstart.py``
installs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tomllib
import venv
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = "Scripts" if os.name == "nt" else "bin"


@dataclass(frozen=True)
class FreshInstall:
    venv: Path
    elsewhere: Path  # the working directory of every command: neither the source tree nor the venv
    data_dir: Path

    def run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["DEXSCAN_DATA_DIR"] = str(self.data_dir)
        cmd = [str(self.venv / BIN / args[0]), *args[1:]]
        return subprocess.run(
            cmd, cwd=self.elsewhere, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )


def _pip(*args: str) -> None:
    # --isolated: this machine's pip configuration (extra indexes, find-links) plays no part
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0, f"pip {args[0]} failed:\n{r.stdout}\n{r.stderr}"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> FreshInstall:
    setuptools = version("setuptools")
    if int(setuptools.split(".")[0]) < 77:
        pytest.fail(
            f"setuptools {setuptools} in this venv cannot build dexscan (needs >= 77, pinned in requirements.lock); "
            "reinstall the venv with `python3 scripts/quickstart.py test`"
        )
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "dexscan", src / "dexscan", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = base / "dist"
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", str(src), "-w", str(dist))
    (wheel,) = dist.glob("dexscan-*.whl")

    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / BIN / ("python.exe" if os.name == "nt" else "python")
    _pip("--python", str(python), "install", "--no-deps", "--no-index", str(wheel))

    # The dependencies, without the network: the running interpreter's site-packages, as plain paths.
    fresh_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(fresh_site) / "_dexscan_test_deps.pth").write_text("".join(f"{p}\n" for p in ours), encoding="utf-8")

    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    data_dir = base / "data"
    data_dir.mkdir()
    return FreshInstall(env_dir, elsewhere, data_dir)


def test_dexscan_is_imported_from_the_wheel_not_the_source_tree(fresh: FreshInstall) -> None:
    r = fresh.run("python", "-c", "import dexscan; print(dexscan.__file__)")
    assert r.returncode == 0, r.stderr
    where = Path(r.stdout.strip()).resolve()
    assert where.is_relative_to(fresh.venv.resolve()), where
    assert not where.is_relative_to(ROOT), where
    assert (where.parent / "default.toml").is_file()


def test_the_wheel_ships_no_test_kit(fresh: FreshInstall) -> None:
    """The fuzz corpus and the fault harness live in tests/support (issue 15): not in the package."""
    r = fresh.run("python", "-c", "import dexscan, pathlib; root = pathlib.Path(dexscan.__file__).parent; "
                  "print(sorted(str(p.relative_to(root)) for p in root.rglob('*.py') "
                  "if p.stem in ('corpus', 'fault_harness')))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    r = fresh.run("python", "-c", "import tests.support")
    assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr


def test_config_show_prints_the_packaged_defaults(fresh: FreshInstall) -> None:
    r = fresh.run("dexscan", "config", "show")
    assert r.returncode == 0, r.stderr
    shown = tomllib.loads(r.stdout)
    assert shown["gates"]["min_liquidity_usd"] == 50_000.0
    assert shown["gates"]["min_volume_24h_usd"] == 100_000.0
    assert shown["app"]["timezone"] == "Asia/Kolkata"
    assert shown["strategies"]["ignition"] == {"rise_pct": 2.0, "volume_mult": 3.0, "sma_bars": 20}
    assert shown["ladder"]["tp_r"] == [1.5, 3.0, 5.0]
    assert shown["secrets"]["DEXSCAN_TELEGRAM_TOKEN"] == "(not set)"

    # and every value of the file is the one in effect
    def flat(table: dict[str, object], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
        out: dict[tuple[str, ...], object] = {}
        for k, v in table.items():
            out.update(flat(v, (*prefix, k)) if isinstance(v, dict) else {(*prefix, k): v})
        return out

    defaults = flat(tomllib.loads((ROOT / "dexscan" / "default.toml").read_text(encoding="utf-8")))
    in_effect = flat(shown)
    assert len(defaults) > 50
    assert {k: v for k, v in defaults.items() if in_effect.get(k) != v} == {}


def test_check_help(fresh: FreshInstall) -> None:
    r = fresh.run("dexscan", "check", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: dexscan check ") and "MINT" in r.stdout and "--json" in r.stdout


def test_scan_demo_once_json(fresh: FreshInstall) -> None:
    db = fresh.data_dir / "scan.db"
    r = fresh.run("dexscan", "scan", "--demo", "--once", "--json", "--db", str(db), timeout=300)
    assert r.returncode == 0, r.stderr
    # --json: stdout carries only JSON lines (signals and outcomes; one cycle may find none)
    for line in r.stdout.splitlines():
        assert isinstance(json.loads(line), dict), line
    # the one-line summary of --once, on stderr
    m = re.search(
        r"(\d+) token\(s\) in the universe \(gates: (\d+) passed, (\d+) failed, (\d+) unverified\), "
        r"(\d+) snapshot\(s\) judged",
        r.stderr,
    )
    assert m, r.stderr
    universe, passed, failed, _unverified, judged = map(int, m.groups())
    assert universe > 0 and passed == universe and judged > 0
    assert failed > 0  # the demo's unsafe mints, read from the simulated chain, are kept out
    with sqlite3.connect(db) as conn:
        (tokens,) = conn.execute("SELECT count(*) FROM tokens").fetchone()
        (verdicts,) = conn.execute("SELECT count(*) FROM gate_verdicts").fetchone()
    assert tokens >= passed + failed and verdicts > 0
