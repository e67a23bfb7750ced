"""Listings and metrics from the shared snapshot: freshness, gzip, RabbitMQ's pages.

A broker on a fake clock serves the API with snapshots kept exactly 1 s, so what a poller
sees before and after the period is deterministic (no sleeping: the clock is moved).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
from http_support import Channel, Stack

from amqplite.app import build_broker, serve
from amqplite.broker import FakeClock
from amqplite.http.rates import RateTracker
from amqplite.http.server import serve_http
from amqplite.http.snapshot import Freshness, QueueListing, Snapshots

PERIOD = 1.0


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
async def fixed(clock: FakeClock) -> AsyncIterator[Stack]:
    """A broker whose API keeps every snapshot exactly ``PERIOD`` seconds of its clock."""
    broker = build_broker(None, clock=clock)
    with trio.fail_after(20):
        async with serve(broker=broker) as running, trio.open_nursery() as nursery:
            server = running.server

            async def run(task_status: trio.TaskStatus[int]) -> None:
                await serve_http(
                    broker,
                    login=server.login,
                    port=0,
                    on_change=server.wake_writers,
                    freshness=Freshness(min_period=PERIOD, max_period=PERIOD),
                    task_status=task_status,
                )

            port = await nursery.start(run)
            yield Stack(broker, running.url, port, server)
            nursery.cancel_scope.cancel()


def _names(listing: list[dict[str, object]]) -> set[object]:
    return {item["name"] for item in listing}


async def test_a_declared_queue_is_listed_once_the_snapshot_period_has_passed(
    fixed: Stack, clock: FakeClock
) -> None:
    assert "late" not in _names(await fixed.get_json("/api/queues"))  # the snapshot is taken
    await fixed.amqp(lambda ch: ch.queue_declare("late"))
    # Within the period every poller is answered from the same snapshot...
    assert "late" not in _names(await fixed.get_json("/api/queues"))
    clock.advance(PERIOD)
    # ...and once it has passed, the next request takes a new one.
    assert "late" in _names(await fixed.get_json("/api/queues"))


async def test_while_a_listing_is_taken_in_slices_the_previous_one_is_served(
    clock: FakeClock,
) -> None:
    """A snapshot of many queues is taken in slices with the loop given away in between
    (here: a pause after every slice, held until the test lets it go).  A request that comes
    meanwhile is answered from the previous snapshot at once; one that comes after a change
    made through the API waits for a snapshot started after the change."""
    broker = build_broker(None, clock=clock)
    vhost = broker.vhosts["/"]
    for i in range(300):
        vhost.declare_queue(f"q{i}")
    gate: trio.Event | None = None
    paused = trio.Event()

    async def pause() -> None:
        if gate is not None:
            paused.set()
            await gate.wait()

    freshness = Freshness(min_period=PERIOD, max_period=PERIOD)
    snapshots = Snapshots(clock, freshness, step=0.0, pause=pause)
    rates = RateTracker()
    first = await snapshots.queues(broker, rates, 0.0)
    vhost.declare_queue("late")
    clock.advance(PERIOD)
    got: dict[str, QueueListing] = {}

    async def ask(label: str) -> None:
        got[label] = await snapshots.queues(broker, rates, 0.0)

    def names(listing: QueueListing) -> set[str]:
        return {name for name, _ in listing.items(["/"])}

    gate = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, "next")
        await paused.wait()  # the next snapshot is being taken, stopped after a slice
        assert await snapshots.queues(broker, rates, 0.0) is first
        snapshots.invalidate()  # what the app does after a change made through the API
        vhost.declare_queue("after")
        nursery.start_soon(ask, "after the change")
        await trio.testing.wait_all_tasks_blocked()
        assert "after the change" not in got  # it does not get the one in progress
        gate.set()
    assert "late" in names(got["next"]) and "after" not in names(got["next"])
    assert "after" in names(got["after the change"])
    assert "late" not in names(first)


async def test_a_change_made_through_the_api_shows_at_once(fixed: Stack) -> None:
    await fixed.get_json("/api/queues")
    assert (await fixed.request("PUT", "/api/queues/%2F/mine", {"durable": False})).status == 201
    assert "mine" in _names(await fixed.get_json("/api/queues"))


async def test_counts_and_metrics_follow_the_queue_after_the_period(
    fixed: Stack, clock: FakeClock
) -> None:
    """A queue's cached fragment and metric lines are redone once its counters move."""

    def fill(ch: Channel) -> None:
        ch.queue_declare("work")
        for _ in range(3):
            ch.basic_publish("", "work", b"x")

    await fixed.amqp(lambda ch: ch.queue_declare("work"))
    (before,) = [q for q in await fixed.get_json("/api/queues") if q["name"] == "work"]
    text = (await fixed.request("GET", "/metrics", auth=None)).body.decode()
    assert 'amqplite_queue_messages_ready{vhost="/",queue="work"} 0' in text
    await fixed.amqp(fill)
    clock.advance(PERIOD)
    (after,) = [q for q in await fixed.get_json("/api/queues") if q["name"] == "work"]
    text = (await fixed.request("GET", "/metrics", auth=None)).body.decode()
    assert (before["messages_ready"], after["messages_ready"]) == (0, 3)
    assert after["message_stats"]["publish"] == 3
    assert 'amqplite_queue_messages_ready{vhost="/",queue="work"} 3' in text
    assert 'amqplite_queue_messages_published_total{vhost="/",queue="work"} 3' in text


