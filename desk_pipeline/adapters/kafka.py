"""Kafka: its settings and an event publisher behind the relay's port (consumer: kafka_consumer).

Delivery is at least once both ways, as on RabbitMQ: the relay marks an outbox row only after its
delivery report, and the consumer commits an offset only after the inbox write, so a crash
anywhere costs a duplicate (which the inbox absorbs), never a lost event.
"""

import dataclasses
import functools
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

from desk_pipeline.adapters.consumer import BrokerUnreachableError, ConsumerError
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
        BrokerUnreachableError: the cluster is unreachable.
        ConsumerError: it refuses to create a missing topic.
    """
    admin = AdminClient(settings.config())
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except confluent_kafka.KafkaException as err:
        raise BrokerUnreachableError(
            f"kafka {settings.shown()}: broker unreachable: {err}"
        ) from err
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
