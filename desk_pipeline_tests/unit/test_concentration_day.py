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

    Not ``ranked``: no book is ranked on DAY, and B3 holds something too. ``restated``: B2's
    EOD was replaced (snapshot s2-new) after its ranking (of s2) was stored.
    """

    def __init__(self, ranked: bool = True, restated: bool = False) -> None:
        held = {"B1": 1, "B2": 1, "B3": 0 if ranked else 2, "B4": 5}
        snapshots = {b: f"s{b[1]}" for b in held}
        if restated:
            snapshots["B2"] = "s2-new"
        self.eods = pd.DataFrame(
            {
                "book_id": list(held),
                "business_date": DAY,
                "snapshot_id": [snapshots[b] for b in held],
                "as_of": AS_OF,
                "position_count": list(held.values()),
            }
        )
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
        frame = frame.assign(
            business_date=DAY, snapshot_id="s" + frame["book_id"].str[1], as_of=AS_OF
        )
        self.rows = frame.iloc[: len(rows) if ranked else 0]

    def rankings_beside_eods(
        self, day: str, book: str | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        def of(frame: pd.DataFrame) -> pd.Series:
            return (frame["business_date"] == day) & (
                frame["book_id"] == book if book is not None else True
            )

        return self.eods[of(self.eods)], self.rows[of(self.rows)]

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
    # Each ranked from its current EOD (B3's empty ranking is its EOD's own).
    assert [(b["current"], b["snapshot_id"], b["eod_snapshot_id"]) for b in document["books"]] == [
        (True, "s1", "s1"),
        (True, "s2", "s2"),
        (True, "s3", "s3"),
    ]
    assert all(b["incomplete_fix"] is None for b in document["books"])


def test_a_book_ranked_from_the_snapshot_its_eod_replaced_is_shown_and_said_to_be_older():
    repo = Warehouse(restated=True)
    document = concentration_day_document(repo, DAY, 0.5)

    b2 = document["books"][1]
    assert b2 == concentration_document(repo, "B2", DAY, 0.5)
    assert [(i["issuer"], i["share"]) for i in b2["issuers"]] == [("Dax Co", 0.6), ("Germany", 0.4)]
    assert {k: b2[k] for k in list(b2)[5:]} == {
        "current": False,
        "snapshot_id": "s2",
        "eod_as_of": AS_OF.isoformat(),
        "eod_snapshot_id": "s2-new",
        "incomplete_fix": f"desk backfill --start {DAY} --end {DAY}",
    }
    assert [b["current"] for b in document["books"]] == [True, False, True]
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
