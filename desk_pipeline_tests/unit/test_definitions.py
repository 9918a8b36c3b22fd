"""The code location loads with no environment and wires the lineage of ARCHITECTURE.md."""

import subprocess
import sys

import dagster as dg
import pytest

from desk_pipeline.definitions import build_definitions, code_location
from desk_pipeline.domain.errors import SettingsError
from desk_pipeline_tests.location import desk_settings

DESK_VARIABLES = [
    "DESK_WAREHOUSE_URL",
    "DESK_TRADE_SOURCE",
    "DESK_TIMEZONE",
    "DESK_START_DATE",
    "DESK_EVENT_PUBLISHER",
]


@pytest.fixture
def definitions(monkeypatch, tmp_path):
    # The code location as `dagster dev` loads it: settings read when it loads, not at import.
    for name in DESK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return code_location()


def test_definitions_load_with_a_cleared_environment_and_validate(definitions):
    dg.Definitions.validate_loadable(definitions)


def test_the_assets_form_one_lineage_with_reference_data_feeding_the_ranking(definitions):
    graph = definitions.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "trades",
        "intraday_positions",
        "eod_positions",
        "collateral_ranking",
        "instruments",
        "prices",
    } <= keys
    parents = {
        k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
        for k in graph.get_all_asset_keys()
    }
    assert parents["intraday_positions"] == {"trades"}
    assert parents["eod_positions"] == {"intraday_positions"}
    assert parents["collateral_ranking"] == {"eod_positions", "instruments", "prices"}
    assert parents["eod_valuation"] == {"eod_positions", "instruments", "prices"}
    assert graph.get(dg.AssetKey("eod_valuation")).group_name == "positions"
    assert (
        graph.get(dg.AssetKey("eod_valuation")).partitions_def
        == graph.get(dg.AssetKey("eod_positions")).partitions_def
    )
    assert parents["instruments"] == parents["prices"] == set()
    for key in ("instruments", "prices", "collateral_ranking"):
        assert graph.get(dg.AssetKey(key)).group_name == "collateral"


def test_partitions_are_ten_minute_windows_and_business_days_in_utc_by_default(definitions):
    graph = definitions.resolve_asset_graph()
    intraday = graph.get(dg.AssetKey("intraday_positions")).partitions_def
    daily = graph.get(dg.AssetKey("eod_positions")).partitions_def
    assert intraday.cron_schedule == "*/10 * * * *" and intraday.fmt == "%Y-%m-%d-%H:%M"
    assert intraday.timezone == "UTC" and daily.timezone == "UTC"
    assert daily.end_offset == 1
    assert graph.get(dg.AssetKey("trades")).partitions_def == intraday
    assert graph.get(dg.AssetKey("collateral_ranking")).partitions_def == daily
    assert graph.get(dg.AssetKey("instruments")).partitions_def == daily
    assert graph.get(dg.AssetKey("prices")).partitions_def == daily


def test_the_daily_job_fills_reference_data_and_marks_before_ranking(definitions):
    job = definitions.resolve_job_def("daily_job")
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert selected == {
        "instruments",
        "prices",
        "eod_positions",
        "eod_valuation",
        "collateral_ranking",
    }


def test_every_asset_backfills_a_range_in_a_single_run(definitions):
    for node in definitions.resolve_asset_graph().asset_nodes:
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), node.key


def test_the_schedule_and_sensors_are_on_by_default(definitions):
    schedule = definitions.resolve_schedule_def("intraday_job_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.cron_schedule == "*/10 * * * *"
    for sensor in definitions.sensors:
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, sensor.name


def test_the_daily_partitions_follow_desk_timezone(monkeypatch, tmp_path):
    code = (
        "from desk_pipeline.defs.partitions import desk_partitions;"
        "from desk_pipeline.defs.settings import DeskSettings;"
        "p = desk_partitions(DeskSettings.from_env());"
        "keys = p.intraday.get_partition_keys_in_range("
        "__import__('dagster').PartitionKeyRange('2026-03-29-00:00', '2026-03-29-23:50'));"
        "print(p.daily.timezone, len(keys))"
    )
    env = {"DESK_TIMEZONE": "Europe/London", "DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["Europe/London", "138"]


def test_loading_the_code_location_hides_dagsters_beta_notices_and_shows_other_warnings(
    tmp_path,
):
    # As `dagster dev`'s webserver, daemon and code server load it: a fresh interpreter. Dagster's
    # beta, preview and supersession notices are for the desk's developers; any other warning, a
    # DeprecationWarning of our own here, still reaches stderr.
    code = (
        "import warnings;"
        "from desk_pipeline.definitions import defs;"
        "warnings.warn('ours, still shown', DeprecationWarning)"
    )
    env = {"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    for notice in ("BetaWarning", "PreviewWarning", "SupersessionWarning"):
        assert notice not in result.stderr, result.stderr
    assert "DeprecationWarning: ours, still shown" in result.stderr


def test_importing_the_code_location_reads_no_setting_and_loading_it_names_the_bad_one(
    monkeypatch,
):
    monkeypatch.setenv("DESK_TIMEZONE", "Mars/Olympus")
    with pytest.raises(SettingsError) as raised:
        code_location()
    assert [line.partition("=")[0] for line in raised.value.lines] == ["DESK_TIMEZONE"]


def test_the_modules_defs_is_the_code_location_built_when_first_read(definitions):
    # ARCHITECTURE.md: definitions.py holds `defs = Definitions(...)`.
    from desk_pipeline.definitions import defs

    assert isinstance(defs, dg.Definitions)
    keys = {node.key for node in defs.resolve_asset_graph().asset_nodes}
    assert keys == {node.key for node in definitions.resolve_asset_graph().asset_nodes}


def test_definitions_are_built_from_explicit_settings():
    defs = build_definitions(desk_settings(timezone="Europe/London", start_date="2026-02-01"))
    daily = defs.resolve_asset_graph().get(dg.AssetKey("eod_positions")).partitions_def
    assert daily.timezone == "Europe/London"
    assert daily.get_first_partition_key() == "2026-02-01"


def test_the_import_layers_hold():
    result = subprocess.run(
        [str(__import__("pathlib").Path(sys.executable).parent / "lint-imports")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
