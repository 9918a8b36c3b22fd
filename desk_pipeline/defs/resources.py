"""The resources built from the desk's settings: one class per trade source and publisher kind."""

import abc
from pathlib import Path
from typing import ClassVar

import dagster as dg
import pandas as pd

from desk_pipeline.adapters.haircut_schedules import load_schedule
from desk_pipeline.adapters.publisher import (
    EventPublisher,
    LogPublisher,
    PublishError,
    RabbitMQPublisher,
)
from desk_pipeline.adapters.trade_sources import (
    LandingFolderSource,
    SimulatorSource,
    TradeSource,
    TradeSourceError,
)
from desk_pipeline.adapters.warehouse import PositionRepository, open_repository
from desk_pipeline.defs.settings import ENVIRONMENT, DeskSettings
from desk_pipeline.domain.collateral.schedule import HaircutSchedule


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (DESK_WAREHOUSE_URL): SQLite by default, PostgreSQL in production.

    ``timezone`` (DESK_TIMEZONE), when given, must be the one the warehouse's business days are
    cut in: recorded by the first process that opens it, checked by every other.
    """

    url: str
    intraday_retention_days: int = 7
    timezone: str | None = None

    def repository(self) -> PositionRepository:
        """The repository over this warehouse, migrated to the latest schema.

        Raises:
            TimezoneMismatchError: the warehouse's days are cut in another time zone.
        """
        repository = open_repository(self.url)
        if self.timezone is not None:
            repository.require_timezone(self.timezone, f"DESK_TIMEZONE={self.timezone}")
        return repository


class TradeSourceResource(dg.ConfigurableResource, abc.ABC):
    """Where trades, reference data and marks come from (DESK_TRADE_SOURCE): one class per kind."""

    # The kind labels quarantine rows: unlike the whole setting, it never carries credentials.
    kind: ClassVar[str]

    @abc.abstractmethod
    def source(self) -> TradeSource:
        """The configured trade source."""


class SimulatorTradeSource(TradeSourceResource):
    """The deterministic demo desk (DESK_TRADE_SOURCE=simulator)."""

    kind: ClassVar[str] = "simulator"

    def source(self) -> TradeSource:
        """The simulator."""
        return SimulatorSource()


class LandingFolderTradeSource(TradeSourceResource):
    """A folder of landing CSV files (DESK_TRADE_SOURCE=landing:<folder>)."""

    kind: ClassVar[str] = "landing"
    folder: str

    def source(self) -> TradeSource:
        """The landing folder, ``~`` expanded."""
        return LandingFolderSource(Path(self.folder).expanduser())


class SqlTradeSource(TradeSourceResource):
    """A trades table in another database (DESK_TRADE_SOURCE=sql:<url>).

    ``url`` is the SQLAlchemy URL; the ``sql:`` prefix is accepted so that the setting itself
    can be bound through ``dg.EnvVar``, which keeps the URL's credentials out of the UI.
    """

    kind: ClassVar[str] = "sql"
    url: str

    def source(self) -> TradeSource:
        """The upstream table's source."""
        # Imported here, as the Kafka adapter below: only a desk that uses it pays for it.
        from desk_pipeline.adapters.sql_source import SqlTableSource

        return SqlTableSource(self.url.removeprefix("sql:"))


class PublisherResource(dg.ConfigurableResource, abc.ABC):
    """Where PositionSnapshotCreated events go (DESK_EVENT_PUBLISHER): one class per kind."""

    @abc.abstractmethod
    def publisher(self, timeout: float | None = None) -> EventPublisher:
        """The configured event publisher.

        Args:
            timeout: the longest a publish call may wait for the broker's confirms (delivery
                reports), seconds; ``None``: the adapter's default.
        """


class LogEventPublisher(PublisherResource):
    """Events go to the log (DESK_EVENT_PUBLISHER=log)."""

    def publisher(self, timeout: float | None = None) -> EventPublisher:
        """The log publisher (never waits)."""
        return LogPublisher()


