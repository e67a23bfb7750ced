"""Convert between our YAML topology and RabbitMQ's definitions JSON, both ways.

Layer: topology (pure: dicts and text in, dicts and text out; no broker, no I/O).

* :func:`config_to_definitions` turns a loaded :class:`Config` into the JSON that
  ``GET /api/definitions`` returns (RabbitMQ's format, which amqplite's HTTP API speaks
  too), ready for ``POST /api/definitions``.
* :func:`definitions_to_document` turns definitions JSON (exported from RabbitMQ or from
  amqplite) into our YAML *document* (plain dicts in the shape the loader reads), and
  :func:`dump_yaml` writes it as text; :func:`definitions_to_config` goes on to load it
  with every loader check, so an import is validated exactly like a hand-written file.
* :func:`config_to_yaml` = definitions → document → YAML for a loaded config; it is the
  canonical form: the same topology always produces the same text, which makes
  ``YAML → broker → definitions → broker → YAML`` stable.

What does not carry over is dropped *with a warning*, never silently: policies, runtime
parameters (shovels, federation), topic permissions, exchange types amqplite lacks
(plugins such as ``x-delayed-message``) and their bindings, queue arguments amqplite does
not know, server-named ``amq.*`` queues, and dead-letter / alternate exchange names that
point at no declared exchange (RabbitMQ drops such messages, as no argument at all does).

Password hashes (agreed with ``amqplite/http/definitions.py``): RabbitMQ's salted hashes
travel as ``rabbitsha256$<base64>`` (also ``rabbitsha512``, ``rabbitmd5``) in our ``password_hash``
(the base64 is RabbitMQ's ``base64(salt4 + sha256(salt4 + password))``), ours as
``scrypt$...`` with ``hashing_algorithm: amqplite_scrypt``; each goes back out in its own
RabbitMQ ``hashing_algorithm``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from amqplite.topology.arguments import EXCHANGE_ARGUMENTS, QUEUE_ARGUMENTS
from amqplite.topology.loader import load_string
from amqplite.topology.model import EXCHANGE_TYPES, PREDECLARED_EXCHANGES, Config

RABBIT_VERSION = "3.13.0"
OUR_HASH = "amqplite_scrypt"
#: RabbitMQ hashing_algorithm -> the scheme prefix of our password_hash strings.
RABBIT_HASHES: Mapping[str, str] = {
    "rabbit_password_hashing_sha256": "rabbitsha256",
    "rabbit_password_hashing_sha512": "rabbitsha512",
    "rabbit_password_hashing_md5": "rabbitmd5",
}
_SCHEME_TO_ALGORITHM = {v: k for k, v in RABBIT_HASHES.items()}

_QUEUE_FRIENDLY = {d.x_name: d.friendly for d in QUEUE_ARGUMENTS}
_EXCHANGE_FRIENDLY = {d.x_name: d.friendly for d in EXCHANGE_ARGUMENTS}
_IGNORED_GLOBAL_PARAMETERS = frozenset({"internal_cluster_id", "cluster_name"})

Document = dict[str, Any]


class DefinitionsError(ValueError):
    """The definitions document is not shaped like RabbitMQ's (one line saying where)."""


# -- Config -> definitions ----------------------------------------------------------------


def config_to_definitions(config: Config) -> dict[str, Any]:
    """RabbitMQ definitions JSON for everything ``config`` declares."""
    users: list[dict[str, Any]] = []
    permissions: list[dict[str, Any]] = []
    for u in config.users:
        scheme, _, rest = u.password_hash.partition("$")
        if scheme in _SCHEME_TO_ALGORITHM:
            password_hash, algorithm = rest, _SCHEME_TO_ALGORITHM[scheme]
        else:
            password_hash, algorithm = u.password_hash, OUR_HASH
        users.append(
            {
                "name": u.name,
                "password_hash": password_hash,
                "hashing_algorithm": algorithm,
                "tags": list(u.tags),
                "limits": {},
            }
        )
        permissions.extend(
            {
                "user": u.name,
                "vhost": p.vhost,
                "configure": p.configure,
                "write": p.write,
                "read": p.read,
            }
            for p in u.permissions
        )
    return {
        "rabbit_version": RABBIT_VERSION,
        "product_name": "amqplite",
        "users": users,
        "vhosts": [{"name": v.name} for v in config.vhosts],
        "permissions": permissions,
        "topic_permissions": [],
        "parameters": [],
        "global_parameters": [],
        "policies": [],
        "queues": [
            {
                "name": q.name,
                "vhost": v.name,
                "durable": q.durable,
                "auto_delete": q.auto_delete,
                "arguments": dict(q.arguments),
            }
            for v in config.vhosts
            for q in v.queues
        ],
        "exchanges": [
            {
                "name": e.name,
                "vhost": v.name,
                "type": e.type,
                "durable": e.durable,
                "auto_delete": e.auto_delete,
                "internal": e.internal,
                "arguments": dict(e.arguments),
            }
            for v in config.vhosts
            for e in v.exchanges
        ],
        "bindings": [
            {
                "source": b.source,
                "vhost": v.name,
                "destination": b.destination,
                "destination_type": b.destination_type,
                "routing_key": b.routing_key,
                "arguments": dict(b.arguments),
            }
            for v in config.vhosts
            for b in v.bindings
        ],
    }


