"""Freshness checks: intraday snapshots keep coming during desk hours, each day gets its EOD."""

import datetime as dt

import dagster as dg

from desk_pipeline.defs.settings import DeskSettings


def freshness_checks(settings: DeskSettings) -> list[dg.AssetChecksDefinition]:
    """The freshness checks for ``settings`` (DESK_HOURS, DESK_FRESHNESS_MINUTES, DESK_TIMEZONE).

    intraday_positions fails when, at any 10-minute mark during desk hours, its newest snapshot
    is older than the allowed age (default 20 minutes: one missed tick is tolerated, two are not).
    eod_positions fails when the new day's partition has not been materialised by 00:30, which
    also means the previous day's last window was never rolled into its EOD.
    """
    return [
        *dg.build_last_update_freshness_checks(
            assets=[dg.AssetKey("intraday_positions")],
            lower_bound_delta=dt.timedelta(minutes=settings.intraday_freshness_minutes),
            deadline_cron=f"*/10 {settings.desk_hours} * * *",
            timezone=settings.timezone,
        ),
        *dg.build_time_partition_freshness_checks(
            assets=[dg.AssetKey("eod_positions")],
            deadline_cron="30 0 * * *",
            timezone=settings.timezone,
        ),
    ]


def freshness_sensor(checks: list[dg.AssetChecksDefinition]) -> dg.SensorDefinition:
    """Evaluates ``checks`` (they only run when evaluated); on in a fresh instance."""
    return dg.build_sensor_for_freshness_checks(
        freshness_checks=checks, default_status=dg.DefaultSensorStatus.RUNNING
    )
