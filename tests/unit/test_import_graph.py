"""The import graph of the ``idp`` package, read from the source with ``ast``, has no cycle.

``import_graph()`` maps every module under ``idp/`` to the ``idp`` modules it imports. Every
``import`` and ``from ... import`` counts wherever it stands, including inside functions (a
lazy import only hides a cycle until the day someone moves it to the top of the file). Relative
imports are resolved; ``from idp.x import name`` is an edge to ``idp.x.name`` when that is a
module, else to ``idp.x``. Two things are deliberately left out:

* imports under ``if TYPE_CHECKING:`` (they never run, and annotations may point both ways);
* the implicit edge from a module to its parent packages (``import idp.a.b`` runs
  ``idp/a/__init__.py`` first): a package's ``__init__`` that composes its own submodules
  would otherwise always be a cycle.

Other rules on the graph (which layer may import which) belong in this file as further tests
built on ``import_graph()``.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "idp"

Graph = dict[str, set[str]]


def _module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree`` except those in an ``if TYPE_CHECKING:`` body."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the else branch does run
            continue
        stack.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _known(name: str, modules: set[str]) -> str | None:
    """``name`` if it is a module, else its longest prefix that is one (None: not ours)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph(root: Path = ROOT, package: str = "idp") -> Graph:
    """Module -> the modules of ``package`` it imports (see the module docstring for what
    counts). Every module under ``root`` is a key, even one that imports nothing."""
    files = _module_names(root, package)
    modules = set(files)
    graph: Graph = {name: set() for name in files}
    for name, path in files.items():
        # The package a relative import starts from: a package's __init__ is its own.
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # each dot past the first climbs one package
                    anchor = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                    base = f"{anchor}.{base}" if base else anchor
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            for target in targets:
                found = _known(target, modules)
                if found is not None and found != name:
                    graph[name].add(found)
    return graph


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle per strongly connected component that has one, as ``[a, b, ..., a]``: the
    shortest way round from the component's first module (Tarjan's algorithm, then a BFS)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so a deep graph cannot reach the recursion limit.
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles = []
    for component in sorted(components):
        members = set(component)
        first = component[0]
        if len(component) == 1 and first not in graph.get(first, ()):
            continue
        # Shortest path first -> ... -> first inside the component.
        came_from: dict[str, str] = {}
        queue = deque([first])
        while queue:
            node = queue.popleft()
            if first in graph.get(node, ()):
                path = [node]
                while path[-1] != first:
                    path.append(came_from[path[-1]])
                cycles.append([first, *reversed(path[:-1]), first])
                break
            for child in sorted(graph.get(node, ())):
                if child in members and child not in came_from and child != first:
                    came_from[child] = node
                    queue.append(child)
    return cycles


def test_idp_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "idp.cli" in graph and "idp.core.errors" in graph  # the walk found the package
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


# --- the tools themselves --------------------------------------------------------------------


PROTOCOL_LAYER = "idp.oauth"
UI_AND_FLOW_PACKAGES = ("idp.flows", "idp.mfa", "idp.actions")


def test_the_protocol_layer_imports_no_pages_flows_or_actions() -> None:
    """``idp.oauth`` is the protocol: the login pipeline, its pages and the Actions chains
    depend on it, never the other way round (they hang on it through Authlib's grant
    extensions and the pipeline's calls)."""
    graph = import_graph()
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module == PROTOCOL_LAYER or module.startswith(PROTOCOL_LAYER + ".")
        for target in targets
        if any(target == p or target.startswith(p + ".") for p in UI_AND_FLOW_PACKAGES)
    )
    assert not wrong, "\n".join(wrong)


FASTSQL = "idp.core.fastsql"
SQL_STORES = "idp.stores.sql"


def test_hand_written_sql_stays_behind_the_store_contracts() -> None:
    """Table and column names written by hand (``idp.core.fastsql``) live in one module,
    ``idp.stores.sql``; everything else reaches it through ``idp.stores.STORES``, typed by
    the contracts, so mypy checks every caller. Only ``idp.stores`` picks the implementation."""
    graph = import_graph()
    assert FASTSQL in graph and SQL_STORES in graph  # the rule is about modules that exist
    assert {m for m, targets in graph.items() if FASTSQL in targets} == {SQL_STORES}
    assert {m for m, targets in graph.items() if SQL_STORES in targets} == {"idp.stores"}


def test_no_module_is_over_400_lines() -> None:
    """House style: a module a reader can hold in mind (docs/design-notes.md)."""
    long = sorted(
        f"{path.relative_to(ROOT.parent)}: {n}"
        for path in ROOT.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    )
    assert not long, "\n".join(long)


def test_find_cycles_reports_each_cycle_once_with_its_path() -> None:
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},
        "d": set(),
        "e": {"e"},
        "f": {"g"},
        "g": {"f"},
    }
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"], ["f", "g", "f"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({}) == []


def test_find_cycles_takes_the_shortest_way_round() -> None:
    graph = {"a": {"b", "x"}, "b": {"c"}, "c": {"a"}, "x": {"a"}}
    assert find_cycles(graph) == [["a", "x", "a"]]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    files = {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/errors.py": "",
        "core/util.py": "from . import errors\nfrom .errors import IdpError\n",
        "app/__init__.py": "from pkg.app import views\n",
        "app/views.py": (
            "from typing import TYPE_CHECKING\n"
            "import pkg.core.util\n"
            "if TYPE_CHECKING:\n"
            "    from pkg.cli import Ctx\n"
            "else:\n"
            "    from pkg.core import errors\n"
            "def handler():\n"
            "    from ..cli import commands\n"
            "    from pkg.app import views, missing_name\n"
        ),
        "cli/__init__.py": "",
        "cli/commands.py": "import os\nfrom pkg.core.util import helper\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_import_graph_resolves_every_kind_of_import(tree: Path) -> None:
    graph = import_graph(tree, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.app": {"pkg.app.views"},
        # a function's import counts; TYPE_CHECKING's does not, its else branch does; a name
        # that is not a module is an edge to the module it comes from (here the package)
        "pkg.app.views": {"pkg.core.util", "pkg.core.errors", "pkg.cli.commands", "pkg.app"},
        "pkg.cli": set(),
        "pkg.cli.commands": {"pkg.core.util"},  # os is not ours
        "pkg.core": set(),
        "pkg.core.errors": set(),
        "pkg.core.util": {"pkg.core.errors"},
    }
    assert find_cycles(graph) == [["pkg.app", "pkg.app.views", "pkg.app"]]
