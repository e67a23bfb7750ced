"""Generate :mod:`amqplite.protocol.methods` from the AMQP 0-9-1 spec XML (protocol layer, build tool).

Usage::

    python -m amqplite.protocol._generate ../shared/spec/amqp0-9-1.xml [OUTPUT]

OUTPUT defaults to ``amqplite/protocol/methods.py`` beside this file.  The spec gives
classes, methods, field order and domains; RabbitMQ's extensions (confirm, basic.nack,
exchange-to-exchange bindings, connection.blocked / update-secret) and RabbitMQ's names
for the two exchange.declare bits the spec calls reserved are declared in the tables
below.  The output is straight-line code: one attrs class per method with an
``encode()`` method, and one decoder function per method, with consecutive fixed-size
fields read or written by one precompiled ``struct.Struct`` and consecutive bits packed
into octets as the spec requires.  ``tests/protocol`` checks the committed file equals
a fresh generation.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import attrs

CLASSES = ("connection", "channel", "exchange", "queue", "basic", "tx")

# (class name, class index, method name, method index, synchronous, content, fields)
# with fields as (name, primitive type).  From RabbitMQ's "AMQP 0-9-1 extensions" and
# its amqp-rabbitmq-0.9.1 spec.
EXTENSIONS: tuple[tuple[str, int, str, int, bool, bool, tuple[tuple[str, str], ...]], ...] = (
    ("connection", 10, "blocked", 60, False, False, (("reason", "shortstr"),)),
    ("connection", 10, "unblocked", 61, False, False, ()),
    (
        "connection",
        10,
        "update-secret",
        70,
        True,
        False,
        (("new-secret", "longstr"), ("reason", "shortstr")),
    ),
    ("connection", 10, "update-secret-ok", 71, True, False, ()),
    (
        "exchange",
        40,
        "bind",
        30,
        True,
        False,
        (
            ("reserved-1", "short"),
            ("destination", "shortstr"),
            ("source", "shortstr"),
            ("routing-key", "shortstr"),
            ("no-wait", "bit"),
            ("arguments", "table"),
        ),
    ),
    ("exchange", 40, "bind-ok", 31, True, False, ()),
    (
        "exchange",
        40,
        "unbind",
        40,
        True,
        False,
        (
            ("reserved-1", "short"),
            ("destination", "shortstr"),
            ("source", "shortstr"),
            ("routing-key", "shortstr"),
            ("no-wait", "bit"),
            ("arguments", "table"),
        ),
    ),
    ("exchange", 40, "unbind-ok", 51, True, False, ()),
    (
        "basic",
        60,
        "nack",
        120,
        False,
        False,
        (("delivery-tag", "longlong"), ("multiple", "bit"), ("requeue", "bit")),
    ),
    ("confirm", 85, "select", 10, True, False, (("nowait", "bit"),)),
    ("confirm", 85, "select-ok", 11, True, False, ()),
)

# RabbitMQ gives meaning to two bits the 0-9-1 spec reserves.
RENAMES = {
    ("exchange", "declare", "reserved-2"): "auto-delete",
    ("exchange", "declare", "reserved-3"): "internal",
}

PY_TYPES = {
    "octet": "int",
    "short": "int",
    "long": "int",
    "longlong": "int",
    "timestamp": "int",
    "bit": "bool",
    "shortstr": "str",
    "longstr": "bytes",
    "table": "dict[str, Any]",
}
DEFAULTS = {
    "octet": "0",
    "short": "0",
    "long": "0",
    "longlong": "0",
    "timestamp": "0",
    "bit": "False",
    "shortstr": '""',
    "longstr": 'b""',
    "table": "attrs.field(factory=dict)",
}
STRUCT_CODES = {"octet": "B", "short": "H", "long": "I", "longlong": "Q", "timestamp": "Q"}
SIZES = {"B": 1, "H": 2, "I": 4, "Q": 8}


@attrs.frozen
class FieldSpec:
    name: str  # python identifier
    wire_name: str
    type: str


@attrs.frozen
class MethodSpec:
    class_name: str
    class_id: int
    name: str
    method_id: int
    synchronous: bool
    content: bool
    fields: tuple[FieldSpec, ...]

    @property
    def full_name(self) -> str:
        return f"{self.class_name}.{self.name}"

    @property
    def py_name(self) -> str:
        return "".join(p.capitalize() for p in self.full_name.replace(".", "-").split("-"))

    @property
    def snake(self) -> str:
        return self.full_name.replace(".", "_").replace("-", "_")


def _ident(name: str) -> str:
    ident = name.replace("-", "_")
    return ident + "_" if ident in {"global", "type_"} else ident


def load_spec(path: str | Path) -> list[MethodSpec]:
    root = ET.parse(path).getroot()
    domains = {d.get("name"): d.get("type") for d in root.iter("domain")}

    def resolve(field: ET.Element) -> str:
        kind = field.get("type") or domains[field.get("domain")]
        while kind in domains and domains[kind] != kind:
            kind = domains[kind]
        assert kind in PY_TYPES, kind
        return kind

    methods: list[MethodSpec] = []
    for cls in root.iter("class"):
        cname = cls.get("name", "")
        if cname not in CLASSES:
            continue
        for m in cls.iter("method"):
            mname = m.get("name", "")
            fields = tuple(
                FieldSpec(
                    _ident(RENAMES.get((cname, mname, f.get("name", "")), f.get("name", ""))),
                    RENAMES.get((cname, mname, f.get("name", "")), f.get("name", "")),
                    resolve(f),
                )
                for f in m.findall("field")
            )
            methods.append(
                MethodSpec(
                    cname,
                    int(cls.get("index", "0")),
                    mname,
                    int(m.get("index", "0")),
                    m.get("synchronous") == "1",
                    m.get("content") == "1",
                    fields,
                )
            )
    for cname, cid, mname, mid, sync, content, fdefs in EXTENSIONS:
        fields = tuple(FieldSpec(_ident(n), n, t) for n, t in fdefs)
        methods.append(MethodSpec(cname, cid, mname, mid, sync, content, fields))
    methods.sort(key=lambda s: (s.class_id, s.method_id))
    return methods


class _Emitter:
    def __init__(self) -> None:
        self.structs: dict[str, str] = {}

    def struct(self, fmt: str) -> str:
        name = "_S_" + fmt
        self.structs[fmt] = name
        return name


def _groups(fields: tuple[FieldSpec, ...]) -> list[list[FieldSpec] | FieldSpec]:
    """Split fields into bit groups (lists, at most 8 bits) and single non-bit fields."""
    out: list[list[FieldSpec] | FieldSpec] = []
    for f in fields:
        if f.type == "bit":
            last = out[-1] if out else None
            if isinstance(last, list) and len(last) < 8:
                last.append(f)
            else:
                out.append([f])
        else:
            out.append(f)
    return out


def _decoder(spec: MethodSpec, em: _Emitter) -> list[str]:
    lines = [f"def _decode_{spec.snake}(buf: Buffer, o: int, end: int) -> {spec.py_name}:"]
    if not spec.fields:
        lines += [
            "    if o != end:",
            f'        raise ValueError("{spec.full_name} has trailing bytes")',
            f"    return _{spec.snake.upper()}",
            "",
            "",
        ]
        return lines
    fmt = ""
    targets: list[str] = []
    post: list[str] = []  # statements to run after the pending struct read

    def flush() -> None:
        nonlocal fmt, targets, post
        if fmt == "B":
            lines.append(f"    {targets[0]} = buf[o]")
            lines.append("    o += 1")
        elif fmt:
            name = em.struct(fmt)
            size = sum(SIZES[c] for c in fmt)
            lhs = ", ".join(targets) + ("," if len(targets) == 1 else "")
            lines.append(f"    {lhs} = {name}.unpack_from(buf, o)")
            lines.append(f"    o += {size}")
        lines.extend(post)
        fmt, targets, post = "", [], []

    bitno = 0
    for g in _groups(spec.fields):
        if isinstance(g, list):
            tmp = f"bits{bitno}"
            bitno += 1
            fmt += "B"
            targets.append(tmp)
            for i, f in enumerate(g):
                post.append(f"    {f.name} = bool({tmp} & {1 << i})")
            continue
        f = g
        if f.type in STRUCT_CODES:
            fmt += STRUCT_CODES[f.type]
            targets.append(f.name)
        elif f.type == "shortstr":
            fmt += "B"
            targets.append(f"n_{f.name}")
            post.append(f'    {f.name} = str(buf[o : o + n_{f.name}], "utf-8")')
            post.append(f"    o += n_{f.name}")
            flush()
        elif f.type == "longstr":
            fmt += "I"
            targets.append(f"n_{f.name}")
            post.append(f"    {f.name} = bytes(buf[o : o + n_{f.name}])")
            post.append(f"    o += n_{f.name}")
            flush()
        elif f.type == "table":
            flush()
            lines.append(f"    {f.name}, o = _decode_table(buf, o)")
        else:  # pragma: no cover - load_spec asserts the type set
            raise AssertionError(f.type)
    flush()
    args = ", ".join(f.name for f in spec.fields)
    lines += [
        "    if o != end:",
        f'        raise ValueError("{spec.full_name} length does not match its frame")',
        f"    return {spec.py_name}({args})",
        "",
        "",
    ]
    return lines


def _encoder(spec: MethodSpec, em: _Emitter) -> list[str]:
    lines = ["    def encode(self) -> bytes:"]
    header = f"{spec.class_id}, {spec.method_id}"
    if not spec.fields:
        lines += [f"        return _ENCODED_{spec.snake.upper()}", ""]
        return lines
    pre: list[str] = []
    parts: list[str] = []
    fmt = "HH"
    args = [header]

    def flush() -> None:
        nonlocal fmt, args
        if fmt:
            parts.append(f"{em.struct(fmt)}.pack({', '.join(args)})")
        fmt, args = "", []

    for g in _groups(spec.fields):
        if isinstance(g, list):
            expr = " | ".join(f"(self.{f.name} and {1 << i})" for i, f in enumerate(g))
            fmt += "B"
            args.append(expr if len(g) > 1 else f"self.{g[0].name} and 1")
            continue
        f = g
        if f.type in STRUCT_CODES:
            fmt += STRUCT_CODES[f.type]
            args.append(f"self.{f.name}")
        elif f.type == "shortstr":
            pre.append(f'        {f.name} = self.{f.name}.encode("utf-8")')
            pre.append(f"        if len({f.name}) > 255:")
            pre.append(f'            raise _too_long("{spec.full_name}", "{f.name}")')
            fmt += "B"
            args.append(f"len({f.name})")
            flush()
            parts.append(f.name)
        elif f.type == "longstr":
            fmt += "I"
            args.append(f"len(self.{f.name})")
            flush()
            parts.append(f"bytes(self.{f.name})")
        elif f.type == "table":
            flush()
            parts.append(f"encode_table(self.{f.name})")
    flush()
    lines += pre
    if len(parts) == 1:
        lines.append(f"        return {parts[0]}")
    else:
        lines.append('        return b"".join((')
        lines += [f"            {p}," for p in parts]
        lines.append("        ))")
    lines.append("")
    return lines


HEADER = '''"""AMQP 0-9-1 method classes, encoders and decoders (protocol layer, pure).

