"""`desk backfill` + `desk ranking --json` over a landing folder with reference data and marks.

One EUR repo book (5-day holding period) on 2026-03-04 holds sovereign bonds in EUR and USD, a
BBB and a BB corporate, a main-index equity, a short bond position and an instrument missing
from instruments.csv. The default schedule is Basel CRE22.49 at a 10-day holding period, scaled
by sqrt(5 / 10) = 0.70710678; a USD bond in the EUR book adds the CRE22.52 FX haircut of 8 %
(scaled the same way). Hand computation (value = quantity x price x fx_rate x (1 - haircut)):

=====  ===========  =========  =====  ==========  ===========================  ===============
rank   instrument   quantity   price  fx_rate     haircut                      value (EUR)
=====  ===========  =========  =====  ==========  ===========================  ===============
1      DE-EQ-DAX    10,000     150    1           20 % x 0.7071 = 14.1421 %    1,287,867.97
2      DE-BUND-7Y   1,000,000  0.98   1           4 % x 0.7071 = 2.8284 %      952,281.41
3      IT-BTP-2Y    500,000    1.01   1           3 % x 0.7071 = 2.1213 %      494,287.33
4      US-T-4Y      400,000    0.995  1 / 1.08    (2 + 8) % x 0.7071 = 7.0711  342,460.32
5      XS-CORP-BBB  300,000    1.02   1           6 % x 0.7071 = 4.2426 %      293,017.52
-      FR-OAT-10Y   -200,000   1.03   1           4 % x 0.7071 = 2.8284 %      -200,173.44
-      XS-CORP-BB   250,000    0.97   1           (not eligible)               null
-      ZZ-UNKNOWN   1,000      null   null        null                         null
=====  ===========  =========  =====  ==========  ===========================  ===============

Cells (residual maturity from 2026-03-04): Bund 2033-02-15 = 6.95 y, sovereign AAA, 5-10 y: 4 %;
BTP 2028-01-01 = 1.83 y, sovereign BBB, 1-3 y: 3 %; US Treasury 2030-01-15 = 3.87 y, sovereign
AA+, 3-5 y: 2 %; BBB corporate 2030-06-30 = 4.32 y, other issuers A+ to BBB-, 3-5 y: 6 %; DAX
equity: main index 20 %; OAT 2035-05-25 = 9.22 y, sovereign AA, 5-10 y: 4 % (valued, but a short
position is not collateral); the BB corporate is below the other-issuer floor (BBB-).

`desk positions --marks` values the same EOD at the same marks (market value = quantity x price,
unrealised P&L = (price - avg_price) x quantity, instrument currency; x fx_rate for EUR):

===========  =========  =====  =====  ===============  ==============  =========================
instrument   quantity   avg    price  market value     unrealised      EUR (market / unrealised)
===========  =========  =====  =====  ===============  ==============  =========================
DE-BUND-7Y   1,000,000  0.974  0.98   980,000          6,000           same
DE-EQ-DAX    10,000     148    150    1,500,000        20,000          same
FR-OAT-10Y   -200,000   1.02   1.03   -206,000         -2,000          same (short, price rose)
IT-BTP-2Y    500,000    1.00   1.01   505,000          5,000           same
US-T-4Y      400,000    0.99   0.995  398,000 USD      2,000 USD       368,518.52 / 1,851.85
XS-CORP-BB   250,000    0.96   0.97   242,500          2,500           same
XS-CORP-BBB  300,000    1.01   1.02   306,000          3,000           same; mark 6 days old
ZZ-UNKNOWN   1,000      10     null   null             null            null; unknown, no price
===========  =========  =====  =====  ===============  ==============  =========================

The Bund's average cost is (600,000 x 0.97 + 400,000 x 0.98) / 1,000,000 = 0.974.
"""

import json
import subprocess

import pandas as pd
import pytest

from desk_pipeline.adapters.warehouse import PositionRepository, now_micros
from desk_pipeline_tests.builders import at, trade, with_micro_units
from desk_pipeline_tests.e2e.driver import DESK, backfilled_landing, desk_env, run_desk

DAY = "2026-03-04"
BOOK = "REPO-EUR"

