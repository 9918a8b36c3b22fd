"""Builders of domain frames and landing files for tests."""

import csv
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.simulator import DeskSimulator
from desk_pipeline.adapters.trade_sources import TradeSource
from desk_pipeline.adapters.warehouse import PositionRepository, now_micros
from desk_pipeline.domain.precision import to_units
from desk_pipeline.domain.reference.validation import ValidatedReference, validate_reference
from desk_pipeline.domain.schema import (
    POSITION_STATE_DTYPES,
    QUARANTINE_DTYPES,
    TRADE_COLUMNS,
    TRADE_DTYPES,
    conform,
    empty_frame,
)

T0 = pd.Timestamp("2026-03-02 09:00", tz="UTC")
# One defect per quarantine reason: the cells that make a good trade row get that reason code.
DEFECTS: dict[str, dict[str, str]] = {
    "quantity_not_numeric": {"quantity": "abc"},
    "price_not_numeric": {"price": "NaN"},
    "price_not_positive": {"price": "-1"},
    "empty_book_id": {"book_id": ""},
    "bad_trade_time": {"trade_time": "yesterday"},
    "unknown_status": {"status": "MAYBE"},
    "zero_quantity": {"quantity": "0"},
    "bad_version": {"version": "1.5"},
    "quantity_not_finite": {"quantity": "inf"},
    "instrument_id_too_long": {"instrument_id": "X" * 65},
}
# The header line of each reference landing file: the contract's columns.
REFERENCE_HEADERS = {
    "instruments": (
        "instrument_id,name,asset_class,issuer_type,issuer,rating,maturity_date,currency"
    ),
    "prices": "instrument_id,price_date,price",
    "books": "book_id,base_currency,holding_period_days",
    "fx_rates": "currency,rate_date,usd_per_unit",
}


def at(day: str, hhmm: str) -> pd.Timestamp:
    """``hhmm`` on ``day`` (YYYY-MM-DD), UTC."""
    return pd.Timestamp(f"{day} {hhmm}", tz="UTC")


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
    return empty_frame(POSITION_STATE_DTYPES)


def with_micro_units(positions: pd.DataFrame) -> pd.DataFrame:
    """Hand-written position rows with the exact micro-units of their float ``quantity``."""
    micro_units = to_units(positions["quantity"]).astype("int64")
    return positions.assign(quantity_micro_units=micro_units)


def defective_rows(good: dict) -> list[dict]:
    """One copy of ``good`` per DEFECTS entry, its trade_id the reason code it must get."""
    return [dict(good, trade_id=code, **cells) for code, cells in DEFECTS.items()]


def as_received(
    rows: Iterable, columns: Sequence[str] | None = None, dtype: object = None
) -> pd.DataFrame:
    """Rows as a source hands them over: the index is the 1-based row number."""
    frame = pd.DataFrame(list(rows), columns=columns, dtype=dtype)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame


def validated_reference(
    kind: str, source: TradeSource | DeskSimulator, day: pd.Timestamp
) -> ValidatedReference:
    """``validate_reference`` of all the reference data and marks ``source`` has for ``day``."""
    return validate_reference(
        kind,
        instruments=source.instruments(),
        books=source.books(),
        prices=source.prices(day, day),
        fx_rates=source.fx_rates(day, day),
    )


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


def write_reference_files(folder: Path, **lines: list[str]) -> None:
    """Reference landing files (``instruments=`` is instruments.csv): the header, then ``lines``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in lines.items():
        text = "".join(f"{line}\n" for line in [REFERENCE_HEADERS[name], *rows])
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")


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
        writes += repo.keep_last_eod(with_micro_units(frame), now_micros())
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


# The simulator's first business days of March 2026, and three of its books, each holding
# positions on every one of them: what a stopped backfill leaves is made on these.
INCOMPLETE_DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]
UNRANKED, UNVALUED, RESTATED = "REPO-EUR-01", "SECLEND-USD-01", "MATCHED-GBP-01"


def leave_incomplete(repo: PositionRepository) -> None:
    """What a backfill stopped between its steps leaves on a simulator desk of INCOMPLETE_DAYS.

    UNRANKED's ranking of day 2 and UNVALUED's valuation of day 1 deleted, and a late trade of
    RESTATED on day 3 ingested: the caller restates that EOD (an ``eod_positions`` run, or the
    step's function) and nothing after it.
    """
    days = INCOMPLETE_DAYS
    r, v = t.collateral_rankings, t.eod_valuations
    with repo.engine.begin() as conn:
        conn.execute(r.delete().where(r.c.book_id == UNRANKED, r.c.business_date == days[1]))
        conn.execute(v.delete().where(v.c.book_id == UNVALUED, v.c.business_date == days[0]))
    _, held = repo.eod(RESTATED, days[2])
    instrument = held.loc[held["quantity"] != 0, "instrument_id"].iloc[0]
    late = trade("LATE-1", 7, 1.0, book=RESTATED, instrument=instrument, at=at(days[2], "10:00"))
    repo.ingest("landing:late.csv", 1, make_trades([late]), empty_frame(QUARANTINE_DTYPES))
