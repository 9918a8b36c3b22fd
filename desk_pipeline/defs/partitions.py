"""The desk's two partitionings: 10-minute windows and business days, in DESK_TIMEZONE."""

import dataclasses
import datetime as dt

import dagster as dg

from desk_pipeline.defs.settings import DeskSettings


@dataclasses.dataclass(frozen=True)
class DeskPartitions:
    """The 10-minute windows and the business days, from DESK_START_DATE in DESK_TIMEZONE."""

    intraday: dg.TimeWindowPartitionsDefinition
    daily: dg.DailyPartitionsDefinition


def desk_partitions(settings: DeskSettings) -> DeskPartitions:
    """The partitions for ``settings`` (DESK_START_DATE, DESK_TIMEZONE)."""
    return DeskPartitions(
        # A 10-minute partition D-HH:MM is the window [HH:MM, HH:MM+10); its snapshot is as
        # of its end.
        intraday=dg.TimeWindowPartitionsDefinition(
            cron_schedule="*/10 * * * *",
            fmt="%Y-%m-%d-%H:%M",
            start=dt.datetime.fromisoformat(settings.start_date),
            timezone=settings.timezone,
        ),
        # end_offset=1 makes today's partition exist during the day, so its EOD can be refreshed.
        daily=dg.DailyPartitionsDefinition(
            start_date=settings.start_date, timezone=settings.timezone, end_offset=1
        ),
    )
