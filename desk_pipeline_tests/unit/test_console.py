"""The text of `desk ranking` and `desk concentration --date`: what each table shows, in order."""

import re

from desk_pipeline import console
from desk_pipeline.queries import (
    ConcentrationDayDocument,
    ConcentrationDocument,
    RankedFrom,
    RankingItem,
)

AS_OF = "2026-11-28T00:00:00+00:00"
# A ranking of the book-day's current EOD, and one of the snapshot a late trade's restatement
# replaced (the same as-of: a restatement keeps it).
CURRENT: RankedFrom = {
    "current": True,
    "snapshot_id": "s2",
    "eod_as_of": AS_OF,
    "eod_snapshot_id": "s2",
    "incomplete_fix": None,
}
OLDER: RankedFrom = {
    **CURRENT,
    "current": False,
    "snapshot_id": "s1",
    "incomplete_fix": "desk backfill --start 2026-11-27 --end 2026-11-27",
}


def item(
    instrument: str,
    quantity: float,
    price: float | None,
    fx_rate: float | None,
    haircut: float | None,
    value: float | None,
    reason: str | None,
    rank: int | None = None,
) -> RankingItem:
    return {
        "rank": rank,
        "instrument_id": instrument,
        "quantity": quantity,
        "price": price,
        "fx_rate": fx_rate,
        "haircut": haircut,
        "value": value,
        "eligible": rank is not None,
        "reason": reason,
    }


def ranking_text(items: list[RankingItem], ranked_from: RankedFrom = CURRENT) -> list[str]:
    document = {
        "book_id": "REPO-EUR-01",
        "business_date": "2026-11-27",
        "as_of": AS_OF,
        "items": items,
        **ranked_from,
    }
    return console.render(console.ranking(document, "EUR")).splitlines()


def table(lines: list[str], title: str) -> list[str]:
    """The lines of the table under the line starting with ``title``, up to its first blank."""
    start = next(n for n, line in enumerate(lines) if line.startswith(title))
    body = lines[start + 4 :]  # title, blank, header, rule
    return body[: body.index("")] if "" in body else body


ELIGIBLE = item("DE0001102580", 1_000_000, 0.98, 1.0, 0.028, 952_560.0, None, rank=1)
# The demo's REPO-EUR-01 on 2026-11-27: value -300,158 is after the 2.8 % haircut a long would
# take; the market value is -300,000 x 1.02965 = -308,895.
SHORT = item(
    "DE0284176772", -300_000, 1.02965, 1.0, 0.02824, -300_158.0,
    "short_position: REPO-EUR-01 holds -300,000 of DE0284176772",
)  # fmt: skip
BIG_SHORT = item(
    "JP1994101077", -630_000_000, 1.02957, 0.00612448, 0.099, -3_579_034.0,
    "short_position: REPO-EUR-01 holds -630,000,000 of JP1994101077",
)  # fmt: skip
MATURED = item(
    "DE0172424789", 200_000, 1.04098, 1.0, None, None,
    "matured: DE0172424789 matured on 2026-04-28",
)  # fmt: skip
BELOW_FLOOR = item(
    "XS2904143000", 3_600_000, 1.05352, 1.0, None, None,
    "rating_below_floor: XS2904143000 (BB-) is below the basel_cre22 floor for corporate_bond",
)  # fmt: skip
SHORT_MATURED = item(
    "GB0398932870", -100_000, 1.022641, 1.1823976307, None, None,
    "short_position: REPO-EUR-01 holds -100,000 of GB0398932870; "
    "matured: GB0398932870 matured on 2026-04-22",
)  # fmt: skip
UNKNOWN = item(
    "ZZ-UNKNOWN", 1_000, None, None, None, None,
    "unknown_instrument: ZZ-UNKNOWN is not in the instrument reference data; "
    "no_price: no price for ZZ-UNKNOWN on or before 2026-11-27",
)  # fmt: skip


INELIGIBLE_TABLE = f"""
 instrument    quantity   price fx→EUR market EUR reason
 {"─" * 98}
 ZZ-UNKNOWN       1,000       -      -          - not in the instrument reference data; no price
 DE0172424789   200,000 1.04098      1    208,196 matured 2026-04-28
 XS2904143000 3,600,000 1.05352      1  3,792,672 rating BB- below basel_cre22 floor for
                                                  corporate_bond
 DE0284176772  -300,000 1.02965      1   -308,895 short position

Market value in EUR = quantity x price x fx, before haircut: an ineligible item lends nothing.
Reasons in brief; --json gives each in full."""


