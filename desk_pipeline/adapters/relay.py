"""The outbox relay: pending PositionSnapshotCreated events to a publisher, at least once."""

import dataclasses
import json
import logging
import time
from collections.abc import Callable

from desk_pipeline.adapters.publisher import EventPublisher, OutgoingEvent, PublishError
from desk_pipeline.adapters.warehouse import PositionRepository

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Exponential back-off between relay attempts while the broker is unreachable."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failed attempts (0 after none)."""
        if failures <= 0:
            return 0.0
        return min(self.maximum, self.initial * self.factor ** (failures - 1))


@dataclasses.dataclass(frozen=True)
class RelayResult:
    """What one relay pass did."""

    published: int
    failed: int
    backlog: int
    error: str = ""
    parked: int = 0


def relay_once(
    repository: PositionRepository,
    publisher: EventPublisher,
    batch: int = 500,
    *,
    deadline: float | None = None,
) -> RelayResult:
    """Publish pending outbox rows in write order, marking rows only after confirmation.

    Write order is business-date order per book, and a failed batch stops the pass, so a later
    event of a book never overtakes an earlier one. A crash between publish and mark
    re-publishes the unmarked rows next time: consumers drop duplicates by event_id. An event
    the transport can never carry (PublishError.poison) is parked with its reason: its book's
    later events wait behind it, and the other books' events flow.

    Args:
        repository: the warehouse holding the outbox.
        publisher: the broker's publisher.
        batch: events per publish call (one connection, confirms pipelined).
        deadline: ``time.monotonic()`` after which no new batch starts; the rest of the
            backlog waits, in order, for the next pass. ``None``: until the outbox is empty.
    """
    published = parked = 0
    while deadline is None or time.monotonic() < deadline:
        pending = repository.publishable_events(limit=batch)
        if pending.empty:
            break
        events = [
            OutgoingEvent(str(r.event_id), str(r.event_type), str(r.book_id), str(r.payload))
            for r in pending.itertuples()
        ]
        try:
            publisher.publish(events)
        except PublishError as err:
            done = pending["id"].iloc[: err.confirmed]
            repository.mark_published(done)
            published += len(done)
            if err.poison:
                poisoned = pending.iloc[err.confirmed]
                repository.park_event(int(poisoned["id"]), str(err))
                parked += 1
                log.error("relay: parked %s; book %s waits behind it", err, poisoned["book_id"])
                continue
            repository.record_attempt(pending["id"].iloc[err.confirmed :])
            waiting = len(pending) - len(done)
            log.warning("relay: %s events wait in the outbox: %s", waiting, err)
            return RelayResult(published, waiting, repository.outbox_backlog(), str(err), parked)
        repository.mark_published(pending["id"])
        published += len(pending)
    return RelayResult(published, 0, repository.outbox_backlog(), parked=parked)


def relay_forever(
    repository: PositionRepository,
    publisher: EventPublisher,
    *,
    backoff: Backoff,
    poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    keep_going: Callable[[], bool] = lambda: True,
) -> int:
    """Relay until ``keep_going`` says stop, backing off exponentially while publishing fails.

    Returns:
        How many events were published.
    """
    failures = 0
    total = 0
    while keep_going():
        result = relay_once(repository, publisher)
        total += result.published
        if result.failed:
            failures += 1
            wait = backoff.delay(failures)
            log.warning(
                "relay: attempt %s failed, backlog %s, retrying in %.1fs",
                failures,
                result.backlog,
                wait,
            )
        else:
            failures = 0
            wait = poll_seconds
            if result.published:
                log.info("relay: published %s, backlog %s", result.published, result.backlog)
        sleep(wait)
    return total


@dataclasses.dataclass(frozen=True)
class RelayCursor:
    """The relay sensor's state between ticks: backlog shown in the UI, and the back-off."""

    backlog: int = 0
    failures: int = 0
    retry_at: float = 0.0

    def to_json(self) -> str:
        """The cursor string Dagster stores (and shows on the sensor's page)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> "RelayCursor":
        """Parse a stored cursor; an absent or foreign one starts afresh."""
        try:
            body = json.loads(text or "{}")
            return cls(int(body["backlog"]), int(body["failures"]), float(body["retry_at"]))
        except (ValueError, KeyError, TypeError):
            return cls()

    def after(self, result: RelayResult, now: float, backoff: Backoff) -> "RelayCursor":
        """The state after a relay pass at ``now`` (epoch seconds)."""
        if not result.failed:
            return RelayCursor(result.backlog, 0, 0.0)
        failures = self.failures + 1
        return RelayCursor(result.backlog, failures, now + backoff.delay(failures))
