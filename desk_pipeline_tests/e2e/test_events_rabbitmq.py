"""`desk backfill`, `desk relay` and `desk consume` against the real RabbitMQ, end to end."""

import contextlib
import json
import os
import socket
import subprocess
import uuid
from pathlib import Path

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
    publish_raw,
    temporary_vhost,
)
from desk_pipeline_tests.e2e import driver
from desk_pipeline_tests.e2e.driver import DESK, wait_for_line
from desk_pipeline_tests.e2e.event_desk import (
    BOOKS,
    DAYS,
    RELAY_STOPPED,
    landing_desk,
    last_line,
    pending_events,
    relay_running,
    run_desk,
)

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def vhost():
    with temporary_vhost() as name:
        yield name


@pytest.fixture
def desk_env(tmp_path) -> dict:
    return landing_desk(tmp_path)


def run_count(env: dict) -> int:
    with driver.open_instance(Path(env["DAGSTER_HOME"])) as instance:
        return instance.get_runs_count()


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
    repo = pending_events(env, 1)
    result = subprocess.run(
        [DESK, "relay", "--once", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"published": 0, "failed": 1, "parked": 0, "backlog": 1}
    assert result.stderr.strip().splitlines()[-1].startswith("desk: relay: 1 events wait")
    # Once: the relay's own warning said the same line before it (attack).
    assert result.stderr.count("events wait in the outbox") == 1, result.stderr
    repo.engine.dispose()


@contextlib.contextmanager
def unreachable_broker(kind: str):
    """An AMQP URL nobody answers at, and the log line that shows the relay reached that state.

    ``closed``: nothing listens (the relay fails at once and backs off). ``silent``: a listener
    that accepts the connection and never speaks (the relay waits in the AMQP handshake).
    """
    if kind == "closed":
        yield amqp_url("/", port=free_port()), "retrying in 2.0s"
        return
    with socket.create_server(("127.0.0.1", 0)) as silent:
        yield amqp_url("/", port=silent.getsockname()[1]), "Streaming transport linked up"


@pytest.mark.parametrize("kind", ["closed", "silent"])
def test_sigterm_stops_the_relay_while_the_broker_is_unreachable_and_every_event_stays_waiting(
    kind, tmp_path
):
    env = driver.desk_env(tmp_path, DESK_WAREHOUSE_URL=f"sqlite:///{tmp_path}/warehouse.db")
    repo = pending_events(env, 3)
    with unreachable_broker(kind) as (url, state):
        env["DESK_EVENT_PUBLISHER"] = f"rabbitmq:{url}"
        log = tmp_path / "relay.log"
        # Started with SIGTERM ignored, as a parent that ran Dagster hands it down; -v for
        # pika's log, which says when the silent listener took the connection.
        with driver.desk_running(env, log, "-v", "relay", "--max-backoff", "2") as relay:
            wait_for_line(log, state, 60)
            assert state in log.read_text()
            code = driver.stop(relay, "desk relay")  # fails the test if it hangs

    assert (code, last_line(log)) == (143, RELAY_STOPPED)
    events = repo.outbox_events()
    assert len(events) == 3 and repo.outbox_backlog() == 3  # none lost, none marked published
    repo.engine.dispose()


def published(url: str, events: list[dict]) -> None:
    """Publish ``events`` to the event exchange as the relay does (routing key, message id)."""
    connection, channel = channel_on(url)
    for event in events:
        publish_raw(channel, event["book_id"], json.dumps(event), event["event_id"])
    connection.close()


def backfilled_with_a_ranking_missing(
    desk_env: dict[str, str], vhost: str, day: str
) -> tuple[str, dict[str, str], PositionRepository]:
    """DAYS backfilled, their events in queue q.ranking, BOOKS[0]'s ranking of ``day`` deleted.

    Returns:
        The broker's URL, the desk's environment (publishing to it) and its warehouse.
    """
    url = amqp_url(vhost)
    declare(url, "q.ranking")
    env = {**desk_env, "DESK_EVENT_PUBLISHER": f"rabbitmq:{url}"}
    run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[-1], "--json")
    repo = PositionRepository(env["DESK_WAREHOUSE_URL"])
    with repo.engine.begin() as conn:
        r = t.collateral_rankings
        conn.execute(r.delete().where(r.c.book_id == BOOKS[0], r.c.business_date == day))
    return url, env, repo


def test_sigterm_stops_desk_consume_after_it_ran_a_ranking_in_process(desk_env, vhost, tmp_path):
    # Dagster maps SIGTERM onto SIGINT's handler after each in-process run: with SIGINT ignored
    # (a background job) that made `desk consume` ignore SIGTERM after its first ranking.
    _, env, repo = backfilled_with_a_ranking_missing(desk_env, vhost, DAYS[1])
    log = tmp_path / "consume.log"

    with driver.desk_running(env, log, "consume", "--queue", "q.ranking") as consume:
        driver.wait_until("6 events applied", 120, lambda: repo.inbox_count("eod-ranking") == 6)
        code = driver.stop(consume, "desk consume")

    assert set(repo.ranking(BOOKS[0], DAYS[1])["snapshot_id"]) == {
        repo.eod(BOOKS[0], DAYS[1])[0]["snapshot_id"]
    }  # the ranking ran in this process
    assert (code, last_line(log)) == (
        143,
        "desk: consume stopped by SIGTERM; messages not yet acknowledged are delivered again",
    )
    repo.engine.dispose()


