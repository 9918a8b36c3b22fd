"""Kafka: an event publisher behind the relay's port; the inbox consumer and its dead-letter topic.

Delivery is at least once both ways, as on RabbitMQ: the relay marks an outbox row only after its
delivery report, and the consumer commits an offset only after the inbox write, so a crash
anywhere costs a duplicate (which the inbox absorbs), never a lost event.
"""

import dataclasses
import functools
import logging
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

from desk_pipeline.adapters.consumer import ConsumerError, ConsumerStats, Delivery, InboxConsumer
from desk_pipeline.adapters.publisher import OutgoingEvent, PublishError

log = logging.getLogger(__name__)

DEFAULT_TOPIC = "desk.events"
SPEC_FORMAT = "kafka:<host:port>[,<host:port>...][?topic=<name>&<librdkafka property>=<value>...]"
# Kafka's own rule for topic names.
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


@dataclasses.dataclass(frozen=True)
class KafkaSettings:
    """Where events go on Kafka, parsed from ``kafka:<bootstrap servers>[?topic=…&…]``.

    Attributes:
        bootstrap_servers: ``host:port`` list, comma-separated.
        topic: the event topic (``desk.events`` unless the spec names one).
        client: further librdkafka properties for every client the desk opens (TLS, SASL,
            timeouts), e.g. ``security.protocol=SASL_SSL``; librdkafka rejects unknown ones.
    """

    bootstrap_servers: str
    topic: str = DEFAULT_TOPIC
    client: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_spec(cls, spec: str) -> "KafkaSettings":
        """Parse a ``kafka:`` spec (DESK_EVENT_PUBLISHER or ``desk consume --source``).

        Raises:
            PublishError: the spec is not ``kafka:``, names no server, or has a bad topic.
        """
        kind, _, argument = spec.partition(":")
        servers, _, query = argument.partition("?")
        try:
            options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
        except ValueError as err:
            raise PublishError(f"{spec!r}: bad options ({err}); use {SPEC_FORMAT}") from err
        topic = options.pop("topic", DEFAULT_TOPIC)
        if kind != "kafka" or not servers.strip(","):
            raise PublishError(f"{spec!r} names no Kafka broker; use {SPEC_FORMAT}")
        if not _TOPIC_NAME.fullmatch(topic):
            raise PublishError(
                f"{spec!r}: topic {topic!r} is not a Kafka topic name (letters, digits, '.', '_', "
                "'-'; at most 249)"
            )
        return cls(servers, topic, tuple(sorted(options.items())))

    @property
    def dead_letter_topic(self) -> str:
        """Where consumers put messages they could not apply: ``<topic>.dlq``."""
        return f"{self.topic}.dlq"

    def shown(self) -> str:
        """Servers and topic, for messages (the client properties may hold credentials)."""
        return f"{self.bootstrap_servers} topic {self.topic}"

    def config(self, **properties: Any) -> dict[str, Any]:
        """The librdkafka configuration: servers, ``properties``, then the spec's own properties.

        librdkafka's log lines go to this module's logger rather than straight to stderr.
        """
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "logger": log,
            **properties,
            **dict(self.client),
        }


Headers = list[tuple[str, str | bytes | None]]


def _headers(event: OutgoingEvent) -> Headers:
    return [
        ("event_id", event.event_id.encode()),
        ("event_type", event.event_type.encode()),
        ("schema_version", str(event.schema_version).encode()),
    ]


