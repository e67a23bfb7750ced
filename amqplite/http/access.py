"""Users, vhosts, permissions, topic permissions and limits over RabbitMQ's management
endpoints (``/api/users``, ``/api/vhosts``, ``/api/permissions``,
``/api/topic-permissions``, ``/api/vhost-limits``, ``/api/user-limits``).

Layer: ``amqplite/http``.  Handlers parse and render only: every change is one call into
the broker core (:class:`~amqplite.broker.auth.UserDB`, ``Broker.add_vhost``,
``Broker.delete_user``...), which validates, persists and enforces.  All of them need the
``administrator`` tag, as in RabbitMQ.  Status codes and JSON shapes follow RabbitMQ 3.10:
201 when a PUT creates, 204 when it updates or deletes, 400 with a ``reason`` for bad
input (``vhost_or_user_not_found``, an invalid regex, a missing key), 404 for what does
not exist.  Passwords never leave the broker: users are listed with their hash only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import trio

from amqplite.broker.definitions import rabbit_json
from amqplite.broker.limits import USER_LIMITS, VHOST_LIMITS, parse_limits
from amqplite.broker.passwords import hash_password
from amqplite.http import auth, name_filter
from amqplite.http.jsonout import created, json_response, no_content
from amqplite.http.request import Response, bad_request, not_found

if TYPE_CHECKING:
    from amqplite.broker import Broker, User
    from amqplite.http.api import Call

AddRoute = Callable[..., None]


def _admin(call: Call) -> User:
    user = call.user
    assert user is not None
    auth.require_admin(user)
    return user


def _strings(body: dict[str, Any], *keys: str) -> tuple[str, ...]:
    missing = [k for k in keys if k not in body]
    if missing:
        raise bad_request(", ".join(f"missing key '{k}'" for k in missing))
    values = tuple(body[k] for k in keys)
    for key, value in zip(keys, values, strict=True):
        if not isinstance(value, str):
            raise bad_request(f"'{key}' must be a string")
    return values


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # RabbitMQ takes "administrator,management"
        return tuple(t for t in (s.strip() for s in value.split(",")) if t)
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(value)
    raise bad_request("'tags' must be a string or a list of strings")


def user_json(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        **rabbit_json.exported_hash(user.password_hash),
        "tags": list(user.tags),
        "limits": dict(user.limits),
    }


def _permission_json(user: User, vhost: str) -> dict[str, Any]:
    p = user.permissions[vhost]
    return {
        "user": user.name,
        "vhost": vhost,
        "configure": p.configure,
        "write": p.write,
        "read": p.read,
    }


def _topic_json(user: User, vhost: str) -> list[dict[str, Any]]:
    return [
        {"user": user.name, "vhost": vhost, "exchange": x, "write": p.write, "read": p.read}
        for x, p in sorted(user.topic_permissions.get(vhost, {}).items())
    ]


class AccessHandlers:
    """The handlers, bound to one broker; :meth:`add_routes` registers them."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def add_routes(self, r: AddRoute) -> None:
        r("PUT", "/api/vhosts/{vhost}", self.put_vhost)
        r("DELETE", "/api/vhosts/{vhost}", self.delete_vhost)
        r("GET", "/api/vhosts/{vhost}/permissions", self.vhost_permissions)
        r("GET", "/api/vhosts/{vhost}/topic-permissions", self.vhost_topic_permissions)
        r("GET", "/api/users", self.list_users)
        r("GET", "/api/users/{user}", self.get_user)
        r("PUT", "/api/users/{user}", self.put_user)
        r("DELETE", "/api/users/{user}", self.delete_user)
        r("GET", "/api/users/{user}/permissions", self.user_permissions)
        r("GET", "/api/users/{user}/topic-permissions", self.user_topic_permissions)
        r("GET", "/api/permissions", self.list_permissions)
        r("GET", "/api/permissions/{vhost}/{user}", self.get_permission)
        r("PUT", "/api/permissions/{vhost}/{user}", self.put_permission)
        r("DELETE", "/api/permissions/{vhost}/{user}", self.delete_permission)
        r("GET", "/api/topic-permissions", self.list_topic_permissions)
        r("GET", "/api/topic-permissions/{vhost}/{user}", self.get_topic_permissions)
        r("PUT", "/api/topic-permissions/{vhost}/{user}", self.put_topic_permission)
        r("DELETE", "/api/topic-permissions/{vhost}/{user}", self.delete_topic_permissions)
        r("GET", "/api/vhost-limits", self.list_vhost_limits)
        r("GET", "/api/vhost-limits/{vhost}", self.list_vhost_limits)
        r("PUT", "/api/vhost-limits/{vhost}/{limit}", self.put_vhost_limit)
        r("DELETE", "/api/vhost-limits/{vhost}/{limit}", self.delete_vhost_limit)
        r("GET", "/api/user-limits", self.list_user_limits)
        r("GET", "/api/user-limits/{user}", self.list_user_limits)
        r("PUT", "/api/user-limits/{user}/{limit}", self.put_user_limit)
        r("DELETE", "/api/user-limits/{user}/{limit}", self.delete_user_limit)

    # -- lookups -------------------------------------------------------------------------

    def _users(self) -> list[User]:
        return sorted(self.broker.users.users.values(), key=lambda u: u.name)

    def _user(self, call: Call) -> User:
        user = self.broker.users.get(call.param("user"))
        if user is None:
            raise not_found()
        return user

    def _user_and_vhost(self, call: Call) -> tuple[User, str]:
        """For a PUT: both must exist (RabbitMQ's 400 ``vhost_or_user_not_found``)."""
        user = self.broker.users.get(call.param("user"))
        vhost = call.vhost_name
        if user is None or vhost not in self.broker.vhosts:
            raise bad_request("vhost_or_user_not_found")
        return user, vhost

    # -- vhosts --------------------------------------------------------------------------

    async def put_vhost(self, call: Call) -> Response:
        _admin(call)
        call.request.json_object()
        if call.vhost_name in self.broker.vhosts:
            return no_content()
        self.broker.add_vhost(call.vhost_name)
        return created()

    async def delete_vhost(self, call: Call) -> Response:
        _admin(call)
        if call.vhost_name not in self.broker.vhosts:
            raise not_found()
        self.broker.delete_vhost(call.vhost_name)
        return no_content()

    async def vhost_permissions(self, call: Call) -> Response:
        _admin(call)
        vhost = call.vhost_name
        if vhost not in self.broker.vhosts:
            raise not_found()
        return json_response(
            [_permission_json(u, vhost) for u in self._users() if vhost in u.permissions]
        )

    async def vhost_topic_permissions(self, call: Call) -> Response:
        _admin(call)
        vhost = call.vhost_name
        if vhost not in self.broker.vhosts:
            raise not_found()
        return json_response([p for u in self._users() for p in _topic_json(u, vhost)])

    # -- users ---------------------------------------------------------------------------

    async def list_users(self, call: Call) -> Response:
        _admin(call)
        users = name_filter.by_name(call.request, self._users(), lambda u: u.name)
        return json_response([user_json(u) for u in users])

    async def get_user(self, call: Call) -> Response:
        _admin(call)
        return json_response(user_json(self._user(call)))

    async def put_user(self, call: Call) -> Response:
        _admin(call)
        body = call.request.json_object()
        name = call.param("user")
        tags = _tags(body.get("tags"))
        password = body.get("password")
        if password is not None:
            if not isinstance(password, str):
                raise bad_request("'password' must be a string")
            # Hashing is slow on purpose: off the event loop.
            hashed = await trio.to_thread.run_sync(hash_password, password)
        else:
            hashed = _stored_hash(body)
        existed = name in self.broker.users
        self.broker.users.add_user(name, hashed, tags)
        return no_content() if existed else created()

    async def delete_user(self, call: Call) -> Response:
        _admin(call)
        if not self.broker.delete_user(call.param("user")):
            raise not_found()
        return no_content()

    async def user_permissions(self, call: Call) -> Response:
        _admin(call)
        user = self._user(call)
        return json_response([_permission_json(user, v) for v in sorted(user.permissions)])

    async def user_topic_permissions(self, call: Call) -> Response:
        _admin(call)
        user = self._user(call)
        return json_response(
            [p for v in sorted(user.topic_permissions) for p in _topic_json(user, v)]
        )

    # -- permissions ---------------------------------------------------------------------

    async def list_permissions(self, call: Call) -> Response:
        _admin(call)
        return json_response(
            [_permission_json(u, v) for u in self._users() for v in sorted(u.permissions)]
        )

    async def get_permission(self, call: Call) -> Response:
        _admin(call)
        user = self._user(call)
        if call.vhost_name not in user.permissions:
            raise not_found()
        return json_response(_permission_json(user, call.vhost_name))

    async def put_permission(self, call: Call) -> Response:
        _admin(call)
        body = call.request.json_object()
        user, vhost = self._user_and_vhost(call)
        patterns = _strings(body, "configure", "write", "read")
        existed = vhost in user.permissions
        try:
            self.broker.users.set_permissions(user.name, vhost, *patterns)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return no_content() if existed else created()

    async def delete_permission(self, call: Call) -> Response:
        _admin(call)
        user = self._user(call)
        if call.vhost_name not in user.permissions:
            raise not_found()
        self.broker.users.clear_permissions(user.name, call.vhost_name)
        return no_content()

    # -- topic permissions ---------------------------------------------------------------

    async def list_topic_permissions(self, call: Call) -> Response:
        _admin(call)
        return json_response(
            [
                p
                for u in self._users()
                for v in sorted(u.topic_permissions)
                for p in _topic_json(u, v)
            ]
        )

    async def get_topic_permissions(self, call: Call) -> Response:
        _admin(call)
        user = self._user(call)
        found = _topic_json(user, call.vhost_name)
        if not found:
            raise not_found()
        return json_response(found)

    async def put_topic_permission(self, call: Call) -> Response:
        _admin(call)
        body = call.request.json_object()
        user, vhost = self._user_and_vhost(call)
        exchange, write, read = _strings(body, "exchange", "write", "read")
        existed = exchange in user.topic_permissions.get(vhost, {})
        try:
            self.broker.users.set_topic_permissions(user.name, vhost, exchange, write, read)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return no_content() if existed else created()

    async def delete_topic_permissions(self, call: Call) -> Response:
        """Without ``?exchange=`` all of the user's topic permissions in the vhost go."""
        _admin(call)
        user = self._user(call)
        vhost = call.vhost_name
        exchange = dict(call.request.query).get("exchange")
        held = user.topic_permissions.get(vhost, {})
        if not held or (exchange is not None and exchange not in held):
            raise not_found()
        self.broker.users.clear_topic_permissions(user.name, vhost, exchange)
        return no_content()

    # -- limits --------------------------------------------------------------------------

    async def list_vhost_limits(self, call: Call) -> Response:
        _admin(call)
        vhosts = self.broker.vhosts
        if "vhost" in call.params:
            if call.vhost_name not in vhosts:
                raise not_found()
            names: Iterable[str] = [call.vhost_name]
        else:
            names = sorted(vhosts)
        return json_response(
            [{"vhost": n, "value": dict(vhosts[n].limits)} for n in names if vhosts[n].limits]
        )

    async def put_vhost_limit(self, call: Call) -> Response:
        _admin(call)
        vhost = self.broker.vhosts.get(call.vhost_name)
        if vhost is None:
            raise not_found()
        limits = dict(vhost.limits)
        limits.update(_limit_value(call, "vhost", VHOST_LIMITS))
        self.broker.add_vhost(vhost.name, limits=limits)
        return no_content()

    async def delete_vhost_limit(self, call: Call) -> Response:
        _admin(call)
        vhost = self.broker.vhosts.get(call.vhost_name)
        if vhost is None:
            raise not_found()
        limits = {k: v for k, v in vhost.limits.items() if k != call.param("limit")}
        self.broker.add_vhost(vhost.name, limits=limits)
        return no_content()

    async def list_user_limits(self, call: Call) -> Response:
        _admin(call)
        users = [self._user(call)] if "user" in call.params else self._users()
        return json_response([{"user": u.name, "value": dict(u.limits)} for u in users if u.limits])

    async def put_user_limit(self, call: Call) -> Response:
        _admin(call)
        user = self._user(call)
        limits = dict(user.limits)
        limits.update(_limit_value(call, "user", USER_LIMITS))
        self.broker.users.set_limits(user.name, limits)
        return no_content()

    async def delete_user_limit(self, call: Call) -> Response:
        _admin(call)
        user = self._user(call)
        limits = {k: v for k, v in user.limits.items() if k != call.param("limit")}
        self.broker.users.set_limits(user.name, limits)
        return no_content()


def _limit_value(call: Call, kind: str, known: tuple[str, ...]) -> dict[str, int]:
    """``{"value": N}`` for the limit named in the path, validated as RabbitMQ does."""
    body = call.request.json_object()
    name = call.param("limit")
    if "value" not in body:
        raise bad_request("missing key 'value'")
    try:
        return parse_limits(kind, {name: body["value"]})
    except ValueError as exc:
        raise bad_request(f"Validation failed\n\n{exc}\n") from None


def _stored_hash(body: dict[str, Any]) -> str:
    """A ``password_hash`` (with its ``hashing_algorithm``) as the broker stores it; no
    hash at all makes a user that cannot log in with a password, as in RabbitMQ."""
    stored = body.get("password_hash", "")
    if not isinstance(stored, str):
        raise bad_request("'password_hash' must be a string")
    algorithm = body.get("hashing_algorithm", rabbit_json.OUR_HASH)
    if algorithm == rabbit_json.OUR_HASH or not stored:
        return stored
    prefix = rabbit_json.RABBIT_HASHES.get(algorithm)
    if prefix is None:
        raise bad_request(f"unsupported hashing_algorithm {algorithm!r}")
    return f"{prefix}${stored}"
