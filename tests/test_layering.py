"""The pure layers stay pure: no sockets, no event loop, no reaching up into the server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "amqplite"
FORBIDDEN_EVERYWHERE = (
    "trio",
    "h11",
    "socket",
    "asyncio",
    "selectors",
    "amqplite.server",
    "amqplite.http",
)
FORBIDDEN_EXTRA = {
    "broker": ("amqplite.protocol",),
    "protocol": ("amqplite.broker", "amqplite.store"),
    "store": ("amqplite.protocol",),
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("layer", ["protocol", "broker", "store"])
def test_pure_layer_does_no_network_io(layer: str) -> None:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"amqplite/{layer} has no modules"
    forbidden = FORBIDDEN_EVERYWHERE + FORBIDDEN_EXTRA.get(layer, ())
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in files
        for name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    ]
    assert offenders == []