class KafkaPublisher:
    """Publishes to a Kafka topic: idempotent producer, ``acks=all``, book id as message key.

    The key puts each book's events in one partition, where the idempotent producer keeps their
    order through retries. Headers ``event_id``, ``event_type`` and ``schema_version`` let a
    consumer dedupe and route without parsing the value (the PositionSnapshotCreated JSON).
    One producer per ``publish`` call: after a failed batch an idempotent producer may be left
    in a fatal state, and a fresh one never is.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        connect_timeout: float = 5.0,
        delivery_timeout: float = 30.0,
    ) -> None:
        """Publish to ``settings.topic``.

        Args:
            settings: servers, topic and client properties.
            connect_timeout: seconds to wait for the cluster's metadata before giving up.
            delivery_timeout: seconds a message may wait for its delivery report
                (``message.timeout.ms``); the relay backs off and retries after that.
        """
        self.settings = settings
        self.connect_timeout = connect_timeout
        self.delivery_timeout = delivery_timeout

    def producer_config(self) -> dict[str, Any]:
        """The producer's librdkafka configuration."""
        return self.settings.config(
            **{
                "client.id": "desk-relay",
                "enable.idempotence": True,
                "acks": "all",
                "message.timeout.ms": int(self.delivery_timeout * 1000),
            }
        )

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Produce ``events`` in order and wait for every delivery report.

        Raises:
            PublishError: the cluster is unreachable, the topic is refused, or a message was
                not delivered; ``confirmed`` counts the leading events that were.
        """
        if not events:
            return
        try:
            producer = confluent_kafka.Producer(self.producer_config())
        except confluent_kafka.KafkaException as err:
            raise PublishError(f"kafka {self.settings.shown()}: {err}") from err
        # reports[i]: None until event i's delivery report arrives, then "" or the error.
        reports: list[str | None] = [None] * len(events)
        failure = ""

        def delivered(index: int, err: confluent_kafka.KafkaError | None, _msg: Any) -> None:
            reports[index] = "" if err is None else str(err)

        try:
            self._check_topic(producer)
            for index, event in enumerate(events):
                producer.produce(
                    self.settings.topic,
                    key=event.book_id.encode(),
                    value=event.payload.encode(),
                    headers=_headers(event),
                    on_delivery=functools.partial(delivered, index),
                )
            producer.flush(self.delivery_timeout)
        except (confluent_kafka.KafkaException, BufferError) as err:
            failure = f"{type(err).__name__}: {err}"
        finally:
            # Whatever is still queued or in flight was not confirmed: drop it now, so the
            # producer dies promptly and the relay re-publishes it on its next pass.
            producer.purge()
            producer.flush(0)
        confirmed = next((i for i, r in enumerate(reports) if r != ""), len(events))
        if confirmed < len(events):
            problem = next((r for r in reports[confirmed:] if r), failure or "no delivery report")
            raise PublishError(f"kafka {self.settings.shown()}: {problem}", confirmed)

    def _check_topic(self, producer: confluent_kafka.Producer) -> None:
        # Fail fast while the cluster is unreachable: produce() would queue the messages and
        # only time them out after delivery_timeout. Asking for the topic's metadata also
        # creates it where the cluster auto-creates topics.
        try:
            metadata = producer.list_topics(self.settings.topic, timeout=self.connect_timeout)
        except confluent_kafka.KafkaException as err:
            raise PublishError(f"kafka {self.settings.shown()}: broker unreachable: {err}") from err
        topic = metadata.topics.get(self.settings.topic)
        error = None if topic is None else topic.error
        if error is not None and error.code() != confluent_kafka.KafkaError.LEADER_NOT_AVAILABLE:
            raise PublishError(
                f"kafka {self.settings.shown()}: {error.str()}; create the topic "
                "(`desk consume --source kafka:…` creates it) or allow auto-creation"
            )


def ensure_topics(settings: KafkaSettings, timeout: float = 10.0) -> None:
    """Create the event topic and its dead-letter topic where missing (broker's default layout).

    Raises:
        ConsumerError: the cluster is unreachable or refuses to create a missing topic.
    """
    admin = AdminClient(settings.config())
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except confluent_kafka.KafkaException as err:
        raise ConsumerError(f"kafka {settings.shown()}: broker unreachable: {err}") from err
    missing = [t for t in (settings.topic, settings.dead_letter_topic) if t not in existing]
    if not missing:
        return
    futures = admin.create_topics([NewTopic(t) for t in missing], operation_timeout=timeout)
    for topic, future in futures.items():
        try:
            future.result()
        except confluent_kafka.KafkaException as err:
            # Another consumer may have created it meanwhile.
            if err.args[0].code() != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                raise ConsumerError(
                    f"kafka {settings.shown()}: cannot create topic {topic}: {err}"
                ) from err
        else:
            log.info("kafka: created topic %s", topic)


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
