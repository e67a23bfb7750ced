"""HTTP Basic authentication for the management API, against the broker's users.

Layer: ``amqplite/http``.  The password check itself is the AMQP listener's (cached scrypt
in a worker thread, RabbitMQ's ``loopback_users`` rule), handed in by the composition root
(:mod:`amqplite.app`) as a :data:`Login` callable: this package never imports the server.
RabbitMQ's rule: only users tagged ``administrator``,
``monitoring`` or ``management`` may use the management API; the others get 401 like
a wrong password (RabbitMQ answers ``"Not management user"``).  Administrators and
monitoring users see every vhost; management users see the vhosts they have
permissions in.  Administrators may change anything (they act as the broker, without
AMQP permission checks); other management users only what their configure / write /
read permissions allow.  Definitions and users need ``administrator``.  Denials are
401, as RabbitMQ answers them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from amqplite.http.request import HTTPError, Request

if TYPE_CHECKING:
    from amqplite.broker.auth import User

#: ``login(user, password, peer_address)``: the user, or None if the login is refused.
Login = Callable[[str, str, str], Awaitable["User | None"]]

MANAGEMENT_TAGS = frozenset({"administrator", "monitoring", "management"})
_CHALLENGE = (("www-authenticate", 'Basic realm="RabbitMQ Management"'),)


def unauthorized(reason: str, request: Request | None = None) -> HTTPError:
    """401; with the Basic challenge unless the dashboard's script asked (a browser would
    pop up its own login dialog for a challenged fetch)."""
    scripted = (
        request is not None
        and request.headers.get("x-requested-with", "").lower() == "xmlhttprequest"
    )
    return HTTPError(401, "not_authorised", reason, () if scripted else _CHALLENGE)


def credentials(request: Request) -> tuple[str, str] | None:
    """The ``(user, password)`` of a Basic ``Authorization`` header, if well-formed."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    if not sep:
        return None
    return name, password


async def authenticate(login: Login, request: Request) -> User:
    """The management user making ``request``; raises 401 otherwise.

    ``login`` is the AMQP listener's checker: cheap hashes are checked inline, legacy
    scrypt ones in its small bounded pool with successful checks cached; RabbitMQ's
    loopback_users applies to the management API as well as to AMQP.
    """
    creds = credentials(request)
    if creds is None:
        raise unauthorized("Not_Authorized", request)
    user = await login(creds[0], creds[1], request.peer)
    if user is None:
        raise unauthorized("Login failed", request)
    if not MANAGEMENT_TAGS.intersection(user.tags):
        raise unauthorized("Not management user", request)
    return user


def is_admin(user: User) -> bool:
    return "administrator" in user.tags


def sees_all_vhosts(user: User) -> bool:
    return "administrator" in user.tags or "monitoring" in user.tags


def require_admin(user: User) -> None:
    if not is_admin(user):
        raise HTTPError(401, "not_authorised", "Not administrator user")
