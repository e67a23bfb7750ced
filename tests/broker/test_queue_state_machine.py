"""A state machine over one queue with consumers: every message is in exactly one state.

States: ready (in the queue), unacked (held by a channel, including acks and nacks waiting
in an uncommitted transaction), acked (settled by an ack or a no-ack delivery),
dead-lettered (in the DLQ: rejected, expired, maxlen, delivery_limit).  Publishes inside a
transaction exist only once committed.
No consumer ever holds more unacked messages than its prefetch.
"""

from __future__ import annotations

from typing import Any

from broker_helpers import RecordingSink, msg
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from amqplite.broker import Broker, Channel, FakeClock

N_CHANNELS = 3


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.broker = Broker(clock=self.clock)
        self.vhost = self.broker.add_vhost("/")
        self.vhost.declare_exchange("dlx", "fanout")
        self.vhost.declare_queue("dlq")
        self.vhost.bind_queue("dlq", "dlx", "")
        self.vhost.declare_queue(
            "q",
            arguments={"x-dead-letter-exchange": "dlx", "x-max-length": 6, "x-delivery-limit": 3},
        )
        self.queue = self.vhost.queues["q"]
        self.conn = self.broker.open_connection("/")
        self.channels: list[Channel] = []
        self.sinks: list[RecordingSink] = []
        self.next_number = 1
        for _ in range(N_CHANNELS):
            self._open_channel()
        self.published: list[bytes] = []
        self.acked: set[bytes] = set()
        self.no_ack_tags: set[str] = set()
        self.prefetch: dict[str, int] = {}
        self.counter = 0
        # Per channel slot, while in tx mode: settlements and publishes not yet committed.
        self.tx: list[bool] = [False] * N_CHANNELS
        self.pending_settle: list[list[tuple[str, list[bytes]]]] = [[] for _ in range(N_CHANNELS)]
        self.pending_publish: list[list[bytes]] = [[] for _ in range(N_CHANNELS)]

    def _open_channel(self, slot: int | None = None) -> None:
        sink = RecordingSink()
        ch = self.conn.open_channel(self.next_number, sink)
        self.next_number += 1
        if slot is None:
            self.channels.append(ch)
            self.sinks.append(sink)
        else:
            self.channels[slot] = ch
            self.sinks[slot] = sink

    def _collect_no_ack(self) -> None:
        for sink in self.sinks:
            for delivery in sink.take():
                if delivery[0] in self.no_ack_tags:
                    self.acked.add(delivery[5].body)

    @rule(slot=st.integers(0, N_CHANNELS - 1), expiration=st.sampled_from([None, "0", "50", "500"]))
    def publish(self, slot: int, expiration: str | None) -> None:
        self.counter += 1
        body = f"m{self.counter}".encode()
        if self.tx[slot]:
            self.pending_publish[slot].append(body)
        else:
            self.published.append(body)
        self.channels[slot].publish("", "q", msg(body, routing_key="q", expiration=expiration))
        self._collect_no_ack()

    @rule(slot=st.integers(0, N_CHANNELS - 1))
    def tx_select(self, slot: int) -> None:
        self.channels[slot].tx_select()
        self.tx[slot] = True

    @precondition(lambda self: any(self.tx))
    @rule(slot=st.integers(0, N_CHANNELS - 1))
    def tx_commit(self, slot: int) -> None:
        if not self.tx[slot]:
            return
        self.published.extend(self.pending_publish[slot])
        for kind, bodies in self.pending_settle[slot]:
            if kind == "ack":
                self.acked.update(bodies)
        self.pending_publish[slot] = []
        self.pending_settle[slot] = []
        self.channels[slot].tx_commit()
        self._collect_no_ack()

    @precondition(lambda self: any(self.tx))
    @rule(slot=st.integers(0, N_CHANNELS - 1))
    def tx_rollback(self, slot: int) -> None:
        if not self.tx[slot]:
            return
        self.pending_publish[slot] = []
        self.pending_settle[slot] = []
        self.channels[slot].tx_rollback()

    @rule(slot=st.integers(0, N_CHANNELS - 1), prefetch=st.integers(0, 3), no_ack=st.booleans())
    def consume(self, slot: int, prefetch: int, no_ack: bool) -> None:
        ch = self.channels[slot]
        ch.qos(prefetch)
        tag = ch.consume("q", no_ack=no_ack)
        self.prefetch[tag] = prefetch
        if no_ack:
            self.no_ack_tags.add(tag)
        self._collect_no_ack()

    @rule(slot=st.integers(0, N_CHANNELS - 1), data=st.data())
    def cancel(self, slot: int, data: st.DataObject) -> None:
        ch = self.channels[slot]
        if ch.consumers:
            # Draw an index: consumer tags are random, so sampling them would make runs differ.
            tags = list(ch.consumers)
            tag = tags[data.draw(st.integers(0, len(tags) - 1))]
            assert ch.cancel(tag)
            self._collect_no_ack()

    def _pick_tag(self, slot: int, data: st.DataObject) -> int | None:
        unacked = self.channels[slot].unacked
        return data.draw(st.sampled_from(sorted(unacked))) if unacked else None

    def _bodies_up_to(self, ch: Channel, tag: int, multiple: bool) -> list[bytes]:
        return [
            d.entry.message.body
            for t, d in ch.unacked.items()
            if t == tag or (multiple and t <= tag)
        ]

    @rule(slot=st.integers(0, N_CHANNELS - 1), multiple=st.booleans(), data=st.data())
    def ack(self, slot: int, multiple: bool, data: st.DataObject) -> None:
        ch = self.channels[slot]
        tag = self._pick_tag(slot, data)
        if tag is not None:
            bodies = self._bodies_up_to(ch, tag, multiple)
            if self.tx[slot]:
                self.pending_settle[slot].append(("ack", bodies))
            else:
                self.acked.update(bodies)
            ch.ack(tag, multiple=multiple)
            self._collect_no_ack()

    @rule(
        slot=st.integers(0, N_CHANNELS - 1),
        multiple=st.booleans(),
        requeue=st.booleans(),
        data=st.data(),
    )
    def nack(self, slot: int, multiple: bool, requeue: bool, data: st.DataObject) -> None:
        tag = self._pick_tag(slot, data)
        if tag is not None:
            if self.tx[slot]:
                bodies = self._bodies_up_to(self.channels[slot], tag, multiple)
                self.pending_settle[slot].append(("nack", bodies))
            self.channels[slot].nack(tag, multiple=multiple, requeue=requeue)
            self._collect_no_ack()

    @rule(slot=st.integers(0, N_CHANNELS - 1), requeue=st.booleans(), data=st.data())
    def reject(self, slot: int, requeue: bool, data: st.DataObject) -> None:
        tag = self._pick_tag(slot, data)
        if tag is not None:
            if self.tx[slot]:
                bodies = self._bodies_up_to(self.channels[slot], tag, False)
                self.pending_settle[slot].append(("nack", bodies))
            self.channels[slot].reject(tag, requeue=requeue)
            self._collect_no_ack()

    @rule(slot=st.integers(0, N_CHANNELS - 1), no_ack=st.booleans())
    def get(self, slot: int, no_ack: bool) -> None:
        result = self.channels[slot].get("q", no_ack=no_ack)
        if result is not None and no_ack:
            self.acked.add(result.message.body)

    @rule(slot=st.integers(0, N_CHANNELS - 1))
    def close_channel(self, slot: int) -> None:
        self.channels[slot].close()
        self.tx[slot] = False
        self.pending_publish[slot] = []
        self.pending_settle[slot] = []
        self._open_channel(slot)
        self._collect_no_ack()

    @rule(slot=st.integers(0, N_CHANNELS - 1), writable=st.booleans())
    def set_writable(self, slot: int, writable: bool) -> None:
        self.sinks[slot].writable = writable
        if writable:
            self.channels[slot].resume()
            self._collect_no_ack()

    @precondition(lambda self: self.published)
    @rule(seconds=st.sampled_from([0.01, 0.1, 1.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.broker.tick()

    @invariant()
    def every_message_is_in_exactly_one_state(self) -> None:
        ready = [e.message.body for e in self.queue.browse()]
        unacked = [d.entry.message.body for ch in self.channels for d in ch.unacked.values()]
        in_tx = [b for settles in self.pending_settle for _, bodies in settles for b in bodies]
        dead = [e.message.body for e in self.vhost.queues["dlq"].browse()]
        states: dict[bytes, list[str]] = {}
        for name, bodies in (
            ("ready", ready),
            ("unacked", unacked),
            ("in-tx", in_tx),
            ("acked", self.acked),
            ("dead", dead),
        ):
            for body in bodies:
                states.setdefault(body, []).append(name)
        assert sorted(states) == sorted(self.published)
        assert all(len(where) == 1 for where in states.values()), states
        assert self.queue.message_count == len(ready)
        assert self.queue.unacked_count == len(unacked) + len(in_tx)
        assert self.queue.message_bytes == sum(len(b) for b in ready)

    @invariant()
    def no_consumer_exceeds_its_prefetch(self) -> None:
        held: dict[Any, int] = {}
        for ch in self.channels:
            for delivery in ch.unacked.values():
                if delivery.consumer is not None:
                    held[delivery.consumer] = held.get(delivery.consumer, 0) + 1
        for consumer, count in held.items():
            limit = self.prefetch[consumer.tag]
            assert limit == 0 or consumer.unacked <= limit
            if not any(self.tx):
                assert consumer.unacked == count
            else:  # settlements waiting in a transaction still hold credit
                assert consumer.unacked >= count

    @invariant()
    def idle_queue_with_ready_consumers_is_drained(self) -> None:
        # Dispatch is eager: ready messages and a consumer able to take one never coexist.
        if self.queue.message_count:
            expired_head = any(
                e.expires_at is not None and e.expires_at <= self.clock()
                for e in self.queue.browse()
            )
            if not expired_head:
                assert not any(c.can_take() for c in self.queue.consumers)


QueueMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestQueueStateMachine = QueueMachine.TestCase
