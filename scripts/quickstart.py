#!/usr/bin/env python3
"""Set-up and run in one command, on a machine that has only Python >= 3.11.

    python3 scripts/quickstart.py demo    # the scanner on its built-in simulated market
    python3 scripts/quickstart.py test    # ruff, mypy and the whole pytest suite
    python3 scripts/quickstart.py demo -- --duration 60   # extra arguments go to dexscan

Creates ``.venv`` next to pyproject.toml on first use and reinstalls when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".dexscan-installed"


def _bin(name: str) -> Path:
    sub = "Scripts" if os.name == "nt" else "bin"
    return VENV / sub / (name + (".exe" if os.name == "nt" else ""))


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be started by an older python
        sys.exit(f"dexscan needs Python >= 3.11; this is {sys.version.split()[0]}")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want and _bin("dexscan").exists():
        return
    if not _bin("python").exists():
        print(f"creating virtualenv in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing dexscan and its dependencies (first run takes a minute) ...", flush=True)
    pip = [str(_bin("python")), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(want)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    what, rest = argv[0], argv[1:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    ensure_venv()
    os.chdir(ROOT)
    if what == "demo":
        return subprocess.call([str(_bin("dexscan")), "scan", "--demo", *rest])
    for cmd in (
        [str(_bin("ruff")), "check", "dexscan", "tests", "scripts"],
        [str(_bin("mypy")), "dexscan"],
        [str(_bin("python")), "-m", "pytest", *rest],
    ):
        print("$", " ".join(Path(cmd[0]).name if i == 0 else c for i, c in enumerate(cmd)), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