def test_ineligible_items_show_market_value_before_haircut_and_their_reason_in_brief():
    lines = ranking_text([ELIGIBLE, SHORT, MATURED, BELOW_FLOOR, UNKNOWN])

    assert max(len(line) for line in lines) <= 100
    [title] = [line for line in lines if line.startswith("Not eligible")]
    assert title == (
        "Not eligible · 4 · unknown instrument 1, matured 1, rating below floor 1, short position 1"
    )
    # Long holdings that cannot be pledged first, the short last; the old table showed -300,158
    # under "value EUR" for the short (after a haircut it did not show) and "-" for the bond.
    assert "\n".join(lines[lines.index(title) + 1 :]) == INELIGIBLE_TABLE


def test_within_a_reason_the_largest_market_value_comes_first_whatever_its_sign_or_currency():
    # -630,000,000 JPY x 1.02957 x 0.00612448 = -3,972,516 EUR: larger than the EUR short.
    lines = ranking_text([ELIGIBLE, SHORT, SHORT_MATURED, BIG_SHORT])
    rows = table(lines, "Not eligible")
    assert [row.split()[0] for row in rows] == ["JP1994101077", "DE0284176772", "GB0398932870"]
    assert rows[0].split()[4] == "-3,972,516"
    assert rows[2].split(maxsplit=5)[5] == "short position; matured 2026-04-22"


def test_a_hundred_and_twenty_ineligible_shorts_take_one_line_each():
    shorts = [
        item(
            f"DE{n:010d}", -100_000 * (n + 1), 1.01, 1.0, 0.028, None,
            f"short_position: REPO-EUR-01 holds -{100_000 * (n + 1):,} of DE{n:010d}",
        )
        for n in range(120)
    ]  # fmt: skip
    lines = ranking_text([ELIGIBLE, *shorts])
    rows = table(lines, "Not eligible")
    assert len(rows) == 120
    assert all(
        re.fullmatch(r" DE\d{10} +-[\d,]+ +1\.01 +1 +-[\d,]+ short position", r) for r in rows
    )
    # Largest first: DE0000000119 holds -12,000,000.
    assert rows[0].split()[0] == "DE0000000119"


def test_a_ranking_with_every_item_eligible_has_no_ineligible_table():
    lines = ranking_text([ELIGIBLE])
    assert not any(line.startswith("Not eligible") for line in lines)


def book(
    book_id: str, *issuers: tuple[str, float, float | None], ranked_from: RankedFrom = CURRENT
) -> ConcentrationDocument:
    return {
        "book_id": book_id,
        "business_date": "2026-11-27",
        "as_of": AS_OF,
        "limit": 0.25,
        "issuers": [
            {
                "issuer": name,
                "value": value,
                "share": share,
                "over_limit": share is not None and share > 0.25,
            }
            for name, value, share in issuers
        ],
        **ranked_from,
    }


DAY_TABLE = f"""
 book           issuer                                              lendable share
 {"─" * 96}
 REPO-USD-01    Japan Finance Organization for Municipalities 90,000,000 USD 42.0% over the limit
 REPO-EUR-02    United Kingdom Gilt                           49,630,016 EUR 31.0% over the limit
 REPO-EUR-02    Republic of Italy                             35,138,895 EUR 27.0% over the limit
 MATCHED-EUR-01 United States Treasury                        37,713,418 EUR 23.1%
 SECLEND-USD-01 Brightwater Industries                            20,861,675 20.7%
 SECLEND-EUR-01 no eligible collateral                                     -     -

Books holding an issuer over the limit of 25.0% (DESK_ISSUER_CONCENTRATION_LIMIT): 2 of 5.
Per book: each issuer over the limit, or else its largest issuer.
All of a book's issuers: desk concentration --book B --date D.
Not ranked yet: SECLEND-GBP-01; desk backfill --start 2026-11-27 --end 2026-11-27 ranks them."""


def test_the_day_s_concentration_lists_books_over_the_limit_first_then_each_book_s_largest():
    document: ConcentrationDayDocument = {
        "business_date": "2026-11-27",
        "limit": 0.25,
        "books": [
            book(
                "MATCHED-EUR-01", ("United States Treasury", 37_713_418, 0.231), ("Japan", 1, 0.1)
            ),
            book(
                "REPO-EUR-02",
                ("United Kingdom Gilt", 49_630_016, 0.31),
                ("Republic of Italy", 35_138_895, 0.27),
                ("Kingdom of Spain", 1_000, 0.2),
            ),
            book("REPO-USD-01", ("Japan Finance Organization for Municipalities", 9e7, 0.42)),
            book("SECLEND-EUR-01"),
            book("SECLEND-USD-01", ("Brightwater Industries", 20_861_675, 0.207)),
        ],
        "unranked_books": ["SECLEND-GBP-01"],
    }
    currencies = {"MATCHED-EUR-01": "EUR", "REPO-EUR-02": "EUR", "REPO-USD-01": "USD"}
    lines = console.render(console.concentration_day(document, currencies)).splitlines()

    assert lines[0] == "Issuer concentration · 2026-11-27 · 5 books · limit 25.0%"
    assert max(len(line) for line in lines) <= 100
    assert "\n".join(lines[1:]) == DAY_TABLE


