"""The code location: every asset, check, job, schedule and sensor with its resources."""

import dagster as dg

from desk_pipeline.defs import automation, runs
from desk_pipeline.defs.collateral import assets as collateral_assets
from desk_pipeline.defs.collateral import checks as collateral_checks
from desk_pipeline.defs.positions import assets as position_assets
from desk_pipeline.defs.positions import checks, freshness, sensors, valuation
from desk_pipeline.defs.reference import assets as reference_assets
from desk_pipeline.defs.resources import SETTINGS, resources_from

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(
        [position_assets, valuation, collateral_assets, reference_assets]
    ),
    jobs=[automation.intraday_job, automation.daily_job],
    schedules=[automation.intraday_schedule],
    asset_checks=[
        *freshness.FRESHNESS_CHECKS,
        *checks.POSITION_CHECKS,
        *collateral_checks.COLLATERAL_CHECKS,
    ],
    sensors=[
        automation.eod_refresh_sensor,
        automation.outbox_relay_sensor,
        freshness.freshness_checks_sensor,
        sensors.restatement_sensor,
        runs.orphaned_runs_sensor,
    ],
    resources=resources_from(SETTINGS),
    # Every run executes its steps in its run worker, one process: the schedule's ticks, the
    # automation sensor's EOD refreshes (the implicit asset job), backfills, UI materialisations.
    # A process per step (Dagster's multiprocess default) imported Dagster, pandas, numba and
    # these definitions again for each of a tick's five steps, most of its time and CPU (see
    # the README's tick-e2e figures). Retry policies and pools hold in process
    # (test_run_executor.py); a crashed worker is re-launched by run retries (dagster.yaml).
    executor=dg.in_process_executor,
)
