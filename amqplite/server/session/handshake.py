"""The connection class: start, login, tune, open, close (server layer, session package).

The protocol machine enforces the order (start-ok, tune-ok, open; close / close-ok only
when they make sense) and negotiates the tune values, so these handlers only do what needs
the broker: the login (checked off the event loop by :meth:`Session.check_login`), the
vhost at connection.open, and releasing everything at close.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from amqplite.broker.broker import ConnectionInfo
from amqplite.errors import AMQPConnectionError, AMQPError, ReplyCode
from amqplite.protocol import methods as m
from amqplite.server.session import sasl
from amqplite.version import __version__

if TYPE_CHECKING:
    from amqplite.server.session.core import Session

log = logging.getLogger(__name__)

SERVER_CAPABILITIES: dict[str, Any] = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
}

SERVER_PROPERTIES: dict[str, Any] = {
    "product": "amqplite",
    "version": __version__,
    "platform": f"Python {platform.python_version()}",
    "copyright": "amqplite contributors",
    "information": "Licensed under the MIT license",
    "cluster_name": "amqplite",
    "capabilities": SERVER_CAPABILITIES,
}

LOGIN_REFUSED = (
    "Login was refused using authentication mechanism {}. For details see the broker logfile."
)


def start_method(session: Session) -> m.ConnectionStart:
    """connection.start, sent once the client's protocol header is accepted; EXTERNAL is
    offered only with a verified TLS client certificate."""
    offered = sasl.MECHANISMS if session.peer_cert is None else sasl.MECHANISMS_WITH_EXTERNAL
    return m.ConnectionStart(0, 9, SERVER_PROPERTIES, offered, b"en_US")


def login_refused(mechanism: str) -> AMQPConnectionError:
    return AMQPConnectionError(
        ReplyCode.ACCESS_REFUSED,
        LOGIN_REFUSED.format(mechanism),
        m.ConnectionStartOk.CLASS_ID,
        m.ConnectionStartOk.METHOD_ID,
    )


def start_ok(session: Session, method: m.ConnectionStartOk) -> None:
    """Remember the client's properties and park the credentials for :meth:`check_login`."""
    session.client_properties = dict(method.client_properties)
    capabilities = session.client_properties.get("capabilities")
    session.client_capabilities = capabilities if isinstance(capabilities, dict) else {}
    mechanism = method.mechanism
    if mechanism == sasl.EXTERNAL and session.peer_cert is not None:
        _external(session)
        return
    try:
        credentials = sasl.parse_response(mechanism, method.response)
    except ValueError:
        raise AMQPConnectionError(
            ReplyCode.ACCESS_REFUSED,
            f"unsupported authentication mechanism '{mechanism}'",
            method.CLASS_ID,
            method.METHOD_ID,
        ) from None
    if credentials is None:
        log.warning("connection %s: malformed %s response", session.name, mechanism)
        raise login_refused(mechanism)
    session.auth_pending = (mechanism, credentials[0], credentials[1])


def _external(session: Session) -> None:
    """EXTERNAL: the user named by the client certificate (the response is ignored, as
    RabbitMQ does); :meth:`Session.check_login` checks that it exists."""
    assert session.peer_cert is not None
    identity = session.settings.tls_external_identity
    name = session.peer_cert.name(identity)
    if not name:
        log.warning(
            "connection %s: EXTERNAL login refused: no %s in the client certificate (%s)",
            session.name,
            "common name" if identity == "cn" else "subject",
            session.peer_cert.dn,
        )
        raise login_refused(sasl.EXTERNAL)
    session.auth_pending = (sasl.EXTERNAL, name, "")


def tune_ok(session: Session, method: m.ConnectionTuneOk) -> None:
    # The protocol validated and negotiated the values (530 if out of range); the session
    # reads them from there.
    pass


def open_(session: Session, method: m.ConnectionOpen) -> None:
    """The vhost: open the broker connection, or 530 as RabbitMQ does."""
    assert session.user is not None  # the protocol passes open only after tune-ok
    vhost = method.virtual_host
    info = ConnectionInfo(
        name=session.name,
        client_properties=session.client_properties,
        auth_mechanism=session.auth_mechanism,
        tls_protocol=session.tls,
        peer_cert_subject=session.peer_cert.dn if session.peer_cert is not None else None,
    )
    try:
        session.connection = session.broker.open_connection(
            vhost=vhost, user=session.user, info=info
        )
    except AMQPError as exc:
        raise AMQPConnectionError(
            ReplyCode.NOT_ALLOWED, exc.text, method.CLASS_ID, method.METHOD_ID
        ) from None
    # The broker ends the connection itself when its user or vhost is deleted.
    session.connection.closer = session.on_forced_close or session.force_close
    session.vhost = vhost
    log.info(
        "accepting AMQP connection %s (user '%s', vhost '%s')", session.name, session.user, vhost
    )
    session.send(0, m.ConnectionOpenOk())
    if session.blocked_reason is not None:
        session.notify_blocked(session.blocked_reason)


def close(session: Session, method: m.ConnectionClose) -> None:
    """The client's connection.close, or its close crossing ours: close-ok and hang up."""
    session.release_broker_connection()
    session.send(0, m.ConnectionCloseOk())
    session.finished = True


def close_ok(session: Session, method: m.ConnectionCloseOk) -> None:
    # The protocol passes it only as the answer to our connection.close.
    session.finished = True


def update_secret(session: Session, method: m.ConnectionUpdateSecret) -> None:
    session.send(0, m.ConnectionUpdateSecretOk())


#: What answers a method on channel 0: handler(session, method).
ConnectionHandler = Callable[["Session", Any], None]

HANDLERS: dict[type[m.Method], ConnectionHandler] = {
    m.ConnectionStartOk: start_ok,
    m.ConnectionTuneOk: tune_ok,
    m.ConnectionOpen: open_,
    m.ConnectionClose: close,
    m.ConnectionCloseOk: close_ok,
    m.ConnectionUpdateSecret: update_secret,
}
