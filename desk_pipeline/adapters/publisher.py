"""Event publishers: the log, RabbitMQ (publisher confirms) and, through kafka.py, Kafka.

The outbox relay that feeds them is relay.py.
"""

import dataclasses
import json
import logging
from collections.abc import Sequence
from typing import Protocol

import pika
import pika.exceptions

from desk_pipeline.adapters.configuration import amqp_url_problem, shown
from desk_pipeline.domain.errors import DeskPipelineError

log = logging.getLogger(__name__)

EXCHANGE = "desk.events"
ROUTING_PREFIX = "position_snapshot.created"
# An AMQP short string (routing key, message id) holds at most this many bytes.
AMQP_SHORTSTR_BYTES = 255


class PublishError(DeskPipelineError):
    """The broker did not confirm a message; the outbox keeps it for the next attempt.

    Attributes:
        confirmed: how many of the batch's first events the broker did confirm before the
            failure; the relay marks exactly those published.
        poison: the event right after the confirmed ones can never be published as it is (the
            transport cannot carry it); the relay parks it instead of retrying it forever.
    """

    def __init__(self, message: str, confirmed: int = 0, *, poison: bool = False) -> None:
        super().__init__(message)
        self.confirmed = confirmed
        self.poison = poison


@dataclasses.dataclass(frozen=True)
class OutgoingEvent:
    """One outbox row on its way to the broker."""

    event_id: str
    event_type: str
    book_id: str
    payload: str

    @property
    def schema_version(self) -> int:
        """The document's ``schema_version`` (the outbox row keeps it only in the payload)."""
        return int(json.loads(self.payload)["schema_version"])


class EventPublisher(Protocol):
    """Port: publishes events and returns only once the broker has confirmed every one.

    A broker is one class with this method plus a branch in ``publisher_from`` (RabbitMQ here,
    Kafka in ``kafka.py``); the relay, the outbox and the sensor do not change.
    """

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Publish ``events`` in order; raise PublishError if any is not confirmed."""
        ...


class LogPublisher:
    """Publishes events as structured log lines (the default, for a desk without a broker)."""

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Log each event's JSON document."""
        for event in events:
            log.info("event %s %s %s", event.event_type, event.event_id, event.payload)


def routing_key(book_id: str) -> str:
    """Topic routing key of a book's events: consumers bind ``position_snapshot.created.#``."""
    return f"{ROUTING_PREFIX}.{book_id}"


def declare_exchange(channel: pika.adapters.blocking_connection.BlockingChannel) -> None:
    """Declare the durable topic exchange every event goes to (idempotent)."""
    channel.exchange_declare(exchange=EXCHANGE, exchange_type="topic", durable=True)


