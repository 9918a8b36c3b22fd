"""The schedule, the EOD refresh, the freshness policies and the catalogue as operators see them."""

import asyncio
import datetime as dt

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.definitions.freshness_evaluator import FRESHNESS_EVALUATORS_BY_POLICY_TYPE
from dagster._core.loader import LoadingContextForTest
from dagster._core.test_utils import freeze_time

from desk_pipeline.defs import automation
from desk_pipeline.defs.resources import DeskSettings
from desk_pipeline_tests.location import desk_assets, desk_definitions, desk_settings

eod_positions, intraday_positions, trades, collateral_ranking, eod_valuation = desk_assets(
    "eod_positions", "intraday_positions", "trades", "collateral_ranking", "eod_valuation"
)

ASSETS = [trades, intraday_positions, eod_positions, eod_valuation, collateral_ranking]
UTC = dt.UTC


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def settings(**changes: object) -> DeskSettings:
    return desk_settings(**changes)


def code_location() -> dg.Definitions:
    return desk_definitions()


def schedule() -> dg.ScheduleDefinition:
    return code_location().resolve_schedule_def(automation.intraday_schedule.name)


def requested(result: dg.EvaluateAutomationConditionsResult, asset: str) -> set[str]:
    return set(result.get_requested_partitions(dg.AssetKey(asset)))


def materialised(instance: dg.DagsterInstance, asset: str, partition: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=partition))


def evaluate(
    instance: dg.DagsterInstance,
    now: dt.datetime,
    after: dg.EvaluateAutomationConditionsResult | None = None,
) -> dg.EvaluateAutomationConditionsResult:
    """The desk's automation conditions evaluated at ``now``, going on from ``after``'s cursor."""
    cursor = after.cursor if after is not None else None
    return dg.evaluate_automation_conditions(
        code_location(), instance, evaluation_time=now, cursor=cursor
    )


def test_the_schedule_tick_at_10_20_05_requests_the_10_10_window(dagster_instance):
    context = dg.build_schedule_context(
        instance=dagster_instance, scheduled_execution_time=utc("2026-03-03 10:20:05")
    )
    [request] = list(schedule().evaluate_tick(context).run_requests or [])
    assert request.partition_key == "2026-03-03-10:10"


def test_the_schedule_tick_just_after_midnight_requests_the_previous_days_last_window(
    dagster_instance,
):
    context = dg.build_schedule_context(
        instance=dagster_instance, scheduled_execution_time=utc("2026-03-04 00:00:05")
    )
    [request] = list(schedule().evaluate_tick(context).run_requests or [])
    assert request.partition_key == "2026-03-03-23:50"


def test_after_an_intraday_window_materialises_todays_eod_is_requested(dagster_instance):
    now = utc("2026-03-03 10:20:30")
    first = evaluate(dagster_instance, now)
    assert requested(first, "eod_positions") == set()

    materialised(dagster_instance, "intraday_positions", "2026-03-03-10:10")
    second = evaluate(dagster_instance, now, after=first)
    assert requested(second, "eod_positions") == {"2026-03-03"}

    # Handled once: without a new window nothing more is requested.
    third = evaluate(dagster_instance, now, after=second)
    assert requested(third, "eod_positions") == set()


def test_the_last_window_of_the_day_still_refreshes_that_days_eod_after_midnight(
    dagster_instance,
):
    now = utc("2026-03-04 00:00:30")
    first = evaluate(dagster_instance, now)
    materialised(dagster_instance, "intraday_positions", "2026-03-03-23:50")
    second = evaluate(dagster_instance, now, after=first)
    assert requested(second, "eod_positions") == {"2026-03-03"}


def test_a_new_eod_requests_the_ranking_and_the_valuation_of_the_same_day(dagster_instance):
    now = utc("2026-03-03 10:21:00")
    first = evaluate(dagster_instance, now)
    materialised(dagster_instance, "eod_positions", "2026-03-03")
    second = evaluate(dagster_instance, now, after=first)
    assert requested(second, "collateral_ranking") == {"2026-03-03"}
    assert requested(second, "eod_valuation") == {"2026-03-03"}


def run_checks(instance: dg.DagsterInstance, **changes: object) -> dict[str, bool]:
    """Whether each asset with a freshness policy passes it now, as the freshness daemon judges.

    The code location built from ``settings(**changes)`` carries the policies; Dagster's own
    evaluator (the one its freshness daemon runs) reads only the instance, never the warehouse.
    """
    graph = desk_definitions(**changes).resolve_asset_graph()
    outcome = {}
    for node in graph.asset_nodes:
        policy = node.freshness_policy
        if policy is None:
            continue
        evaluator = FRESHNESS_EVALUATORS_BY_POLICY_TYPE[type(policy)]()
        context = LoadingContextForTest(instance)
        state = asyncio.run(evaluator.evaluate_freshness(context, node))  # type: ignore[arg-type]
        outcome[node.key.to_user_string()] = state == FreshnessState.PASS
    return outcome


