"""`desk concentration --date D` without --book: every book's document of the day, or exit 1."""

import types

import pandas as pd
import pytest

from desk_pipeline.domain.errors import NoEndOfDayError
from desk_pipeline.queries import concentration_day_document, concentration_document

DAY = "2026-03-04"
AS_OF = pd.Timestamp("2026-03-05", tz="UTC")


class Warehouse:
    """Rankings of B1 and B2 on DAY; B3's EOD holds nothing, B4's is stored but not ranked.

    Not ``ranked``: no book is ranked on DAY, and B3 holds something too.
    """

    def __init__(self, ranked: bool = True) -> None:
        self.held = {"B1": 1.0, "B2": 1.0, "B3": 0.0 if ranked else 2.0, "B4": 5.0}
        rows = [
            ("B2", "DAX", 1, 600.0, True),
            ("B2", "BUND", 2, 400.0, True),
            ("B1", "BUND", 1, 300.0, True),
            ("B1", "OAT", 2, 100.0, True),
            ("B1", "SHORT", None, -50.0, False),
        ]
        frame = pd.DataFrame(
            rows, columns=["book_id", "instrument_id", "rank", "value", "eligible"]
        )
        self.rows = frame.assign(business_date=DAY, as_of=AS_OF).iloc[: len(rows) if ranked else 0]

    def rankings(self, days: list[str]) -> pd.DataFrame:
        return self.rows[self.rows["business_date"].isin(days)]

    def ranking(self, book: str, day: str) -> pd.DataFrame:
        return self.rows[(self.rows["book_id"] == book) & (self.rows["business_date"] == day)]

    def eod_owners(self, days: list[str]) -> pd.DataFrame:
        books = ["B1", "B2", "B3", "B4"] if DAY in days else []
        return pd.DataFrame({"book_id": books, "business_date": DAY, "snapshot_id": "s"})

    def eod(self, book: str, day: str) -> tuple[dict, pd.DataFrame] | None:
        if day != DAY or book not in self.held:
            return None
        return {"as_of": AS_OF}, pd.DataFrame({"quantity": [self.held[book]]})

    def eod_headers(self) -> pd.DataFrame:
        return pd.DataFrame({"book_id": ["B1", "B1"], "business_date": ["2026-03-02", DAY]})

    def reference_as_of(self, start: pd.Timestamp, end: pd.Timestamp) -> types.SimpleNamespace:
        instruments = pd.DataFrame(
            {"instrument_id": ["BUND", "DAX", "OAT"], "issuer": ["Germany", "Dax Co", "France"]}
        )
        return types.SimpleNamespace(instruments=instruments)


def test_every_book_of_the_day_gets_its_own_concentration_document_by_book_id():
    repo = Warehouse()
    document = concentration_day_document(repo, DAY, 0.5)

    assert list(document) == ["business_date", "limit", "books", "unranked_books"]
    assert (document["business_date"], document["limit"]) == (DAY, 0.5)
    # Each book's document is the one `desk concentration --book` prints.
    assert document["books"] == [
        concentration_document(repo, book, DAY, 0.5) for book in ["B1", "B2", "B3"]
    ]
    b1, b2, b3 = document["books"]
    assert [(i["issuer"], i["share"], i["over_limit"]) for i in b1["issuers"]] == [
        ("Germany", 0.75, True),
        ("France", 0.25, False),
    ]
    assert [(i["issuer"], i["share"]) for i in b2["issuers"]] == [("Dax Co", 0.6), ("Germany", 0.4)]
    # B3 holds nothing: ranked, with no issuer. B4 holds something that is not ranked yet.
    assert (b3["issuers"], b3["as_of"]) == ([], AS_OF.isoformat())
    assert document["unranked_books"] == ["B4"]


@pytest.mark.parametrize(
    ("day", "ranked", "why"),
    [
        (DAY, False, "the day's end-of-day positions are stored, not ranked yet"),
        ("2026-03-09", True, "the latest stored day is 2026-03-04"),
        ("2026-02-27", True, "the first stored day is 2026-03-02"),
        ("2026-03-03", True, "days 2026-03-02..2026-03-04 are stored, but not this one"),
    ],
)
def test_a_day_without_any_ranked_book_is_no_answer_and_says_what_is_stored(day, ranked, why):
    with pytest.raises(NoEndOfDayError) as raised:
        concentration_day_document(Warehouse(ranked), day, 0.25)
    assert str(raised.value) == f"no collateral ranking of any book on {day}: {why}"