class RabbitMQPublisher:
    """Publishes to RabbitMQ: persistent, mandatory, confirmed messages on ``desk.events``.

    One connection per ``publish`` call: the relay publishes whole batches, and a fresh
    connection never carries a half-dead socket or missed heartbeats from an idle period.
    """

    def __init__(
        self, url: str, *, connect_timeout: float = 5.0, confirm_timeout: float = 60.0
    ) -> None:
        """Publish to the broker at ``url`` (``amqp://user:password@host:port/vhost``)."""
        self.url = url
        self.connect_timeout = connect_timeout
        self.confirm_timeout = confirm_timeout

    def _parameters(self) -> pika.URLParameters:
        params = pika.URLParameters(self.url)
        # Fail fast: back-off between attempts belongs to the relay, not to the socket.
        params.connection_attempts = 1
        params.socket_timeout = self.connect_timeout
        params.blocked_connection_timeout = 30
        return params

    def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Publish ``events`` in order and wait until the broker has confirmed every one.

        Raises:
            PublishError: the broker is unreachable, nacked a message, or could not route it
                to any queue (mandatory); ``confirmed`` counts the leading events it did take.
        """
        if not events:
            return
        for index, event in enumerate(events):
            size = len(routing_key(event.book_id).encode("utf-8", "surrogatepass"))
            if size > AMQP_SHORTSTR_BYTES:
                self.publish(events[:index])
                raise PublishError(
                    f"rabbitmq: event {event.event_id} of book {event.book_id[:40]!r}: its "
                    f"routing key is {size} bytes, over AMQP's {AMQP_SHORTSTR_BYTES}",
                    index,
                    poison=True,
                )
        parameters = self._parameters()
        broker = f"rabbitmq {broker_address(parameters)}"
        batch = _ConfirmedBatch(parameters, events, self.confirm_timeout)
        try:
            confirmed = batch.run()
        except (pika.exceptions.AMQPError, OSError) as err:
            raise PublishError(f"{broker}: {amqp_error(err)}", batch.confirmed_prefix()) from err
        if confirmed < len(events):
            raise PublishError(f"{broker}: {batch.error}", confirmed)


def broker_address(parameters: pika.ConnectionParameters) -> str:
    """The broker as messages name it: host and port, never the user or password."""
    return f"{parameters.host}:{parameters.port}"


def broker_refusal(err: BaseException) -> str | None:
    """Why a broker that answered refused the connection (login, vhost); None if it did not.

    No retry cures a refusal: the URL's user, password or vhost must change.
    """
    if isinstance(
        err, pika.exceptions.ProbableAuthenticationError | pika.exceptions.AuthenticationError
    ):
        return f"broker refused the login, check the URL's user and password ({amqp_error(err)})"
    if isinstance(err, pika.exceptions.ProbableAccessDeniedError):
        return (
            "broker refused the vhost, check that it exists and the user may use it "
            f"({amqp_error(err)})"
        )
    return None


def amqp_error(err: BaseException) -> str:
    """``Type: message`` of a pika or socket error, its repr when its message is empty.

    pika's connection errors print as "" (the refused socket is only in their repr).
    """
    return f"{type(err).__name__}: {err}" if str(err) else repr(err)


class _ConfirmedBatch:
    """One batch on an asynchronous connection, every publisher confirm outstanding at once.

    Waiting for each confirm before the next publish costs the broker's disk sync per message
    (~300 events/s here); pipelining lets it sync many messages at once. Messages on one
    channel keep their order, and the result is the length of the leading run of events the
    broker confirmed and routed, which is what the relay may mark published.
    """

    def __init__(
        self, parameters: pika.URLParameters, events: Sequence[OutgoingEvent], timeout: float
    ) -> None:
        self.parameters = parameters
        self.events = events
        self.timeout = timeout
        self.tag_of = {event.event_id: tag for tag, event in enumerate(events, start=1)}
        # settled: the broker answered (ack or nack); rejected: nacked or returned unroutable.
        self.settled = [False] * (len(events) + 1)
        self.rejected: set[int] = set()
        self.resolved = 0
        self.error = ""
        self.connection: pika.SelectConnection | None = None
        self.channel: pika.channel.Channel | None = None

    def run(self) -> int:
        """Publish, wait for every confirm (or a failure or the timeout); the confirmed prefix."""
        self.connection = pika.SelectConnection(
            self.parameters,
            on_open_callback=self._opened,
            on_open_error_callback=self._open_failed,
            on_close_callback=self._closed,
        )
        timer = self.connection.ioloop.call_later(
            self.timeout, lambda: self._finish(f"no confirm within {self.timeout:.0f}s")
        )
        self.connection.ioloop.start()
        self.connection.ioloop.remove_timeout(timer)
        return self.confirmed_prefix()

    def confirmed_prefix(self) -> int:
        """How many leading events were acknowledged and routed."""
        for tag in range(1, len(self.events) + 1):
            if not self.settled[tag] or tag in self.rejected:
                return tag - 1
        return len(self.events)

    def _finish(self, error: str = "") -> None:
        self.error = self.error or error
        if self.connection is None:
            return
        if self.connection.is_open:
            self.connection.close()  # _closed stops the loop once the broker agreed
        elif self.connection.is_closed:
            self.connection.ioloop.stop()

    def _opened(self, connection: pika.BaseConnection) -> None:
        connection.channel(on_open_callback=self._channel_opened)

    def _open_failed(self, connection: pika.BaseConnection, err: BaseException) -> None:
        self.error = broker_refusal(err) or f"broker unreachable: {amqp_error(err)}"
        connection.ioloop.stop()

    def _closed(self, connection: pika.BaseConnection, reason: BaseException) -> None:
        if self.resolved < len(self.events):
            self.error = self.error or f"connection closed: {reason}"
        connection.ioloop.stop()

    def _channel_opened(self, channel: pika.channel.Channel) -> None:
        self.channel = channel
        channel.add_on_close_callback(lambda _ch, reason: self._finish(f"channel closed: {reason}"))
        channel.add_on_return_callback(self._returned)
        channel.confirm_delivery(
            ack_nack_callback=self._confirmed,
            callback=lambda _frame: channel.exchange_declare(
                EXCHANGE, "topic", durable=True, callback=self._publish_all
            ),
        )

    def _publish_all(self, _frame: pika.frame.Method) -> None:
        assert self.channel is not None
        for event in self.events:
            self.channel.basic_publish(
                exchange=EXCHANGE,
                routing_key=routing_key(event.book_id),
                body=event.payload.encode(),
                properties=pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=pika.DeliveryMode.Persistent,
                    message_id=event.event_id,
                    type=event.event_type,
                ),
                mandatory=True,
            )

    def _returned(
        self,
        _channel: pika.channel.Channel,
        _method: pika.spec.Basic.Return,
        properties: pika.BasicProperties,
        _body: bytes,
    ) -> None:
        # The broker returns an unroutable mandatory message before it acknowledges it.
        self.rejected.add(self.tag_of.get(properties.message_id or "", 0))
        self.error = self.error or (
            f"event {properties.message_id} reached no queue bound to {EXCHANGE!r}; bind a "
            f"queue to '{ROUTING_PREFIX}.#' (desk consume declares one)"
        )

    def _confirmed(self, frame: pika.frame.Method) -> None:
        method = frame.method
        tags = range(1, method.delivery_tag + 1) if method.multiple else [method.delivery_tag]
        nack = isinstance(method, pika.spec.Basic.Nack)
        for tag in tags:
            if not self.settled[tag]:
                self.settled[tag] = True
                self.resolved += 1
            if nack:
                self.rejected.add(tag)
        if nack:
            self.error = self.error or f"broker nacked message {method.delivery_tag}"
        if self.resolved >= len(self.events):
            self._finish()


def publisher_from(spec: str) -> EventPublisher:
    """Build the publisher named by DESK_EVENT_PUBLISHER.

    ``log``, ``rabbitmq:<amqp url>`` or ``kafka:<bootstrap servers>[?topic=<name>&…]``.

    Raises:
        PublishError: any other spec.
    """
    kind, _, argument = spec.partition(":")
    if kind == "log":
        return LogPublisher()
    if kind == "rabbitmq" and argument.startswith(("amqp://", "amqps://")):
        return RabbitMQPublisher(argument)
    if kind == "kafka":
        # Imported here: the Kafka adapter builds on this module's port.
        from desk_pipeline.adapters.kafka import KafkaPublisher, KafkaSettings

        return KafkaPublisher(KafkaSettings.from_spec(spec))
    raise PublishError(
        f"DESK_EVENT_PUBLISHER={spec!r} is not understood; use 'log', 'rabbitmq:<amqp url>' "
        "(e.g. rabbitmq:amqp://guest:guest@127.0.0.1:5672/%2F) or 'kafka:<bootstrap servers>' "
        "(e.g. kafka:127.0.0.1:9092?topic=desk.events)"
    )


def amqp_url_from(spec: str) -> str:
    """The AMQP URL of a ``rabbitmq:<amqp url>`` publisher spec (consumers use the same broker)."""
    kind, _, argument = spec.partition(":")
    if kind != "rabbitmq" or not argument.startswith(("amqp://", "amqps://")):
        raise PublishError(
            f"{spec!r} names no RabbitMQ broker; consumers need 'rabbitmq:<amqp url>' or "
            "'kafka:<bootstrap servers>' (DESK_EVENT_PUBLISHER or desk consume --source)"
        )
    problem = amqp_url_problem(argument)
    if problem is not None:
        raise PublishError(f"{shown(argument)}: {problem}")
    return argument
