"""Topology methods and their error replies, exactly as RabbitMQ answers them (codes and
the texts clients show), checked against amqplite and, when AMQPLITE_RABBITMQ_URL is
set, against RabbitMQ.
"""

from __future__ import annotations

from collections.abc import Callable

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

Name = Callable[[str], str]
Connect = Callable[[], pika.BlockingConnection]


def _closed_by_broker(channel: BlockingChannel, call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        call()
    assert channel.is_closed
    return info.value.reply_code, info.value.reply_text


def test_exclusive_queue_refuses_consumers_of_another_connection(
    connect: Connect, name: Name
) -> None:
    q = name("locked")
    connect().channel().queue_declare(q, exclusive=True)
    other = connect().channel()
    code, text = _closed_by_broker(other, lambda: other.basic_consume(q, lambda *_: None))
    assert code == 405
    assert text == (
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost '/'. "
        "It could be originally declared on another connection or the exclusive property "
        "value does not match that of the original declaration."
    )


def test_passive_declare_of_a_missing_queue_is_404(channel: BlockingChannel, name: Name) -> None:
    q = name("missing")
    code, text = _closed_by_broker(channel, lambda: channel.queue_declare(q, passive=True))
    assert (code, text) == (404, f"NOT_FOUND - no queue '{q}' in vhost '/'")


def test_passive_declare_of_a_missing_exchange_is_404(channel: BlockingChannel, name: Name) -> None:
    x = name("missing")
    code, text = _closed_by_broker(channel, lambda: channel.exchange_declare(x, passive=True))
    assert (code, text) == (404, f"NOT_FOUND - no exchange '{x}' in vhost '/'")


def test_publish_to_a_missing_exchange_closes_the_channel_with_404(
    channel: BlockingChannel, name: Name
) -> None:
    x = name("nowhere")
    channel.basic_publish(x, "k", b"lost")
    # The publish has no reply: the close arrives while the next call waits.
    code, text = _closed_by_broker(channel, lambda: channel.queue_declare("", exclusive=True))
    assert (code, text) == (404, f"NOT_FOUND - no exchange '{x}' in vhost '/'")


def test_redeclare_with_other_arguments_is_406_inequivalent_arg(
    connect: Connect, name: Name
) -> None:
    q = name("args")
    connection = connect()
    connection.channel().queue_declare(q, exclusive=True, arguments={"x-max-length": 5})
    channel = connection.channel()
    code, text = _closed_by_broker(
        channel,
        lambda: channel.queue_declare(q, exclusive=True, arguments={"x-max-length": 10}),
    )
    assert code == 406
    assert text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{q}' in vhost '/': "
        "received '10' but current is '5'"
    )
    channel = connection.channel()
    code, text = _closed_by_broker(channel, lambda: channel.queue_declare(q, exclusive=True))
    assert code == 406
    assert text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{q}' in vhost '/': "
        "received none but current is the value '5' of type 'signedint'"
    )


def test_declare_ok_counts_messages_and_consumers(connect: Connect, name: Name) -> None:
    q = name("counted")
    channel = connect().channel()
    channel.confirm_delivery()  # RabbitMQ counts a publish only once it reached the queue
    channel.queue_declare(q, exclusive=True)
    for body in (b"a", b"b", b"c"):
        channel.basic_publish("", q, body)
    ok = channel.queue_declare(q, passive=True).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == (q, 3, 0)
    consumer = connect().channel()
    consumer.basic_qos(prefetch_count=1)
    # A second connection cannot consume from an exclusive queue: use the owner's.
    channel.basic_consume(q, lambda *_: None)
    ok = channel.queue_declare(q, passive=True).method
    # One message is out with the consumer (unacked), two are ready.
    assert ok.consumer_count == 1
    assert ok.message_count in (2, 0)  # prefetch unlimited: all may be out already
    consumer.close()


