"""Consumer timeout: a delivery left unacked too long closes its channel with 406."""

from __future__ import annotations

import pytest
from broker_helpers import RecordingSink, World, publish

from amqplite.broker import Broker, FakeClock
from amqplite.errors import ChannelError, ReplyCode


class ClosingSink(RecordingSink):
    """A sink that also records the channel closes the core asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.closed: list[tuple[int, str]] = []

    def close_channel(self, reply_code: int, reply_text: str) -> None:
        self.closed.append((reply_code, reply_text))


def make(timeout: float | None = 30.0) -> tuple[Broker, FakeClock]:
    clock = FakeClock()
    broker = Broker(clock, consumer_timeout=timeout)
    broker.add_vhost("/")
    return broker, clock


def test_unacked_delivery_past_the_timeout_closes_the_channel_and_requeues() -> None:
    broker, clock = make(30.0)
    conn = broker.open_connection("/")
    sink = ClosingSink()
    ch = conn.open_channel(7, sink)
    ch.declare_queue("q")
    publish(ch, "", "q", "slow")
    ch.consume("q", "c")
    assert broker.next_deadline() == clock.now + 30.0
    clock.advance(29.9)
    broker.tick()
    assert not sink.closed
    clock.advance(0.1)
    broker.tick()
    assert sink.closed == [
        (
            ReplyCode.PRECONDITION_FAILED,
            "delivery acknowledgement on channel 7 timed out. Timeout value used: 30000 ms. "
            "This timeout value can be configured, see consumers doc guide to learn more",
        )
    ]
    q = broker.vhosts["/"].queues["q"]
    assert (q.message_count, q.unacked_count, q.consumer_count) == (1, 0, 0)
    assert 7 not in conn.channels
    assert broker.next_deadline() is None
    other = conn.open_channel(8, RecordingSink())
    got = other.get("q", no_ack=True)
    assert got is not None and got.redelivered


def test_acking_in_time_clears_the_deadline() -> None:
    broker, clock = make(30.0)
    sink = ClosingSink()
    ch = broker.open_connection("/").open_channel(1, sink)
    ch.declare_queue("q")
    publish(ch, "", "q", "a")
    publish(ch, "", "q", "b")
    ch.consume("q", "c")
    clock.advance(20)
    ch.ack(sink.tags[0])
    publish(ch, "", "q", "c")  # delivered now: its own 30 s start here
    assert broker.next_deadline() == clock.now - 20 + 30  # "b", delivered first, is oldest
    ch.ack(sink.tags[1])
    assert broker.next_deadline() == clock.now + 30
    ch.ack(sink.tags[2])
    assert broker.next_deadline() is None
    clock.advance(3600)
    broker.tick()
    assert not sink.closed


def test_no_ack_consumers_and_disabled_timeout_never_time_out() -> None:
    broker, _clock = make(30.0)
    ch = broker.open_connection("/").open_channel(1, ClosingSink())
    ch.declare_queue("q")
    publish(ch, "", "q", "x")
    ch.consume("q", "c", no_ack=True)
    assert broker.next_deadline() is None
    off, _off_clock = make(None)
    sink = ClosingSink()
    ch2 = off.open_connection("/").open_channel(1, sink)
    ch2.declare_queue("q")
    publish(ch2, "", "q", "x")
    ch2.consume("q", "c")
    assert off.next_deadline() is None


def test_queue_argument_overrides_the_broker_timeout_and_covers_basic_get() -> None:
    broker, clock = make(None)
    sink = ClosingSink()
    ch = broker.open_connection("/").open_channel(3, sink)
    ch.declare_queue("q", arguments={"x-consumer-timeout": 5000})
    publish(ch, "", "q", "x")
    assert ch.get("q") is not None
    assert broker.next_deadline() == clock.now + 5.0
    clock.advance(5.0)
    broker.tick()
    assert sink.closed and "Timeout value used: 5000 ms" in sink.closed[0][1]
    assert broker.vhosts["/"].queues["q"].message_count == 1


def test_a_sink_without_close_channel_still_gets_its_deliveries_released(world: World) -> None:
    world.broker.consumer_timeout = 1.0  # read when a queue is declared
    world.ch.declare_queue("q")
    publish(world.ch, "", "q", "x")
    world.ch.consume("q", "c")
    world.clock.advance(1.0)
    world.broker.tick()
    assert world.ch.closed
    assert world.vhost.queues["q"].message_count == 1


def test_consumer_timeout_argument_must_be_a_positive_integer(world: World) -> None:
    for bad in (0, -1, "soon"):
        ch, _ = world.channel()
        with pytest.raises(ChannelError) as exc:
            ch.declare_queue("q", arguments={"x-consumer-timeout": bad})
        assert exc.value.reply_code == ReplyCode.PRECONDITION_FAILED
        assert "x-consumer-timeout" in exc.value.reply_text
