"""Message properties and payloads as RabbitMQ's management API writes and reads them.

Layer: ``amqplite/http``.  Pure.  ``properties`` objects use the AMQP property names
(``content_type``, ``delivery_mode``, ``headers``...) and leave absent ones out;
payloads are ``"string"`` when they are valid UTF-8 (and ``encoding`` is ``"auto"``),
else ``"base64"``, exactly as ``POST /api/queues/{vhost}/{name}/get`` does.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import attrs

from amqplite.http.jsonout import jsonable
from amqplite.http.request import bad_request
from amqplite.message import BasicProperties, Body

_INT_PROPS = frozenset({"delivery_mode", "priority", "timestamp"})
_PROP_NAMES = tuple(f.name for f in attrs.fields(BasicProperties))


def properties_to_json(props: BasicProperties) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _PROP_NAMES:
        value = getattr(props, name)
        if value is not None:
            out[name] = jsonable(value)
    return out


def properties_from_json(value: Any) -> BasicProperties:
    """``BasicProperties`` from a request's ``properties`` object (400 on bad fields)."""
    if value is None:
        return BasicProperties()
    if not isinstance(value, dict):
        raise bad_request("properties must be an object")
    fields: dict[str, Any] = {}
    for name, item in value.items():
        if name not in _PROP_NAMES:
            raise bad_request(f"unknown property {name!r}")
        if item is None:
            continue
        if name == "headers":
            if not isinstance(item, dict):
                raise bad_request("headers must be an object")
            fields[name] = item
        elif name in _INT_PROPS:
            if isinstance(item, bool) or not isinstance(item, int):
                raise bad_request(f"property {name} must be an integer")
            fields[name] = item
        else:
            if not isinstance(item, str):
                raise bad_request(f"property {name} must be a string")
            fields[name] = item
    return BasicProperties(**fields)


def encode_payload(
    body: Body, encoding: str = "auto", truncate: int | None = None
) -> dict[str, Any]:
    """``payload``, ``payload_bytes``, ``payload_encoding`` (and ``truncated``) for ``body``."""
    shown = body if truncate is None else body[:truncate]
    out: dict[str, Any] = {"payload_bytes": len(body)}
    text: str | None = None
    if encoding == "auto":
        try:
            text = shown.decode("utf-8")
        except UnicodeDecodeError:
            # A preview cut in the middle of a multi-byte character is still text.
            if len(shown) < len(body):
                for cut in (1, 2, 3):
                    try:
                        text = shown[:-cut].decode("utf-8")
                        break
                    except UnicodeDecodeError:
                        continue
    if text is not None:
        out["payload"] = text
        out["payload_encoding"] = "string"
    else:
        out["payload"] = base64.b64encode(shown).decode()
        out["payload_encoding"] = "base64"
    if truncate is not None and len(shown) < len(body):
        out["truncated"] = True
    return out


def decode_payload(payload: Any, encoding: Any) -> bytes:
    if not isinstance(payload, str):
        raise bad_request("payload must be a string")
    if encoding == "string":
        return payload.encode("utf-8")
    if encoding == "base64":
        try:
            return base64.b64decode(payload, validate=True)
        except binascii.Error:
            raise bad_request("payload is not valid base64") from None
    raise bad_request("payload_encoding must be 'string' or 'base64'")
