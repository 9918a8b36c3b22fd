"""The end-of-day chain for a set of days: positions (keep-last), valuation, collateral ranking.

Each daily asset runs its step for its partitions. Every asset that ingests trades also ends
with :func:`restate_stale_days`, so that days made stale by late trades are restated (EOD,
valuation and ranking, every book) in the same run, with or without the restatement sensor.
"""

import dataclasses
from collections.abc import Callable, Sequence

import pandas as pd

from desk_pipeline.adapters.trade_sources import TradeSource
from desk_pipeline.adapters.warehouse import (
    EodWrite,
    IngestResult,
    PositionRepository,
    ReferenceData,
)
from desk_pipeline.defs.ingestion import ingest_window
from desk_pipeline.domain.calendar import day_bounds, last_window_end
from desk_pipeline.domain.collateral.ranking import (
    issuer_concentration,
    lendable_by_currency,
    rank_collateral_days,
)
from desk_pipeline.domain.collateral.schedule import HaircutSchedule
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
    closed = last_window_end(now, timezone)
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


def reference_for(repo: PositionRepository, days: Sequence[str]) -> ReferenceData:
    """Instruments, books, and the marks and FX rates from PRICE_LOOKBACK before ``days``."""
    dates = pd.DatetimeIndex(list(days))
    return repo.reference_as_of(dates.min() - PRICE_LOOKBACK, dates.max())


def store_valuations(repo: PositionRepository, days: Sequence[str]) -> pd.DataFrame:
    """Value every stored EOD position of ``days`` at the day's marks; replaces those days.

    Returns:
        VALUATION_DTYPES rows (see ``domain.positions.valuation.value_positions``).
    """
    marks = reference_for(repo, days)
    valuation = value_positions(
        repo.eod_positions(days), marks.instruments, marks.prices, marks.books, marks.fx_rates
    )
    repo.replace_valuations(days, valuation)
    return valuation


def store_rankings(
    repo: PositionRepository,
    days: Sequence[str],
    schedule: HaircutSchedule,
    reference: ReferenceData,
) -> pd.DataFrame:
    """Rank every book's stored EOD holdings of ``days`` by lendable value; replaces those days.

    ``reference`` is :func:`reference_for` ``days``.

    Returns:
        ``business_date``, ``snapshot_id``, ``as_of`` and RANKING_DTYPES rows.
    """
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


def restate_marked_days(
    repo: PositionRepository, schedule: HaircutSchedule, *, leave: Sequence[str] = ()
) -> list[str]:
    """Value and rank again every stored day a changed or late mark made stale.

    The marks are stored first (the prices asset), so the days are recomputed at the new
    marks; the changes read are then confirmed. A change stored meanwhile stays open for the
    next run. ``leave``: days the same run values and ranks after this (its own partitions).
    Returns the days restated here, ascending.
    """
    stale, ids = repo.days_stale_by_marks()
    days = [d for d in stale if d not in set(leave)]
    if days:
        store_valuations(repo, days)
        store_rankings(repo, days, schedule, reference_for(repo, days))
    if ids:
        repo.confirm_mark_changes(ids)
    return days


def stale_days(repo: PositionRepository) -> list[str]:
    """Stored days to restate: from the earliest stale one to the latest stored day."""
    return restatement_days(repo.eod_headers(), repo.late_changes())


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
        store_rankings(repo, restated, schedule, reference_for(repo, restated))
    return stored, restated


@dataclasses.dataclass(frozen=True)
class ClosedDays:
    """What :func:`close_days` did: the trades it ingested and the EODs it stored and restated."""

    ingestion: list[IngestResult]
    stored: StoredEods
    restated: list[str]


def close_days(
    repo: PositionRepository,
    source: TradeSource,
    days: Sequence[str],
    timezone: str,
    now: pd.Timestamp,
    schedule: HaircutSchedule,
    progress: Callable[[str], None] = lambda _: None,
) -> ClosedDays:
    """Ingest the source up to the last day's as_of, then store the EODs of ``days``.

    Historical days need no 10-minute partitions: the source is read for the whole range, and
    every stored day the ingested trades made stale is restated in the same pass.
    """
    start = day_bounds(days[0], timezone)[0]
    as_of_end = eod_as_of(days[-1:], timezone, now)["as_of"].iloc[-1]
    ingestion = ingest_window(source, repo, start, as_of_end)
    stored, restated = restate_stale_days(
        repo, timezone, now, schedule, also=days, progress=progress
    )
    assert stored is not None  # the run's own days are always computed
    return ClosedDays(ingestion, stored, restated)


@dataclasses.dataclass(frozen=True)
class RankedDays:
    """A range's stored rankings and what the operator reads of them.

    Attributes:
        ranking: ``business_date``, ``snapshot_id``, ``as_of`` and RANKING_DTYPES rows.
        eligible: ``lendable_by_currency`` rows (eligible items, value in the book's currency).
        shares: ``issuer_concentration`` rows (share of eligible value per issuer, over_limit).
    """

    ranking: pd.DataFrame
    eligible: pd.DataFrame
    shares: pd.DataFrame


def rank_days(
    repo: PositionRepository, days: Sequence[str], schedule: HaircutSchedule, issuer_limit: float
) -> RankedDays:
    """Rank and store ``days`` (:func:`store_rankings`), with their lendable totals and shares.

    ``issuer_limit`` is the largest share of a book's eligible lendable value one issuer may
    hold (DESK_ISSUER_CONCENTRATION_LIMIT).
    """
    reference = reference_for(repo, days)
    ranking = store_rankings(repo, days, schedule, reference)
    return RankedDays(
        ranking,
        lendable_by_currency(ranking, reference.instruments, reference.books),
        issuer_concentration(ranking, reference.instruments, issuer_limit),
    )