GENERATED by ``python -m amqplite.protocol._generate ../shared/spec/amqp0-9-1.xml``
from the spec plus RabbitMQ's extensions; do not edit by hand.

Every method is an attrs frozen class with class attributes ``CLASS_ID``, ``METHOD_ID``,
``NAME``, ``SYNCHRONOUS``, ``HAS_CONTENT`` and ``FIELDS`` (name, AMQP type), and an
``encode()`` that returns the method frame payload (class id, method id, arguments).
``DECODERS[class_id << 16 | method_id](buf, offset, end)`` decodes a payload's
arguments; it raises ValueError / IndexError / struct.error on malformed input, which
the frame layer turns into a 501 FRAME_ERROR.
"""

# fmt: off
from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from amqplite.protocol.fields import Buffer, _decode_table, encode_table


class Method:
    """Base of every generated method class."""

    __slots__ = ()
    CLASS_ID: ClassVar[int]
    METHOD_ID: ClassVar[int]
    NAME: ClassVar[str]
    SYNCHRONOUS: ClassVar[bool]
    HAS_CONTENT: ClassVar[bool]
    FIELDS: ClassVar[tuple[tuple[str, str], ...]]

    def encode(self) -> bytes:
        raise NotImplementedError


def _too_long(method: str, field: str) -> ValueError:
    return ValueError(f"{method}: {field} is longer than 255 bytes")

'''


def generate(spec_path: str | Path) -> str:
    specs = load_spec(spec_path)
    em = _Emitter()
    classes: list[str] = []
    decoders: list[str] = []
    for s in specs:
        fields_decl = ", ".join(f'("{f.name}", "{f.type}")' for f in s.fields)
        if len(s.fields) == 1:
            fields_decl += ","
        body = [
            "",
            "@attrs.frozen(slots=True)",
            f"class {s.py_name}(Method):",
            f'    """{s.full_name} ({s.class_id}/{s.method_id})."""',
            "",
            f"    CLASS_ID: ClassVar[int] = {s.class_id}",
            f"    METHOD_ID: ClassVar[int] = {s.method_id}",
            f'    NAME: ClassVar[str] = "{s.full_name}"',
            f"    SYNCHRONOUS: ClassVar[bool] = {s.synchronous}",
            f"    HAS_CONTENT: ClassVar[bool] = {s.content}",
            f"    FIELDS: ClassVar[tuple[tuple[str, str], ...]] = ({fields_decl})",
            "",
        ]
        for f in s.fields:
            default = DEFAULTS[f.type]
            body.append(f"    {f.name}: {PY_TYPES[f.type]} = {default}")
        if s.fields:
            body.append("")
        body += _encoder(s, em)
        classes.append("\n".join(body))
        decoders.append("\n".join(_decoder(s, em)))
    out = [HEADER]
    for fmt in sorted(em.structs):
        out.append(f'{em.structs[fmt]} = struct.Struct(">{fmt}")')
    out.append("\n")
    out.append("\n\n".join(classes))
    out.append("")
    for s in specs:
        if not s.fields:
            out.append(f"_{s.snake.upper()} = {s.py_name}()")
            header = bytes((s.class_id >> 8, s.class_id & 255, s.method_id >> 8, s.method_id & 255))
            out.append(f"_ENCODED_{s.snake.upper()} = {header!r}")
    out.append("\n")
    out.append("\n".join(decoders))
    out.append("METHODS: dict[tuple[int, int], type[Method]] = {")
    out += [f"    ({s.class_id}, {s.method_id}): {s.py_name}," for s in specs]
    out.append("}")
    out.append("")
    out.append("DECODERS: dict[int, Callable[[Buffer, int, int], Method]] = {")
    out += [f"    0x{(s.class_id << 16) | s.method_id:08X}: _decode_{s.snake}," for s in specs]
    out.append("}")
    out.append("")
    out.append("__all__ = [")
    names = ["DECODERS", "METHODS", *sorted(["Method", *(s.py_name for s in specs)])]
    out += [f'    "{name}",' for name in names]
    out.append("]")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.stderr.write(__doc__ or "")
        return 2
    target = Path(args[1]) if len(args) > 1 else Path(__file__).with_name("methods.py")
    target.write_text(generate(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
