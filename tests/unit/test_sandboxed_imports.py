"""The zygote's package runs inside bubblewrap with the standard library and pyseccomp only
(``python -I -S``): nothing in it may import ``idp`` or anything else from outside itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from idp.actions.runner.sandbox import RUNTIME

ALLOWED = set(sys.stdlib_module_names) | {"pyseccomp", RUNTIME.name}


def imports(path: Path) -> list[tuple[str, int]]:
    """(top-level module, relative level) for every import in ``path``, however written."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append(((node.module or "").split(".")[0], node.level))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            assert name not in {"__import__", "import_module"}, (path.name, node.lineno)
    return found


def test_the_package_imports_the_standard_library_pyseccomp_and_itself_only() -> None:
    modules = sorted(RUNTIME.glob("*.py"))
    assert {m.name for m in modules} >= {"__main__.py", "__init__.py", "zygote.py"}
    seen: set[str] = set()
    for module in modules:
        for name, level in imports(module):
            seen.add(name)
            assert level <= 1, f"{module.name} imports from outside the package"
            assert level == 1 or name in ALLOWED, f"{module.name} imports {name}"
    assert {"json", "pyseccomp", RUNTIME.name} <= seen  # the walk does see imports


def test_each_module_stays_small() -> None:
    for module in RUNTIME.glob("*.py"):
        assert len(module.read_text().splitlines()) < 400, module.name
