"""Dead-letter browse, filter, summary, replay and delete over HTTP, with pika making the
dead letters through a real AMQP connection."""

from __future__ import annotations

import time

import pika  # type: ignore[import-untyped]
import trio
from http_support import Channel, Stack, make_dead_letters, reject_all

DLQ = "/api/queues/%2F/dlq"


async def dead_letters(stack: Stack) -> None:
    await stack.amqp(make_dead_letters)
    assert stack.broker.vhosts["/"].queues["dlq"].message_count == 5


async def test_browse_lists_dead_letters_in_order_with_parsed_x_death(stack: Stack) -> None:
    await dead_letters(stack)
    messages = await stack.get_json(f"{DLQ}/messages")
    assert [m["payload"] for m in messages] == ["job 0", "job 1", "job 2", "late 0", "late 1"]
    assert [m["position"] for m in messages] == [0, 1, 2, 3, 4]
    first = messages[0]
    (death,) = first["x_death"]
    assert {k: death[k] for k in ("reason", "queue", "exchange", "routing-keys", "count")} == {
        "reason": "rejected",
        "queue": "work",
        "exchange": "work.x",
        "routing-keys": ["job"],
        "count": 1,
    }
    assert abs(death["time"] - time.time()) < 60
    assert first["origin"] == {
        "reason": "rejected",
        "queue": "work",
        "exchange": "work.x",
        "routing_keys": ["job"],
        "time": death["time"],
    }
    assert (first["deaths"], messages[3]["origin"]["queue"]) == (1, "other")
    assert first["properties"]["message_id"] == "job-0"
    assert first["properties"]["headers"]["tenant"] == "a"
    assert messages[3]["x_death"][0]["reason"] == "expired"
    assert messages[3]["x_death"][0]["queue"] == "other"
    preview = await stack.get_json(f"{DLQ}/messages?truncate=3&limit=1")
    assert (preview[0]["payload"], preview[0]["payload_bytes"], preview[0]["truncated"]) == (
        "job",
        5,
        True,
    )


async def test_browsing_does_not_consume_reorder_or_mark_redelivered(stack: Stack) -> None:
    await dead_letters(stack)
    for _ in range(3):
        await stack.get_json(f"{DLQ}/messages")
    queue = stack.broker.vhosts["/"].queues["dlq"]
    assert (queue.message_count, queue.unacked_count, queue.stats.delivered) == (5, 0, 0)

    def drain(ch: Channel) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        while True:
            method, _, body = ch.basic_get("dlq", auto_ack=True)
            if method is None:
                return out
            out.append((body, method.redelivered))

    got = await stack.amqp(drain)
    assert got == [
        (b"job 0", False),
        (b"job 1", False),
        (b"job 2", False),
        (b"late 0", False),
        (b"late 1", False),
    ]


async def test_browse_filters_by_reason_origin_key_header_time_and_pages(stack: Stack) -> None:
    await dead_letters(stack)

    async def payloads(query: str) -> list[str]:
        return [m["payload"] for m in await stack.get_json(f"{DLQ}/messages?{query}")]

    assert await payloads("reason=rejected") == ["job 0", "job 1", "job 2"]
    assert await payloads("reason=expired") == ["late 0", "late 1"]
    assert await payloads("queue=other") == ["late 0", "late 1"]
    assert await payloads("exchange=work.x&routing_key=job") == ["job 0", "job 1", "job 2"]
    assert await payloads("routing_key=nope") == []
    assert await payloads("header.tenant=a") == ["job 0", "job 1"]
    assert await payloads("reason=rejected&header.tenant=b") == ["job 2"]
    assert await payloads("limit=2&offset=1") == ["job 1", "job 2"]
    now = int(time.time())
    assert len(await payloads(f"since={now - 60}&until={now + 60}")) == 5
    assert await payloads(f"since={now + 60}") == []
    assert len(await payloads("until=2100-01-01T00:00:00Z")) == 5
    assert (await stack.request("GET", f"{DLQ}/messages?since=yesterday")).status == 400


async def test_summary_groups_counts_by_reason_and_origin(stack: Stack) -> None:
    await dead_letters(stack)
    summary = await stack.get_json(f"{DLQ}/messages/summary")
    assert summary["total"] == 5
    assert summary["by_reason"] == [
        {"reason": "rejected", "count": 3},
        {"reason": "expired", "count": 2},
    ]
    assert summary["by_origin"] == [
        {"queue": "work", "exchange": "work.x", "count": 3},
        {"queue": "other", "exchange": "", "count": 2},
    ]
    filtered = await stack.get_json(f"{DLQ}/messages/summary?header.tenant=b")
    assert filtered["total"] == 1


async def test_dry_run_replay_reports_without_moving_anything(stack: Stack) -> None:
    await dead_letters(stack)
    reply = await stack.request("POST", f"{DLQ}/replay", {"reason": "rejected", "dry_run": True})
    report = reply.json()
    assert (report["dry_run"], report["selected"], report["replayed"]) == (True, 3, 3)
    # By default back into the queue named in x-death, through the default exchange.
    assert report["destinations"] == [{"exchange": "", "routing_key": "work", "count": 3}]
    assert report["queues"] == [{"queue": "work", "count": 3}]
    vhost = stack.broker.vhosts["/"]
    assert (vhost.queues["dlq"].message_count, vhost.queues["work"].message_count) == (5, 0)