def test_positions_without_marks_say_their_amounts_are_in_each_instruments_currency():
    # A JPY and a EUR row sat under one "realised P&L (ccy)" column with no currency shown.
    document = {
        "book_id": "REPO-EUR-01",
        "business_date": "2026-11-27",
        "as_of": AS_OF,
        "positions": [
            {"instrument_id": i, "quantity": 1.0, "avg_price": 1.0, "realized_pnl": 0.0}
            for i in ("XS-JPY", "XS-EUR")
        ],
    }
    lines = console.render(console.positions(document)).splitlines()
    assert "realised P&L" in lines[2] and "(ccy)" not in lines[2]
    assert " ".join(lines[-2:]).startswith(
        "Avg price and realised P&L in each instrument's own currency; --marks adds the currency"
    )
    empty = console.render(console.positions({**document, "positions": []}))
    assert "instrument's own currency" not in empty


OLDER_LINES = [
    "Ranked from an older snapshot (as of 2026-11-27 12:00 UTC); current EOD as of 2026-11-28 "
    "00:00 UTC.",
    "The EOD changed since: `desk backfill --start 2026-11-27 --end 2026-11-27` completes it.",
]


def test_a_ranking_of_an_older_snapshot_says_so_under_its_table_with_the_backfill_that_fixes_it():
    # The EOD was replaced after the ranking ran by a later snapshot: noon's ranked, midnight's
    # current.
    document = {
        "book_id": "REPO-EUR-01",
        "business_date": "2026-11-27",
        "as_of": "2026-11-27T12:00:00+00:00",
        "items": [ELIGIBLE],
        **OLDER,
    }
    lines = console.render(console.ranking(document, "EUR")).splitlines()

    assert max(len(line) for line in lines) <= 100
    rows = table(lines, "Collateral ranking")
    assert [row.split()[:2] for row in rows] == [["1", "DE0001102580"]]
    under = lines.index(rows[-1]) + 2  # the table ends with a blank line
    assert lines[under : under + 3] == [*OLDER_LINES, lines[under + 2]]
    assert lines[under + 2].startswith("Lendable value 952,560 EUR")


def test_a_restated_eod_keeps_its_as_of_and_the_note_says_it_changed_since():
    lines = ranking_text([ELIGIBLE], OLDER)
    assert [line for line in lines if "older snapshot" in line or "changed since" in line] == [
        "Ranked from an older snapshot (as of 2026-11-28 00:00 UTC); current EOD as of 2026-11-28 "
        "00:00 UTC.",
        OLDER_LINES[1],
    ]


def test_a_ranking_of_the_current_eod_has_no_such_note():
    ranked = "\n".join(ranking_text([ELIGIBLE, SHORT]))
    shares = console.render(console.concentration(book("REPO-EUR-01", ("Germany", 1.0, 1.0))))
    for text in (ranked, shares):
        assert "older snapshot" not in text and "desk backfill" not in text


def test_a_concentration_of_an_older_snapshot_says_so_under_its_table():
    older = book("REPO-EUR-01", ("Germany", 75.0, 0.75), ("France", 25.0, 0.25), ranked_from=OLDER)
    lines = console.render(console.concentration(older, "EUR")).splitlines()

    assert lines[-3:] == [
        "Ranked from an older snapshot (as of 2026-11-28 00:00 UTC); current EOD as of 2026-11-28 "
        "00:00 UTC.",
        OLDER_LINES[1],
        "2 issuers, 1 over the limit of 25.0% (DESK_ISSUER_CONCENTRATION_LIMIT).",
    ]


def test_the_day_s_concentration_names_the_books_ranked_from_an_older_snapshot():
    document: ConcentrationDayDocument = {
        "business_date": "2026-11-27",
        "limit": 0.25,
        "books": [
            book("REPO-EUR-01", ("Germany", 1.0, 0.3), ranked_from=OLDER),
            book("REPO-EUR-02", ("Italy", 1.0, 0.2)),
            book("REPO-EUR-03", ("Spain", 1.0, 0.2), ranked_from=OLDER),
            book("REPO-EUR-04", ("France", 1.0, 0.2), ranked_from=OLDER),
        ],
        "unranked_books": [],
    }
    lines = console.render(console.concentration_day(document, {})).splitlines()

    assert max(len(line) for line in lines) <= 100
    assert lines[-2:] == [
        "Ranked from an older snapshot than their current EOD: REPO-EUR-01, REPO-EUR-03 and 1 "
        "more.",
        "Their EODs changed since: `desk backfill --start 2026-11-27 --end 2026-11-27` completes "
        "it.",
    ]
