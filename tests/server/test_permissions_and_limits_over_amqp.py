"""Permissions and limits through a real server and pika, where amqplite goes beyond
RabbitMQ 3.10 (so tests/conformance cannot compare): topic permissions on CC/BCC keys,
passive declares refused without permission, the node-wide connection cap, and
max_message_size refused at the content header, before the body is read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pika  # type: ignore[import-untyped]
import pika.exceptions  # type: ignore[import-untyped]
import pytest

from amqplite.app import RunningBroker, build_broker, run_in_thread
from amqplite.broker import Broker, hash_password
from amqplite.settings import ServerSettings


def _broker() -> Broker:
    broker = build_broker(None)
    broker.users.add_user("bob", hash_password("pw"))
    broker.users.set_permissions("bob", "/", "^bob\\.", "^amq\\.topic$|^amq\\.default$", "^bob\\.")
    broker.users.set_topic_permissions("bob", "/", "amq.topic", "^ok\\.", ".*")
    return broker


@pytest.fixture
def running() -> Iterator[RunningBroker]:
    settings = ServerSettings(port=0, connection_max=3, max_message_size=1024)
    with run_in_thread(broker=_broker(), settings=settings, shutdown_timeout=0.2) as found:
        yield found


def _connect(running: RunningBroker, user: str = "bob") -> pika.BlockingConnection:
    password = "guest" if user == "guest" else "pw"
    params = pika.URLParameters(f"amqp://{user}:{password}@127.0.0.1:{running.port}/")
    return pika.BlockingConnection(params)


def _closed(fn: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        fn()
    return exc.value.reply_code, exc.value.reply_text


@pytest.mark.parametrize("header", ["CC", "BCC"])
def test_topic_write_permission_covers_cc_and_bcc(running: RunningBroker, header: str) -> None:
    conn = _connect(running)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("amq.topic", "ok.a", b"fine", pika.BasicProperties(headers={header: ["ok.b"]}))
    props = pika.BasicProperties(headers={header: ["ok.b", "secret.c"]})
    assert _closed(lambda: ch.basic_publish("amq.topic", "ok.a", b"no", props)) == (
        403,
        "ACCESS_REFUSED - write access to topic 'secret.c' in exchange 'amq.topic' in vhost '/' "
        "refused for user 'bob'",
    )
    # The connection is fine: only the channel was closed.
    conn.channel().queue_declare("bob.q", auto_delete=True)
    conn.close()


def test_passive_declare_does_not_reveal_what_the_user_cannot_see(running: RunningBroker) -> None:
    running.call(lambda: running.broker.vhosts["/"].declare_queue("payroll"))
    conn = _connect(running)
    for name in ("payroll", "no-such-queue"):  # exists or not: the same answer
        code, text = _closed(lambda n=name: conn.channel().queue_declare(n, passive=True))
        assert (code, text) == (
            403,
            f"ACCESS_REFUSED - access to queue '{name}' in vhost '/' refused for user 'bob'",
        )
    code, _ = _closed(lambda: conn.channel().exchange_declare("amq.fanout", passive=True))
    assert code == 403
    conn.channel().queue_declare("bob.mine", passive=False, auto_delete=True)
    conn.channel().queue_declare("bob.mine", passive=True)
    conn.close()


def test_node_connection_cap_refuses_the_excess_only(running: RunningBroker) -> None:
    opened = [_connect(running, "guest") for _ in range(3)]
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as exc:
        _connect(running, "guest")
    assert "NOT_ALLOWED - connection refused: node connection limit (3) is reached" in str(
        exc.value
    )
    opened[0].channel().queue_declare("", exclusive=True)  # the others keep working
    opened.pop().close()
    _connect(running, "guest").close()  # room again
    for conn in opened:
        conn.close()


def test_max_message_size_is_refused_at_the_header(running: RunningBroker) -> None:
    conn = _connect(running, "guest")
    ch = conn.channel()
    ch.queue_declare("sized")
    ch.confirm_delivery()
    ch.basic_publish("", "sized", b"x" * 1024)
    assert _closed(lambda: ch.basic_publish("", "sized", b"x" * 1025)) == (
        406,
        "PRECONDITION_FAILED - message size 1025 is larger than configured max size 1024",
    )
    ch = conn.channel()
    assert ch.queue_declare("sized", passive=True).method.message_count == 1
    conn.close()


def test_connection_max_from_the_yaml_server_section(tmp_path: Path) -> None:
    config = tmp_path / "amqplite.yaml"
    config.write_text("server:\n  connection_max: 1\n", encoding="utf-8")
    with run_in_thread(config, shutdown_timeout=0.2) as found:
        first = _connect(found, "guest")
        with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as exc:
            _connect(found, "guest")
        assert "node connection limit (1) is reached" in str(exc.value)
        first.close()
