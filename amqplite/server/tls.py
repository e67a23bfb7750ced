"""TLS for both listeners: the server's SSL context, the handshake with its deadline, and
the names in a verified client certificate (the EXTERNAL login's user).

Server layer; the one place that knows the ``ssl`` module on the serving side.  The
composition root (:mod:`amqplite.app`) hands :func:`accept` to the HTTP layer as a
callable, so HTTPS uses the same context, deadline and log lines as AMQPS.

- :func:`server_context` builds a listener's context from the
  :class:`~amqplite.settings.ServerSettings` (TLS 1.2 minimum; for AMQPS, client
  certificates asked for and verified against ``tls_ca`` when ``tls_verify_peer``,
  required with ``tls_require_client_cert``; HTTPS never asks for one).
- :func:`accept` turns an accepted socket into a :class:`trio.SSLStream` whose handshake
  is done, or closes the socket and logs one line: the handshake failed (wrong CA,
  expired certificate, TLS 1.1, no certificate when one is required...), did not finish
  within ``tls_handshake_timeout``, or the client spoke plain text to the TLS port.  A
  plain AMQP client gets the AMQP 0-9-1 protocol header back before the close, so pika
  and friends fail at once instead of waiting out their own timeout.
- :func:`peer_certificate` reads the verified client certificate's common name and RFC
  4514 distinguished name.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterable

import attrs
import trio

from amqplite.settings import ServerSettings

log = logging.getLogger(__name__)

#: The AMQP 0-9-1 protocol header: what a plain AMQP client opens with, and our answer.
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
#: A TLS record carrying a handshake message (a ClientHello) starts with this byte.
TLS_HANDSHAKE_RECORD = 0x16


class TlsConfigError(ValueError):
    """The certificate, key or CA file cannot be loaded: the broker must not start."""


def server_context(settings: ServerSettings, *, https: bool = False) -> ssl.SSLContext | None:
    """The AMQPS listener's SSL context (``https``: the HTTPS one), or None when that
    listener has no TLS.

    HTTPS uses the same certificate but never asks for a client certificate: the API logs
    in with a password, and asking would make browsers pop up their certificate picker
    (or, with ``tls_require_client_cert``, lock the dashboard away from them)."""
    wanted = settings.http_tls if https else settings.tls_port is not None
    if not wanted:
        return None
    problems = settings.tls_errors()
    if problems:
        raise TlsConfigError("; ".join(f"{key}: {message}" for key, message in problems))
    assert settings.tls_cert is not None and settings.tls_key is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(
            f"cannot load the TLS certificate {settings.tls_cert} with the key "
            f"{settings.tls_key}: {_error_text(exc)}"
        ) from None
    if settings.tls_verify_peer and not https:
        assert settings.tls_ca is not None  # tls_errors() said so
        try:
            context.load_verify_locations(cafile=str(settings.tls_ca))
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                f"cannot load the TLS CA file {settings.tls_ca}: {_error_text(exc)}"
            ) from None
        # OPTIONAL: a certificate is asked for and, when sent, must verify; without one the
        # client may still log in with a password (RabbitMQ's fail_if_no_peer_cert=false).
        required = settings.tls_require_client_cert
        context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"{exc.reason or 'certificate verify failed'}: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except (OSError, ValueError):
        return "?"
    return f"{host}:{port}"


async def accept(
    stream: trio.SocketStream,
    context: ssl.SSLContext,
    *,
    timeout: float,
    what: str = "AMQP",
    https: bool = False,
) -> trio.SSLStream[trio.SocketStream] | None:
    """The TLS stream over ``stream`` once its handshake is done; None (socket closed,
    one line logged) if the peer is not a TLS client, fails the handshake or is too slow.

    ``what`` names the listener in the log; ``https`` allows clients that hang up
    without a TLS close_notify, as web clients do.
    """
    peer = _peer(stream)
    ssl_stream = trio.SSLStream(stream, context, server_side=True, https_compatible=https)
    with trio.move_on_after(timeout) as scope:
        try:
            first = await stream.socket.recv(8, socket.MSG_PEEK)
            if not first:  # connected and hung up (a port probe): nothing to say
                await trio.aclose_forcefully(stream)
                return None
            if first[0] != TLS_HANDSHAKE_RECORD:
                await _not_tls(stream, peer, bytes(first), what)
                return None
            await ssl_stream.do_handshake()
            return ssl_stream
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            cause = exc.__cause__ or exc
            log.warning("%s TLS handshake with %s failed: %s", what, peer, _error_text(cause))
            await _send_alert(ssl_stream, stream)
    if scope.cancelled_caught:
        log.warning("%s TLS handshake with %s not finished within %ss; closed", what, peer, timeout)
    await trio.aclose_forcefully(stream)
    return None


async def _send_alert(
    ssl_stream: trio.SSLStream[trio.SocketStream], stream: trio.SocketStream
) -> None:
    """Send the TLS alert OpenSSL wrote for a failed handshake (unknown CA, expired
    certificate, protocol version...), so that the client says why instead of seeing a
    bare EOF.  trio drops it; it is still in the stream's outgoing memory BIO, a private
    attribute of trio's: without it (another trio) the client just sees the close."""
    outgoing = getattr(ssl_stream, "_outgoing", None)
    if not isinstance(outgoing, ssl.MemoryBIO):
        return
    alert = outgoing.read()
    if alert:
        try:
            await stream.send_all(alert)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def _not_tls(stream: trio.SocketStream, peer: str, first: bytes, what: str) -> None:
    if first.startswith(b"AMQP"):
        log.warning(
            "%s: a plain AMQP client (%s) connected to the TLS port; answered with the AMQP "
            "protocol header and closed",
            what,
            peer,
        )
        try:
            # Read what was only peeked at: closing a socket with unread input resets it,
            # and the reset could destroy our answer in flight.
            await stream.receive_some(len(first))
            await stream.send_all(AMQP_HEADER)
            await stream.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    else:
        log.warning("%s: %s sent plain text to the TLS port (%r...); closed", what, peer, first)
    await trio.aclose_forcefully(stream)


