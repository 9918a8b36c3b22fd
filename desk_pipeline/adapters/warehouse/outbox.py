"""The outbox of PositionSnapshotCreated events (pending, published, parked) and the inbox.

Owns the tables ``outbox`` and ``inbox``. The daily book position store adds events through
:func:`enqueue`, in the transaction that writes the snapshots they announce.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import _chunks, _insert, _insert_for, _read
from desk_pipeline.adapters.warehouse.codec import now_micros
from desk_pipeline.adapters.warehouse.engine import Store
from desk_pipeline.domain.positions.snapshots import PositionSnapshotCreated


def enqueue(conn: sa.Connection, events: Sequence[PositionSnapshotCreated], stamp: int) -> None:
    """Add ``events`` to the outbox in ``conn``'s transaction, unpublished, stamped ``stamp`` (µs).

    The caller's transaction is the one that stores what the events announce, so both commit or
    neither does.
    """
    _insert(conn, t.outbox, [_outbox_row(event, stamp) for event in events])


def _outbox_row(event: PositionSnapshotCreated, stamp: int) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "book_id": event.book_id,
        "business_date": event.business_date,
        "payload": event.to_json(),
        "created_at_us": stamp,
        "attempts": 0,
    }


class PositionSnapshotCreatedOutbox(Store):
    """PositionSnapshotCreated events pending, published or parked, and each consumer's inbox."""

    def pending_events(self, limit: int = 1000) -> pd.DataFrame:
        """Unpublished outbox rows in write order (which is business-date order per book)."""
        o = t.outbox
        query = sa.select(o).where(o.c.published_at_us.is_(None)).order_by(o.c.id).limit(limit)
        with self._transaction("pending_events") as conn:
            return _read(conn, query)

    def publishable_events(self, limit: int = 1000) -> pd.DataFrame:
        """The pending rows the relay may publish now, in write order.

        A parked row and every later row of its book are left out: a book's events are
        published in order or not at all.
        """
        o = t.outbox
        parked_books = sa.select(o.c.book_id).where(
            o.c.published_at_us.is_(None), o.c.parked_reason.is_not(None)
        )
        query = (
            sa.select(o)
            .where(o.c.published_at_us.is_(None), o.c.book_id.not_in(parked_books))
            .order_by(o.c.id)
            .limit(limit)
        )
        with self._transaction("publishable_events") as conn:
            return _read(conn, query)

    def park_event(self, outbox_id: int, reason: str) -> None:
        """Set one outbox row aside with the reason no publication attempt can succeed."""
        with self._transaction("park_event") as conn:
            conn.execute(
                t.outbox.update()
                .where(t.outbox.c.id == int(outbox_id))
                .values(parked_reason=reason, parked_at_us=now_micros())
            )

    def parked_events(self) -> pd.DataFrame:
        """Unpublished rows the relay parked, with parked_reason, in write order."""
        o = t.outbox
        query = (
            sa.select(o)
            .where(o.c.published_at_us.is_(None), o.c.parked_reason.is_not(None))
            .order_by(o.c.id)
        )
        with self._transaction("parked_events") as conn:
            return _read(conn, query)

    def unpark_events(self) -> int:
        """Put every parked row back in the queue (after a fix); returns how many."""
        o = t.outbox
        with self._transaction("unpark_events") as conn:
            result = conn.execute(
                o.update()
                .where(o.c.published_at_us.is_(None), o.c.parked_reason.is_not(None))
                .values(parked_reason=None, parked_at_us=None)
            )
        return int(result.rowcount)

    def mark_published(self, outbox_ids: Iterable[int]) -> None:
        """Record that the broker confirmed these outbox rows."""
        ids = [int(i) for i in outbox_ids]
        stamp = now_micros()
        with self._transaction("mark_published") as conn:
            for chunk in _chunks(ids):
                conn.execute(
                    t.outbox.update().where(t.outbox.c.id.in_(chunk)).values(published_at_us=stamp)
                )

    def record_attempt(self, outbox_ids: Iterable[int]) -> None:
        """Count one failed publication attempt on these outbox rows."""
        ids = [int(i) for i in outbox_ids]
        with self._transaction("record_attempt") as conn:
            for chunk in _chunks(ids):
                conn.execute(
                    t.outbox.update()
                    .where(t.outbox.c.id.in_(chunk))
                    .values(attempts=t.outbox.c.attempts + 1)
                )

    def parked_count(self) -> int:
        """How many unpublished events the relay parked (``parked_events`` without the rows)."""
        o = t.outbox
        with self._transaction("parked_count") as conn:
            count = conn.execute(
                sa.select(sa.func.count()).where(
                    o.c.published_at_us.is_(None), o.c.parked_reason.is_not(None)
                )
            ).scalar()
        return int(count or 0)

    def outbox_backlog(self) -> int:
        """How many events wait for the broker."""
        o = t.outbox
        with self._transaction("outbox_backlog") as conn:
            count = conn.execute(
                sa.select(sa.func.count()).where(o.c.published_at_us.is_(None))
            ).scalar()
        return int(count or 0)

    def outbox_events(self) -> pd.DataFrame:
        """Every outbox row, published or not, in write order (audits and tests)."""
        with self._transaction("outbox_events") as conn:
            return _read(conn, sa.select(t.outbox).order_by(t.outbox.c.id))

    def inbox_contains(self, consumer: str, event_id: str) -> bool:
        """Whether ``consumer`` has already applied the event ``event_id``."""
        i = t.inbox
        with self._transaction("inbox_contains") as conn:
            found = conn.execute(
                sa.select(i.c.event_id).where(i.c.consumer == consumer, i.c.event_id == event_id)
            ).first()
        return found is not None

    def record_inbox(self, consumer: str, event_id: str) -> bool:
        """Record that ``consumer`` applied ``event_id``; False when it was already recorded."""
        with self._transaction("record_inbox") as conn:
            insert = _insert_for(conn, t.inbox).on_conflict_do_nothing()
            result = conn.execute(
                insert,
                {"consumer": consumer, "event_id": event_id, "processed_at_us": now_micros()},
            )
        return result.rowcount == 1

    def inbox_count(self, consumer: str) -> int:
        """How many distinct events ``consumer`` has applied."""
        i = t.inbox
        with self._transaction("inbox_count") as conn:
            count = conn.execute(
                sa.select(sa.func.count()).where(i.c.consumer == consumer)
            ).scalar()
        return int(count or 0)
