"""``amqplite topology plan | apply | export | import`` against a running amqplite."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from ops_support import DATA, Cli, Stack

from amqplite.client import ChannelClosed, connect
from amqplite.topology import load_config
from amqplite.topology.yaml_writer import config_to_yaml

#: shop-app's password "s3cret" as RabbitMQ 3.10 hashed it in the sample export.
SHOP_APP_HASH = "gx1lfnjWBorRDJ4aaxIWOQrdXB/anKHU5TpzOE08wGZ7/i6x"
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "topology.example.yaml"

SMALL = """
exchanges:
  orders: {type: topic}
queues:
  orders.eu:
    queue_type: quorum
    arguments: {message_ttl: 60s, dead_letter_exchange: amq.direct}
bindings:
  - {source: orders, destination: orders.eu, routing_key: "eu.#"}
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


def _key(specs: object) -> list[str]:
    """Specs as sorted comparable text (they hold dicts, so they are not hashable)."""
    assert isinstance(specs, tuple)
    return sorted(
        json.dumps(attrs.asdict(s, filter=lambda a, _v: a.eq is True), sort_keys=True, default=str)
        for s in specs
    )


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line]


def test_plan_over_amqp_shows_creates_then_apply_then_unchanged_and_ensure(
    cli: Cli, stack: Stack, small: Path
) -> None:
    r = cli("topology", "plan", str(small), "--url", stack.url)
    assert r.code == 0, r.err
    assert _lines(r.out) == [
        "= unchanged vhost /",
        "+ create    exchange orders in vhost '/'",
        "+ create    queue orders.eu in vhost '/'",
        "+ create    binding orders -> queue orders.eu ('eu.#') in vhost '/'",
        "Plan: 3 to create, 0 to update, 1 unchanged, 0 conflicting",
    ]
    r = cli("topology", "apply", str(small), "--url", stack.url)
    assert r.code == 0, r.err
    assert r.out.splitlines()[-1] == "Applied: 3 created, 0 updated, 1 unchanged"
    with connect(stack.url) as conn, conn.channel() as ch:
        ch.confirm_select()
        ch.publish("orders", "eu.fr", b"hi", mandatory=True)
        assert ch.wait_for_confirms(5).ok  # the binding is there
    r = cli("topology", "plan", str(small), "--url", stack.url)
    assert r.code == 0, r.err
    assert "= unchanged queue orders.eu in vhost '/'" in r.out
    assert "~ ensure    binding orders -> queue orders.eu ('eu.#') in vhost '/'" in r.out
    assert r.out.splitlines()[-1].endswith("0 conflicting, 1 to ensure")


def test_plan_over_amqp_reports_the_brokers_406_as_a_conflict_and_apply_refuses(
    cli: Cli, stack: Stack, small: Path
) -> None:
    with connect(stack.url) as conn, conn.channel() as ch:
        ch.queue_declare("orders.eu", durable=True, arguments={"x-message-ttl": 1000})
    r = cli("topology", "plan", str(small), "--url", stack.url)
    assert r.code == 1
    conflict = next(line for line in r.out.splitlines() if line.startswith("!"))
    assert conflict.startswith("! conflict  queue orders.eu in vhost '/': PRECONDITION_FAILED")
    assert "x-message-ttl" in conflict or "x-queue-type" in conflict
    assert conflict.endswith(f"[{small}:5]")
    r = cli("topology", "apply", str(small), "--url", stack.url)
    assert r.code == 1
    assert r.err.splitlines()[-1] == "amqplite: error: 1 conflict; nothing applied"
    with connect(stack.url) as conn:
        with pytest.raises(ChannelClosed) as info:  # the exchange was not created either
            conn.channel().exchange_declare("orders", "topic", passive=True)
        assert info.value.reply_code == 404


