"""Attack finding: a position of billions of units closed in decimal is flat however the days ran.

Book BIG bought 4 x 1e9 + 456946523.790561 of I1 on 2026-03-02 and sold the same the next day.
Backfilled one day at a time, the second day rolled from the stored EOD of the first, whose
float quantity came back one micro-unit low: `desk positions` showed a short of -0.000001 at
avg_price 2.0 on 2026-03-03, rolled forward to every later day and ranked; the one-pass
backfill of both days was flat. The reconciliation check, rolling from the same stored EOD,
passed. Stored snapshots now keep exact micro-units (migration 0010).
"""

import json
import os
from pathlib import Path

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.e2e import driver

BOOK = "BIG"
DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]
LOTS = ["1000000000"] * 4 + ["456946523.790561"]
ATTACK_INPUT = "trade_id,book_id,instrument_id,quantity,price,trade_time\n" + "".join(
    f"{side}{n},BIG,I1,{sign}{quantity},{price},{day}T10:0{n}:00Z\n"
    for side, sign, price, day in (("B", "", 1, DAYS[0]), ("S", "-", 2, DAYS[1]))
    for n, quantity in enumerate(LOTS)
)


def desk_env(tmp_path: Path, name: str, warehouse_url: str) -> dict:
    """A fresh DAGSTER_HOME on the attack's landing folder and the given warehouse."""
    folder = tmp_path / "landing"
    folder.mkdir(exist_ok=True)
    (folder / "trades.csv").write_text(ATTACK_INPUT, encoding="utf-8")
    home = tmp_path / name
    home.mkdir()
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DAGSTER_HOME": str(home),
        "DESK_TRADE_SOURCE": f"landing:{folder}",
        "DESK_WAREHOUSE_URL": warehouse_url,
        "DESK_START_DATE": "2026-03-01",
    }


def backfill(env: dict, start: str, end: str) -> None:
    driver.run_desk(env, "backfill", "--start", start, "--end", end)


def document(env: dict, command: str, day: str) -> dict:
    args = (command, "--book", BOOK, "--date", day, "--json")
    return json.loads(driver.run_desk(env, *args).stdout)


def stored(url: str) -> dict:
    """Every stored EOD row of BIG: (day, instrument) -> exact quantity and money."""
    rows = PositionRepository(url).eod_positions(DAYS)
    return {
        (r.business_date, r.instrument_id): (
            r.quantity_micro_units,
            r.quantity,
            r.avg_price,
            r.realized_pnl,
        )
        for r in rows.itertuples()
    }


def test_billions_bought_then_sold_are_flat_day_by_day_as_in_one_pass(tmp_path, warehouse_url):
    day_by_day = desk_env(tmp_path, "day-by-day", warehouse_url)
    for day in DAYS:
        backfill(day_by_day, day, day)

    held = document(day_by_day, "positions", DAYS[0])["positions"]
    assert held == [
        {"instrument_id": "I1", "quantity": 4456946523.790561, "avg_price": 1.0, "realized_pnl": 0}
    ]
    for day in DAYS[1:]:
        assert document(day_by_day, "positions", day)["positions"] == [], day
        assert document(day_by_day, "ranking", day)["items"] == [], day
    # Flat, with realised (2 - 1) x 4456946523.790561 kept.
    rows = stored(warehouse_url)
    assert rows[(DAYS[1], "I1")] == (0, 0.0, 0.0, 4456946523.790561)
    assert rows[(DAYS[2], "I1")] == rows[(DAYS[1], "I1")]

    one_pass_url = f"sqlite:///{tmp_path}/one-pass.db"
    backfill(desk_env(tmp_path, "one-pass", one_pass_url), DAYS[0], DAYS[-1])
    assert stored(one_pass_url) == rows
