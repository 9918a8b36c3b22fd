"""Kafka's inbox consumer and its dead-letter topic (settings and publisher: kafka.py).

The consumer commits an offset only after the inbox write, so a crash anywhere costs a duplicate
(which the inbox absorbs), never a lost event.
"""

import logging
import time
from typing import Any

import confluent_kafka

from desk_pipeline.adapters.consumer import ConsumerError, ConsumerStats, Delivery, InboxConsumer
from desk_pipeline.adapters.kafka import KafkaSettings, ensure_topics

log = logging.getLogger(__name__)


class _DeadLetters:
    """Writes poison messages to ``<topic>.dlq`` and waits until Kafka has each one."""

    def __init__(self, settings: KafkaSettings, consumer: str, timeout: float) -> None:
        self.topic = settings.dead_letter_topic
        self.consumer = consumer
        self.timeout = timeout
        self.producer = confluent_kafka.Producer(
            settings.config(
                **{
                    "client.id": f"desk-consume-{consumer}-dlq",
                    "enable.idempotence": True,
                    "acks": "all",
                }
            )
        )

    def send(self, message: confluent_kafka.Message, reason: str, attempts: int) -> None:
        """Copy ``message`` (key, value, headers) with why and where it failed.

        Raises:
            ConsumerError: the dead-letter topic did not take it (the offset stays uncommitted).
        """
        failure: list[str] = []
        self.producer.produce(
            self.topic,
            key=message.key(),
            value=message.value(),
            headers=[
                *_headers_of(message).items(),
                ("reason", reason.encode()),
                ("consumer", self.consumer.encode()),
                ("attempts", str(attempts).encode()),
                ("source", f"{message.topic()}/{message.partition()}@{message.offset()}".encode()),
            ],
            on_delivery=lambda err, _msg: failure.append(str(err)) if err else None,
        )
        if self.producer.flush(self.timeout) or failure:
            raise ConsumerError(
                f"consumer {self.consumer}: dead-letter topic {self.topic} did not take "
                f"offset {message.offset()}: {failure[0] if failure else 'timed out'}"
            )


def _headers_of(message: confluent_kafka.Message) -> dict[str, str | bytes | None]:
    return dict(message.headers() or [])


def _message_id(message: confluent_kafka.Message) -> str | None:
    # The relay sets the event_id header; a message from elsewhere may lack it (no inbox key).
    value = _headers_of(message).get("event_id")
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value or None


def consume_kafka(
    settings: KafkaSettings,
    consumer: InboxConsumer,
    *,
    idle_seconds: float | None = None,
    session_timeout: float = 10.0,
    dead_letter_timeout: float = 30.0,
) -> ConsumerStats:
    """Consume the event topic in the consumer group ``consumer.name`` until idle.

    Each message is retried in place up to ``consumer.max_attempts`` times (a partition's later
    messages wait, which keeps each book's order); a message that still fails goes to
    ``<topic>.dlq`` with its reason in a header. Its offset is committed only after the inbox
    write, or after the dead-letter topic took the message.

    Args:
        settings: servers, topic and client properties; both topics are created if missing.
        consumer: the inbox consumer that applies each event at most once.
        idle_seconds: stop after this long without a message once partitions are assigned;
            None runs until interrupted.
        session_timeout: the group's session timeout, seconds; a consumer that dies gives up
            its partitions after this long (joining the group also takes about half of it).
        dead_letter_timeout: seconds to wait for the dead-letter topic to take a message.

    Raises:
        ConsumerError: the cluster is unreachable, or a poison message could not be parked.
    """
    ensure_topics(settings)
    dead_letters = _DeadLetters(settings, consumer.name, dead_letter_timeout)
    kafka_consumer = confluent_kafka.Consumer(
        _group_config(settings, consumer.name, session_timeout)
    )
    clock = _IdleClock(consumer.name, idle_seconds)
    kafka_consumer.subscribe([settings.topic], on_assign=clock.assigned)
    try:
        while True:
            message = kafka_consumer.poll(0.2)
            if message is None:
                if clock.expired():
                    break
                continue
            if _skipped(message, consumer.name):
                continue
            _apply(message, consumer, dead_letters)
            _commit(kafka_consumer, message, consumer.name)
            clock.touch()
    finally:
        kafka_consumer.close()
    log.info("consumer %s on %s: %s", consumer.name, settings.shown(), consumer.stats.as_dict())
    return consumer.stats


def _group_config(settings: KafkaSettings, group: str, session_timeout: float) -> dict[str, Any]:
    """The librdkafka configuration of a member of consumer group ``group``.

    Offsets are committed by hand, after the inbox write (never automatically), and a new group
    starts at the topic's earliest message; ``session_timeout`` is in seconds, heartbeats go
    out five times per session (every 100 ms at least).
    """
    return settings.config(
        **{
            "group.id": group,
            "client.id": f"desk-consume-{group}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(session_timeout * 1000),
            "heartbeat.interval.ms": max(100, int(session_timeout * 200)),
        }
    )


class _IdleClock:
    """How long the consumer has gone without a message, from the group's partition assignment.

    The clock starts once the group assigned partitions: joining the group is not idleness.
    """

    def __init__(self, consumer: str, idle_seconds: float | None) -> None:
        """Expire after ``idle_seconds`` (None: never) without a message, for ``consumer``."""
        self.consumer = consumer
        self.idle_seconds = idle_seconds
        # time.monotonic() seconds of the assignment or the last message; None before either.
        self.last_activity: float | None = None

    def assigned(self, _consumer: confluent_kafka.Consumer, partitions: list[Any]) -> None:
        """The ``on_assign`` callback: partitions are assigned, the idle clock starts."""
        self.touch()
        log.info("consumer %s: assigned %s partition(s)", self.consumer, len(partitions))

    def touch(self) -> None:
        """A message was handled: the idle time starts again."""
        self.last_activity = time.monotonic()

    def expired(self) -> bool:
        """Whether the consumer has been idle for ``idle_seconds`` since its assignment."""
        return (
            self.idle_seconds is not None
            and self.last_activity is not None
            and time.monotonic() - self.last_activity >= self.idle_seconds
        )


def _skipped(message: confluent_kafka.Message, consumer: str) -> bool:
    """Whether ``message`` is an error event rather than a message, logged and skipped.

    Raises:
        ConsumerError: the error is fatal (the consumer cannot go on).
    """
    error = message.error()
    if error is None:
        return False
    if error.fatal():
        raise ConsumerError(f"consumer {consumer}: {error}")
    log.warning("consumer %s: %s", consumer, error)
    return True


def _commit(
    kafka_consumer: confluent_kafka.Consumer, message: confluent_kafka.Message, consumer: str
) -> None:
    """Commit the offset after ``message``, synchronously; a failure is only logged.

    The message is applied and in the inbox: if no later commit covers it, the next owner of the
    partition gets it again and the inbox drops it.
    """
    try:
        kafka_consumer.commit(message=message, asynchronous=False)
    except confluent_kafka.KafkaException as err:
        log.warning("consumer %s: commit failed: %s", consumer, err)


def _apply(
    message: confluent_kafka.Message, consumer: InboxConsumer, dead_letters: _DeadLetters
) -> None:
    """Process one message through the inbox until it is acknowledged or dead-lettered."""
    message_id = _message_id(message)
    attempt = 1
    while (
        decision := consumer.process(Delivery(message.value() or b"", message_id, attempt))
    ) == "retry":
        attempt += 1
    if decision == "dead_letter":
        dead_letters.send(message, consumer.last_failure, attempt)
