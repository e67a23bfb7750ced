"""AMQP 0-9-1 codec and server connection state machine, sans-I/O in the style of h11 (protocol layer).

::

    from amqplite.protocol import ServerConnection, NEED_DATA, events, methods

    proto = ServerConnection(frame_max=131072, channel_max=2047, heartbeat=60)
    proto.receive_data(data)                      # b"" means EOF
    for ev in proto.next_events(): ...            # or: while (ev := proto.next_event()) is not NEED_DATA
    out = proto.send_method(channel, method)      # bytes
    out = proto.encode_deliver(channel, tag, delivery_tag, redelivered, exchange, routing_key, message)

Imports only :mod:`amqplite.errors` and :mod:`amqplite.message`; no I/O, no clock.
"""

from __future__ import annotations

from amqplite.protocol import events, methods
from amqplite.protocol.connection import MAX_MESSAGE_SIZE, NEED_DATA, ServerConnection
from amqplite.protocol.fields import (
    MAX_DEPTH,
    decode_array,
    decode_table,
    encode_array,
    encode_table,
)
from amqplite.protocol.frames import (
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_MIN_SIZE,
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
    Frame,
    decode_frame,
    encode_content,
    encode_deliver,
    encode_frame,
    encode_get_ok,
    encode_method_frame,
    encode_return,
)
from amqplite.protocol.properties import decode_properties, encode_properties

__all__ = [
    "FRAME_BODY",
    "FRAME_END",
    "FRAME_HEADER",
    "FRAME_HEARTBEAT",
    "FRAME_METHOD",
    "FRAME_MIN_SIZE",
    "HEARTBEAT_FRAME",
    "MAX_DEPTH",
    "MAX_MESSAGE_SIZE",
    "NEED_DATA",
    "PROTOCOL_HEADER",
    "Frame",
    "ServerConnection",
    "decode_array",
    "decode_frame",
    "decode_properties",
    "decode_table",
    "encode_array",
    "encode_content",
    "encode_deliver",
    "encode_frame",
    "encode_get_ok",
    "encode_method_frame",
    "encode_properties",
    "encode_return",
    "encode_table",
    "events",
    "methods",
]