INSTRUMENTS = """\
instrument_id,name,asset_class,issuer_type,issuer,rating,maturity_date,currency
DE-BUND-7Y,Bund 2033,government_bond,sovereign,Germany,AAA,2033-02-15,EUR
IT-BTP-2Y,BTP 2028,government_bond,sovereign,Italy,BBB,2028-01-01,EUR
US-T-4Y,UST 2030,government_bond,sovereign,United States,AA+,2030-01-15,USD
FR-OAT-10Y,OAT 2035,government_bond,sovereign,France,AA,2035-05-25,EUR
XS-CORP-BBB,Acme 2030,corporate_bond,other,Acme,BBB,2030-06-30,EUR
XS-CORP-BB,Junk 2029,corporate_bond,other,Junk,BB,2029-09-01,EUR
DE-EQ-DAX,Dax Co,equity_main_index,,Dax Co,,,EUR
XS-BAD,Bad row,stock,other,Nobody,A,2030-01-01,EUR
"""
# The first 2026-03-04 mark of the Bund wins over the conflicting repeat; the 2026-03-05 mark is
# after the day and the 2026-03-03 one before the latest, so neither is used. The BBB corporate's
# last mark is 6 days old: still eligible, flagged stale.
PRICES = """\
instrument_id,price_date,price
DE-BUND-7Y,2026-03-03,0.97
DE-BUND-7Y,2026-03-04,0.98
DE-BUND-7Y,2026-03-05,0.99
DE-BUND-7Y,2026-03-04,0.50
IT-BTP-2Y,2026-03-04,1.01
IT-BTP-2Y,2026-03-04,n/a
US-T-4Y,2026-03-04,0.995
FR-OAT-10Y,2026-03-04,1.03
XS-CORP-BBB,2026-02-26,1.02
XS-CORP-BB,2026-03-04,0.97
DE-EQ-DAX,2026-03-04,150
"""
BOOKS = """\
book_id,base_currency,holding_period_days
REPO-EUR,EUR,5
REPO-BAD,EUR,0
"""
FX_RATES = """\
currency,rate_date,usd_per_unit
EUR,2026-03-02,1.05
EUR,2026-03-04,1.08
EURO,2026-03-04,1.1
"""
REFERENCES = {
    "instruments.csv": INSTRUMENTS,
    "prices.csv": PRICES,
    "books.csv": BOOKS,
    "fx_rates.csv": FX_RATES,
}

S = 0.5**0.5  # sqrt(5 / 10): the 5-day repo holding period against Basel's 10 days


def expected_items() -> list[dict]:
    def item(rank, instrument, quantity, price, fx_rate, haircut, value, eligible, reason):
        return {
            "rank": rank,
            "instrument_id": instrument,
            "quantity": quantity,
            "price": price,
            "fx_rate": fx_rate,
            "haircut": haircut,
            "value": value,
            "eligible": eligible,
            "reason": reason,
        }

    return [
        item(1, "DE-EQ-DAX", 10_000.0, 150.0, 1.0, 0.20 * S, 1_287_867.9656, True, None),
        item(2, "DE-BUND-7Y", 1_000_000.0, 0.98, 1.0, 0.04 * S, 952_281.4142, True, None),
        item(3, "IT-BTP-2Y", 500_000.0, 1.01, 1.0, 0.03 * S, 494_287.3323, True, None),
        item(4, "US-T-4Y", 400_000.0, 0.995, 1 / 1.08, 0.10 * S, 342_460.3242, True, None),
        item(
            5,
            "XS-CORP-BBB",
            300_000.0,
            1.02,
            1.0,
            0.06 * S,
            293_017.5195,
            True,
            "stale_price: last price on 2026-02-26, 6 days before 2026-03-04",
        ),
        item(
            None,
            "FR-OAT-10Y",
            -200_000.0,
            1.03,
            1.0,
            0.04 * S,
            -200_173.4401,
            False,
            "short_position: REPO-EUR holds -200,000 of FR-OAT-10Y",
        ),
        item(None, "XS-CORP-BB", 250_000.0, 0.97, 1.0, None, None, False, "rating_below_floor"),
        item(None, "ZZ-UNKNOWN", 1_000.0, None, None, None, None, False, "unknown_instrument"),
    ]


