"""The application layer's commands, shared by `desk` and the HTTP API: runs through Dagster.

``requests``: runs requested from outside the schedule (the API's snapshot and ranking, `desk
consume`'s ranking); ``backfill``: `desk backfill` and `desk tick`, run in the command's process.
"""

from desk_pipeline.commands.requests import (
    BOOK_TAG,
    REQUEST_TAG,
    TRIGGER_TAG,
    Accepted,
    RunDocument,
    RunQueue,
    RunSpec,
    definitions_for,
    rank_snapshot,
    ranking_run,
    snapshot_runs,
)

__all__ = [
    "BOOK_TAG",
    "REQUEST_TAG",
    "TRIGGER_TAG",
    "Accepted",
    "RunDocument",
    "RunQueue",
    "RunSpec",
    "definitions_for",
    "rank_snapshot",
    "ranking_run",
    "snapshot_runs",
]
