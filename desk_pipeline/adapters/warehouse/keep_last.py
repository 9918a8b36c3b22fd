"""The keep-last write of daily book positions: one decision applied by compare-and-set.

The rule itself is ``domain.positions.snapshots.keep_last``; :func:`_apply` reads the stored
headers, asks the rule, writes its answer with compare-and-set and adds one PositionSnapshotCreated
per snapshot written to the outbox (``outbox.enqueue``), all in the caller's transaction.
:class:`~desk_pipeline.adapters.warehouse.daily_book_position.DailyBookPositionStore` runs it and
decides again when a concurrent writer won. Owns, with that store, ``eod_snapshots`` and
``eod_positions``.
"""

import dataclasses
from typing import Any

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
from desk_pipeline.adapters.warehouse.codec import _records, from_micros, micros_of
from desk_pipeline.adapters.warehouse.outbox import enqueue
from desk_pipeline.domain.positions.snapshots import (
    EOD_KEYS,
    PositionSnapshotCreated,
    keep_last,
    snapshot_digests,
    snapshot_id_for,
)

__all__ = ["EodWrite"]

# Rows per executemany of the header statements.
HEADER_BATCH = 1000


@dataclasses.dataclass(frozen=True)
class EodWrite:
    """One end-of-day snapshot that won the keep-last comparison and was stored."""

    book_id: str
    business_date: str
    snapshot_id: str
    as_of: pd.Timestamp
    position_count: int
    restatement: bool


class _LostRace(Exception):
    """A stored header changed between the read and the compare-and-set; decide again."""


def _candidates(snapshots: pd.DataFrame, read_at_us: int) -> pd.DataFrame:
    """One EOD header per book-day of ``snapshots``, as ``keep_last`` compares them."""
    if snapshots.empty:
        return pd.DataFrame(
            {
                "book_id": pd.Series(dtype=object),
                "business_date": pd.Series(dtype=object),
                "as_of": pd.Series(dtype="datetime64[ns, UTC]"),
                "position_count": pd.Series(dtype="int64"),
                "content_digest": pd.Series(dtype=object),
                "as_of_us": pd.Series(dtype="int64"),
                "computed_at_us": pd.Series(dtype="int64"),
            }
        )
    headers = (
        snapshots.assign(open=snapshots["quantity"] != 0)
        .groupby(EOD_KEYS, sort=True)
        .agg(as_of=("as_of", "first"), position_count=("open", "sum"))
        .reset_index()
        .merge(snapshot_digests(snapshots), on=EOD_KEYS)
    )
    return headers.assign(as_of_us=micros_of(headers["as_of"]), computed_at_us=read_at_us)


def _recomputed_days(recomputed: pd.DataFrame | None, read_at_us: int) -> pd.DataFrame:
    if recomputed is None or recomputed.empty:
        return pd.DataFrame(
            {
                "business_date": pd.Series(dtype=object),
                "as_of_us": pd.Series(dtype="int64"),
                "computed_at_us": pd.Series(dtype="int64"),
            }
        )
    return pd.DataFrame(
        {
            "business_date": recomputed["business_date"].to_numpy(),
            "as_of_us": micros_of(recomputed["as_of"]),
            "computed_at_us": read_at_us,
        }
    )


def _apply(
    conn: sa.Connection,
    snapshots: pd.DataFrame,
    candidates: pd.DataFrame,
    days: pd.DataFrame,
    read_at_us: int,
) -> list[EodWrite]:
    """Read, decide, compare-and-set, write rows and events; :class:`_LostRace` on a lost CAS."""
    won = _decided(candidates, _stored_headers(conn, candidates, days), days)
    if won.empty:
        return []
    present = won["read_snapshot_id"].notna()
    _confirm(conn, won[present & ~won["changed"]])
    won = won[won["changed"]].reset_index(drop=True)
    if won.empty:
        return []
    won = _identified(won, read_at_us)
    replaced = won["read_snapshot_id"].notna()
    _insert_headers(conn, won[~replaced])
    _replace_headers(conn, won[replaced])
    _replace_rows(conn, snapshots, won, replaced)
    writes = _writes(won)
    enqueue(conn, [_event(w, read_at_us) for w in writes], read_at_us)
    return writes


