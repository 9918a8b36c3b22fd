"""The outbox relay against the real RabbitMQ: confirms, routing, outages and a crash mid-relay."""

import json
import subprocess
import sys
import time
import uuid

import dagster as dg
import pytest

from desk_pipeline.adapters.consumer import (
    EodRankingHandler,
    InboxConsumer,
    consume,
    declare_queue,
    parse_event,
)
from desk_pipeline.adapters.publisher import EXCHANGE, PublishError, RabbitMQPublisher, routing_key
from desk_pipeline.adapters.relay import RelayCursor, relay_once
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs import automation
from desk_pipeline.defs.resources import (
    LogEventPublisher,
    RabbitMqEventPublisher,
    WarehouseResource,
)
from desk_pipeline_tests.broker import (
    AMQP_HOST,
    amqp_url,
    channel_on,
    drain,
    free_port,
    temporary_vhost,
)
from desk_pipeline_tests.builders import store_eods, unique_books
from desk_pipeline_tests.relay_runs import run_relay

pytestmark = pytest.mark.rabbitmq

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]


@pytest.fixture(scope="module")
def vhost():
    # One vhost per module (rabbitmqctl takes seconds); tests keep apart by unique book ids and
    # queues bound to their own books only.
    with temporary_vhost() as name:
        yield name


@pytest.fixture
def books() -> list[str]:
    return unique_books("REPO", "SECLEND")


@pytest.fixture
def repo(sqlite_url):
    repository = PositionRepository(sqlite_url)
    yield repository
    repository.engine.dispose()


def bound_queue(url: str, books: list[str], name: str = "q.audit") -> str:
    """A queue (unique name) receiving the events of ``books`` only."""
    queue = f"{name}.{uuid.uuid4().hex[:8]}"
    connection, channel = channel_on(url)
    for book in books:
        declare_queue(channel, queue, binding_key=routing_key(book))
    connection.close()
    return queue


def test_relay_publishes_persistent_confirmed_messages_keyed_by_event_id_in_order_per_book(
    warehouse_url, vhost, books
):
    repo = PositionRepository(warehouse_url)
    url = amqp_url(vhost)
    queue = bound_queue(url, books)
    store_eods(repo, books, DAYS)

    result = relay_once(repo, RabbitMQPublisher(url))

    assert (result.published, result.failed, result.backlog) == (6, 0, 0)
    messages = drain(url, queue, expect=6)
    assert len(messages) == 6
    seen: dict[str, list[str]] = {}
    for method, properties, body in messages:
        event = parse_event(body)
        assert properties.message_id == event["event_id"]
        assert properties.delivery_mode == 2 and properties.content_type == "application/json"
        assert method.exchange == EXCHANGE
        assert method.routing_key == f"position_snapshot.created.{event['book_id']}"
        seen.setdefault(event["book_id"], []).append(event["business_date"])
    assert seen == {book: DAYS for book in books}
    assert repo.outbox_events()["published_at_us"].notna().all()
    repo.engine.dispose()


def test_an_event_no_queue_would_receive_stays_in_the_outbox(repo, vhost, books):
    store_eods(repo, books, DAYS[:1])

    result = relay_once(repo, RabbitMQPublisher(amqp_url(vhost)))

    assert (result.published, result.failed, result.backlog) == (0, 2, 2)
    assert "no queue" in result.error
    assert repo.outbox_events()["attempts"].tolist() == [1, 1]


def test_an_unreachable_broker_fails_fast_and_every_event_waits_until_it_returns(
    repo, vhost, books
):
    store_eods(repo, books, DAYS[:2])
    closed_port = free_port()
    closed = amqp_url(vhost, port=closed_port)

    started = time.monotonic()
    down = relay_once(repo, RabbitMQPublisher(closed, connect_timeout=2))
    assert time.monotonic() - started < 10
    assert (down.published, down.failed, down.backlog) == (0, 4, 4)
    # The broker by host and port, and why: pika's error printed as "" (it ended "unreachable: ").
    assert down.error.startswith(f"rabbitmq {AMQP_HOST}:{closed_port}: broker unreachable: ")
    assert "Connection refused" in down.error and "guest" not in down.error
    store_eods(repo, books, DAYS[2:])  # EODs keep being written while the broker is away
    assert repo.outbox_backlog() == 6

    url = amqp_url(vhost)
    queue = bound_queue(url, books)
    up = relay_once(repo, RabbitMQPublisher(url))
    assert (up.published, up.backlog) == (6, 0)
    ids = {json.loads(body)["event_id"] for _, _, body in drain(url, queue, expect=6)}
    assert ids == set(repo.outbox_events()["event_id"])


