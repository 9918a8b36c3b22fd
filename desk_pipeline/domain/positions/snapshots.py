"""End-of-day snapshots: the keep-last rule, their content digest, PositionSnapshotCreated."""

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Mapping

import numpy as np
import pandas as pd

from desk_pipeline.domain.errors import DeskPipelineError
from desk_pipeline.domain.precision import MAX_FLOAT_EXACT_QUANTITY, QUANTITY_SCALE, from_units
from desk_pipeline.domain.schema import require_columns

EVENT_SCHEMA_VERSION = 1

# The content digest of an EOD without rows (a book holding nothing): no row hashes summed.
EMPTY_DIGEST = f"{0:016x}"

# An EOD header as keep_last compares it; times are integer microseconds since the epoch, UTC.
EOD_HEADER_DTYPES: Mapping[str, str] = {
    "book_id": "object",
    "business_date": "object",  # YYYY-MM-DD, the business day in DESK_TIMEZONE
    "as_of_us": "int64",  # the snapshot's position time
    "computed_at_us": "int64",  # when the computation's inputs were read
    "content_digest": "object",  # see snapshot_digests; EMPTY_DIGEST for no rows
}
EOD_KEYS = ["book_id", "business_date"]
RECOMPUTED_DAY_COLUMNS = ("business_date", "as_of_us", "computed_at_us")


class DuplicateSnapshotError(DeskPipelineError):
    """Two candidate end-of-day snapshots of one book-day were handed to keep_last together."""


def keep_last(
    candidates: pd.DataFrame, stored: pd.DataFrame, recomputed_days: pd.DataFrame
) -> pd.DataFrame:
    """The end-of-day snapshots that replace (or confirm) the stored ones: keep the last.

    The rule is ARCHITECTURE.md's "Keep the last snapshot of each day"; per (book_id,
    business_date), a proposed snapshot against the stored one:

    - none stored: the proposed snapshot is stored;
    - a later ``as_of`` wins;
    - the same ``as_of`` and a later ``computed_at`` wins (a restatement) when the content
      differs; with identical content it neither rewrites nor re-announces, it only confirms
      the stored EOD as computed that late (``changed`` False), so that an older computation
      finishing afterwards still loses and the stored EOD is no longer stale;
    - anything else (an earlier ``as_of``, or an earlier or equal ``computed_at``) loses: an
      older snapshot never overwrites a newer one, whatever order runs finish in.

    The proposed snapshots are the candidates plus, for each stored book-day of a recomputed
    day that has no candidate, an empty EOD (``EMPTY_DIGEST``): the recomputation found the
    book holding nothing (every trade cancelled or moved to another book).

    Args:
        candidates: EOD_HEADER_DTYPES columns, at most one row per (book_id, business_date);
            other columns are carried through to the winners (missing for empty EODs).
        stored: EOD_HEADER_DTYPES columns, the stored headers of (at least) the candidates'
            book-days and of every book-day of ``recomputed_days``; other columns are ignored.
        recomputed_days: ``business_date`` (object), ``as_of_us`` and ``computed_at_us``
            (int64, UTC microseconds): the days a computation covered for every book, with the
            ``as_of`` and read time of that computation. Empty when the candidates are all the
            computation knows of (then no EOD is emptied).

    Returns:
        The winners, sorted by (book_id, business_date): the candidates' columns plus
        ``empty`` (bool: an empty EOD made for a book no longer holding anything), ``changed``
        (bool: the rows and header are replaced and the snapshot is announced; False: the
        stored EOD is identical and only its ``computed_at`` moves forward) and
        ``restatement`` (bool: a snapshot of the stored ``as_of`` replaces it). Inputs are not
        modified.

    Raises:
        DuplicateSnapshotError: two candidates share a (book_id, business_date).
    """
    _require_one_candidate_per_day(candidates, stored, recomputed_days)
    proposed = _proposed(candidates, _empty_eods(candidates, stored, recomputed_days))
    changed, wins, restatement = _verdicts(proposed, stored)
    winners = proposed[wins].assign(
        empty=proposed["empty"].astype(bool)[wins],
        changed=changed[wins],
        restatement=restatement[wins],
    )
    return winners.sort_values(EOD_KEYS, kind="stable").reset_index(drop=True)


