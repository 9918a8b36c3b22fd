"""The trading book's ingestion steps: one batch's digest, versions, current trades, late changes.

Functions on the caller's connection, called by :class:`TradingBookStore` inside its ingestion
transaction; they touch only the trading book's tables. Also the frames its reads return
(:func:`trades_from_keys` for current_trades, whose ids are keys of ``id_dictionary``).
"""

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import (
    _insert,
    _upsert,
)
from desk_pipeline.adapters.warehouse.codec import from_micros
from desk_pipeline.adapters.warehouse.id_dictionary import IdDictionary
from desk_pipeline.domain.positions.trades import latest_versions
from desk_pipeline.domain.schema import (
    KEYED_TRADE_DTYPES,
    QUARANTINE_DTYPES,
    TRADE_COLUMNS,
    TRADE_DTYPES,
    conform,
)


def content_digest(frame: pd.DataFrame) -> str:
    """A stable digest of a frame's content, naming a batch for idempotent re-ingestion."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def _batch_digest(trades: pd.DataFrame, rejected: pd.DataFrame) -> str:
    """The batch's name for idempotent re-ingestion: a digest of its accepted and rejected rows."""
    digest = content_digest(trades) + content_digest(rejected)
    return hashlib.sha256(digest.encode()).hexdigest()


def _advance_watermark(conn: sa.Connection, watermark: tuple[str, int] | None, stamp: int) -> None:
    if watermark is None:
        return
    _upsert(
        conn,
        t.source_watermarks,
        [{"source": watermark[0], "watermark": watermark[1], "updated_at_us": stamp}],
        keys=["source"],
        newer="watermark",
    )


def _ingested(conn: sa.Connection, source: str, digest: str) -> sa.Row[tuple[int, int]] | None:
    """(accepted, quarantined) of the batch already ingested from ``source`` as ``digest``."""
    b = t.ingested_batches.c
    return conn.execute(
        sa.select(b.accepted, b.quarantined).where(b.source == source, b.content_sha256 == digest)
    ).first()


def _record_batch(
    conn: sa.Connection, source: str, digest: str, stamp: int, counts: dict[str, int]
) -> None:
    """The ingested_batches row; ``counts``: received, accepted, quarantined."""
    row = {"source": source, "content_sha256": digest, "ingested_at_us": stamp, **counts}
    conn.execute(t.ingested_batches.insert(), row)


def _any_between(conn: sa.Connection, low: str, high: str) -> bool:
    """Whether trade_versions stores any trade_id in [low, high]: one primary-key range probe."""
    v = t.trade_versions.c
    probe = sa.select(v.trade_id).where(v.trade_id.between(low, high)).limit(1)
    return conn.execute(probe).first() is not None


def _last_rowid(conn: sa.Connection, table: sa.Table) -> int | None:
    """The highest rowid of a SQLite table (0 when empty); None on other databases."""
    if conn.dialect.name != "sqlite":
        return None
    last = conn.exec_driver_sql(f"SELECT coalesce(max(rowid), 0) FROM {table.name}")
    return int(last.scalar_one())


