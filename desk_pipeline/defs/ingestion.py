"""Ingestion shared by the assets that pull trades from the source into the warehouse."""

import pandas as pd

from desk_pipeline.adapters.trade_sources import TradeSource
from desk_pipeline.adapters.warehouse import IngestResult, PositionRepository


def ingest_window(
    source: TradeSource, repository: PositionRepository, start: pd.Timestamp, end: pd.Timestamp
) -> list[IngestResult]:
    """Ingest every batch the source offers for [start, end); each is atomic and idempotent."""
    return [
        repository.ingest(batch.source, batch.received, batch.trades, batch.rejected)
        for batch in source.batches(start, end)
    ]


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