def test_desk_consume_outlasts_an_absent_broker_and_a_lost_connection(desk_env, vhost, tmp_path):
    # It exited 1 at once ("broker unreachable") or when the connection dropped ("Transport
    # indicated EOF"): a consumer run as a service ended with the broker's restart.
    url, env, repo = backfilled_with_a_ranking_missing(desk_env, vhost, DAYS[1])
    proxy = TcpProxy(free_port())  # not started: the broker is unreachable through it
    through = {**env, "DESK_EVENT_PUBLISHER": f"rabbitmq:{amqp_url(vhost, port=proxy.port)}"}
    log = tmp_path / "consume.log"
    try:
        with driver.desk_running(through, log, "consume", "--queue", "q.ranking") as consume:
            wait_for_line(log, "connecting again in 2 s", 60)
            assert f"broker 127.0.0.1:{proxy.port} unreachable" in log.read_text()
            assert "connecting again in 1 s" in log.read_text()  # 1 s, 2 s, 4 s ...
            proxy.start()
            driver.wait_until("6 events applied", 120, lambda: repo.inbox_count("eod-ranking") == 6)

            proxy.stop()  # the connection drops under the consumer
            wait_for_line(log, "lost", 60)
            proxy.start()
            again = json.loads(repo.outbox_events()["payload"].iloc[0])
            published(url, [{**again, "event_id": str(uuid.uuid4())}])
            driver.wait_until(
                "the next event applied", 120, lambda: repo.inbox_count("eod-ranking") == 7
            )
            code = driver.stop(consume, "desk consume")
    finally:
        proxy.stop()
    assert f"connection to broker 127.0.0.1:{proxy.port} lost" in log.read_text()
    assert code == 143, log.read_text()[-3000:]
    repo.engine.dispose()


def test_desk_consume_dead_letters_an_event_whose_day_the_calendar_refuses_with_why_and_goes_on(
    desk_env, vhost
):
    # Two events of days that cannot be (a date that does not exist, a day after today), and a
    # real one whose missing ranking the consumer cannot run: it starts its calendar later.
    url, env, repo = backfilled_with_a_ranking_missing(desk_env, vhost, DAYS[0])
    real = json.loads(repo.outbox_events()["payload"].iloc[0])
    published(
        url,
        [
            {**real, "event_id": str(uuid.uuid4()), "business_date": day}
            for day in ("2026-02-30", "2199-12-31")
        ],
    )
    runs = run_count(env)

    consumer_env = {**env, "DESK_START_DATE": DAYS[1]}
    stats = run_desk(consumer_env, "consume", "--queue", "q.ranking", "--idle-exit", "1", "--json")

    # Each bad message once, at once; every other event applied; the consumer ended as asked.
    assert (stats["received"], stats["applied"], stats["retried"], stats["dead_lettered"]) == (
        8,
        5,
        0,
        3,
    )
    assert stats["outcomes"] == {"fresh": 5}
    assert repo.inbox_count("eod-ranking") == 5  # the rejected ones may be replayed once fixed
    assert run_count(env) == runs  # no run started for a day the calendar refuses
    dead = drain(url, "q.ranking.dlq", expect=3)
    reasons = {
        (json.loads(body)["book_id"], json.loads(body)["business_date"]): properties.headers
        for _, properties, body in dead
    }
    assert reasons.keys() == {
        (real["book_id"], "2026-02-30"),
        (real["book_id"], "2199-12-31"),
        (BOOKS[0], DAYS[0]),
    }
    assert reasons[real["book_id"], "2026-02-30"]["reason"] == (
        "InvalidEventError: event is not a valid PositionSnapshotCreated at business_date: "
        "'2026-02-30' is not a 'date'"
    )
    assert reasons[real["book_id"], "2199-12-31"]["reason"].startswith(
        "InvalidRangeError: day 2199-12-31 is after today: the desk's last business day is today"
    )
    assert reasons[BOOKS[0], DAYS[0]]["reason"] == (
        f"InvalidRangeError: day {DAYS[0]} is before DESK_START_DATE={DAYS[1]} (set in the "
        f"environment), the desk's first business day: set DESK_START_DATE to {DAYS[0]} or earlier"
    )
    for headers in reasons.values():
        assert (headers["consumer"], headers["attempts"], headers["source"]) == (
            "eod-ranking",
            1,
            "q.ranking",
        )
    repo.engine.dispose()
