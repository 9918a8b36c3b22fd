"""What the position assets record per partition: each window's and each day's own figures."""

from collections.abc import Sequence
from typing import Any

import dagster as dg
import pandas as pd

from desk_pipeline.adapters.warehouse import IngestResult
from desk_pipeline.defs.end_of_day import StoredEods
from desk_pipeline.defs.ingestion import batch_counts, ingestion_metadata
from desk_pipeline.defs.positions.windows import StoredWindows


def trades_metadata(
    windows: Sequence[str], results: list[IngestResult], restated: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """A trades run's counts, on its last window; the other windows say where to look.

    A source delivers batches (files), not windows: repeating a range's totals on each of its
    windows would count them many times over.
    """
    counts = ingestion_metadata(results)
    figures: dict[str, dict[str, Any]] = {
        key: {"ingested_with_window": windows[-1]} for key in windows[:-1]
    }
    figures[windows[-1]] = {
        "dagster/row_count": counts["accepted"],
        **counts,
        "restated_days": ", ".join(restated),
        "batches": dg.MetadataValue.json(batch_counts(results)),
    }
    return figures


def windows_metadata(
    windows: Sequence[str], ends: pd.DatetimeIndex, stored: StoredWindows
) -> dict[str, dict[str, Any]]:
    """Each window's rows and books; the last one also the windows the run purged."""
    books = stored.snapshots.groupby("as_of")["book_id"].nunique()
    figures: dict[str, dict[str, Any]] = {
        key: {"dagster/row_count": stored.rows[end], "books": int(books.get(end, 0))}
        for key, end in zip(windows, ends, strict=True)
    }
    figures[windows[-1]]["windows_purged"] = stored.purged
    return figures


def eod_metadata(stored: StoredEods) -> dict[str, dict[str, Any]]:
    """Each stored day's own figures: rows, books, EODs written and restated, as_of (UTC)."""
    snapshots = stored.snapshots
    writes = pd.DataFrame(
        [(w.business_date, w.restatement) for w in stored.writes],
        columns=["business_date", "restatement"],
    )
    figures = {}
    for day, rows in snapshots.groupby("business_date", sort=True):
        written = writes[writes["business_date"] == day]
        figures[str(day)] = {
            "dagster/row_count": len(rows),
            "books": int(rows["book_id"].nunique()),
            "open_positions": int((rows["quantity"] != 0).sum()),
            "eods_stored": len(written),
            "restated": int(written["restatement"].sum()),
            "as_of": str(rows["as_of"].iloc[0]),
        }
    return figures