@attrs.frozen
class PeerCertificate:
    """The names in a verified client certificate."""

    #: The subject's RFC 4514 distinguished name (``CN=alice,O=Example``).
    dn: str
    #: The subject's (last) common name, if it has one.
    cn: str | None

    def name(self, identity: str) -> str | None:
        """The EXTERNAL user name: ``identity`` "cn" (common name) or "dn"."""
        return self.dn if identity == "dn" else self.cn


def peer_certificate(stream: trio.abc.Stream) -> PeerCertificate | None:
    """The client's verified certificate on a TLS stream; None without one (or not TLS).

    The context verifies any certificate the client sends (CERT_OPTIONAL/REQUIRED), so a
    certificate present after the handshake is a verified one."""
    if not isinstance(stream, trio.SSLStream):
        return None
    cert = stream.getpeercert()
    if not cert:
        return None
    rdns = cert.get("subject", ())
    cn = None
    for rdn in rdns:
        for key, value in rdn:
            if key == "commonName":
                cn = value
    return PeerCertificate(dn=rfc4514(rdns), cn=cn)


#: RFC 4514's short names for the attribute types Python's ssl module spells out.
_SHORT_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


def rfc4514(rdns: Iterable[Iterable[tuple[str, str]]]) -> str:
    """A subject (``getpeercert()["subject"]``: RDNs from the most general) as an RFC 4514
    string: the most specific RDN first, ``+`` inside a multi-valued RDN, special
    characters escaped."""
    parts = []
    for rdn in reversed(tuple(rdns)):
        parts.append("+".join(f"{_SHORT_NAMES.get(k, k)}={_escape(v)}" for k, v in rdn))
    return ",".join(parts)


def _escape(value: str) -> str:
    out = []
    for i, char in enumerate(value):
        if char in '"+,;<>\\' or (char == "#" and i == 0):
            out.append("\\" + char)
        elif char == " " and (i == 0 or i == len(value) - 1):
            out.append("\\ ")
        elif char == "\x00":
            out.append("\\00")
        else:
            out.append(char)
    return "".join(out)
