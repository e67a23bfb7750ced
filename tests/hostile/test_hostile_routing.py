"""Topic bindings such as ``#.#.#.#.#.#`` cannot make routing explode, and keys are held
to RabbitMQ's short-string bound (255 bytes) whichever way they arrive."""

from __future__ import annotations

import base64
import gc
import http.client
import json
import time

import pika

from amqplite.app import run_in_thread
from amqplite.broker.topic_trie import MAX_KEY_BYTES, TopicTrie

#: Chains of ``#`` as long as a binding key can be (``#.`` x 127 + ``#`` = 255 bytes).
HASH_CHAINS = [".".join(["#"] * depth) for depth in range(1, 129)]


def _key(words: int, last: str = "z") -> str:
    return ".".join(["w"] * (words - 1) + [last])


def test_hash_chains_route_in_bounded_time() -> None:
    trie: TopicTrie[int] = TopicTrie()
    for depth, pattern in enumerate(HASH_CHAINS, 1):
        trie.add(pattern, depth)
    for i in range(5_000):
        trie.add(f"#.#.#.k{i}.#", -i)
    key = _key(128, "k7")  # the longest key a short string holds, never seen before
    gc.collect()  # time the walk, not a collection of the test run's garbage
    gc.disable()
    try:
        started = time.process_time()
        matched = trie.match(key)
        spent = time.process_time() - started
    finally:
        gc.enable()
    assert set(matched) == set(range(1, 129)) | {-7}
    # Each (trie node, word position) at most once: ~128 x 129 states here, ~6 ms.
    # Re-entering # states cost ~180 ms on the previous walk and seconds before that.
    assert spent < 0.06, f"{spent * 1000:.1f} ms"


def _api(port: int, method: str, path: str, body: object) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    token = base64.b64encode(b"guest:guest").decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    connection.request(method, path, json.dumps(body), headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_hash_bindings_through_a_real_client_and_key_bounds_over_http() -> None:
    with run_in_thread(http_port=0) as running:
        assert running.http_port is not None
        connection = pika.BlockingConnection(pika.URLParameters(running.url))
        channel = connection.channel()
        channel.exchange_declare("hostile", "topic")
        channel.queue_declare("chains", exclusive=True)
        channel.queue_declare("plain", exclusive=True)
        for pattern in HASH_CHAINS:
            channel.queue_bind("chains", "hostile", pattern)
        channel.queue_bind("plain", "hostile", "a.b")
        for n in range(50):  # a flood of never-seen keys of up to 127 words
            channel.basic_publish("hostile", _key(127 - n % 64, str(n)), b"x")
        channel.basic_publish("hostile", "a.b", b"plain")
        assert (
            channel.queue_declare("chains", passive=True).method.message_count == 51
        )  # "a.b" matches the chains too
        assert channel.queue_declare("plain", passive=True).method.message_count == 1
        connection.close()
        # Keys over 255 bytes can only come through HTTP: refused there too.
        too_long = "#." * 128 + "#"
        status = _api(running.http_port, "PUT", "/api/queues/%2F/long", {})
        assert status == 201
        status = _api(
            running.http_port,
            "POST",
            "/api/bindings/%2F/e/amq.topic/q/long",
            {"routing_key": too_long},
        )
        assert status == 400
        publish = {"routing_key": "a." * 128, "payload": "x", "payload_encoding": "string"}
        assert len(publish["routing_key"].encode()) > MAX_KEY_BYTES
        status = _api(running.http_port, "POST", "/api/exchanges/%2F/amq.topic/publish", publish)
        assert status == 400
        ok = {**publish, "routing_key": "a.b", "properties": {}}
        assert _api(running.http_port, "POST", "/api/exchanges/%2F/amq.topic/publish", ok) == 200