def test_a_broker_that_refuses_the_login_is_told_so_and_the_events_wait(repo, vhost, books):
    store_eods(repo, books, DAYS[:1])
    wrong = amqp_url(vhost).replace("guest:guest", "guest:wrong")
    refused = relay_once(repo, RabbitMQPublisher(wrong, connect_timeout=2))
    assert (refused.published, refused.backlog) == (0, 2)
    assert "broker refused the login, check the URL's user and password" in refused.error
    assert "unreachable" not in refused.error and "wrong" not in refused.error


CRASH_AFTER_CONFIRM = """
import os, sys
from desk_pipeline.adapters.publisher import RabbitMQPublisher
from desk_pipeline.adapters.relay import relay_once
from desk_pipeline.adapters.warehouse import PositionRepository

class CrashAfterConfirm:
    def __init__(self, inner):
        self.inner = inner

    def publish(self, events):
        self.inner.publish(events)  # returns only once the broker confirmed every event
        os._exit(137)  # the process dies before the relay marks the rows published

relay_once(PositionRepository(sys.argv[1]), CrashAfterConfirm(RabbitMQPublisher(sys.argv[2])))
"""


def test_a_relay_killed_between_confirm_and_mark_republishes_and_the_consumer_applies_once(
    repo, sqlite_url, vhost, books
):
    url = amqp_url(vhost)
    queue = bound_queue(url, books, "q.ranking")
    writes = store_eods(repo, books, DAYS)

    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_CONFIRM, sqlite_url, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == 137, crashed.stderr
    assert repo.outbox_backlog() == 6  # confirmed by the broker, never marked
    assert relay_once(repo, RabbitMQPublisher(url)).published == 6  # published a second time

    requested: list[tuple[str, str]] = []
    consumer = InboxConsumer(
        repo, "ranking", EodRankingHandler(repo, lambda b, d: requested.append((b, d)))
    )
    stats = consume(url, queue, consumer, idle_seconds=1.0)

    assert (stats.received, stats.applied, stats.duplicates) == (12, 6, 6)
    assert repo.inbox_count("ranking") == 6
    assert sorted(requested) == sorted((w.book_id, w.business_date) for w in writes)


