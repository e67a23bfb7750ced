"""The CLI wing (docs/architecture.md): every ``amqplite`` sub-command lives in ``amqplite/cli/``.

Only that package (and the bench, a stand-alone program run as ``python -m amqplite.bench``)
parses command lines.  Which package may import which (``server/`` and ``http/`` never
each other) is the table that ``tests/test_layering.py`` reads.
"""

from __future__ import annotations

import ast
from pathlib import Path

from amqplite.cli import COMMAND_MODULES

PACKAGE = Path(__file__).resolve().parent.parent / "amqplite"

#: Command modules still outside ``amqplite/cli/`` (none: the topology commands moved too).
NOT_YET_MOVED: set[str] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    return _imports_of(path.read_text(), _module_name(path), path.name == "__init__.py")


def _imports_of(source: str, module: str, is_package: bool) -> list[str]:
    """Every module ``source`` imports, relative imports resolved to absolute names."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            names.append(name)
            names.extend(f"{name}.{alias.name}" for alias in node.names)
    return names


def test_every_subcommand_is_registered_from_the_cli_package() -> None:
    outside = [
        name
        for name in COMMAND_MODULES
        if not name.startswith("amqplite.cli.") and name not in NOT_YET_MOVED
    ]
    assert outside == []


def test_only_the_cli_package_and_the_bench_parse_command_lines() -> None:
    allowed = ("amqplite.cli", "amqplite.bench")
    offenders = [
        _module_name(path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if "argparse" in _imports(path)
        and not _module_name(path).startswith(allowed)
        and _module_name(path) not in NOT_YET_MOVED
        and not path.name.startswith("_")  # developer scripts (_generate, _bench)
    ]
    assert offenders == []
