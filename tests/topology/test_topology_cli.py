"""``amqplite topology validate``: exit codes and output."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from amqplite.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_validate_valid_file_prints_summary_and_exits_0(
    write: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    name = write(
        "exchanges: {x: {type: fanout}}\nqueues: {a: {}, b: {}}\n"
        "bindings: [{source: x, destination: a}, {source: x, destination: b}]\n"
    )
    assert main(["topology", "validate", name]) == 0
    out, err = capsys.readouterr()
    assert out == "topology.yaml: OK (1 vhost, 1 exchange, 2 queues, 2 bindings, 0 users)\n"
    assert err == ""


def test_validate_prints_every_error_one_per_line_and_exits_1(
    write: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    name = write("queues:\n  q: {durable: maybe}\nbindings: [{source: x, destination: q}]\n")
    assert main(["topology", "validate", name]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        'topology.yaml:2:16: queues.q.durable: expected true or false, got "maybe"',
        "topology.yaml:3:21: bindings[0].source: no exchange 'x' is declared",
        "topology.yaml: 2 errors",
        "hint: a name the file uses without declaring it is fine if the broker you apply the "
        "file to already has it: 'amqplite topology plan/apply FILE' check it there",
    ]


def test_validate_several_files_fails_if_any_fails(
    write: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write("queues: [q]\n")
    good = str(REPO / "config" / "amqplite.yaml")
    assert main(["topology", "validate", good, bad]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{good}: OK (")
    assert "topology.yaml:1:9: queues: expected a mapping, got a list" in err


def test_python_dash_m_validates_the_shipped_configs() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "amqplite",
            "topology",
            "validate",
            "config/amqplite.yaml",
            "config/topology.example.yaml",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": OK (") == 2
