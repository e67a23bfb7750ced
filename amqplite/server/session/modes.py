"""Publisher confirms and transactions (server layer, session package).

The broker channel holds the mode (confirm or tx, and refuses switching between them);
the session numbers confirms and sends them.  Confirms are emitted once per receive
buffer by :func:`emit_confirms`, consecutive acks folded into one ``multiple=True`` ack.
When a publish in the batch was written to the store, the whole batch's confirms (and
the tx.commit-oks of durable commits) wait until the connection task has awaited the
store sync (:mod:`amqplite.server.durability`: group commit).
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


def emit_confirms(session: Session) -> None:
    """The tx.commit-oks and publisher confirms the last batch earned (after its sync)."""
    if session.tx_commits:
        for ch in session.tx_commits:
            if ch.is_open:
                session.send(ch.number, m.TxCommitOk())
        session.tx_commits.clear()
    if not session.confirming:
        return
    channels = session.confirming
    session.confirming = []
    for ch in channels:
        ch.queued = False
        if ch.is_open:
            _confirm(session, ch)


def _confirm(session: Session, ch: SessionChannel) -> None:
    confirmed = ch.confirmed
    for seq in ch.nacks:
        if seq - 1 > confirmed:
            session.send(ch.number, m.BasicAck(seq - 1, seq - 1 > confirmed + 1))
        session.send(ch.number, m.BasicNack(seq, False, False))
        confirmed = seq
    ch.nacks.clear()
    last = ch.published
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
