"""Load a config/topology YAML file into a validated :class:`~amqplite.topology.model.Config`.

Layer: topology (reads the file; no broker).  The file is composed into a node tree so
every key and value keeps its line and column; every check reports into one
:class:`~amqplite.topology.nodes.NodeReader` and the loader raises a single
:class:`~amqplite.topology.problems.TopologyError` with all errors at the end.  Nothing
is applied anywhere until a file loads without errors.

Checks that go beyond RabbitMQ (documented choices):

* unknown queue/exchange arguments are errors (RabbitMQ ignores them; a typo there
  silently disables a limit);
* dead-letter and alternate exchanges must be declared in the same vhost of the file or be
  predeclared (RabbitMQ accepts dangling names; messages would then be dropped);
* binding keys longer than 255 bytes are errors (AMQP cannot carry them); in a topic
  binding, ``*`` or ``#`` inside a word (``order*``) is only a *warning*: RabbitMQ
  accepts it and it matches that literal word, but it is nearly always a mistaken glob;
* exclusive queues are refused: they belong to the connection that declares them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from amqplite.broker.definitions.model import PlainPassword, Reference
from amqplite.broker.limits import USER_LIMITS, VHOST_LIMITS
from amqplite.broker.passwords import verify_password
from amqplite.broker.permissions import expand_variables, pattern_error
from amqplite.broker.stream_args import NOT_FOR_STREAMS
from amqplite.settings import (
    CONFIG_KEYS,
    DEFAULT_DATA_DIR,
    TLS_EXTERNAL_IDENTITY,
    TLS_VERIFY,
    ServerSettings,
)
from amqplite.topology.arguments import (
    EXCHANGE_ARGUMENTS,
    QUEUE_ARGUMENTS,
    STREAM_ONLY,
    UINT32,
    ArgDef,
    by_any_name,
    read_argument,
    read_size,
)
from amqplite.topology.model import (
    EXCHANGE_TYPES,
    PREDECLARED_EXCHANGES,
    BindingSpec,
    Config,
    Definitions,
    ExchangeSpec,
    PermissionSpec,
    QueueSpec,
    TopicPermissionSpec,
    UserSpec,
    VHostSpec,
)
from amqplite.topology.nodes import NodeReader, did_you_mean, index, join
from amqplite.topology.passwords import hash_password, looks_like_hash
from amqplite.topology.problems import Problem, TopologyError

TOP_KEYS = ("server", "users", "exchanges", "queues", "bindings", "limits", "vhosts")
TOPOLOGY_KEYS = ("exchanges", "queues", "bindings", "limits")
SERVER_KEYS = CONFIG_KEYS
USER_KEYS = ("password", "password_hash", "tags", "permissions", "topic_permissions", "limits")
TOPIC_PERMISSION_KEYS = ("write", "read")
PERMISSION_KEYS = ("configure", "write", "read")
EXCHANGE_KEYS = ("type", "durable", "auto_delete", "internal", "alternate_exchange", "arguments")
QUEUE_KEYS = ("durable", "exclusive", "auto_delete", "queue_type", "arguments")
BINDING_KEYS = ("source", "destination", "destination_type", "routing_key", "arguments")
X_MATCH = ("all", "any", "all-with-x", "any-with-x")
SHORTSTR = 255

_QUEUE_ARGS = by_any_name(QUEUE_ARGUMENTS)
_EXCHANGE_ARGS = by_any_name(EXCHANGE_ARGUMENTS)
_Pairs = dict[str, tuple[ScalarNode, Node]]
_RefKind = Literal["exchange", "queue"]


def load_config(path: str | os.PathLike[str], *, broker_refs: bool = False) -> Config:
    """Read, parse and validate one file; raise :class:`TopologyError` listing every error.

    ``server.data_dir`` is resolved relative to the file's directory.  A name the file
    uses without declaring it (a binding to exchange ``shop``) is an error, unless
    ``broker_refs``: a file applied to a running broker may use what the broker has, so
    such names stay in ``Config.unresolved`` / ``definitions.requires`` for the plan.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TopologyError([Problem(str(path), 1, 1, "", f"cannot read file: {reason}")]) from exc
    return load_string(text, file=str(path), base_dir=p.resolve().parent, broker_refs=broker_refs)


