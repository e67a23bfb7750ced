"""Field tables and arrays: every value type RabbitMQ clients send, nesting, and the depth cap."""

from __future__ import annotations

import datetime
import decimal
import struct
from typing import Any

import pytest
from _protocol_helpers import field_tables, field_values
from hypothesis import given, settings

from amqplite.errors import AMQPConnectionError, ReplyCode
from amqplite.protocol import MAX_DEPTH, decode_array, decode_table, encode_array, encode_table


def _table(entries: bytes) -> bytes:
    return struct.pack(">I", len(entries)) + entries


@settings(max_examples=100, deadline=None)
@given(field_tables)
def test_tables_round_trip_exactly(table: dict[str, Any]) -> None:
    encoded = encode_table(table)
    assert decode_table(encoded) == (table, len(encoded))


@settings(max_examples=100, deadline=None)
@given(field_values)
def test_any_value_round_trips_inside_an_array(value: Any) -> None:
    encoded = encode_array([value, [value], {"k": value}])
    decoded, end = decode_array(memoryview(encoded))
    assert decoded == [value, [value], {"k": value}] and end == len(encoded)


def test_every_wire_type_decodes_to_its_python_value() -> None:
    entries = b"".join(
        [
            b"\x01t" + b"t\x01",
            b"\x01b" + b"b" + struct.pack(">b", -5),
            b"\x01B" + b"B\xff",
            b"\x01s" + b"s" + struct.pack(">h", -300),
            b"\x01u" + b"u" + struct.pack(">H", 65000),
            b"\x01I" + b"I" + struct.pack(">i", -70000),
            b"\x01i" + b"i" + struct.pack(">I", 4_000_000_000),
            b"\x01l" + b"l" + struct.pack(">q", -(2**40)),
            b"\x01f" + b"f" + struct.pack(">f", 1.5),
            b"\x01d" + b"d" + struct.pack(">d", -2.25),
            b"\x01D" + b"D" + struct.pack(">Bi", 2, -12345),
            b"\x01S" + b"S" + struct.pack(">I", 3) + b"abc",
            b"\x01x" + b"x" + struct.pack(">I", 2) + b"\x00\xff",
            b"\x01T" + b"T" + struct.pack(">Q", 1_700_000_000),
            b"\x01V" + b"V",
            b"\x01A" + b"A" + struct.pack(">I", 7) + b"t\x00" + b"B\x07" + b"V" + b"V" + b"V",
            b"\x01F" + b"F" + _table(b"\x01nV"),
        ]
    )
    decoded, _ = decode_table(_table(entries))
    assert decoded == {
        "t": True,
        "b": -5,
        "B": 255,
        "s": -300,
        "u": 65000,
        "I": -70000,
        "i": 4_000_000_000,
        "l": -(2**40),
        "f": 1.5,
        "d": -2.25,
        "D": decimal.Decimal("-123.45"),
        "S": "abc",
        "x": b"\x00\xff",
        "T": datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC),
        "V": None,
        "A": [False, 7, None, None, None],
        "F": {"n": None},
    }


def test_long_string_that_is_not_utf8_decodes_as_bytes() -> None:
    decoded, _ = decode_table(_table(b"\x01kS" + struct.pack(">I", 2) + b"\xff\xfe"))
    assert decoded == {"k": b"\xff\xfe"}


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (True, b"t\x01"),
        (2**31 - 1, b"I" + struct.pack(">i", 2**31 - 1)),
        (-(2**31), b"I" + struct.pack(">i", -(2**31))),
        (2**31, b"l" + struct.pack(">q", 2**31)),
        (1.0, b"d" + struct.pack(">d", 1.0)),
        ("é", b"S\x00\x00\x00\x02" + "é".encode()),
        (b"\x00", b"x\x00\x00\x00\x01\x00"),
        (None, b"V"),
        (decimal.Decimal("1.50"), b"D\x02" + struct.pack(">i", 150)),
        (datetime.datetime(1970, 1, 2), b"T" + struct.pack(">Q", 86400)),
    ],
)
def test_python_values_encode_as_rabbitmq_clients_encode_them(value: Any, wire: bytes) -> None:
    assert encode_table({"k": value}) == _table(b"\x01k" + wire)


@pytest.mark.parametrize("value", [2**63, object(), float("nan") and decimal.Decimal("NaN")])
def test_unencodable_values_are_refused(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        encode_table({"k": value})


def test_keys_over_255_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="255"):
        encode_table({"k" * 256: 1})


def _nested_tables(depth: int) -> bytes:
    inner = _table(b"")
    for _ in range(depth):
        inner = _table(b"\x01kF" + inner)
    return inner


def test_nesting_up_to_the_cap_decodes() -> None:
    decoded, _ = decode_table(_nested_tables(MAX_DEPTH))
    for _ in range(MAX_DEPTH):
        decoded = decoded["k"]
    assert decoded == {}
    nested: dict[str, Any] = {}
    for _ in range(MAX_DEPTH):
        nested = {"k": nested}
    assert encode_table(nested) == _nested_tables(MAX_DEPTH)
    with pytest.raises(ValueError, match="nesting"):
        encode_table({"k": nested})


def test_nesting_beyond_the_cap_is_a_frame_error_not_a_recursion_error() -> None:
    with pytest.raises(AMQPConnectionError) as info:
        decode_table(_nested_tables(MAX_DEPTH + 1))
    assert info.value.reply_code == ReplyCode.FRAME_ERROR
    with pytest.raises(AMQPConnectionError):
        decode_table(_nested_tables(3000))


def test_deeply_nested_arrays_hit_the_same_cap() -> None:
    inner = struct.pack(">I", 0)
    for _ in range(3000):
        inner = struct.pack(">I", len(inner) + 1) + b"A" + inner
    with pytest.raises(AMQPConnectionError):
        decode_array(inner)


def test_encoding_a_cyclic_table_is_a_value_error() -> None:
    table: dict[str, Any] = {}
    table["self"] = table
    with pytest.raises(ValueError, match="nesting"):
        encode_table(table)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x05\x01kZ\x00\x00",  # unknown type
        b"\x00\x00\x00\x09\x01kS\x00\x00\x00\x09ab",  # string past the table
        b"\x00\x00\x00\x10\x01k",  # table longer than the data
        b"\x00\x00\x00\x04\x01kI\x00",  # value past the table end
    ],
)
def test_malformed_tables_are_frame_errors(data: bytes) -> None:
    with pytest.raises(AMQPConnectionError) as info:
        decode_table(data)
    assert info.value.reply_code == ReplyCode.FRAME_ERROR


def test_a_long_keeps_its_64_bit_type_through_decode_and_re_encode() -> None:
    from amqplite.message import Long

    encoded = encode_table({"small-long": Long(5), "plain": 5})
    assert b"small-longl" in encoded and b"plainI" in encoded
    decoded, _ = decode_table(encoded, 0)
    assert type(decoded["small-long"]) is Long and decoded["small-long"] == 5
    assert type(decoded["plain"]) is int
    assert encode_table(decoded) == encoded
