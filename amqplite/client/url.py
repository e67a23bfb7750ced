"""Parse ``amqp://user:password@host:port/vhost`` URLs (client layer, pure).

Follows what pika and most clients do rather than the letter of RabbitMQ's URI spec: an
empty path or a lone ``/`` means the vhost ``/`` (the spec would make ``amqp://h/`` the
empty vhost, which nobody means); any other path is the percent-decoded vhost, so
``%2F`` is ``/`` and ``/staging`` is ``staging``.  Defaults are RabbitMQ's:
guest/guest on localhost:5672.  ``amqps`` is refused (this client has no TLS).
"""

from __future__ import annotations

import urllib.parse

import attrs

from amqplite.client.errors import ClientError


@attrs.frozen
class AmqpUrl:
    host: str = "localhost"
    port: int = 5672
    username: str = "guest"
    password: str = attrs.field(default="guest", repr=False)
    vhost: str = "/"

    def with_vhost(self, vhost: str) -> AmqpUrl:
        return attrs.evolve(self, vhost=vhost)

    def __str__(self) -> str:
        """The URL without the password (safe for messages and logs)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        vhost = urllib.parse.quote(self.vhost, safe="")
        return f"amqp://{urllib.parse.quote(self.username, safe='')}@{host}:{self.port}/{vhost}"


def parse_url(url: str) -> AmqpUrl:
    """An :class:`AmqpUrl`; :class:`ClientError` with the reason when it is not one."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "amqps":
        raise ClientError(f"{url!r}: amqps (TLS) is not supported by this client")
    if parts.scheme != "amqp":
        raise ClientError(f"{url!r} is not an amqp:// URL")
    try:
        port = parts.port or 5672
    except ValueError as exc:
        raise ClientError(f"{url!r}: {exc}") from None
    path = parts.path
    vhost = "/" if path in ("", "/") else urllib.parse.unquote(path[1:])
    return AmqpUrl(
        host=parts.hostname or "localhost",
        port=port,
        username=urllib.parse.unquote(parts.username) if parts.username is not None else "guest",
        password=urllib.parse.unquote(parts.password) if parts.password is not None else "guest",
        vhost=vhost,
    )
