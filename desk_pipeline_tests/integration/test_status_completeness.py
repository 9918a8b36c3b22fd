"""`desk status` names the days whose stored EOD lacks its valuation or ranking, on both warehouses.

The simulator desk is computed for three days through the daily assets; then what a stopped
backfill leaves is made for real: a ranking and a valuation that never got stored, and a book
whose EOD an `eod_positions` run replaced (a late trade) with no valuation or ranking run after
it. The status document (`desk status --json`, `GET /status`) lists exactly those book-days
and the backfill that completes them; running the valuation and ranking again clears them.
"""

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from desk_pipeline import queries
from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.api import create_app
from desk_pipeline_tests.builders import (
    INCOMPLETE_DAYS,
    RESTATED,
    UNRANKED,
    UNVALUED,
    leave_incomplete,
)
from desk_pipeline_tests.location import desk_assets, desk_resources, desk_settings

DAYS = INCOMPLETE_DAYS
ALL = ["instruments", "prices", "eod_positions", "eod_valuation", "collateral_ranking"]


def materialized(url: str, instance: dg.DagsterInstance, names: list[str], days: list[str]):
    """``names`` of the simulator desk on ``url`` over ``days``, in one range run."""
    result = dg.materialize(
        desk_assets(*names, warehouse_url=url),
        resources=desk_resources(warehouse_url=url),
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": days[0],
            "dagster/asset_partition_range_end": days[-1],
        },
    )
    assert result.success


def left_behind(url: str, instance: dg.DagsterInstance) -> PositionRepository:
    """DAYS computed, then: UNRANKED's ranking of day 2 and UNVALUED's valuation of day 1
    deleted, and RESTATED's EOD of day 3 replaced by an `eod_positions` run alone."""
    materialized(url, instance, ALL, DAYS)
    repo = PositionRepository(url)
    leave_incomplete(repo)
    materialized(url, instance, ["eod_positions"], DAYS[2:])
    return repo


@pytest.fixture
def repo(warehouse_url, dagster_instance):
    repo = left_behind(warehouse_url, dagster_instance)
    yield repo
    repo.engine.dispose()


def test_status_lists_each_eod_whose_valuation_or_ranking_is_missing_or_older(
    repo, warehouse_url, dagster_instance
):
    document = queries.status_document(repo)

    as_of = {d: (pd.Timestamp(d, tz="UTC") + pd.Timedelta(days=1)).isoformat() for d in DAYS}
    assert document["incomplete_eods"] == [
        {
            "book_id": UNVALUED,
            "business_date": DAYS[0],
            "as_of": as_of[DAYS[0]],
            "valuation": "missing",
            "ranking": "current",
        },
        {
            "book_id": UNRANKED,
            "business_date": DAYS[1],
            "as_of": as_of[DAYS[1]],
            "valuation": "current",
            "ranking": "missing",
        },
        {
            "book_id": RESTATED,
            "business_date": DAYS[2],
            "as_of": as_of[DAYS[2]],
            "valuation": "older_snapshot",
            "ranking": "older_snapshot",
        },
    ]
    assert document["incomplete_days"] == DAYS
    assert document["incomplete_fix"] == f"desk backfill --start {DAYS[0]} --end {DAYS[-1]}"
    by_book = {b["book_id"]: b["incomplete_days"] for b in document["books"]}
    assert len(by_book) == 20
    assert {b: d for b, d in by_book.items() if d} == {
        UNVALUED: [DAYS[0]],
        UNRANKED: [DAYS[1]],
        RESTATED: [DAYS[2]],
    }
    assert all(b["stale_days"] == [] for b in document["books"])  # restated, not stale

    # The API serves the same document.
    settings = desk_settings(warehouse_url=warehouse_url)
    with TestClient(create_app(settings, token=None, instance=dagster_instance)) as client:
        assert client.get("/status").json() == document

    # What the backfill runs after the EODs, the valuation and the ranking, completes them.
    materialized(warehouse_url, dagster_instance, ["eod_valuation", "collateral_ranking"], DAYS)
    document = queries.status_document(repo)
    assert (document["incomplete_days"], document["incomplete_eods"]) == ([], [])
    assert document["incomplete_fix"] is None


def test_the_read_agrees_with_a_plain_reading_of_the_tables(repo):
    # The read probes indexes (a ranking by the snapshot of its book-day's first row); the
    # reference reads every row of the four tables and compares snapshots in pandas.
    with repo.engine.connect() as conn:
        heads, positions, valuations, rankings = (
            pd.read_sql_query(sa.select(table), conn)
            for table in (t.eod_snapshots, t.eod_positions, t.eod_valuations, t.collateral_rankings)
        )
    day = ["book_id", "business_date"]
    expected = heads[[*day, "snapshot_id", "position_count"]].assign(
        has_rows=heads["snapshot_id"].isin(positions["snapshot_id"])
    )
    for name, rows in (("valuation", valuations), ("ranking", rankings)):
        stored = rows[[*day, "snapshot_id"]].drop_duplicates()
        current = expected["snapshot_id"].isin(stored["snapshot_id"])
        of_day = pd.MultiIndex.from_frame(expected[day]).isin(pd.MultiIndex.from_frame(stored[day]))
        expected[f"{name}_current"] = current.to_numpy()
        expected[f"{name}_older"] = of_day & ~current.to_numpy()
    read = repo.eod_derivations()[list(expected.columns)]

    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values(day).reset_index(drop=True).astype({"position_count": "int64"})

    pd.testing.assert_frame_equal(ordered(read), ordered(expected))
    assert len(read) == 60
    behind = read[~read["ranking_current"] | ~read["valuation_current"]]
    assert sorted(behind["book_id"]) == sorted([UNRANKED, UNVALUED, RESTATED])


def test_an_emptied_eod_keeps_no_ranking_to_flag_and_one_left_behind_is_flagged(
    warehouse_url, dagster_instance
):
    # A book whose positions vanished (its EOD stored empty) needs neither; a ranking of the
    # snapshot the empty EOD replaced is still what `desk ranking` would read: older.
    materialized(warehouse_url, dagster_instance, ALL, DAYS[:1])
    repo = PositionRepository(warehouse_url)
    e, p = t.eod_snapshots, t.eod_positions
    with repo.engine.begin() as conn:
        emptied = (e.c.book_id == UNRANKED) & (e.c.business_date == DAYS[0])
        conn.execute(p.delete().where(p.c.book_id == UNRANKED, p.c.business_date == DAYS[0]))
        conn.execute(e.update().where(emptied).values(position_count=0, snapshot_id="emptied"))
    document = queries.status_document(repo)
    assert [(i["book_id"], i["valuation"], i["ranking"]) for i in document["incomplete_eods"]] == [
        (UNRANKED, "older_snapshot", "older_snapshot")
    ]
    r, v = t.collateral_rankings, t.eod_valuations
    with repo.engine.begin() as conn:
        for table in (r, v):
            conn.execute(table.delete().where(table.c.book_id == UNRANKED))
        assert conn.execute(sa.select(sa.func.count()).select_from(r)).scalar_one() > 0
    assert queries.status_document(repo)["incomplete_eods"] == []
    repo.engine.dispose()
