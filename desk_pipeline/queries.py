"""The desk's read side: every JSON document `desk` prints and the HTTP API serves, built once."""

import json
from typing import Any, NotRequired

import dagster as dg
import pandas as pd
from typing_extensions import TypedDict

from desk_pipeline.adapters import health
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs import runs as desk_runs
from desk_pipeline.defs.settings import ENVIRONMENT, environment_values, setting_problems
from desk_pipeline.domain.collateral.ranking import issuer_concentration
from desk_pipeline.domain.errors import InvalidRangeError, NoEndOfDayError
from desk_pipeline.domain.parsing import parse_dates
from desk_pipeline.domain.precision import exact_quantities, for_output


class Position(TypedDict):
    """One position of a stored EOD; the valuation fields only with ``marks``."""

    instrument_id: str
    quantity: float
    avg_price: float
    realized_pnl: float
    price: NotRequired[float | None]
    price_date: NotRequired[str | None]
    stale_price: NotRequired[bool]
    currency: NotRequired[str | None]
    fx_rate: NotRequired[float | None]
    base_currency: NotRequired[str | None]
    market_value: NotRequired[float | None]
    market_value_base: NotRequired[float | None]
    unrealized_pnl: NotRequired[float | None]
    unrealized_pnl_base: NotRequired[float | None]
    reason: NotRequired[str | None]


class PositionsDocument(TypedDict):
    """`desk positions --json`."""

    book_id: str
    business_date: str
    as_of: str
    positions: list[Position]


class RankingItem(TypedDict):
    """One held instrument of a ranking; rank null and a reason when ineligible."""

    rank: int | None
    instrument_id: str
    quantity: float
    price: float | None
    fx_rate: float | None
    haircut: float | None
    value: float | None
    eligible: bool
    reason: str | None


class RankingDocument(TypedDict):
    """`desk ranking --json`."""

    book_id: str
    business_date: str
    as_of: str
    items: list[RankingItem]


class IssuerShare(TypedDict):
    """One issuer's eligible lendable value and share of the book's."""

    issuer: str
    value: float
    share: float | None
    over_limit: bool


class ConcentrationDocument(TypedDict):
    """`desk concentration --json`."""

    book_id: str
    business_date: str
    as_of: str
    limit: float
    issuers: list[IssuerShare]


class QuarantinedRow(TypedDict):
    """One rejected input row (`desk quarantine --json` is a list of them)."""

    source: str
    trade_id: str | None
    reason: str | None
    reason_code: str | None
    row_number: int
    raw: str | None
    sources: list[str]


class BookStatus(TypedDict):
    """One book's line of `desk status --json`."""

    book_id: str
    latest_eod: str | None
    latest_as_of: str | None
    stale_days: list[str]
    quarantined: int
    events_pending: int
    events_parked: int


class ParkedEvent(TypedDict):
    """An event the relay set aside: no transport can carry it; its book's later events wait."""

    event_id: str
    book_id: str
    business_date: str
    reason: str


class StatusDocument(TypedDict):
    """`desk status --json`."""

    books: list[BookStatus]
    quarantined_total: int
    quarantined_unattributed: int
    events_pending_total: int
    events_parked_total: int
    parked_events: list[ParkedEvent]


class Book(TypedDict):
    """A book with stored EODs: how many days, the first and the latest."""

    book_id: str
    days: int
    first_eod: str
    latest_eod: str


class BooksDocument(TypedDict):
    """Every book with a stored EOD, by book id."""

    books: list[Book]


class StoredDay(TypedDict):
    """One stored EOD of a book: its day, the snapshot's as-of and whether it awaits restatement."""

    business_date: str
    as_of: str
    stale: bool


class DaysDocument(TypedDict):
    """A book's stored EOD days, oldest first."""

    book_id: str
    days: list[StoredDay]


class Check(TypedDict):
    """One check of `desk doctor`: its name, whether it passed, a sentence to act on."""

    check: str
    ok: bool
    detail: str


class DoctorDocument(TypedDict):
    """`desk doctor --json`."""

    ok: bool
    checks: list[Check]
    repaired: list[str]


# The dates a command accepts: any the desk could hold, within pandas' nanosecond range.
_DATE_BOUNDS = (pd.Timestamp("1900-01-01"), pd.Timestamp("2200-01-01"))


def business_day(value: str, option: str) -> str:
    """``value``, a calendar date written YYYY-MM-DD (ISO 8601), as that string.

    Nothing else is guessed: ``11/12/2026`` (12 November or 11 December?), ``20261120`` and
    ``Nov 20 2026`` are refused, as is a date that does not exist (``2026-02-30``).

    Raises:
        InvalidRangeError: ``value`` is not such a date; the message names ``option``.
    """
    dates, problems = parse_dates(pd.Series([value.strip()]), *_DATE_BOUNDS)
    if problems.iloc[0]:
        raise InvalidRangeError(
            f"{option} {value!r} is not a date written YYYY-MM-DD, e.g. 2026-03-06"
        )
    return str(dates.iloc[0].strftime("%Y-%m-%d"))


