"""The reference assets refresh today's partition hourly through the automation sensor."""

import dagster as dg

from desk_pipeline.defs.reference.assets import REFRESH_HOURLY
from desk_pipeline_tests.location import desk_assets, desk_definitions

instruments, prices = desk_assets("instruments", "prices")


def test_reference_assets_refresh_hourly_and_the_automation_sensor_evaluates_them():
    from desk_pipeline.defs.automation import eod_refresh_sensor

    defs = desk_definitions()
    assert REFRESH_HOURLY.get_label() == "on_cron(0 * * * *, UTC)"
    for asset in (instruments, prices):
        assert asset.automation_conditions_by_key[asset.key] == REFRESH_HOURLY
    targeted = eod_refresh_sensor.asset_selection.resolve(defs.resolve_asset_graph())
    assert {dg.AssetKey("instruments"), dg.AssetKey("prices")} <= targeted
