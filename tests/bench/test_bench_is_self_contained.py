"""The bench measures any broker, so it must not share code with ours: stdlib and itself only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "amqplite" / "bench"


def test_bench_imports_only_the_standard_library_and_itself() -> None:
    files = sorted(BENCH.rglob("*.py"))
    assert files
    offenders = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if name == "amqplite.bench" or name.startswith("amqplite.bench."):
                    continue
                if top == "__future__" or top in sys.stdlib_module_names:
                    continue
                offenders.append(f"{path.name} imports {name}")
    assert offenders == []
