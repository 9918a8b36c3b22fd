"""`desk backfill`, `desk relay` and `desk consume` against the real RabbitMQ, end to end."""

import json
import os
import subprocess
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.consumer import declare_queue, parse_event
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.broker import (
    TcpProxy,
    amqp_url,
    channel_on,
    drain,
    free_port,
    temporary_vhost,
)
from desk_pipeline_tests.e2e.driver import DESK, wait_for_line
from desk_pipeline_tests.e2e.event_desk import BOOKS, DAYS, landing_desk, relay_running, run_desk

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def vhost():
    with temporary_vhost() as name:
        yield name


@pytest.fixture
def desk_env(tmp_path) -> dict:
    return landing_desk(tmp_path)


def declare(url: str, *queues: str) -> None:
    connection, channel = channel_on(url)
    for queue in queues:
        declare_queue(channel, queue)
    connection.close()


def test_a_backfill_of_n_days_for_m_books_puts_n_times_m_valid_events_in_date_order_per_book(
    desk_env, vhost
):
    url = amqp_url(vhost)
    declare(url, "q.audit", "q.ranking")
    env = {**desk_env, "DESK_EVENT_PUBLISHER": f"rabbitmq:{url}"}

    backfill = run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[-1], "--json")

    assert (backfill["events_published"], backfill["events_pending"]) == (6, 0)
    messages = drain(url, "q.audit", expect=6)
    assert len(messages) == 6
    order: dict[str, list[str]] = {}
    for _, properties, body in messages:
        event = parse_event(body)  # raises unless valid against the shipped JSON Schema
        assert properties.message_id == event["event_id"] and properties.delivery_mode == 2
        order.setdefault(event["book_id"], []).append(event["business_date"])
    assert order == {book: DAYS for book in BOOKS}
    repo = PositionRepository(env["DESK_WAREHOUSE_URL"])
    for payload in repo.outbox_events()["payload"]:
        parse_event(payload)

    # The backfill ranked every day already: only a ranking that is missing is requested again.
    with repo.engine.begin() as conn:
        r = t.collateral_rankings
        conn.execute(r.delete().where(r.c.book_id == BOOKS[0], r.c.business_date == DAYS[1]))
    stats = run_desk(env, "consume", "--queue", "q.ranking", "--idle-exit", "1", "--json")

    assert (stats["received"], stats["applied"], stats["duplicates"]) == (6, 6, 0)
    assert stats["outcomes"] == {"fresh": 5, "ranking_requested": 1}
    eod_snapshot = repo.eod(BOOKS[0], DAYS[1])[0]["snapshot_id"]
    assert set(repo.ranking(BOOKS[0], DAYS[1])["snapshot_id"]) == {eod_snapshot}
    assert repo.inbox_count("eod-ranking") == 6
    repo.engine.dispose()


def test_with_the_broker_unreachable_eods_are_written_and_events_wait_then_all_arrive(
    desk_env, vhost, tmp_path
):
    url = amqp_url(vhost)
    declare(url, "q.audit")
    proxy = TcpProxy(free_port())  # not started: the broker is unreachable through it
    env = {**desk_env, "DESK_EVENT_PUBLISHER": f"rabbitmq:{amqp_url(vhost, port=proxy.port)}"}

    backfill = run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[-1], "--json")

    assert (backfill["events_published"], backfill["events_pending"]) == (0, 6)
    repo = PositionRepository(env["DESK_WAREHOUSE_URL"])
    assert all(repo.eod(book, day) is not None for book in BOOKS for day in DAYS)
    try:
        with relay_running(env, tmp_path / "relay.log", repo, drain_seconds=30) as log:
            wait_for_line(log, "retrying in 2.0s", 60)
            assert "retrying in 1.0s" in log.read_text()  # exponential: 1 s, then 2 s (the cap)
            assert repo.outbox_backlog() == 6
            proxy.start()
            messages = drain(url, "q.audit", expect=6, deadline_s=60)
    finally:
        proxy.stop()
    ids = {parse_event(body)["event_id"] for _, _, body in messages}
    assert ids == set(repo.outbox_events()["event_id"]) and len(messages) == 6
    assert repo.outbox_backlog() == 0
    with repo.engine.begin() as conn:
        attempts = conn.execute(sa.select(sa.func.max(t.outbox.c.attempts))).scalar()
    assert attempts >= 2
    repo.engine.dispose()


def test_relay_once_reports_waiting_events_and_exits_non_zero_while_the_broker_is_down(
    tmp_path,
):
    closed = f"rabbitmq:amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DESK_WAREHOUSE_URL": f"sqlite:///{tmp_path}/warehouse.db",
        "DESK_EVENT_PUBLISHER": closed,
    }
    repo = PositionRepository(env["DESK_WAREHOUSE_URL"])
    repo.keep_last_eod(
        pd.DataFrame(
            [
                {
                    "book_id": f"B-{uuid.uuid4().hex[:4]}",
                    "instrument_id": "DE0001",
                    "quantity": 1.0,
                    "avg_price": 1.0,
                    "realized_pnl": 0.0,
                    "business_date": DAYS[0],
                    "as_of": pd.Timestamp(DAYS[1], tz="UTC"),
                }
            ]
        ),
        1,
    )
    result = subprocess.run(
        [DESK, "relay", "--once", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"published": 0, "failed": 1, "parked": 0, "backlog": 1}
    assert result.stderr.strip().splitlines()[-1].startswith("desk: relay: 1 events wait")
    repo.engine.dispose()