def test_purge_reports_the_ready_messages_it_removed(channel: BlockingChannel, name: Name) -> None:
    q = name("purged")
    channel.confirm_delivery()
    channel.queue_declare(q, exclusive=True)
    for i in range(4):
        channel.basic_publish("", q, b"%d" % i)
    method, _, _ = channel.basic_get(q)  # one unacked: not purged
    assert method is not None
    assert channel.queue_purge(q).method.message_count == 3
    assert channel.queue_declare(q, passive=True).method.message_count == 0


def test_unbinding_a_missing_binding_is_ok(channel: BlockingChannel, name: Name) -> None:
    q = name("unbound")
    channel.confirm_delivery()
    channel.queue_declare(q, exclusive=True)
    channel.queue_unbind(q, "amq.direct", "never-bound")
    channel.queue_bind(q, "amq.direct", "k")
    channel.queue_unbind(q, "amq.direct", "k")
    channel.queue_unbind(q, "amq.direct", "k")
    channel.basic_publish("amq.direct", "k", b"x")
    assert channel.queue_declare(q, passive=True).method.message_count == 0


def test_unbinding_from_or_to_what_does_not_exist_is_ok(
    channel: BlockingChannel, name: Name
) -> None:
    q, x = name("q"), name("gone")
    channel.queue_declare(q, exclusive=True)
    channel.queue_unbind(q, x, "k")
    channel.queue_unbind(name("no-queue"), "amq.direct", "k")
    channel.exchange_unbind("amq.direct", x, "k")
    channel.exchange_unbind(x, "amq.direct", "k")
    # Binding them is still a 404.
    code, text = _closed_by_broker(channel, lambda: channel.queue_bind(q, x, "k"))
    assert (code, text) == (404, f"NOT_FOUND - no exchange '{x}' in vhost '/'")


def test_unbinding_from_the_default_exchange_is_403(channel: BlockingChannel, name: Name) -> None:
    code, text = _closed_by_broker(channel, lambda: channel.queue_unbind(name("q"), "", "k"))
    assert (code, text) == (403, "ACCESS_REFUSED - operation not permitted on the default exchange")


def test_queue_delete_if_unused_and_if_empty_are_406(connect: Connect, name: Name) -> None:
    q = name("busy")
    connection = connect()
    owner = connection.channel()
    owner.queue_declare(q, exclusive=True)
    owner.basic_consume(q, lambda *_: None)
    channel = connection.channel()
    code, text = _closed_by_broker(channel, lambda: channel.queue_delete(q, if_unused=True))
    assert (code, text) == (406, f"PRECONDITION_FAILED - queue '{q}' in vhost '/' in use")
    owner.basic_publish("", name("elsewhere"), b"x")
    e = name("full")
    owner.queue_declare(e, exclusive=True)
    owner.basic_publish("", e, b"x")
    channel = connection.channel()
    code, text = _closed_by_broker(channel, lambda: channel.queue_delete(e, if_empty=True))
    assert (code, text) == (406, f"PRECONDITION_FAILED - queue '{e}' in vhost '/' not empty")


def test_exchange_delete_if_unused_is_406(channel: BlockingChannel, name: Name) -> None:
    x, q = name("used"), name("q")
    channel.exchange_declare(x, "direct", auto_delete=True)
    channel.queue_declare(q, exclusive=True)
    channel.queue_bind(q, x, "k")
    code, text = _closed_by_broker(channel, lambda: channel.exchange_delete(x, if_unused=True))
    assert (code, text) == (406, f"PRECONDITION_FAILED - exchange '{x}' in vhost '/' in use")


def test_exchange_binding_loop_delivers_once(channel: BlockingChannel, name: Name) -> None:
    a, b, q = name("a"), name("b"), name("q")
    channel.confirm_delivery()
    channel.exchange_declare(a, "fanout")
    channel.exchange_declare(b, "fanout")
    channel.exchange_bind(b, a)
    channel.exchange_bind(a, b)
    channel.queue_declare(q, exclusive=True)
    channel.queue_bind(q, b)
    channel.basic_publish(a, "", b"once")
    channel.basic_publish(b, "", b"twice?")
    assert channel.queue_declare(q, passive=True).method.message_count == 2
    channel.exchange_delete(a)
    channel.exchange_delete(b)


