"""Event consumers: RabbitMQ queues with manual acks, an inbox for idempotency, a dead-letter queue.

A consumer applies each event at most once in effect: the inbox table remembers, per consumer,
every event_id it applied, so a redelivered or re-published event is acknowledged and skipped.
A message that fails ``max_attempts`` times, or at once one that is wrong in itself (not a valid
event, a day outside the desk's calendar), goes to ``<queue>.dlq`` with its reason and the
consumer moves on. The Kafka consumer (``kafka.py``) applies its messages through the same
InboxConsumer.
"""

import collections
import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any, Protocol

import jsonschema
import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from desk_pipeline.adapters.publisher import (
    EXCHANGE,
    ROUTING_PREFIX,
    amqp_error,
    broker_address,
    broker_refusal,
    declare_exchange,
)
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.errors import DeskPipelineError, InvalidRangeError

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "desk.events.dlx"
SCHEMA_RESOURCE = "position_snapshot_created.schema.json"


class InvalidEventError(DeskPipelineError):
    """A message is not a PositionSnapshotCreated event of a schema version we understand."""


class ConsumerError(DeskPipelineError):
    """The consumer could not reach or set up its queue."""


class BrokerUnreachableError(ConsumerError):
    """The broker did not answer, or the connection to it was lost: the messages wait there."""


# What a message can be wrong in itself: no retry makes it applicable, so it is dead-lettered at
# its first attempt, with the reason; a run that fails may succeed on a later attempt.
REJECTED = (InvalidEventError, InvalidRangeError)


