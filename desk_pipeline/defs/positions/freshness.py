"""Freshness policies: intraday snapshots keep coming during desk hours, each day gets its EOD.

Dagster's ``FreshnessPolicy`` on the assets, evaluated by the daemon's freshness daemon (no
checks, no sensor); the asset's freshness state (PASS / FAIL, "healthy" / "degraded" in the UI)
is what operators watch. What the policies cannot say, and how close they come:

- ``CronFreshnessPolicy`` allows a lookback (``lower_bound_delta``) no longer than its cron's
  smallest interval, so the intraday limit of DESK_FRESHNESS_MINUTES (default 20, one missed
  tick tolerated) is checked at marks that many minutes apart (rounded up to a divisor of an
  hour, at least 10): every 20 minutes by default, where the superseded check looked every 10.
  A limit over an hour cannot be tied to DESK_HOURS at all: it is then a time-window policy,
  around the clock.
- Dagster evaluates a policy on the asset's newest materialisation, of any partition: "the new
  day's EOD by 00:30" becomes "eod_positions materialised between 00:10 and 00:30", which in
  operation is the new day's first EOD (the 00:00-00:10 window's refresh). The window starts at
  00:10 so that yesterday's last refresh (after the 23:50 window, a minute past midnight) does
  not count; a backfill that lands in those twenty minutes would.
"""

import datetime as dt

import dagster as dg

from desk_pipeline.defs.settings import DeskSettings, intraday_deadline_cron

INTRADAY = dg.AssetKey("intraday_positions")
EOD = dg.AssetKey("eod_positions")
# Check marks for the intraday limit: minute steps that divide the hour, so each hour looks alike.
MARK_STEPS = (10, 12, 15, 20, 30, 60)


def intraday_policy(settings: DeskSettings) -> dg.FreshnessPolicy:
    """Newest snapshot at most DESK_FRESHNESS_MINUTES old at each mark within DESK_HOURS."""
    limit = dt.timedelta(minutes=settings.intraday_freshness_minutes)
    step = next((s for s in MARK_STEPS if s >= settings.intraday_freshness_minutes), None)
    if step is None:
        return dg.FreshnessPolicy.time_window(fail_window=limit)
    marks = "0" if step == 60 else f"*/{step}"
    return dg.FreshnessPolicy.cron(
        deadline_cron=intraday_deadline_cron(marks, settings.desk_hours),
        lower_bound_delta=limit,
        timezone=settings.timezone,
    )


def eod_policy(settings: DeskSettings) -> dg.FreshnessPolicy:
    """The new day's EOD materialised between 00:10 and 00:30 in DESK_TIMEZONE."""
    return dg.FreshnessPolicy.cron(
        deadline_cron="30 0 * * *",
        lower_bound_delta=dt.timedelta(minutes=20),
        timezone=settings.timezone,
    )


def freshness_policies(settings: DeskSettings) -> dict[dg.AssetKey, dg.FreshnessPolicy]:
    """The policy of each asset that has one, for ``settings``."""
    return {INTRADAY: intraday_policy(settings), EOD: eod_policy(settings)}


def with_freshness(
    assets: list[dg.AssetsDefinition], settings: DeskSettings
) -> list[dg.AssetsDefinition]:
    """``assets`` with their freshness policies attached (the others unchanged)."""
    policies = freshness_policies(settings)

    def attach(spec: dg.AssetSpec) -> dg.AssetSpec:
        policy = policies.get(spec.key)
        return spec if policy is None else spec.replace_attributes(freshness_policy=policy)

    return [a.map_asset_specs(attach) for a in assets]
