"""The composition root: build a broker from a config and run its listeners, embedded or not.

The one module that knows both listeners: the AMQP server (:mod:`amqplite.server`) and the
management API (:mod:`amqplite.http`) never import each other; :func:`start_http` hands
the HTTP layer the AMQP server's parts it needs as callables (``login``, ``durable_wait``,
``on_change``).  Both read the one :class:`~amqplite.settings.ServerSettings`.

Embedding API: ``async with serve() as running`` starts a broker listening on an
ephemeral port of 127.0.0.1 and yields a :class:`RunningBroker` (``.url``, ``.port``,
``.broker``); leaving the block shuts it down gracefully (connections get 320
CONNECTION_FORCED).  :func:`run_in_thread` does the same for synchronous code (pika's
BlockingConnection, Celery, any test suite) by running trio in a daemon thread.

The topology comes from a :class:`~amqplite.topology.Config` or a YAML path; without one
the broker has the vhost ``/`` and RabbitMQ's default ``guest``/``guest`` user.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from amqplite.broker.broker import Broker
from amqplite.server import tls
from amqplite.server.listener import AmqpServer
from amqplite.server.tls import TlsConfigError as TlsConfigError  # for `amqplite serve`
from amqplite.settings import ServerSettings

if TYPE_CHECKING:
    from amqplite.store import Store
    from amqplite.topology import Config

log = logging.getLogger(__name__)

T = TypeVar("T")


@functools.cache
def _guest_hash() -> str:
    # Hash the well-known default password once per process (a fresh salt each time is pointless).
    from amqplite.broker.passwords import hash_password

    return hash_password("guest")


def add_default_user(broker: Broker, vhost: str = "/") -> None:
    """RabbitMQ's default account: guest/guest, administrator, everything on ``vhost``."""
    broker.users.add_user("guest", _guest_hash(), ("administrator",))
    broker.users.set_permissions("guest", vhost, ".*", ".*", ".*")


def load(config: Config | str | os.PathLike[str] | None) -> Config | None:
    """A Config from a Config, a YAML path or None (built-in defaults)."""
    if config is None or not isinstance(config, str | os.PathLike):
        return config
    from amqplite.topology import load_config

    return load_config(config)


def build_broker(
    config: Config | None,
    *,
    clock: Callable[[], float] = time.time,
    store: Store | None = None,
) -> Broker:
    """A broker with the config's vhosts, users and topology applied (or the defaults).

    With a ``store`` the broker first recovers what it holds (durable topology, users,
    messages); the config is applied on top.
    """
    broker = Broker(clock=clock, store=store)
    if store is not None:
        report = broker.recover()
        log.info("store: %s", report.summary())
        discarded = report.discarded()
        if discarded:
            log.warning("store: %s", discarded)
    if config is None:
        broker.add_vhost("/")
        add_default_user(broker)
        return broker
    from amqplite.topology import apply

    apply(config, broker)
    if not config.users:
        default_vhost = config.server.default_vhost
        if default_vhost not in broker.vhosts:
            broker.add_vhost(default_vhost)
        add_default_user(broker, default_vhost)
    return broker


def settings_from(
    config: Config | None,
    *,
    host: str | None = None,
    port: int | None = None,
    **overrides: Any,
) -> ServerSettings:
    """The config's settings (or the defaults), with the explicit overrides applied."""
    base = config.server if config is not None else ServerSettings()
    values = dict(overrides)
    if host is not None:
        values["host"] = host
    if port is not None:
        values["port"] = port
    return attrs.evolve(base, **values)


class ListenError(OSError):
    """A listener could not bind its address: the broker must not report ready.

    An OSError with the same ``errno``, whose text says which listener and address."""

    def __init__(self, what: str, host: str, port: int, error: OSError) -> None:
        reason = error.strerror or str(error)
        super().__init__(error.errno, f"cannot listen on {host}:{port} ({what}): {reason}")
        self.what = what

    def __str__(self) -> str:
        return str(self.strerror)


