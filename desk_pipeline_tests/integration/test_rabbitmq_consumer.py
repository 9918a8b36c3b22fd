"""Consumers against the real RabbitMQ: inbox idempotency, retries, the dead-letter queue."""

import datetime as dt
import uuid

import pandas as pd
import pytest

from desk_pipeline.adapters.consumer import (
    BrokerUnreachableError,
    ConsumerError,
    Delivery,
    EodRankingHandler,
    InboxConsumer,
    consume,
    declare_queue,
    parse_event,
)
from desk_pipeline.adapters.publisher import routing_key
from desk_pipeline.adapters.warehouse import PositionRepository, now_micros
from desk_pipeline.domain.positions.snapshots import PositionSnapshotCreated
from desk_pipeline_tests.broker import (
    amqp_url,
    channel_on,
    drain,
    publish_raw,
    temporary_vhost,
)
from desk_pipeline_tests.builders import with_micro_units

pytestmark = pytest.mark.rabbitmq

DAY = "2026-03-02"
AS_OF = pd.Timestamp("2026-03-03", tz="UTC")


@pytest.fixture(scope="module")
def vhost():
    with temporary_vhost() as name:
        yield name


@pytest.fixture
def repo(sqlite_url):
    repository = PositionRepository(sqlite_url)
    yield repository
    repository.engine.dispose()


def event_json(book: str, snapshot_id: str | None = None, positions: int = 1) -> str:
    return PositionSnapshotCreated(
        book_id=book,
        business_date=DAY,
        as_of=AS_OF.to_pydatetime(),
        snapshot_id=snapshot_id or str(uuid.uuid4()),
        position_count=positions,
        restatement=False,
        occurred_at=dt.datetime.now(dt.UTC),
    ).to_json()


def test_poison_messages_are_dead_lettered_with_why_while_good_ones_are_applied(repo, vhost):
    # Not an event at all: at its first attempt. A message whose ranking run fails: after N.
    url = amqp_url(vhost)
    book = f"B-{uuid.uuid4().hex[:6]}"
    queue = f"q.poison.{uuid.uuid4().hex[:8]}"
    connection, channel = channel_on(url)
    dead_letters = declare_queue(channel, queue, binding_key=routing_key(book), max_attempts=3)
    good = [event_json(book), event_json(book)]
    failing = event_json(book)
    publish_raw(channel, book, good[0], parse_event(good[0])["event_id"])
    publish_raw(channel, book, b"\x00 not json", "poison-1")
    publish_raw(channel, book, failing, parse_event(failing)["event_id"])
    publish_raw(channel, book, good[1], parse_event(good[1])["event_id"])
    connection.close()

    calls: list[bytes] = []
    handler = EodRankingHandler(repo, lambda b, d: None)

    def counting(body: bytes) -> str:
        calls.append(body)
        if body == failing.encode():
            raise RuntimeError("the ranking run failed")
        return handler(body)

    consumer = InboxConsumer(repo, "ranking", counting, max_attempts=3)
    stats = consume(url, queue, consumer, prefetch=5, idle_seconds=1.0)

    assert (calls.count(b"\x00 not json"), calls.count(failing.encode())) == (1, 3)
    assert (stats.applied, stats.retried, stats.dead_lettered) == (2, 2, 2)
    assert repo.inbox_count("ranking") == 2
    dead = {body: properties for _, properties, body in drain(url, dead_letters, expect=2)}
    assert dead.keys() == {b"\x00 not json", failing.encode()}
    poison, failed = dead[b"\x00 not json"], dead[failing.encode()]
    assert poison.headers["reason"].startswith("InvalidEventError: event body is not JSON")
    assert failed.headers["reason"] == "RuntimeError: the ranking run failed"
    assert (poison.headers["attempts"], failed.headers["attempts"]) == (1, 3)
    for copy in (poison, failed):
        assert (copy.headers["consumer"], copy.headers["source"]) == ("ranking", queue)
        assert copy.delivery_mode == 2
    assert (poison.message_id, failed.message_id) == ("poison-1", parse_event(failing)["event_id"])
    assert drain(url, queue, expect=0, deadline_s=0.5) == []


