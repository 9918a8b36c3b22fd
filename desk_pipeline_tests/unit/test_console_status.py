"""The text of `desk status` under its table: the days whose EOD lacks its valuation or ranking."""

import pandas as pd

from desk_pipeline import console
from desk_pipeline.queries import IncompleteEod, StatusDocument

BOOKS = ["REPO-EUR-01", "REPO-EUR-02", "SECLEND-USD-01", "MATCHED-GBP-01"]


def day(n: int) -> str:
    return (pd.Timestamp("2026-03-02") + pd.Timedelta(days=n)).strftime("%Y-%m-%d")


def incomplete(book: str, n: int, valuation: str, ranking: str) -> IncompleteEod:
    return {
        "book_id": book,
        "business_date": day(n),
        "as_of": f"{day(n + 1)}T00:00:00+00:00",
        "valuation": valuation,
        "ranking": ranking,
    }


def status_lines(eods: list[IncompleteEod]) -> list[str]:
    days = sorted({e["business_date"] for e in eods})
    document: StatusDocument = {
        "books": [
            {
                "book_id": book,
                "latest_eod": day(20),
                "latest_as_of": f"{day(21)}T00:00:00+00:00",
                "stale_days": [],
                "incomplete_days": sorted(
                    {e["business_date"] for e in eods if e["book_id"] == book}
                ),
                "quarantined": 0,
                "events_pending": 0,
                "events_parked": 0,
            }
            for book in BOOKS
        ],
        "quarantined_total": 0,
        "quarantined_unattributed": 0,
        "events_pending_total": 0,
        "events_parked_total": 0,
        "parked_events": [],
        "incomplete_days": days,
        "incomplete_eods": eods,
        "incomplete_fix": f"desk backfill --start {days[0]} --end {days[-1]}" if days else None,
    }
    return console.render(console.status(document)).splitlines()


def test_a_complete_desk_says_so_under_the_table():
    assert status_lines([])[-1] == "every stored EOD has its valuation and ranking"


def test_each_day_names_what_is_behind_for_which_books_and_the_backfill_closes_the_list():
    # A backfill stopped after day 0's EODs: every book lacks both; day 1 one book of each kind.
    eods = [incomplete(book, 0, "missing", "missing") for book in BOOKS]
    eods += [
        incomplete(BOOKS[0], 1, "older_snapshot", "older_snapshot"),
        incomplete(BOOKS[1], 1, "current", "missing"),
        incomplete(BOOKS[2], 1, "older_snapshot", "missing"),
        incomplete(BOOKS[3], 1, "older_snapshot", "not_needed"),  # an EOD left holding nothing
    ]

    lines = status_lines(eods)

    assert lines[-7:] == [
        "incomplete: 2 day(s) whose EOD's valuation or ranking is missing or older than the EOD",
        f"  {day(0)} valuation and ranking missing: REPO-EUR-01, REPO-EUR-02 and 2 more",
        f"  {day(1)} valuation and ranking of an older snapshot: REPO-EUR-01",
        f"  {day(1)} ranking missing: REPO-EUR-02",
        f"  {day(1)} valuation of an older snapshot, ranking missing: SECLEND-USD-01",
        f"  {day(1)} valuation of an older snapshot: MATCHED-GBP-01",
        f"`desk backfill --start {day(0)} --end {day(1)}` completes them",
    ]
    assert max(len(line) for line in lines) <= console.WIDTH


def test_past_ten_days_the_rest_is_counted_and_json_lists_them():
    eods = [incomplete(BOOKS[0], n, "current", "missing") for n in range(12)]

    lines = status_lines(eods)

    assert lines[-3:] == [
        f"  {day(9)} ranking missing: REPO-EUR-01",
        "  and 2 more day(s): `desk status --json` lists each",
        f"`desk backfill --start {day(0)} --end {day(11)}` completes them",
    ]
    assert lines[-13] == (
        "incomplete: 12 day(s) whose EOD's valuation or ranking is missing or older than the EOD"
    )