async def test_a_listing_due_takes_the_metrics_in_the_same_pass(
    fixed: Stack, clock: FakeClock
) -> None:
    """Both kinds polled, taken a quarter of a period apart: when the listing is due,
    /metrics (at least half its period old) is taken from the same reading of the queues,
    and both are then kept for the same period."""

    def publish(ch: Channel) -> None:
        ch.basic_publish("", "work", b"x")

    await fixed.amqp(lambda ch: ch.queue_declare("work"))

    async def listed() -> int:
        (work,) = [q for q in await fixed.get_json("/api/queues") if q["name"] == "work"]
        return int(work["messages_ready"])

    async def scraped() -> int:
        text = (await fixed.request("GET", "/metrics", auth=None)).body.decode()
        (line,) = [x for x in text.splitlines() if x.startswith(_READY_WORK)]
        return int(line.rsplit(" ", 1)[1])

    assert await listed() == 0
    clock.advance(PERIOD / 4)
    assert await scraped() == 0  # the listing is not half its period old: taken alone
    await fixed.amqp(publish)
    clock.advance(PERIOD * 3 / 4)  # the listing is due, /metrics three quarters old
    assert await listed() == 1
    assert await scraped() == 1  # taken with the listing
    await fixed.amqp(publish)
    clock.advance(PERIOD / 2)
    assert (await listed(), await scraped()) == (1, 1)  # both kept for the same period
    clock.advance(PERIOD / 2)
    assert (await scraped(), await listed()) == (2, 2)


_READY_WORK = 'amqplite_queue_messages_ready{vhost="/",queue="work"} '


async def test_the_overview_counts_queues_as_the_listing_does(
    fixed: Stack, clock: FakeClock
) -> None:
    """The overview's queue totals are summed while the listing's snapshot is taken: they
    follow the queues after the same period, and a user sees the totals of its vhosts."""
    broker = fixed.broker
    broker.add_vhost("other")
    broker.vhosts["other"].declare_queue("elsewhere")
    user = {"password": "pw", "tags": "management"}
    assert (await fixed.request("PUT", "/api/users/viewer", user)).status in (201, 204)
    grant = {"configure": ".*", "write": ".*", "read": ".*"}
    assert (await fixed.request("PUT", "/api/permissions/other/viewer", grant)).status in (201, 204)
    await fixed.amqp(lambda ch: ch.queue_declare("work"))
    assert (await fixed.get_json("/api/overview"))["queue_totals"]["messages_ready"] == 0

    def fill(ch: Channel) -> None:
        for _ in range(3):
            ch.basic_publish("", "work", b"x")

    await fixed.amqp(fill)
    clock.advance(PERIOD)
    overview = await fixed.get_json("/api/overview")
    assert overview["queue_totals"] == {
        "messages": 3,
        "messages_ready": 3,
        "messages_unacknowledged": 0,
    }
    assert overview["object_totals"]["queues"] == 2
    viewer = await fixed.request("GET", "/api/overview", auth=("viewer", "pw"))
    assert viewer.json()["queue_totals"]["messages_ready"] == 0
    assert viewer.json()["object_totals"]["queues"] == 1
    assert viewer.json()["message_stats"]["publish"] == 0  # its vhosts' queues only


