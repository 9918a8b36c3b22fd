"""Policies every daily end-of-day asset shares: partitions, refresh, backfill and retries."""

import functools
from collections.abc import Callable
from typing import Any

import dagster as dg
import pandas as pd

from desk_pipeline.adapters.transient import is_transient
from desk_pipeline.defs import catalogue

# Today's EOD is refreshed after each tick; these conditions keep it refreshing all day,
# where eager() stalls after one missed window (see ARCHITECTURE.md).
REFRESH_AFTER_TICK = (
    dg.AutomationCondition.in_latest_time_window(lookback_delta=pd.Timedelta(days=2))
    & dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)
# A dropped connection, failover or serialisation failure passes on retry; the waits grow
# 2 s, 4 s, 8 s. Writes are idempotent (keep-last, replace-window, batch digests), so a retry
# after a half-seen failure is safe. Any other error fails at once (retried_if_transient).
RETRY_TRANSIENT = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL)


def retried_if_transient(
    compute: Callable[..., dg.MaterializeResult],
) -> Callable[..., dg.MaterializeResult]:
    """``compute`` (an asset's body), whose errors Dagster retries only when a retry may cure them.

    Dagster's RetryPolicy retries whatever an asset raises: a bug or bad data failed the same way
    four times over 14 s, and the run's error said only "Exceeded max_retries of 3". An error
    that is not transient (adapters.transient) becomes a Failure Dagster does not retry, whose
    one line names the asset and the error.
    """

    @functools.wraps(compute)
    def body(*args: Any, **kwargs: Any) -> dg.MaterializeResult:
        try:
            return compute(*args, **kwargs)
        except (dg.Failure, dg.RetryRequested, dg.DagsterError):
            raise  # Dagster's own control flow
        except Exception as err:
            if is_transient(err):
                raise
            line = next(iter(str(err).strip().splitlines()), "")
            raise dg.Failure(
                f"{compute.__name__}: {type(err).__name__}: {line}", allow_retries=False
            ) from err

    return body


def end_of_day_asset(daily: dg.PartitionsDefinition) -> dict[str, Any]:
    """What every daily end-of-day asset (EOD, valuation, ranking) shares, as dg.asset arguments.

    Daily partitions refreshed after each tick, ranges backfilled in one run, transient failures
    retried.
    """
    return {
        "partitions_def": daily,
        "kinds": {"pandas", "sql"},
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "automation_condition": REFRESH_AFTER_TICK,
        "retry_policy": RETRY_TRANSIENT,
        "owners": catalogue.OWNERS,
        "tags": {"desk/layer": "eod"},
    }
