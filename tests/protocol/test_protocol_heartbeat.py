"""Heartbeat timing: half-interval sends, two-interval timeouts, all from caller-supplied times."""

from __future__ import annotations

from amqplite.protocol import HeartbeatMonitor


def test_heartbeat_is_due_after_half_an_interval_of_silence() -> None:
    monitor = HeartbeatMonitor(interval=10)
    monitor.start(100.0)
    assert not monitor.send_due(104.9)
    assert monitor.send_due(105.0)
    monitor.data_sent(105.0)
    assert not monitor.send_due(109.0)
    assert monitor.next_deadline() == 110.0


def test_peer_silent_for_two_intervals_times_out() -> None:
    monitor = HeartbeatMonitor(interval=10)
    monitor.start(0.0)
    monitor.data_received(15.0)
    assert not monitor.peer_timed_out(34.9)
    assert monitor.peer_timed_out(35.0)


def test_zero_interval_disables_heartbeats() -> None:
    monitor = HeartbeatMonitor(interval=0)
    monitor.start(0.0)
    assert not monitor.send_due(1e9)
    assert not monitor.peer_timed_out(1e9)
    assert monitor.next_deadline() is None