def _require_one_candidate_per_day(
    candidates: pd.DataFrame, stored: pd.DataFrame, recomputed_days: pd.DataFrame
) -> None:
    """Check keep_last's inputs: their columns, and one candidate per (book_id, business_date).

    Raises:
        MissingColumnsError: an input lacks one of its columns.
        DuplicateSnapshotError: two candidates share a (book_id, business_date).
    """
    require_columns(candidates, EOD_HEADER_DTYPES, where="keep_last candidates")
    require_columns(stored, EOD_HEADER_DTYPES, where="keep_last stored")
    require_columns(recomputed_days, RECOMPUTED_DAY_COLUMNS, where="keep_last recomputed_days")
    duplicated = candidates.duplicated(EOD_KEYS)
    if duplicated.any():
        first = candidates.loc[duplicated, EOD_KEYS].iloc[0].tolist()
        raise DuplicateSnapshotError(
            f"keep_last: {int(duplicated.sum())} candidate EODs repeat a book-day (first "
            f"{first}); hand one snapshot per book and business_date"
        )


def _empty_eods(
    candidates: pd.DataFrame, stored: pd.DataFrame, recomputed_days: pd.DataFrame
) -> pd.DataFrame:
    """The empty EODs of a recomputation: stored book-days of its days that it has no candidate for.

    ARCHITECTURE.md's keep-last rule: the recomputation found such a book holding nothing (every
    trade cancelled or moved to another book), so it proposes an EOD without rows.

    Returns:
        ``book_id``, ``business_date`` (object), ``as_of_us``, ``computed_at_us`` (int64, UTC
        microseconds: the recomputed day's) and ``content_digest`` (EMPTY_DIGEST); one row per
        such book-day, none when ``recomputed_days`` is empty.
    """
    days = recomputed_days[list(RECOMPUTED_DAY_COLUMNS)].drop_duplicates("business_date")
    held = stored.loc[stored["business_date"].isin(days["business_date"]), EOD_KEYS]
    gone = held.merge(candidates[EOD_KEYS], on=EOD_KEYS, how="left", indicator=True)
    return (
        gone.loc[gone["_merge"] == "left_only", EOD_KEYS]
        .merge(days, on="business_date")
        .assign(content_digest=EMPTY_DIGEST)
    )


def _proposed(candidates: pd.DataFrame, empties: pd.DataFrame) -> pd.DataFrame:
    """The candidates, then the empty EODs, with ``empty`` (bool) saying which is which.

    Returns:
        A fresh 0..n-1 index; the candidates' columns (NaN on the empty EODs' rows where the
        empty EODs lack them) plus ``empty``.
    """
    proposed = candidates.assign(empty=False).reset_index(drop=True)
    if not empties.empty:
        proposed = pd.concat([proposed, empties.assign(empty=True)], ignore_index=True)
    return proposed