def _number(value: Any) -> float | None:
    # Every price, rate, average, P&L and value printed goes through the one rounding rule.
    return None if pd.isna(value) else for_output(value)


def _quantity(value: Any) -> float:
    # Exact decimals already; back on the micro-unit grid should an older row carry float dust.
    return float(exact_quantities(value))


def _text(value: Any) -> str | None:
    # pandas 3 reads a missing string as NaN; JSON wants null.
    return None if pd.isna(value) else str(value)


def positions_document(
    repo: PositionRepository, book: str, business_date: str, *, marks: bool = False
) -> PositionsDocument:
    """The `desk positions --json` document: the stored EOD of ``book`` on ``business_date``.

    Returns:
        ``{"book_id", "business_date", "as_of", "positions": [{"instrument_id", "quantity",
        "avg_price", "realized_pnl"}]}``, flat positions omitted; with ``marks`` each position
        also carries its valuation (:func:`_position`).

    Raises:
        NoEndOfDayError: no EOD is stored for that book and day, or (``marks``) it is not valued.
    """
    stored = repo.valued_eod(book, business_date) if marks else repo.eod(book, business_date)
    if stored is None:
        raise NoEndOfDayError(f"no end-of-day positions for book {book} on {business_date}")
    header, rows = stored
    rows = rows[exact_quantities(rows["quantity"]) != 0]
    if marks and not rows["valued"].all():
        raise NoEndOfDayError(
            f"the end-of-day positions of book {book} on {business_date} (snapshot "
            f"{header['snapshot_id']}) are not valued yet; run `desk backfill --start "
            f"{business_date} --end {business_date}` or materialise eod_valuation"
        )
    return {
        "book_id": book,
        "business_date": business_date,
        "as_of": header["as_of"].isoformat(),
        "positions": [_position(r, marks=marks) for r in rows.itertuples()],
    }


def _position(row: Any, *, marks: bool) -> Position:
    """One stored EOD row; with ``marks`` also its valuation, null where no mark or rate exists.

    ``row`` is an ``itertuples()`` row of the stored EOD (valued with ``marks``).
    """
    position: Position = {
        "instrument_id": str(row.instrument_id),
        "quantity": _quantity(row.quantity),
        "avg_price": for_output(row.avg_price),
        "realized_pnl": for_output(row.realized_pnl),
    }
    if marks:
        # Key by key, in the document's order: the TypedDict checks each value's type.
        position["price"] = _number(row.price)
        position["price_date"] = (
            None if pd.isna(row.price_date) else row.price_date.strftime("%Y-%m-%d")
        )
        position["stale_price"] = bool(row.stale_price)
        position["currency"] = _text(row.currency)
        position["fx_rate"] = _number(row.fx_rate)
        position["base_currency"] = _text(row.base_currency)
        position["market_value"] = _number(row.market_value)
        position["market_value_base"] = _number(row.market_value_base)
        position["unrealized_pnl"] = _number(row.unrealized_pnl)
        position["unrealized_pnl_base"] = _number(row.unrealized_pnl_base)
        position["reason"] = _text(row.reason)
    return position


def _stored_ranking(
    repo: PositionRepository, book: str, business_date: str
) -> tuple[pd.Timestamp, pd.DataFrame]:
    """The stored ranking of a book-day and its EOD's as_of (UTC).

    A stored EOD that holds nothing (every trade cancelled or moved away) ranks nothing: its
    ranking is empty, not missing.
    """
    rows = repo.ranking(book, business_date)
    if len(rows):
        return rows["as_of"].iloc[0], rows
    stored = repo.eod(book, business_date)
    if stored is not None and not (stored[1]["quantity"] != 0).any():
        return stored[0]["as_of"], rows
    raise NoEndOfDayError(f"no collateral ranking for book {book} on {business_date}")


def ranking_document(repo: PositionRepository, book: str, business_date: str) -> RankingDocument:
    """The `desk ranking --json` document: eligible items by lendable value, then the rest.

    Returns:
        ``{"book_id", "business_date", "as_of", "items": [{"rank", "instrument_id", "quantity",
        "price", "fx_rate", "haircut", "value", "eligible", "reason"}]}``; value in the book's
        base currency, rank null for ineligible items.

    Raises:
        NoEndOfDayError: no ranking is stored for that book and day.
    """
    as_of, rows = _stored_ranking(repo, book, business_date)
    return {
        "book_id": book,
        "business_date": business_date,
        "as_of": as_of.isoformat(),
        "items": [_ranking_item(r) for r in rows.itertuples()],
    }


