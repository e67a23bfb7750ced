"""The generated method table: complete, regenerable, symmetric, and wire-compatible with pika."""

from __future__ import annotations

import os
from pathlib import Path

import pika.spec  # type: ignore[import-untyped]
import pytest
from _protocol_helpers import method_instances, pika_tables
from hypothesis import given, settings
from hypothesis import strategies as st

from amqplite.errors import AMQPConnectionError, ReplyCode
from amqplite.protocol import decode_frame, encode_method_frame, methods
from amqplite.protocol._generate import generate

REPO = Path(__file__).resolve().parents[2]
SPEC_ENV = "AMQPLITE_SPEC_XML"
SPEC_RELATIVE = Path("shared/spec/amqp0-9-1.xml")
ALL_METHODS = sorted(methods.METHODS.values(), key=lambda c: (c.CLASS_ID, c.METHOD_ID))


#: A copy of the spec for a clone that stands anywhere (the AMQP licence allows copies
#: for implementing the protocol).
SPEC_COPY = Path(__file__).resolve().parent / "spec" / "amqp0-9-1.xml"


def _spec_xml() -> Path:
    """The spec beside the clone (``../shared/spec``), or beside a checkout that holds this
    one as a worktree further down, else the copy in ``tests/protocol/spec``;
    ``$AMQPLITE_SPEC_XML`` overrides them all."""
    if os.environ.get(SPEC_ENV):
        return Path(os.environ[SPEC_ENV])
    for parent in REPO.parents:
        if (parent / SPEC_RELATIVE).exists():
            return parent / SPEC_RELATIVE
    return SPEC_COPY


def test_regenerating_from_the_spec_yields_the_committed_module() -> None:
    spec = _spec_xml()
    # Fails rather than skips: a table nobody can regenerate is a table nobody checks.
    assert spec.is_file(), (
        f"AMQP spec XML not found at {spec}: put it at ../{SPEC_RELATIVE} beside the "
        f"repository, restore {SPEC_COPY}, or point ${SPEC_ENV} at it"
    )
    committed = Path(methods.__file__).read_text()
    assert generate(spec) == committed


def test_table_has_every_spec_method_and_rabbitmq_extension() -> None:
    names = {c.NAME for c in ALL_METHODS}
    assert len(names) == 64
    for name in (
        "confirm.select",
        "confirm.select-ok",
        "basic.nack",
        "exchange.bind",
        "exchange.unbind-ok",
        "connection.blocked",
        "connection.unblocked",
        "connection.update-secret",
        "connection.update-secret-ok",
        "basic.recover-async",
        "tx.rollback-ok",
    ):
        assert name in names
    assert set(methods.DECODERS) == {c.CLASS_ID << 16 | c.METHOD_ID for c in ALL_METHODS}


def test_method_metadata_follows_the_spec() -> None:
    assert methods.BasicPublish.HAS_CONTENT and not methods.BasicPublish.SYNCHRONOUS
    assert methods.BasicGetOk.HAS_CONTENT and methods.BasicGetOk.SYNCHRONOUS
    assert (methods.BasicNack.CLASS_ID, methods.BasicNack.METHOD_ID) == (60, 120)
    assert (methods.ConfirmSelect.CLASS_ID, methods.ConfirmSelect.METHOD_ID) == (85, 10)
    assert methods.ExchangeDeclare.FIELDS[5:7] == (("auto_delete", "bit"), ("internal", "bit"))
    assert methods.BasicQos.FIELDS[2] == ("global_", "bit")
    publish = methods.BasicPublish()
    assert (publish.reserved_1, publish.exchange, publish.mandatory) == (0, "", False)


def test_consecutive_bits_share_one_octet_in_spec_order() -> None:
    declare = methods.QueueDeclare(queue="q", durable=True, auto_delete=True, no_wait=True)
    # reserved-1, queue, then passive(1) durable(2) exclusive(4) auto-delete(8) no-wait(16).
    assert declare.encode() == b"\x00\x32\x00\x0a\x00\x00\x01q" + bytes([2 | 8 | 16]) + b"\x00" * 4
    assert methods.BasicAck(5, True).encode() == b"\x00\x3c\x00\x50" + (5).to_bytes(8) + b"\x01"


@pytest.mark.parametrize("cls", ALL_METHODS, ids=lambda c: c.NAME)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_method_round_trips_through_a_frame(
    cls: type[methods.Method], data: st.DataObject
) -> None:
    method = data.draw(method_instances(cls))
    frame, _end = decode_frame(bytearray(encode_method_frame(7, method))) or (None, 0)
    assert frame is not None and frame.channel == 7
    payload = memoryview(frame.payload)
    key = int.from_bytes(payload[:4])
    assert methods.DECODERS[key](payload, 4, len(payload)) == method


# pika's own connection.update-secret decoder stores the secret under the wrong name.
PIKA_COMPARABLE = [c for c in ALL_METHODS if c is not methods.ConnectionUpdateSecret]


@pytest.mark.parametrize("cls", PIKA_COMPARABLE, ids=lambda c: c.NAME)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_pika_reads_and_rewrites_our_encoding_byte_for_byte(
    cls: type[methods.Method], data: st.DataObject
) -> None:
    # pika picks other wire types than RabbitMQ's clients for some Python values
    # (floats, bytes): keep the tables to values both map the same way.
    method = data.draw(method_instances(cls, pika_tables))
    encoded = method.encode()
    pika_cls = pika.spec.methods[cls.CLASS_ID << 16 | cls.METHOD_ID]
    pika_method = pika_cls.__new__(pika_cls)
    pika_method.decode(encoded, 4)
    assert b"".join(pika_method.encode()) == encoded[4:]


def test_decoders_reject_trailing_and_missing_bytes() -> None:
    payload = methods.BasicAck(1).encode()
    decode = methods.DECODERS[0x003C0050]
    with pytest.raises(ValueError):
        decode(payload + b"\x00", 4, len(payload) + 1)
    with pytest.raises(Exception):  # noqa: B017 - struct.error; the frame layer maps it to 501
        decode(payload[:-2], 4, len(payload) - 2)


def test_shortstr_over_255_bytes_is_refused_on_encode() -> None:
    with pytest.raises(ValueError, match="longer than 255"):
        methods.QueueDeclare(queue="é" * 128).encode()
    methods.QueueDeclare(queue="q" * 255).encode()


def test_methods_are_frozen_values() -> None:
    ack = methods.BasicAck(3)
    assert ack == methods.BasicAck(3, False)
    with pytest.raises(AttributeError):
        ack.delivery_tag = 4  # type: ignore[misc]
    assert isinstance(AMQPConnectionError(ReplyCode.FRAME_ERROR, "x"), Exception)
