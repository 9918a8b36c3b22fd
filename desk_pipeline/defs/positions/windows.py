"""The 10-minute snapshots of a run's windows, rolled from the latest checkpoint and stored."""

import dataclasses

import pandas as pd

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.positions.engine import roll_positions


@dataclasses.dataclass(frozen=True)
class StoredWindows:
    """What :func:`store_windows` stored.

    Attributes:
        snapshots: ``as_of`` (UTC window end) and POSITION_COLUMNS, every book's open positions.
        rows: rows stored per window end, every window of the run (0 for an empty one).
        purged: windows deleted for being older than the retention.
    """

    snapshots: pd.DataFrame
    rows: dict[pd.Timestamp, int]
    purged: int


def store_windows(
    repo: PositionRepository, start: pd.Timestamp, ends: pd.DatetimeIndex, retention_days: int
) -> StoredWindows:
    """Roll every book from its checkpoint before ``start`` over ``ends`` and store each window.

    Every window is stored, even an empty one: it is the checkpoint the next tick rolls from.
    Windows more than ``retention_days`` before the last end are purged; no one rolls from them.
    ``start`` and ``ends`` are UTC; ``ends`` ascending.
    """
    opening = repo.opening(start)
    snapshots = roll_positions(opening.positions, repo.trades_since(opening.bounds, ends[-1]), ends)
    by_window = dict(tuple(snapshots.groupby("as_of")))
    empty = snapshots.iloc[0:0]
    rows = {
        end: repo.replace_intraday(end, by_window.get(end, empty), opening.read_at_us)
        for end in ends
    }
    purged = repo.purge_intraday(ends[-1] - pd.Timedelta(days=retention_days))
    return StoredWindows(snapshots, rows, purged)