async def test_replay_goes_back_to_the_dead_queue_not_to_siblings_on_the_origin_exchange(
    stack: Stack,
) -> None:
    await dead_letters(stack)
    vhost = stack.broker.vhosts["/"]
    vhost.declare_queue("audit")
    vhost.bind_queue("audit", "work.x", "job")  # a sibling of "work" on its origin exchange
    dry = await stack.request("POST", f"{DLQ}/replay", {"reason": "rejected", "dry_run": True})
    assert dry.json()["queues"] == [{"queue": "work", "count": 3}]
    explicit = {"reason": "rejected", "to_exchange": "work.x", "dry_run": True}
    dry = await stack.request("POST", f"{DLQ}/replay", explicit)
    assert sorted((q["queue"], q["count"]) for q in dry.json()["queues"]) == [
        ("audit", 3),
        ("work", 3),
    ]
    assert dry.json()["destinations"] == [{"exchange": "work.x", "routing_key": "job", "count": 3}]
    assert (vhost.queues["audit"].message_count, vhost.queues["work"].message_count) == (0, 0)

    report = (await stack.request("POST", f"{DLQ}/replay", {"origin_queue": "work"})).json()
    assert (report["replayed"], "queues" in report) == (3, False)
    assert (vhost.queues["audit"].message_count, vhost.queues["work"].message_count) == (0, 3)
    # The explicit choice still reaches every queue bound to the origin exchange.
    await stack.amqp(reject_all)
    report = (await stack.request("POST", f"{DLQ}/replay", {"to_exchange": "work.x"})).json()
    assert report["replayed"] == 3
    assert (vhost.queues["audit"].message_count, vhost.queues["work"].message_count) == (3, 3)
    to_queue = await stack.request("POST", f"{DLQ}/replay", {"to_queue": "nope"})
    assert to_queue.status == 404 and "no queue 'nope'" in to_queue.json()["reason"]


async def test_replay_moves_dead_letters_back_with_x_replayed_header(stack: Stack) -> None:
    await dead_letters(stack)
    report = (await stack.request("POST", f"{DLQ}/replay", {"origin_queue": "work"})).json()
    assert (report["selected"], report["replayed"], report["unroutable"]) == (3, 3, 0)
    vhost = stack.broker.vhosts["/"]
    assert vhost.queues["dlq"].message_count == 2  # the expired ones stay
    assert [m["payload"] for m in await stack.get_json(f"{DLQ}/messages")] == ["late 0", "late 1"]

    def take(ch: Channel) -> list[tuple[bytes, int, str]]:
        out: list[tuple[bytes, int, str]] = []
        while True:
            method, props, body = ch.basic_get("work", auto_ack=True)
            if method is None:
                return out
            out.append((body, props.headers["x-replayed"], props.message_id))

    assert await stack.amqp(take) == [
        (b"job 0", 1, "job-0"),
        (b"job 1", 1, "job-1"),
        (b"job 2", 1, "job-2"),
    ]


async def test_a_poison_message_counts_its_replays(stack: Stack) -> None:
    await dead_letters(stack)
    for round_ in (1, 2):
        await stack.request(
            "POST",
            f"{DLQ}/replay",
            {"reason": "rejected", "header.tenant": "b"} | {"headers": {"tenant": "b"}},
        )
        assert await stack.amqp(reject_all) == 1
        (msg,) = await stack.get_json(f"{DLQ}/messages?header.tenant=b")
        assert msg["replayed"] == round_
        assert msg["x_death"][0]["count"] == round_ + 1


async def test_unroutable_replay_keeps_the_message_and_reports_it(stack: Stack) -> None:
    await dead_letters(stack)
    to_origin_exchange = {"reason": "rejected", "to_exchange": "work.x"}
    stack.broker.vhosts["/"].unbind_queue("work", "work.x", "job")
    report = (await stack.request("POST", f"{DLQ}/replay", to_origin_exchange)).json()
    assert (report["replayed"], report["unroutable"]) == (0, 3)
    assert stack.broker.vhosts["/"].queues["dlq"].message_count == 5
    stack.broker.vhosts["/"].delete_exchange("work.x")
    report = (await stack.request("POST", f"{DLQ}/replay", {"reason": "rejected"} | {
        "routing_key": "job"  # the origin exchange (gone), with this key
    })).json()  # fmt: skip
    assert (report["replayed"], report["failed"]) == (0, 3)
    assert "no exchange 'work.x'" in report["errors"][0]["reason"]
    assert stack.broker.vhosts["/"].queues["dlq"].message_count == 5
    # By default the queue named in x-death: gone too, so nothing routes and all stay.
    stack.broker.vhosts["/"].delete_queue("work")
    report = (await stack.request("POST", f"{DLQ}/replay", {"reason": "rejected"})).json()
    assert (report["replayed"], report["unroutable"]) == (0, 3)
    assert stack.broker.vhosts["/"].queues["dlq"].message_count == 5


