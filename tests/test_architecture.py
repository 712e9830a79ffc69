"""The layers of docs/ARCHITECTURE hold: checked on the import graph and on the handlers' code.

The graph is grimp's (the library under import-linter, whose contracts ``make lint`` runs),
built with imports under ``if TYPE_CHECKING:``: a type annotation is a dependency too, and
cycles of annotations were how the old circle in ``api/`` hid.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

import imstags

# Highest first; a module may import from its own layer and the layers after it.
LAYERS = (
    ("imstags.cli",),
    ("imstags.api",),
    ("imstags.services",),
    ("imstags.domain",),
    ("imstags.storage",),
    ("imstags.errors", "imstags.settings", "imstags.logging_config"),
)
API_DIR = Path(imstags.__file__).parent / "api"
# Calls that mean a handler is doing a service's work: opening a transaction or choosing a
# thread itself.
DATABASE_METHODS = {"read", "write"}
FORBIDDEN_CALLS = {"write_tags", "run_in_threadpool"}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("imstags", exclude_type_checking_imports=False)


def layer_of(module: str) -> int | None:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None  # imstags itself and __main__: the entry points above every layer


def imports(graph: grimp.ImportGraph) -> Iterator[tuple[str, str]]:
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            yield importer, imported


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_import_graph_has_no_cycle(graph):
    assert cycles(graph) == []


def test_no_module_imports_from_a_higher_layer(graph):
    upward = []
    for importer, imported in imports(graph):
        low, high = layer_of(importer), layer_of(imported)
        if low is not None and high is not None and high < low:
            lines = graph.get_import_details(importer=importer, imported=imported)
            where = ", ".join(f"l.{line['line_number']}" for line in lines)
            upward.append(f"{importer} -> {imported} ({where})")
    assert upward == []


def handler_violations(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(
            alias.name in FORBIDDEN_CALLS for alias in node.names
        ):
            yield f"l.{node.lineno}: imports {', '.join(a.name for a in node.names)}"
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
            yield f"l.{node.lineno}: calls {func.id}"
        elif isinstance(func, ast.Attribute):
            if func.attr in FORBIDDEN_CALLS:
                yield f"l.{node.lineno}: calls .{func.attr}"
            elif func.attr in DATABASE_METHODS and _names_db(func.value):
                yield f"l.{node.lineno}: calls db.{func.attr}"


def _names_db(node: ast.expr) -> bool:
    """``db`` or ``<anything>.db``: the Database handle."""
    return (isinstance(node, ast.Name) and node.id == "db") or (
        isinstance(node, ast.Attribute) and node.attr == "db"
    )


def test_api_never_opens_a_transaction_or_picks_a_thread():
    found = [
        f"{path.relative_to(API_DIR.parent)} {violation}"
        for path in sorted(API_DIR.rglob("*.py"))
        for violation in handler_violations(path)
    ]
    assert found == [], "\n".join(found)