def _advancing(new: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """The latest new version of each trade, where newer than its stored one.

    Returns:
        trade_id, version, status, book_id, instrument_id, quantity, price, trade_time_us,
        plus old_version, old_book and old_us, the replaced version's (NaN for a trade seen
        for the first time).
    """
    incoming = _trade_rows(latest_versions(new), source=None, stamp=None)
    if stored.empty:
        # Every trade is seen for the first time, as a new day's are: no join (it hashed every
        # id of the batch to find nothing), and each version is newer than none.
        first_seen = incoming.assign(
            old_version=np.nan,
            old_book=pd.Series(np.nan, index=incoming.index, dtype=object),
            old_us=np.nan,
        )
        newer = first_seen["version"].to_numpy() > 0
        return first_seen if newer.all() else first_seen[newer]
    current = _trade_rows(latest_versions(stored), source=None, stamp=None)
    merged = incoming.merge(
        current[["trade_id", "version", "book_id", "trade_time_us"]].rename(
            columns={"version": "old_version", "book_id": "old_book", "trade_time_us": "old_us"}
        ),
        on="trade_id",
        how="left",
    )
    return merged[merged["version"] > merged["old_version"].fillna(0)]


def _write_current(
    conn: sa.Connection,
    advancing: pd.DataFrame,
    since_rowid: int | None,
    dictionaries: tuple[IdDictionary, IdDictionary],
) -> None:
    """Write the advancing versions (see :func:`_advancing`) to current_trades.

    ``dictionaries`` (books, instruments) hold a key for every id of the batch
    (:func:`id_dictionary._assign_keys`). SQLite copies the versions from the trade_versions rows
    just stored (rowid above ``since_rowid``: a rowid table takes max(rowid) + 1, and the batch
    holds the write lock) joined to the dictionary tables, in one statement, the newest version
    of a trade winning, instead of binding 100k rows from Python again. The joins are outer: an
    id without a key would be a NULL key, refused by the table, not a trade silently dropped.
    """
    columns = [c.name for c in t.current_trades.columns]
    if since_rowid is not None:
        keys = {"book_key": "b.book_key", "instrument_key": "i.instrument_key"}
        selected = ", ".join(keys.get(c, f"v.{c}") for c in columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        conn.exec_driver_sql(
            f"INSERT INTO current_trades ({', '.join(columns)}) SELECT {selected}"
            " FROM trade_versions AS v"
            " LEFT JOIN book_keys AS b ON b.book_id = v.book_id"
            " LEFT JOIN instrument_keys AS i ON i.instrument_id = v.instrument_id"
            f" WHERE v.rowid > ? ORDER BY v.rowid ON CONFLICT (trade_id) DO UPDATE SET {updates}"
            " WHERE excluded.version > current_trades.version",
            (since_rowid,),
        )
        return
    books, instruments = dictionaries
    rows = advancing.assign(
        book_key=books.keys_of(advancing["book_id"], where="ingest current_trades"),
        instrument_key=instruments.keys_of(
            advancing["instrument_id"], where="ingest current_trades"
        ),
    )[columns]
    # A trade seen for the first time has no row to conflict with: a plain bulk insert,
    # cheaper than an upsert (on PostgreSQL, no staging table).
    first_seen = advancing["old_version"].isna().to_numpy()
    _insert(conn, t.current_trades, rows[first_seen])
    _upsert(conn, t.current_trades, rows[~first_seen], keys=["trade_id"], newer="version")


def _touched(advancing: pd.DataFrame) -> pd.DataFrame:
    """book_id, time_us (int64) and trade_id of the new versions and of those they replace.

    Both the new version's book and time and the replaced version's are affected.
    """
    touched = pd.DataFrame(
        {
            "book_id": advancing["book_id"],
            "time_us": advancing["trade_time_us"].to_numpy(dtype="int64"),
            "trade_id": advancing["trade_id"],
        }
    )
    replaced = advancing["old_version"].notna().to_numpy()
    if not replaced.any():
        return touched  # trades seen for the first time replace nothing
    old = pd.DataFrame(
        {
            "book_id": advancing["old_book"],
            "time_us": advancing["old_us"],
            "trade_id": advancing["trade_id"],
        }
    ).dropna()
    touched = pd.concat([touched, old])
    touched["time_us"] = touched["time_us"].astype("int64")
    return touched


def _trade_rows(trades: pd.DataFrame, *, source: str | None, stamp: int | None) -> pd.DataFrame:
    frame = trades.loc[:, list(TRADE_COLUMNS)].copy()
    frame["trade_time_us"] = frame.pop("trade_time").dt.tz_convert("UTC").astype("int64") // 1000
    frame["trade_time_us"] = frame["trade_time_us"].astype("int64")
    if source is not None:
        frame["source"] = source
        frame["ingested_at_us"] = stamp
    return frame


def trades_from_keys(
    rows: pd.DataFrame, books: IdDictionary, instruments: IdDictionary
) -> pd.DataFrame:
    """A trades frame from current_trades rows, with the ids as categoricals of the dictionary.

    What the warehouse hands the position engine: the codes come from the stored keys by an
    array lookup, so no id string is hashed or made per trade.

    Args:
        rows: trade_id, version, status, book_key, instrument_key (ints), quantity, price,
            trade_time_us (int, µs since the epoch, UTC).
        books: the book dictionary, holding every book_key of ``rows``.
        instruments: the instrument dictionary, holding every instrument_key of ``rows``.

    Returns:
        KEYED_TRADE_DTYPES columns: book_id and instrument_id are categoricals whose categories
        are the whole dictionary, in id order.

    Raises:
        WarehouseError: a key is not in its dictionary.
    """
    ids = {
        "book_id": books.categorical(rows["book_key"].to_numpy(), where="book_key"),
        "instrument_id": instruments.categorical(
            rows["instrument_key"].to_numpy(), where="instrument_key"
        ),
    }
    return _trades_frame(rows.assign(**ids), KEYED_TRADE_DTYPES)


def _trades_frame(rows: pd.DataFrame, dtypes: Mapping[str, str] = TRADE_DTYPES) -> pd.DataFrame:
    """Stored trade rows (trade_time as trade_time_us) as a frame of ``dtypes``."""
    frame = rows.assign(trade_time=from_micros(rows["trade_time_us"].to_numpy(dtype="int64")))
    return conform(frame, dtypes)


def _conflict_quarantine(conflicts: pd.DataFrame, source: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "source": source,
            "row_number": conflicts.index.to_numpy(dtype="int64") if len(conflicts) else [],
            "trade_id": conflicts["trade_id"].to_numpy(),
            "reason_code": "conflicting_duplicate",
            "reason": [
                f"trade {tid} version {v} is already stored with different content"
                for tid, v in zip(conflicts["trade_id"], conflicts["version"], strict=True)
            ],
            "raw": conflicts.astype(str).to_json(orient="records", lines=True).splitlines()
            if len(conflicts)
            else [],
        }
    )
    return conform(frame, QUARANTINE_DTYPES)


def _joined_ids(ids: pd.Series) -> str:
    """Trade ids behind a late change, for operators; capped so a bulk correction stays small."""
    return ",".join(sorted(set(ids)))[:10_000]
