"""JSON rendering helpers for the management API: AMQP values to JSON, (streamed) responses.

Layer: ``amqplite/http``.  Pure.  AMQP field tables hold ``bytes``, ``Decimal``,
``datetime`` and nested tables; :func:`jsonable` turns them into what RabbitMQ's
management API shows (timestamps as integer seconds, byte arrays as text when they are
UTF-8).  Long listings are streamed: :func:`json_list_response` renders one item at a
time into a chunked response so memory stays flat however many queues there are.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from amqplite.http.request import JSON_TYPE, Response

T = TypeVar("T")

#: Listings longer than this are sent chunked, rendered lazily.
STREAM_THRESHOLD = 200

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def jsonable(value: Any) -> Any:
    """A JSON-serialisable copy of an AMQP field value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return int(value.timestamp())
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode()
    return str(value)


def dumps(value: Any) -> bytes:
    return _encoder.encode(value).encode()


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, dumps(value), JSON_TYPE)


def json_list_response(items: Sequence[T], render: Callable[[T], Any]) -> Response:
    """A JSON array of ``render(item)``; streamed when long.  ``items`` must be a snapshot
    (a list), since the broker may change while a streamed response is being written."""
    if len(items) <= STREAM_THRESHOLD:
        return json_response([render(item) for item in items])
    return Response(200, _stream(items, render), JSON_TYPE)


def _stream(items: Sequence[T], render: Callable[[T], Any]) -> Iterator[bytes]:
    yield b"["
    first = True
    for item in items:
        piece = _encoder.encode(render(item))
        yield (piece if first else "," + piece).encode()
        first = False
    yield b"]"


def no_content() -> Response:
    return Response(204, b"", None)


def created() -> Response:
    return Response(201, b"", None)
