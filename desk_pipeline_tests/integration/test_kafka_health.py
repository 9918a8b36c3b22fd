"""`desk doctor`'s Kafka probe on a real broker (Tansu): reachable, topic present or not, down."""

import uuid

import pytest
from confluent_kafka.admin import AdminClient

from desk_pipeline.adapters.health import broker_finding
from desk_pipeline_tests.broker import free_port
from desk_pipeline_tests.kafka_broker import new_topic

pytestmark = pytest.mark.kafka


def test_the_probe_names_the_broker_and_the_topic_layout(tansu):
    topic = new_topic(tansu.bootstrap, partitions=3)

    found = broker_finding(f"kafka:{tansu.bootstrap}?topic={topic}")

    assert (found.check, found.ok) == ("broker", True)
    assert found.detail == (
        f"Kafka at {tansu.bootstrap} accepts connections (1 broker(s)); "
        f"topic {topic} has 3 partition(s)"
    )


def test_the_probe_reports_a_missing_topic_without_creating_it(tansu):
    absent = f"desk.absent.{uuid.uuid4().hex[:8]}"

    found = broker_finding(f"kafka:{tansu.bootstrap}?topic={absent}")

    assert found.ok and found.detail.endswith(
        f"topic {absent} does not exist yet (`desk consume` creates it)"
    )
    topics = AdminClient({"bootstrap.servers": tansu.bootstrap}).list_topics(timeout=10).topics
    assert absent not in topics


def test_the_probe_fails_in_one_line_when_the_broker_is_down_and_hides_client_properties():
    port = free_port()

    found = broker_finding(f"kafka:127.0.0.1:{port}?sasl.password=secret", timeout=2)

    assert not found.ok
    assert found.detail.startswith(f"Kafka at 127.0.0.1:{port} is not reachable: ")
    assert "\n" not in found.detail and "secret" not in found.detail