def book_trades() -> list[dict]:
    d1, d2 = "2026-03-03", DAY
    rows = [
        ("T-1", "DE-BUND-7Y", 600_000, 0.97, d1),
        ("T-2", "DE-BUND-7Y", 400_000, 0.98, d2),
        ("T-3", "IT-BTP-2Y", 500_000, 1.00, d1),
        ("T-4", "US-T-4Y", 400_000, 0.99, d2),
        ("T-5", "FR-OAT-10Y", -200_000, 1.02, d2),
        ("T-6", "XS-CORP-BBB", 300_000, 1.01, d1),
        ("T-7", "XS-CORP-BB", 250_000, 0.96, d2),
        ("T-8", "DE-EQ-DAX", 10_000, 148.0, d1),
        ("T-9", "ZZ-UNKNOWN", 1_000, 10.0, d2),
    ]
    return [
        trade(tid, qty, px, book=BOOK, instrument=inst, at=at(day, "10:00"))
        for tid, inst, qty, px, day in rows
    ]


def strict_json(text: str) -> object:
    """Parse JSON, failing on NaN / Infinity, which are not JSON."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON document")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory) -> dict:
    """A landing folder backfilled once for 2026-03-03..04; the tests share it (read-mostly)."""
    env, _ = backfilled_landing(
        tmp_path_factory.mktemp("ranking"), book_trades(), REFERENCES, "2026-03-03", DAY
    )
    return env


def test_ranking_of_a_mixed_book_orders_values_and_explains_ineligible_items(backfilled):
    document = strict_json(
        run_desk(backfilled, "ranking", "--book", BOOK, "--date", DAY, "--json").stdout
    )

    # The contract's keys, then whether the ranking is of the current EOD (queries.RankedFrom).
    assert list(document) == [
        "book_id",
        "business_date",
        "as_of",
        "items",
        "current",
        "snapshot_id",
        "eod_as_of",
        "eod_snapshot_id",
        "incomplete_fix",
    ]
    assert document["current"] is True and document["incomplete_fix"] is None
    assert document["snapshot_id"] == document["eod_snapshot_id"]
    assert document["eod_as_of"] == document["as_of"]
    assert (document["book_id"], document["business_date"]) == (BOOK, DAY)
    assert pd.Timestamp(document["as_of"]) == pd.Timestamp("2026-03-05", tz="UTC")
    items = document["items"]
    keys = ["rank", "instrument_id", "quantity", "price", "fx_rate", "haircut", "value"]
    assert all(list(i) == [*keys, "eligible", "reason"] for i in items)
    expected = expected_items()
    assert [i["instrument_id"] for i in items] == [e["instrument_id"] for e in expected]
    for got, want in zip(items, expected, strict=True):
        for key in ("rank", "instrument_id", "eligible"):
            assert got[key] == want[key], (want["instrument_id"], key)
        for key in ("quantity", "price", "fx_rate", "haircut", "value"):
            if want[key] is None:
                assert got[key] is None, (want["instrument_id"], key)
            else:
                assert got[key] == pytest.approx(want[key], rel=1e-9), (want["instrument_id"], key)
        if want["reason"] is None:
            assert got["reason"] is None, want["instrument_id"]
        else:
            assert got["reason"].startswith(want["reason"]), (want["instrument_id"], got["reason"])
        if got["value"] is not None:
            lendable = got["quantity"] * got["price"] * got["fx_rate"] * (1 - got["haircut"])
            # Each printed figure is rounded to 12 significant digits (precision.for_output):
            # recomputed from them, the value agrees to a few parts in 1e11.
            assert got["value"] == pytest.approx(lendable, rel=3e-11)


def test_bad_reference_rows_are_quarantined_once_and_a_rerun_changes_nothing(backfilled):
    first = strict_json(run_desk(backfilled, "quarantine", "--json").stdout)
    ranking = run_desk(backfilled, "ranking", "--book", BOOK, "--date", DAY, "--json").stdout
    by_file = {(q["source"].split("#")[0], q["row_number"]): q["reason_code"] for q in first}
    assert by_file == {
        ("landing:instruments.csv", 8): "unknown_asset_class",
        ("landing:prices.csv", 4): "conflicting_duplicate",
        ("landing:prices.csv", 6): "price_not_numeric",
        ("landing:books.csv", 2): "bad_holding_period",
        ("landing:fx_rates.csv", 3): "bad_currency",
    }
    assert all(q["reason"] and q["raw"] and q["trade_id"] == "" for q in first)

    run_desk(backfilled, "backfill", "--start", DAY, "--end", DAY)
    assert strict_json(run_desk(backfilled, "quarantine", "--json").stdout) == first
    assert (
        run_desk(backfilled, "ranking", "--book", BOOK, "--date", DAY, "--json").stdout == ranking
    )


# instrument: (price, fx_rate, market_value, market_value_base, unrealized_pnl, upl_base, stale)
EXPECTED_MARKS = {
    "DE-BUND-7Y": (0.98, 1.0, 980_000.0, 980_000.0, 6_000.0, 6_000.0, False),
    "DE-EQ-DAX": (150.0, 1.0, 1_500_000.0, 1_500_000.0, 20_000.0, 20_000.0, False),
    "FR-OAT-10Y": (1.03, 1.0, -206_000.0, -206_000.0, -2_000.0, -2_000.0, False),
    "IT-BTP-2Y": (1.01, 1.0, 505_000.0, 505_000.0, 5_000.0, 5_000.0, False),
    "US-T-4Y": (0.995, 1 / 1.08, 398_000.0, 368_518.5185185, 2_000.0, 1_851.8518519, False),
    "XS-CORP-BB": (0.97, 1.0, 242_500.0, 242_500.0, 2_500.0, 2_500.0, False),
    "XS-CORP-BBB": (1.02, 1.0, 306_000.0, 306_000.0, 3_000.0, 3_000.0, True),
    "ZZ-UNKNOWN": (None, None, None, None, None, None, False),
}


def test_positions_with_marks_give_market_value_and_unrealised_pnl_at_the_rankings_marks(
    backfilled,
):
    plain = strict_json(
        run_desk(backfilled, "positions", "--book", BOOK, "--date", DAY, "--json").stdout
    )
    document = strict_json(
        run_desk(backfilled, "positions", "--book", BOOK, "--date", DAY, "--marks", "--json").stdout
    )

    # The contract's document is unchanged without --marks; --marks only adds per-position keys.
    contract = ["instrument_id", "quantity", "avg_price", "realized_pnl"]
    assert all(list(p) == contract for p in plain["positions"])
    assert {k: v for k, v in document.items() if k != "positions"} == {
        k: v for k, v in plain.items() if k != "positions"
    }
    assert [{k: p[k] for k in contract} for p in document["positions"]] == plain["positions"]
    positions = {p["instrument_id"]: p for p in document["positions"]}
    assert list(positions) == sorted(EXPECTED_MARKS)
    ranking = strict_json(
        run_desk(backfilled, "ranking", "--book", BOOK, "--date", DAY, "--json").stdout
    )
    for item in ranking["items"]:
        position = positions[item["instrument_id"]]
        assert (position["price"], position["fx_rate"]) == (item["price"], item["fx_rate"])

    keys = ["price", "fx_rate", "market_value", "market_value_base"]
    keys += ["unrealized_pnl", "unrealized_pnl_base"]
    for instrument, (*numbers, stale) in EXPECTED_MARKS.items():
        got = positions[instrument]
        assert got["stale_price"] is stale, instrument
        for key, want in zip(keys, numbers, strict=True):
            if want is None:
                assert got[key] is None, (instrument, key)
            else:
                assert got[key] == pytest.approx(want, rel=1e-9), (instrument, key)
    assert positions["US-T-4Y"]["currency"] == "USD"
    assert {p["base_currency"] for p in positions.values()} == {"EUR"}
    assert positions["XS-CORP-BBB"]["price_date"] == "2026-02-26"
    assert positions["XS-CORP-BBB"]["reason"].startswith("stale_price: last price on 2026-02-26")
    unknown = positions["ZZ-UNKNOWN"]
    assert (unknown["currency"], unknown["price_date"]) == (None, None)
    assert unknown["reason"].startswith("unknown_instrument: ZZ-UNKNOWN")
    assert "no_price" in unknown["reason"]
    assert positions["DE-BUND-7Y"]["reason"] is None


def test_positions_with_marks_refuse_an_eod_that_is_not_valued_yet(tmp_path):
    url = f"sqlite:///{tmp_path}/warehouse.db"
    repo = PositionRepository(url)
    eod = pd.DataFrame(
        {
            "book_id": [BOOK],
            "instrument_id": ["DE-BUND-7Y"],
            "quantity": [100.0],
            "avg_price": [0.97],
            "realized_pnl": [0.0],
            "business_date": [DAY],
            "as_of": [pd.Timestamp("2026-03-05", tz="UTC")],
        }
    )
    assert repo.keep_last_eod(with_micro_units(eod), now_micros())
    repo.engine.dispose()
    env = desk_env(tmp_path, DESK_WAREHOUSE_URL=url)

    run_desk(env, "positions", "--book", BOOK, "--date", DAY, "--json")
    marked = subprocess.run(
        [DESK, "positions", "--book", BOOK, "--date", DAY, "--marks", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert (marked.returncode, marked.stdout) == (1, "")
    assert "not valued yet" in marked.stderr and "desk backfill" in marked.stderr


def test_issuer_concentration_flags_the_issuers_above_the_limit(backfilled):
    # Eligible values from the table above: total 3,369,914.55 EUR. Dax Co 1,287,867.97 (38.2 %)
    # and Germany 952,281.41 (28.3 %) are above the default 25 % limit; the others are not.
    document = strict_json(
        run_desk(backfilled, "concentration", "--book", BOOK, "--date", DAY, "--json").stdout
    )
    assert document["limit"] == 0.25
    shares = {i["issuer"]: (i["share"], i["over_limit"]) for i in document["issuers"]}
    assert list(shares) == ["Dax Co", "Germany", "Italy", "United States", "Acme"]
    total = 1_287_867.97 + 952_281.41 + 494_287.33 + 342_460.32 + 293_017.52
    for issuer, value, over in [
        ("Dax Co", 1_287_867.97, True),
        ("Germany", 952_281.41, True),
        ("Italy", 494_287.33, False),
        ("United States", 342_460.32, False),
        ("Acme", 293_017.52, False),
    ]:
        assert shares[issuer] == (pytest.approx(value / total, abs=1e-8), over)
    # The short OAT, the ineligible BB bond and the unknown instrument carry no share.
    assert "France" not in shares and "Junk" not in shares


def test_ranking_text_shows_ineligible_items_at_market_value_with_their_reason_in_brief(
    backfilled,
):
    text = run_desk(backfilled, "ranking", "--book", BOOK, "--date", DAY).stdout
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    start = lines.index(
        "Not eligible · 3 · unknown instrument 1, rating below floor 1, short position 1"
    )
    # The short's market value -200,000 x 1.03 = -206,000 EUR (its JSON value -200,173.44 is after
    # a haircut); the BB bond is worth 250,000 x 0.97 = 242,500 EUR; the unknown one has no mark.
    assert [line.split(maxsplit=5) for line in lines[start + 4 : start + 7]] == [
        ["ZZ-UNKNOWN", "1,000", "-", "-", "-", "not in the instrument reference data; no price"],
        ["XS-CORP-BB", "250,000", "0.97", "1", "242,500",
         "rating BB below basel_cre22 floor for corporate_bond"],
        ["FR-OAT-10Y", "-200,000", "1.03", "1", "-206,000", "short position"],
    ]  # fmt: skip
    assert lines[start + 2].split() == [
        "instrument", "quantity", "price", "fx→EUR", "market", "EUR", "reason",
    ]  # fmt: skip
    assert lines[start + 8].startswith(
        "Market value in EUR = quantity x price x fx, before haircut"
    )


def test_concentration_without_a_book_lists_every_book_of_the_day_with_its_issuers_over_the_limit(
    backfilled,
):
    document = strict_json(run_desk(backfilled, "concentration", "--date", DAY, "--json").stdout)
    one_book = strict_json(
        run_desk(backfilled, "concentration", "--book", BOOK, "--date", DAY, "--json").stdout
    )
    # The one book with an EOD that day; its document as `--book` prints it.
    assert document == {
        "business_date": DAY,
        "limit": 0.25,
        "books": [one_book],
        "unranked_books": [],
    }

    text = run_desk(backfilled, "concentration", "--date", DAY).stdout
    lines = text.splitlines()
    assert lines[0] == f"Issuer concentration · {DAY} · 1 book · limit 25.0%"
    # Dax Co 1,287,867.97 and Germany 952,281.41 of 3,369,914.55 EUR (see the table above).
    assert [line.split() for line in lines[4:6]] == [
        [BOOK, "Dax", "Co", "1,287,868", "EUR", "38.2%", "over", "the", "limit"],
        [BOOK, "Germany", "952,281", "EUR", "28.3%", "over", "the", "limit"],
    ]
    assert lines[6:8] == [
        "",
        "Books holding an issuer over the limit of 25.0% (DESK_ISSUER_CONCENTRATION_LIMIT): "
        "1 of 1.",
    ]
