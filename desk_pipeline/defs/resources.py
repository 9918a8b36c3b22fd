"""Settings from the environment (read here and nowhere else) and the resources built from them."""

import dataclasses
import functools
import os
from pathlib import Path

import dagster as dg
import pandas as pd

from desk_pipeline.adapters.haircut_schedules import load_schedule
from desk_pipeline.adapters.publisher import EventPublisher, publisher_from
from desk_pipeline.adapters.trade_sources import TradeSource, trade_source_from
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.haircuts import HaircutSchedule

DEFAULT_START_DATE = "2026-01-01"


@dataclasses.dataclass(frozen=True)
class DeskSettings:
    """The desk's configuration: the DESK_* variables of the contract, with working defaults."""

    warehouse_url: str
    trade_source: str
    timezone: str
    start_date: str
    event_publisher: str
    haircut_schedule: str
    # Freshness check on intraday_positions: hours (cron hour field) and maximum snapshot age.
    desk_hours: str = "0-23"
    intraday_freshness_minutes: int = 20
    # Quality and housekeeping: quarantined share of received rows; intraday snapshot retention.
    max_quarantine_rate: float = 0.05
    intraday_retention_days: int = 7
    # Collateral: the largest share of a book's eligible lendable value one issuer may hold.
    issuer_concentration_limit: float = 0.25

    @classmethod
    def from_env(cls) -> "DeskSettings":
        """Read the DESK_* variables; unset ones take the defaults of ARCHITECTURE.md."""
        home = Path(os.environ.get("DAGSTER_HOME") or "./.desk").resolve()
        return cls(
            warehouse_url=os.environ.get("DESK_WAREHOUSE_URL") or f"sqlite:///{home}/warehouse.db",
            trade_source=os.environ.get("DESK_TRADE_SOURCE") or "simulator",
            timezone=os.environ.get("DESK_TIMEZONE") or "UTC",
            start_date=os.environ.get("DESK_START_DATE") or DEFAULT_START_DATE,
            event_publisher=os.environ.get("DESK_EVENT_PUBLISHER") or "log",
            haircut_schedule=os.environ.get("DESK_HAIRCUT_SCHEDULE") or "",
            desk_hours=os.environ.get("DESK_HOURS") or "0-23",
            intraday_freshness_minutes=int(os.environ.get("DESK_FRESHNESS_MINUTES") or 20),
            max_quarantine_rate=float(os.environ.get("DESK_MAX_QUARANTINE_RATE") or 0.05),
            intraday_retention_days=int(os.environ.get("DESK_INTRADAY_RETENTION_DAYS") or 7),
            issuer_concentration_limit=float(
                os.environ.get("DESK_ISSUER_CONCENTRATION_LIMIT") or 0.25
            ),
        )


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
