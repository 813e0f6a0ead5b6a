"""The architecture as the imports show it: no circles, and arrows only one way.

bot → handlers → storage; inside bot, cli/ and web/ → sending/ → channels/. The imports are
read with `ast`, so nothing is executed; imports under `if TYPE_CHECKING:` are for the type
checker only and do not count. Modules named by string (the channel registry) are imported
for real, since reading cannot see them.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from bot.channels.registry import CHANNELS
from tests.conftest import ROOT

PACKAGES = ("bot", "handlers", "storage")

# (importer prefix, imported prefixes it must never reach)
FORBIDDEN = [
    ("handlers", ("bot",)),
    ("storage", ("bot", "handlers")),
    ("bot.channels", ("bot.cli", "bot.web", "bot.sending", "bot.app")),
    ("bot.sending", ("bot.cli", "bot.web", "bot.app")),
    ("bot.web", ("bot.cli",)),
]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.Module, module: str, is_package: bool) -> list[str]:
    """Every module name this module imports, at any depth, except for the type checker."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                package = module.split(".")
                if not is_package:
                    package.pop()
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append(base)
            found.extend(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """module → the project modules it imports (a `from p import m` of a module m counts)."""
    sources: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "versions" in path.parts:  # Alembic revisions are loaded by Alembic alone
                continue
            sources[module_name(root, path)] = path
    graph: dict[str, set[str]] = {}
    for module, path in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = _imported_names(tree, module, path.name == "__init__.py")
        graph[module] = {name for name in names if name in sources and name != module}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import circle once, as the modules along it (Tarjan's strongly connected parts)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    def within(module: str, prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    return [
        f"{importer} imports {imported}"
        for importer, targets in sorted(graph.items())
        for imported in sorted(targets)
        for source, forbidden in FORBIDDEN
        if within(importer, source) and any(within(imported, f) for f in forbidden)
    ]


def test_no_module_of_the_project_imports_in_a_circle():
    assert circles(import_graph(ROOT, PACKAGES)) == []


def test_imports_point_one_way():
    assert wrong_way(import_graph(ROOT, PACKAGES)) == []


def test_the_graph_sees_what_it_must(tmp_path):
    """The checks can fail: a circle through a lazy and a relative import, a wrong arrow."""
    for name, text in {
        "bot/__init__.py": "",
        "bot/channels/__init__.py": "",
        "bot/channels/a.py": "def f():\n    from bot.web import b\n",
        "bot/web/__init__.py": "",
        "bot/web/b.py": "from ..channels import a\n",
        "bot/web/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                        "    from bot.channels import a\n",
        "handlers/__init__.py": "",
        "handlers/h.py": "import bot.web.c\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ("bot", "handlers"))
    assert circles(graph) == [["bot.channels.a", "bot.web.b"]]
    assert wrong_way(graph) == [
        "bot.channels.a imports bot.web", "bot.channels.a imports bot.web.b",
        "handlers.h imports bot.web.c",
    ]
    assert graph["bot.web.c"] == set()  # only for the type checker


@pytest.mark.parametrize("entry", CHANNELS, ids=lambda entry: entry.name)
def test_every_module_the_channel_registry_names_imports(entry):
    module = importlib.import_module(entry.module)
    assert callable(module.from_settings)
    if entry.webhook_removed:  # `ykien webhook delete` calls it
        assert callable(module.remove_webhook)
