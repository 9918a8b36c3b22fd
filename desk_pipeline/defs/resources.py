"""Settings from the environment (read here and nowhere else) and the resources built from them."""

import functools
import os
from pathlib import Path

import dagster as dg
import pandas as pd

from desk_pipeline.adapters.haircut_schedules import load_schedule
from desk_pipeline.adapters.publisher import EventPublisher, publisher_from
from desk_pipeline.adapters.trade_sources import TradeSource, trade_source_from
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.domain.haircuts import HaircutSchedule


@functools.cache
def _repository(url: str) -> PositionRepository:
    # One engine and one migration check per process, however many assets run in it.
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return PositionRepository(url)


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (DESK_WAREHOUSE_URL): SQLite by default, PostgreSQL in production."""

    url: str
    intraday_retention_days: int = 7

    def repository(self) -> PositionRepository:
        """The repository over this warehouse, migrated to the latest schema."""
        return _repository(self.url)


class TradeSourceResource(dg.ConfigurableResource):
    """Where trades, reference data and marks come from (DESK_TRADE_SOURCE)."""

    spec: str = "simulator"

    def source(self) -> TradeSource:
        """The configured trade source."""
        return trade_source_from(self.spec)


class PublisherResource(dg.ConfigurableResource):
    """Where PositionSnapshotCreated events go (DESK_EVENT_PUBLISHER)."""

    spec: str = "log"

    def publisher(self) -> EventPublisher:
        """The configured event publisher."""
        return publisher_from(self.spec)


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


def _secret_or_value(name: str, value: str) -> str | dg.EnvVar:
    # EnvVar keeps a URL with credentials out of the UI, but fails at launch when unset.
    return dg.EnvVar(name) if os.environ.get(name) else value


def resources_from(settings: DeskSettings) -> dict[str, dg.ConfigurableResource]:
    """The resources every asset, sensor and the CLI use, bound once."""
    return {
        "warehouse": WarehouseResource(
            url=_secret_or_value("DESK_WAREHOUSE_URL", settings.warehouse_url),
            intraday_retention_days=settings.intraday_retention_days,
        ),
        "trade_source": TradeSourceResource(
            spec=_secret_or_value("DESK_TRADE_SOURCE", settings.trade_source)
        ),
        "publisher": PublisherResource(
            spec=_secret_or_value("DESK_EVENT_PUBLISHER", settings.event_publisher)
        ),
        "calendar": CalendarResource(timezone=settings.timezone),
        "haircuts": HaircutScheduleResource(
            path=settings.haircut_schedule,
            issuer_concentration_limit=settings.issuer_concentration_limit,
        ),
    }


SETTINGS = DeskSettings.from_env()
