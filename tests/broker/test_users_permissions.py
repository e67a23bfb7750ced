"""Users, password hashes and RabbitMQ-style per-vhost permissions."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from broker_helpers import RecordingSink, msg

from amqplite.broker import Broker, Channel, FakeClock, UserDB, hash_password, verify_password
from amqplite.broker.passwords import hash_scrypt
from amqplite.errors import AMQPConnectionError, ChannelError, ReplyCode

FAST = {"n": 2**4}  # cheap scrypt parameters: the tests check behaviour, not cost


def test_password_hash_is_rabbitmqs_salted_sha256() -> None:
    first = hash_password("secret")
    second = hash_password("secret")
    assert first != second
    scheme, encoded = first.split("$")
    salted = base64.b64decode(encoded)
    assert scheme == "rabbitsha256" and len(salted) == 4 + 32
    assert hashlib.sha256(salted[:4] + b"secret").digest() == salted[4:]
    assert verify_password("secret", first)
    assert not verify_password("Secret", first)
    assert not verify_password("secret", "garbage")
    assert not verify_password("secret", "md5$1$2$3$4$5")


def test_legacy_scrypt_hashes_still_verify_within_a_memory_bound() -> None:
    stored = hash_scrypt("secret", **FAST)
    scheme, n, r, p, _salt, _digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16", "8", "1")
    assert verify_password("secret", stored) and not verify_password("Secret", stored)
    # A stored hash asking for 1 GiB of scrypt memory never runs.
    greedy = stored.replace("scrypt$16$", f"scrypt${2**20}$", 1)
    assert not verify_password("secret", greedy)


def test_authenticate_checks_the_password() -> None:
    users = UserDB()
    users.add_user("alice", hash_password("pw"), tags=["administrator"])
    user = users.authenticate("alice", "pw")
    assert user is not None and user.tags == ("administrator",)
    assert users.authenticate("alice", "wrong") is None
    assert users.authenticate("nobody", "pw") is None


def test_permissions_are_unanchored_regexes_and_empty_denies() -> None:
    users = UserDB()
    users.add_user("bob", hash_password("pw"))
    users.set_permissions("bob", "/", "^amq\\.gen-.*|^bob-", ".*", "")
    bob = users.users["bob"]
    assert bob.can("/", "configure", "amq.gen-abc")
    assert bob.can("/", "configure", "bob-queue")
    assert not bob.can("/", "configure", "alice-queue")
    assert bob.can("/", "write", "")  # the default exchange is checked as amq.default
    assert not bob.can("/", "read", "anything")
    assert not bob.can("other", "write", "x")


def broker_with(configure: str, write: str, read: str) -> Broker:
    broker = Broker(clock=FakeClock())
    broker.add_vhost("/")
    broker.users.add_user("bob", hash_password("pw"))
    broker.users.set_permissions("bob", "/", configure, write, read)
    return broker


def test_connection_needs_permissions_on_the_vhost() -> None:
    broker = broker_with(".*", ".*", ".*")
    broker.users.add_user("eve", hash_password("pw"))
    with pytest.raises(AMQPConnectionError) as exc:
        broker.open_connection("/", "eve")
    assert exc.value.reply_code == ReplyCode.NOT_ALLOWED
    with pytest.raises(AMQPConnectionError):
        broker.open_connection("/nope", "bob")
    broker.open_connection("/", "bob")


def test_operations_check_configure_write_and_read() -> None:
    broker = broker_with("^bob-", "^bob-|^amq\\.default$", "^bob-")
    ch = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    ch.declare_queue("bob-q")
    ch.declare_exchange("bob-x", "fanout")
    ch.bind_queue("bob-q", "bob-x", "")
    ch.publish("", "bob-q", msg(routing_key="bob-q"))
    assert ch.get("bob-q") is not None
    denied: list[Callable[[Channel], object]] = [
        lambda c: c.declare_queue("other"),
        lambda c: c.declare_exchange("other-x", "direct"),
        lambda c: c.bind_queue("bob-q", "amq.fanout", ""),  # read on amq.fanout
        lambda c: c.publish("amq.fanout", "", msg(exchange="amq.fanout")),
        lambda c: c.declare_queue(""),  # configure on amq.gen-…
    ]
    for n, action in enumerate(denied, start=2):
        channel = broker.connections[1].open_channel(n, RecordingSink())
        with pytest.raises(ChannelError) as exc:
            action(channel)
        assert exc.value.reply_code == ReplyCode.ACCESS_REFUSED
        assert "refused for user 'bob'" in exc.value.reply_text


def test_passive_declare_needs_some_permission_but_not_configure() -> None:
    broker = broker_with("", "", "^shared$")
    vhost = broker.vhosts["/"]
    vhost.declare_queue("shared")
    vhost.declare_queue("secret")
    vhost.declare_exchange("secret-x", "fanout")
    ch = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    assert ch.declare_queue("shared", passive=True).queue == "shared"
    # Without any permission a passive declare must not tell whether the queue exists.
    for name in ("secret", "missing"):
        with pytest.raises(ChannelError) as exc:
            ch.declare_queue(name, passive=True)
        assert exc.value.reply_code == ReplyCode.ACCESS_REFUSED
        assert exc.value.text == f"access to queue '{name}' in vhost '/' refused for user 'bob'"
    with pytest.raises(ChannelError) as exc:
        ch.declare_exchange("secret-x", "fanout", passive=True)
    assert exc.value.text == "access to exchange 'secret-x' in vhost '/' refused for user 'bob'"


def test_user_id_must_match_the_authenticated_user() -> None:
    broker = broker_with(".*", ".*", ".*")
    ch = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    ch.declare_queue("q")
    ch.publish("", "q", msg(routing_key="q", user_id="bob"))
    with pytest.raises(ChannelError, match="user_id property set to 'mallory'"):
        ch.publish("", "q", msg(routing_key="q", user_id="mallory"))


def rabbit_hash(prefix: str, algorithm: str, salt: bytes, password: str) -> str:
    """RabbitMQ's stored form: base64(salt + digest(salt + password)), with our prefix."""
    digest = hashlib.new(algorithm, salt + password.encode()).digest()
    return f"{prefix}${base64.b64encode(salt + digest).decode()}"


