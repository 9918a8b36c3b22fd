"""Restatement: finds stored EODs made stale by late trades and backfills them in one run."""

import hashlib

import dagster as dg
import pandas as pd

from desk_pipeline.defs.resources import WarehouseResource
from desk_pipeline.domain.positions.restatement import restatement_days

# By name: the job is defined by automation.py, which wires every folder.
DAILY_JOB = "daily_job"
# Dagster tag values are shown in the UI and stored per run: keep the trade list readable.
MAX_TAG_CHARS = 500


def restatement_request(headers: pd.DataFrame, late_changes: pd.DataFrame) -> dg.RunRequest | None:
    """One single-run backfill of daily_job over the stale range, or None when nothing is stale.

    Args:
        headers: stored EOD headers with ``book_id``, ``business_date``, ``snapshot_id``,
            ``as_of_us``, ``computed_at_us`` and ``stale`` (PositionRepository.eod_headers).
        late_changes: ``book_id``, ``from_time_us``, ``arrived_at_us``, ``trade_ids``
            (PositionRepository.late_changes).

    The range is ``domain.positions.restatement.restatement_days``, the one the ingesting assets
    restate in their own runs: from the earliest stale day to the latest stored day. The run key
    names the range and the late changes, so the same staleness is requested once; new late
    trades after a restatement write new late changes and are requested again.
    """
    days = restatement_days(headers, late_changes)
    if not days:
        return None
    start, end = days[0], days[-1]
    stale = headers[headers["stale"]]
    books = sorted(stale["book_id"].unique())
    # The late changes behind the staleness: those a stored EOD of the range was computed before.
    computed = int(headers.loc[headers["business_date"].isin(days), "computed_at_us"].min())
    why = late_changes[late_changes["arrived_at_us"] > computed]
    trade_ids = sorted({i for ids in why["trade_ids"] for i in str(ids).split(",") if i})
    digest = hashlib.sha256(
        ",".join(map(str, sorted(why["arrived_at_us"]))).encode() + f"|{start}|{end}".encode()
    ).hexdigest()[:16]
    return dg.RunRequest(
        run_key=f"restate:{start}..{end}:{digest}",
        job_name=DAILY_JOB,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
            "desk/trigger": "restatement_sensor",
            "desk/restatement_days": f"{start}..{end}",
            "desk/stale_eods": str(len(stale)),
            "desk/stale_days": str(len(days)),
            "desk/stale_books": _truncated(",".join(books)),
            "desk/restatement_trades": _truncated(",".join(trade_ids)),
        },
    )


def _truncated(text: str) -> str:
    if len(text) <= MAX_TAG_CHARS:
        return text
    return text[: MAX_TAG_CHARS - 20].rsplit(",", 1)[0] + ",… (truncated)"


@dg.sensor(
    job_name=DAILY_JOB,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Restates stored EODs made stale by late, amended or cancelled trades.",
)
def restatement_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """Request one backfill of the daily job (EOD, valuation, ranking) over the stale days."""
    repo = warehouse.repository()
    request = restatement_request(repo.eod_headers(), repo.late_changes())
    if request is None:
        return dg.SkipReason("no stale end-of-day snapshots")
    context.log.info(
        "restating %s (%s stale EODs; trades %s)",
        request.tags["desk/restatement_days"],
        request.tags["desk/stale_eods"],
        request.tags["desk/restatement_trades"],
    )
    return dg.SensorResult(run_requests=[request])