# -- definitions -> document --------------------------------------------------------------


def _items(defs: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = defs.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DefinitionsError(f"'{key}' must be a list of objects")
    return value


def _str(item: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = item.get(key, default)
    if not isinstance(value, str):
        raise DefinitionsError(f"{where}: '{key}' must be a string")
    return value


def _bool(item: Mapping[str, Any], key: str, default: bool) -> bool:
    value = item.get(key, default)
    if isinstance(value, str):  # some old exports write "true"/"false"
        return value == "true"
    return bool(value)


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):  # RabbitMQ < 3.9: "administrator,monitoring"
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list):
        return [str(t) for t in value]
    return []


def _vhost(item: Mapping[str, Any], where: str, default_vhost: str | None) -> str:
    if default_vhost is not None and "vhost" not in item:  # a per-vhost export
        return default_vhost
    return _str(item, "vhost", where)


def definitions_to_document(
    defs: Mapping[str, Any], *, default_vhost: str = "/", only_vhost: str | None = None
) -> tuple[Document, list[str]]:
    """Our YAML document (plain data) for ``defs``, and warnings about what was dropped.

    ``only_vhost`` reads a per-vhost export (``GET /api/definitions/{vhost}``, whose items
    have no ``vhost`` field).  Raises :class:`DefinitionsError` for a malformed document.
    """
    if not isinstance(defs, Mapping):
        raise DefinitionsError("definitions must be a JSON object")
    warnings: list[str] = []
    vhost_names: list[str] = []
    for i, item in enumerate(_items(defs, "vhosts")):
        vhost_names.append(_str(item, "name", f"vhosts[{i}]"))
    if only_vhost is not None and only_vhost not in vhost_names:
        vhost_names.append(only_vhost)
    sections: dict[str, dict[str, Any]] = {
        name: {"exchanges": {}, "queues": {}, "bindings": []} for name in vhost_names
    }

    def section(name: str) -> dict[str, Any]:
        if name not in sections:
            sections[name] = {"exchanges": {}, "queues": {}, "bindings": []}
        return sections[name]

    for what in ("policies", "parameters", "topic_permissions"):
        n = len(_items(defs, what))
        if n:
            warnings.append(f"{n} {what.replace('_', ' ')} not imported (amqplite has no {what})")
    extra = [
        p.get("name")
        for p in _items(defs, "global_parameters")
        if p.get("name") not in _IGNORED_GLOBAL_PARAMETERS
    ]
    if extra:
        warnings.append(f"global parameters not imported: {', '.join(map(str, extra))}")

    # Exchanges first: queue/exchange references and bindings are checked against them.
    declared: dict[str, dict[str, str]] = {}
    skipped_exchanges: set[tuple[str, str]] = set()
    for i, item in enumerate(_items(defs, "exchanges")):
        where = f"exchanges[{i}]"
        name = _str(item, "name", where)
        vh = _vhost(item, where, only_vhost)
        etype = _str(item, "type", where)
        if name in PREDECLARED_EXCHANGES or name.startswith("amq."):
            continue
        if etype not in EXCHANGE_TYPES:
            warnings.append(
                f"exchange '{name}' in vhost '{vh}': type '{etype}' is not supported "
                "(a plugin exchange type); skipped with its bindings"
            )
            skipped_exchanges.add((vh, name))
            continue
        declared.setdefault(vh, {})[name] = etype
    for i, item in enumerate(_items(defs, "exchanges")):
        where = f"exchanges[{i}]"
        name = _str(item, "name", where)
        vh = _vhost(item, where, only_vhost)
        if name not in declared.get(vh, {}):
            continue
        spec: dict[str, Any] = {"type": _str(item, "type", where)}
        if not _bool(item, "durable", True):
            spec["durable"] = False
        if _bool(item, "auto_delete", False):
            spec["auto_delete"] = True
        if _bool(item, "internal", False):
            spec["internal"] = True
        args = _arguments(
            item, where, f"exchange '{name}' in vhost '{vh}'", _EXCHANGE_FRIENDLY, warnings
        )
        alternate = args.pop("alternate_exchange", None)
        if alternate is not None:
            if _exchange_known(declared, vh, alternate):
                spec["alternate_exchange"] = alternate
            else:
                warnings.append(
                    f"exchange '{name}' in vhost '{vh}': alternate exchange '{alternate}' "
                    "does not exist; argument dropped (unroutable messages are dropped either way)"
                )
        if args:
            spec["arguments"] = args
        section(vh)["exchanges"][name] = spec

    queues: dict[str, set[str]] = {}
    for i, item in enumerate(_items(defs, "queues")):
        where = f"queues[{i}]"
        name = _str(item, "name", where)
        vh = _vhost(item, where, only_vhost)
        if name.startswith("amq."):
            warnings.append(f"queue '{name}' in vhost '{vh}': server-named queue skipped")
            continue
        if _bool(item, "exclusive", False):
            warnings.append(f"queue '{name}' in vhost '{vh}': exclusive queue skipped")
            continue
        qspec: dict[str, Any] = {}
        if not _bool(item, "durable", True):
            qspec["durable"] = False
        if _bool(item, "auto_delete", False):
            qspec["auto_delete"] = True
        args = _arguments(item, where, f"queue '{name}' in vhost '{vh}'", _QUEUE_FRIENDLY, warnings)
        qtype = args.pop("queue_type", None)
        if qtype is not None and qtype != "classic":
            qspec["queue_type"] = qtype
        dlx = args.get("dead_letter_exchange")
        if dlx is not None and not _exchange_known(declared, vh, dlx):
            warnings.append(
                f"queue '{name}' in vhost '{vh}': dead-letter exchange '{dlx}' does not exist; "
                "dead-letter arguments dropped (dead letters are dropped either way)"
            )
            args.pop("dead_letter_exchange")
            args.pop("dead_letter_routing_key", None)
        if args:
            qspec["arguments"] = args
        section(vh)["queues"][name] = qspec
        queues.setdefault(vh, set()).add(name)

    for i, item in enumerate(_items(defs, "bindings")):
        where = f"bindings[{i}]"
        vh = _vhost(item, where, only_vhost)
        source = _str(item, "source", where)
        dest = _str(item, "destination", where)
        dtype = _str(item, "destination_type", where)
        if dtype not in ("queue", "exchange"):
            raise DefinitionsError(f"{where}: destination_type must be 'queue' or 'exchange'")
        if source == "":
            continue  # the default exchange's implicit bindings
        if (vh, source) in skipped_exchanges or (
            dtype == "exchange" and (vh, dest) in skipped_exchanges
        ):
            continue
        dest_known = (
            dest in queues.get(vh, set())
            if dtype == "queue"
            else _exchange_known(declared, vh, dest)
        )
        if not _exchange_known(declared, vh, source) or not dest_known:
            warnings.append(
                f"binding {source} -> {dtype} {dest} in vhost '{vh}' refers to something not "
                "imported; skipped"
            )
            continue
        binding: dict[str, Any] = {"source": source, "destination": dest}
        if dtype == "exchange":
            binding["destination_type"] = "exchange"
        key = _str(item, "routing_key", where, "")
        if key:
            binding["routing_key"] = key
        arguments = item.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise DefinitionsError(f"{where}: 'arguments' must be an object")
        if arguments:
            binding["arguments"] = dict(sorted(arguments.items()))
        section(vh)["bindings"].append(binding)

    users, user_warnings = _users(defs)
    warnings.extend(user_warnings)
    doc: Document = {}
    default = sections.pop(default_vhost, None)
    if default is not None:
        doc.update(_clean(default))
    others = {name: _clean(body) for name, body in sorted(sections.items())}
    if others:
        doc["vhosts"] = others
    if users:
        doc["users"] = users
    return doc, warnings