@pytest.mark.parametrize(
    ("prefix", "algorithm"),
    [("rabbitsha256", "sha256"), ("rabbitsha512", "sha512"), ("rabbitmd5", "md5")],
)
def test_rabbitmq_salted_hashes_verify_the_right_password_only(prefix: str, algorithm: str) -> None:
    stored = rabbit_hash(prefix, algorithm, b"\x90\x8d\xc6\x0a", "guest")
    assert verify_password("guest", stored)
    assert not verify_password("Guest", stored)
    assert not verify_password("", stored)
    # The salt is part of the hash: the same digest under another salt does not verify.
    salted = base64.b64decode(stored.partition("$")[2])
    moved = base64.b64encode(b"\x00\x00\x00\x00" + salted[4:]).decode()
    assert not verify_password("guest", f"{prefix}${moved}")


def test_rabbitmq_documented_hash_example_verifies() -> None:
    # The worked example in RabbitMQ's passwords guide: salt 908DC60A, password "test12".
    stored = "rabbitsha256$kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
    users = UserDB()
    users.add_user("imported", stored)
    assert users.authenticate("imported", "test12") is not None
    assert users.authenticate("imported", "test13") is None


@pytest.mark.parametrize(
    "stored",
    ["rabbitsha256$", "rabbitsha256$not base64!", "rabbitmd5$AAAA", "rabbitsha1$AAAAAAAA", ""],
)
def test_malformed_rabbitmq_hashes_refuse_every_password(stored: str) -> None:
    assert not verify_password("", stored)
    assert not verify_password("guest", stored)


def test_declaring_an_exchange_with_an_alternate_needs_write_on_it() -> None:
    broker = broker_with(".*", "^bob-", ".*")
    conn = broker.open_connection("/", "bob")
    ch = conn.open_channel(1, RecordingSink())
    ch.declare_exchange("bob-ae", "fanout")
    ch.declare_exchange("bob-x", "direct", arguments={"alternate-exchange": "bob-ae"})
    with pytest.raises(ChannelError) as exc:
        conn.open_channel(2, RecordingSink()).declare_exchange(
            "bob-y", "direct", arguments={"alternate-exchange": "amq.fanout"}
        )
    assert exc.value.reply_code == ReplyCode.ACCESS_REFUSED
    assert "exchange 'amq.fanout'" in exc.value.reply_text
    assert "bob-y" not in broker.vhosts["/"].exchanges


def test_declaring_an_exchange_with_an_alternate_needs_read_on_the_exchange() -> None:
    broker = broker_with(".*", ".*", "^nothing$")
    ch = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    with pytest.raises(ChannelError, match="access to exchange 'bob-x'"):
        ch.declare_exchange("bob-x", "direct", arguments={"alternate-exchange": "amq.fanout"})


def test_redeclaring_an_existing_exchange_does_not_recheck_its_alternate() -> None:
    broker = broker_with(".*", "^bob-", ".*")
    broker.vhosts["/"].declare_exchange(
        "bob-x", "direct", arguments={"alternate-exchange": "amq.fanout"}
    )
    ch = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    ch.declare_exchange("bob-x", "direct", arguments={"alternate-exchange": "amq.fanout"})


def test_declaring_a_queue_with_a_dead_letter_exchange_needs_write_on_it() -> None:
    broker = broker_with(".*", "^bob-", ".*")
    conn = broker.open_connection("/", "bob")
    ch = conn.open_channel(1, RecordingSink())
    ch.declare_exchange("bob-dlx", "fanout")
    ch.declare_queue("bob-q", arguments={"x-dead-letter-exchange": "bob-dlx"})
    for n, dlx in enumerate(("amq.direct", ""), start=2):
        with pytest.raises(ChannelError) as exc:
            conn.open_channel(n, RecordingSink()).declare_queue(
                "bob-other", arguments={"x-dead-letter-exchange": dlx}
            )
        assert exc.value.reply_code == ReplyCode.ACCESS_REFUSED
        assert f"exchange '{dlx or 'amq.default'}'" in exc.value.reply_text
    assert "bob-other" not in broker.vhosts["/"].queues


def test_declaring_a_queue_with_a_dead_letter_exchange_needs_read_on_the_queue() -> None:
    broker = broker_with(".*", ".*", "^nothing$")
    ch = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    with pytest.raises(ChannelError, match="access to queue 'bob-q'"):
        ch.declare_queue("bob-q", arguments={"x-dead-letter-exchange": "amq.fanout"})
    ch2 = broker.open_connection("/", "bob").open_channel(1, RecordingSink())
    ch2.declare_queue("bob-plain")  # no DLX: read is not needed to declare
