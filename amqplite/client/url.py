"""Parse ``amqp://user:password@host:port/vhost`` and ``amqps://`` URLs (client layer, pure).

Follows what pika and most clients do rather than the letter of RabbitMQ's URI spec: an
empty path or a lone ``/`` means the vhost ``/`` (the spec would make ``amqp://h/`` the
empty vhost, which nobody means); any other path is the percent-decoded vhost, so
``%2F`` is ``/`` and ``/staging`` is ``staging``.  Defaults are RabbitMQ's:
guest/guest on localhost:5672 (5671 for ``amqps``).

``amqps`` takes RabbitMQ's URI query parameters for TLS: ``cacertfile`` (the CA to trust
instead of the system's), ``certfile`` and ``keyfile`` (a client certificate),
``verify=verify_none`` (do not check the server's certificate), ``server_name_indication``
(the name to check it against, default the host), and ``auth_mechanism=external`` (log in
by the client certificate; docs/tls.md).  Other query parameters are ignored, as before.
"""

from __future__ import annotations

import urllib.parse

import attrs

from amqplite.client.errors import ClientError


@attrs.frozen
class TlsOptions:
    """How an ``amqps`` URL's TLS is set up (RabbitMQ's URI query parameters)."""

    cacertfile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    #: False for ``verify=verify_none``: the server's certificate is not checked.
    verify: bool = True
    server_name_indication: str | None = None


@attrs.frozen
class AmqpUrl:
    host: str = "localhost"
    port: int = 5672
    username: str = "guest"
    password: str = attrs.field(default="guest", repr=False)
    vhost: str = "/"
    #: TLS options for ``amqps`` (None: plain ``amqp``).
    tls: TlsOptions | None = None
    #: The SASL mechanism: PLAIN (user and password) or EXTERNAL (the client certificate).
    auth_mechanism: str = "PLAIN"

    def with_vhost(self, vhost: str) -> AmqpUrl:
        return attrs.evolve(self, vhost=vhost)

    def __str__(self) -> str:
        """The URL without the password (safe for messages and logs)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        vhost = urllib.parse.quote(self.vhost, safe="")
        scheme = "amqp" if self.tls is None else "amqps"
        user = urllib.parse.quote(self.username, safe="")
        return f"{scheme}://{user}@{host}:{self.port}/{vhost}"


_VERIFY = {"verify_peer": True, "verify_none": False}
_MECHANISMS = ("PLAIN", "EXTERNAL")


def parse_url(url: str) -> AmqpUrl:
    """An :class:`AmqpUrl`; :class:`ClientError` with the reason when it is not one."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("amqp", "amqps"):
        raise ClientError(f"{url!r} is not an amqp:// or amqps:// URL")
    secure = parts.scheme == "amqps"
    try:
        port = parts.port or (5671 if secure else 5672)
    except ValueError as exc:
        raise ClientError(f"{url!r}: {exc}") from None
    query = dict(urllib.parse.parse_qsl(parts.query))
    mechanism = query.get("auth_mechanism", "plain").upper()
    if mechanism not in _MECHANISMS:
        raise ClientError(f"{url!r}: auth_mechanism must be plain or external")
    if mechanism == "EXTERNAL" and not secure:
        raise ClientError(f"{url!r}: auth_mechanism=external needs amqps (a client certificate)")
    path = parts.path
    vhost = "/" if path in ("", "/") else urllib.parse.unquote(path[1:])
    return AmqpUrl(
        host=parts.hostname or "localhost",
        port=port,
        username=urllib.parse.unquote(parts.username) if parts.username is not None else "guest",
        password=urllib.parse.unquote(parts.password) if parts.password is not None else "guest",
        vhost=vhost,
        tls=_tls_options(url, query) if secure else None,
        auth_mechanism=mechanism,
    )


def _tls_options(url: str, query: dict[str, str]) -> TlsOptions:
    verify = query.get("verify", "verify_peer")
    if verify not in _VERIFY:
        raise ClientError(f"{url!r}: verify must be verify_peer or verify_none")
    certfile, keyfile = query.get("certfile"), query.get("keyfile")
    if keyfile is not None and certfile is None:
        raise ClientError(f"{url!r}: keyfile needs certfile")
    return TlsOptions(
        cacertfile=query.get("cacertfile"),
        certfile=certfile,
        keyfile=keyfile,
        verify=_VERIFY[verify],
        server_name_indication=query.get("server_name_indication"),
    )