def test_plan_over_amqp_says_vhosts_cannot_be_created(
    cli: Cli, stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "vh.yaml"
    path.write_text("vhosts:\n  staging:\n    queues: {q: {}}\n", encoding="utf-8")
    r = cli("topology", "plan", str(path), "--url", stack.url)
    assert r.code == 1
    assert "! conflict  vhost staging: cannot open vhost 'staging'" in r.out
    assert "AMQP cannot create vhosts" in r.out


def test_plan_over_api_sees_argument_differences_and_apply_over_api_creates(
    cli: Cli, stack: Stack, small: Path
) -> None:
    r = cli("topology", "plan", str(small), "--api", stack.api, "--json")
    assert r.code == 0, r.err
    actions = {(i["kind"], i["name"]): i["action"] for i in json.loads(r.out)["items"]}
    assert actions[("queue", "orders.eu")] == "create"
    r = cli("topology", "apply", str(small), "--api", stack.api)
    assert r.code == 0, r.err
    small.write_text(SMALL.replace("60s", "30s"), encoding="utf-8")
    r = cli("topology", "plan", str(small), "--api", stack.api)
    assert r.code == 1
    assert "x-message-ttl: existing 60000, file 30000" in r.out
    assert "= unchanged binding orders -> queue orders.eu ('eu.#') in vhost '/'" in r.out


def test_unreachable_broker_is_one_error_line(cli: Cli, small: Path) -> None:
    r = cli("topology", "plan", str(small), "--url", "amqp://guest:guest@127.0.0.1:1/")
    assert (r.code, r.out) == (1, "")
    assert r.err == "amqplite: error: cannot connect to 127.0.0.1:1: Connection refused\n"
    r = cli("topology", "export", "--api", "http://guest:guest@127.0.0.1:1")
    assert r.code == 1
    assert r.err.splitlines()[-1] == (
        "amqplite: error: cannot reach the HTTP API at http://127.0.0.1:1: Connection refused"
    )


def test_wrong_api_password_is_one_error_line(cli: Cli, stack: Stack) -> None:
    bad = stack.api.replace("guest:guest@", "guest:nope@")
    r = cli("topology", "export", "--api", bad)
    assert r.code == 1
    assert r.err.splitlines()[-1].startswith("amqplite: error: 401 unauthorised")


def test_yaml_to_broker_to_definitions_to_broker_to_yaml_is_stable(
    cli: Cli, tmp_path: Path
) -> None:
    from ops_support import stack_in_thread

    source = tmp_path / "source.yaml"
    source.write_text(
        EXAMPLE.read_text(encoding="utf-8")
        + "\nvhosts:\n  staging:\n    queues: {jobs: {queue_type: quorum}}\n"
        + f"users:\n  app:\n    password_hash: rabbitsha256${SHOP_APP_HASH}\n"
        + "    tags: [monitoring]\n"
        + "    permissions:\n      /: {configure: '', write: '.*', read: '.*'}\n"
        + "      staging: {configure: '.*', write: '.*', read: '.*'}\n",
        encoding="utf-8",
    )
    defs, first, second = tmp_path / "defs.json", tmp_path / "first.yaml", tmp_path / "second.yaml"
    with stack_in_thread() as a:
        assert cli("topology", "apply", str(source), "--api", a.api).code == 0
        r = cli("topology", "export", "--format", "definitions", "-o", str(defs), "--api", a.api)
        assert r.code == 0, r.err
        assert cli("topology", "export", "-o", str(first), "--api", a.api).code == 0
    with stack_in_thread() as b:
        r = cli("topology", "import", str(defs), "--api", b.api)
        assert r.code == 0, r.err
        assert cli("topology", "export", "-o", str(second), "--api", b.api).code == 0
    # identical but for the header line naming where it was exported from
    assert first.read_text().split("\n", 1)[1] == second.read_text().split("\n", 1)[1]
    exported = load_config(second)
    original = load_config(source)
    for name in ("/", "staging"):
        want, got = original.vhost(name), exported.vhost(name)
        assert want is not None and got is not None
        for kind in ("exchanges", "queues", "bindings"):
            assert _key(getattr(got, kind)) == _key(getattr(want, kind)), (name, kind)
    app = next(u for u in exported.users if u.name == "app")
    assert app.password_hash.startswith("rabbitsha256$gx1lfn")
    assert config_to_yaml(exported) == config_to_yaml(load_config(first))


def test_rabbitmq_definitions_sample_imports_cleanly_to_yaml(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "shop.yaml"
    r = cli("topology", "import", str(DATA / "rabbitmq-definitions.json"), "-o", str(out))
    assert r.code == 0, r.err
    assert "warning" not in r.err
    config = load_config(out)
    shop = config.vhost("shop")
    assert shop is not None
    queues = {q.name: q for q in shop.queues}
    assert queues["orders.eu"].arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "dlx",
        "x-dead-letter-routing-key": "orders.failed",
        "x-delivery-limit": 5,
    }
    assert queues["audit.vip"].durable is False
    assert {(b.source, b.destination, b.routing_key) for b in shop.bindings} >= {
        ("orders", "audit", "*.vip"),
        ("orders", "orders.eu", "eu.#"),
    }
    users = {u.name: u for u in config.users}
    assert users["shop-app"].password_hash.startswith("rabbitsha256$")
    assert [(p.vhost, p.configure) for p in config.permissions_of("shop-app")] == [
        ("shop", "^shop\\.")
    ]


def test_rabbitmq_definitions_sample_applies_to_amqplite_and_routes(cli: Cli, stack: Stack) -> None:
    r = cli("topology", "import", str(DATA / "rabbitmq-definitions.json"), "--api", stack.api)
    assert r.code == 0, r.err
    r = cli("route", "orders", "eu.vip", "--vhost", "shop", "--api", stack.api, "--json",
            "--header", "tier=vip", "--header", "region=eu")  # fmt: skip
    assert r.code == 0, r.err
    assert json.loads(r.out)["queues"] == ["audit.vip", "orders.all", "orders.eu"]


def test_imported_rabbitmq_user_logs_in_with_its_rabbitmq_password(cli: Cli, stack: Stack) -> None:
    from amqplite.broker import verify_password

    if not verify_password("s3cret", f"rabbitsha256${SHOP_APP_HASH}"):
        pytest.skip("amqplite.broker.auth cannot verify RabbitMQ password hashes yet")
    r = cli("topology", "import", str(DATA / "rabbitmq-definitions.json"), "--api", stack.api)
    assert r.code == 0, r.err
    url = stack.url.replace("guest:guest@", "shop-app:s3cret@").removesuffix("/") + "/shop"
    with connect(url) as conn:
        assert conn.is_open


def test_import_warns_about_what_does_not_carry_over(cli: Cli, tmp_path: Path) -> None:
    defs = json.loads((DATA / "rabbitmq-definitions.json").read_text())
    defs["policies"] = [{"vhost": "shop", "name": "ha", "pattern": ".*", "definition": {}}]
    defs["exchanges"].append(
        {"name": "delayed", "vhost": "shop", "type": "x-delayed-message", "durable": True,
         "auto_delete": False, "internal": False, "arguments": {"x-delayed-type": "direct"}}
    )  # fmt: skip
    defs["queues"][0]["arguments"]["x-max-in-memory-length"] = 10
    path = tmp_path / "defs.json"
    path.write_text(json.dumps(defs), encoding="utf-8")
    r = cli("topology", "import", str(path))
    assert r.code == 0, r.err
    warnings = [line for line in r.err.splitlines() if "warning" in line]
    assert len(warnings) == 3
    assert any("1 policies not imported" in w for w in warnings)
    assert any("'x-delayed-message' is not supported" in w for w in warnings)
    assert any("'x-max-in-memory-length' is not supported" in w for w in warnings)


def test_import_of_a_non_json_file_is_one_error_line(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "defs.json"
    path.write_text("{nope", encoding="utf-8")
    r = cli("topology", "import", str(path))
    assert r.code == 1
    assert r.err.startswith(f"amqplite: error: {path} is not JSON")


def test_apply_over_amqp_of_a_large_topology_shows_progress(
    cli: Cli, stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("queues:\n" + "".join(f"  q{i}: {{}}\n" for i in range(120)), encoding="utf-8")
    r = cli("topology", "apply", str(path), "--url", stack.url)
    assert r.code == 0, r.err
    assert r.err.splitlines() == ["amqplite: applied 100/120", "amqplite: applied 120/120"]
    assert r.out.splitlines()[-1] == "Applied: 120 created, 0 updated, 1 unchanged"


REPO = Path(__file__).resolve().parents[2]
USES_SHOP = """
queues:
  shop.audit: {arguments: {dead_letter_exchange: shop}}
bindings:
  - {source: shop, destination: shop.audit, routing_key: "#"}
"""


@pytest.mark.parametrize("target", ["--api", "--url"])
def test_a_file_may_use_exchanges_the_broker_already_has(
    cli: Cli, stack: Stack, tmp_path: Path, target: str
) -> None:
    path = tmp_path / "uses-shop.yaml"
    path.write_text(USES_SHOP, encoding="utf-8")
    where = stack.api if target == "--api" else stack.url
    r = cli("topology", "validate", str(path))  # on its own, the file is incomplete...
    assert r.code == 1
    assert "bindings[0].source: no exchange 'shop' is declared" in r.err
    assert "hint: a name the file uses without declaring it is fine if the broker" in r.err
    r = cli("topology", "plan", str(path), target, where)  # ...and the broker lacks it too
    assert r.code == 1
    assert (
        "! conflict  exchange shop in vhost '/': no exchange 'shop' in vhost '/': the file does "
        "not declare it and the broker does not have it"
    ) in r.out
    assert cli("topology", "apply", str(path), target, where).code == 1
    with connect(stack.url) as conn, conn.channel() as ch:
        with pytest.raises(ChannelClosed):  # nothing was applied
            conn.channel().queue_declare("shop.audit", passive=True)
        ch.exchange_declare("shop", "topic", durable=True)
    r = cli("topology", "apply", str(path), target, where)
    assert r.code == 0, r.out + r.err
    with connect(stack.url) as conn, conn.channel() as ch:
        ch.confirm_select()
        ch.publish("shop", "eu.order", b"x", mandatory=True)
        assert ch.wait_for_confirms(5).ok
        got = ch.basic_get("shop.audit", no_ack=True)
        assert got is not None and got.body == b"x"


def test_a_plain_password_in_the_file_converges(cli: Cli, stack: Stack) -> None:
    config = str(REPO / "config" / "amqplite.yaml")  # guest/guest, as the stack has it
    r = cli("topology", "plan", config, "--api", stack.api)
    assert r.code == 0, r.err
    assert "= unchanged user guest" in r.out
    assert "update" not in r.out.replace("0 to update", "")


OLD_EXAMPLE = """
users:
  guest:
    password: guest
    permissions:
      "/": {configure: ".*", write: ".*", read: ".*"}
queues:
  work: {}
"""


def test_removing_your_own_administrator_tag_is_refused_unless_forced(
    cli: Cli, stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "old-example.yaml"
    path.write_text(OLD_EXAMPLE, encoding="utf-8")
    r = cli("topology", "plan", str(path), "--api", stack.api)
    assert r.code == 1
    (line,) = [line for line in r.out.splitlines() if line.startswith("!")]
    assert line.startswith(
        "! conflict  user guest: this removes your own administrator tag (you are applying as "
        "'guest'): the HTTP API would answer 401 from then on; keep tags ['administrator'] in "
        "the file, or apply with --force"
    )
    r = cli("topology", "apply", str(path), "--api", stack.api)
    assert r.code == 1 and r.err.splitlines()[-1] == "amqplite: error: 1 conflict; nothing applied"
    assert cli("queues", "--api", stack.api).code == 0  # still an administrator
    r = cli("topology", "apply", str(path), "--api", stack.api, "--force")
    assert r.code == 0, r.err
    assert "forced: this removes your own administrator tag" in r.out
    r = cli("queues", "--api", stack.api)
    assert r.code == 1 and "401" in r.err


@pytest.mark.parametrize(
    "example", sorted(p.parent.name for p in REPO.glob("examples/*/topology.yaml"))
)
def test_shipped_examples_keep_guest_an_administrator(cli: Cli, stack: Stack, example: str) -> None:
    path = REPO / "examples" / example / "topology.yaml"
    r = cli("topology", "plan", str(path), "--api", stack.api)
    assert r.code == 0, r.out
    assert "= unchanged user guest" in r.out


def test_vhost_option_applies_the_file_into_another_vhost(
    cli: Cli, stack: Stack, small: Path
) -> None:
    r = cli("topology", "apply", str(small), "--api", stack.api, "--vhost", "staging")
    assert r.code == 0, r.err
    assert "+ create    queue orders.eu in vhost 'staging'" in r.out
    vhosts = stack.call(lambda: {n: set(v.queues) for n, v in stack.running.broker.vhosts.items()})
    assert "orders.eu" in vhosts["staging"] and "orders.eu" not in vhosts["/"]
    r = cli("topology", "plan", str(small), "--api", stack.api, "--vhost", "staging")
    assert r.code == 0 and r.out.splitlines()[-1].startswith("Plan: 0 to create"), r.out