def bind_error(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (possibly inside trio's exception groups), if any."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, OSError) else None


async def start_amqp(
    nursery: trio.Nursery, server: AmqpServer, *, on_stop: Callable[[], None] | None = None
) -> int:
    """Start ``server``'s AMQP listener; returns the bound port.  Raises
    :class:`ListenError` when the address cannot be bound (port taken...).  ``on_stop``
    is called if the server stops on its own (a store failure) or after a shutdown."""
    settings = server.settings

    async def run(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        await server.run(task_status=task_status)
        if on_stop is not None:
            on_stop()

    try:
        port: int = await nursery.start(run)
    except Exception as exc:
        error = bind_error(exc)
        if error is None:
            raise
        raise ListenError("AMQP", settings.host, settings.port, error) from None
    return port


def _connectable(host: str) -> str:
    """A host a client can connect to for a listener bound to ``host``."""
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def start_http(
    nursery: trio.Nursery,
    server: AmqpServer,
    host: str,
    port: int,
    *,
    require_auth_for_metrics: bool = False,
) -> int:
    """Start the management HTTP API for ``server``'s broker; returns the bound port.

    The HTTP layer gets the AMQP server's login check, durable-wait (group commit) and
    writer wake-up as callables.  Raises :class:`ListenError` when the address cannot be
    bound.
    """
    from amqplite.http.server import serve_http

    settings = server.settings
    secure = None
    if settings.http_tls:
        assert server.https_context is not None  # http_tls makes the server build one
        # HTTPS: the AMQPS listener's certificate, handshake deadline and log lines.
        secure = functools.partial(
            tls.accept,
            context=server.https_context,
            timeout=settings.tls_handshake_timeout,
            what="HTTPS",
            https=True,
        )

    async def run(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        await serve_http(
            server.broker,
            login=server.login,
            # HTTP publishes and replays wait on the same group commit as AMQP confirms.
            durable=server.commit.wait_durable if server.commit is not None else None,
            on_change=server.wake_writers,
            require_auth_for_metrics=require_auth_for_metrics,
            host=host,
            port=port,
            task_status=task_status,
            tls=secure,
        )

    try:
        bound: int = await nursery.start(run)
    except Exception as exc:
        error = bind_error(exc)
        if error is None:
            raise
        raise ListenError("HTTP", host, port, error) from None
    scheme = "https" if secure is not None else "http"
    log.info("HTTP API on %s://%s:%d/", scheme, _connectable(host), bound)
    return bound


async def serve_until_signalled(broker: Broker, settings: ServerSettings) -> bool:
    """``amqplite serve``: both listeners until SIGINT/SIGTERM (returns False, after a
    graceful shutdown) or until the server stops itself on a store failure (True).

    Raises :class:`~amqplite.app.ListenError` when a listener cannot bind."""
    server = AmqpServer(broker, settings)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with trio.open_nursery() as nursery:
                # Stopped on its own (store failure): stop waiting for a signal.
                port = await start_amqp(nursery, server, on_stop=nursery.cancel_scope.cancel)
                if settings.http_port is not None:
                    await start_http(nursery, server, settings.http_host, settings.http_port)
                tls_url = (
                    ""
                    if server.tls_port is None
                    else f" amqps://{settings.host}:{server.tls_port}/"
                )
                log.info("amqplite ready: amqp://%s:%d/%s", settings.host, port, tls_url)
                async for signum in signals:
                    log.info("received %s; shutting down", signal.Signals(signum).name)
                    break
                await server.shutdown()
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # a listener failed: its error alone, unwrapped
            error = bind_error(group)
            if isinstance(error, ListenError):
                raise error from None
            raise
    failed = server.guard is not None and server.guard.failure is not None
    log.log(
        logging.CRITICAL if failed else logging.INFO,
        "stopped%s",
        " (store failure)" if failed else "",
    )
    return failed


@attrs.define(eq=False)
class RunningBroker:
    """A broker serving AMQP: where to connect and the live objects behind it."""

    host: str
    port: int
    broker: Broker
    server: AmqpServer
    #: Set by :func:`run_in_thread`: the token to call into the broker's trio thread.
    trio_token: trio.lowlevel.TrioToken | None = None
    #: The management HTTP API's port, when one was asked for.
    http_port: int | None = None

    @property
    def url(self) -> str:
        """``amqp://guest:guest@HOST:PORT/`` (the default user and vhost)."""
        return f"amqp://guest:guest@{_connectable(self.host)}:{self.port}/"

    @property
    def tls_port(self) -> int | None:
        """The AMQPS listener's port, if it runs."""
        return self.server.tls_port

    @property
    def http_url(self) -> str | None:
        """``http(s)://HOST:PORT/`` of the management API, if it runs."""
        if self.http_port is None:
            return None
        scheme = "https" if self.server.settings.http_tls else "http"
        return f"{scheme}://{_connectable(self.server.settings.http_host)}:{self.http_port}/"

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the broker's thread (for :func:`run_in_thread` users who
        want to inspect or change the broker safely); flushes what it caused."""

        def run() -> T:
            result = fn(*args)
            self.server.wake_writers()
            return result

        if self.trio_token is None:  # called from inside the broker's own trio run
            return run()
        return trio.from_thread.run_sync(run, trio_token=self.trio_token)


@asynccontextmanager
async def serve(
    config: Config | str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    broker: Broker | None = None,
    settings: ServerSettings | None = None,
    shutdown_timeout: float = 1.0,
    http_port: int | None = None,
) -> AsyncIterator[RunningBroker]:
    """Run a broker on ``host:port`` (port 0: ephemeral) for the duration of the block.

    ``config`` (a Config or a YAML path) supplies users and topology; its ``server:``
    host and port are ignored in favour of the arguments.  Pass ``broker`` to serve an
    existing broker instead, or ``settings`` to control every server knob.  On exit,
    clients get connection.close 320 and ``shutdown_timeout`` seconds to answer it.
    ``http_port`` (0: ephemeral) also starts the management HTTP API on 127.0.0.1.
    """
    loaded = load(config)
    if broker is None:
        broker = build_broker(loaded)
    if settings is None:
        settings = settings_from(loaded, host=host, port=port)
    server = AmqpServer(broker, settings)
    async with trio.open_nursery() as nursery:
        bound = await start_amqp(nursery, server)
        running = RunningBroker(settings.host, bound, broker, server)
        if http_port is not None:
            running.http_port = await start_http(nursery, server, settings.http_host, http_port)
        try:
            yield running
        finally:
            with trio.CancelScope(shield=True):
                await server.shutdown(shutdown_timeout)
            nursery.cancel_scope.cancel()


@contextmanager
def run_in_thread(
    config: Config | str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    broker: Broker | None = None,
    settings: ServerSettings | None = None,
    shutdown_timeout: float = 1.0,
    http_port: int | None = None,
    startup_timeout: float = 10.0,
) -> Iterator[RunningBroker]:
    """:func:`serve` in a background thread, for synchronous code.

    The broker's objects live in that thread: touch ``running.broker`` only through
    ``running.call(fn, *args)``.
    """
    started = threading.Event()
    result: dict[str, Any] = {}

    async def main() -> None:
        try:
            async with serve(
                config,
                host=host,
                port=port,
                broker=broker,
                settings=settings,
                shutdown_timeout=shutdown_timeout,
                http_port=http_port,
            ) as running:
                running.trio_token = trio.lowlevel.current_trio_token()
                stop = trio.Event()
                result["running"] = running
                result["stop"] = stop
                started.set()
                await stop.wait()
        except BaseException as exc:
            result["error"] = exc
            started.set()
            raise

    def target() -> None:
        try:
            trio.run(main)
        except BaseException:
            if not started.is_set():
                started.set()
            log.debug("broker thread ended with an error", exc_info=True)

    thread = threading.Thread(target=target, name="amqplite-broker", daemon=True)
    thread.start()
    if not started.wait(startup_timeout):
        raise RuntimeError("amqplite broker did not start in time")
    if "error" in result:
        thread.join()
        error: BaseException = result["error"]
        # Unwrap the nursery's group: callers want the OSError (port in use...) itself.
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        raise error
    running: RunningBroker = result["running"]
    stop: trio.Event = result["stop"]
    try:
        yield running
    finally:
        assert running.trio_token is not None
        try:
            trio.from_thread.run_sync(stop.set, trio_token=running.trio_token)
        except trio.RunFinishedError:
            pass
        thread.join(startup_timeout)
