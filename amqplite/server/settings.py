"""Server settings: the knobs of the trio server layer (listening address, limits, timeouts).

Server layer.  A frozen value built from the ``server:`` section of the YAML config (or
from keyword arguments of the embedding API); the protocol and broker layers never see it.
"""

from __future__ import annotations

import attrs

#: Bytes a connection may have waiting to be written before its consumers are paused and
#: its reader stops reading (TCP backpressure reaches the publisher).
DEFAULT_HIGH_WATER = 1 << 20
#: Output must drain below this before paused consumers are resumed.
DEFAULT_LOW_WATER = 256 << 10


#: RabbitMQ's default ``loopback_users``: these may log in only from a loopback address.
DEFAULT_LOOPBACK_USERS = frozenset({"guest"})


@attrs.frozen
class ServerSettings:
    """Everything the listener and connection tasks need to know."""

    host: str = "127.0.0.1"
    port: int = 5672
    #: Proposed in connection.tune; the client may lower them.
    frame_max: int = 131072
    channel_max: int = 2047
    heartbeat: int = 60
    #: Bodies larger than this close the channel with 406 (RabbitMQ's max_message_size).
    max_message_size: int = 134_217_728
    #: Largest single receive; everything in one receive is handled as one batch.
    receive_size: int = 256 << 10
    high_water: int = DEFAULT_HIGH_WATER
    low_water: int = DEFAULT_LOW_WATER
    #: A client that has not finished the handshake within this many seconds is dropped.
    handshake_timeout: float = 10.0
    #: After we send connection.close, wait this long for close-ok before dropping.
    close_timeout: float = 3.0
    #: Node-wide cap on client connections (RabbitMQ's ``connection_max``; None: none).
    connection_max: int | None = None
    #: Users allowed to log in only from a loopback address (RabbitMQ's loopback_users).
    loopback_users: frozenset[str] = DEFAULT_LOOPBACK_USERS
    #: Where durable data lives (None: nothing is persisted).
    data_dir: str | None = None
    #: The management HTTP API's address (None: no HTTP listener).
    http_host: str = "127.0.0.1"
    http_port: int | None = None
    #: Publishers are blocked (connection.blocked) while the store's disk has less free
    #: space than this many bytes (RabbitMQ's disk_free_limit; see server/store_guard.py).
    disk_free_limit: int = 50_000_000
