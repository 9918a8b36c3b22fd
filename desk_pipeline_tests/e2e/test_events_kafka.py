"""`desk backfill`, `relay`, `consume` and `doctor` on a real Kafka-protocol broker (Tansu)."""

import json
import subprocess

import pytest
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.consumer import parse_event
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.broker import TcpProxy, free_port
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
from desk_pipeline_tests.kafka_broker import new_topic, read_topic, running_tansu

pytestmark = pytest.mark.kafka


@pytest.fixture
def desk_env(tmp_path) -> dict:
    return landing_desk(tmp_path)


def events_by_book(records) -> dict[str, list[str]]:
    """Business dates per book in offset order, checking each message against its headers."""
    order: dict[str, list[str]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = parse_event(record.value)  # raises unless valid against the shipped JSON Schema
        assert record.key == event["book_id"].encode()
        assert record.headers["event_id"] == event["event_id"].encode()
        assert record.headers["event_type"] == b"PositionSnapshotCreated"
        assert record.headers["schema_version"] == b"1"
        order.setdefault(event["book_id"], []).append(event["business_date"])
    return order


def test_a_backfill_publishes_n_times_m_events_and_desk_consume_applies_each_exactly_once(
    desk_env, tansu
):
    topic = new_topic(tansu.bootstrap, partitions=3)
    kafka = f"kafka:{tansu.bootstrap}?topic={topic}"
    env = {**desk_env, "DESK_EVENT_PUBLISHER": kafka}

    backfill = run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[-1], "--json")

    assert (backfill["events_published"], backfill["events_pending"]) == (6, 0)
    records = read_topic(tansu.bootstrap, topic, expect=6)
    assert len(records) == 6
    assert events_by_book(records) == {book: DAYS for book in BOOKS}
    repo = PositionRepository(env["DESK_WAREHOUSE_URL"])
    # The backfill ranked every day already: only a ranking that is missing is requested again.
    with repo.engine.begin() as conn:
        r = t.collateral_rankings
        conn.execute(r.delete().where(r.c.book_id == BOOKS[0], r.c.business_date == DAYS[1]))

    stats = run_desk(env, "consume", "--idle-exit", "1", "--json")  # the source: the publisher

    assert (stats["received"], stats["applied"], stats["duplicates"]) == (6, 6, 0)
    assert stats["outcomes"] == {"fresh": 5, "ranking_requested": 1}
    eod_snapshot = repo.eod(BOOKS[0], DAYS[1])[0]["snapshot_id"]
    assert set(repo.ranking(BOOKS[0], DAYS[1])["snapshot_id"]) == {eod_snapshot}
    assert repo.inbox_count("eod-ranking") == 6
    # Offsets were committed: the group's next run finds nothing new.
    again = run_desk(env, "consume", "--source", kafka, "--idle-exit", "1", "--json")
    assert again["received"] == 0
    repo.engine.dispose()


def test_with_the_broker_down_during_the_relay_events_wait_and_all_arrive_when_it_returns(
    desk_env, tmp_path
):
    # Clients reach the broker only through the proxy (it is the advertised listener), so
    # stopping the proxy takes the broker away from every client at once, mid-relay.
    proxy_port = free_port()
    with running_tansu(advertised_port=proxy_port) as broker:
        proxy = TcpProxy(proxy_port, target=("127.0.0.1", broker.port))
        proxy.start()
        topic = new_topic(broker.bootstrap, partitions=3)
        env = {**desk_env, "DESK_EVENT_PUBLISHER": f"kafka:{broker.bootstrap}?topic={topic}"}
        first = run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[0], "--json")
        assert (first["events_published"], first["events_pending"]) == (2, 0)
        repo = PositionRepository(env["DESK_WAREHOUSE_URL"])
        with relay_running(env, tmp_path / "relay.log", repo, drain_seconds=60) as log:
            proxy.stop()  # the broker goes away while the relay runs
            rest = run_desk(env, "backfill", "--start", DAYS[1], "--end", DAYS[-1], "--json")
            assert (rest["events_published"], rest["events_pending"]) == (0, 4)
            assert all(repo.eod(book, day) is not None for book in BOOKS for day in DAYS)
            wait_for_line(log, "retrying in 2.0s", 90)
            assert "retrying in 1.0s" in log.read_text()  # exponential: 1 s, then 2 s (the cap)
            assert repo.outbox_backlog() == 4
            proxy.start()
        records = read_topic(broker.bootstrap, topic, expect=6)
        proxy.stop()
    assert repo.outbox_backlog() == 0
    assert len(records) == 6
    assert {json.loads(r.value)["event_id"] for r in records} == set(
        repo.outbox_events()["event_id"]
    )
    assert events_by_book(records) == {book: DAYS for book in BOOKS}
    with repo.engine.begin() as conn:
        attempts = conn.execute(sa.select(sa.func.max(t.outbox.c.attempts))).scalar()
    assert attempts >= 2
    repo.engine.dispose()


def test_sigterm_stops_the_relay_while_the_kafka_broker_is_down_and_every_event_stays_waiting(
    tmp_path,
):
    env = driver.desk_env(tmp_path, DESK_WAREHOUSE_URL=f"sqlite:///{tmp_path}/warehouse.db")
    with running_tansu() as broker:
        topic = new_topic(broker.bootstrap)
        env["DESK_EVENT_PUBLISHER"] = f"kafka:{broker.bootstrap}?topic={topic}"
    # The broker is gone: the relay fails, backs off, tries again.
    repo = pending_events(env, 3)
    log = tmp_path / "relay.log"
    # Started with SIGTERM ignored, as a parent that ran Dagster hands it down.
    with driver.desk_running(env, log, "relay", "--max-backoff", "2") as relay:
        wait_for_line(log, "retrying in 2.0s", 90)
        assert "retrying in 2.0s" in log.read_text()
        code = driver.stop(relay, "desk relay")  # fails the test if it hangs

    assert (code, last_line(log)) == (143, RELAY_STOPPED)
    assert len(repo.outbox_events()) == 3 and repo.outbox_backlog() == 3  # none lost or marked
    repo.engine.dispose()


def test_doctor_reports_the_kafka_broker_and_its_topic_in_one_line(desk_env, tansu):
    topic = new_topic(tansu.bootstrap, partitions=3)
    env = {**desk_env, "DESK_EVENT_PUBLISHER": f"kafka:{tansu.bootstrap}?topic={topic}"}

    result = subprocess.run([DESK, "doctor"], env=env, capture_output=True, text=True)

    assert [x for x in result.stdout.splitlines() if " broker " in x] == [
        f"ok   broker     Kafka at {tansu.bootstrap} accepts connections (1 broker(s)); "
        f"topic {topic} has 3 partition(s)"
    ]