class RabbitMqEventPublisher(PublisherResource):
    """Events go to a RabbitMQ exchange (DESK_EVENT_PUBLISHER=rabbitmq:<amqp url>).

    ``url`` is the AMQP URL; the ``rabbitmq:`` prefix is accepted so that the setting itself
    can be bound through ``dg.EnvVar``, which keeps the URL's credentials out of the UI.
    """

    url: str

    def publisher(self, timeout: float | None = None) -> EventPublisher:
        """The RabbitMQ publisher; ``timeout`` bounds the wait for publisher confirms."""
        url = self.url.removeprefix("rabbitmq:")
        if timeout is None:
            return RabbitMQPublisher(url)
        return RabbitMQPublisher(url, confirm_timeout=timeout)


class KafkaEventPublisher(PublisherResource):
    """Events go to a Kafka topic (DESK_EVENT_PUBLISHER=kafka:<servers>[?topic=…&…]).

    ``spec`` is the whole setting, as the contract writes it: its librdkafka properties may
    hold credentials (SASL), so it is bound through ``dg.EnvVar`` when set.
    """

    spec: str

    def publisher(self, timeout: float | None = None) -> EventPublisher:
        """The Kafka publisher (PublishError on a spec that names no broker).

        ``timeout`` bounds the wait for delivery reports (``message.timeout.ms``).
        """
        from desk_pipeline.adapters.kafka import KafkaPublisher, KafkaSettings

        settings = KafkaSettings.from_spec(self.spec)
        if timeout is None:
            return KafkaPublisher(settings)
        return KafkaPublisher(settings, delivery_timeout=timeout)


class HaircutScheduleResource(dg.ConfigurableResource):
    """The haircut schedule (DESK_HAIRCUT_SCHEDULE; empty = the packaged Basel CRE22 table).

    Also carries the collateral policy's issuer concentration limit
    (DESK_ISSUER_CONCENTRATION_LIMIT), the other rule the ranking is judged by.
    """

    path: str = ""
    issuer_concentration_limit: float = 0.25

    def schedule(self) -> HaircutSchedule:
        """The parsed schedule."""
        return load_schedule(self.path or None)


class CalendarResource(dg.ConfigurableResource):
    """The business-day time zone (DESK_TIMEZONE)."""

    timezone: str = "UTC"

    def now(self) -> pd.Timestamp:
        """The wall clock, UTC; assets ask here so tests can pin it."""
        return pd.Timestamp.now(tz="UTC")


def _bound(settings: DeskSettings, field: str) -> str | dg.EnvVar:
    # EnvVar keeps a URL with credentials out of the UI, but fails at launch when unset: a
    # value no variable was set for (a default, an explicit setting) is bound as it is.
    name = ENVIRONMENT[field]
    return dg.EnvVar(name) if name in settings.set_variables else str(getattr(settings, field))


def trade_source_resource(settings: DeskSettings) -> TradeSourceResource:
    """The trade source resource DESK_TRADE_SOURCE names (validated by DeskSettings)."""
    kind, _, argument = settings.trade_source.partition(":")
    if kind == "simulator":
        return SimulatorTradeSource()
    if kind == "landing":
        return LandingFolderTradeSource(folder=argument)
    if kind == "sql":
        return SqlTradeSource(url=_bound(settings, "trade_source"))
    raise TradeSourceError(f"DESK_TRADE_SOURCE={settings.trade_source!r} is not understood")


def publisher_resource(settings: DeskSettings) -> PublisherResource:
    """The event publisher resource DESK_EVENT_PUBLISHER names (validated by DeskSettings)."""
    kind = settings.event_publisher.partition(":")[0]
    if kind == "log":
        return LogEventPublisher()
    if kind == "rabbitmq":
        return RabbitMqEventPublisher(url=_bound(settings, "event_publisher"))
    if kind == "kafka":
        return KafkaEventPublisher(spec=_bound(settings, "event_publisher"))
    raise PublishError(f"DESK_EVENT_PUBLISHER={settings.event_publisher!r} is not understood")


def resources_from(settings: DeskSettings) -> dict[str, dg.ConfigurableResource]:
    """The resources every asset, sensor and the CLI use, bound once."""
    return {
        "warehouse": WarehouseResource(
            url=_bound(settings, "warehouse_url"),
            intraday_retention_days=settings.intraday_retention_days,
            timezone=settings.timezone,
        ),
        "trade_source": trade_source_resource(settings),
        "publisher": publisher_resource(settings),
        "calendar": CalendarResource(timezone=settings.timezone),
        "haircuts": HaircutScheduleResource(
            path=settings.haircut_schedule,
            issuer_concentration_limit=settings.issuer_concentration_limit,
        ),
    }
