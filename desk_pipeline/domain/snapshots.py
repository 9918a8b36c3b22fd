"""End-of-day snapshots: the keep-last rule and the PositionSnapshotCreated event."""

import dataclasses
import datetime as dt
import json
import uuid

import pandas as pd

EVENT_SCHEMA_VERSION = 1


def supersedes(
    new_as_of: pd.Timestamp,
    new_computed_at: pd.Timestamp,
    old_as_of: pd.Timestamp,
    old_computed_at: pd.Timestamp,
) -> bool:
    """Whether a snapshot replaces the stored end-of-day of the same book and day.

    Keep the last: a later ``as_of`` wins; for the same ``as_of`` a later computation wins (a
    restatement). An older snapshot never overwrites a newer one, whatever order runs finish in.
    The warehouse applies the same comparison atomically in SQL; this is its reference.
    """
    return new_as_of > old_as_of or (new_as_of == old_as_of and new_computed_at > old_computed_at)


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
