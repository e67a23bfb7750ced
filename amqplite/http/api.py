"""The management application: RabbitMQ-shaped ``/api/...`` endpoints, metrics and dashboard.

Layer: ``amqplite/http``.  :class:`ManagementApp` is the ``Request -> Response`` callable
the h11 listener (:mod:`amqplite.http.server`) serves.  It authenticates (HTTP Basic,
management tags), routes, and calls handlers that read the broker's inspection
attributes or change it through the same ``VHost`` / ``Channel`` operations the AMQP
side uses, so both sides obey the same rules.  Handlers never await while holding a
half-done change: every broker operation runs synchronously between two checkpoints.

AMQP errors from the core map to HTTP as RabbitMQ's management plugin does:
404 NOT_FOUND -> 404, 406 PRECONDITION_FAILED / 403 ACCESS_REFUSED / 405 RESOURCE_LOCKED
-> 400 / 403 / 400 with the AMQP text as ``reason``.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Iterator
from contextlib import aclosing, contextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from amqplite.broker.definitions import ApplyFailed, PlanRefused, plan, rabbit_json, snapshot
from amqplite.broker.definitions import apply as apply_definitions
from amqplite.broker.replay import SYNC, Replay, ReplayReport, summarise
from amqplite.broker.topic_trie import MAX_KEY_BYTES, key_too_long
from amqplite.errors import AMQPError, ReplyCode
from amqplite.http import access, auth, deadletters, name_filter, paging, render, security
from amqplite.http.jsonout import (
    created,
    dumps,
    json_list_response,
    json_response,
    jsonable,
    no_content,
)
from amqplite.http.payloads import (
    decode_payload,
    encode_payload,
    properties_from_json,
    properties_to_json,
)
from amqplite.http.rates import RateTracker
from amqplite.http.request import (
    JSON_TYPE,
    HTTPError,
    Request,
    Response,
    bad_request,
    not_found,
)
from amqplite.http.routing import Params, Router
from amqplite.http.snapshot import Freshness, Snapshots, join
from amqplite.message import Message, MessageRun

if TYPE_CHECKING:
    from amqplite.broker import (
        Binding,
        Broker,
        BrokerConnection,
        Channel,
        Exchange,
        Queue,
        User,
        VHost,
    )
    from amqplite.broker.queue import QueueEntry

log = logging.getLogger(__name__)

DEFAULT_EXCHANGE_ALIAS = "amq.default"
RABBIT_VERSION = "3.13.0"
MANAGEMENT_VERSION = RABBIT_VERSION
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
_ACKMODES = {
    "ack_requeue_true",
    "ack_requeue_false",
    "reject_requeue_true",
    "reject_requeue_false",
}
REPLAY_BATCH = 500  # messages per synchronous step of a replay without a rate limit
NDJSON_TYPE = "application/x-ndjson"


@attrs.frozen(slots=True)
class Call:
    """What a handler gets: the request, the path parameters and the authenticated user."""

    request: Request
    params: Params
    user: User | None

    def param(self, name: str) -> str:
        return self.params[name]

    @property
    def vhost_name(self) -> str:
        return self.params["vhost"]


Handler = Callable[[Call], Awaitable[Response]]

#: The HTTP layer's one way to durability, injected by whoever composes the server: an
#: awaitable that returns once everything written to the store so far is synced (the
#: AMQP server's group commit, ``GroupCommit.wait_durable``), so HTTP publishes and
#: replays share the fsyncs of AMQP confirms and never block the event loop.
DurableWait = Callable[[], Awaitable[None]]


async def _nothing_to_sync() -> None:
    """The durable wait of a broker without a store."""


class _NullSink:
    """The delivery sink of the API's short-lived internal channels: they never consume."""

    writable = True

    def deliver(
        self,
        consumer_tag: str,
        delivery_tag: int,
        redelivered: bool,
        exchange: str,
        routing_key: str,
        message: Message,
    ) -> None:  # pragma: no cover - internal channels never consume
        pass

    def deliver_many(
        self, consumer_tag: str, delivery_tag: int, entries: list[QueueEntry]
    ) -> None:  # pragma: no cover - internal channels never consume
        pass

    def deliver_batch(
        self, consumer_tag: str, delivery_tag: int, messages: MessageRun
    ) -> int:  # pragma: no cover - internal channels never consume
        return len(messages.bodies)

    def cancel_consumer(self, consumer_tag: str) -> None:  # pragma: no cover
        pass


def _amqp_error_status(exc: AMQPError) -> HTTPError:
    code = exc.reply_code
    if code == ReplyCode.NOT_FOUND:
        return HTTPError(404, "Object Not Found", exc.text)
    if code == ReplyCode.ACCESS_REFUSED:
        return HTTPError(403, "access_refused", exc.text)
    return HTTPError(400, "bad_request", exc.text)