def _exchange_known(declared: Mapping[str, Mapping[str, str]], vhost: str, name: str) -> bool:
    return name in PREDECLARED_EXCHANGES or name in declared.get(vhost, {})


def _arguments(
    item: Mapping[str, Any],
    where: str,
    what: str,
    friendly: Mapping[str, str],
    warnings: list[str],
) -> dict[str, Any]:
    raw = item.get("arguments") or {}
    if not isinstance(raw, dict):
        raise DefinitionsError(f"{where}: 'arguments' must be an object")
    out: dict[str, Any] = {}
    for key in sorted(raw):
        name = friendly.get(key)
        if name is None:
            warnings.append(f"{what}: argument '{key}' is not supported by amqplite; dropped")
            continue
        out[name] = raw[key]
    return out


def _users(defs: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    warnings: list[str] = []
    users: dict[str, Any] = {}
    for i, item in enumerate(_items(defs, "users")):
        where = f"users[{i}]"
        name = _str(item, "name", where)
        stored = item.get("password_hash") or ""
        algorithm = item.get("hashing_algorithm", OUR_HASH)
        if not isinstance(stored, str) or not stored:
            warnings.append(f"user '{name}' has no password (certificate login?); skipped")
            continue
        if algorithm in RABBIT_HASHES:
            password_hash = f"{RABBIT_HASHES[algorithm]}${stored}"
        elif algorithm == OUR_HASH:
            password_hash = stored
        else:
            warnings.append(f"user '{name}': hashing algorithm '{algorithm}' unknown; skipped")
            continue
        spec: dict[str, Any] = {"password_hash": password_hash}
        tags = _tags(item.get("tags"))
        if tags:
            spec["tags"] = tags
        users[name] = spec
    for i, item in enumerate(_items(defs, "permissions")):
        where = f"permissions[{i}]"
        user = _str(item, "user", where)
        if user not in users:
            continue
        perms = users[user].setdefault("permissions", {})
        perms[_str(item, "vhost", where)] = {
            k: _str(item, k, where) for k in ("configure", "write", "read")
        }
    for spec in users.values():
        if "permissions" in spec:
            spec["permissions"] = dict(sorted(spec["permissions"].items()))
    return dict(sorted(users.items())), warnings


def _clean(body: Mapping[str, Any]) -> dict[str, Any]:
    """Sorted, without empty sections (so equal topologies print the same text)."""
    out: dict[str, Any] = {}
    if body["exchanges"]:
        out["exchanges"] = dict(sorted(body["exchanges"].items()))
    if body["queues"]:
        out["queues"] = dict(sorted(body["queues"].items()))
    if body["bindings"]:
        out["bindings"] = sorted(
            body["bindings"],
            key=lambda b: (
                b["source"],
                b.get("destination_type", "queue"),
                b["destination"],
                b.get("routing_key", ""),
                json.dumps(b.get("arguments", {}), sort_keys=True, default=str),
            ),
        )
    return out


# -- document -> text -------------------------------------------------------------------


def dump_yaml(doc: Document, *, header: Iterable[str] = ()) -> str:
    """Our YAML text for a document: block style, one flow-style line per binding."""
    lines = [f"# {h}" if h else "#" for h in header]
    for key in ("exchanges", "queues", "bindings"):
        if key in doc:
            lines.extend(_section(key, doc[key], ""))
    if "vhosts" in doc:
        lines.append("vhosts:")
        for name, body in doc["vhosts"].items():
            lines.append(f"  {_scalar(name)}:" + ("" if body else " {}"))
            for key in ("exchanges", "queues", "bindings"):
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
    lines = [f"{indent}{key}:"]
    for name, spec in value.items():
        if not spec:
            lines.append(f"{indent}  {_scalar(name)}: {{}}")
        else:
            lines.append(f"{indent}  {_scalar(name)}:")
            lines.append(_block(spec, indent + "    "))
    return lines


# -- conveniences -------------------------------------------------------------------------


def definitions_to_yaml(
    defs: Mapping[str, Any], *, source: str = "definitions", only_vhost: str | None = None
) -> tuple[str, list[str]]:
    """YAML text for definitions JSON, and the warnings about what was dropped."""
    doc, warnings = definitions_to_document(defs, only_vhost=only_vhost)
    return dump_yaml(doc, header=[f"amqplite topology converted from {source}"]), warnings


def definitions_to_config(
    defs: Mapping[str, Any], *, source: str = "<definitions>", only_vhost: str | None = None
) -> tuple[Config, list[str]]:
    """A validated :class:`Config` for definitions JSON (TopologyError if it cannot load)."""
    text, warnings = definitions_to_yaml(defs, source=source, only_vhost=only_vhost)
    return load_string(text, file=source), warnings


def config_to_yaml(config: Config, *, header: Iterable[str] = ()) -> str:
    """The canonical YAML text of a loaded config's users and topology."""
    doc, _ = definitions_to_document(
        config_to_definitions(config), default_vhost=config.server.default_vhost
    )
    return dump_yaml(doc, header=header)
