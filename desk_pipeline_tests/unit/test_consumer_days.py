"""`desk consume` checks an event's day as a `desk` command checks its date.

A day that is no date, or after today, can have no EOD: the message is dead-lettered at its first
attempt with the calendar's reason, never applied as "superseded". A stored day whose ranking the
calendar cannot run (before DESK_START_DATE) is dead-lettered the same way. Other failures are
retried first.
"""

import datetime as dt
import functools
import logging
import uuid

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from desk_pipeline.adapters.consumer import Delivery, EodRankingHandler, InboxConsumer
from desk_pipeline.domain.calendar import calendar_days, up_to_today
from desk_pipeline.domain.positions.snapshots import PositionSnapshotCreated

TODAY = "2026-06-30"
START = "2026-03-01"
STORED = "2026-02-27"  # stored by a desk whose calendar started earlier, not ranked
SNAPSHOT = str(uuid.uuid4())


class Warehouse:
    """The reads and inbox writes a consumer makes: one EOD stored, on STORED, not ranked."""

    def __init__(self) -> None:
        self.inbox: set[str] = set()

    def inbox_contains(self, _consumer: str, event_id: str) -> bool:
        return event_id in self.inbox

    def record_inbox(self, _consumer: str, event_id: str) -> bool:
        self.inbox.add(event_id)
        return True

    def eod(self, book: str, day: str) -> list[dict] | None:
        stored = (book, day) == ("REPO-1", STORED)
        return [{"snapshot_id": SNAPSHOT}] if stored else None

    def ranking(self, _book: str, _day: str) -> pd.DataFrame:
        return pd.DataFrame({"snapshot_id": []})


def event(day: str) -> bytes:
    return (
        PositionSnapshotCreated(
            book_id="REPO-1",
            business_date=day,
            as_of=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
            snapshot_id=SNAPSHOT,
            position_count=1,
            restatement=False,
            occurred_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        )
        .to_json()
        .encode()
    )


def consumed(day: str) -> tuple[str, InboxConsumer, list]:
    """What the desk's consumer (calendar START..TODAY) decides for an event of ``day``."""
    requested: list[tuple[str, str]] = []

    def rank(book: str, business_date: str) -> None:
        calendar_days(business_date, business_date, start_date=START, today=TODAY, timezone="UTC")
        requested.append((book, business_date))

    warehouse = Warehouse()
    handler = EodRankingHandler(
        warehouse,
        rank,
        stored_day=functools.partial(up_to_today, today=TODAY, timezone="UTC"),
    )
    consumer = InboxConsumer(warehouse, "ranking", handler, max_attempts=5)
    return consumer.process(Delivery(event(day), str(uuid.uuid4()), attempt=1)), consumer, requested


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        (
            "2026-02-30",
            "InvalidEventError: event is not a valid PositionSnapshotCreated at business_date: "
            "'2026-02-30' is not a 'date'",
        ),
        (
            "2026-07-01",
            "InvalidRangeError: day 2026-07-01 is after today: the desk's last business day is "
            "today, 2026-06-30 in DESK_TIMEZONE=UTC; pick days up to 2026-06-30",
        ),
        (
            STORED,
            f"InvalidRangeError: day {STORED} is before DESK_START_DATE={START}, the desk's first "
            f"business day: set DESK_START_DATE to {STORED} or earlier",
        ),
    ],
)
def test_an_event_of_a_day_the_calendar_refuses_is_dead_lettered_at_once_with_why(day, reason):
    decision, consumer, requested = consumed(day)

    assert (decision, consumer.last_failure, requested) == ("dead_letter", reason, [])
    assert (consumer.stats.dead_lettered, consumer.stats.retried, consumer.stats.applied) == (
        1,
        0,
        0,
    )


def test_an_event_of_a_calendar_day_is_applied():
    assert consumed(TODAY)[0] == "ack"


def real_date(day: str) -> bool:
    try:
        dt.date(*map(int, day.split("-")))
    except ValueError:
        return False
    return True


@given(day=st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z") | st.dates().map(str))
def test_an_event_of_any_day_is_applied_or_dead_lettered_with_why_never_dropped(day):
    decision, consumer, requested = consumed(day)

    if not real_date(day):
        assert decision == "dead_letter" and consumer.last_failure.endswith("is not a 'date'")
    elif day > TODAY:
        assert decision == "dead_letter"
        assert consumer.last_failure.startswith(f"InvalidRangeError: day {day} is after today")
    elif day == STORED:  # stored, not ranked: a run, which the calendar cannot start
        assert decision == "dead_letter" and "before DESK_START_DATE" in consumer.last_failure
    else:  # nothing stored for it: another snapshot's event will rank the day
        assert (decision, consumer.stats.outcomes) == ("ack", {"superseded": 1})
    assert requested == []
    assert (
        consumer.stats.received == 1 == sum((consumer.stats.applied, consumer.stats.dead_lettered))
    )


def test_the_log_says_what_became_of_an_event_and_names_a_message_without_an_id(caplog):
    # It logged "eod recorded" before knowing (an event superseded records nothing), and
    # "message None" for a message published without an id.
    warehouse = Warehouse()
    handler = EodRankingHandler(warehouse, lambda book, day: None)
    consumer = InboxConsumer(warehouse, "ranking", handler, max_attempts=5)
    with caplog.at_level(logging.INFO):
        consumer.process(Delivery(event("2026-03-05"), str(uuid.uuid4()), attempt=1))
        consumer.process(Delivery(b"not json", None, attempt=1))
    messages = [r.getMessage() for r in caplog.records]
    assert f"event of book REPO-1 day 2026-03-05 snapshot {SNAPSHOT}: superseded" in messages
    assert not any("eod recorded" in m for m in messages)
    assert any("message (no message id) rejected" in m for m in messages), messages