def _verdicts(
    proposed: pd.DataFrame, stored: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each proposed snapshot against the stored header of its book-day (keep_last's rule).

    Args:
        proposed: EOD_HEADER_DTYPES columns, at most one row per (book_id, business_date).
        stored: EOD_HEADER_DTYPES columns, at most one row per (book_id, business_date).

    Returns:
        ``(changed, wins, restatement)``: bool arrays aligned with ``proposed``'s rows. Changed:
        none stored, a later ``as_of``, or the same ``as_of`` read later with other content.
        Wins: changed, or the same ``as_of`` read later (identical content: a confirmation).
        Restatement: changed with the stored ``as_of``.
    """
    header = list(EOD_HEADER_DTYPES)
    before = stored[header].rename(columns={c: f"stored_{c}" for c in header[2:]})
    both = proposed[header].merge(before, on=EOD_KEYS, how="left", indicator=True)
    absent = (both["_merge"] == "left_only").to_numpy()
    # Absent headers compare as -1: every stored time is after the epoch.
    as_of = both["as_of_us"].to_numpy(dtype="int64")
    stored_as_of = both["stored_as_of_us"].fillna(-1).to_numpy(dtype="int64")
    later_read = both["computed_at_us"].to_numpy(dtype="int64") > both[
        "stored_computed_at_us"
    ].fillna(-1).to_numpy(dtype="int64")
    differs = (both["content_digest"] != both["stored_content_digest"]).to_numpy()
    same_as_of = ~absent & (as_of == stored_as_of)
    changed = absent | (as_of > stored_as_of) | (same_as_of & later_read & differs)
    return changed, changed | (same_as_of & later_read), same_as_of & changed


def snapshot_digests(rows: pd.DataFrame) -> pd.DataFrame:
    """Order-independent digest of each (book_id, business_date)'s EOD rows.

    Args:
        rows: ``book_id``, ``business_date`` and POSITION_STATE_COLUMNS (``quantity`` is not
            read: the digest is of what is stored, the micro-units).

    Returns:
        ``book_id``, ``business_date``, ``content_digest`` (16 hex digits: the sum of the row
        hashes modulo 2**64, so the digest of no rows is EMPTY_DIGEST), sorted by book-day.
    """
    require_columns(rows, [*EOD_KEYS, *_DIGESTED], where="snapshot_digests")
    ordered = rows.sort_values(EOD_KEYS, kind="stable")
    micro_units = ordered["quantity_micro_units"].to_numpy(dtype=np.int64)
    # A row hashes its quantity as the float EODs were digested by before micro-units were
    # stored, so that an EOD stored then and recomputed alike is not restated; where that float
    # cannot tell micro-units apart, the row's micro-units are hashed in too.
    digested = ordered[["instrument_id", "avg_price", "realized_pnl"]].assign(
        quantity=from_units(micro_units)
    )
    columns = ["instrument_id", "quantity", "avg_price", "realized_pnl"]
    hashes = pd.util.hash_pandas_object(digested[columns], index=False).to_numpy(copy=True)
    beyond = np.abs(micro_units) >= MAX_FLOAT_EXACT_QUANTITY * QUANTITY_SCALE
    hashes[beyond] += pd.util.hash_array(micro_units[beyond])
    starts = np.flatnonzero(~ordered.duplicated(EOD_KEYS).to_numpy())
    sums = np.add.reduceat(hashes, starts) if len(starts) else np.array([], dtype=np.uint64)
    keys = ordered[EOD_KEYS].iloc[starts].reset_index(drop=True)
    return keys.assign(content_digest=[f"{int(s):016x}" for s in sums])


_DIGESTED = ("instrument_id", "quantity_micro_units", "avg_price", "realized_pnl")


def snapshot_id_for(
    book_id: str, business_date: str, as_of: pd.Timestamp, computed_at: pd.Timestamp
) -> str:
    """A snapshot's identity: stable for the same inputs, so a replayed write is recognisable."""
    key = f"{book_id}|{business_date}|{as_of.value}|{computed_at.value}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"desk_pipeline/eod/{key}"))


@dataclasses.dataclass(frozen=True)
class PositionSnapshotCreated:
    """A new or restated end-of-day snapshot of one book exists (what other systems consume)."""

    book_id: str
    business_date: str
    as_of: dt.datetime
    snapshot_id: str
    position_count: int
    restatement: bool
    occurred_at: dt.datetime
    event_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    event_type: str = "PositionSnapshotCreated"
    schema_version: int = EVENT_SCHEMA_VERSION

    def to_json(self) -> str:
        """The event as the JSON document published to the broker (ISO 8601 times, UTC)."""
        body = dataclasses.asdict(self)
        body["as_of"] = self.as_of.isoformat()
        body["occurred_at"] = self.occurred_at.isoformat()
        return json.dumps(body, sort_keys=True, allow_nan=False)
