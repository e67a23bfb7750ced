"""Client-side helpers for the protocol tests: drive a real ServerConnection with real frames."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from hypothesis import strategies as st

from amqplite.message import BasicProperties
from amqplite.protocol import (
    NEED_DATA,
    PROTOCOL_HEADER,
    ServerConnection,
    encode_method_frame,
    events,
    methods,
)
from amqplite.protocol.events import Event


def drain(proto: ServerConnection) -> list[Event]:
    out: list[Event] = []
    while (ev := proto.next_event()) is not NEED_DATA:
        out.append(ev)  # type: ignore[arg-type]
        if isinstance(ev, events.EOF):
            break
    return out


def feed(proto: ServerConnection, data: bytes) -> list[Event]:
    proto.receive_data(data)
    return drain(proto)


def comparable(evs: list[Event]) -> list[object]:
    """``evs`` with each Content as a tuple of what it carries: the Message inside compares
    by identity, the tuple by value."""
    return [
        (
            ev.channel,
            ev.method,
            ev.message.exchange,
            ev.message.routing_key,
            ev.message.properties,
            ev.message.raw_properties,
            bytes(ev.message.body),
        )
        if isinstance(ev, events.Content)
        else ev
        for ev in evs
    ]


def handshake_bytes(
    frame_max: int = 131072, channel_max: int = 2047, heartbeat: int = 0
) -> list[bytes]:
    """What a client sends up to connection.open, one item per step."""
    return [
        PROTOCOL_HEADER,
        encode_method_frame(
            0,
            methods.ConnectionStartOk(
                {"product": "test", "capabilities": {"publisher_confirms": True}},
                "PLAIN",
                b"\x00guest\x00guest",
                "en_US",
            ),
        ),
        encode_method_frame(0, methods.ConnectionTuneOk(channel_max, frame_max, heartbeat)),
        encode_method_frame(0, methods.ConnectionOpen("/")),
    ]


def open_connection(
    proto: ServerConnection, frame_max: int = 131072, channel_max: int = 2047, heartbeat: int = 0
) -> None:
    """Run the handshake the way a session would, sending the server's side too."""
    header, start_ok, tune_ok, open_ = handshake_bytes(frame_max, channel_max, heartbeat)
    assert feed(proto, header) == [events.ProtocolHeader()]
    proto.send_method(0, methods.ConnectionStart(0, 9, {}, b"PLAIN AMQPLAIN", b"en_US"))
    assert [type(e.method) for e in feed(proto, start_ok) if isinstance(e, events.Method)] == [
        methods.ConnectionStartOk
    ]
    proto.send_method(0, proto.tune_method())
    feed(proto, tune_ok)
    feed(proto, open_)
    proto.send_method(0, methods.ConnectionOpenOk())
    assert proto.state == "running"


def open_channel(proto: ServerConnection, channel: int) -> None:
    evs = feed(proto, encode_method_frame(channel, methods.ChannelOpen()))
    assert evs == [events.Method(channel, methods.ChannelOpen())]
    proto.send_method(channel, methods.ChannelOpenOk())


def running(frame_max: int = 131072, channels: tuple[int, ...] = (1,)) -> ServerConnection:
    proto = ServerConnection(frame_max=frame_max)
    open_connection(proto, frame_max=frame_max)
    for ch in channels:
        open_channel(proto, ch)
    return proto


# -- hypothesis strategies shared by the codec tests ---------------------------------

shortstrs = st.text(max_size=40)
keys = st.text(max_size=12)

field_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.none(),
    st.builds(
        lambda coef, scale: decimal.Decimal(coef).scaleb(-scale),
        st.integers(-(2**31), 2**31 - 1),
        st.integers(0, 30),
    ),
    st.datetimes(
        min_value=datetime.datetime(1970, 1, 1),
        max_value=datetime.datetime(9000, 1, 1),
        timezones=st.just(datetime.UTC),
    ).map(lambda d: d.replace(microsecond=0)),
)

field_values = st.recursive(
    field_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)
field_tables: st.SearchStrategy[dict[str, Any]] = st.dictionaries(keys, field_values, max_size=5)

FIELD_TYPE_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "octet": st.integers(0, 255),
    "short": st.integers(0, 2**16 - 1),
    "long": st.integers(0, 2**32 - 1),
    "longlong": st.integers(0, 2**64 - 1),
    "timestamp": st.integers(0, 2**64 - 1),
    "bit": st.booleans(),
    "shortstr": shortstrs,
    "longstr": st.binary(max_size=200),
    "table": field_tables,
}


pika_tables: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    keys,
    st.recursive(
        st.text(max_size=10) | st.integers(-(2**63), 2**63 - 1) | st.booleans() | st.none(),
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3)
        ),
        max_leaves=6,
    ),
    max_size=3,
)


def method_instances(
    cls: type[methods.Method], tables: st.SearchStrategy[dict[str, Any]] = field_tables
) -> st.SearchStrategy[methods.Method]:
    strategies = {**FIELD_TYPE_STRATEGIES, "table": tables}
    return st.builds(cls, **{name: strategies[kind] for name, kind in cls.FIELDS})


basic_properties = st.builds(
    BasicProperties,
    content_type=st.none() | shortstrs,
    content_encoding=st.none() | shortstrs,
    headers=st.none() | field_tables,
    delivery_mode=st.none() | st.integers(0, 255),
    priority=st.none() | st.integers(0, 255),
    correlation_id=st.none() | shortstrs,
    reply_to=st.none() | shortstrs,
    expiration=st.none() | shortstrs,
    message_id=st.none() | shortstrs,
    timestamp=st.none() | st.integers(0, 2**64 - 1),
    type=st.none() | shortstrs,
    user_id=st.none() | shortstrs,
    app_id=st.none() | shortstrs,
    cluster_id=st.none() | shortstrs,
)
