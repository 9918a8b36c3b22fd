"""The Kafka consumer on Tansu: the inbox, offsets after it, the dead-letter topic."""

import signal
import subprocess
import sys

import confluent_kafka
import pytest

from desk_pipeline.adapters.consumer import EodRankingHandler, InboxConsumer, parse_event
from desk_pipeline.adapters.kafka import KafkaPublisher, KafkaSettings
from desk_pipeline.adapters.kafka_consumer import consume_kafka
from desk_pipeline.adapters.relay import relay_once
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.builders import store_eods
from desk_pipeline_tests.kafka_broker import committed, new_topic, read_topic

pytestmark = pytest.mark.kafka

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]


@pytest.fixture
def settings(tansu) -> KafkaSettings:
    return KafkaSettings.from_spec(f"kafka:{tansu.bootstrap}?topic={new_topic(tansu.bootstrap)}")


@pytest.fixture
def repo(sqlite_url):
    repository = PositionRepository(sqlite_url)
    yield repository
    repository.engine.dispose()


def publish(repo: PositionRepository, settings: KafkaSettings) -> int:
    return relay_once(repo, KafkaPublisher(settings)).published


def consume(settings: KafkaSettings, consumer: InboxConsumer):
    # A short session makes Tansu's group join take about a second instead of ~23 s.
    return consume_kafka(settings, consumer, idle_seconds=1.0, session_timeout=2.0)


def test_a_poison_message_goes_to_the_dead_letter_topic_with_its_reason_and_the_rest_flows(
    repo, settings, books
):
    store_eods(repo, books, DAYS[:1])
    assert publish(repo, settings) == 3
    producer = confluent_kafka.Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(settings.topic, key=books[0].encode(), value=b"\x00 not json")
    assert producer.flush(10) == 0
    store_eods(repo, books, DAYS[1:])
    assert publish(repo, settings) == 6

    applied: list[tuple[str, str]] = []
    calls: list[bytes] = []
    handler = EodRankingHandler(repo, lambda b, d: None)

    def recording(body: bytes) -> str:
        calls.append(body)
        outcome = handler(body)
        event = parse_event(body)
        if (event["book_id"], event["business_date"]) == (books[1], DAYS[1]) and len(
            [c for c in calls if c == body]
        ) < 3:
            raise RuntimeError("the ranking run failed")  # twice: retried in place
        applied.append((event["book_id"], event["business_date"]))
        return outcome

    consumer = InboxConsumer(repo, "ranking", recording, max_attempts=3)
    stats = consume(settings, consumer)

    # Not an event at all: dead-lettered at its first attempt, no retry can make it one.
    assert calls.count(b"\x00 not json") == 1
    assert (stats.received, stats.applied, stats.retried, stats.dead_lettered) == (12, 9, 2, 1)
    assert repo.inbox_count("ranking") == 9
    for book in books:  # each book's events applied in business-date order, poison or not
        assert [day for b, day in applied if b == book] == DAYS
    (dead,) = read_topic(settings.bootstrap_servers, settings.dead_letter_topic, expect=1)
    assert (dead.key, dead.value) == (books[0].encode(), b"\x00 not json")
    assert dead.headers["reason"].startswith(b"InvalidEventError: event body is not JSON")
    assert (dead.headers["consumer"], dead.headers["attempts"]) == (b"ranking", b"1")
    assert dead.headers["source"].startswith(f"{settings.topic}/".encode())
    # Every offset, the poison message's included, was committed: nothing comes back.
    again = consume(settings, InboxConsumer(repo, "ranking", recording, max_attempts=3))
    assert again.received == 0


# SIGKILLs itself right after the inbox write of its Nth event, before that offset's commit.
KILLED_AFTER_INBOX_WRITE = """
import os, signal, sys
from desk_pipeline.adapters.consumer import InboxConsumer
from desk_pipeline.adapters.kafka import KafkaSettings
from desk_pipeline.adapters.kafka_consumer import consume_kafka
from desk_pipeline.adapters.warehouse import PositionRepository

class KilledAfterInboxWrite(PositionRepository):
    def record_inbox(self, consumer, event_id):
        written = super().record_inbox(consumer, event_id)
        if self.inbox_count(consumer) == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
        return written

repo = KilledAfterInboxWrite(sys.argv[1])
consumer = InboxConsumer(repo, "audit", lambda body: "recorded")
consume_kafka(KafkaSettings.from_spec(sys.argv[2]), consumer, idle_seconds=30, session_timeout=2)
"""


def test_offsets_are_committed_after_the_inbox_write_so_a_kill_between_costs_one_duplicate(
    repo, sqlite_url, settings, books
):
    store_eods(repo, books, DAYS)
    assert publish(repo, settings) == 9
    spec = f"kafka:{settings.bootstrap_servers}?topic={settings.topic}"

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_INBOX_WRITE, sqlite_url, spec, "4"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert repo.inbox_count("audit") == 4
    offsets = committed(settings.bootstrap_servers, "audit", settings.topic)
    assert sum(max(0, offset) for offset in offsets.values()) == 3  # the 4th was not committed
    calls: list[bytes] = []
    restarted = InboxConsumer(repo, "audit", lambda body: calls.append(body) or "recorded")
    # The killed member holds the partitions until its 2 s session lapses; the restarted one
    # may first be assigned none, so its idle clock must outlast that rebalance.
    stats = consume_kafka(settings, restarted, idle_seconds=6.0, session_timeout=2.0)
    assert (stats.received, stats.applied, stats.duplicates) == (6, 5, 1)
    assert len(calls) == 5 and repo.inbox_count("audit") == 9