@pytest.mark.parametrize(
    ("match", "headers", "routed"),
    [
        ("all", {"a": 1, "b": "two"}, True),
        ("all", {"a": 1}, False),
        ("all", {"a": 1, "b": "two", "c": 3}, True),
        ("any", {"a": 1}, True),
        ("any", {"b": "other"}, False),
        ("any", {}, False),
    ],
)
def test_headers_exchange_x_match(
    channel: BlockingChannel,
    name: Name,
    match: str,
    headers: dict[str, object],
    routed: bool,
) -> None:
    x, q = name("h"), name("q")
    channel.confirm_delivery()
    channel.exchange_declare(x, "headers", auto_delete=True)
    channel.queue_declare(q, exclusive=True)
    channel.queue_bind(q, x, arguments={"x-match": match, "a": 1, "b": "two"})
    channel.basic_publish(x, "", b"m", pika.BasicProperties(headers=headers))
    assert channel.queue_declare(q, passive=True).method.message_count == int(routed)


def test_auto_delete_queue_goes_with_its_last_consumer(connect: Connect, name: Name) -> None:
    q = name("auto")
    channel = connect().channel()
    channel.queue_declare(q, auto_delete=True)
    first = channel.basic_consume(q, lambda *_: None)
    second = channel.basic_consume(q, lambda *_: None)
    channel.basic_cancel(first)
    assert channel.queue_declare(q, passive=True).method.consumer_count == 1
    channel.basic_cancel(second)
    probe = connect().channel()
    code, _ = _closed_by_broker(probe, lambda: probe.queue_declare(q, passive=True))
    assert code == 404


def test_an_exclusive_queue_is_never_durable(connect: Connect, name: Name) -> None:
    q = name("exclusive")
    connection = connect()
    connection.channel().queue_declare(q, exclusive=True, durable=True)
    # Either durable value is equivalent: the queue was made non-durable.
    connection.channel().queue_declare(q, exclusive=True)
    connection.channel().queue_declare(q, exclusive=True, durable=True)
    channel = connection.channel()
    code, _ = _closed_by_broker(channel, lambda: channel.queue_declare(q, durable=True))
    assert code == 405  # not exclusive now: locked, whatever the durability


def test_exclusive_quorum_queue_is_refused(channel: BlockingChannel, name: Name) -> None:
    q = name("quorum")
    code, text = _closed_by_broker(
        channel,
        lambda: channel.queue_declare(
            q, durable=True, exclusive=True, arguments={"x-queue-type": "quorum"}
        ),
    )
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue '{q}' in vhost '/'",
    )


def test_quorum_queue_property_checks_come_in_rabbitmqs_order(
    channel: BlockingChannel, name: Name
) -> None:
    q = name("quorum")
    code, text = _closed_by_broker(
        channel,
        lambda: channel.queue_declare(
            q, auto_delete=True, exclusive=True, arguments={"x-queue-type": "quorum"}
        ),
    )
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid property 'auto-delete' for queue '{q}' in vhost '/'",
    )


def test_passive_declare_of_the_empty_name_is_404_even_after_a_declare(
    channel: BlockingChannel,
) -> None:
    channel.queue_declare("", exclusive=True)
    code, text = _closed_by_broker(channel, lambda: channel.queue_declare("", passive=True))
    assert (code, text) == (404, "NOT_FOUND - no queue '' in vhost '/'")


def test_amq_default_is_not_an_alias_of_the_default_exchange(channel: BlockingChannel) -> None:
    code, text = _closed_by_broker(
        channel, lambda: channel.exchange_declare("amq.default", "direct", passive=True)
    )
    assert (code, text) == (404, "NOT_FOUND - no exchange 'amq.default' in vhost '/'")


