"""End-of-day writes: the keep-last upsert of snapshots, each with its outbox event.

The stored end-of-day snapshots are read through snapshots.py; the relay reads the events
through events.py.
"""

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import (
    _analyze_if_grown,
    _chunks,
    _insert,
    _insert_for,
    _read,
)
from desk_pipeline.adapters.warehouse.codec import _records, from_micros, to_micros
from desk_pipeline.adapters.warehouse.engine import Store
from desk_pipeline.domain.snapshots import PositionSnapshotCreated, snapshot_id_for

# The content digest of an EOD without rows (a book holding nothing): no row hashes summed.
EMPTY_DIGEST = f"{0:016x}"


@dataclasses.dataclass(frozen=True)
class EodWrite:
    """One end-of-day snapshot that won the keep-last comparison and was stored."""

    book_id: str
    business_date: str
    snapshot_id: str
    as_of: pd.Timestamp
    position_count: int
    restatement: bool


class EodStore(Store):
    """End-of-day snapshots written under the keep-last rule, atomically with their events."""

    def keep_last_eod(self, snapshots: pd.DataFrame, read_at_us: int) -> list[EodWrite]:
        """Store end-of-day snapshots under the keep-last rule, with their events, atomically.

        Args:
            snapshots: ``business_date``, ``as_of`` and POSITION_COLUMNS; one snapshot per
                (book_id, business_date), all rows of a book-day sharing one ``as_of``.
            read_at_us: when the inputs were read; the computation's ``computed_at``.

        Returns:
            The snapshots that replaced (or created) the stored EOD. A snapshot older than the
            stored one writes nothing and emits no event.
        """
        if snapshots.empty:
            return []
        headers = (
            snapshots.assign(open=snapshots["quantity"] != 0)
            .groupby(["book_id", "business_date"], sort=True)
            .agg(as_of=("as_of", "first"), position_count=("open", "sum"))
            .reset_index()
        )
        headers["content_digest"] = _digests(snapshots, headers)
        headers["as_of_us"] = headers["as_of"].map(to_micros).astype("int64")
        headers["computed_at_us"] = read_at_us
        headers["snapshot_id"] = [
            snapshot_id_for(b, d, a, pd.Timestamp(read_at_us * 1000, tz="UTC"))
            for b, d, a in zip(
                headers["book_id"], headers["business_date"], headers["as_of"], strict=True
            )
        ]
        header_rows = _records(
            headers[
                [
                    "book_id",
                    "business_date",
                    "snapshot_id",
                    "as_of_us",
                    "computed_at_us",
                    "position_count",
                    "content_digest",
                ]
            ]
        )
        e = t.eod_snapshots
        with self._transaction("keep_last_eod") as conn:
            previous = _read(
                conn,
                sa.select(e.c.book_id, e.c.business_date, e.c.as_of_us).where(
                    e.c.business_date.between(
                        headers["business_date"].min(), headers["business_date"].max()
                    )
                ),
            ).rename(columns={"as_of_us": "previous_as_of_us"})
            insert = _insert_for(conn, e)
            stmt = insert.on_conflict_do_update(
                index_elements=["book_id", "business_date"],
                set_={
                    c: insert.excluded[c]
                    for c in (
                        "snapshot_id",
                        "as_of_us",
                        "computed_at_us",
                        "position_count",
                        "content_digest",
                    )
                },
                # Keep the last; a same-as_of recomputation with identical rows is a no-op,
                # so re-running a backfill neither rewrites nor re-announces unchanged days.
                where=(insert.excluded.as_of_us > e.c.as_of_us)
                | (
                    (insert.excluded.as_of_us == e.c.as_of_us)
                    & (insert.excluded.computed_at_us > e.c.computed_at_us)
                    & (insert.excluded.content_digest != e.c.content_digest)
                ),
            ).returning(e.c.snapshot_id)
            won_ids = {
                row[0]
                for chunk in _chunks(header_rows, 1000)
                for row in conn.execute(stmt, chunk).all()
            }
            self._confirm_unchanged(conn, header_rows, read_at_us)
            won = headers[headers["snapshot_id"].isin(won_ids)].merge(
                previous, on=["book_id", "business_date"], how="left"
            )
            conn.execute(
                t.eod_positions.delete().where(
                    t.eod_positions.c.book_id == sa.bindparam("b"),
                    t.eod_positions.c.business_date == sa.bindparam("d"),
                    t.eod_positions.c.snapshot_id != sa.bindparam("s"),
                ),
                [
                    {"b": b, "d": d, "s": s}
                    for b, d, s in zip(
                        won["book_id"], won["business_date"], won["snapshot_id"], strict=True
                    )
                ]
                or [{"b": "", "d": "", "s": ""}],
            )
            rows = snapshots.merge(
                won[["book_id", "business_date", "snapshot_id"]], on=["book_id", "business_date"]
            )
            _insert(
                conn,
                t.eod_positions,
                rows[
                    [
                        "snapshot_id",
                        "instrument_id",
                        "book_id",
                        "business_date",
                        "quantity",
                        "avg_price",
                        "realized_pnl",
                    ]
                ],
            )
            _analyze_if_grown(conn, [t.eod_positions], len(rows))
            writes = [
                EodWrite(
                    book_id=b,
                    business_date=d,
                    snapshot_id=s,
                    as_of=a,
                    position_count=int(n),
                    restatement=bool(same),
                )
                for b, d, s, a, n, same in zip(
                    won["book_id"],
                    won["business_date"],
                    won["snapshot_id"],
                    won["as_of"],
                    won["position_count"],
                    won["previous_as_of_us"] == won["as_of_us"],
                    strict=True,
                )
            ]
            _insert(conn, t.outbox, [_outbox_row(w, read_at_us) for w in writes])
        return writes

    def _confirm_unchanged(
        self, conn: sa.Connection, header_rows: list[dict[str, Any]], read_at_us: int
    ) -> None:
        """Stamp stored EODs that a later recomputation found identical as computed at its read.

        Without it an EOD made stale by a change that moves no position (an amendment with the
        same economics) would stay stale forever, since an identical recomputation writes nothing.
        The later stamp also keeps an older, different computation from replacing it.
        """
        e = t.eod_snapshots
        stmt = (
            e.update()
            .where(
                e.c.book_id == sa.bindparam("b"),
                e.c.business_date == sa.bindparam("d"),
                e.c.as_of_us == sa.bindparam("a"),
                e.c.content_digest == sa.bindparam("g"),
                e.c.computed_at_us < read_at_us,
            )
            .values(computed_at_us=read_at_us)
        )
        params = [
            {
                "b": r["book_id"],
                "d": r["business_date"],
                "a": r["as_of_us"],
                "g": r["content_digest"],
            }
            for r in header_rows
        ]
        for chunk in _chunks(params, 1000):
            conn.execute(stmt, chunk)

    def empty_missing_eods(
        self, snapshots: pd.DataFrame, days: pd.DataFrame, read_at_us: int
    ) -> list[EodWrite]:
        """Empty the stored EODs of books that a recomputation of ``days`` found holding nothing.

        A book whose every trade was cancelled or moved to another book has no rows in
        ``snapshots``, so :meth:`keep_last_eod` cannot replace its stored EOD; this does, under
        the same keep-last rule, with its event, one transaction per book-day.

        Args:
            snapshots: what :meth:`keep_last_eod` was given for ``days``.
            days: ``business_date`` and ``as_of`` of every day that was recomputed.
            read_at_us: when the recomputation's inputs were read.
        """
        if days.empty:
            return []
        e = t.eod_snapshots
        with self._transaction("empty_missing_eods") as conn:
            stored = _read(
                conn,
                sa.select(e).where(e.c.business_date.in_(list(days["business_date"].unique()))),
            )
        present = snapshots[["book_id", "business_date"]].drop_duplicates()
        missing = stored.merge(present, how="left", indicator=True)
        missing = missing[missing["_merge"] == "left_only"].merge(days, on="business_date")
        missing["new_as_of_us"] = missing["as_of"].map(to_micros).astype("int64")
        later = missing["new_as_of_us"] > missing["as_of_us"]
        restated = (
            (missing["new_as_of_us"] == missing["as_of_us"])
            & (missing["computed_at_us"] < read_at_us)
            & (missing["content_digest"] != EMPTY_DIGEST)
        )
        writes = []
        for r in missing[later | restated].to_dict(orient="records"):
            as_of = from_micros(int(r["new_as_of_us"]))
            write = EodWrite(
                book_id=r["book_id"],
                business_date=r["business_date"],
                snapshot_id=snapshot_id_for(
                    r["book_id"], r["business_date"], as_of, from_micros(read_at_us)
                ),
                as_of=as_of,
                position_count=0,
                restatement=bool(r["new_as_of_us"] == r["as_of_us"]),
            )
            with self._transaction("empty_missing_eods") as conn:
                # Compare-and-set on the header read above: a concurrent newer write wins.
                swapped = conn.execute(
                    e.update()
                    .where(
                        e.c.snapshot_id == r["snapshot_id"],
                        e.c.computed_at_us == int(r["computed_at_us"]),
                    )
                    .values(
                        snapshot_id=write.snapshot_id,
                        as_of_us=int(r["new_as_of_us"]),
                        computed_at_us=read_at_us,
                        position_count=0,
                        content_digest=EMPTY_DIGEST,
                    )
                ).rowcount
                if swapped:
                    conn.execute(
                        t.eod_positions.delete().where(
                            t.eod_positions.c.snapshot_id == r["snapshot_id"]
                        )
                    )
                    _insert(conn, t.outbox, [_outbox_row(write, read_at_us)])
                    writes.append(write)
        return writes


def _digests(snapshots: pd.DataFrame, headers: pd.DataFrame) -> list[str]:
    """Order-independent digest of each (book_id, business_date)'s rows, aligned with headers."""
    rows = snapshots.sort_values(["book_id", "business_date"], kind="stable")
    hashes = pd.util.hash_pandas_object(
        rows[["instrument_id", "quantity", "avg_price", "realized_pnl"]], index=False
    ).to_numpy()
    starts = np.flatnonzero(~rows.duplicated(["book_id", "business_date"]).to_numpy())
    sums = np.add.reduceat(hashes, starts) if len(starts) else np.array([], dtype=np.uint64)
    return [f"{int(s):016x}" for s in sums]


def _outbox_row(write: EodWrite, stamp: int) -> dict[str, Any]:
    event = PositionSnapshotCreated(
        book_id=write.book_id,
        business_date=write.business_date,
        as_of=write.as_of.to_pydatetime(),
        snapshot_id=write.snapshot_id,
        position_count=write.position_count,
        restatement=write.restatement,
        occurred_at=from_micros(stamp).to_pydatetime(),
    )
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "book_id": write.book_id,
        "business_date": write.business_date,
        "payload": event.to_json(),
        "created_at_us": stamp,
        "attempts": 0,
    }
