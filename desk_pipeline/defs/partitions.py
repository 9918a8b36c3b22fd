"""The desk's two partitionings: 10-minute windows and business days, in DESK_TIMEZONE."""

import datetime as dt

import dagster as dg

from desk_pipeline.defs.resources import SETTINGS

# A 10-minute partition D-HH:MM is the window [HH:MM, HH:MM+10); its snapshot is as of its end.
INTRADAY_10MIN = dg.TimeWindowPartitionsDefinition(
    cron_schedule="*/10 * * * *",
    fmt="%Y-%m-%d-%H:%M",
    start=dt.datetime.fromisoformat(SETTINGS.start_date),
    timezone=SETTINGS.timezone,
)

# end_offset=1 makes today's partition exist during the day, so its EOD can be refreshed.
DAILY = dg.DailyPartitionsDefinition(
    start_date=SETTINGS.start_date, timezone=SETTINGS.timezone, end_offset=1
)