async def test_replay_to_an_override_destination_with_a_rate_and_limit(stack: Stack) -> None:
    await dead_letters(stack)
    stack.broker.vhosts["/"].declare_queue("retry")
    started = trio.current_time()
    body = {
        "reason": "expired",
        "exchange": "amq.default",
        "routing_key": "retry",
        "rate": 10,
        "limit": 2,
    }
    report = (await stack.request("POST", f"{DLQ}/replay", body)).json()
    assert (report["selected"], report["replayed"]) == (2, 2)
    assert trio.current_time() - started >= 0.09  # two batches of one, 100 ms apart
    vhost = stack.broker.vhosts["/"]
    assert (vhost.queues["retry"].message_count, vhost.queues["dlq"].message_count) == (2, 3)
    assert (await stack.request("POST", f"{DLQ}/replay", {"exchange": "nope"})).status == 404
    assert (await stack.request("POST", f"{DLQ}/replay", {"rate": -1})).status == 400


async def test_replay_by_id_moves_exactly_that_message(stack: Stack) -> None:
    await dead_letters(stack)
    messages = await stack.get_json(f"{DLQ}/messages")
    report = (await stack.request("POST", f"{DLQ}/replay", {"ids": [messages[1]["id"]]})).json()
    assert report["replayed"] == 1
    assert [m["payload"] for m in await stack.get_json(f"{DLQ}/messages")] == [
        "job 0",
        "job 2",
        "late 0",
        "late 1",
    ]


async def test_delete_removes_selected_dead_letters_with_a_count(stack: Stack) -> None:
    await dead_letters(stack)
    reply = await stack.request("POST", f"{DLQ}/messages/delete", {"reason": "expired"})
    assert reply.json() == {"deleted": 2}
    assert [m["payload"] for m in await stack.get_json(f"{DLQ}/messages")] == [
        "job 0",
        "job 1",
        "job 2",
    ]
    queue = stack.broker.vhosts["/"].queues["dlq"]
    assert (queue.message_count, queue.message_bytes) == (3, 15)
    everything = await stack.request("POST", f"{DLQ}/messages/delete", {"all": True})
    assert everything.json() == {"deleted": 3}
    assert queue.message_count == 0


async def test_delete_without_a_filter_needs_all_and_dry_run_deletes_nothing(
    stack: Stack,
) -> None:
    await dead_letters(stack)
    queue = stack.broker.vhosts["/"].queues["dlq"]
    for body in ({}, {"limit": 2}, {"all": False}, {"dry_run": False}):
        reply = await stack.request("POST", f"{DLQ}/messages/delete", body)
        assert reply.status == 400, body
        assert '"all": true' in reply.json()["reason"]
        assert queue.message_count == 5
    dry = await stack.request("POST", f"{DLQ}/messages/delete", {"all": True, "dry_run": True})
    assert dry.json() == {"dry_run": True, "selected": 5, "deleted": 0}
    dry = await stack.request(
        "POST", f"{DLQ}/messages/delete", {"reason": "expired", "dry_run": True}
    )
    assert dry.json() == {"dry_run": True, "selected": 2, "deleted": 0}
    assert queue.message_count == 5
    assert (await stack.request("POST", f"{DLQ}/messages/delete", {"all": "yes"})).status == 400
    assert queue.message_count == 5


async def test_replayed_messages_reach_a_waiting_consumer_at_once(stack: Stack) -> None:
    await dead_letters(stack)
    got: list[bytes] = []
    ready = trio.Event()
    token = trio.lowlevel.current_trio_token()

    def consume() -> None:
        conn = pika.BlockingConnection(pika.URLParameters(stack.amqp_url))
        ch = conn.channel()
        ch.basic_consume("work", lambda c, m, p, body: got.append(body), auto_ack=True)
        conn.process_data_events(time_limit=0.2)
        trio.from_thread.run_sync(ready.set, trio_token=token)
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.05)
        conn.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, consume)
        with trio.fail_after(10):
            await ready.wait()
            await stack.request("POST", f"{DLQ}/replay", {"reason": "rejected"})
    assert got == [b"job 0", b"job 1", b"job 2"]


async def test_rate_limited_replay_skips_messages_that_left_the_dlq_meanwhile(stack: Stack) -> None:
    await dead_letters(stack)
    vhost = stack.broker.vhosts["/"]
    reports: list[dict[str, object]] = []

    async def replay() -> None:
        reply = await stack.request("POST", f"{DLQ}/replay", {"reason": "rejected", "rate": 5})
        reports.append(reply.json())

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(replay)
            # The first batch (one message) goes at once; the next waits 200 ms.
            while vhost.queues["work"].message_count == 0:
                await trio.sleep(0.005)
            vhost.purge_queue("dlq")
    (report,) = reports
    assert (report["selected"], report["replayed"]) == (1, 1)
    assert vhost.queues["work"].message_count == 1