def materialised_at(when: str, instance: dg.DagsterInstance, asset: str, partition: str) -> None:
    """``materialised``, with the clock at ``when`` (UTC)."""
    with freeze_time(utc(when)):
        materialised(instance, asset, partition)


def checks_at(when: str, instance: dg.DagsterInstance, **changes: object) -> dict[str, bool]:
    """``run_checks``, with the clock at ``when`` (UTC)."""
    with freeze_time(utc(when)):
        return run_checks(instance, **changes)


@pytest.mark.parametrize(
    ("last_snapshot", "now", "fresh"),
    [
        ("2026-03-03 10:10:10", "2026-03-03 10:25:00", True),  # the last tick ran
        ("2026-03-03 10:00:10", "2026-03-03 10:25:00", True),  # one missed tick is tolerated
        ("2026-03-03 09:50:10", "2026-03-03 10:25:00", False),  # two missed ticks are not
    ],
)
def test_intraday_positions_is_stale_when_its_newest_snapshot_is_over_20_minutes_old(
    dagster_instance, last_snapshot, now, fresh
):
    materialised_at(last_snapshot, dagster_instance, "intraday_positions", "2026-03-03-10:00")
    assert checks_at(now, dagster_instance)["intraday_positions"] is fresh


def test_outside_desk_hours_an_old_intraday_snapshot_is_not_an_alert(dagster_instance):
    materialised_at(
        "2026-03-03 18:45:00", dagster_instance, "intraday_positions", "2026-03-03-18:30"
    )
    outcome = checks_at("2026-03-03 22:00:00", dagster_instance, desk_hours="7-18")
    assert outcome["intraday_positions"] is True
    outcome = checks_at("2026-03-03 22:00:00", dagster_instance)
    assert outcome["intraday_positions"] is False


def test_the_intraday_freshness_limit_is_configurable(dagster_instance):
    materialised_at(
        "2026-03-03 09:50:10", dagster_instance, "intraday_positions", "2026-03-03-09:40"
    )
    outcome = checks_at("2026-03-03 10:25:00", dagster_instance, intraday_freshness_minutes=45)
    assert outcome["intraday_positions"] is True


def test_eod_positions_is_overdue_when_the_new_day_has_no_eod_by_00_30(dagster_instance):
    materialised_at("2026-03-03 23:55:00", dagster_instance, "eod_positions", "2026-03-03")
    assert checks_at("2026-03-04 00:40:00", dagster_instance)["eod_positions"] is False
    materialised_at("2026-03-04 00:40:00", dagster_instance, "eod_positions", "2026-03-04")
    assert checks_at("2026-03-04 00:40:00", dagster_instance)["eod_positions"] is True


def test_yesterdays_last_refresh_after_midnight_is_not_the_new_days_eod(dagster_instance):
    # At 00:01:30: after the 23:50 window's tick.
    materialised_at("2026-03-04 00:01:30", dagster_instance, "eod_positions", "2026-03-03")
    assert checks_at("2026-03-04 00:40:00", dagster_instance)["eod_positions"] is False


def test_the_freshness_policies_take_their_parameters_from_the_settings():
    def policy(asset: str, **changes: object) -> dg.FreshnessPolicy | None:
        return (
            desk_definitions(**changes)
            .resolve_asset_graph()
            .get(dg.AssetKey(asset))
            .freshness_policy
        )

    minutes = dt.timedelta(minutes=20)
    assert policy("intraday_positions") == dg.FreshnessPolicy.cron("*/20 0-23 * * *", minutes)
    london = {"timezone": "Europe/London", "desk_hours": "7-18", "intraday_freshness_minutes": 45}
    assert policy("intraday_positions", **london) == dg.FreshnessPolicy.cron(
        "0 7-18 * * *", dt.timedelta(minutes=45), timezone="Europe/London"
    )
    assert policy("eod_positions", **london) == dg.FreshnessPolicy.cron(
        "30 0 * * *", minutes, timezone="Europe/London"
    )
    # Over an hour no cron mark within DESK_HOURS can look back that far: around the clock.
    assert policy("intraday_positions", intraday_freshness_minutes=90) == (
        dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(minutes=90))
    )
    assert {policy(a.key.to_user_string()) for a in (trades, eod_valuation)} == {None}


@pytest.mark.parametrize("asset", ASSETS, ids=lambda a: a.key.to_user_string())
def test_every_asset_is_catalogued_with_owner_description_table_and_columns(asset):
    spec = next(iter(asset.specs))
    assert spec.description and "one row per" in spec.description.lower()
    assert spec.owners == ["team:securities-financing-desk"]
    assert spec.group_name in {"positions", "collateral"}
    assert spec.kinds and "desk/layer" in spec.tags
    assert spec.metadata["dagster/table_name"].startswith("warehouse.")
    columns = [c.name for c in spec.metadata["dagster/column_schema"].columns]
    assert {"book_id", "instrument_id"} <= set(columns)