class ManagementApp:
    """Serves ``/api``, ``/metrics`` and the dashboard for one broker."""

    def __init__(
        self,
        broker: Broker,
        *,
        login: auth.Login,
        require_auth_for_metrics: bool = False,
        on_change: Callable[[], None] | None = None,
        durable: DurableWait | None = None,
        cors_origins: Collection[str] = (),
        freshness: Freshness | None = None,
    ) -> None:
        if durable is None:
            if broker.store is not None:
                raise ValueError("a broker with a store needs the server's durable wait")
            durable = _nothing_to_sync
        self.broker = broker
        #: The AMQP listener's login check (cached scrypt, loopback_users), handed in.
        self.login = login
        #: Origins allowed to call the API from a browser (CORS); none by default.
        self.cors_origins = frozenset(cors_origins)
        self.on_change = on_change
        #: Returns once everything the broker wrote to its store so far is durable.
        self.durable = durable
        self.require_auth_for_metrics = require_auth_for_metrics
        self.rates = RateTracker()
        #: The queue listing and /metrics, shared by all pollers while fresh (by the
        #: broker's clock; see :mod:`amqplite.http.snapshot`).
        self.snapshots = Snapshots(broker.clock, freshness or Freshness())
        self.router = Router()
        self._add_routes()

    # -- plumbing ----------------------------------------------------------------------

    async def __call__(self, request: Request) -> Response:
        try:
            response = security.preflight(request, self.cors_origins)
            if response is None:
                response = await self._dispatch(request)
            return security.secured(response, request, self.cors_origins)
        finally:
            if request.method not in ("GET", "HEAD"):
                # What this client changed shows in its next listing at once.
                self.snapshots.invalidate()
                if self.on_change is not None:
                    self.on_change()

    async def _dispatch(self, request: Request) -> Response:
        try:
            route, params = self.router.resolve(request)
            user = None
            if not route.public:
                user = await auth.authenticate(self.login, request)
            handler: Handler = route.handler
            return await handler(Call(request, params, user))
        except HTTPError as exc:
            return exc.response()
        except AMQPError as exc:
            return _amqp_error_status(exc).response()

    def _add_routes(self) -> None:
        r = self.router.add
        r("GET", "/", self.dashboard, public=True)
        r("GET", "/index.html", self.dashboard, public=True)
        # The login form posts here if it is submitted before app.js takes it over: the
        # page comes back (the password stayed in the request body, out of any URL).
        r("POST", "/", self.dashboard, public=True)
        r("GET", "/static/{file}", self.static, public=True)
        r("GET", "/metrics", self.metrics, public=not self.require_auth_for_metrics)
        r("GET", "/api/overview", self.overview)
        r("GET", "/api/whoami", self.whoami)
        r("GET", "/api/vhosts", self.list_vhosts)
        r("GET", "/api/vhosts/{vhost}", self.get_vhost)
        r("GET", "/api/connections", self.list_connections)
        r("GET", "/api/channels", self.list_channels)
        r("GET", "/api/consumers", self.list_consumers)
        r("GET", "/api/consumers/{vhost}", self.list_consumers)
        r("GET", "/api/exchanges", self.list_exchanges)
        r("GET", "/api/exchanges/{vhost}", self.list_exchanges)
        r("GET", "/api/exchanges/{vhost}/{name}", self.get_exchange)
        r("PUT", "/api/exchanges/{vhost}/{name}", self.put_exchange)
        r("DELETE", "/api/exchanges/{vhost}/{name}", self.delete_exchange)
        r("GET", "/api/exchanges/{vhost}/{name}/bindings/source", self.exchange_bindings_source)
        r(
            "GET",
            "/api/exchanges/{vhost}/{name}/bindings/destination",
            self.exchange_bindings_destination,
        )
        r("POST", "/api/exchanges/{vhost}/{name}/publish", self.publish)
        r("GET", "/api/queues", self.list_queues)
        r("GET", "/api/queues/{vhost}", self.list_queues)
        r("GET", "/api/queues/{vhost}/{name}", self.get_queue)
        r("PUT", "/api/queues/{vhost}/{name}", self.put_queue)
        r("DELETE", "/api/queues/{vhost}/{name}", self.delete_queue)
        r("GET", "/api/queues/{vhost}/{name}/bindings", self.queue_bindings)
        r("DELETE", "/api/queues/{vhost}/{name}/contents", self.purge_queue)
        r("POST", "/api/queues/{vhost}/{name}/get", self.get_messages)
        r("GET", "/api/queues/{vhost}/{name}/messages", self.browse_messages)
        r("GET", "/api/queues/{vhost}/{name}/messages/summary", self.summarise_messages)
        r("POST", "/api/queues/{vhost}/{name}/messages/delete", self.delete_messages)
        r("POST", "/api/queues/{vhost}/{name}/replay", self.replay_messages)
        r("GET", "/api/bindings", self.list_bindings)
        r("GET", "/api/bindings/{vhost}", self.list_bindings)
        for kind in ("q", "e"):
            pattern = f"/api/bindings/{{vhost}}/e/{{source}}/{kind}/{{dest}}"
            r("GET", pattern, self.list_bindings_between)
            r("POST", pattern, self.create_binding)
            r("GET", pattern + "/{props}", self.get_binding)
            r("DELETE", pattern + "/{props}", self.delete_binding)
        r("GET", "/api/definitions", self.export_definitions)
        r("POST", "/api/definitions", self.import_definitions)
        r("GET", "/api/definitions/{vhost}", self.export_definitions)
        r("POST", "/api/definitions/{vhost}", self.import_definitions)
        access.AccessHandlers(self.broker).add_routes(r)

    def _now(self) -> float:
        return time.monotonic()

    # -- access --------------------------------------------------------------------------

    def _visible_vhosts(self, call: Call) -> list[VHost]:
        user = call.user
        assert user is not None
        vhosts = list(self.broker.vhosts.values())
        if auth.sees_all_vhosts(user):
            return vhosts
        return [v for v in vhosts if user.can_access_vhost(v.name)]

    def _vhost(self, call: Call) -> VHost:
        name = call.vhost_name
        vhost = self.broker.vhosts.get(name)
        user = call.user
        if vhost is None or user is None:
            raise not_found()
        if not auth.sees_all_vhosts(user) and not user.can_access_vhost(name):
            raise HTTPError(401, "not_authorised", "Access refused.", ())
        return vhost

    def _vhosts_for(self, call: Call) -> list[VHost]:
        return [self._vhost(call)] if "vhost" in call.params else self._visible_vhosts(call)

    def _check(self, call: Call, kind: str, resource: str) -> None:
        """Changes need ``administrator``, or the AMQP permission on the resource."""
        user = call.user
        assert user is not None
        if auth.is_admin(user):
            return
        if user.can(call.vhost_name, kind, resource):
            return
        raise HTTPError(401, "not_authorised", "Access refused.", ())

    @staticmethod
    def _exchange_name(name: str) -> str:
        return "" if name == DEFAULT_EXCHANGE_ALIAS else name

    def _queue(self, call: Call) -> Queue:
        queue = self._vhost(call).queues.get(call.param("name"))
        if queue is None:
            raise not_found()
        return queue

    def _exchange(self, call: Call) -> Exchange:
        exchange = self._vhost(call).exchanges.get(self._exchange_name(call.param("name")))
        if exchange is None:
            raise not_found()
        return exchange

    @contextmanager
    def _channel(self, call: Call, vhost: str) -> Iterator[Channel]:
        """A short-lived broker connection + channel acting as the HTTP user.

        Administrators act as the broker itself (no AMQP permission checks); management
        users act as themselves, so their AMQP permissions apply.  The connection is listed
        (as "HTTP API") only while a rate-limited replay runs.
        """
        from amqplite.broker import ConnectionInfo

        user = call.user
        assert user is not None
        info = ConnectionInfo(name="HTTP API", client_properties={"product": "amqplite management"})
        acting = None if auth.is_admin(user) else user.name
        conn = self.broker.open_connection(vhost=vhost, user=acting, info=info, counted=False)
        try:
            yield conn.open_channel(number=1, sink=_NullSink())
        finally:
            conn.close()

    # -- static --------------------------------------------------------------------------

    async def dashboard(self, call: Call) -> Response:
        return _static_file("index.html")

    async def static(self, call: Call) -> Response:
        return _static_file(call.param("file"))

    async def metrics(self, call: Call) -> Response:
        body = await self.snapshots.metrics(self.broker, self.rates, self._now())
        headers = call.request.headers
        return await body.response(
            headers.get("accept-encoding", ""), headers.get("if-none-match", "")
        )

    # -- overview, vhosts, users ---------------------------------------------------------

    async def overview(self, call: Call) -> Response:
        now = self._now()
        vhosts = self._visible_vhosts(call)
        user = call.user
        assert user is not None
        every = auth.sees_all_vhosts(user)
        # The queue totals come from the shared listing snapshot, summed while it was taken
        # (as fresh as the listing; live on a small broker): the dashboard asks every
        # second, and reading 10,000 queues' counters again is ~5 ms each time.
        listing = await self.snapshots.queues(self.broker, self.rates, now)
        queue_totals = sum(
            (listing.totals.get(v.name, render.QueueTotals()) for v in vhosts), render.QueueTotals()
        )
        count = sum(len(v.queues) for v in vhosts)
        ready = queue_totals.ready
        unacked = queue_totals.unacked
        consumers = queue_totals.consumers
        redelivered = queue_totals.redelivered
        if every:
            # Broker-wide counters count a fanout publish once, not once per queue.
            broker_stats = self.broker.stats
            published = broker_stats.published
            delivered = broker_stats.delivered
            acked = broker_stats.acked
        else:
            published = queue_totals.published
            delivered = queue_totals.delivered
            acked = queue_totals.acked
        totals = {
            "publish": published,
            "deliver_get": delivered,
            "ack": acked,
            "redeliver": redelivered,
        }
        message_stats: dict[str, Any] = {}
        for name, value in totals.items():
            render.details(message_stats, self.rates, ("overview",), name, value, now)
        connections = self._connections(call)
        channels = sum(len(c.channels) for c in connections)
        return json_response(
            {
                "management_version": MANAGEMENT_VERSION,
                "rabbitmq_version": RABBIT_VERSION,
                "product_name": "amqplite",
                "product_version": _version(),
                "cluster_name": render.NODE,
                "node": render.NODE,
                "erlang_version": "n/a",
                "message_stats": message_stats,
                "queue_totals": {
                    "messages": ready + unacked,
                    "messages_ready": ready,
                    "messages_unacknowledged": unacked,
                },
                "object_totals": {
                    "connections": len(connections),
                    "channels": channels,
                    "exchanges": sum(len(v.exchanges) for v in vhosts),
                    "queues": count,
                    "consumers": consumers,
                },
                "listeners": [],
                "contexts": [],
            }
        )

    async def whoami(self, call: Call) -> Response:
        user = call.user
        assert user is not None
        return json_response({"name": user.name, "tags": list(user.tags)})

    def _vhost_json(self, vhost: VHost) -> dict[str, Any]:
        queues = list(vhost.queues.values())
        ready = sum(q.message_count for q in queues)
        unacked = sum(q.unacked_count for q in queues)
        return {
            "name": vhost.name,
            "description": "",
            "tags": [],
            "tracing": False,
            "messages": ready + unacked,
            "messages_ready": ready,
            "messages_unacknowledged": unacked,
        }

    async def list_vhosts(self, call: Call) -> Response:
        vhosts = name_filter.by_name(call.request, self._visible_vhosts(call), _name)
        return json_list_response(vhosts, self._vhost_json)

    async def get_vhost(self, call: Call) -> Response:
        return json_response(self._vhost_json(self._vhost(call)))

    # -- connections, channels, consumers -------------------------------------------------

    def _connections(self, call: Call) -> list[BrokerConnection]:
        visible = {v.name for v in self._visible_vhosts(call)}
        return [c for c in list(self.broker.connections.values()) if c.vhost.name in visible]

    def _connection_json(self, conn: BrokerConnection) -> dict[str, Any]:
        info = conn.info
        return {
            "name": info.name,
            "vhost": conn.vhost.name,
            "user": _user_name(conn.user),
            "state": "running",
            "channels": len(conn.channels),
            "connected_at": int(conn.connected_at * 1000),
            "protocol": "AMQP 0-9-1",
            "client_properties": jsonable(info.client_properties),
            "node": render.NODE,
            "auth_mechanism": info.auth_mechanism,
            "ssl": info.tls_protocol is not None,
            # RabbitMQ's spelling of the version: tlsv1.3.
            "ssl_protocol": info.tls_protocol.lower() if info.tls_protocol else None,
            "peer_cert_subject": info.peer_cert_subject,
        }

    async def list_connections(self, call: Call) -> Response:
        connections = name_filter.by_name(call.request, self._connections(call), _info_name)
        return json_list_response(connections, self._connection_json)

    def _channel_list(self, call: Call) -> list[tuple[BrokerConnection, Channel]]:
        return [(c, ch) for c in self._connections(call) for ch in list(c.channels.values())]

    async def list_channels(self, call: Call) -> Response:
        def one(pair: tuple[BrokerConnection, Channel]) -> dict[str, Any]:
            conn, ch = pair
            return {
                "name": f"{conn.info.name} ({ch.number})",
                "number": ch.number,
                "vhost": conn.vhost.name,
                "user": _user_name(conn.user),
                "connection_details": {"name": conn.info.name},
                "consumer_count": len(ch.consumers),
                "messages_unacknowledged": len(ch.unacked),
                "prefetch_count": ch.prefetch,
                "global_prefetch_count": ch.global_prefetch,
                "confirm": ch.confirm,
                "state": "running",
                "node": render.NODE,
            }

        return json_list_response(self._channel_list(call), one)

    async def list_consumers(self, call: Call) -> Response:
        vhosts = self._vhosts_for(call)
        rows: list[dict[str, Any]] = []
        for vhost in vhosts:
            for queue in list(vhost.queues.values()):
                for consumer in list(queue.consumers):
                    channel = consumer.channel
                    conn = channel.connection
                    rows.append(
                        {
                            "consumer_tag": consumer.tag,
                            "queue": {"name": queue.name, "vhost": vhost.name},
                            "channel_details": {
                                "name": f"{conn.info.name} ({channel.number})",
                                "number": channel.number,
                                "connection_name": conn.info.name,
                                "user": _user_name(conn.user),
                            },
                            "ack_required": not consumer.no_ack,
                            "exclusive": consumer.exclusive,
                            "prefetch_count": consumer.prefetch or 0,
                            "arguments": jsonable(consumer.arguments),
                            "active": True,
                        }
                    )
        return json_response(rows)

    # -- exchanges -----------------------------------------------------------------------

    async def list_exchanges(self, call: Call) -> Response:
        now = self._now()
        items = [(v.name, x) for v in self._vhosts_for(call) for x in list(v.exchanges.values())]
        items = name_filter.by_name(call.request, items, lambda p: p[1].name)
        return json_list_response(
            items, lambda p: render.exchange_json(p[1], p[0], self.rates, now)
        )

    async def get_exchange(self, call: Call) -> Response:
        exchange = self._exchange(call)
        return json_response(
            render.exchange_json(exchange, call.vhost_name, self.rates, self._now())
        )

    async def put_exchange(self, call: Call) -> Response:
        vhost = self._vhost(call)
        name = self._exchange_name(call.param("name"))
        body = call.request.json_object()
        self._check(call, "configure", name)
        kind = body.get("type")
        if not isinstance(kind, str) or not kind:
            raise bad_request("'type' is required")
        existed = name in vhost.exchanges
        vhost.declare_exchange(
            name,
            kind,
            durable=_flag(body, "durable", True),
            auto_delete=_flag(body, "auto_delete", False),
            internal=_flag(body, "internal", False),
            arguments=_arguments(body),
        )
        return no_content() if existed else created()

    async def delete_exchange(self, call: Call) -> Response:
        vhost = self._vhost(call)
        exchange = self._exchange(call)
        self._check(call, "configure", exchange.name)
        if_unused = _query_flag(call.request, "if-unused")
        vhost.delete_exchange(exchange.name, if_unused=if_unused)
        return no_content()

    async def exchange_bindings_source(self, call: Call) -> Response:
        exchange = self._exchange(call)
        return json_response(
            [render.binding_json(b, call.vhost_name) for b in list(exchange.bindings)]
        )

    async def exchange_bindings_destination(self, call: Call) -> Response:
        exchange = self._exchange(call)
        return json_response(
            [render.binding_json(b, call.vhost_name) for b in list(exchange.incoming)]
        )

    async def publish(self, call: Call) -> Response:
        self._vhost(call)
        exchange = self._exchange(call)
        body = call.request.json_object()
        routing_key = body.get("routing_key", "")
        if not isinstance(routing_key, str):
            raise bad_request("routing_key must be a string")
        if key_too_long(routing_key):
            raise bad_request(f"routing_key longer than {MAX_KEY_BYTES} bytes")
        if "payload" not in body:
            raise bad_request("payload is required")
        payload = decode_payload(body["payload"], body.get("payload_encoding", "string"))
        properties = properties_from_json(body.get("properties"))
        message = Message(exchange.name, routing_key, properties, payload)
        with self._channel(call, call.vhost_name) as ch:
            result = ch.publish(exchange.name, routing_key, message)
        if result.durable_write:
            await self.durable()
        return json_response({"routed": bool(result.routed and not result.rejected)})

    # -- queues --------------------------------------------------------------------------

    async def list_queues(self, call: Call) -> Response:
        """From the shared snapshot (:mod:`amqplite.http.snapshot`): whole listings as one
        cached body (gzipped when the client accepts it), filters and pages over its
        already-encoded items."""
        request = call.request
        vhosts = [v.name for v in self._vhosts_for(call)]
        listing = await self.snapshots.queues(self.broker, self.rates, self._now())
        page = paging.requested(request)
        if page is None and not dict(request.query).get("name"):
            body = await listing.body(vhosts)
            headers = request.headers
            return await body.response(
                headers.get("accept-encoding", ""), headers.get("if-none-match", "")
            )
        items = listing.items(vhosts)
        total = len(items)
        fragments = [f for _, f in name_filter.by_name(request, items, _first)]
        if page is None:
            return Response(200, join(fragments), JSON_TYPE)
        return Response(200, paging.page_json(page, fragments, total), JSON_TYPE)

    async def get_queue(self, call: Call) -> Response:
        queue = self._queue(call)
        out = render.queue_json(queue, self.rates, self._now())
        out["consumer_details"] = [
            {"consumer_tag": c.tag, "ack_required": not c.no_ack, "exclusive": c.exclusive}
            for c in list(queue.consumers)
        ]
        return json_response(out)

    async def put_queue(self, call: Call) -> Response:
        vhost = self._vhost(call)
        name = call.param("name")
        body = call.request.json_object()
        self._check(call, "configure", name)
        existed = name in vhost.queues
        vhost.declare_queue(
            name,
            durable=_flag(body, "durable", True),
            auto_delete=_flag(body, "auto_delete", False),
            arguments=_arguments(body),
        )
        return no_content() if existed else created()

    async def delete_queue(self, call: Call) -> Response:
        vhost = self._vhost(call)
        queue = self._queue(call)
        self._check(call, "configure", queue.name)
        vhost.delete_queue(
            queue.name,
            if_unused=_query_flag(call.request, "if-unused"),
            if_empty=_query_flag(call.request, "if-empty"),
        )
        return no_content()

    async def queue_bindings(self, call: Call) -> Response:
        queue = self._queue(call)
        vhost = call.vhost_name
        rows = [render.default_binding_json(queue.name, vhost)]
        rows.extend(render.binding_json(b, vhost) for b in list(queue.bindings))
        return json_response(rows)

    async def purge_queue(self, call: Call) -> Response:
        vhost = self._vhost(call)
        queue = self._queue(call)
        self._check(call, "read", queue.name)
        vhost.purge_queue(queue.name)
        return no_content()

    async def get_messages(self, call: Call) -> Response:
        queue = self._queue(call)
        body = call.request.json_object()
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise bad_request("count must be a non-negative integer")
        ackmode = body.get("ackmode")
        if ackmode not in _ACKMODES:
            raise bad_request(f"ackmode must be one of {sorted(_ACKMODES)}")
        encoding = body.get("encoding", "auto")
        if encoding not in ("auto", "base64"):
            raise bad_request("encoding must be 'auto' or 'base64'")
        truncate = body.get("truncate")
        if truncate is not None and (
            isinstance(truncate, bool) or not isinstance(truncate, int) or truncate < 0
        ):
            raise bad_request("truncate must be a non-negative integer")
        out: list[dict[str, Any]] = []
        with self._channel(call, call.vhost_name) as ch:
            tags: list[int] = []
            for _ in range(count):
                got = ch.get(queue.name, no_ack=False)
                if got is None:
                    break
                tags.append(got.delivery_tag)
                item = {
                    "payload_bytes": len(got.message.body),
                    "redelivered": got.redelivered,
                    "exchange": got.exchange,
                    "routing_key": got.routing_key,
                    "message_count": got.message_count,
                    "properties": properties_to_json(got.message.properties),
                }
                item.update(encode_payload(got.message.body, encoding, truncate))
                out.append(item)
            if tags:
                last = tags[-1]
                if ackmode == "ack_requeue_false":
                    ch.ack(last, multiple=True)
                elif ackmode == "reject_requeue_false":
                    ch.nack(last, multiple=True, requeue=False)
                else:  # *_requeue_true: back in place, marked redelivered, as RabbitMQ does
                    ch.nack(last, multiple=True, requeue=True)
        return json_response(out)

    # -- dead letters ----------------------------------------------------------------------

    async def browse_messages(self, call: Call) -> Response:
        queue = self._queue(call)
        query = call.request.query
        selection = deadletters.selection_from_query(
            [(k, v) for k, v in query if k not in ("truncate", "encoding")],
            default_limit=deadletters.DEFAULT_LIMIT,
        )
        options = dict(query)
        truncate = _query_int(options.get("truncate"), "truncate")
        encoding = options.get("encoding", "auto")
        if encoding not in ("auto", "base64"):
            raise bad_request("encoding must be 'auto' or 'base64'")
        selected = selection.select(list(queue.browse()))
        return json_list_response(
            selected, lambda p: deadletters.describe(p[0], p[1].message, truncate, encoding)
        )

    async def summarise_messages(self, call: Call) -> Response:
        queue = self._queue(call)
        query = [
            (k, v)
            for k, v in call.request.query
            if k not in ("truncate", "encoding", "limit", "offset")
        ]
        selection = deadletters.selection_from_query(query, default_limit=None)
        return json_response(deadletters.summary_json(summarise(list(queue.browse()), selection)))

    async def delete_messages(self, call: Call) -> Response:
        queue = self._queue(call)
        self._check(call, "read", queue.name)
        body = call.request.json_object()
        dry_run = _flag(body, "dry_run", False)
        everything = _flag(body, "all", False)
        selection = deadletters.selection_from_json(
            {k: v for k, v in body.items() if k not in ("dry_run", "all")}, default_limit=None
        )
        if not selection.filtered and not everything:
            # As `amqplite dlq purge` asks for --all: no client deletes a whole queue by
            # forgetting a filter.
            raise bad_request(
                'no filter given: this would delete every message; send "all": true to do that'
            )
        ids = {entry.message.id for _, entry in selection.select(list(queue.browse()))}
        if dry_run:
            return json_response({"dry_run": True, "selected": len(ids), "deleted": 0})
        return json_response({"deleted": queue.remove_messages(ids)})

    async def replay_messages(self, call: Call) -> Response:
        """Replay the selected dead letters; with ``"progress": true`` the reply is NDJSON,
        one ``{"progress": {"selected": n, "total": t}}`` line per batch, then the report."""
        vhost = self._vhost(call)
        queue = self._queue(call)
        body = call.request.json_object()
        self._check(call, "read", queue.name)
        dry_run = _flag(body, "dry_run", False)
        progress = _flag(body, "progress", False)
        rate = body.get("rate")
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0
        ):
            raise bad_request("rate must be a positive number of messages per second")
        batch = deadletters.parse_int(body.get("batch"), "batch", REPLAY_BATCH) or REPLAY_BATCH
        if rate is not None:  # ten batches a second, so the rate is smooth
            batch = min(batch, max(1, int(rate / 10)))
        interval = 0.0 if rate is None else batch / float(rate)
        target = deadletters.target_from_json(body)
        if target.exchange is not None and target.exchange not in vhost.exchanges:
            raise HTTPError(
                404, "Object Not Found", f"no exchange '{target.exchange}' in vhost '{vhost.name}'"
            )
        if target.queue is not None and target.queue not in vhost.queues:
            raise HTTPError(
                404, "Object Not Found", f"no queue '{target.queue}' in vhost '{vhost.name}'"
            )
        # The origin filters are spelled "origin_exchange" / "origin_routing_key" here.
        filters = {
            k: v
            for k, v in body.items()
            if k not in deadletters.TARGET_FIELDS and k not in ("progress", "batch")
        }
        selection = deadletters.selection_from_json(filters, default_limit=None)
        replay = Replay(queue, selection, target, dry_run=dry_run)
        replaying = self._replaying(call, replay, batch, interval)
        if progress:
            return Response(200, _progress_lines(replaying), NDJSON_TYPE)
        async with aclosing(replaying) as running:
            async for _ in running:
                pass  # the report object is updated in place; its final state is the answer
        return json_response(deadletters.report_json(replay.report))

    async def _replaying(
        self, call: Call, replay: Replay, batch: int, interval: float
    ) -> AsyncGenerator[ReplayReport, None]:
        """Drive ``replay`` (the core's loop): wait for durability when it asks, pause
        between batches; yields its report after each batch and once more at the end."""
        with self._channel(call, replay.queue.vhost.name) as ch:
            for step in replay.run(ch, batch):
                if step == SYNC:
                    # Leave the DLQ only once the copies are durable at their destination.
                    await self.durable()
                    continue
                if self.on_change is not None:
                    self.on_change()  # let consumers of the destinations see this batch now
                yield replay.report
                # Yield between batches even without a rate, so AMQP clients are served.
                await trio.sleep(interval)
        if self.on_change is not None:
            self.on_change()
        yield replay.report

    # -- bindings ------------------------------------------------------------------------

    async def list_bindings(self, call: Call) -> Response:
        items: list[dict[str, Any]] = []
        for vhost in self._vhosts_for(call):
            for queue in list(vhost.queues.values()):
                items.append(render.default_binding_json(queue.name, vhost.name))
            items.extend(render.binding_json(b, vhost.name) for b in vhost.bindings())
        return json_list_response(items, lambda b: b)

    def _between(self, call: Call) -> list[Binding]:
        vhost = self._vhost(call)
        source = vhost.exchanges.get(self._exchange_name(call.param("source")))
        dest_kind = "queue" if call.request.segments[5] == "q" else "exchange"
        dest = call.param("dest")
        found = (
            vhost.queues.get(dest)
            if dest_kind == "queue"
            else vhost.exchanges.get(self._exchange_name(dest))
        )
        if source is None or found is None:
            raise not_found()
        return [
            b
            for b in list(source.bindings)
            if b.destination == found.name and b.destination_type == dest_kind
        ]

    async def list_bindings_between(self, call: Call) -> Response:
        return json_response([render.binding_json(b, call.vhost_name) for b in self._between(call)])

    async def create_binding(self, call: Call) -> Response:
        self._between(call)  # 404 unless both ends exist
        vhost = self._vhost(call)
        body = call.request.json_object()
        routing_key = body.get("routing_key", "")
        if not isinstance(routing_key, str):
            raise bad_request("routing_key must be a string")
        arguments = _arguments(body)
        source = self._exchange_name(call.param("source"))
        dest = call.param("dest")
        self._check(call, "read", source)
        self._check(call, "write", dest)
        if call.request.segments[5] == "q":
            vhost.bind_queue(dest, source, routing_key, arguments)
        else:
            vhost.bind_exchange(self._exchange_name(dest), source, routing_key, arguments)
        key = render.properties_key(routing_key, arguments)
        return Response(201, b"", None, (("location", key),))

    def _binding(self, call: Call) -> Binding:
        props = call.param("props")
        for binding in self._between(call):
            if render.properties_key(binding.routing_key, binding.arguments) == props:
                return binding
        raise not_found()

    async def get_binding(self, call: Call) -> Response:
        return json_response(render.binding_json(self._binding(call), call.vhost_name))

    async def delete_binding(self, call: Call) -> Response:
        binding = self._binding(call)
        vhost = self._vhost(call)
        self._check(call, "read", binding.source)
        self._check(call, "write", binding.destination)
        if binding.destination_type == "queue":
            vhost.unbind_queue(
                binding.destination, binding.source, binding.routing_key, binding.arguments
            )
        else:
            vhost.unbind_exchange(
                binding.destination, binding.source, binding.routing_key, binding.arguments
            )
        return no_content()

    # -- definitions ---------------------------------------------------------------------

    async def export_definitions(self, call: Call) -> Response:
        user = call.user
        assert user is not None
        auth.require_admin(user)
        only = self._vhost(call).name if "vhost" in call.params else None
        current = snapshot(self.broker, vhost=only)
        return json_response(rabbit_json.encode(current, vhost=only, jsonable=jsonable))

    async def import_definitions(self, call: Call) -> Response:
        user = call.user
        assert user is not None
        auth.require_admin(user)
        only = self._vhost(call).name if "vhost" in call.params else None
        body = call.request.json_object()
        try:
            wanted, _ = rabbit_json.decode(body, vhost=only)
            apply_definitions(self.broker, plan(snapshot(self.broker, vhost=only), wanted))
        except rabbit_json.DefinitionsError as exc:
            raise bad_request(str(exc)) from None
        except PlanRefused as exc:
            raise bad_request("; ".join(i.detail for i in exc.plan.conflicts)) from None
        except ApplyFailed as exc:
            if isinstance(exc.cause, AMQPError):
                raise _amqp_error_status(exc.cause) from None
            cause = exc.cause
            raise bad_request(str(cause.args[0] if cause.args else cause)) from None
        return no_content()


