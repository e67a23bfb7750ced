"""The one settings value both listeners read: addresses, limits, timeouts, where data lives.

Pure value shared by the layers (like :mod:`amqplite.errors`).  The YAML loader builds it
from the ``server:`` section (:mod:`amqplite.topology.loader`); ``amqplite serve`` and
the embedding API (:mod:`amqplite.app`) apply their explicit overrides to it; the AMQP
listener (:mod:`amqplite.server`) and the management API (:mod:`amqplite.http`) are
given it.  The protocol and broker layers never see it.  The defaults are the ones
``config/amqplite.yaml`` documents.
"""

from __future__ import annotations

from pathlib import Path

import attrs

#: Bytes a connection may have waiting to be written before its consumers are paused and
#: its reader stops reading (TCP backpressure reaches the publisher).
DEFAULT_HIGH_WATER = 1 << 20
#: Output must drain below this before paused consumers are resumed.
DEFAULT_LOW_WATER = 256 << 10

#: RabbitMQ's default ``loopback_users``: these may log in only from a loopback address.
DEFAULT_LOOPBACK_USERS = frozenset({"guest"})

#: Where durable data goes when nothing says otherwise: ``data`` beside the config file,
#: or in the working directory without one (a bare ``amqplite serve`` keeps what it
#: confirmed, as RabbitMQ does).
DEFAULT_DATA_DIR = "data"


@attrs.frozen
class ServerSettings:
    """The ``server:`` section of the config, and every knob the listeners need."""

    #: AMQP listener address and port (0: pick a free one).
    host: str = "0.0.0.0"
    port: int = 5672
    #: The management HTTP API's address and port (None: no HTTP listener; ``--no-http``).
    http_host: str = "127.0.0.1"
    http_port: int | None = 15672
    #: Where durable data lives (None: nothing is persisted).  The loader makes it
    #: absolute (relative paths are relative to the config file).
    data_dir: Path | None = None
    #: Proposed in connection.tune; the client may lower them.
    heartbeat: int = 60
    frame_max: int = 131072
    channel_max: int = 2047
    #: Bodies larger than this close the channel with 406 (RabbitMQ's max_message_size).
    max_message_size: int = 134_217_728
    #: Publishers are blocked (connection.blocked) while the store's disk has less free
    #: space than this many bytes (RabbitMQ's disk_free_limit; see server/store_guard.py).
    disk_free_limit: int = 50_000_000
    #: The vhost the config's top-level exchanges/queues/bindings belong to.
    default_vhost: str = "/"
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


#: The keys a config file's ``server:`` section may set (the rest are embedding knobs).
CONFIG_KEYS = (
    "host",
    "port",
    "http_host",
    "http_port",
    "data_dir",
    "heartbeat",
    "frame_max",
    "channel_max",
    "max_message_size",
    "disk_free_limit",
    "connection_max",
    "default_vhost",
)
