"""Ingestion shared by the assets that pull trades from the source into the warehouse."""

import pandas as pd

from desk_pipeline.adapters.trade_sources import (
    FileTradeSource,
    IncrementalTradeSource,
    TradeSource,
)
from desk_pipeline.adapters.warehouse import IngestResult, PositionRepository

# Per-file counts shown on a materialisation; a folder of thousands of files shows the first.
MAX_BATCHES_SHOWN = 100


def ingest_window(
    source: TradeSource, repository: PositionRepository, start: pd.Timestamp, end: pd.Timestamp
) -> list[IngestResult]:
    """Ingest every batch the source offers for [start, end); each is atomic and idempotent.

    An incremental source (sql:<url>) is read from the warehouse's watermark instead of by
    window; each batch advances the watermark in the transaction that stores it. A file source
    (landing:<folder>) offers only the files whose content is not ingested yet: a run never
    parses a file again, however long the folder's history.
    """
    if isinstance(source, IncrementalTradeSource):
        batches = source.batches_after(repository.watermark(source.watermark_key))
    elif isinstance(source, FileTradeSource):
        batches = source.new_batches(repository)
    else:
        batches = source.batches(start, end)
    return [
        repository.ingest(b.source, b.received, b.trades, b.rejected, watermark=b.watermark)
        for b in batches
    ]


def batch_counts(results: list[IngestResult]) -> list[dict[str, object]]:
    """Per newly ingested batch (file): received = accepted + quarantined, for the operator."""
    return [
        {
            "source": r.source,
            "received": r.received,
            "accepted": r.accepted,
            "quarantined": r.quarantined,
        }
        for r in results
        if not r.already_ingested
    ][:MAX_BATCHES_SHOWN]


def ingestion_metadata(results: list[IngestResult]) -> dict[str, int]:
    """Counts an operator reads on the materialisation: received = accepted + quarantined."""
    return {
        "received": sum(r.received for r in results),
        "accepted": sum(r.accepted for r in results),
        "quarantined": sum(r.quarantined for r in results),
        "new_trade_versions": sum(r.new_versions for r in results),
        "batches_already_ingested": sum(r.already_ingested for r in results),
        "books_made_stale": len({b for r in results for b in r.stale_books}),
    }
