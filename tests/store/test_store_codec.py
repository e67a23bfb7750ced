"""The store's own serialisation: exact round trips of field values and properties."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from amqplite.message import BasicProperties, Message
from amqplite.store.codec import (
    decode_message,
    decode_properties,
    decode_queue_list,
    decode_stored_head,
    decode_value,
    encode_message,
    encode_properties,
    encode_queue,
    encode_value,
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**100), max_value=2**100),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.one_of(st.none(), st.just(datetime.UTC))),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _typed(value: Any) -> Any:
    """The value with every leaf paired with its type, so 1 == True == 1.0 cannot hide."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value), value, str(value))


@settings(max_examples=200, deadline=None)
@given(value=_values)
def test_field_values_round_trip_with_their_types(value: Any) -> None:
    out = bytearray()
    encode_value(value, out)
    decoded, end = decode_value(bytes(out), 0)
    assert end == len(out)
    assert _typed(decoded) == _typed(value)


@settings(max_examples=100, deadline=None)
@given(
    headers=st.none() | st.dictionaries(st.text(), _values, max_size=4),
    text=st.none() | st.text(max_size=20),
    number=st.none() | st.integers(0, 255),
)
def test_properties_round_trip(headers: Any, text: str | None, number: int | None) -> None:
    props = BasicProperties(
        content_type=text, headers=headers, priority=number, timestamp=number, app_id=text
    )
    out = bytearray()
    encode_properties(props, out)
    decoded, end = decode_properties(bytes(out), 0)
    assert end == len(out)
    assert decoded == props


def test_tuples_come_back_as_lists_and_subclasses_as_their_base() -> None:
    import enum

    class Colour(str, enum.Enum):  # noqa: UP042 - the mixin whose str() is its name
        RED = "red"

    out = bytearray()
    encode_value({"t": (1, 2), "c": Colour.RED, "d": Decimal("1E+3")}, out)
    decoded = decode_value(bytes(out), 0)[0]
    assert decoded == {"t": [1, 2], "c": "red", "d": Decimal("1E+3")}
    assert type(decoded["c"]) is str
    assert str(decoded["d"]) == "1E+3"


def test_a_long_stays_a_long_through_the_store() -> None:
    from amqplite.message import Long

    out = bytearray()
    encode_value({"count": Long(3), "n": 3}, out)
    value, _ = decode_value(bytes(out), 0)
    assert type(value["count"]) is Long and value["count"] == 3
    assert type(value["n"]) is int


_HEADS = st.tuples(
    st.sampled_from([("/", "a"), ("/", "b"), ("v", "a")]),
    st.sampled_from(["", "amq.direct"]),
    st.sampled_from(["a", "key.1", ""]),
    st.sampled_from(
        [
            BasicProperties(),
            BasicProperties(delivery_mode=2),
            BasicProperties(delivery_mode=2, expiration="60000"),
            BasicProperties(headers={"x": 1}),
        ]
    ),
    st.sampled_from([None, b"\x10\x00\x02"]),
    st.binary(max_size=40),
    st.sampled_from([None, 1_700_000_000.5]),
)


@given(st.lists(_HEADS, min_size=1, max_size=30))
@settings(max_examples=60, deadline=None)
def test_the_stored_head_agrees_with_the_whole_message_record_after_record(
    records: list[tuple[Any, ...]],
) -> None:
    """Recovery's one-call decode (which reuses the last head seen per queue) says what a
    full decode says, whatever order queues, keys and properties come in."""
    for queue, exchange, key, properties, raw, body, timestamp in records:
        message = Message(exchange, key, properties, body, raw)
        payload = memoryview(encode_message(message, [encode_queue(queue)], timestamp))[18:]
        queues, when, props, size = decode_stored_head(payload)
        members, content, when2 = decode_queue_list(payload)
        whole = decode_message(payload, content)
        assert queues == members == [queue] and when == when2 == timestamp
        assert props == whole.properties and size == len(whole.body) == len(body)