# -- helpers ----------------------------------------------------------------------------


async def _progress_lines(
    replaying: AsyncGenerator[ReplayReport, None],
) -> AsyncGenerator[bytes, None]:
    """NDJSON: a progress line after each batch of a replay, then its report."""
    report = None
    async with aclosing(replaying) as running:
        async for report in running:
            line = {"progress": {"selected": report.selected, "total": report.total}}
            yield dumps(line) + b"\n"
    if report is not None:
        yield dumps(deadletters.report_json(report)) + b"\n"


def _name(item: Queue | VHost) -> str:
    return item.name


def _first(pair: tuple[str, bytes]) -> str:
    return pair[0]


def _info_name(conn: BrokerConnection) -> str:
    return conn.info.name


def _user_name(user: User | None) -> str:
    return user.name if user is not None else ""


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false")
    return value


def _arguments(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("arguments") or {}
    if not isinstance(value, dict):
        raise bad_request("arguments must be an object")
    return value


def _query_flag(request: Request, name: str) -> bool:
    return any(k == name and v.lower() in ("true", "1", "yes") for k, v in request.query)


def _query_int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if number < 0:
        raise bad_request(f"{name} must not be negative")
    return number


@functools.cache
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("amqplite")
    except Exception:
        return "0"


def _static_file(name: str) -> Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in _STATIC_TYPES:
        raise not_found()
    resource = importlib.resources.files("amqplite.http").joinpath("static", name)
    try:
        data = resource.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise not_found() from None
    return Response(200, data, _STATIC_TYPES[suffix], (("cache-control", "no-cache"),))