class ConfirmsThenFails:
    """A publisher whose broker confirms the first ``n`` events of a batch, then goes away."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sent: list[str] = []

    def publish(self, events) -> None:
        self.sent += [e.event_id for e in events[: self.n]]
        raise PublishError("connection lost", confirmed=self.n)


def test_a_batch_cut_short_marks_exactly_the_confirmed_events_and_keeps_the_rest_in_order(
    repo, books
):
    store_eods(repo, books, DAYS[:2])
    publisher = ConfirmsThenFails(2)

    result = relay_once(repo, publisher)

    outbox = repo.outbox_events()
    assert (result.published, result.failed, result.backlog) == (2, 2, 2)
    assert outbox.loc[outbox["published_at_us"].notna(), "event_id"].tolist() == publisher.sent
    assert outbox["attempts"].tolist() == [0, 0, 1, 1]
    assert repo.pending_events()["id"].tolist() == outbox["id"].tolist()[2:]


def test_the_relay_sensor_backs_off_while_the_broker_is_down_and_shows_the_backlog(
    repo, sqlite_url, books, dagster_instance
):
    store_eods(repo, books, DAYS[:1])
    resources = {
        "warehouse": WarehouseResource(url=sqlite_url),
        "publisher": RabbitMqEventPublisher(url=amqp_url("/", port=free_port())),
    }
    first = dg.build_sensor_context(instance=dagster_instance, resources=resources)
    assert isinstance(automation.outbox_relay_sensor(first), dg.RunRequest)
    failed, report = run_relay(dagster_instance, resources)
    assert not failed.success
    assert "failed 2, backlog 2" in report["summary"]

    second = dg.build_sensor_context(
        instance=dagster_instance, resources=resources, cursor=first.cursor
    )
    waiting = automation.outbox_relay_sensor(second)
    state = RelayCursor.from_json(second.cursor)
    assert (state.backlog, state.failures) == (2, 1) and state.retry_at > time.time()
    assert "next attempt in" in waiting.skip_message and "backlog 2" in waiting.skip_message
    assert repo.outbox_events()["attempts"].tolist() == [1, 1]  # no attempt while backing off

    # The broker is back and the back-off has elapsed: the next relay run publishes.
    recovered, report = run_relay(dagster_instance, {**resources, "publisher": LogEventPublisher()})
    assert recovered.success and "published 2" in report["summary"]
    after = dg.build_sensor_context(
        instance=dagster_instance, resources=resources, cursor=second.cursor
    )
    assert "nothing to publish" in automation.outbox_relay_sensor(after).skip_message
    assert RelayCursor.from_json(after.cursor) == RelayCursor(0, 0, 0.0)


def test_the_relay_sensor_requests_no_second_relay_run_while_one_is_in_flight(
    repo, sqlite_url, books, dagster_instance
):
    store_eods(repo, books, DAYS[:1])
    resources = {"warehouse": WarehouseResource(url=sqlite_url)}
    context = dg.build_sensor_context(instance=dagster_instance, resources=resources)
    assert isinstance(automation.outbox_relay_sensor(context), dg.RunRequest)
    running = dg.DagsterRun(
        job_name=automation.RELAY_JOB, run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED
    )
    dagster_instance.add_run(running)

    skipped = automation.outbox_relay_sensor(context)

    assert f"relay run {running.run_id} is started; backlog 2" in skipped.skip_message
    # A relay launched by hand meanwhile waits for the relay pool's one slot.
    assert automation.relay_outbox.pool == automation.RELAY_POOL


class SlowBroker:
    """A publisher whose every batch takes ``seconds`` to be confirmed, recording the order."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sent: list[str] = []

    def publish(self, events) -> None:
        time.sleep(self.seconds)
        self.sent += [e.event_id for e in events]


def test_a_relay_pass_starts_no_batch_after_its_deadline_and_the_next_pass_keeps_the_order(
    repo, books
):
    store_eods(repo, books, DAYS[:2])
    broker = SlowBroker(0.2)

    first = relay_once(repo, broker, batch=1, deadline=time.monotonic() + 0.1)
    assert (first.published, first.failed, first.backlog) == (1, 0, 3)
    rest = relay_once(repo, broker, batch=1, deadline=time.monotonic() + 60)

    assert (rest.published, rest.failed, rest.backlog) == (3, 0, 0)
    assert broker.sent == repo.outbox_events()["event_id"].tolist()


def test_the_relay_sensor_never_waits_on_the_broker_and_ticks_well_inside_the_sensor_timeout(
    repo, sqlite_url, books, dagster_instance
):
    store_eods(repo, books, DAYS)
    assert "publisher" not in automation.outbox_relay_sensor.required_resource_keys
    context = dg.build_sensor_context(
        instance=dagster_instance, resources={"warehouse": WarehouseResource(url=sqlite_url)}
    )
    started = time.monotonic()
    assert isinstance(automation.outbox_relay_sensor(context), dg.RunRequest)
    worst_tick = time.monotonic() - started

    assert worst_tick <= 40 < 60  # DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS defaults to 60
    # The run's own bound: no batch after RELAY_RUN_SECONDS, confirms within
    # RELAY_CONFIRM_SECONDS after a 5 s connect, inside the run's max runtime.
    publisher = RabbitMqEventPublisher(url=amqp_url("/")).publisher(
        timeout=automation.RELAY_CONFIRM_SECONDS
    )
    assert isinstance(publisher, RabbitMQPublisher)
    worst_run = automation.RELAY_RUN_SECONDS + publisher.connect_timeout
    worst_run += publisher.confirm_timeout
    assert worst_run < automation.RELAY_MAX_RUNTIME_SECONDS
    tags = automation.outbox_relay_job.tags
    assert tags["dagster/max_runtime"] == str(automation.RELAY_MAX_RUNTIME_SECONDS)
