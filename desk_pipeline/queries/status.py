"""What waits for the operator: `desk status` and `desk quarantine`."""

import json
from typing import Any

from typing_extensions import TypedDict

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.completeness import incomplete_eods
from desk_pipeline.queries.stale import stale_headers
from desk_pipeline.queries.values import backfill_command, iso_instant, text


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
    incomplete_days: list[str]
    quarantined: int
    events_pending: int
    events_parked: int


class ParkedEvent(TypedDict):
    """An event the relay set aside: no transport can carry it; its book's later events wait."""

    event_id: str
    book_id: str
    business_date: str
    reason: str


class IncompleteEod(TypedDict):
    """A stored EOD whose valuation or ranking is not the one computed from it.

    ``valuation`` and ``ranking`` are each ``current``, ``missing`` (none stored though the
    EOD has positions), ``older_snapshot`` (the one stored was computed from the snapshot this
    EOD replaced) or ``not_needed`` (the EOD holds nothing to value or rank).
    """

    book_id: str
    business_date: str
    as_of: str
    valuation: str
    ranking: str


class StatusDocument(TypedDict):
    """`desk status --json`."""

    books: list[BookStatus]
    quarantined_total: int
    quarantined_unattributed: int
    events_pending_total: int
    events_parked_total: int
    parked_events: list[ParkedEvent]
    incomplete_days: list[str]
    incomplete_eods: list[IncompleteEod]
    incomplete_fix: str | None


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
        "trade_id": text(row.trade_id),
        "reason": text(row.reason),
        "reason_code": text(row.reason_code),
        "row_number": int(row.row_number),
        "raw": text(row.raw),
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
        ``{"books": [{"book_id", "latest_eod", "latest_as_of", "stale_days",
        "incomplete_days", "quarantined", "events_pending", "events_parked"}],
        "quarantined_total", "quarantined_unattributed", "events_pending_total",
        "events_parked_total", "parked_events": [{"event_id", "book_id", "business_date",
        "reason"}], "incomplete_days", "incomplete_eods": [{"book_id", "business_date",
        "as_of", "valuation", "ranking"}], "incomplete_fix"}``; quarantined rows without a
        readable book_id count as unattributed; pending events include parked ones and those
        waiting behind. A stale day awaits restatement: late trades changed its EOD, or a
        changed or late mark its valuation and ranking. An incomplete day has a stored EOD
        whose valuation or ranking is missing or was computed from an older snapshot
        (``domain.completeness``: a run stopped between the EOD and them); ``incomplete_fix``
        is the backfill that derives them again, from the first such day to the last (null
        when none).
    """
    headers = stale_headers(repo)
    incomplete = incomplete_eods(repo.eod_derivations())
    quarantined = repo.quarantined()["raw"].map(_book_of)
    pending = repo.pending_events(limit=10**9)["book_id"].value_counts()
    parked_rows = repo.parked_events()
    parked = parked_rows["book_id"].value_counts()
    by_book = quarantined.value_counts()
    books = sorted({*headers["book_id"], *incomplete["book_id"], *by_book.index, *pending.index})
    incomplete_days = sorted(incomplete["business_date"].unique())
    rows: list[BookStatus] = []
    for book in books:
        own = headers[headers["book_id"] == book].sort_values("business_date", kind="stable")
        latest = own.iloc[-1] if len(own) else None
        rows.append(
            {
                "book_id": book,
                "latest_eod": None if latest is None else latest["business_date"],
                "latest_as_of": None if latest is None else iso_instant(latest["as_of_us"]),
                "stale_days": list(own.loc[own["stale"], "business_date"]),
                "incomplete_days": list(
                    incomplete.loc[incomplete["book_id"] == book, "business_date"]
                ),
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
        "incomplete_days": incomplete_days,
        "incomplete_eods": [
            {
                "book_id": str(r.book_id),
                "business_date": str(r.business_date),
                "as_of": iso_instant(r.as_of_us),
                "valuation": str(r.valuation),
                "ranking": str(r.ranking),
            }
            for r in incomplete.itertuples()
        ],
        "incomplete_fix": (
            backfill_command(incomplete_days[0], incomplete_days[-1]) if incomplete_days else None
        ),
    }