def _stored_headers(
    conn: sa.Connection, candidates: pd.DataFrame, days: pd.DataFrame
) -> pd.DataFrame:
    """The stored EOD headers of the business dates that candidates or recomputed days name."""
    e = t.eod_snapshots
    dates = sorted({*candidates["business_date"], *days["business_date"]})
    stored = _read(
        conn,
        sa.select(
            e.c.book_id,
            e.c.business_date,
            e.c.snapshot_id,
            e.c.as_of_us,
            e.c.computed_at_us,
            e.c.content_digest,
        ).where(e.c.business_date.between(dates[0], dates[-1])),
    )
    return stored[stored["business_date"].isin(dates)]


def _decided(candidates: pd.DataFrame, stored: pd.DataFrame, days: pd.DataFrame) -> pd.DataFrame:
    """``keep_last``'s answer joined to the header each decision read, for the compare-and-set.

    Adds read_snapshot_id and read_computed_at_us (NaN where no header was stored).
    """
    return keep_last(candidates, stored, days).merge(
        stored[[*EOD_KEYS, "snapshot_id", "computed_at_us"]].rename(
            columns={"snapshot_id": "read_snapshot_id", "computed_at_us": "read_computed_at_us"}
        ),
        on=EOD_KEYS,
        how="left",
    )


def _identified(won: pd.DataFrame, read_at_us: int) -> pd.DataFrame:
    """The changed winners completed for writing: as_of, position_count and snapshot_id."""
    # Empty EODs carry no candidate columns: their as_of is the recomputed day's.
    day_end = pd.Series(from_micros(won["as_of_us"].to_numpy()), index=won.index)
    won = won.assign(
        as_of=won["as_of"].fillna(day_end),
        position_count=won["position_count"].fillna(0).astype("int64"),
    )
    computed_at = from_micros(read_at_us)
    won["snapshot_id"] = [
        snapshot_id_for(b, d, a, computed_at)
        for b, d, a in zip(won["book_id"], won["business_date"], won["as_of"], strict=True)
    ]
    return won


def _writes(won: pd.DataFrame) -> list[EodWrite]:
    return [
        EodWrite(
            book_id=b,
            business_date=d,
            snapshot_id=s,
            as_of=a,
            position_count=int(n),
            restatement=bool(r),
        )
        for b, d, s, a, n, r in zip(
            won["book_id"],
            won["business_date"],
            won["snapshot_id"],
            won["as_of"],
            won["position_count"],
            won["restatement"],
            strict=True,
        )
    ]


_HEADER_COLUMNS = [
    "book_id",
    "business_date",
    "snapshot_id",
    "as_of_us",
    "computed_at_us",
    "position_count",
    "content_digest",
]


def _compared(table: sa.Table) -> Any:
    """The compare-and-set condition: the stored header is still the one read."""
    return sa.and_(
        table.c.book_id == sa.bindparam("b"),
        table.c.business_date == sa.bindparam("d"),
        table.c.snapshot_id == sa.bindparam("read_s"),
        table.c.computed_at_us == sa.bindparam("read_c"),
    )


def _cas_params(won: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"b": b, "d": d, "read_s": s, "read_c": int(c)}
        for b, d, s, c in zip(
            won["book_id"],
            won["business_date"],
            won["read_snapshot_id"],
            won["read_computed_at_us"],
            strict=True,
        )
    ]


def _execute_all(conn: sa.Connection, stmt: Any, params: list[dict[str, Any]], what: str) -> None:
    """Execute a compare-and-set for every parameter set; :class:`_LostRace` if any missed."""
    done = 0
    for chunk in _chunks(params, HEADER_BATCH):
        done += conn.execute(stmt, chunk).rowcount
    if done != len(params):
        raise _LostRace(f"{what}: {len(params) - done} of {len(params)} headers changed")