@pytest.mark.parametrize(
    ("expiration", "detail"),
    [
        ("abc", "no_integer"),
        ("", "no_integer"),
        ("-1", "{value_negative,-1}"),
        ("10abc", '{leftover_string,"abc"}'),
        ("1.5", '{leftover_string,".5"}'),
    ],
)
def test_publish_with_an_invalid_expiration_is_406(
    channel: BlockingChannel, name: Name, expiration: str, detail: str
) -> None:
    channel.basic_publish("", name("q"), b"x", pika.BasicProperties(expiration=expiration))
    code, text = _closed_by_broker(channel, lambda: channel.queue_declare("", exclusive=True))
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid expiration '{expiration}': {detail}",
    )


def test_signed_expiration_is_accepted(channel: BlockingChannel, name: Name) -> None:
    q = name("q")
    channel.confirm_delivery()
    channel.queue_declare(q, exclusive=True)
    channel.basic_publish("", q, b"x", pika.BasicProperties(expiration="+60000"))
    assert channel.queue_declare(q, passive=True).method.message_count == 1


def test_consumer_priority_must_be_an_integer(channel: BlockingChannel, name: Name) -> None:
    q = name("q")
    channel.queue_declare(q, exclusive=True)
    code, text = _closed_by_broker(
        channel,
        lambda: channel.basic_consume(q, lambda *_: None, arguments={"x-priority": "high"}),
    )
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg 'x-priority' for queue '{q}' in vhost '/': "
        '"expected integer, got longstr"',
    )


def test_ack_of_tag_zero_with_multiple_acks_everything(
    channel: BlockingChannel, name: Name
) -> None:
    q = name("q")
    channel.confirm_delivery()
    channel.queue_declare(q, exclusive=True)
    for _ in range(3):
        channel.basic_publish("", q, b"x")
    for _ in range(3):
        assert channel.basic_get(q)[0] is not None
    channel.basic_ack(0, multiple=True)
    channel.basic_recover(requeue=True)  # nothing unacked is left to requeue
    assert channel.queue_declare(q, passive=True).method.message_count == 0
    channel.basic_ack(0)
    code, text = _closed_by_broker(channel, lambda: channel.queue_declare("", exclusive=True))
    assert (code, text) == (406, "PRECONDITION_FAILED - unknown delivery tag 0")


@pytest.mark.parametrize(
    ("binding", "headers", "routed"),
    [
        ({"a": 1}, {"a": 2**40}, False),
        ({"a": 2**40}, {"a": 2**40}, True),
        ({"a": 1}, {"a": "1"}, False),
        ({"a": True}, {"a": 1}, False),
        ({"a": None}, {"a": 1}, True),
        ({"a": "s"}, {"a": b"s"}, True),  # pika sends bytes as a byte array ('x')
        ({"x-match": "all", "x-foo": "bar", "a": 1}, {"a": 1}, True),
        ({"x-match": "all-with-x", "x-foo": "bar", "a": 1}, {"a": 1}, False),
        ({"x-match": "any-with-x", "x-foo": "bar"}, {"x-foo": "bar"}, True),
        ({"x-match": "any", "x-foo": "bar"}, {"x-foo": "bar"}, False),
        ({}, None, True),
        ({"x-match": "any"}, {"a": 1}, False),
    ],
)
def test_headers_exchange_compares_values_like_rabbitmq(
    channel: BlockingChannel,
    name: Name,
    binding: dict[str, object],
    headers: dict[str, object] | None,
    routed: bool,
) -> None:
    x, q = name("h"), name("q")
    channel.confirm_delivery()
    channel.exchange_declare(x, "headers", auto_delete=True)
    channel.queue_declare(q, exclusive=True)
    channel.queue_bind(q, x, arguments=binding)
    channel.basic_publish(x, "", b"m", pika.BasicProperties(headers=headers))
    assert channel.queue_declare(q, passive=True).method.message_count == int(routed)


