"""The outbox relay on a real Kafka-protocol broker (Tansu): delivery reports, outages, a kill."""

import json
import signal
import subprocess
import sys
import time

import dagster as dg
import pytest

from desk_pipeline.adapters.consumer import EodRankingHandler, InboxConsumer, parse_event
from desk_pipeline.adapters.kafka import KafkaPublisher, KafkaSettings
from desk_pipeline.adapters.kafka_consumer import consume_kafka
from desk_pipeline.adapters.publisher import publisher_from
from desk_pipeline.adapters.relay import relay_once
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs import automation
from desk_pipeline.defs.resources import KafkaEventPublisher, WarehouseResource
from desk_pipeline_tests.broker import free_port
from desk_pipeline_tests.builders import store_eods
from desk_pipeline_tests.kafka_broker import new_topic, read_topic
from desk_pipeline_tests.relay_runs import run_relay

pytestmark = pytest.mark.kafka

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]


@pytest.fixture
def topic(tansu) -> str:
    return new_topic(tansu.bootstrap, partitions=3)


def spec(tansu, topic: str) -> str:
    return f"kafka:{tansu.bootstrap}?topic={topic}"


def test_relay_publishes_each_event_keyed_by_book_with_its_headers_in_order_per_book(
    warehouse_url, tansu, topic, books
):
    repo = PositionRepository(warehouse_url)
    store_eods(repo, books, DAYS)
    publisher = publisher_from(spec(tansu, topic))

    result = relay_once(repo, publisher)

    assert (result.published, result.failed, result.backlog) == (9, 0, 0)
    records = read_topic(tansu.bootstrap, topic, expect=9)
    assert len(records) == 9
    seen: dict[str, list[str]] = {}
    partition_of: dict[str, set[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = parse_event(record.value)
        assert record.key == event["book_id"].encode()
        assert record.headers == {
            "event_id": event["event_id"].encode(),
            "event_type": b"PositionSnapshotCreated",
            "schema_version": b"1",
        }
        seen.setdefault(event["book_id"], []).append(event["business_date"])
        partition_of.setdefault(event["book_id"], set()).add(record.partition)
    assert seen == {book: DAYS for book in books}  # offset order within a partition = day order
    assert all(len(p) == 1 for p in partition_of.values())  # the key keeps a book on one partition
    outbox = repo.outbox_events()
    assert outbox["published_at_us"].notna().all()
    assert {json.loads(r.value)["event_id"] for r in records} == set(outbox["event_id"])
    repo.engine.dispose()


def test_an_unreachable_broker_fails_fast_and_every_event_waits_until_it_returns(
    sqlite_url, tansu, topic, books
):
    repo = PositionRepository(sqlite_url)
    store_eods(repo, books, DAYS[:2])
    closed = KafkaSettings.from_spec(f"kafka:127.0.0.1:{free_port()}?topic={topic}")

    started = time.monotonic()
    down = relay_once(repo, KafkaPublisher(closed, connect_timeout=2))
    assert time.monotonic() - started < 10
    assert (down.published, down.failed, down.backlog) == (0, 6, 6)
    assert "broker unreachable" in down.error
    store_eods(repo, books, DAYS[2:])  # EODs keep being written while the broker is away
    assert repo.outbox_backlog() == 9

    up = relay_once(repo, publisher_from(spec(tansu, topic)))
    assert (up.published, up.backlog) == (9, 0)
    records = read_topic(tansu.bootstrap, topic, expect=9)
    assert {json.loads(r.value)["event_id"] for r in records} == set(
        repo.outbox_events()["event_id"]
    )
    assert len(records) == 9
    assert repo.outbox_events()["attempts"].tolist() == [1] * 6 + [0] * 3
    repo.engine.dispose()


# Dies by SIGKILL once the broker holds the whole batch but before the relay has read a single
# delivery report: the worst moment, since the events are out but the outbox does not know.
KILLED_BEFORE_DELIVERY_REPORTS = """
import os, signal, sys
import confluent_kafka
from desk_pipeline.adapters.kafka import KafkaSettings, KafkaPublisher
from desk_pipeline.adapters.relay import relay_once
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.kafka_broker import read_topic

settings = KafkaSettings.from_spec(sys.argv[2])

class KilledBeforeDeliveryReports(confluent_kafka.Producer):
    def flush(self, *args):
        batch = int(sys.argv[3])
        assert len(read_topic(settings.bootstrap_servers, settings.topic, expect=batch)) == batch
        os.kill(os.getpid(), signal.SIGKILL)

confluent_kafka.Producer = KilledBeforeDeliveryReports
relay_once(PositionRepository(sys.argv[1]), KafkaPublisher(settings))
"""


def test_a_relay_killed_between_send_and_delivery_report_republishes_and_the_inbox_absorbs_it(
    sqlite_url, tansu, topic, books
):
    repo = PositionRepository(sqlite_url)
    writes = store_eods(repo, books, DAYS)
    kafka = spec(tansu, topic)

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_DELIVERY_REPORTS, sqlite_url, kafka, "9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(read_topic(tansu.bootstrap, topic, expect=9)) == 9  # on the broker ...
    assert repo.outbox_backlog() == 9  # ... and still pending in the outbox
    assert relay_once(repo, publisher_from(kafka)).published == 9  # so published a second time
    assert len(read_topic(tansu.bootstrap, topic, expect=18)) == 18

    requested: list[tuple[str, str]] = []
    consumer = InboxConsumer(
        repo, "ranking", EodRankingHandler(repo, lambda b, d: requested.append((b, d)))
    )
    stats = consume_kafka(
        KafkaSettings.from_spec(kafka), consumer, idle_seconds=1.0, session_timeout=2.0
    )

    assert (stats.received, stats.applied, stats.duplicates) == (18, 9, 9)
    assert repo.inbox_count("ranking") == 9
    assert sorted(requested) == sorted((w.book_id, w.business_date) for w in writes)
    repo.engine.dispose()


def test_the_relay_sensor_requests_a_relay_run_that_publishes_to_kafka(
    sqlite_url, tansu, topic, books, dagster_instance
):
    repo = PositionRepository(sqlite_url)
    store_eods(repo, books, DAYS[:1])
    resources = {
        "warehouse": WarehouseResource(url=sqlite_url),
        "publisher": KafkaEventPublisher(spec=spec(tansu, topic)),
    }
    context = dg.build_sensor_context(instance=dagster_instance, resources=resources)

    assert isinstance(automation.outbox_relay_sensor(context), dg.RunRequest)
    result, report = run_relay(dagster_instance, resources)

    assert result.success
    assert "published 3, failed 0, backlog 0" in report["summary"]
    assert len(read_topic(tansu.bootstrap, topic, expect=3)) == 3
    repo.engine.dispose()
