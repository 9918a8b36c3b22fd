"""Event publishers and the outbox relay that feeds them (at-least-once delivery)."""

import dataclasses
import logging
from collections.abc import Sequence
from typing import Protocol

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.errors import DeskPipelineError

log = logging.getLogger(__name__)


class PublishError(DeskPipelineError):
    """The broker did not confirm a message; the outbox keeps it for the next attempt."""


@dataclasses.dataclass(frozen=True)
class OutgoingEvent:
    """One outbox row on its way to the broker."""

    event_id: str
    event_type: str
    book_id: str
    payload: str


class EventPublisher(Protocol):
    """Port: publishes events and returns only once the broker has confirmed every one."""

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Publish ``events`` in order; raise PublishError if any is not confirmed."""
        ...


class LogPublisher:
    """Publishes events as structured log lines (the default, for a desk without a broker)."""

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Log each event's JSON document."""
        for event in events:
            log.info("event %s %s %s", event.event_type, event.event_id, event.payload)


@dataclasses.dataclass(frozen=True)
class RelayResult:
    """What one relay pass did."""

    published: int
    failed: int
    backlog: int


def relay_once(
    repository: PositionRepository, publisher: EventPublisher, batch: int = 500
) -> RelayResult:
    """Publish pending outbox rows in write order, marking each batch only after confirmation.

    A crash between publish and mark re-publishes the batch next time: consumers drop duplicates
    by event_id. A broker failure leaves the rows pending and counts the attempt.
    """
    published = 0
    while True:
        pending = repository.pending_events(limit=batch)
        if pending.empty:
            break
        events = [
            OutgoingEvent(r.event_id, r.event_type, r.book_id, r.payload)
            for r in pending.itertuples()
        ]
        try:
            publisher.publish(events)
        except PublishError as err:
            repository.record_attempt(pending["id"])
            log.warning("relay: %s events wait in the outbox: %s", len(pending), err)
            return RelayResult(published, len(pending), repository.outbox_backlog())
        repository.mark_published(pending["id"])
        published += len(pending)
    return RelayResult(published, 0, repository.outbox_backlog())


def publisher_from(spec: str) -> EventPublisher:
    """Build the publisher named by DESK_EVENT_PUBLISHER: ``log`` or ``rabbitmq:<amqp url>``."""
    kind, _, _argument = spec.partition(":")
    if kind == "log":
        return LogPublisher()
    raise PublishError(
        f"DESK_EVENT_PUBLISHER={spec!r} is not understood; use 'log' or 'rabbitmq:<amqp url>'"
    )