@functools.cache
def event_schema() -> dict[str, Any]:
    """The JSON Schema of PositionSnapshotCreated shipped in the package."""
    text = resources.files("desk_pipeline").joinpath("events", SCHEMA_RESOURCE).read_text("utf-8")
    return dict(json.loads(text))


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    # Formats asserted, not only annotated: a business_date such as 2026-02-30 is no date.
    return jsonschema.Draft202012Validator(
        event_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def parse_event(body: bytes | str) -> dict[str, Any]:
    """Decode and validate one PositionSnapshotCreated message.

    Raises:
        InvalidEventError: not JSON, or not valid against the event's JSON Schema.
    """
    try:
        event = json.loads(body)
    # RecursionError: nested deeper than the parser's stack ("[" * 100000), no event either.
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise InvalidEventError(f"event body is not JSON: {err}") from err
    problems = sorted(_validator().iter_errors(event), key=lambda e: list(e.absolute_path))
    if problems:
        where = "/".join(str(p) for p in problems[0].absolute_path) or "(root)"
        raise InvalidEventError(
            f"event is not a valid PositionSnapshotCreated at {where}: {problems[0].message}"
        )
    return dict(event)


class EventHandler(Protocol):
    """Port: applies one validated-or-not message body; returns a short outcome label."""

    def __call__(self, body: bytes) -> str:
        """Apply the event in ``body``; raise on failure (the message is retried)."""
        ...


@dataclasses.dataclass
class ConsumerStats:
    """What a consumer did: every delivery is counted once under one heading."""

    received: int = 0
    applied: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        body = dataclasses.asdict(self)
        body["outcomes"] = dict(sorted(self.outcomes.items()))
        return body


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One message as the consumer sees it."""

    body: bytes
    message_id: str | None
    attempt: int

    @property
    def name(self) -> str:
        """How the log names it: its message id, or that it has none (logged as "None")."""
        return self.message_id or "(no message id)"


class InboxConsumer:
    """Applies deliveries at most once per event_id and decides ack, retry or dead-letter."""

    def __init__(
        self,
        repository: PositionRepository,
        name: str,
        handler: EventHandler,
        *,
        max_attempts: int = 5,
    ) -> None:
        """Consume as ``name`` (the inbox key); a failing message gets ``max_attempts`` tries."""
        self.repository = repository
        self.name = name
        self.handler = handler
        self.max_attempts = max_attempts
        self.stats = ConsumerStats()
        # Why the last failed attempt failed: the reason a dead-lettered message carries.
        self.last_failure = ""

    def process(self, delivery: Delivery) -> str:
        """Handle one delivery and say what to do with it: ``ack``, ``retry`` or ``dead_letter``.

        The inbox row is written after the handler succeeds. A crash in between redelivers the
        message and runs the handler again, so handlers must be idempotent in effect (the
        ranking handler checks freshness first); the inbox spares them the work in the
        common case of a plain duplicate.
        """
        self.stats.received += 1
        if delivery.message_id and self.repository.inbox_contains(self.name, delivery.message_id):
            self.stats.duplicates += 1
            return "ack"
        try:
            outcome = self.handler(delivery.body)
        # The consumer's outer boundary: any handler failure is a failed attempt of this
        # message, never the end of the consumer.
        except Exception as err:
            self.last_failure = f"{type(err).__name__}: {err}"
            if isinstance(err, REJECTED):
                log.error(
                    "consumer %s: message %s rejected, dead-lettered: %s",
                    self.name,
                    delivery.name,
                    err,
                )
                self.stats.dead_lettered += 1
                return "dead_letter"
            if delivery.attempt >= self.max_attempts:
                log.error(
                    "consumer %s: message %s failed %s times, dead-lettered: %s",
                    self.name,
                    delivery.name,
                    delivery.attempt,
                    err,
                )
                self.stats.dead_lettered += 1
                return "dead_letter"
            log.warning(
                "consumer %s: message %s failed (attempt %s of %s): %s",
                self.name,
                delivery.name,
                delivery.attempt,
                self.max_attempts,
                err,
            )
            self.stats.retried += 1
            return "retry"
        if delivery.message_id is None or self.repository.record_inbox(
            self.name, delivery.message_id
        ):
            self.stats.applied += 1
            self.stats.outcomes[outcome] += 1
        else:
            # Another instance of this consumer applied it meanwhile.
            self.stats.duplicates += 1
        return "ack"


class EodRankingHandler:
    """The desk's consumer: records each new EOD and requests its ranking unless it is fresh.

    Fresh = the stored ranking of the book and day was computed from the event's snapshot.
    An event whose snapshot is no longer the stored EOD is superseded: the newer snapshot's own
    event requests the ranking, so a backlog of restatements costs one ranking, not many.
    """

    def __init__(
        self,
        repository: PositionRepository,
        request_ranking: Callable[[str, str], None],
        *,
        stored_day: Callable[[str], str] | None = None,
    ) -> None:
        """Read the warehouse through ``repository``; ``request_ranking(book_id, date)``.

        ``stored_day`` is the desk calendar's check of an event's day (DeskSettings.stored_day):
        it raises InvalidRangeError for a day no EOD can have yet, after today; None takes every
        date. ``request_ranking`` raises it for a day the calendar cannot run.
        """
        self.repository = repository
        self.request_ranking = request_ranking
        self.stored_day = stored_day

    def __call__(self, body: bytes) -> str:
        """Apply one event: ``empty``, ``superseded``, ``fresh`` or ``ranking_requested``.

        Raises:
            InvalidEventError: not a valid event (a business_date that is no date among them).
            InvalidRangeError: its day is after today, or needs a ranking before DESK_START_DATE.
        """
        event = parse_event(body)
        book, day, snapshot = event["book_id"], event["business_date"], event["snapshot_id"]
        if self.stored_day is not None:
            self.stored_day(day)
        outcome = self._apply(event, book, day, snapshot)
        # After the outcome: "eod recorded" was logged for events superseded, recording nothing.
        log.info("event of book %s day %s snapshot %s: %s", book, day, snapshot, outcome)
        return outcome

    def _apply(self, event: dict[str, Any], book: str, day: str, snapshot: str) -> str:
        stored = self.repository.eod(book, day)
        if stored is None or stored[0]["snapshot_id"] != snapshot:
            return "superseded"
        if event["position_count"] == 0:
            return "empty"
        ranking = self.repository.ranking(book, day)
        if len(ranking) and (ranking["snapshot_id"] == snapshot).all():
            return "fresh"
        self.request_ranking(book, day)
        return "ranking_requested"


def declare_queue(
    channel: BlockingChannel,
    queue: str,
    *,
    binding_key: str = f"{ROUTING_PREFIX}.#",
    max_attempts: int = 5,
) -> str:
    """Declare ``queue`` bound to the event exchange, with its dead-letter queue; idempotent.

    The queue is a quorum queue: it counts deliveries itself (``x-delivery-count``), so the
    attempt number survives consumer crashes, and its delivery limit dead-letters a message
    that crashes every consumer before it can be rejected.

    Returns:
        The dead-letter queue's name, ``<queue>.dlq``.
    """
    dead = f"{queue}.dlq"
    declare_exchange(channel)
    channel.exchange_declare(exchange=DEAD_LETTER_EXCHANGE, exchange_type="direct", durable=True)
    channel.queue_declare(queue=dead, durable=True)
    channel.queue_bind(queue=dead, exchange=DEAD_LETTER_EXCHANGE, routing_key=queue)
    channel.queue_declare(
        queue=queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": queue,
            "x-delivery-limit": max_attempts,
        },
    )
    channel.queue_bind(queue=queue, exchange=EXCHANGE, routing_key=binding_key)
    return dead


def consume(
    url: str,
    queue: str,
    consumer: InboxConsumer,
    *,
    prefetch: int = 20,
    idle_seconds: float | None = None,
) -> ConsumerStats:
    """Consume ``queue`` with manual acks until idle for ``idle_seconds`` (None: forever).

    Args:
        url: AMQP URL of the broker.
        queue: declared (with its dead-letter queue) if missing.
        consumer: decides ack, retry or dead-letter for each delivery.
        prefetch: unacknowledged messages the broker may push at once.
        idle_seconds: stop after this long without a message; None runs until interrupted.
    """
    parameters = pika.URLParameters(url)
    try:
        connection = pika.BlockingConnection(parameters)
    except (pika.exceptions.AMQPError, OSError) as err:
        broker = f"consumer {consumer.name}: broker {broker_address(parameters)}"
        refusal = broker_refusal(err)
        if refusal is not None:  # no wait makes it take this login
            raise ConsumerError(f"{broker}: {refusal.removeprefix('broker ')}") from err
        raise BrokerUnreachableError(f"{broker} unreachable: {amqp_error(err)}") from err
    try:
        channel = connection.channel()
        declare_queue(channel, queue, max_attempts=consumer.max_attempts)
        channel.basic_qos(prefetch_count=prefetch)
        channel.confirm_delivery()  # a dead letter is acknowledged only once the broker has it
        for method, properties, body in channel.consume(queue, inactivity_timeout=idle_seconds):
            if method is None:
                break
            headers = properties.headers or {}
            delivery = Delivery(
                body=body,
                message_id=properties.message_id,
                attempt=int(headers.get("x-delivery-count", 0)) + 1,
            )
            decision = consumer.process(delivery)
            if decision == "dead_letter":
                _dead_letter(channel, queue, properties, delivery, consumer)
            if decision == "retry":
                channel.basic_nack(method.delivery_tag, requeue=True)
            else:
                channel.basic_ack(method.delivery_tag)
        channel.cancel()
    except pika.exceptions.AMQPConnectionError as err:  # lost: dropped, or closed by the broker
        raise BrokerUnreachableError(
            f"consumer {consumer.name} on {queue}: connection to broker "
            f"{broker_address(parameters)} lost: {amqp_error(err)}"
        ) from err
    except pika.exceptions.AMQPError as err:
        raise ConsumerError(f"consumer {consumer.name} on {queue}: {err}") from err
    finally:
        if connection.is_open:
            connection.close()
    log.info("consumer %s on %s: %s", consumer.name, queue, consumer.stats.as_dict())
    return consumer.stats


def _dead_letter(
    channel: BlockingChannel,
    queue: str,
    properties: pika.BasicProperties,
    delivery: Delivery,
    consumer: InboxConsumer,
) -> None:
    """Copy a message into ``<queue>.dlq`` with why and where it failed; the broker confirms it.

    A rejection (nack) would dead-letter it without its reason, which only the log would keep.
    The headers are those of the Kafka consumer's dead letters: ``reason``, ``consumer``,
    ``attempts`` and ``source`` (the queue). Unroutable or refused, the copy raises, and the
    message stays in its queue.
    """
    copy = pika.BasicProperties(
        content_type=properties.content_type,
        message_id=properties.message_id,
        type=properties.type,
        timestamp=properties.timestamp,
        delivery_mode=pika.DeliveryMode.Persistent,
        headers={
            **(properties.headers or {}),
            "reason": consumer.last_failure,
            "consumer": consumer.name,
            "attempts": delivery.attempt,
            "source": queue,
        },
    )
    channel.basic_publish(DEAD_LETTER_EXCHANGE, queue, delivery.body, copy, mandatory=True)