async def test_listings_and_metrics_are_gzipped_for_clients_that_accept_it(fixed: Stack) -> None:
    # ``fixed``: both requests are answered from one snapshot (a live /metrics shows the
    # process's memory, which may change between two requests).
    for i in range(40):
        fixed.broker.vhosts["/"].declare_queue(f"many-{i:02d}")
    for path, auth in (("/api/queues", True), ("/metrics", None)):
        plain = await fixed.request("GET", path, auth=auth)
        packed = await fixed.request("GET", path, auth=auth, headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in plain.headers
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.headers["vary"] == "accept-encoding"
        assert len(packed.body) < len(plain.body) // 4
        assert gzip.decompress(packed.body) == plain.body


async def test_a_client_that_revalidates_gets_304_while_the_body_is_unchanged(
    fixed: Stack, clock: FakeClock
) -> None:
    """Listings and /metrics carry an ETag per representation (plain, gzip); If-None-Match
    with it is answered 304 without a body.  An unchanged listing keeps its tag in the next
    snapshot; a changed one gets a new tag and a 200."""
    for i in range(40):
        fixed.broker.vhosts["/"].declare_queue(f"many-{i:02d}")
    gz = {"Accept-Encoding": "gzip"}
    for path, auth in (("/api/queues", True), ("/metrics", None)):
        first = await fixed.request("GET", path, auth=auth, headers=gz)
        tag = first.headers["etag"]
        again = await fixed.request("GET", path, auth=auth, headers={**gz, "If-None-Match": tag})
        assert (again.status, again.body, again.headers["etag"]) == (304, b"", tag)
        assert "content-length" not in again.headers
        weak = await fixed.request(
            "GET", path, auth=auth, headers={**gz, "If-None-Match": f"W/{tag}"}
        )
        assert weak.status == 304
        plain = await fixed.request("GET", path, auth=auth, headers={"If-None-Match": tag})
        assert plain.status == 200 and plain.headers["etag"] != tag  # another representation
    listing = await fixed.request("GET", "/api/queues", headers=gz)
    clock.advance(PERIOD)  # a new snapshot, the same queues
    same = await fixed.request(
        "GET", "/api/queues", headers={**gz, "If-None-Match": listing.headers["etag"]}
    )
    assert same.status == 304
    await fixed.amqp(lambda ch: ch.queue_declare("new"))
    clock.advance(PERIOD)
    changed = await fixed.request(
        "GET", "/api/queues", headers={**gz, "If-None-Match": listing.headers["etag"]}
    )
    assert changed.status == 200 and changed.headers["etag"] != listing.headers["etag"]
    assert "new" in _names(json.loads(gzip.decompress(changed.body)))


async def test_a_long_listing_made_in_pieces_is_sent_whole(stack: Stack) -> None:
    """1,100 queues: the listing body is made in pieces of 512 fragments and sent as one
    response with its Content-Length (not chunked), plain and gzipped alike."""
    for i in range(1100):
        stack.broker.vhosts["/"].declare_queue(f"long-{i:04d}")
    plain = await stack.request("GET", "/api/queues")
    assert int(plain.headers["content-length"]) == len(plain.body)
    assert [q["name"] for q in plain.json()] == [f"long-{i:04d}" for i in range(1100)]
    packed = await stack.request("GET", "/api/queues", headers={"Accept-Encoding": "gzip"})
    assert [q["name"] for q in json.loads(gzip.decompress(packed.body))] == [
        f"long-{i:04d}" for i in range(1100)
    ]


async def test_bodies_made_of_pieces_from_different_snapshots_are_whole(
    fixed: Stack, clock: FakeClock
) -> None:
    """1,100 queues, one of them in the last piece changed between two snapshots: the next
    listing and /metrics reuse the unchanged pieces (and their gzip), and what is sent is
    still the whole current body, plain and gzipped alike."""
    for i in range(1100):
        fixed.broker.vhosts["/"].declare_queue(f"long-{i:04d}")
    gz = {"Accept-Encoding": "gzip"}
    for path in ("/api/queues", "/metrics"):
        await fixed.request("GET", path, headers=gz)
    await fixed.amqp(lambda ch: ch.basic_publish("", "long-1099", b"x"))
    clock.advance(PERIOD)
    for path in ("/api/queues", "/metrics"):
        packed = await fixed.request("GET", path, headers=gz)
        plain = await fixed.request("GET", path)
        assert gzip.decompress(packed.body) == plain.body
    listing = (await fixed.request("GET", "/api/queues")).json()
    assert [q["messages_ready"] for q in listing] == [0] * 1099 + [1]
    text = (await fixed.request("GET", "/metrics")).body.decode()
    assert 'amqplite_queue_messages_ready{vhost="/",queue="long-1099"} 1' in text
    assert 'amqplite_queue_messages_ready{vhost="/",queue="long-0000"} 0' in text


async def test_pages_as_rabbitmq_answers_them(stack: Stack) -> None:
    vhost = stack.broker.vhosts["/"]
    for i in range(7):
        vhost.declare_queue(f"p-{i}")
    vhost.declare_queue("other")
    page = await stack.get_json("/api/queues?page=2&page_size=3&name=p-")
    assert {k: v for k, v in page.items() if k != "items"} == {
        "filtered_count": 7,
        "item_count": 3,
        "page": 2,
        "page_count": 3,
        "page_size": 3,
        "total_count": 8,
    }
    assert [q["name"] for q in page["items"]] == ["p-3", "p-4", "p-5"]
    last = await stack.get_json("/api/queues/%2F?page=3&page_size=3&name=p-")
    assert [q["name"] for q in last["items"]] == ["p-6"] and last["item_count"] == 1
    default = await stack.get_json("/api/queues?page=1")
    assert default["page_size"] == 100 and default["item_count"] == 8
    assert isinstance(await stack.get_json("/api/queues?page_size=2"), list)  # no page: no pages


@pytest.mark.parametrize(
    ("query", "error", "reason"),
    [
        (
            "page=4&page_size=3",
            "page_out_of_range",
            "Page out of range, page: 4 page size: 3, len: 8",
        ),
        (
            "page=0",
            "invalid_pagination_parameters",
            "Invalid pagination parameters: page number 0, page size undefined",
        ),
        (
            "page=1&page_size=501",
            "invalid_pagination_parameters",
            "Invalid pagination parameters: page number 1, page size 501",
        ),
        ("page=x", "bad_request", "Pagination parameters are invalid"),
    ],
)
async def test_bad_pages_are_refused_with_rabbitmqs_errors(
    stack: Stack, query: str, error: str, reason: str
) -> None:
    for i in range(8):
        stack.broker.vhosts["/"].declare_queue(f"p-{i}")
    reply = await stack.request("GET", f"/api/queues?{query}")
    assert reply.status == 400
    assert reply.json() == {"error": error, "reason": reason}


def test_a_snapshot_is_kept_for_its_cost_over_the_budget_at_most_five_seconds() -> None:
    freshness = Freshness()
    assert freshness.period(0.0005) == 0.0  # a small broker: answered live
    assert freshness.period(0.005) == pytest.approx(2.0)  # 5 ms at 0.25 % of the core
    # 10,000 queues (a listing and its gzip ~40 ms): RabbitMQ's statistics interval.
    assert freshness.period(0.04) == 5.0
