"""The bench measures any broker, so it must not share code with ours: stdlib and itself only.

The one exception is ``micro.py``, the in-process micro-benchmarks of our own hot
functions: it imports amqplite by design, so no other bench module may import it (the load
generator stays free of our code)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "amqplite" / "bench"
MICRO = "micro.py"


def test_bench_imports_only_the_standard_library_and_itself() -> None:
    files = sorted(p for p in BENCH.rglob("*.py") if p.name != MICRO)
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
                if name == "amqplite.bench.micro":
                    offenders.append(f"{path.name} imports the in-process micro-benchmarks")
                    continue
                if name == "amqplite.bench" or name.startswith("amqplite.bench."):
                    continue
                if top == "__future__" or top in sys.stdlib_module_names:
                    continue
                offenders.append(f"{path.name} imports {name}")
    assert offenders == []


def test_no_bench_module_imports_the_micro_benchmarks_relatively() -> None:
    offenders = []
    for path in sorted(BENCH.rglob("*.py")):
        if path.name == MICRO:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                names = [node.module or ""] + [alias.name for alias in node.names]
                if "micro" in names:
                    offenders.append(path.name)
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "amqplite.bench"
                and any(alias.name == "micro" for alias in node.names)
            ):
                offenders.append(path.name)
    assert offenders == []
