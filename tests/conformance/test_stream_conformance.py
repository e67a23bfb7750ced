"""Stream queues over AMQP 0-9-1: declare and consume refusals (codes and texts), offsets
and the x-stream-offset header, checked against amqplite and, when AMQPLITE_RABBITMQ_URL
is set, against RabbitMQ 3.10."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

Name = Callable[[str], str]
Connect = Callable[[], pika.BlockingConnection]
STREAM = {"x-queue-type": "stream"}


@pytest.fixture
def stream(connect: Connect, name: Name) -> Iterator[str]:
    q = name("stream")
    connect().channel().queue_declare(q, durable=True, arguments=STREAM)
    yield q
    connection = connect()
    connection.channel().queue_delete(q)
    connection.close()


def _channel_closed(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        call()
    return info.value.reply_code, info.value.reply_text


def _connection_closed(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        call()
    return info.value.reply_code, info.value.reply_text


@pytest.mark.parametrize(
    ("kwargs", "prop"),
    [
        ({}, "non-durable"),
        ({"durable": True, "exclusive": True}, "exclusive-owner"),
        ({"durable": True, "auto_delete": True}, "auto-delete"),
    ],
)
def test_stream_declare_needs_a_plain_durable_queue(
    channel: BlockingChannel, name: Name, kwargs: dict[str, Any], prop: str
) -> None:
    q = name("bad")
    code, text = _channel_closed(lambda: channel.queue_declare(q, arguments=STREAM, **kwargs))
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid property '{prop}' for queue '{q}' in vhost '/'",
    )


def test_stream_declare_refuses_server_named_queues(channel: BlockingChannel) -> None:
    code, text = _channel_closed(lambda: channel.queue_declare("", durable=True, arguments=STREAM))
    assert (code, text) == (
        406,
        "PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_stream_queue",
    )


@pytest.mark.parametrize(
    ("args", "detail"),
    [
        ({"x-message-ttl": 1000}, "of queue type rabbit_stream_queue"),
        ({"x-max-length": 10}, "of queue type rabbit_stream_queue"),
        ({"x-dead-letter-exchange": "dlx"}, "of queue type rabbit_stream_queue"),
        ({"x-max-priority": 5}, "of queue type rabbit_stream_queue"),
        ({"x-max-age": "7d"}, ": invalid_max_age"),
        ({"x-max-age": "1.5h"}, ": invalid_max_age"),
        ({"x-max-age": 5}, ": {unacceptable_type,signedint}"),
        ({"x-max-length-bytes": -1}, ": {value_negative,-1}"),
        ({"x-initial-cluster-size": 0}, ": {value_zero,0}"),
    ],
)
def test_stream_declare_refuses_bad_and_classic_arguments(
    channel: BlockingChannel, name: Name, args: dict[str, Any], detail: str
) -> None:
    q = name("args")
    code, text = _channel_closed(
        lambda: channel.queue_declare(q, durable=True, arguments={**STREAM, **args})
    )
    arg = next(iter(args))
    sep = " " if detail.startswith("of") else ""
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg '{arg}' for queue '{q}' in vhost '/'{sep}{detail}",
    )


def test_stream_redeclare_with_another_max_age_is_inequivalent(
    channel: BlockingChannel, name: Name, connect: Connect
) -> None:
    q = name("age")
    channel.queue_declare(q, durable=True, arguments={**STREAM, "x-max-age": "7D"})
    other = connect().channel()
    code, text = _channel_closed(
        lambda: other.queue_declare(q, durable=True, arguments={**STREAM, "x-max-age": "8D"})
    )
    channel.queue_delete(q)
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - inequivalent arg 'x-max-age' for queue '{q}' in vhost '/': "
        "received '8D' but current is '7D'",
    )


def test_stream_consumer_without_prefetch_is_406(connect: Connect, stream: str) -> None:
    ch = connect().channel()
    code, text = _channel_closed(lambda: ch.basic_consume(stream, lambda *_: None))
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - consumer prefetch count is not set for 'queue '{stream}' in vhost '/''",
    )


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (
            lambda ch, q: ch.basic_consume(q, lambda *_: None, auto_ack=True),
            "automatic acknowledgement not supported by stream queues",
        ),
        (lambda ch, q: ch.basic_get(q), "basic.get not supported by stream queues"),
        (lambda ch, q: ch.queue_purge(q), "queue.purge not supported by stream queues"),
    ],
)
def test_stream_refusals_close_the_connection_with_540(
    connect: Connect, stream: str, call: Callable[[BlockingChannel, str], object], text: str
) -> None:
    ch = connect().channel()
    ch.basic_qos(prefetch_count=10)
    code, reply = _connection_closed(lambda: call(ch, stream))
    assert (code, reply) == (540, f"NOT_IMPLEMENTED - {text} queue '{stream}' in vhost '/'")


def test_bad_stream_offset_is_406(connect: Connect, stream: str) -> None:
    ch = connect().channel()
    ch.basic_qos(prefetch_count=10)
    code, text = _channel_closed(
        lambda: ch.basic_consume(stream, lambda *_: None, arguments={"x-stream-offset": "1x"})
    )
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue '{stream}' in vhost '/': "
        '{invalid_stream_offset_arg,{longstr,<<"1x">>}}',
    )


def _read(ch: BlockingChannel, q: str, offset: Any, want: int) -> list[tuple[int, bytes, bool]]:
    ch.basic_qos(prefetch_count=100)
    got: list[tuple[int, bytes, bool]] = []
    for method, props, body in ch.consume(
        q, arguments={"x-stream-offset": offset}, inactivity_timeout=3
    ):
        if method is None:
            break
        got.append((props.headers["x-stream-offset"], body, method.redelivered))
        ch.basic_ack(method.delivery_tag)
        if len(got) == want:
            break
    ch.cancel()
    return got


@pytest.mark.parametrize(
    ("offset", "expected"),
    [("first", [0, 1, 2, 3, 4]), (3, [3, 4]), (-1, [0, 1, 2, 3, 4]), ("1h", [0, 1, 2, 3, 4])],
)
def test_stream_offsets_and_the_offset_header(
    connect: Connect, stream: str, offset: Any, expected: list[int]
) -> None:
    ch = connect().channel()
    ch.confirm_delivery()
    for i in range(5):
        ch.basic_publish("", stream, f"m{i}".encode())
    got = _read(ch, stream, offset, len(expected))
    assert got == [(i, f"m{i}".encode(), False) for i in expected]


def test_stream_offset_timestamp_in_the_future_waits_for_new_messages(
    connect: Connect, stream: str
) -> None:
    ch = connect().channel()
    ch.confirm_delivery()
    ch.basic_publish("", stream, b"old")
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    assert _read(ch, stream, future, 1) == []
