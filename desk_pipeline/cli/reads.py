"""The read commands: books, positions, ranking, concentration, quarantine and status."""

import click

from desk_pipeline import console, queries
from desk_pipeline.cli.terminal import BOOK_ID, ISO_DATE, emit
from desk_pipeline.cli.warehouse import open_reader, settings


@click.command()
@click.option("--book", default=None, type=BOOK_ID, help="List this book's stored days instead.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def books(book: str | None, as_json: bool) -> None:
    """The books with stored end-of-day positions, and their days: what the other commands show.

    Without --book: each book's number of days, first and latest day. With --book: each stored
    day of that book, its snapshot's as-of and whether it awaits restatement; exits 1 when the
    book has none.
    """
    repo = open_reader()
    if book is None:
        document = queries.books_document(repo)
        emit(document, as_json, lambda: console.books(document))
        return
    days = queries.days_document(repo, book)
    emit(days, as_json, lambda: console.days(days))


@click.command()
@click.option("--book", required=True, type=BOOK_ID, help="Book id.")
@click.option("--date", "business_date", required=True, type=ISO_DATE, help="Business day.")
@click.option(
    "--marks",
    is_flag=True,
    help="Add each position's mark, market value and unrealised P&L (the eod_valuation asset).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def positions(book: str, business_date: str, marks: bool, as_json: bool) -> None:
    """The stored end-of-day positions of BOOK on DATE (flat positions omitted)."""
    business_date = settings().stored_day(business_date)  # after today: exit 2
    document = queries.positions_document(open_reader(), book, business_date, marks=marks)
    emit(document, as_json, lambda: console.positions(document))


@click.command()
@click.option("--book", required=True, type=BOOK_ID, help="Book id.")
@click.option("--date", "business_date", required=True, type=ISO_DATE, help="Business day.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def ranking(book: str, business_date: str, as_json: bool) -> None:
    """The collateral ranking of BOOK on DATE: eligible items by lendable value, then the rest."""
    business_date = settings().stored_day(business_date)  # after today: exit 2
    repo = open_reader()
    document = queries.ranking_document(repo, book, business_date)
    emit(
        document,
        as_json,
        lambda: console.ranking(document, queries.base_currency(repo, book, business_date)),
    )


@click.command()
@click.option(
    "--book", default=None, type=BOOK_ID, help="Book id; without it, every book of the day."
)
@click.option("--date", "business_date", required=True, type=ISO_DATE, help="Business day.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def concentration(book: str | None, business_date: str, as_json: bool) -> None:
    """Each issuer's share of BOOK's eligible lendable value on DATE, flagged over the limit.

    Without --book: every book ranked on DATE, those holding an issuer over the limit first
    (each such issuer shown), the others with their largest issuer; --json gives every book's
    document. The limit is DESK_ISSUER_CONCENTRATION_LIMIT (default 0.25); shares come from the
    stored ranking, issuers from the stored instrument reference data.
    """
    business_date = settings().stored_day(business_date)  # after today: exit 2
    limit = settings().issuer_concentration_limit
    repo = open_reader()
    if book is None:
        day = queries.concentration_day_document(repo, business_date, limit)
        emit(
            day,
            as_json,
            lambda: console.concentration_day(day, queries.base_currencies(repo, business_date)),
        )
        return
    document = queries.concentration_document(repo, book, business_date, limit)
    emit(
        document,
        as_json,
        lambda: console.concentration(document, queries.base_currency(repo, book, business_date)),
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def quarantine(as_json: bool) -> None:
    """Every rejected input row, with its source and reason."""
    document = queries.quarantine_document(open_reader())
    emit(document, as_json, lambda: console.quarantine(document))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def status(as_json: bool) -> None:
    """Per book: latest EOD, stale days awaiting restatement, quarantined rows, pending events.

    Quarantined rows without a readable book_id are counted under "unattributed". Under the
    table: the days whose stored EOD has no valuation or ranking computed from it (a run stopped
    between them), each with what is missing or older and for which books, and the `desk
    backfill` that completes them.
    """
    document = queries.status_document(open_reader())
    emit(document, as_json, lambda: console.status(document))
