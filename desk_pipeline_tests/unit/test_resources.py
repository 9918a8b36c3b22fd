"""The trade source and the publisher: one resource class per kind, selected from the settings."""

import dagster as dg
import pytest

from desk_pipeline.adapters.publisher import LogPublisher
from desk_pipeline.adapters.trade_sources import LandingFolderSource, SimulatorSource
from desk_pipeline.defs.resources import (
    KafkaEventPublisher,
    LandingFolderTradeSource,
    LogEventPublisher,
    RabbitMqEventPublisher,
    SimulatorTradeSource,
    SqlTradeSource,
    publisher_resource,
    resources_from,
    trade_source_resource,
)
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline_tests.location import desk_settings

SQL = "sql:postgresql+psycopg://desk:s3cret@db.example:5432/booking"
AMQP = "rabbitmq:amqp://desk:s3cret@mq.example:5672/%2F"
KAFKA = "kafka:k1:9092?topic=desk.eod&sasl.password=s3cret"


@pytest.mark.parametrize(
    ("setting", "kind", "resource"),
    [
        ("simulator", "simulator", SimulatorTradeSource()),
        ("landing:/tmp", "landing", LandingFolderTradeSource(folder="/tmp")),
        (SQL, "sql", SqlTradeSource(url=SQL)),
    ],
)
def test_each_trade_source_kind_is_its_own_resource(setting, kind, resource):
    selected = trade_source_resource(desk_settings(trade_source=setting))
    assert selected == resource and selected.kind == kind


@pytest.mark.parametrize("setting", ["simulator", "landing:/tmp", SQL])
def test_what_a_trade_source_delivers_does_not_depend_on_the_calendar(setting):
    # Reference data is not dated: every process (UI, daemon, a desk command in a shell) must
    # read the same master whatever DESK_START_DATE or DESK_TIMEZONE it was started with, or
    # each instruments run rewrites the stored one (maturities once followed the start date).
    calendars = [{}, {"start_date": "2026-11-23"}, {"timezone": "Asia/Tokyo"}]
    sources = {trade_source_resource(desk_settings(trade_source=setting, **c)) for c in calendars}
    assert len(sources) == 1


@pytest.mark.parametrize(
    ("setting", "resource"),
    [
        ("log", LogEventPublisher()),
        (AMQP, RabbitMqEventPublisher(url=AMQP)),
        (KAFKA, KafkaEventPublisher(spec=KAFKA)),
    ],
)
def test_each_publisher_kind_is_its_own_resource(setting, resource):
    assert publisher_resource(desk_settings(event_publisher=setting)) == resource


def test_the_resources_build_the_adapters_they_name(tmp_path):
    assert isinstance(SimulatorTradeSource().source(), SimulatorSource)
    assert isinstance(LandingFolderTradeSource(folder=str(tmp_path)).source(), LandingFolderSource)
    assert isinstance(LogEventPublisher().publisher(), LogPublisher)


def test_settings_read_from_the_environment_reach_dagster_as_env_vars_so_the_ui_hides_them(
    monkeypatch,
):
    monkeypatch.setenv("DESK_WAREHOUSE_URL", "postgresql+psycopg://desk:s3cret@db.example/desk")
    monkeypatch.setenv("DESK_TRADE_SOURCE", SQL)
    monkeypatch.setenv("DESK_EVENT_PUBLISHER", AMQP)
    resources = resources_from(DeskSettings.from_env())
    assert resources["warehouse"].url == dg.EnvVar("DESK_WAREHOUSE_URL")
    assert resources["trade_source"] == SqlTradeSource(url=dg.EnvVar("DESK_TRADE_SOURCE"))
    assert resources["publisher"] == RabbitMqEventPublisher(url=dg.EnvVar("DESK_EVENT_PUBLISHER"))
    assert "s3cret" not in repr(resources)
