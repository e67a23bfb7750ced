"""The pytest plugin's ``amqplite`` marker and ``amqplite_http_url`` fixture, used as a
project's own tests would use them: a topology file loaded before the test, the HTTP API
started on demand."""

from __future__ import annotations

import pytest

from amqplite.app import RunningBroker
from amqplite.client import connect
from amqplite.client.http import ApiClient

pytest_plugins = ["pytester"]


@pytest.mark.amqplite(topology="data/plugin_topology.yaml", http=True)
def test_the_marker_loads_a_topology_file_and_starts_the_http_api(
    amqplite_broker: RunningBroker,
) -> None:
    assert amqplite_broker.http_url is not None
    api = ApiClient(amqplite_broker.http_url, timeout=5)
    queue = api.get("/api/queues/%2F/orders.eu")
    assert (queue["name"], queue["durable"]) == ("orders.eu", False)
    assert api.get("/api/exchanges/%2F/orders")["type"] == "topic"
    with connect(amqplite_broker.url, timeout=5) as conn, conn.channel() as ch:
        ch.confirm_select()
        ch.publish("orders", "eu.paris", b"order-1")
        ch.wait_for_confirms(5)
        assert ch.queue_declare("orders.eu", passive=True).message_count == 1


def test_amqplite_http_url_starts_the_api_of_this_tests_broker(
    amqplite_http_url: str, amqplite_url: str
) -> None:
    assert amqplite_http_url.startswith("http://127.0.0.1:")
    api = ApiClient(amqplite_http_url, timeout=5)
    with connect(amqplite_url, timeout=5) as conn, conn.channel() as ch:
        ch.queue_declare("seen-by-the-api")
    names = [q["name"] for q in api.get("/api/queues/%2F")]
    assert names == ["seen-by-the-api"]


def test_without_the_marker_the_broker_has_no_http_api_and_no_topology(
    amqplite_broker: RunningBroker,
) -> None:
    assert amqplite_broker.http_url is None
    assert amqplite_broker.call(lambda: sorted(amqplite_broker.broker.vhosts["/"].queues)) == []


def test_an_unknown_marker_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.amqplite(topolgy="t.yaml")
        def test_x(amqplite_broker):
            pass
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert "unknown option(s) ['topolgy']" in result.stdout.str()
    result.assert_outcomes(errors=1)
