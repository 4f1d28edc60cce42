"""The pure core does no I/O and never reads the wall clock (DESIGN §2.1, §2.2).

Proved by scanning the source (AST) of every pure module for forbidden imports and calls, and by
importing the core in a fresh interpreter and checking that no I/O library came along.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "dexscan"
CORE_MODULES = ["market.py", "trade_bars.py", "ladder.py", "scoring.py", "calibration.py", "skill.py", "detector.py",
                "params.py", "plugins.py"]
PURE_FILES = sorted(
    [PKG / m for m in CORE_MODULES]
    + list((PKG / "strategies").glob("*.py"))
    + list((PKG / "gates").glob("*.py"))
)
#: Modules whose mere import means I/O, a clock, or unseeded randomness.
FORBIDDEN_IMPORTS = {
    "time", "asyncio", "aiohttp", "aiosqlite", "sqlite3", "socket", "ssl", "requests", "httpx", "urllib.request",
    "http.client", "subprocess", "threading", "multiprocessing", "random", "os", "pathlib", "shutil", "tempfile",
    "io", "websockets", "aiogram", "dexscan.store", "dexscan.clock", "dexscan.sources.http", "numpy.random",
}
#: Builtins that do I/O (or run code from strings).
FORBIDDEN_BUILTINS = {"open", "print", "input", "exec", "eval", "compile", "__import__", "breakpoint"}
#: Method names that read a clock, the environment or files, or sleep.
FORBIDDEN_METHODS = {
    "now", "utcnow", "today", "time", "time_ns", "perf_counter", "monotonic", "sleep", "getenv", "read_text",
    "write_text", "read_bytes", "write_bytes", "urlopen", "system", "popen",
}
FORBIDDEN_ATTRIBUTES = {"environ"}


def violations(source: str, filename: str = "<src>") -> list[str]:
    tree = ast.parse(source, filename)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{filename}:{node.lineno}: import {a.name}" for a in node.names if _forbidden_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if any(_forbidden_module(n) for n in names):
                found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in FORBIDDEN_BUILTINS:
                found.append(f"{filename}:{node.lineno}: call {f.id}()")
            elif isinstance(f, ast.Attribute) and f.attr in FORBIDDEN_METHODS:
                found.append(f"{filename}:{node.lineno}: call .{f.attr}()")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f"{filename}:{node.lineno}: .{node.attr}")
    return sorted(found, key=lambda v: int(v.rsplit(":", 2)[-2]))


def _forbidden_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in FORBIDDEN_IMPORTS)


def test_the_scanner_catches_what_it_should() -> None:
    bad = (
        "import time\nfrom datetime import datetime\nimport os\nfrom random import random\n"
        "import asyncio.tasks\nfrom dexscan.store import Store\n"
        "x = datetime.now()\nopen('f')\nprint(1)\ny = os.environ['K']\nz = time.time()\n"
    )
    assert violations(bad) == [
        "<src>:1: import time", "<src>:3: import os", "<src>:4: from random import ...",
        "<src>:5: import asyncio.tasks", "<src>:6: from dexscan.store import ...",
        "<src>:7: call .now()", "<src>:8: call open()", "<src>:9: call print()", "<src>:10: .environ",
        "<src>:11: call .time()",
    ]
    assert violations("from datetime import datetime\nd = datetime.fromtimestamp(0)\nc = bar.open\n") == []


@pytest.mark.parametrize("path", PURE_FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_pure_module_has_no_io_clock_or_randomness(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))) == []


def test_the_pure_part_of_the_universe_is_pure_too() -> None:
    tree = ast.parse((PKG / "universe_book.py").read_text(encoding="utf-8"))
    [book] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "UniverseBook"]
    assert violations(ast.unparse(book), "universe_book.py:UniverseBook") == []
    assert not any(isinstance(n, ast.AsyncFunctionDef | ast.Await) for n in ast.walk(book))


def _loaded_after_import(modules: list[str]) -> list[str]:
    probe = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
             + "watch = ['aiohttp', 'aiosqlite', 'sqlite3', 'asyncio', 'ssl', 'requests', 'httpx', 'http.client',"
               " 'urllib.request', 'websockets', 'dexscan.store', 'dexscan.clock', 'dexscan.sources']\n"
             + "print(','.join(m for m in watch if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return [m for m in out.stdout.strip().split(",") if m]


def test_importing_the_core_pulls_in_no_io_library() -> None:
    mods = ["dexscan.market", "dexscan.strategies", "dexscan.ladder", "dexscan.scoring", "dexscan.detector"]
    assert _loaded_after_import(mods) == []


def test_importing_the_gates_pulls_in_no_io_library() -> None:
    assert _loaded_after_import(["dexscan.gates"]) == []
