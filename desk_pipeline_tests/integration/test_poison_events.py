"""One event the broker can never take is parked with its reason; the other books' events flow."""

import json
import uuid

import dagster as dg
import pandas as pd
import pytest

from desk_pipeline import queries
from desk_pipeline.adapters.consumer import declare_queue
from desk_pipeline.adapters.publisher import RabbitMQPublisher, routing_key
from desk_pipeline.adapters.relay import relay_once
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs import automation
from desk_pipeline.defs.resources import RabbitMqEventPublisher, WarehouseResource
from desk_pipeline.domain.positions.trades import MAX_BOOK_ID_BYTES, validate_trades
from desk_pipeline_tests.broker import amqp_url, channel_on, drain, free_port, temporary_vhost
from desk_pipeline_tests.builders import store_eods
from desk_pipeline_tests.relay_runs import run_relay

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]
# 60 emoji: 60 characters (within the id length) but 240 bytes, a 266-byte routing key.
POISON_BOOK = "\N{GRINNING FACE}" * 60


@pytest.fixture
def repo(warehouse_url):
    repository = PositionRepository(warehouse_url)
    yield repository
    repository.engine.dispose()


@pytest.mark.rabbitmq
def test_an_event_over_the_routing_key_limit_is_parked_and_the_other_books_flow_in_order(repo):
    tag = uuid.uuid4().hex[:6]
    good = [f"REPO-{tag}", f"SECLEND-{tag}"]
    # Written as an older desk wrote them, before ingestion checked book ids in bytes.
    store_eods(repo, [good[0], POISON_BOOK, good[1]], DAYS)
    with temporary_vhost() as vhost:
        url = amqp_url(vhost)
        queue = f"q.poison.{tag}"
        connection, channel = channel_on(url)
        for book in good:
            declare_queue(channel, queue, binding_key=routing_key(book))
        connection.close()

        first = relay_once(repo, RabbitMQPublisher(url))
        again = relay_once(repo, RabbitMQPublisher(url))
        messages = drain(url, queue, expect=6)

    assert (first.published, first.parked, first.failed) == (6, 1, 0)
    assert (again.published, again.parked, again.failed) == (0, 0, 0)
    delivered = [json.loads(body) for _, _, body in messages]
    for book in good:
        days = [m["business_date"] for m in delivered if m["book_id"] == book]
        assert days == DAYS
    parked = repo.parked_events()
    assert list(parked["book_id"]) == [POISON_BOOK]
    assert parked["business_date"].iloc[0] == DAYS[0]
    assert "routing key is 266 bytes, over AMQP's 255" in parked["parked_reason"].iloc[0]
    # The poison book's later events wait behind it, in order; nothing else is pending.
    assert list(repo.pending_events()["book_id"]) == [POISON_BOOK] * 3
    status = queries.status_document(repo)
    assert status["events_parked_total"] == 1
    assert status["parked_events"][0]["reason"] == parked["parked_reason"].iloc[0]
    by_book = {b["book_id"]: b for b in status["books"]}
    assert by_book[POISON_BOOK]["events_parked"] == 1
    assert by_book[POISON_BOOK]["events_pending"] == 3
    # Put back in the queue (as `desk relay --retry-parked` does), it is parked again.
    assert repo.unpark_events() == 1
    assert repo.parked_events().empty


def test_a_relay_run_reports_the_event_it_parked_and_the_sensor_runs_nothing_for_its_book(
    sqlite_url, dagster_instance
):
    repo = PositionRepository(sqlite_url)
    store_eods(repo, [POISON_BOOK], DAYS)
    # The routing key is refused before any connection: no broker needed.
    resources = {
        "warehouse": WarehouseResource(url=sqlite_url),
        "publisher": RabbitMqEventPublisher(url=amqp_url("/", port=free_port())),
    }
    context = dg.build_sensor_context(instance=dagster_instance, resources=resources)
    assert isinstance(automation.outbox_relay_sensor(context), dg.RunRequest)

    result, report = run_relay(dagster_instance, resources)

    assert result.success
    assert report["summary"] == "published 0, failed 0, backlog 3, parked 1"
    assert (report["parked"], report["parked_total"], report["backlog"]) == (1, 1, 3)
    # The book's later events wait behind the parked one: nothing is publishable.
    skipped = automation.outbox_relay_sensor(context)
    assert skipped.skip_message == "nothing to publish; backlog 3, parked 1"
    repo.engine.dispose()


def test_ingestion_refuses_a_book_id_over_the_transport_bound_in_bytes():
    raw = pd.DataFrame(
        {
            "trade_id": ["T-1", "T-2"],
            "book_id": [POISON_BOOK, "\N{GRINNING FACE}" * (MAX_BOOK_ID_BYTES // 4)],
            "instrument_id": ["DE0001", "DE0001"],
            "quantity": ["1", "1"],
            "price": ["1", "1"],
            "trade_time": ["2026-03-02T10:00:00", "2026-03-02T10:00:00"],
        },
        index=[1, 2],
    )
    trades, rejected = validate_trades(raw, source="landing:t.csv")
    assert list(trades["trade_id"]) == ["T-2"]
    assert list(rejected["reason_code"]) == ["book_id_too_long"]
    assert f"longer than {MAX_BOOK_ID_BYTES} bytes" in rejected["reason"].iloc[0]