def _ranking_item(row: Any) -> RankingItem:
    """One ``itertuples()`` row of a stored ranking as its document item."""
    return {
        "rank": None if pd.isna(row.rank) else int(row.rank),
        "instrument_id": str(row.instrument_id),
        "quantity": _quantity(row.quantity),
        "price": _number(row.price),
        "fx_rate": _number(row.fx_rate),
        "haircut": _number(row.haircut),
        "value": _number(row.value),
        "eligible": bool(row.eligible),
        "reason": _text(row.reason),
    }


def concentration_document(
    repo: PositionRepository, book: str, business_date: str, limit: float
) -> ConcentrationDocument:
    """The `desk concentration --json` document: each issuer's share of eligible value.

    Args:
        repo: the warehouse.
        book: book id.
        business_date: YYYY-MM-DD.
        limit: the largest share one issuer may hold (DESK_ISSUER_CONCENTRATION_LIMIT), 0..1.

    Returns:
        ``{"book_id", "business_date", "as_of", "limit", "issuers": [{"issuer", "value",
        "share", "over_limit"}]}``; shares from the stored ranking, issuers from the stored
        instrument reference data.

    Raises:
        NoEndOfDayError: no ranking is stored for that book and day.
    """
    as_of, rows = _stored_ranking(repo, book, business_date)
    instruments = repo.reference_as_of(pd.Timestamp(business_date), pd.Timestamp(business_date))
    shares = issuer_concentration(rows, instruments.instruments, limit)
    return {
        "book_id": book,
        "business_date": business_date,
        "as_of": as_of.isoformat(),
        "limit": limit,
        "issuers": [_issuer_share(r) for r in shares.itertuples()],
    }


def _issuer_share(row: Any) -> IssuerShare:
    """One ``itertuples()`` row of :func:`issuer_concentration` as its document item."""
    return {
        "issuer": str(row.issuer),
        "value": for_output(float(row.value)),
        "share": _number(row.share),
        "over_limit": bool(row.over_limit),
    }


def quarantine_document(repo: PositionRepository) -> list[QuarantinedRow]:
    """The `desk quarantine --json` document: every distinct rejected input, oldest first.

    Returns:
        ``[{"source", "trade_id", "reason", "reason_code", "row_number", "raw", "sources"}]``;
        ``source`` and ``row_number`` are where it first arrived, ``sources`` every source it
        arrived in; ``raw`` is the row as received (JSON text), null for an unreadable file.
    """
    return [_quarantined_row(r) for r in repo.quarantined().itertuples()]


def _quarantined_row(row: Any) -> QuarantinedRow:
    """One ``itertuples()`` row of the stored quarantine as its document item."""
    return {
        "source": str(row.source),
        "trade_id": _text(row.trade_id),
        "reason": _text(row.reason),
        "reason_code": _text(row.reason_code),
        "row_number": int(row.row_number),
        "raw": _text(row.raw),
        "sources": list(row.sources),
    }


def _book_of(raw: Any) -> str | None:
    # A quarantined row keeps the row as received (JSON); an unreadable file has none.
    try:
        book = json.loads(raw).get("book_id")
    except (TypeError, ValueError, AttributeError):
        return None
    if book is None:
        return None
    return str(book).strip() or None


def status_document(repo: PositionRepository) -> StatusDocument:
    """The `desk status --json` document: per book, latest EOD, stale days, quarantine, backlog.

    Returns:
        ``{"books": [{"book_id", "latest_eod", "latest_as_of", "stale_days", "quarantined",
        "events_pending", "events_parked"}], "quarantined_total", "quarantined_unattributed",
        "events_pending_total", "events_parked_total", "parked_events": [{"event_id",
        "book_id", "business_date", "reason"}]}``; quarantined rows without a readable book_id
        count as unattributed; pending events include parked ones and those waiting behind.
    """
    headers = repo.eod_headers()
    quarantined = repo.quarantined()["raw"].map(_book_of)
    pending = repo.pending_events(limit=10**9)["book_id"].value_counts()
    parked_rows = repo.parked_events()
    parked = parked_rows["book_id"].value_counts()
    by_book = quarantined.value_counts()
    books = sorted({*headers["book_id"], *by_book.index, *pending.index})
    rows: list[BookStatus] = []
    for book in books:
        own = headers[headers["book_id"] == book].sort_values("business_date", kind="stable")
        latest = own.iloc[-1] if len(own) else None
        rows.append(
            {
                "book_id": book,
                "latest_eod": None if latest is None else latest["business_date"],
                "latest_as_of": None if latest is None else _as_of(latest["as_of_us"]),
                "stale_days": list(own.loc[own["stale"], "business_date"]),
                "quarantined": int(by_book.get(book, 0)),
                "events_pending": int(pending.get(book, 0)),
                "events_parked": int(parked.get(book, 0)),
            }
        )
    return {
        "books": rows,
        "quarantined_total": len(quarantined),
        "quarantined_unattributed": int(quarantined.isna().sum()),
        "events_pending_total": int(pending.sum()),
        "events_parked_total": len(parked_rows),
        "parked_events": [
            {
                "event_id": str(r.event_id),
                "book_id": str(r.book_id),
                "business_date": str(r.business_date),
                "reason": str(r.parked_reason),
            }
            for r in parked_rows.itertuples()
        ],
    }


