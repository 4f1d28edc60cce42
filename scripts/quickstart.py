#!/usr/bin/env python3
"""Set-up and run in one command, on a machine that has only Python >= 3.11.

    python3 scripts/quickstart.py demo    # the scanner on its built-in simulated market
    python3 scripts/quickstart.py test    # ruff, mypy and the whole pytest suite
    python3 scripts/quickstart.py demo -- --duration 60   # extra arguments go to dexscan

Creates ``.venv`` next to pyproject.toml on first use and installs exactly what ``requirements.lock``
pins (with hashes, pip, setuptools and wheel included), then dexscan itself in editable mode without
resolving anything. It reinstalls when pyproject.toml or requirements.lock changes. To refresh the
lock: ``python3 scripts/lock.py``.
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
LOCK = ROOT / "requirements.lock"


def _bin(name: str) -> Path:
    sub = "Scripts" if os.name == "nt" else "bin"
    return VENV / sub / (name + (".exe" if os.name == "nt" else ""))


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be started by an older python
        sys.exit(f"dexscan needs Python >= 3.11; this is {sys.version.split()[0]}")
    digest = hashlib.sha256()
    for f in (ROOT / "pyproject.toml", LOCK):
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    want = digest.hexdigest()
    if STAMP.exists() and STAMP.read_text() == want and _bin("dexscan").exists():
        return
    if not _bin("python").exists():
        print(f"creating virtualenv in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print(f"installing dexscan and its dependencies from {LOCK.name} (first run takes a minute) ...", flush=True)
    pip = [str(_bin("python")), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    # Everything, pip and the build tools included, comes pinned and hash-checked from the lock ...
    subprocess.run([*pip, "--require-hashes", "--no-deps", "-r", str(LOCK)], check=True)
    # ... and dexscan itself is built with those tools, resolving and fetching nothing more.
    # (setuptools' advice about editable installs is for people who build by hand; the quick start hides it.)
    quiet = {**os.environ, "PYTHONWARNINGS": "ignore:Editable installation"}
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", "-e", f"{ROOT}[dev]"], check=True, env=quiet)
    STAMP.write_text(want)


def _run_interruptible(cmd: list[str]) -> int:
    """Run ``cmd``; on Ctrl-C return 130 without a traceback.

    The terminal sends SIGINT to dexscan as well, and dexscan stops on its own (it finishes its writes
    first), so this waits for it rather than killing it as ``subprocess.call`` would.
    """
    proc = subprocess.Popen(cmd)
    interrupted = False
    while True:
        try:
            rc = proc.wait()
            break
        except KeyboardInterrupt:
            interrupted = True
    return 130 if interrupted else rc


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
        return _run_interruptible([str(_bin("dexscan")), "scan", "--demo", *rest])
    for cmd in (
        [str(_bin("ruff")), "check", "dexscan", "tests", "scripts"],
        [str(_bin("mypy")), "dexscan"],
        # one worker per available core (pytest-xdist); work stealing spreads the long e2e tests.
        # The tests that run the scanner are on virtual time, so sharing the cores changes nothing.
        [str(_bin("python")), "-m", "pytest", "-n", "auto", "--dist", "worksteal", *rest],
    ):
        print("$", " ".join(Path(cmd[0]).name if i == 0 else c for i, c in enumerate(cmd)), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
