"""The long-running commands: relay events, consume them, serve the HTTP API."""

import functools
import os
import time
from collections.abc import Callable

import click

from desk_pipeline.adapters import consumer as event_consumer
from desk_pipeline.adapters.kafka import KafkaSettings
from desk_pipeline.adapters.kafka_consumer import consume_kafka
from desk_pipeline.adapters.publisher import PublishError, amqp_url_from, publisher_from
from desk_pipeline.adapters.relay import Backoff, relay_forever, relay_once
from desk_pipeline.adapters.relay import log as relay_log
from desk_pipeline.cli.group import repair_orphans_first
from desk_pipeline.cli.signals import stop_point, stops_on_signals
from desk_pipeline.cli.terminal import emit, folded, log_to_stderr, notice
from desk_pipeline.cli.warehouse import open_repository, settings


@click.command()
@click.option("--once", is_flag=True, help="One pass over the outbox, then exit.")
@click.option(
    "--max-backoff",
    default=60.0,
    show_default=True,
    help="Longest wait between attempts while the broker is unreachable, seconds.",
)
@click.option(
    "--retry-parked",
    is_flag=True,
    help="First put parked events back in the queue (once what made them unpublishable is fixed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@stops_on_signals("events the broker has not confirmed wait in the outbox")
def relay(once: bool, max_backoff: float, retry_parked: bool, as_json: bool) -> None:
    """Publish pending events from the outbox to DESK_EVENT_PUBLISHER, in order, at least once.

    Without --once it runs until SIGTERM or Ctrl-C (exit 143 or 130), backing off exponentially
    while the broker is unreachable. With --once it exits 1 when events are left waiting. An
    event the broker can never take (e.g. a routing key over AMQP's 255 bytes) is parked with
    its reason (`desk status`); its book's later events wait behind it while other books'
    events flow.
    """
    log_to_stderr()
    repository = open_repository()
    publisher = publisher_from(settings().event_publisher)
    if retry_parked:
        notice(f"{repository.unpark_events()} parked event(s) back in the queue")
    if not once:
        relay_forever(repository, publisher, backoff=Backoff(maximum=max_backoff))
        return
    # Its warning is the command's last line (`desk: relay: N events wait ...`): said once.
    with folded(relay_log.name, "relay: %s events wait", shown=0):
        result = relay_once(repository, publisher)
    document = {
        "published": result.published,
        "failed": result.failed,
        "parked": result.parked,
        "backlog": result.backlog,
    }
    emit(
        document,
        as_json,
        lambda: f"published {result.published}, parked {result.parked}, backlog {result.backlog}",
    )
    if result.failed:
        raise PublishError(f"relay: {result.failed} events wait in the outbox: {result.error}")


# While the broker is away: 1 s, 2 s, 4 s ... then every 60 s between connection attempts.
RECONNECT = Backoff(initial=1.0, factor=2.0, maximum=60.0)


def _reconnecting(
    run: Callable[[], event_consumer.ConsumerStats], consumer: event_consumer.InboxConsumer
) -> event_consumer.ConsumerStats:
    """``run()`` again after each refused or lost connection to the broker, backing off.

    A consumer is a service: a broker restart or a network cut must not end it (the messages
    wait on the broker, unacknowledged ones are delivered again). Each wait is one line.
    """
    failures = 0
    while True:
        received = consumer.stats.received
        try:
            return run()
        except event_consumer.BrokerUnreachableError as err:
            failures = 1 if consumer.stats.received > received else failures + 1
            delay = RECONNECT.delay(failures)
            notice(f"{err}; the messages wait on the broker; connecting again in {delay:.0f} s")
            stop_point()
            time.sleep(delay)


@click.command()
@click.option(
    "--source",
    default=None,
    help="rabbitmq:<amqp url> or kafka:<servers>[?topic=<name>] (default: DESK_EVENT_PUBLISHER).",
)
@click.option(
    "--queue", help="RabbitMQ: queue to consume, declared with <queue>.dlq (required there)."
)
@click.option(
    "--consumer",
    "name",
    default="eod-ranking",
    show_default=True,
    help="Consumer name: the inbox key that makes redeliveries no-ops; Kafka's consumer group.",
)
@click.option(
    "--prefetch", default=20, show_default=True, help="RabbitMQ: unacknowledged messages."
)
@click.option(
    "--max-attempts",
    default=5,
    show_default=True,
    help="Tries before a failing message goes to the dead-letter queue.",
)
@click.option(
    "--idle-exit",
    type=float,
    default=None,
    help="Exit after this many seconds without a message (default: run until interrupted).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@stops_on_signals("messages not yet acknowledged are delivered again")
def consume(
    source: str | None,
    queue: str | None,
    name: str,
    prefetch: int,
    max_attempts: int,
    idle_exit: float | None,
    as_json: bool,
) -> None:
    """Consume PositionSnapshotCreated events: record each new EOD, rank it unless fresh.

    From a RabbitMQ queue, or from the Kafka event topic in the consumer group --consumer
    (offsets committed after the inbox write; poison messages go to <topic>.dlq). Without
    --idle-exit it runs until SIGTERM or Ctrl-C (exit 143 or 130), connecting again while the
    broker is away (1 s, 2 s, 4 s ... 60 s apart, one line each).
    """
    # Imported late: the commands load every asset module, which most `desk` commands never use.
    from desk_pipeline import commands

    log_to_stderr()
    repair_orphans_first()
    spec = source or settings().event_publisher

    def inbox() -> event_consumer.InboxConsumer:
        from desk_pipeline.defs.runs import desk_instance

        repository = open_repository()
        desk = settings()
        rank = functools.partial(
            commands.rank_snapshot,
            desk,
            commands.definitions_for(desk),
            desk_instance(),
            stop_check=stop_point,
        )

        def rank_then_stop_point(book: str, business_date: str) -> None:
            rank(book, business_date)
            stop_point()  # a stop signal after the run's last step, which the run only noted

        # An event's day is checked against the desk calendar as a `desk` command's date is;
        # a bad one is dead-lettered with the calendar's line as its reason.
        handler = event_consumer.EodRankingHandler(
            repository, rank_then_stop_point, stored_day=desk.stored_day
        )
        return event_consumer.InboxConsumer(repository, name, handler, max_attempts=max_attempts)

    if spec.startswith("kafka:"):
        kafka = KafkaSettings.from_spec(spec)
        consumer = inbox()
        where = kafka.shown()

        def run() -> event_consumer.ConsumerStats:
            return consume_kafka(kafka, consumer, idle_seconds=idle_exit)

    else:
        url = amqp_url_from(spec)
        if not queue:
            raise click.UsageError("RabbitMQ needs --queue (the queue to consume)")
        consumer = inbox()
        where = queue

        def run() -> event_consumer.ConsumerStats:
            return event_consumer.consume(
                url, queue, consumer, prefetch=prefetch, idle_seconds=idle_exit
            )

    # With --idle-exit it is a drain that ends: an absent broker is its failure (exit 1).
    stats = run() if idle_exit is not None else _reconnecting(run, consumer)
    emit(stats.as_dict(), as_json, lambda: f"consumer {name} on {where}: {stats.as_dict()}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
# uvicorn handles both signals while it serves: it stops accepting, lets the app finish (the
# run in progress), then raises the signal again for the handler this installs.
@stops_on_signals(
    "a run in progress, if any, was finished first; requested runs not started were dropped"
)
def serve(host: str, port: int) -> None:
    """Serve the HTTP API (OpenAPI document at /openapi.json) until SIGTERM or Ctrl-C (143, 130).

    Reads are open; the two commands (POST) need `Authorization: Bearer <DESK_API_TOKEN>` and
    are refused while DESK_API_TOKEN is unset. Their runs execute in this process on the
    DAGSTER_HOME instance (docs/api.md).
    """
    import uvicorn

    from desk_pipeline.api import create_app
    from desk_pipeline.defs.runs import desk_instance

    log_to_stderr()
    repair_orphans_first()
    token = os.environ.get("DESK_API_TOKEN") or None
    app = create_app(settings(), token=token, instance=desk_instance())
    # Not uvicorn.run: it swallows the KeyboardInterrupt (Stopped) the signal raised again becomes.
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info")).run()