def _confirm(conn: sa.Connection, won: pd.DataFrame) -> None:
    """Stamp stored EODs that a later recomputation found identical as computed at its read.

    Without it an EOD made stale by a change that moves no position (an amendment with the
    same economics) would stay stale forever, since an identical recomputation writes nothing.
    The later stamp also keeps an older, different computation from replacing it.
    """
    if won.empty:
        return
    e = t.eod_snapshots
    stmt = e.update().where(_compared(e)).values(computed_at_us=sa.bindparam("c"))
    params = [
        {**p, "c": int(c)} for p, c in zip(_cas_params(won), won["computed_at_us"], strict=True)
    ]
    _execute_all(conn, stmt, params, "confirm")


def _insert_headers(conn: sa.Connection, won: pd.DataFrame) -> None:
    """Insert the headers of book-days that had none, unless a concurrent writer did first."""
    if won.empty:
        return
    e = t.eod_snapshots
    stmt = (
        _insert_for(conn, e)
        .on_conflict_do_nothing(index_elements=EOD_KEYS)
        .returning(e.c.snapshot_id)
    )
    rows = _records(won[_HEADER_COLUMNS])
    inserted = sum(len(conn.execute(stmt, chunk).all()) for chunk in _chunks(rows, HEADER_BATCH))
    if inserted != len(rows):
        raise _LostRace(f"insert: {len(rows) - inserted} of {len(rows)} headers appeared")


def _replace_headers(conn: sa.Connection, won: pd.DataFrame) -> None:
    """Replace stored headers that are still the ones read."""
    if won.empty:
        return
    e = t.eod_snapshots
    stmt = (
        e.update()
        .where(_compared(e))
        .values(
            snapshot_id=sa.bindparam("s"),
            as_of_us=sa.bindparam("a"),
            computed_at_us=sa.bindparam("c"),
            position_count=sa.bindparam("n"),
            content_digest=sa.bindparam("g"),
        )
    )
    params = [
        {**p, "s": s, "a": int(a), "c": int(c), "n": int(n), "g": g}
        for p, s, a, c, n, g in zip(
            _cas_params(won),
            won["snapshot_id"],
            won["as_of_us"],
            won["computed_at_us"],
            won["position_count"],
            won["content_digest"],
            strict=True,
        )
    ]
    _execute_all(conn, stmt, params, "replace")


def _replace_rows(
    conn: sa.Connection, snapshots: pd.DataFrame, won: pd.DataFrame, replaced: pd.Series
) -> None:
    """Delete the replaced snapshots' rows and insert the winners' (none for an empty EOD)."""
    e = t.eod_positions
    gone = won.loc[replaced, ["read_snapshot_id"]]
    if not gone.empty:
        conn.execute(
            e.delete().where(e.c.snapshot_id == sa.bindparam("s")),
            [{"s": s} for s in gone["read_snapshot_id"]],
        )
    rows = snapshots.merge(won[[*EOD_KEYS, "snapshot_id"]], on=EOD_KEYS)
    _insert(
        conn,
        e,
        rows[
            [
                "snapshot_id",
                "instrument_id",
                "book_id",
                "business_date",
                "quantity_micro_units",
                "avg_price",
                "realized_pnl",
            ]
        ],
    )
    _analyze_if_grown(conn, [e], len(rows))


def _event(write: EodWrite, stamp: int) -> PositionSnapshotCreated:
    return PositionSnapshotCreated(
        book_id=write.book_id,
        business_date=write.business_date,
        as_of=write.as_of.to_pydatetime(),
        snapshot_id=write.snapshot_id,
        position_count=write.position_count,
        restatement=write.restatement,
        occurred_at=from_micros(stamp).to_pydatetime(),
    )
