"""The collateral_ranking checks over a real SQLite warehouse: each passes and each fails."""

import sqlite3
from contextlib import closing

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs.collateral.checks import (
    COLLATERAL_CHECKS,
    check_every_holding_ranked_once,
    check_haircuts_in_range,
    check_issuer_concentration,
    check_values_consistent,
)
from desk_pipeline.defs.resources import HaircutScheduleResource, WarehouseResource
from desk_pipeline.domain.collateral.ranking import issuer_concentration
from desk_pipeline_tests.location import desk_assets, desk_resources

eod_positions, collateral_ranking, instruments, prices = desk_assets(
    "eod_positions", "collateral_ranking", "instruments", "prices"
)

DAY = "2026-03-04"


@pytest.fixture(scope="module")
def materialised(tmp_path_factory) -> tuple[str, dg.ExecuteInProcessResult]:
    """One simulator day ranked with the checks attached, run once for the module (it is slow)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('warehouse')}/warehouse.db"
    resources = desk_resources(warehouse_url=url, issuer_concentration_limit=0.25)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [instruments, prices, eod_positions, collateral_ranking, *COLLATERAL_CHECKS],
            partition_key=DAY,
            resources=resources,
            instance=instance,
        )
    yield url, result
    PositionRepository(url).engine.dispose()


@pytest.fixture
def repo(materialised, tmp_path) -> PositionRepository:
    """A private copy of the materialised warehouse, so a test may tamper with it."""
    source = materialised[0].removeprefix("sqlite:///")
    copy = tmp_path / "copy.db"
    # The backup API, not a file copy: the warehouse's recent writes may still sit in its WAL.
    with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(copy)) as target:
        live.backup(target)
    repository = PositionRepository(f"sqlite:///{copy}")
    yield repository
    repository.engine.dispose()


def run_checks_alone(repo: PositionRepository, issuer_limit: float) -> dg.ExecuteInProcessResult:
    """The collateral checks alone on ``repo``, in a run that names no day (every stored day)."""
    resources = {
        "warehouse": WarehouseResource(url=str(repo.engine.url)),
        "haircuts": HaircutScheduleResource(issuer_concentration_limit=issuer_limit),
    }
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [collateral_ranking, *COLLATERAL_CHECKS],
            selection=dg.AssetSelection.checks_for_assets(collateral_ranking),
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )


def test_a_fresh_ranking_passes_its_checks_and_reports_issuer_concentration(materialised):
    url, result = materialised
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {"every_holding_ranked_once", "ranking_values_consistent", "haircuts_in_range"} <= {
        name for name, e in evaluations.items() if e.passed
    }
    assert "issuer_concentration_under_limit" in evaluations
    repo = PositionRepository(url)
    shown = result.asset_materializations_for_node("collateral_ranking")[0].metadata
    reference = repo.reference_as_of(pd.Timestamp(DAY), pd.Timestamp(DAY))
    shares = issuer_concentration(repo.rankings([DAY]), reference.instruments, 0.25)
    assert shown["max_issuer_share"].value == pytest.approx(shares["share"].max())
    assert shown["issuers_over_limit"].value == int(shares["over_limit"].sum())
    concentration = evaluations["issuer_concentration_under_limit"]
    assert concentration.passed == (shown["issuers_over_limit"].value == 0)
    assert concentration.severity == dg.AssetCheckSeverity.WARN


def first_eligible(repo: PositionRepository) -> tuple[str, str]:
    ranking = repo.rankings([DAY])
    top = ranking[ranking["eligible"]].iloc[0]
    return top["book_id"], top["instrument_id"]


def only(repo: PositionRepository, book: str, instrument: str) -> sa.ColumnElement[bool]:
    r = t.collateral_rankings
    return sa.and_(r.c.book_id == book, r.c.instrument_id == instrument, r.c.business_date == DAY)


def test_a_held_instrument_missing_from_the_ranking_fails_the_coverage_check(repo):
    assert check_every_holding_ranked_once(repo.eod_positions([DAY]), repo.rankings([DAY])).passed
    book, instrument = first_eligible(repo)
    with repo.engine.begin() as conn:
        conn.execute(t.collateral_rankings.delete().where(only(repo, book, instrument)))
    result = check_every_holding_ranked_once(repo.eod_positions([DAY]), repo.rankings([DAY]))
    assert not result.passed and result.metadata["missing"].value == 1
    assert result.metadata["examples"].value == f"{book} {DAY} {instrument} missing"


def test_a_tampered_value_fails_the_consistency_check(repo):
    assert check_values_consistent(repo.rankings([DAY])).passed
    book, instrument = first_eligible(repo)
    r = t.collateral_rankings
    with repo.engine.begin() as conn:
        conn.execute(r.update().where(only(repo, book, instrument)).values(value=r.c.value * 1.001))
    result = check_values_consistent(repo.rankings([DAY]))
    assert not result.passed and result.metadata["values_inconsistent"].value == 1


def test_a_haircut_of_one_on_an_eligible_item_fails_the_haircut_check(repo):
    assert check_haircuts_in_range(repo.rankings([DAY])).passed
    book, instrument = first_eligible(repo)
    with repo.engine.begin() as conn:
        conn.execute(
            t.collateral_rankings.update().where(only(repo, book, instrument)).values(haircut=1.0)
        )
    result = check_haircuts_in_range(repo.rankings([DAY]))
    assert not result.passed and result.metadata["haircuts_out_of_range"].value == 1


def test_the_concentration_check_warns_over_the_limit_and_passes_under_it(repo):
    ranking = repo.rankings([DAY])
    instruments = repo.reference_as_of(pd.Timestamp(DAY), pd.Timestamp(DAY)).instruments
    assert check_issuer_concentration(ranking, instruments, limit=1.0).passed
    result = check_issuer_concentration(ranking, instruments, limit=0.0)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["issuers_over_limit"].value > 0


def test_a_run_naming_no_day_checks_every_stored_day_and_a_missing_holding_blocks_it(repo):
    book, instrument = first_eligible(repo)
    with repo.engine.begin() as conn:
        conn.execute(t.collateral_rankings.delete().where(only(repo, book, instrument)))
    result = run_checks_alone(repo, issuer_limit=1.0)
    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    coverage = evaluations.pop("every_holding_ranked_once")
    assert not coverage.passed and coverage.blocking
    assert coverage.metadata["examples"].value == f"{book} {DAY} {instrument} missing"
    # Deleting the book's rank 1 leaves its ranks starting at 2: the same read shows it misranked.
    consistency = evaluations["ranking_values_consistent"]
    assert not consistency.passed and consistency.metadata["book_days_misranked"].value == 1
    assert consistency.metadata["values_inconsistent"].value == 0
    assert evaluations["haircuts_in_range"].passed
    assert evaluations["issuer_concentration_under_limit"].passed


def test_the_checks_op_reading_only_what_it_checks_still_fails_on_each_defect(repo):
    """The op's own read (rankings_and_eod_rows), not the full reads the tests above use."""
    ranking = repo.rankings([DAY])
    eligible = ranking[ranking["eligible"]]
    books = list(dict.fromkeys(eligible["book_id"]))
    r, p = t.collateral_rankings, t.eod_positions
    on = {b: eligible[eligible["book_id"] == b].iloc[0]["instrument_id"] for b in books[:4]}
    with repo.engine.begin() as conn:
        tampered_value, high_haircut, not_held, not_ranked = books[:4]
        conn.execute(
            r.update()
            .where(only(repo, tampered_value, on[tampered_value]))
            .values(value=r.c.value * 1.001)
        )
        conn.execute(
            r.update().where(only(repo, high_haircut, on[high_haircut])).values(haircut=1.0)
        )
        conn.execute(
            p.update()
            .where(p.c.book_id == not_held, p.c.instrument_id == on[not_held])
            .where(p.c.business_date == DAY)
            .values(quantity_micro_units=0)
        )
        conn.execute(r.delete().where(only(repo, not_ranked, on[not_ranked])))
    result = run_checks_alone(repo, issuer_limit=0.0)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    coverage = evaluations["every_holding_ranked_once"].metadata
    assert not evaluations["every_holding_ranked_once"].passed
    assert (coverage["missing"].value, coverage["not_held"].value) == (1, 1)
    assert coverage["duplicated"].value == 0
    consistency = evaluations["ranking_values_consistent"]
    # The tampered value and the high haircut's value no longer match; the deleted rank 1
    # leaves its book misranked.
    assert not consistency.passed and consistency.metadata["values_inconsistent"].value == 2
    assert consistency.metadata["book_days_misranked"].value >= 1
    haircut = evaluations["haircuts_in_range"]
    assert not haircut.passed and haircut.metadata["haircuts_out_of_range"].value == 1
    assert haircut.metadata["examples"].value == f"{high_haircut} {DAY} {on[high_haircut]} 1.0"
    assert not evaluations["issuer_concentration_under_limit"].passed
