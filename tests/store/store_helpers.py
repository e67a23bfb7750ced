"""Small builders shared by the store tests."""

from __future__ import annotations

from typing import Any

from amqplite.message import BasicProperties, Message
from amqplite.store import RecoveredState


def make_message(body: bytes = b"hello", **props: Any) -> Message:
    props.setdefault("delivery_mode", 2)
    return Message("ex", "rk", BasicProperties(**props), body)


def bodies(state: RecoveredState, queue: tuple[str, str]) -> list[bytes]:
    return [entry.message.body for entry in state.queues.get(queue, []) if entry.message]
