"""The PositionSnapshotCreated contract and the relay's back-off, without a broker."""

import datetime as dt
import json
import re
import uuid

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.consumer import InvalidEventError, event_schema, parse_event
from desk_pipeline.adapters.kafka import KafkaPublisher, KafkaSettings
from desk_pipeline.adapters.publisher import (
    PublishError,
    RabbitMQPublisher,
    publisher_from,
    routing_key,
)
from desk_pipeline.adapters.relay import Backoff, RelayCursor, RelayResult
from desk_pipeline.domain.positions.snapshots import PositionSnapshotCreated

ZONES = [dt.UTC, dt.timezone(dt.timedelta(hours=1)), dt.timezone(dt.timedelta(hours=-5))]


def event(**changes) -> PositionSnapshotCreated:
    fields = {
        "book_id": "REPO-1",
        "business_date": "2026-03-02",
        "as_of": dt.datetime(2026, 3, 3, tzinfo=dt.UTC),
        "snapshot_id": str(uuid.uuid4()),
        "position_count": 3,
        "restatement": False,
        "occurred_at": dt.datetime(2026, 3, 3, 0, 5, 1, 123456, tzinfo=dt.UTC),
    }
    return PositionSnapshotCreated(**{**fields, **changes})


def test_the_shipped_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(event_schema())


@settings(deadline=None)  # the first example compiles the schema's regular expressions
@given(
    # Any book id ingest keeps or kept: no C0 control character, DEL or unpaired surrogate (format
    # characters such as U+200B included: books stored before ingest refused them).
    book=st.text(
        st.characters(codec="utf-8", exclude_characters=[*map(chr, range(32)), "\x7f"]),
        min_size=1,
        max_size=64,
    ),
    day=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)),
    # hypothesis wants naive bounds; the zone is drawn separately.
    at=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=dt.datetime(2099, 12, 31),  # noqa: DTZ001
    ),
    zone=st.sampled_from(ZONES),
    positions=st.integers(min_value=0, max_value=10**7),
    restatement=st.booleans(),
)
def test_every_event_the_domain_can_emit_validates_against_the_schema(
    book, day, at, zone, positions, restatement
):
    emitted = event(
        book_id=book,
        business_date=day.isoformat(),
        as_of=at.replace(tzinfo=zone),
        occurred_at=at.replace(tzinfo=zone),
        position_count=positions,
        restatement=restatement,
    )
    assert parse_event(emitted.to_json()) == json.loads(emitted.to_json())
    # Exactly the contract's fields: nothing internal leaks into the published document.
    assert set(json.loads(emitted.to_json())) == set(event_schema()["required"])


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda e: e.pop("snapshot_id"), "(root)"),
        (lambda e: e.update(position_count=-1), "position_count"),
        (lambda e: e.update(restatement="no"), "restatement"),
        (lambda e: e.update(schema_version=2), "schema_version"),
        (lambda e: e.update(as_of="2026-03-03 00:00"), "as_of"),
        # PostgreSQL refuses NUL in a query: the consumer's read failed on every retry.
        (lambda e: e.update(book_id="A\x00B"), "book_id"),
        (lambda e: e.update(book_id="\x1f"), "book_id"),
    ],
)
def test_a_message_that_breaks_the_contract_is_rejected_naming_the_field(change, where):
    body = json.loads(event().to_json())
    change(body)
    with pytest.raises(InvalidEventError, match=re.escape(f"at {where}:")):
        parse_event(json.dumps(body))


def test_an_event_of_a_book_stored_before_ingest_refused_format_characters_stays_valid():
    # Ingest quarantines "BOOK\u200b1" now; a warehouse that stored it before still announces
    # its restated EODs, and a producer must not emit what its own schema refuses.
    assert parse_event(event(book_id="BOOK\u200b1").to_json())["book_id"] == "BOOK\u200b1"


def test_a_consumer_ignores_fields_added_by_a_later_producer():
    body = json.loads(event().to_json()) | {"desk": "London"}
    assert parse_event(json.dumps(body))["desk"] == "London"


@pytest.mark.parametrize("body", [b"\x00 not json", b"[" * 100_000, b"{" * 100_000])
def test_a_body_that_is_not_json_is_an_invalid_event(body):
    # Nested past the parser's stack, it was a RecursionError: retried 5 times, not rejected.
    with pytest.raises(InvalidEventError, match="not JSON"):
        parse_event(body)


def test_back_off_doubles_from_the_first_failure_up_to_its_cap():
    backoff = Backoff(initial=1.0, factor=2.0, maximum=10.0)
    assert [backoff.delay(n) for n in range(7)] == [0.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_the_relay_cursor_keeps_the_backlog_and_backs_off_until_a_pass_succeeds():
    backoff = Backoff(initial=30.0, maximum=600.0)
    failed = RelayResult(published=0, failed=4, backlog=4, error="down")
    first = RelayCursor().after(failed, now=1000.0, backoff=backoff)
    second = first.after(failed, now=1030.0, backoff=backoff)
    assert (first.failures, first.retry_at, second.retry_at) == (1, 1030.0, 1090.0)
    assert RelayCursor.from_json(second.to_json()) == second
    recovered = second.after(RelayResult(4, 0, 0), now=1100.0, backoff=backoff)
    assert recovered == RelayCursor(backlog=0, failures=0, retry_at=0.0)
    assert RelayCursor.from_json("backlog=3") == RelayCursor()  # an older cursor format


def test_the_publisher_spec_names_log_a_rabbitmq_url_or_kafka_servers_and_nothing_else():
    rabbit = publisher_from("rabbitmq:amqp://guest:guest@127.0.0.1:5672/%2F")
    assert isinstance(rabbit, RabbitMQPublisher)
    assert rabbit.url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    kafka = publisher_from("kafka:h1:9092,h2:9092?topic=desk.eod&security.protocol=SASL_SSL")
    assert isinstance(kafka, KafkaPublisher)
    assert kafka.settings == KafkaSettings(
        "h1:9092,h2:9092", "desk.eod", (("security.protocol", "SASL_SSL"),)
    )
    config = kafka.producer_config()
    assert (config["enable.idempotence"], config["acks"]) == (True, "all")
    assert (config["bootstrap.servers"], config["security.protocol"]) == (
        "h1:9092,h2:9092",
        "SASL_SSL",
    )
    assert KafkaSettings.from_spec("kafka:h1:9092").topic == "desk.events"
    assert KafkaSettings.from_spec("kafka:h1:9092").dead_letter_topic == "desk.events.dlq"
    for spec in ("rabbitmq:", "rabbitmq:localhost", "amqp://h"):
        with pytest.raises(PublishError, match="not understood"):
            publisher_from(spec)
    for spec, problem in [
        ("kafka", "names no Kafka broker"),
        ("kafka:", "names no Kafka broker"),
        ("kafka:?topic=x", "names no Kafka broker"),
        ("kafka:h:9092?topic=a/b", "not a Kafka topic name"),
        ("kafka:h:9092?topic", "bad options"),
    ]:
        with pytest.raises(PublishError, match=problem):
            publisher_from(spec)


def test_routing_keys_carry_the_book_so_consumers_can_bind_per_book():
    assert routing_key("REPO-1") == "position_snapshot.created.REPO-1"
