"""Builders of domain frames and landing files for tests."""

import csv
import uuid
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse import PositionRepository, now_micros
from desk_pipeline.domain.schema import (
    POSITION_DTYPES,
    TRADE_COLUMNS,
    TRADE_DTYPES,
    conform,
    empty_frame,
)

T0 = pd.Timestamp("2026-03-02 09:00", tz="UTC")


def trade(
    trade_id: str,
    quantity: float,
    price: float,
    minutes: float = 0,
    *,
    book: str = "B1",
    instrument: str = "XS0001",
    version: int = 1,
    status: str = "NEW",
    at: pd.Timestamp | None = None,
) -> dict:
    """One trade as a dict of the trade columns; ``minutes`` after T0 unless ``at`` is given."""
    return {
        "trade_id": trade_id,
        "version": version,
        "status": status,
        "book_id": book,
        "instrument_id": instrument,
        "quantity": float(quantity),
        "price": float(price),
        "trade_time": at if at is not None else T0 + pd.Timedelta(minutes=minutes),
    }


def make_trades(rows: Iterable[dict]) -> pd.DataFrame:
    """A TRADE_DTYPES frame from trade dicts."""
    rows = list(rows)
    return conform(pd.DataFrame(rows), TRADE_DTYPES) if rows else empty_frame(TRADE_DTYPES)


def no_positions() -> pd.DataFrame:
    return empty_frame(POSITION_DTYPES)


def write_landing_file(
    folder: Path, name: str, rows: list[dict], columns: list[str] | None = None
) -> Path:
    """Write a landing CSV (the contract's columns, trade_time ISO 8601)."""
    folder.mkdir(parents=True, exist_ok=True)
    columns = columns or list(TRADE_COLUMNS)
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            out = dict(row)
            if isinstance(out.get("trade_time"), pd.Timestamp):
                out["trade_time"] = out["trade_time"].isoformat()
            writer.writerow(out)
    return path


def reason_codes(reasons: pd.Series) -> list[list[str]]:
    """The ``<code>`` of every ``"<code>: <detail>"`` part of each reason; [] for None."""
    return [
        [] if reason is None else [part.split(":")[0] for part in reason.split("; ")]
        for reason in reasons
    ]


def unique_books(*desks: str) -> list[str]:
    """Book ids ``<desk>-<6 hex>`` of one fresh tag: tests sharing a broker keep apart by book."""
    tag = uuid.uuid4().hex[:6]
    return [f"{desk}-{tag}" for desk in desks]


def store_eods(repo: PositionRepository, books: list[str], days: list[str]) -> list:
    """One EOD per book and day, written day by day as a backfill would."""
    writes = []
    for day in days:
        as_of = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
        frame = pd.DataFrame(
            [
                {
                    "book_id": book,
                    "instrument_id": "DE0001",
                    "quantity": 100.0,
                    "avg_price": 1.0,
                    "realized_pnl": 0.0,
                    "business_date": day,
                    "as_of": as_of,
                }
                for book in books
            ]
        )
        writes += repo.keep_last_eod(frame, now_micros())
    return writes


def quarantined_from(repo: PositionRepository, sources: Iterable[str]) -> pd.DataFrame:
    """The stored quarantine rows (table columns) of every input that arrived in ``sources``."""
    q, a = t.quarantine, t.quarantine_arrivals
    query = (
        sa.select(q)
        .where(q.c.id.in_(sa.select(a.c.quarantine_id).where(a.c.source.in_(list(sources)))))
        .order_by(q.c.id)
    )
    with repo.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return pd.DataFrame(rows, columns=[c.name for c in q.columns])
