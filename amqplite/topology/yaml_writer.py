"""Definitions as our YAML: the canonical text of a topology, and what YAML cannot hold.

Layer: topology (pure: definitions in, text out; no broker, no I/O).  The definitions
model and the RabbitMQ-JSON codec are the core's (:mod:`amqplite.broker.definitions`);
this module is the YAML side of them:

* :func:`portable` drops, *with a warning*, what a YAML file cannot declare: exchange
  types amqplite lacks (plugins such as ``x-delayed-message``) and their bindings, queue
  and exchange arguments amqplite does not know, dead-letter / alternate exchange names
  that point at no exchange (RabbitMQ drops such messages, as no argument at all does),
  and bindings to what was dropped;
* :func:`document` turns definitions into our YAML *document* (plain dicts in the shape
  the loader reads, friendly argument names) and :func:`dump_yaml` writes it as text.
  The text is canonical: the same topology always produces the same text, which makes
  ``YAML -> broker -> definitions -> broker -> YAML`` stable;
* :func:`definitions_to_config` reads RabbitMQ definitions JSON (an import) all the way
  to a validated :class:`Config`: through the YAML text, so an imported file is checked
  exactly like a hand-written one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import yaml

from amqplite.broker.definitions import rabbit_json
from amqplite.broker.definitions.model import (
    EXCHANGE_TYPES,
    PREDECLARED_EXCHANGES,
    BindingSpec,
    Definitions,
    ExchangeSpec,
    QueueSpec,
    VHostSpec,
)
from amqplite.topology.arguments import EXCHANGE_ARGUMENTS, QUEUE_ARGUMENTS
from amqplite.topology.loader import load_string
from amqplite.topology.model import Config

_QUEUE_FRIENDLY = {d.x_name: d.friendly for d in QUEUE_ARGUMENTS}
_EXCHANGE_FRIENDLY = {d.x_name: d.friendly for d in EXCHANGE_ARGUMENTS}
#: The queue types a file may declare (the loader's own list).
_QUEUE_TYPES = next(d.choices for d in QUEUE_ARGUMENTS if d.x_name == "x-queue-type")

Document = dict[str, Any]


# -- what YAML can hold --------------------------------------------------------------------


def portable(defs: Definitions) -> tuple[Definitions, list[str]]:
    """``defs`` without what a YAML file cannot declare, and a warning for each thing dropped."""
    warnings: list[str] = []
    vhosts = tuple(_portable_vhost(v, warnings) for v in defs.vhosts)
    return attrs.evolve(defs, vhosts=vhosts), warnings


def _portable_vhost(v: VHostSpec, warnings: list[str]) -> VHostSpec:
    skipped: set[str] = set()
    exchanges: list[ExchangeSpec] = []
    for e in v.exchanges:
        if e.type not in EXCHANGE_TYPES:
            warnings.append(
                f"exchange '{e.name}' in vhost '{v.name}': type '{e.type}' is not supported "
                "(a plugin exchange type); skipped with its bindings"
            )
            skipped.add(e.name)
        else:
            exchanges.append(e)
    declared = {e.name for e in exchanges}

    def known(name: str) -> bool:
        return name in PREDECLARED_EXCHANGES or name in declared

    exchanges = [_portable_exchange(v.name, e, known, warnings) for e in exchanges]
    queues = []
    for q in v.queues:
        if q.queue_type not in _QUEUE_TYPES:
            warnings.append(
                f"queue '{q.name}' in vhost '{v.name}': type '{q.queue_type}' is not supported; "
                "skipped with its bindings"
            )
            continue
        queues.append(_portable_queue(v.name, q, known, warnings))
    queue_names = {q.name for q in queues}
    bindings: list[BindingSpec] = []
    for b in v.bindings:
        if b.source in skipped or (b.destination_type == "exchange" and b.destination in skipped):
            continue
        if (
            b.destination_type == "queue"
            and any(q.name == b.destination for q in v.queues)
            and (b.destination not in {q.name for q in queues})
        ):
            continue  # a queue skipped above
        dest_known = (
            b.destination in queue_names if b.destination_type == "queue" else known(b.destination)
        )
        if not known(b.source) or not dest_known:
            warnings.append(
                f"binding {b.source} -> {b.destination_type} {b.destination} in vhost "
                f"'{v.name}' refers to something not imported; skipped"
            )
            continue
        bindings.append(b)
    return attrs.evolve(
        v, exchanges=tuple(exchanges), queues=tuple(queues), bindings=tuple(bindings)
    )


def _known_arguments(
    args: Mapping[str, Any], friendly: Mapping[str, str], what: str, warnings: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(args):
        if key not in friendly:
            warnings.append(f"{what}: argument '{key}' is not supported by amqplite; dropped")
        else:
            out[key] = args[key]
    return out


def _portable_exchange(
    vhost: str, e: ExchangeSpec, known: Any, warnings: list[str]
) -> ExchangeSpec:
    what = f"exchange '{e.name}' in vhost '{vhost}'"
    args = _known_arguments(e.arguments, _EXCHANGE_FRIENDLY, what, warnings)
    alternate = args.get("alternate-exchange")
    if alternate is not None and not known(alternate):
        warnings.append(
            f"{what}: alternate exchange '{alternate}' does not exist; argument dropped "
            "(unroutable messages are dropped either way)"
        )
        del args["alternate-exchange"]
    return attrs.evolve(e, arguments=args)


def _portable_queue(vhost: str, q: QueueSpec, known: Any, warnings: list[str]) -> QueueSpec:
    what = f"queue '{q.name}' in vhost '{vhost}'"
    args = _known_arguments(q.arguments, _QUEUE_FRIENDLY, what, warnings)
    if args.get("x-queue-type") == "classic":
        del args["x-queue-type"]  # the default
    dlx = args.get("x-dead-letter-exchange")
    if dlx is not None and not known(dlx):
        warnings.append(
            f"{what}: dead-letter exchange '{dlx}' does not exist; dead-letter arguments "
            "dropped (dead letters are dropped either way)"
        )
        del args["x-dead-letter-exchange"]
        args.pop("x-dead-letter-routing-key", None)
    return attrs.evolve(q, arguments=args)


# -- definitions -> document ---------------------------------------------------------------


def document(defs: Definitions, *, default_vhost: str = "/") -> Document:
    """Our YAML document (plain data, friendly names, sorted) for portable definitions."""
    sections = {v.name: _vhost_body(v) for v in defs.vhosts}
    doc: Document = {}
    default = sections.pop(default_vhost, None)
    if default is not None:
        doc.update(default)
    if sections:
        doc["vhosts"] = dict(sorted(sections.items()))
    users: dict[str, Any] = {}
    for u in sorted(defs.users, key=lambda u: u.name):
        spec: dict[str, Any] = {"password_hash": u.password_hash}
        if u.tags:
            spec["tags"] = list(u.tags)
        perms = {
            p.vhost: {"configure": p.configure, "write": p.write, "read": p.read}
            for p in defs.permissions_of(u.name)
        }
        if perms:
            spec["permissions"] = dict(sorted(perms.items()))
        topic: dict[str, dict[str, Any]] = {}
        for t in sorted(defs.topic_permissions, key=lambda t: (t.vhost, t.exchange)):
            if t.user == u.name:
                topic.setdefault(t.vhost, {})[t.exchange] = {"write": t.write, "read": t.read}
        if topic:
            spec["topic_permissions"] = topic
        if u.limits:
            spec["limits"] = dict(sorted(u.limits.items()))
        users[u.name] = spec
    if users:
        doc["users"] = users
    return doc


def _friendly(args: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    return {names[k]: v for k, v in sorted(args.items())}


def _vhost_body(v: VHostSpec) -> dict[str, Any]:
    exchanges: dict[str, Any] = {}
    for e in v.exchanges:
        espec: dict[str, Any] = {"type": e.type}
        if not e.durable:
            espec["durable"] = False
        if e.auto_delete:
            espec["auto_delete"] = True
        if e.internal:
            espec["internal"] = True
        args = _friendly(e.arguments, _EXCHANGE_FRIENDLY)
        alternate = args.pop("alternate_exchange", None)
        if alternate is not None:
            espec["alternate_exchange"] = alternate
        if args:
            espec["arguments"] = args
        exchanges[e.name] = espec
    queues: dict[str, Any] = {}
    for q in v.queues:
        qspec: dict[str, Any] = {}
        if not q.durable:
            qspec["durable"] = False
        if q.auto_delete:
            qspec["auto_delete"] = True
        args = _friendly(q.arguments, _QUEUE_FRIENDLY)
        qtype = args.pop("queue_type", None)
        if qtype is not None and qtype != "classic":
            qspec["queue_type"] = qtype
        if args:
            qspec["arguments"] = args
        queues[q.name] = qspec
    bindings = sorted((_binding(b) for b in v.bindings), key=_binding_order)
    out: dict[str, Any] = {}
    if exchanges:
        out["exchanges"] = dict(sorted(exchanges.items()))
    if queues:
        out["queues"] = dict(sorted(queues.items()))
    if bindings:
        out["bindings"] = bindings
    if v.limits:
        out["limits"] = dict(sorted(v.limits.items()))
    return out


def _binding(b: BindingSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"source": b.source, "destination": b.destination}
    if b.destination_type == "exchange":
        out["destination_type"] = "exchange"
    if b.routing_key:
        out["routing_key"] = b.routing_key
    if b.arguments:
        out["arguments"] = dict(sorted(b.arguments.items()))
    return out


def _binding_order(b: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        b["source"],
        b.get("destination_type", "queue"),
        b["destination"],
        b.get("routing_key", ""),
        json.dumps(b.get("arguments", {}), sort_keys=True, default=str),
    )


# -- document -> text -------------------------------------------------------------------


def dump_yaml(doc: Document, *, header: Iterable[str] = ()) -> str:
    """Our YAML text for a document: block style, one flow-style line per binding."""
    lines = [f"# {h}" if h else "#" for h in header]
    for key in ("exchanges", "queues", "bindings", "limits"):
        if key in doc:
            lines.extend(_section(key, doc[key], ""))
    if "vhosts" in doc:
        lines.append("vhosts:")
        for name, body in doc["vhosts"].items():
            lines.append(f"  {_scalar(name)}:" + ("" if body else " {}"))
            for key in ("exchanges", "queues", "bindings", "limits"):
                if key in body:
                    lines.extend(_section(key, body[key], "    "))
    if "users" in doc:
        lines.append(_block({"users": doc["users"]}, ""))
    return "\n".join(line for line in lines if line) + "\n"


def _scalar(value: Any) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip().removesuffix("\n...")
    )


def _flow(value: Any) -> str:
    return yaml.safe_dump(
        value, default_flow_style=True, sort_keys=False, width=1 << 30, allow_unicode=True
    ).strip()


def _block(value: Any, indent: str) -> str:
    text = yaml.safe_dump(value, default_flow_style=False, sort_keys=False, allow_unicode=True)
    return "\n".join(indent + line for line in text.rstrip("\n").split("\n"))


def _section(key: str, value: Any, indent: str) -> list[str]:
    if key == "bindings":
        return [f"{indent}bindings:", *(f"{indent}  - {_flow(b)}" for b in value)]
    if key == "limits":
        return [_block({"limits": value}, indent)]
    lines = [f"{indent}{key}:"]
    for name, spec in value.items():
        if not spec:
            lines.append(f"{indent}  {_scalar(name)}: {{}}")
        else:
            lines.append(f"{indent}  {_scalar(name)}:")
            lines.append(_block(spec, indent + "    "))
    return lines


# -- conveniences --------------------------------------------------------------------------


def definitions_to_yaml(
    defs: Mapping[str, Any], *, source: str = "definitions", only_vhost: str | None = None
) -> tuple[str, list[str]]:
    """YAML text for definitions JSON, and the warnings about what was dropped."""
    decoded, warnings = rabbit_json.decode(defs, vhost=only_vhost)
    return definitions_yaml(
        decoded, warnings, header=[f"amqplite topology converted from {source}"]
    )


def definitions_yaml(
    defs: Definitions, warnings: list[str] | None = None, *, header: Iterable[str] = ()
) -> tuple[str, list[str]]:
    """YAML text for definitions (what YAML cannot hold dropped), and all the warnings."""
    kept, dropped = portable(defs)
    return dump_yaml(document(kept), header=header), [*(warnings or []), *dropped]


def definitions_to_config(
    defs: Mapping[str, Any], *, source: str = "<definitions>", only_vhost: str | None = None
) -> tuple[Config, list[str]]:
    """A validated :class:`Config` for definitions JSON (TopologyError if it cannot load)."""
    text, warnings = definitions_to_yaml(defs, source=source, only_vhost=only_vhost)
    return load_string(text, file=source), warnings


def config_to_yaml(config: Config, *, header: Iterable[str] = ()) -> str:
    """The canonical YAML text of a loaded config's users and topology."""
    kept, _ = portable(config.definitions)
    return dump_yaml(document(kept, default_vhost=config.server.default_vhost), header=header)
