"""The walls between packages, kept by reading the code.

The table in ``docs/architecture.md`` is the data: one row per package (or module), what
it may import from amqplite, and whether it may do network I/O.  Every import in the tree
(absolute or relative, at module level, inside functions, under ``TYPE_CHECKING``) is
resolved to the module it loads and checked against that table, so the architecture page
and the code cannot drift apart: moving a package means editing its row.

On top of the table: no cycles between packages, the session is the one place that
imports both the protocol and the broker, no import cycles between the modules of a
package, and no module reaches into another module's private attributes.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "amqplite"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: Libraries that mean network I/O (or an event loop) for a row marked "no".
NETWORK = (
    "trio",
    "h11",
    "socket",
    "ssl",
    "asyncio",
    "selectors",
    "urllib.request",
    "http.client",
)

#: The only modules that import both ``protocol`` and ``broker``: the session package
#: glues them; the micro-benchmarks time both in-process.
PROTOCOL_AND_BROKER = ("amqplite.server.session", "amqplite.bench.micro")

#: Edges between packages allowed in the table but left out of the cycle check. Empty since
#: the topology commands moved into ``cli/`` (issue 10); keep it empty.
LEGACY_EDGES: set[tuple[str, str]] = set()


@attrs.frozen
class Row:
    unit: str
    path: Path
    may_import: frozenset[str]
    network: bool


def _unit_name(path: str) -> str:
    name = path.removeprefix("amqplite/").removesuffix("/").removesuffix(".py")
    return "amqplite" if name == "__init__" else name


def load_table() -> dict[str, Row]:
    """The rows of the table whose header is ``| package | ... | may import | network I/O |``."""
    rows: dict[str, Row] = {}
    in_table = False
    for line in ARCHITECTURE.read_text().splitlines():
        if line.startswith("| package |") and "may import" in line:
            in_table = True
            continue
        if not in_table:
            continue
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if set(cells[0]) <= {"-", " "}:
            continue
        paths = re.findall(r"`([^`]+)`", cells[0])
        may_import = frozenset(re.findall(r"`([^`]+)`", cells[2]))
        network = cells[3].lower().startswith("yes")
        for path in paths:
            unit = _unit_name(path)
            rows[unit] = Row(unit, ROOT / path, may_import, network)
    assert rows, f"no layering table found in {ARCHITECTURE}"
    return rows


TABLE = load_table()


# -- reading imports ------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@attrs.frozen
class Import:
    module: str  # the amqplite module it loads
    line: int
    type_only: bool  # under ``if TYPE_CHECKING:``
    top_level: bool  # at module level (not inside a function)


def _resolve(importer: str, node: ast.ImportFrom | ast.Import) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = importer.split(".")
        if MODULES[importer].name != "__init__.py":
            package.pop()
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    for alias in node.names:
        # ``from pkg import mod`` loads the module ``pkg.mod``; ``from mod import name``
        # loads ``mod``.
        yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


@functools.cache
def imports_of(module: str) -> list[Import]:
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    found: list[Import] = []

    def walk(node: ast.AST, type_only: bool, top_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                for name in _resolve(module, child):
                    found.append(Import(name, child.lineno, type_only, top_level))
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.body:
                    walk(ast.Module(body=[stmt], type_ignores=[]), True, top_level)
                for stmt in child.orelse:
                    walk(ast.Module(body=[stmt], type_ignores=[]), type_only, top_level)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                walk(child, type_only, False)
            else:
                walk(child, type_only, top_level)

    walk(tree, False, True)
    return found


@functools.cache
def unit_of(module: str) -> str | None:
    """The table row holding ``module``: the most specific path that contains its file."""
    path = MODULES[module]
    best: Row | None = None
    for row in TABLE.values():
        contains = path == row.path or (row.path.is_dir() and row.path in path.parents)
        if contains and (best is None or len(row.path.parts) > len(best.path.parts)):
            best = row
    return None if best is None else best.unit


def _amqplite_imports(module: str) -> Iterator[tuple[Import, str]]:
    for imp in imports_of(module):
        if imp.module in MODULES:
            target = unit_of(imp.module)
            if target is not None:
                yield imp, target


# -- the table against the tree -------------------------------------------------------------


def test_every_module_has_a_row_in_the_architecture_table() -> None:
    missing = [str(MODULES[m].relative_to(ROOT)) for m in MODULES if unit_of(m) is None]
    assert missing == [], f"add rows for these to the table in {ARCHITECTURE.name}"


def test_every_row_of_the_table_names_code_that_exists() -> None:
    assert [row.unit for row in TABLE.values() if not row.path.exists()] == []
    unknown = {name for row in TABLE.values() for name in row.may_import} - set(TABLE)
    assert unknown == set(), "'may import' names a package the table does not have"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_architecture_table(module: str) -> None:
    unit = unit_of(module)
    assert unit is not None
    allowed = TABLE[unit].may_import | {unit}
    offenders = [
        f"line {imp.line}: {imp.module} ({target})"
        for imp, target in _amqplite_imports(module)
        if target not in allowed
    ]
    assert offenders == [], f"{unit} may import only {sorted(allowed)}"


@pytest.mark.parametrize("unit", sorted(u for u, row in TABLE.items() if not row.network))
def test_units_without_network_io_import_no_network_library(unit: str) -> None:
    offenders = [
        f"{MODULES[m].relative_to(ROOT)}:{imp.line} imports {imp.module}"
        for m in MODULES
        if unit_of(m) == unit
        for imp in imports_of(m)
        if any(imp.module == lib or imp.module.startswith(lib + ".") for lib in NETWORK)
    ]
    assert offenders == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative enough)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_table_allows_no_cycle_between_packages() -> None:
    graph = {
        row.unit: {dep for dep in row.may_import if (row.unit, dep) not in LEGACY_EDGES}
        for row in TABLE.values()
    }
    assert _cycles(graph) == []


def test_the_session_is_the_one_place_that_imports_both_protocol_and_broker() -> None:
    both = {
        module
        for module in MODULES
        if {"protocol", "broker"} <= {target for _, target in _amqplite_imports(module)}
    }
    assert {m for m in both if not m.startswith(PROTOCOL_AND_BROKER)} == set()
    assert any(m.startswith("amqplite.server.session") for m in both)


# -- inside packages ------------------------------------------------------------------------


def test_no_import_cycles_between_the_modules_of_a_package() -> None:
    # What runs (annotations under TYPE_CHECKING may point back up: they load nothing).
    # Importing ``pkg.mod`` runs ``pkg/__init__`` first, so edges into a package's own
    # ``__init__`` are left out: it only re-exports.
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        package = module.rsplit(".", 1)[0]
        graph[module] = {
            imp.module
            for imp in imports_of(module)
            if not imp.type_only
            and imp.module in MODULES
            and imp.module != module
            and imp.module != package
            and imp.module.rsplit(".", 1)[0] == package
        }
    assert _cycles(graph) == []


def _private_names_defined(tree: ast.Module) -> set[str]:
    """``_names`` a module defines: functions, classes, slots, ``self._x = ...``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


#: Packages whose modules talk to each other through public names only.
NO_PRIVATE_REACHES = (
    "broker",
    "protocol",
    "store",
    "server",
    "http",
    "topology",
    "client",
    "ops",
    "bench",
)


@pytest.mark.parametrize("package", NO_PRIVATE_REACHES)
def test_no_module_reaches_into_another_modules_private_attributes(package: str) -> None:
    offenders = []
    for module, path in MODULES.items():
        if not module.startswith(f"amqplite.{package}"):
            continue
        tree = ast.parse(path.read_text())
        own = _private_names_defined(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in own
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert offenders == []
