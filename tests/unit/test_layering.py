"""The package's import direction (issue 15): product code never depends on the demo or the tests.

Every module of ``dexscan/`` is parsed with :mod:`ast` (no import runs) and each ``import`` /
``from ... import`` is resolved to an absolute module name, relative imports included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dexscan

PACKAGE = Path(dexscan.__file__).resolve().parent
#: The one product module that handles ``--demo`` (it starts the demo world for every command).
DEMO_ENTRY = "dexscan.demo_entry"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (``from a import b`` counts as ``a`` and ``a.b``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _product_modules() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))
            if "demo" not in p.relative_to(PACKAGE).parts[:1]}


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_modules_are_found() -> None:
    modules = _product_modules()
    assert {"dexscan.engine", "dexscan.cli", "dexscan.scan_command", DEMO_ENTRY, "dexscan.alerts.telegram",
            "dexscan.chain.feed"} <= set(modules)
    assert not any(_is_under(m, "dexscan.demo") for m in modules)
    assert any(_is_under(i, "dexscan.demo") for i in modules[DEMO_ENTRY])  # the check can see an import


def test_only_the_demo_entry_imports_the_demo() -> None:
    offenders = {module: sorted(i for i in imports if _is_under(i, "dexscan.demo"))
                 for module, imports in _product_modules().items() if module != DEMO_ENTRY}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_no_module_of_the_package_imports_the_tests() -> None:
    offenders = {_module_name(p): sorted(i for i in _imports(p) if _is_under(i, "tests"))
                 for p in sorted(PACKAGE.rglob("*.py"))}
    assert {m: i for m, i in offenders.items() if i} == {}
