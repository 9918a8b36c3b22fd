"""Restatement: finds stored EODs made stale by late trades and backfills them in one run."""

import hashlib

import dagster as dg
import pandas as pd

from desk_pipeline.defs.automation import daily_job
from desk_pipeline.defs.resources import WarehouseResource

# Dagster tag values are shown in the UI and stored per run: keep the trade list readable.
MAX_TAG_CHARS = 500


def restatement_request(headers: pd.DataFrame, marks: pd.DataFrame) -> dg.RunRequest | None:
    """One single-run backfill of daily_job over the stale range, or None when nothing is stale.

    Args:
        headers: stored EOD headers with ``book_id``, ``business_date``, ``snapshot_id``,
            ``as_of_us``, ``computed_at_us`` and ``stale`` (PositionRepository.eod_headers).
        marks: stale marks with ``book_id``, ``from_time_us``, ``marked_at_us``, ``trade_ids``.

    The range runs from the earliest stale day to the latest stored day, since a late trade
    changes every later position of its book. The run key names the stale snapshots, so the
    same staleness is requested once; a restated snapshot has a new id, so new late trades
    after it are requested again.
    """
    stale = headers[headers["stale"]]
    if stale.empty:
        return None
    start, end = str(stale["business_date"].min()), str(headers["business_date"].max())
    books = sorted(stale["book_id"].unique())
    # The marks that explain the staleness: written after the oldest stale snapshot was computed.
    why = marks[
        marks["book_id"].isin(books)
        & (marks["marked_at_us"] > int(stale["computed_at_us"].min()))
        & (marks["from_time_us"] < int(stale["as_of_us"].max()))
    ]
    trade_ids = sorted({i for ids in why["trade_ids"] for i in str(ids).split(",") if i})
    digest = hashlib.sha256(
        ",".join(sorted(stale["snapshot_id"])).encode() + f"|{start}|{end}".encode()
    ).hexdigest()[:16]
    return dg.RunRequest(
        run_key=f"restate:{start}..{end}:{digest}",
        job_name=daily_job.name,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
            "desk/trigger": "restatement_sensor",
            "desk/restatement_days": f"{start}..{end}",
            "desk/stale_eods": str(len(stale)),
            "desk/stale_books": _truncated(",".join(books)),
            "desk/restatement_trades": _truncated(",".join(trade_ids)),
        },
    )


def _truncated(text: str) -> str:
    if len(text) <= MAX_TAG_CHARS:
        return text
    return text[: MAX_TAG_CHARS - 20].rsplit(",", 1)[0] + ",… (truncated)"


@dg.sensor(
    job=daily_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Restates stored EODs made stale by late, amended or cancelled trades.",
)
def restatement_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """Request one backfill of the daily job (EOD, valuation, ranking) over the stale days."""
    repo = warehouse.repository()
    request = restatement_request(repo.eod_headers(), repo.stale_marks())
    if request is None:
        return dg.SkipReason("no stale end-of-day snapshots")
    context.log.info(
        "restating %s (%s stale EODs; trades %s)",
        request.tags["desk/restatement_days"],
        request.tags["desk/stale_eods"],
        request.tags["desk/restatement_trades"],
    )
    return dg.SensorResult(run_requests=[request])
