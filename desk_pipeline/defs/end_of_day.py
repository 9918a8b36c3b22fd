"""The end-of-day chain for a set of days: positions (keep-last), valuation, collateral ranking.

Each daily asset runs its step for its partitions. Every asset that ingests trades also ends
with :func:`restate_stale_days`, so that days made stale by late trades are restated (EOD,
valuation and ranking, every book) in the same run, with or without the restatement sensor.
"""

import dataclasses
from collections.abc import Callable, Sequence

import pandas as pd

from desk_pipeline.adapters.warehouse import EodWrite, PositionRepository
from desk_pipeline.domain.calendar import day_bounds
from desk_pipeline.domain.collateral.haircuts import HaircutSchedule
from desk_pipeline.domain.collateral.ranking import rank_collateral_days
from desk_pipeline.domain.marks import PRICE_LOOKBACK
from desk_pipeline.domain.positions.engine import roll_positions
from desk_pipeline.domain.positions.restatement import restatement_days
from desk_pipeline.domain.positions.valuation import value_positions

# Days per keep-last transaction of an EOD backfill, so a long one reports progress.
PROGRESS_DAYS = 31


@dataclasses.dataclass(frozen=True)
class StoredEods:
    """What :func:`store_eods` computed and stored.

    Attributes:
        snapshots: ``business_date``, ``as_of`` (UTC) and POSITION_COLUMNS, every book-day.
        writes: the EODs that replaced (or created) a stored one, with their events.
    """

    snapshots: pd.DataFrame
    writes: list[EodWrite]


def eod_as_of(days: Sequence[str], timezone: str, now: pd.Timestamp) -> pd.DataFrame:
    """``business_date`` and ``as_of`` of each day: its end, or the last closed window today."""
    closed = now.floor("10min")
    return pd.DataFrame(
        {
            "business_date": list(days),
            "as_of": [min(day_bounds(d, timezone)[1], closed) for d in days],
        }
    )


def store_eods(
    repo: PositionRepository,
    days: Sequence[str],
    timezone: str,
    now: pd.Timestamp,
    progress: Callable[[str], None] = lambda _: None,
) -> StoredEods:
    """Roll every book from its latest valid checkpoint over ``days`` and keep the last snapshot.

    One vectorised pass over the stored trades, however many days; a book left holding
    nothing on a day has its stored EOD emptied. ``days`` are YYYY-MM-DD, ascending.
    """
    as_of = eod_as_of(days, timezone, now)
    ends = pd.DatetimeIndex(as_of["as_of"].unique())
    opening = repo.opening(day_bounds(days[0], timezone)[0])
    rolled = roll_positions(opening.positions, repo.trades_since(opening.bounds, ends[-1]), ends)
    # The first minutes of a day share their as_of with the day before: one snapshot, two days.
    snapshots = rolled.merge(as_of, on="as_of")
    writes: list[EodWrite] = []
    for first in range(0, len(as_of), PROGRESS_DAYS):
        chunk = as_of["business_date"].iloc[first : first + PROGRESS_DAYS]
        writes += repo.keep_last_eod(
            snapshots[snapshots["business_date"].isin(chunk)],
            opening.read_at_us,
            recomputed=as_of[as_of["business_date"].isin(chunk)],
        )
        progress(
            f"eod_positions: days {chunk.iloc[0]}..{chunk.iloc[-1]} stored "
            f"({first + len(chunk)} of {len(as_of)} days), {len(writes)} EODs written so far"
        )
    return StoredEods(snapshots, writes)


def store_valuations(repo: PositionRepository, days: Sequence[str]) -> pd.DataFrame:
    """Value every stored EOD position of ``days`` at the day's marks; replaces those days.

    Returns:
        VALUATION_DTYPES rows (see ``domain.positions.valuation.value_positions``).
    """
    dates = pd.DatetimeIndex(list(days))
    marks = repo.reference_as_of(dates.min() - PRICE_LOOKBACK, dates.max())
    valuation = value_positions(
        repo.eod_positions(days), marks.instruments, marks.prices, marks.books, marks.fx_rates
    )
    repo.replace_valuations(days, valuation)
    return valuation


def store_rankings(
    repo: PositionRepository, days: Sequence[str], schedule: HaircutSchedule
) -> pd.DataFrame:
    """Rank every book's stored EOD holdings of ``days`` by lendable value; replaces those days.

    Returns:
        ``business_date``, ``snapshot_id``, ``as_of`` and RANKING_DTYPES rows.
    """
    dates = pd.DatetimeIndex(list(days))
    reference = repo.reference_as_of(dates.min() - PRICE_LOOKBACK, dates.max())
    ranking = rank_collateral_days(
        repo.eod_positions(days),
        reference.instruments,
        reference.prices,
        reference.books,
        reference.fx_rates,
        schedule,
    )
    repo.replace_rankings(days, ranking)
    return ranking


def stale_days(repo: PositionRepository) -> list[str]:
    """Stored days to restate: from the earliest stale one to the latest stored day."""
    return restatement_days(repo.eod_headers(), repo.stale_marks())


def restate_stale_days(
    repo: PositionRepository,
    timezone: str,
    now: pd.Timestamp,
    schedule: HaircutSchedule,
    *,
    also: Sequence[str] = (),
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[StoredEods | None, list[str]]:
    """Store the EODs of ``also`` and restate every stale stored day, all in one pass.

    The stale days outside ``also`` are valued and ranked here; ``also`` (the run's own
    partitions) is left to the valuation and ranking assets of the same run.

    Returns:
        ``(stored, restated)``: what :func:`store_eods` stored (None when there was nothing to
        compute) and the stale days outside ``also`` that were restated.
    """
    restated = [d for d in stale_days(repo) if d not in set(also)]
    days = sorted({*also, *restated})
    if not days:
        return None, []
    stored = store_eods(repo, days, timezone, now, progress)
    if restated:
        store_valuations(repo, restated)
        store_rankings(repo, restated, schedule)
    return stored, restated