def _as_of(as_of_us: Any) -> str:
    return pd.Timestamp(int(as_of_us), unit="us", tz="UTC").isoformat()


def books_document(repo: PositionRepository) -> BooksDocument:
    """Every book with at least one stored EOD, by book id."""
    days = repo.eod_headers().groupby("book_id")["business_date"]
    return {
        "books": [
            {"book_id": book, "days": int(n), "first_eod": first, "latest_eod": latest}
            for book, n, first, latest in zip(
                days.size().index, days.size(), days.min(), days.max(), strict=True
            )
        ]
    }


def days_document(repo: PositionRepository, book: str) -> DaysDocument:
    """The stored EOD days of ``book``, oldest first, each with its as-of and staleness.

    Raises:
        NoEndOfDayError: no EOD of ``book`` is stored on any day.
    """
    headers = repo.eod_headers()
    own = headers[headers["book_id"] == book].sort_values("business_date", kind="stable")
    if own.empty:
        raise NoEndOfDayError(f"no end-of-day positions for book {book} on any day")
    return {
        "book_id": book,
        "days": [
            {
                "business_date": str(r.business_date),
                "as_of": _as_of(r.as_of_us),
                "stale": bool(r.stale),
            }
            for r in own.itertuples()
        ],
    }


def base_currency(repo: PositionRepository, book: str, business_date: str) -> str | None:
    """``book``'s base currency (the unit of its ranking values) from stored reference data.

    None when the reference data of ``business_date`` does not list the book.
    """
    day = pd.Timestamp(business_date)
    books = repo.reference_as_of(day, day).books
    currency = books.loc[books["book_id"] == book, "base_currency"]
    return None if currency.empty else str(currency.iloc[0])


def doctor_document(instance: dg.DagsterInstance | None, repaired: list[str]) -> DoctorDocument:
    """The `desk doctor --json` document: each check of the configuration; changes nothing.

    Args:
        instance: the desk's Dagster instance, whose runs held by a dead desk process fail the
            ``runs`` check; None when DAGSTER_HOME holds none yet (no ``runs`` check).
        repaired: what the caller repaired first (``Repair.describe()`` lines), listed as is.

    Returns:
        ``{"ok", "checks": [{"check", "ok", "detail"}], "repaired"}``: checks ``warehouse``,
        ``migrations``, ``source``, ``broker``, one ``settings`` per other bad DESK_* value,
        then ``runs``; ``ok`` when all passed.
    """
    findings = _configuration_findings()
    if instance is not None:
        orphans = [run.run_id for run in desk_runs.orphaned_runs(instance)]
        detail = (
            f"{len(orphans)} run(s) whose desk process is gone ({', '.join(orphans)}); "
            "run `desk doctor --repair` (any other desk command repairs them too)"
            if orphans
            else "no run is held by a dead desk process"
        )
        findings.append(health.Finding("runs", not orphans, detail))
    return {
        "ok": all(f.ok for f in findings),
        "checks": [{"check": f.check, "ok": f.ok, "detail": f.detail} for f in findings],
        "repaired": repaired,
    }


def _configuration_findings() -> list[health.Finding]:
    # Each setting is checked on its own, so one bad value does not hide the other checks; a
    # bad value's finding is the very line the other commands print.
    problems = setting_problems()
    values = environment_values()
    if "DESK_WAREHOUSE_URL" in problems:
        findings = [
            health.Finding("warehouse", False, problems.pop("DESK_WAREHOUSE_URL")),
            health.Finding("migrations", False, "no warehouse to check"),
        ]
    else:
        findings = health.warehouse_findings(values["warehouse_url"])
    for check, field, probe in (
        ("source", "trade_source", health.source_finding),
        ("broker", "event_publisher", health.broker_finding),
    ):
        if ENVIRONMENT[field] in problems:
            findings.append(health.Finding(check, False, problems.pop(ENVIRONMENT[field])))
        else:
            findings.append(probe(values[field]))
    return findings + [health.Finding("settings", False, line) for line in problems.values()]
