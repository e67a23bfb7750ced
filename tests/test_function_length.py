"""No function in amqplite is longer than 80 lines.

A function that does not fit on a screen is one nobody reads whole; split it into steps
with names.  Exempt are the generated method table (``protocol/methods.py``, written by
``protocol/_generate.py``) and argparse tables: the lines of ``add_argument`` /
``add_parser``-style calls do not count, the code around them does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "amqplite"
MAX_LINES = 80
GENERATED = {PACKAGE / "protocol" / "methods.py"}
ARGPARSE_CALLS = {
    "add_argument",
    "add_argument_group",
    "add_mutually_exclusive_group",
    "add_parser",
    "add_subparsers",
    "set_defaults",
}


def _is_argparse_call(node: ast.AST) -> bool:
    value = node.value if isinstance(node, ast.Expr | ast.Assign | ast.AnnAssign) else None
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in ARGPARSE_CALLS
    )


def counted_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Physical lines of ``function``, less those of its argparse table calls."""
    assert function.end_lineno is not None
    lines = set(range(function.lineno, function.end_lineno + 1))
    for node in ast.walk(function):
        if isinstance(node, ast.stmt) and _is_argparse_call(node):
            assert node.end_lineno is not None
            lines -= set(range(node.lineno, node.end_lineno + 1))
    return len(lines)


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({counted_lines(node)} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and counted_lines(node) > MAX_LINES
    ]


def test_the_rule_counts_code_but_not_argparse_tables() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    table = "\n".join(f"    parser.add_argument('--a{i}')" for i in range(MAX_LINES))
    long_code = ast.parse(f"def f():\n{body}\n")
    long_table = ast.parse(f"def g(parser):\n{table}\n    return parser\n")
    assert counted_lines(long_code.body[0]) == MAX_LINES + 1  # type: ignore[arg-type]
    assert counted_lines(long_table.body[0]) == 2  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if p not in GENERATED),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_function_is_longer_than_80_lines(path: Path) -> None:
    assert long_functions(path) == []
