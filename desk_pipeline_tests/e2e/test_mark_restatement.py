"""A corrected, late or re-rated mark restates the stored valuations and rankings that read it.

One EUR repo book (5-day holding period) buys on 2026-03-02 a Bund (DE1, EUR, sovereign AAA,
6.95 years: 4 % Basel haircut at 10 days), a US Treasury (US1, USD, AA+, 3.87 years: 2 % plus
the 8 % FX add-on) and a main-index equity (EQ1, 20 %), all scaled by sqrt(5 / 10). The marks
are carried: DE1's and US1's only prices are dated 2026-03-02, so 03-03 and 03-04 read them too.
EQ1 has no price at first. After `desk backfill 2026-03-02..03-04`, prices.csv and
fx_rates.csv change and only 2026-03-04 is backfilled again:

- DE1 2026-03-02 0.99 -> 0.50 (a correction read by 03-02, 03-03 and 03-04),
- EQ1 gets a first mark on 2026-03-03 (a late mark: 03-03 and 03-04, not 03-02),
- EUR 2026-03-02 1.08 -> 1.10 USD (an FX correction: US1's rate in EUR on every day).

Every stored day is restated by that run: value = quantity x price x fx_rate x (1 - haircut).
"""

import json

import pandas as pd
import pytest

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.builders import at, trade
from desk_pipeline_tests.e2e.driver import backfilled_landing, run_desk

BOOK = "REPO-EUR"
DAYS = ("2026-03-02", "2026-03-03", "2026-03-04")
S = 0.5**0.5  # sqrt(5 / 10): the 5-day holding period against Basel's 10 days
HAIRCUT = {"DE1": 0.04 * S, "US1": 0.10 * S, "EQ1": 0.20 * S}
QUANTITY = {"DE1": 500_000.0, "US1": 400_000.0, "EQ1": 1_000.0}

INSTRUMENTS = """\
instrument_id,name,asset_class,issuer_type,issuer,rating,maturity_date,currency
DE1,Bund 2033,government_bond,sovereign,Germany,AAA,2033-02-15,EUR
US1,UST 2030,government_bond,sovereign,United States,AA+,2030-01-15,USD
EQ1,Dax Co,equity_main_index,,Dax Co,,,EUR
"""
BOOKS = "book_id,base_currency,holding_period_days\nREPO-EUR,EUR,5\n"
PRICES = "instrument_id,price_date,price\nDE1,2026-03-02,0.99\nUS1,2026-03-02,0.995\n"
FX_RATES = "currency,rate_date,usd_per_unit\nEUR,2026-03-02,1.08\n"


def value(instrument: str, price: float, fx_rate: float) -> float:
    return QUANTITY[instrument] * price * fx_rate * (1 - HAIRCUT[instrument])


def items(env: dict, day: str) -> dict[str, dict]:
    document = json.loads(run_desk(env, "ranking", "--book", BOOK, "--date", day, "--json").stdout)
    return {item["instrument_id"]: item for item in document["items"]}


def marks(env: dict, day: str) -> dict[str, dict]:
    args = ("positions", "--book", BOOK, "--date", day, "--marks", "--json")
    return {p["instrument_id"]: p for p in json.loads(run_desk(env, *args).stdout)["positions"]}


def stale_days(env: dict) -> list[str]:
    books = json.loads(run_desk(env, "status", "--json").stdout)["books"]
    return [d for b in books if b["book_id"] == BOOK for d in b["stale_days"]]


@pytest.fixture
def desk(tmp_path) -> tuple[dict, object]:
    """A landing folder backfilled for 2026-03-02..04, and the folder."""
    trades = [("T-1", "DE1", 0.98), ("T-2", "US1", 0.99), ("T-3", "EQ1", 100.0)]
    return backfilled_landing(
        tmp_path,
        [
            trade(tid, QUANTITY[inst], px, book=BOOK, instrument=inst, at=at(DAYS[0], "10:00"))
            for tid, inst, px in trades
        ],
        {
            "instruments.csv": INSTRUMENTS,
            "prices.csv": PRICES,
            "books.csv": BOOKS,
            "fx_rates.csv": FX_RATES,
        },
        DAYS[0],
        DAYS[-1],
    )


def test_a_corrected_late_or_fx_mark_restates_every_day_that_read_it(desk):
    env, folder = desk
    before = items(env, DAYS[0])
    assert before["DE1"]["value"] == pytest.approx(value("DE1", 0.99, 1.0), rel=1e-9)
    assert before["EQ1"]["reason"].startswith("no_price")

    (folder / "prices.csv").write_text(
        PRICES.replace("DE1,2026-03-02,0.99", "DE1,2026-03-02,0.50") + "EQ1,2026-03-03,95\n",
        encoding="utf-8",
    )
    (folder / "fx_rates.csv").write_text(FX_RATES.replace("1.08", "1.10"), encoding="utf-8")
    run_desk(env, "backfill", "--start", DAYS[-1], "--end", DAYS[-1])

    for day in DAYS:
        ranked, valued = items(env, day), marks(env, day)
        assert ranked["DE1"]["price"] == 0.5, day
        assert ranked["DE1"]["value"] == pytest.approx(value("DE1", 0.50, 1.0), rel=1e-9), day
        assert valued["DE1"]["price"] == 0.5, day
        assert valued["DE1"]["market_value"] == pytest.approx(250_000.0, rel=1e-12), day
        assert ranked["US1"]["fx_rate"] == pytest.approx(1 / 1.10, rel=1e-9), day
        us = value("US1", 0.995, 1 / 1.10)
        assert ranked["US1"]["value"] == pytest.approx(us, rel=1e-9), day
        assert valued["US1"]["market_value_base"] == pytest.approx(398_000 / 1.10, rel=1e-9), day
    # The late mark is dated 03-03: the day before still has no price, the days after read it.
    assert items(env, DAYS[0])["EQ1"]["reason"].startswith("no_price")
    for day in DAYS[1:]:
        assert items(env, day)["EQ1"]["value"] == pytest.approx(value("EQ1", 95.0, 1.0), rel=1e-9)
    assert stale_days(env) == []


def test_a_mark_changed_without_a_restatement_shows_the_days_that_read_it_stale(desk):
    env, _ = desk
    repo = PositionRepository(f"sqlite:///{env['DAGSTER_HOME']}/warehouse.db")
    assert stale_days(env) == []
    corrected = pd.DataFrame(
        {"instrument_id": ["DE1"], "price_date": [pd.Timestamp(DAYS[1])], "price": [0.97]}
    )
    assert repo.replace_reference(prices=corrected)["mark_changes"] == 1

    # DE1's 03-03 mark is new: 03-03 and 03-04 read it; 03-02 keeps reading its own.
    assert stale_days(env) == list(DAYS[1:])
    days = json.loads(run_desk(env, "books", "--book", BOOK, "--json").stdout)["days"]
    assert [d["business_date"] for d in days if d["stale"]] == list(DAYS[1:])
    run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[0])
    assert stale_days(env) == []
    assert items(env, DAYS[2])["DE1"]["price"] == 0.97
