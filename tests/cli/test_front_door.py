"""The ``amqplite`` front door as a user meets it: the real command in a subprocess.

``--version``, unknown options reported with the sub-command's own usage and a
did-you-mean, commands other than ``serve`` printing no INFO log lines, and the test
suite's summary ending with its count (issue 9)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from amqplite.version import __version__

ROOT = Path(__file__).resolve().parents[2]


def _amqplite(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amqplite", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_version_prints_the_version() -> None:
    result = _amqplite("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"amqplite {__version__}"


def test_a_wrong_flag_prints_the_subcommands_usage_with_a_did_you_mean() -> None:
    result = _amqplite("queues", "--jsn")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: amqplite queues ")
    assert "amqplite queues: error: unrecognized arguments: --jsn (did you mean --json?)" in (
        result.stderr
    )


def test_a_wrong_flag_of_a_nested_subcommand_names_that_subcommand() -> None:
    result = _amqplite("dlq", "list", "dead", "--limt", "3")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: amqplite dlq list ")
    assert "--limt (did you mean --limit?)" in result.stderr


def test_a_mistyped_command_gets_a_did_you_mean() -> None:
    result = _amqplite("queue")
    assert result.returncode == 2
    assert "invalid choice: 'queue' (did you mean 'queues'?)" in result.stderr


def test_route_with_a_config_file_prints_no_log_lines() -> None:
    config = ROOT / "examples" / "topic_routing" / "topology.yaml"
    result = _amqplite("route", "logs", "eu.web.error", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "logs.eu-errors" in result.stdout
    assert result.stderr == ""


def test_the_test_summary_ends_with_the_count_and_lists_no_skips(tmp_path: Path) -> None:
    """`make test` runs pytest with the project's options: the last line is the count."""
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\n"
        "def test_passes():\n    pass\n\n"
        "@pytest.mark.skip(reason='a reason that must not bury the count')\n"
        "def test_skipped():\n    pass\n"
    )
    options = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path)]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *options,
            "test_sample.py",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert "SKIPPED" not in result.stdout
    assert re.fullmatch(r"1 passed, 1 skipped in [\d.]+s", lines[-1]), lines[-1]


async def _cli_against(port: int) -> subprocess.CompletedProcess[bytes]:
    import trio

    url = f"amqp://guest:guest@127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "amqplite", "publish", "--url", url, "q", "hello"]
    return await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False)


async def test_the_cli_pointed_at_the_http_port_says_it_is_not_an_amqp_port() -> None:
    import trio

    from amqplite.http.request import Request, Response
    from amqplite.http.server import serve_app

    async def app(request: Request) -> Response:
        return Response(200, b"{}")

    async def http_like(stream: trio.SocketStream) -> None:
        # A plain HTTP server that answers garbage with a 400 at once.
        async with stream:
            await stream.receive_some(100)
            await stream.send_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")

    # The client's own timeout is 10 s: the answer must come long before.
    with trio.fail_after(8):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(lambda task_status: serve_app(app, task_status=task_status))
            result = await _cli_against(port)
            err = result.stderr.decode()
            assert result.returncode != 0
            assert f"127.0.0.1:{port}: this is not an AMQP port" in err, err
            assert len(err.strip().splitlines()) == 1, err

            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            other = listeners[0].socket.getsockname()[1]
            nursery.start_soon(trio.serve_listeners, http_like, listeners)
            result = await _cli_against(other)
            err = result.stderr.decode()
            assert f"127.0.0.1:{other}: this is not an AMQP port" in err, err
            assert "HTTP/1.1 400 Bad Request" in err
            nursery.cancel_scope.cancel()