def stored_eod(repo: PositionRepository, book: str, quantity: float = 100.0):
    frame = pd.DataFrame(
        [
            {
                "book_id": book,
                "instrument_id": "DE0001",
                "quantity": quantity,
                "avg_price": 1.0,
                "realized_pnl": 0.0,
                "business_date": DAY,
                "as_of": AS_OF,
            }
        ]
    )
    (write,) = repo.keep_last_eod(with_micro_units(frame), now_micros())
    return write


def ranked(repo: PositionRepository, book: str, snapshot_id: str) -> None:
    repo.replace_rankings(
        [DAY],
        pd.DataFrame(
            [
                {
                    "book_id": book,
                    "business_date": DAY,
                    "instrument_id": "DE0001",
                    "snapshot_id": snapshot_id,
                    "as_of": AS_OF,
                    "rank": 1,
                    "quantity": 100.0,
                    "price": 1.0,
                    "fx_rate": 1.0,
                    "haircut": 0.02,
                    "value": 98.0,
                    "eligible": True,
                    "reason": None,
                }
            ]
        ),
    )


def test_the_ranking_is_requested_only_for_the_current_eod_when_its_ranking_is_not_fresh(repo):
    requested: list[tuple[str, str]] = []
    handler = EodRankingHandler(repo, lambda b, d: requested.append((b, d)))

    first = stored_eod(repo, "B1")
    first_event = event_json("B1", first.snapshot_id).encode()
    ranked(repo, "B1", first.snapshot_id)
    assert handler(first_event) == "fresh"

    restated = stored_eod(repo, "B1", quantity=150.0)  # a later computation replaces the EOD
    assert handler(first_event) == "superseded"  # the restatement's own event will ask
    assert handler(event_json("B1", restated.snapshot_id).encode()) == "ranking_requested"
    assert requested == [("B1", DAY)]

    flat = stored_eod(repo, "B2", quantity=0.0)
    assert handler(event_json("B2", flat.snapshot_id, positions=0).encode()) == "empty"
    assert requested == [("B1", DAY)]


def test_a_redelivered_event_is_acknowledged_without_running_the_handler_again(repo):
    calls: list[bytes] = []

    def handler(body: bytes) -> str:
        calls.append(body)
        return "recorded"

    consumer = InboxConsumer(repo, "audit", handler)
    body = event_json("B1").encode()
    event_id = parse_event(body)["event_id"]
    first = consumer.process(Delivery(body, event_id, attempt=1))
    again = consumer.process(Delivery(body, event_id, attempt=2))
    other = InboxConsumer(repo, "other", handler).process(Delivery(body, event_id, attempt=1))

    assert (first, again, other) == ("ack", "ack", "ack")
    assert len(calls) == 2  # once per consumer, the inbox is keyed by (consumer, event_id)
    assert (consumer.stats.applied, consumer.stats.duplicates) == (1, 1)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        (lambda vhost: amqp_url(vhost).replace("guest:guest", "guest:wrong"), "login"),
        (lambda vhost: amqp_url(f"{vhost}-missing"), "vhost"),
    ],
)
def test_a_broker_that_refuses_the_login_or_vhost_is_a_consumer_error_not_a_wait(
    repo, vhost, url, refused
):
    # Both read "broker unreachable", and the consumer would wait for a broker that answers.
    consumer = InboxConsumer(repo, "ranking", lambda body: "ok")
    with pytest.raises(ConsumerError) as failed:
        consume(url(vhost), "q.refused", consumer, idle_seconds=1.0)
    assert not isinstance(failed.value, BrokerUnreachableError)
    assert f"refused the {refused}, check " in str(failed.value)
    assert "guest:" not in str(failed.value)