def load_string(
    text: str, *, file: str = "<string>", base_dir: Path | None = None, broker_refs: bool = False
) -> Config:
    """Like :func:`load_config` for text already in memory (``file`` is used in messages)."""
    reader = NodeReader(file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = exc.problem or "invalid YAML"
        if exc.context:
            detail = f"{exc.context}, {detail}"
        raise TopologyError([Problem(file, line, col, "", f"YAML syntax error: {detail}")]) from exc
    except yaml.YAMLError as exc:
        raise TopologyError([Problem(file, 1, 1, "", f"YAML error: {exc}")]) from exc
    if root is None:
        raise TopologyError(
            [
                Problem(
                    file,
                    1,
                    1,
                    "",
                    "file is empty; expected a mapping with any of: " + ", ".join(TOP_KEYS),
                )
            ]
        )
    loader = _Loader(reader, base_dir or Path.cwd())
    config = loader.load(root)
    if reader.errors or config is None or (loader.unresolved and not broker_refs):
        raise TopologyError(reader.errors + loader.unresolved, undeclared=len(loader.unresolved))
    return config


class _Loader:
    def __init__(self, reader: NodeReader, base_dir: Path) -> None:
        self.r = reader
        self.base_dir = base_dir
        # Names used but not declared in the file: a running broker may have them.
        self.unresolved: list[Problem] = []
        self.requires: list[Reference] = []

    def _undeclared(
        self, node: Node, path: str, kind: _RefKind, vhost: str, name: str, message: str
    ) -> None:
        pos = self.r.position(node)
        self.unresolved.append(Problem(pos.file, pos.line, pos.column, path, message))
        self.requires.append(Reference(kind, vhost, name, pos, path))

    def load(self, root: Node) -> Config | None:
        top = self.r.mapping(root, "", TOP_KEYS, null_ok=False, what="a mapping at the top level")
        if top is None:
            return None
        server = (
            self._server(top["server"][1])
            if "server" in top
            else ServerSettings(data_dir=self.base_dir / DEFAULT_DATA_DIR)
        )
        vhosts = self._vhosts(top, server.default_vhost)
        users, permissions, topic = self._users(top["users"][1]) if "users" in top else ((), (), ())
        known_vhosts = {v.name for v in vhosts}
        granting: list[PermissionSpec | TopicPermissionSpec] = [*permissions, *topic]
        for perm in granting:
            if perm.vhost not in known_vhosts:
                self.r.problems.append(
                    Problem(
                        perm.position.file,
                        perm.position.line,
                        perm.position.column,
                        perm.path,
                        f"no vhost '{perm.vhost}' is declared in this file"
                        f"{did_you_mean(perm.vhost, known_vhosts)} (declare it under 'vhosts:')",
                    )
                )
        if users:
            granted = {p.vhost for p in permissions}
            for v in vhosts:
                if v.name not in granted:
                    pos = v.position
                    path = "" if v.name == server.default_vhost else join("vhosts", v.name)
                    self.r.problems.append(
                        Problem(
                            pos.file,
                            pos.line,
                            pos.column,
                            path,
                            f"no user has permissions on vhost '{v.name}'; no client can use it",
                            "warning",
                        )
                    )
        return Config(
            source=self.r.file,
            server=server,
            definitions=Definitions(
                vhosts, users, permissions, topic, requires=tuple(self.requires)
            ),
            warnings=tuple(self.r.warnings),
            unresolved=tuple(self.unresolved),
        )

    # -- server ------------------------------------------------------------------

    def _server(self, node: Node) -> ServerSettings:
        pairs = self.r.mapping(node, "server", SERVER_KEYS) or {}
        values: dict[str, Any] = {}
        for key, (_, vnode) in pairs.items():
            path = f"server.{key}"
            value: Any
            if key in ("host", "http_host"):
                value = self.r.string(vnode, path, allow_empty=False)
            elif key in ("port", "http_port"):
                value = self.r.integer(vnode, path, maximum=65535)
            elif key == "data_dir":
                value = self.r.string(vnode, path, allow_empty=False)
            elif key == "heartbeat":
                value = self.r.integer(
                    vnode, path, maximum=65535, what="seconds from 0 (off) to 65535"
                )
            elif key == "frame_max":
                value = self.r.integer(vnode, path, minimum=4096, maximum=UINT32)
            elif key == "channel_max":
                value = self.r.integer(vnode, path, maximum=65535)
            elif key == "max_message_size":
                value = self.r.integer(vnode, path, minimum=1, maximum=512 * 1024 * 1024)
            elif key == "disk_free_limit":
                value = read_size(self.r, vnode, path)
            elif key == "connection_max":
                value = self.r.integer(
                    vnode, path, maximum=2**31 - 1, what="a number of connections (0 refuses all)"
                )
            elif key.startswith(("tls_", "http_tls")):
                value = self._tls_value(key, vnode, path)
            elif key == "handshake_timeout":
                # RabbitMQ's key and unit (milliseconds); the settings hold seconds.
                millis = self.r.integer(
                    vnode, path, minimum=100, maximum=3_600_000, what="milliseconds"
                )
                value = None if millis is None else millis / 1000
            else:  # default_vhost
                value = self._vhost_name(vnode, path)
            if value is not None:
                values[key] = value
        data_dir = Path(values.pop("data_dir", DEFAULT_DATA_DIR))
        values["data_dir"] = data_dir if data_dir.is_absolute() else self.base_dir / data_dir
        settings = ServerSettings(**values)
        for key, message in settings.tls_errors():
            # At the key when the file sets it, else at the server: section itself.
            self.r.report(pairs[key][1] if key in pairs else node, f"server.{key}", message)
        return settings

    def _tls_value(self, key: str, node: Node, path: str) -> Any:
        """One ``server.tls_*`` / ``server.http_tls`` value; files are relative to the
        config file's folder, like ``data_dir``."""
        if key == "tls_port":
            return self.r.integer(node, path, maximum=65535)
        if key in ("tls_cert", "tls_key", "tls_ca"):
            name = self.r.string(node, path, allow_empty=False)
            return None if name is None else self.base_dir / Path(name).expanduser()
        if key == "tls_verify":
            return self.r.choice(node, path, TLS_VERIFY)
        if key == "tls_external_identity":
            return self.r.choice(node, path, TLS_EXTERNAL_IDENTITY)
        return self.r.boolean(node, path)  # tls_require_client_cert, http_tls

    # -- users -------------------------------------------------------------------

    def _users(
        self, node: Node
    ) -> tuple[tuple[UserSpec, ...], tuple[PermissionSpec, ...], tuple[TopicPermissionSpec, ...]]:
        users = []
        permissions: list[PermissionSpec] = []
        topic: list[TopicPermissionSpec] = []
        for name, (key_node, vnode) in (self.r.mapping(node, "users") or {}).items():
            path = join("users", name)
            if not name:
                self.r.report(key_node, path, "a user name must not be empty")
                continue
            pairs = self.r.mapping(vnode, path, USER_KEYS, null_ok=False)
            if pairs is None:
                continue
            password_hash = self._password(key_node, pairs, path)
            tags: tuple[str, ...] = ()
            if "tags" in pairs:
                tags = self._tags(pairs["tags"][1], f"{path}.tags")
            perms = (
                self._permissions(name, pairs["permissions"][1], f"{path}.permissions")
                if "permissions" in pairs
                else ()
            )
            topic_perms = (
                self._topic_permissions(
                    name, pairs["topic_permissions"][1], f"{path}.topic_permissions"
                )
                if "topic_permissions" in pairs
                else ()
            )
            limits = (
                self._limits(pairs["limits"][1], f"{path}.limits", USER_LIMITS)
                if "limits" in pairs
                else None
            )
            if password_hash is not None:
                plain = self.r.scalar_value(pairs["password"][1]) if "password" in pairs else None
                users.append(
                    UserSpec(
                        name=name,
                        password_hash=password_hash,
                        tags=tags,
                        password=PlainPassword(plain, verify_password) if plain else None,
                        limits=limits,
                        position=self.r.position(key_node),
                        path=path,
                    )
                )
                permissions.extend(perms)
                topic.extend(topic_perms)
        return tuple(users), tuple(permissions), tuple(topic)

    def _password(self, key_node: Node, pairs: _Pairs, path: str) -> str | None:
        if "password" in pairs and "password_hash" in pairs:
            self.r.report(
                pairs["password_hash"][0],
                f"{path}.password_hash",
                "give either 'password' or 'password_hash', not both",
            )
            return None
        if "password" in pairs:
            plain = self.r.string(pairs["password"][1], f"{path}.password", allow_empty=False)
            # Hash only a file that can load: hashing is deliberately slow.
            return None if plain is None else (hash_password(plain) if not self.r.errors else "")
        if "password_hash" in pairs:
            vnode = pairs["password_hash"][1]
            hashed = self.r.string(vnode, f"{path}.password_hash", allow_empty=False)
            if hashed is not None and not looks_like_hash(hashed):
                self.r.report(
                    vnode,
                    f"{path}.password_hash",
                    "expected a hash such as 'scrypt$...'; for a plain password use 'password:'",
                )
                return None
            return hashed
        self.r.report(
            key_node, path, "missing 'password' (plain, hashed at load) or 'password_hash'"
        )
        return None

    def _tags(self, node: Node, path: str) -> tuple[str, ...]:
        value = self.r.scalar_value(node)
        if isinstance(value, str):  # RabbitMQ's CLI style: "administrator,monitoring"
            return tuple(t.strip() for t in value.split(",") if t.strip())
        items = self.r.sequence(node, path) or []
        tags = [
            self.r.string(item, index(path, i), allow_empty=False) for i, item in enumerate(items)
        ]
        return tuple(t for t in tags if t is not None)

    def _permissions(self, user: str, node: Node, path: str) -> tuple[PermissionSpec, ...]:
        perms = []
        for vhost, (key_node, vnode) in (self.r.mapping(node, path) or {}).items():
            ppath = join(path, vhost)
            pairs = self.r.mapping(vnode, ppath, PERMISSION_KEYS, null_ok=False)
            if pairs is None:
                continue
            regexes: dict[str, str] = {}
            for what in PERMISSION_KEYS:
                if what not in pairs:
                    self.r.report(
                        key_node,
                        ppath,
                        f'missing \'{what}\' (a regular expression; "" grants nothing, ".*" everything)',
                    )
                    continue
                rnode = pairs[what][1]
                regex = self.r.string(rnode, f"{ppath}.{what}")
                if regex is None:
                    continue
                try:
                    re.compile(regex)
                except re.error as exc:
                    self.r.report(rnode, f"{ppath}.{what}", f"invalid regular expression: {exc}")
                    continue
                regexes[what] = regex
            if len(regexes) == 3:
                perms.append(
                    PermissionSpec(
                        user=user,
                        vhost=vhost,
                        position=self.r.position(key_node),
                        path=ppath,
                        **regexes,
                    )
                )
        return tuple(perms)

    def _topic_permissions(
        self, user: str, node: Node, path: str
    ) -> tuple[TopicPermissionSpec, ...]:
        """``{vhost: {exchange: {write: RE, read: RE}}}``; ``{username}`` / ``{vhost}`` allowed."""
        perms = []
        for vhost, (_, vnode) in (self.r.mapping(node, path) or {}).items():
            vpath = join(path, vhost)
            for exchange, (key_node, enode) in (self.r.mapping(vnode, vpath) or {}).items():
                epath = join(vpath, exchange)
                pairs = self.r.mapping(enode, epath, TOPIC_PERMISSION_KEYS, null_ok=False)
                if pairs is None:
                    continue
                regexes: dict[str, str] = {}
                for what in TOPIC_PERMISSION_KEYS:
                    if what not in pairs:
                        self.r.report(key_node, epath, f"missing '{what}' (a regular expression)")
                        continue
                    regex = self.r.string(pairs[what][1], f"{epath}.{what}")
                    error = (
                        None
                        if regex is None
                        else pattern_error(expand_variables(regex, user, vhost))
                    )
                    if error is not None:
                        self.r.report(pairs[what][1], f"{epath}.{what}", error)
                    elif regex is not None:
                        regexes[what] = regex
                if len(regexes) == 2:
                    perms.append(
                        TopicPermissionSpec(
                            user=user,
                            vhost=vhost,
                            exchange=exchange,
                            position=self.r.position(key_node),
                            path=epath,
                            **regexes,
                        )
                    )
        return tuple(perms)

    def _limits(self, node: Node, path: str, known: tuple[str, ...]) -> dict[str, int] | None:
        """``{max-connections: N, ...}``: 0 allows nothing, a negative number means no limit."""
        pairs = self.r.mapping(node, path, known)
        if pairs is None:
            return None
        limits: dict[str, int] = {}
        for name, (_, vnode) in pairs.items():
            value = self.r.integer(
                vnode,
                join(path, name),
                minimum=-(2**31),
                maximum=2**31 - 1,
                what="a whole number (0 allows nothing, -1 means no limit)",
            )
            if value is not None:
                limits[name] = value
        return limits

    # -- vhosts ------------------------------------------------------------------

    def _vhost_name(self, node: Node, path: str) -> str | None:
        return self.r.string(node, path, allow_empty=False, max_bytes=SHORTSTR)

    def _vhosts(self, top: _Pairs, default: str) -> tuple[VHostSpec, ...]:
        out = [self._topology(default, {k: top[k] for k in TOPOLOGY_KEYS if k in top}, "", None)]
        if "vhosts" not in top:
            return tuple(out)
        for name, (key_node, vnode) in (self.r.mapping(top["vhosts"][1], "vhosts") or {}).items():
            path = join("vhosts", name)
            if not name:
                self.r.report(key_node, path, "a vhost name must not be empty")
                continue
            if len(name.encode()) > SHORTSTR:
                self.r.report(key_node, path, f"vhost name is longer than {SHORTSTR} bytes")
                continue
            body = self.r.mapping(vnode, path, TOPOLOGY_KEYS)
            if body is None:
                continue
            if name == default:
                if any(k in top for k in TOPOLOGY_KEYS):
                    self.r.report(
                        key_node,
                        path,
                        f"'{name}' is the default vhost, whose exchanges, queues and bindings are "
                        "the top-level ones; declare them in one place",
                    )
                    continue
                out[0] = self._topology(name, body, path, key_node)
                continue
            out.append(self._topology(name, body, path, key_node))
        return tuple(out)

    def _topology(self, vhost: str, body: _Pairs, prefix: str, key_node: Node | None) -> VHostSpec:
        def sub(key: str) -> str:
            return join(prefix, key) if prefix else key

        refs: list[tuple[_RefKind, str, Node, str]] = []
        # Names count as declared even when their spec has errors, so one mistake does
        # not cascade into "no exchange 'x' is declared" at every reference to it.
        ex_types: dict[str, str | None] = dict(PREDECLARED_EXCHANGES)
        queue_names: set[str] = set()
        exchanges: list[ExchangeSpec] = []
        queues: list[QueueSpec] = []
        if "exchanges" in body:
            exchanges = self._exchanges(body["exchanges"][1], sub("exchanges"), refs, ex_types)
        if "queues" in body:
            queues = self._queues(body["queues"][1], sub("queues"), refs, queue_names)
        for kind, name, node, path in refs:
            known: Mapping[str, object] = (
                ex_types if kind == "exchange" else dict.fromkeys(queue_names)
            )
            if name not in known:
                choices = [n for n in known if n]
                self._undeclared(
                    node,
                    path,
                    kind,
                    vhost,
                    name,
                    f"no {kind} '{name}' is declared in vhost '{vhost}'{did_you_mean(name, choices)}",
                )
        bindings: list[BindingSpec] = []
        if "bindings" in body:
            bindings = self._bindings(
                vhost, body["bindings"][1], sub("bindings"), ex_types, queue_names
            )
        limits = (
            self._limits(body["limits"][1], sub("limits"), VHOST_LIMITS)
            if "limits" in body
            else None
        )
        return VHostSpec(
            name=vhost,
            exchanges=tuple(exchanges),
            queues=tuple(queues),
            bindings=tuple(bindings),
            limits=limits,
            position=self.r.position(key_node if key_node is not None else _first_node(body)),
            path=prefix,
        )

    def _entity_name(self, key_node: ScalarNode, name: str, path: str, kind: str) -> bool:
        if not name:
            what = "the default exchange" if kind == "exchange" else "a server-named queue"
            self.r.report(
                key_node, path, f"an empty {kind} name means {what}; it cannot be declared"
            )
            return False
        if len(name.encode()) > SHORTSTR:
            self.r.report(
                key_node,
                path,
                f"{kind} name is {len(name.encode())} bytes long; AMQP allows at most {SHORTSTR}",
            )
            return False
        if name.startswith("amq."):
            self.r.report(
                key_node, path, f"{kind} name '{name}' starts with the reserved prefix 'amq.'"
            )
            return False
        return True

    def _exchanges(
        self,
        node: Node,
        path: str,
        refs: list[tuple[_RefKind, str, Node, str]],
        names: dict[str, str | None],
    ) -> list[ExchangeSpec]:
        out = []
        for name, (key_node, vnode) in (self.r.mapping(node, path) or {}).items():
            epath = join(path, name)
            ok = self._entity_name(key_node, name, epath, "exchange")
            pairs = self.r.mapping(vnode, epath, EXCHANGE_KEYS, null_ok=True)
            names.setdefault(name, None)
            if pairs is None or not ok:
                continue
            etype = None
            if "type" not in pairs:
                self.r.report(key_node, epath, f"missing 'type' ({', '.join(EXCHANGE_TYPES)})")
            else:
                etype = self.r.choice(pairs["type"][1], f"{epath}.type", EXCHANGE_TYPES)
            names[name] = etype
            flags = self._flags(pairs, epath, ("durable", "auto_delete", "internal"))
            arguments, arg_nodes, args_ok = self._arguments(
                pairs, epath, _EXCHANGE_ARGS, {"alternate_exchange": "alternate-exchange"}
            )
            if "alternate-exchange" in arguments:
                n, p = arg_nodes["alternate-exchange"]
                refs.append(("exchange", arguments["alternate-exchange"], n, p))
            if etype is None or flags is None or not args_ok:
                continue
            out.append(
                ExchangeSpec(
                    name=name,
                    type=etype,
                    durable=flags.get("durable", True),
                    auto_delete=flags.get("auto_delete", False),
                    internal=flags.get("internal", False),
                    arguments=arguments,
                    position=self.r.position(key_node),
                    path=epath,
                )
            )
        return out

    def _queues(
        self, node: Node, path: str, refs: list[tuple[_RefKind, str, Node, str]], names: set[str]
    ) -> list[QueueSpec]:
        out = []
        for name, (key_node, vnode) in (self.r.mapping(node, path) or {}).items():
            qpath = join(path, name)
            names.add(name)
            ok = self._entity_name(key_node, name, qpath, "queue")
            pairs = self.r.mapping(vnode, qpath, QUEUE_KEYS, null_ok=True)
            if pairs is None or not ok:
                continue
            flags = self._flags(pairs, qpath, ("durable", "exclusive", "auto_delete"))
            if flags and flags.get("exclusive"):
                self.r.report(
                    pairs["exclusive"][1],
                    f"{qpath}.exclusive",
                    "exclusive queues belong to the connection that declares them and vanish "
                    "when it closes; a config file cannot declare one (let the client declare it)",
                )
                flags = None
            arguments, arg_nodes, args_ok = self._arguments(
                pairs, qpath, _QUEUE_ARGS, {"queue_type": "x-queue-type"}
            )
            if arguments.get("x-queue-type") == "classic":
                # classic is the default; keeping it would make a plain queue look "different".
                del arguments["x-queue-type"]
            if "x-dead-letter-exchange" in arguments:
                n, p = arg_nodes["x-dead-letter-exchange"]
                refs.append(("exchange", arguments["x-dead-letter-exchange"], n, p))
            elif "x-dead-letter-routing-key" in arguments:
                n, p = arg_nodes["x-dead-letter-routing-key"]
                self.r.report(
                    n,
                    p,
                    "a dead-letter routing key needs a dead_letter_exchange "
                    "(x-dead-letter-exchange) too",
                )
                args_ok = False
            if flags is not None and not self._queue_type_rules(qpath, pairs, flags, arg_nodes):
                flags = None
            if flags is None or not args_ok:
                continue
            out.append(
                QueueSpec(
                    name=name,
                    durable=flags.get("durable", True),
                    auto_delete=flags.get("auto_delete", False),
                    arguments=arguments,
                    position=self.r.position(key_node),
                    path=qpath,
                    argument_positions={k: self.r.position(n) for k, (n, _) in arg_nodes.items()},
                    argument_paths={k: p for k, (_, p) in arg_nodes.items()},
                )
            )
        return out

    def _queue_type_rules(
        self,
        qpath: str,
        pairs: _Pairs,
        flags: dict[str, bool],
        arg_nodes: Mapping[str, tuple[Node, str]],
    ) -> bool:
        """What a quorum queue or a stream refuses (RabbitMQ answers 406 to the same)."""
        kind = "classic"
        if "x-queue-type" in arg_nodes:
            kind = str(self.r.scalar_value(arg_nodes["x-queue-type"][0]))
        ok = True
        if kind in ("quorum", "stream"):
            for flag, wanted, rule in (
                ("durable", True, "always durable"),
                ("auto_delete", False, "never auto-delete"),
            ):
                if flags.get(flag, wanted) != wanted:
                    self.r.report(
                        pairs[flag][1],
                        f"{qpath}.{flag}",
                        f"{kind} queues are {rule} "
                        f"(RabbitMQ refuses '{flag}: {str(not wanted).lower()}')",
                    )
                    ok = False
        for x_name, (node, path) in arg_nodes.items():
            if kind == "stream" and x_name in NOT_FOR_STREAMS:
                self.r.report(
                    node,
                    path,
                    f"a stream keeps every message until retention (max_age, "
                    f"max_length_bytes) removes it, so it does not take {x_name} "
                    "(RabbitMQ refuses it for queue type stream)",
                )
                ok = False
            elif kind != "stream" and x_name in STREAM_ONLY:
                self.r.report(
                    node, path, f"only stream queues take {x_name} (add 'queue_type: stream')"
                )
                ok = False
        return ok

    def _flags(self, pairs: _Pairs, path: str, names: tuple[str, ...]) -> dict[str, bool] | None:
        out: dict[str, bool] = {}
        ok = True
        for flag in names:
            if flag in pairs:
                value = self.r.boolean(pairs[flag][1], f"{path}.{flag}")
                if value is None:
                    ok = False
                else:
                    out[flag] = value
        return out if ok else None

    def _arguments(
        self, pairs: _Pairs, path: str, defs: Mapping[str, ArgDef], shortcuts: Mapping[str, str]
    ) -> tuple[dict[str, Any], dict[str, tuple[Node, str]], bool]:
        """Normalise ``arguments:`` (and entity-level shortcuts) to an x-argument table.

        Returns the valid arguments, per x-name the value node and key path it came
        from, and whether every argument was valid.
        """
        # (key as written, key node, value node, key path)
        written: list[tuple[str, ScalarNode, Node, str]] = []
        for short in shortcuts:
            if short in pairs:
                written.append((short, pairs[short][0], pairs[short][1], f"{path}.{short}"))
        if "arguments" in pairs:
            apath = f"{path}.arguments"
            for key, (knode, vnode) in (self.r.mapping(pairs["arguments"][1], apath) or {}).items():
                written.append((key, knode, vnode, join(apath, key)))
        table: dict[str, Any] = {}
        origin: dict[str, tuple[Node, str]] = {}
        first_key: dict[str, str] = {}
        ok = True
        for key, knode, vnode, kpath in written:
            d = defs.get(key)
            if d is None:
                choices = sorted({n for a in defs.values() for n in (a.x_name, a.friendly)})
                hint = did_you_mean(key, choices) or f" (known: {', '.join(choices)})"
                self.r.report(knode, kpath, f"unknown argument '{key}'{hint}")
                ok = False
                continue
            if d.x_name in first_key:
                self.r.report(
                    knode,
                    kpath,
                    f"'{key}' and '{first_key[d.x_name]}' set the same argument ({d.x_name}); "
                    "keep one",
                )
                ok = False
                continue
            first_key[d.x_name] = key
            value = read_argument(self.r, vnode, kpath, d, friendly=key != d.x_name)
            if value is None:
                ok = False
                continue
            table[d.x_name] = value
            origin[d.x_name] = (vnode, kpath)
        return table, origin, ok

    # -- bindings ----------------------------------------------------------------

    def _bindings(
        self,
        vhost: str,
        node: Node,
        path: str,
        ex_types: Mapping[str, str | None],
        queues: set[str],
    ) -> list[BindingSpec]:
        out: list[BindingSpec] = []
        seen: dict[tuple[str, str, str, str, str], int] = {}
        for i, item in enumerate(self.r.sequence(node, path) or []):
            bpath = index(path, i)
            pairs = self.r.mapping(item, bpath, BINDING_KEYS, null_ok=False)
            if pairs is None:
                continue
            spec = self._binding(vhost, item, pairs, bpath, ex_types, queues)
            if spec is None:
                continue
            key = (
                spec.source,
                spec.destination,
                spec.destination_type,
                spec.routing_key,
                repr(sorted(spec.arguments.items())),
            )
            if key in seen:
                self.r.report(
                    item, bpath, f"duplicate binding: same as the binding at line {seen[key]}"
                )
                continue
            seen[key] = spec.position.line
            out.append(spec)
        return out

    def _binding(
        self,
        vhost: str,
        item: Node,
        pairs: _Pairs,
        bpath: str,
        ex_types: Mapping[str, str | None],
        queues: set[str],
    ) -> BindingSpec | None:
        ok = True
        for required in ("source", "destination"):
            if required not in pairs:
                self.r.report(item, bpath, f"missing '{required}'")
                ok = False
        if not ok:
            return None
        snode, dnode = pairs["source"][1], pairs["destination"][1]
        source = self.r.string(snode, f"{bpath}.source", max_bytes=SHORTSTR)
        destination = self.r.string(dnode, f"{bpath}.destination", max_bytes=SHORTSTR)
        dtype = "queue"
        if "destination_type" in pairs:
            dtype = (
                self.r.choice(
                    pairs["destination_type"][1], f"{bpath}.destination_type", ("queue", "exchange")
                )
                or ""
            )
        routing_key = ""
        rnode: Node | None = None
        if "routing_key" in pairs:
            rnode = pairs["routing_key"][1]
            routing_key = self.r.string(rnode, f"{bpath}.routing_key", max_bytes=SHORTSTR) or ""
            ok = ok and routing_key is not None
        arguments: dict[str, Any] = {}
        if "arguments" in pairs:
            plain = self.r.plain(pairs["arguments"][1], f"{bpath}.arguments")
            if plain is None or not isinstance(plain, dict):
                if plain is not None:
                    self.r.report(pairs["arguments"][1], f"{bpath}.arguments", "expected a mapping")
                return None
            arguments = plain
        if source is None or destination is None or not dtype:
            return None
        if source == "":
            self.r.report(
                snode,
                f"{bpath}.source",
                'the default exchange ("") cannot be bound to; every queue is already bound to it by name',
            )
            return None
        errors_before = len(self.r.errors)
        self._binding_ends(
            vhost, bpath, (snode, source), (dnode, destination, dtype), ex_types, queues
        )
        stype = ex_types.get(source)
        if stype == "headers" and "x-match" in arguments and arguments["x-match"] not in X_MATCH:
            anode = _find_value(pairs["arguments"][1], "x-match") or item
            got = arguments["x-match"]
            self.r.report(
                anode,
                f"{bpath}.arguments.x-match",
                f"expected one of {', '.join(X_MATCH)}, got {json.dumps(got, default=str)}",
            )
        if stype == "topic" and rnode is not None:
            self._check_topic_pattern(rnode, f"{bpath}.routing_key", routing_key)
        if len(self.r.errors) != errors_before:
            return None
        return BindingSpec(
            source=source,
            destination=destination,
            destination_type="exchange" if dtype == "exchange" else "queue",
            routing_key=routing_key,
            arguments=arguments,
            position=self.r.position(item),
            path=bpath,
        )

    def _binding_ends(
        self,
        vhost: str,
        bpath: str,
        src: tuple[Node, str],
        dst: tuple[Node, str, str],
        ex_types: Mapping[str, str | None],
        queues: set[str],
    ) -> None:
        """Check that a binding's ends are declared (or leave them for the broker to have)."""
        (snode, source), (dnode, destination, dtype) = src, dst
        exchanges = [n for n in ex_types if n]
        if source not in ex_types:
            self._undeclared(
                snode, f"{bpath}.source", "exchange", vhost, source,
                f"no exchange '{source}' is declared{did_you_mean(source, exchanges)}",
            )  # fmt: skip
        if dtype == "queue" and destination not in queues:
            self._undeclared(
                dnode, f"{bpath}.destination", "queue", vhost, destination,
                f"no queue '{destination}' is declared{did_you_mean(destination, queues)}",
            )  # fmt: skip
        if dtype != "exchange":
            return
        if destination == "":
            self.r.report(
                dnode,
                f"{bpath}.destination",
                'the default exchange ("") cannot be a binding destination',
            )
        elif destination not in ex_types:
            self._undeclared(
                dnode, f"{bpath}.destination", "exchange", vhost, destination,
                f"no exchange '{destination}' is declared{did_you_mean(destination, exchanges)}",
            )  # fmt: skip

    def _check_topic_pattern(self, node: Node, path: str, pattern: str) -> None:
        for word in pattern.split("."):
            if word not in ("*", "#") and ("*" in word or "#" in word):
                self.r.warn(
                    node,
                    path,
                    f"'{word}' is not a wildcard: '*' and '#' are wildcards only as a whole word "
                    f"between dots, so this matches only the literal word '{word}'",
                )
                return


def _find_value(node: Node, key: str) -> Node | None:
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return v  # type: ignore[no-any-return]
    return None


def _first_node(body: _Pairs) -> Node:
    for key_node, _ in body.values():
        return key_node
    return ScalarNode("tag:yaml.org,2002:null", "", yaml.Mark("", 0, 0, 0, "", 0), None)
