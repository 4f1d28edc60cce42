#!/usr/bin/env python3
"""Regenerate ``requirements.lock``: every package the quick start installs, pinned, with hashes.

    python3 scripts/lock.py              # refresh: keep today's pins, add or drop what pyproject.toml now needs
    python3 scripts/lock.py --upgrade    # move every pin to the newest release the ranges in pyproject.toml allow
    python3 scripts/lock.py -P aiohttp   # upgrade one package (any other argument goes to ``uv pip compile``)

The lock covers the runtime dependencies, the ``dev`` extra (which includes ``test``) and the build and
bootstrap tools (pip, setuptools, wheel), for every platform and every Python >= 3.11 (a universal
resolution), so ``scripts/quickstart.py`` installs it with plain ``pip --require-hashes`` and nothing
unpinned is ever fetched. The ranges in ``pyproject.toml`` stay as they are for people who install
dexscan as a library.

The resolver is uv's ``pip compile`` (it resolves universally, across platforms and Python versions;
pip-tools' ``pip-compile`` resolves for the machine it runs on only). uv is installed into a throwaway
virtualenv for the run, so neither uv nor anything else is needed afterwards. This needs the package
index; installing from the lock needs nothing but Python and pip.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
UV = "uv==0.13.9"  # the resolver that wrote the lock; bump it deliberately
COMMAND = "python3 scripts/lock.py"


def bootstrap_requirements() -> list[str]:
    """pip, and pyproject.toml's build requirements: the quick start installs the project without build isolation."""
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    return ["pip", *build]


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be started by an older python
        sys.exit(f"dexscan needs Python >= 3.11; this is {sys.version.split()[0]}")
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    with tempfile.TemporaryDirectory(prefix="dexscan-lock-") as tmp:
        env_dir = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(env_dir)
        bindir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
        py = bindir / ("python.exe" if sys.platform == "win32" else "python")
        print(f"installing {UV} into a throwaway virtualenv ...", flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", UV], check=True)
        cmd = [
            str(py), "-m", "uv", "pip", "compile",
            "pyproject.toml", "--extra", "dev",
            "-",  # pip, setuptools, wheel: read from stdin, so that no temporary path ends up in the lock
            "--universal", "--python-version", "3.11", "--generate-hashes",
            "--custom-compile-command", COMMAND,
            "-o", LOCK.name,
            *argv,
        ]  # fmt: skip
        stdin = "".join(f"{r}\n" for r in bootstrap_requirements())
        # uv prints the lock on stdout as well as writing it; its progress and errors go to stderr
        rc = subprocess.run(cmd, cwd=ROOT, input=stdin, text=True, stdout=subprocess.DEVNULL, check=False).returncode
    if rc == 0:
        print(f"wrote {LOCK.relative_to(ROOT)}; commit it together with pyproject.toml", flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