@pytest.mark.parametrize(
    ("x_match", "detail"),
    [
        ("foo", 'value <<"foo">>; expected all, any, all-with-x, or any-with-x'),
        (5, "type signedint (value 5); expected longstr"),
    ],
)
def test_headers_binding_with_a_bad_x_match_is_406(
    channel: BlockingChannel, name: Name, x_match: object, detail: str
) -> None:
    q = name("q")
    channel.queue_declare(q, exclusive=True)
    code, text = _closed_by_broker(
        channel, lambda: channel.queue_bind(q, "amq.headers", arguments={"x-match": x_match})
    )
    assert (code, text) == (406, f"PRECONDITION_FAILED - Invalid x-match field {detail}")


@pytest.mark.parametrize(
    "argument",
    [{"x-max-priority": 5}, {"x-queue-mode": "lazy"}, {"x-queue-master-locator": "min-masters"}],
)
def test_classic_only_arguments_on_a_quorum_queue_are_406(
    channel: BlockingChannel, name: Name, argument: dict[str, object]
) -> None:
    q = name("quorum")
    [arg] = argument
    code, text = _closed_by_broker(
        channel,
        lambda: channel.queue_declare(
            q, durable=True, arguments={"x-queue-type": "quorum", **argument}
        ),
    )
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg '{arg}' for queue '{q}' in vhost '/' "
        "of queue type rabbit_quorum_queue",
    )


@pytest.mark.parametrize(
    ("argument", "detail"),
    [
        ({"x-quorum-initial-group-size": 3}, " of queue type rabbit_classic_queue"),
        ({"x-max-in-memory-length": 10}, " of queue type rabbit_classic_queue"),
        ({"x-queue-version": 3}, ": \"unsupported queue version '3'\""),
        ({"x-queue-version": "2"}, ': "expected integer, got longstr"'),
        ({"x-max-length": "x"}, ': "expected integer, got longstr"'),
        ({"x-max-priority": 300}, ": {max_value_exceeded,300}"),
        ({"x-queue-mode": "bogus"}, ": \"unsupported queue mode 'bogus'\""),
        ({"x-overflow": "bogus"}, ": invalid_overflow"),
        ({"x-overflow": 5}, ": {unacceptable_type,signedint}"),
        ({"x-queue-type": "bogus"}, ": \"unsupported queue type 'bogus'\""),
        ({"x-dead-letter-routing-key": "k"}, ": routing_key_but_no_dlx_defined"),
        ({"x-expires": 0}, ": {value_zero,0}"),
        ({"x-message-ttl": -1}, ": {value_negative,-1}"),
    ],
)
def test_invalid_classic_queue_arguments_are_406_with_rabbitmqs_text(
    channel: BlockingChannel, name: Name, argument: dict[str, object], detail: str
) -> None:
    q = name("args")
    [arg] = argument
    code, text = _closed_by_broker(
        channel, lambda: channel.queue_declare(q, exclusive=True, arguments=argument)
    )
    assert (code, text) == (
        406,
        f"PRECONDITION_FAILED - invalid arg '{arg}' for queue '{q}' in vhost '/'{detail}",
    )


@pytest.mark.parametrize("passive", [False, True])
def test_declaring_the_default_exchange_is_403(channel: BlockingChannel, passive: bool) -> None:
    code, text = _closed_by_broker(
        channel, lambda: channel.exchange_declare("", "direct", passive=passive)
    )
    assert (code, text) == (403, "ACCESS_REFUSED - operation not permitted on the default exchange")


@pytest.mark.parametrize(
    ("exchange_type", "text"),
    [
        ("", "COMMAND_INVALID - invalid exchange type ''"),
        ("x-no-such-type", "COMMAND_INVALID - unknown exchange type 'x-no-such-type'"),
    ],
)
def test_declaring_an_exchange_of_an_unknown_type_is_503(
    channel: BlockingChannel, name: Name, exchange_type: str, text: str
) -> None:
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        channel.exchange_declare(name("x"), exchange_type)
    assert (info.value.reply_code, info.value.reply_text) == (503, text)
