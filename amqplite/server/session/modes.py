"""Publisher confirms and transactions (server layer, session package).

The broker channel holds the mode (confirm or tx, and refuses switching between them);
the session numbers confirms and sends them.  Confirms are emitted once per receive
buffer: :func:`take_confirms` notes what the batch earned (each channel's last sequence
number, the tx.commit-oks) and :func:`emit_confirms` sends it, consecutive acks folded
into one ``multiple=True`` ack.  When a publish in the batch was written to the store, the
connection task emits them only once a store sync covers the batch, while it goes on
reading (:class:`amqplite.server.durability.ConfirmPipeline`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amqplite.protocol import methods as m
from amqplite.server.session.basic import return_unroutable

if TYPE_CHECKING:
    from amqplite.server.session.channel import ChannelHandler, SessionChannel
    from amqplite.server.session.core import Session


def confirm_select(session: Session, ch: SessionChannel, method: m.ConfirmSelect) -> None:
    ch.broker.confirm_select()
    if not method.nowait:
        session.send(ch.number, m.ConfirmSelectOk())


def tx_select(session: Session, ch: SessionChannel, method: m.TxSelect) -> None:
    ch.broker.tx_select()
    session.send(ch.number, m.TxSelectOk())


def tx_commit(session: Session, ch: SessionChannel, method: m.TxCommit) -> None:
    results = ch.broker.tx_commit()
    publishes = ch.tx_publishes
    ch.tx_publishes = []
    durable = False
    for (mandatory, message), result in zip(publishes, results, strict=False):
        if mandatory and not result.routed:
            return_unroutable(session, ch.number, message)
        durable = durable or result.durable_write
    if durable:
        # Like a confirm: commit-ok only once the store has synced (emit_confirms).
        session.sync_pending = True
        session.tx_commits.append(ch)
    else:
        session.send(ch.number, m.TxCommitOk())


def tx_rollback(session: Session, ch: SessionChannel, method: m.TxRollback) -> None:
    ch.broker.tx_rollback()
    ch.tx_publishes.clear()
    session.send(ch.number, m.TxRollbackOk())


#: What a batch earned: channels owed a tx.commit-ok, and (channel, last sequence number
#: to confirm) per channel that published in confirm mode.
Earned = tuple[list["SessionChannel"], list[tuple["SessionChannel", int]]]


def take_confirms(session: Session) -> Earned | None:
    """The tx.commit-oks and confirms the last batch earned, to emit now or after its sync."""
    commits = session.tx_commits
    channels = session.confirming
    if not commits and not channels:
        return None
    session.tx_commits = []
    session.confirming = []
    upto = []
    for ch in channels:
        ch.queued = False
        upto.append((ch, ch.published))
    return commits, upto


def emit_confirms(session: Session, earned: Earned) -> None:
    """Send what :func:`take_confirms` noted (a closed channel's are dropped)."""
    commits, upto = earned
    for ch in commits:
        if ch.is_open:
            session.send(ch.number, m.TxCommitOk())
    for ch, last in upto:
        if ch.is_open:
            _confirm(session, ch, last)


def _confirm(session: Session, ch: SessionChannel, last: int) -> None:
    confirmed = ch.confirmed
    nacks = ch.nacks
    while nacks and nacks[0] <= last:
        seq = nacks.pop(0)
        if seq - 1 > confirmed:
            session.send(ch.number, m.BasicAck(seq - 1, seq - 1 > confirmed + 1))
        session.send(ch.number, m.BasicNack(seq, False, False))
        confirmed = seq
    if last > confirmed:
        session.send(ch.number, m.BasicAck(last, last > confirmed + 1))
        confirmed = last
    ch.confirmed = confirmed


HANDLERS: dict[type[m.Method], ChannelHandler] = {
    m.ConfirmSelect: confirm_select,
    m.TxSelect: tx_select,
    m.TxCommit: tx_commit,
    m.TxRollback: tx_rollback,
}
