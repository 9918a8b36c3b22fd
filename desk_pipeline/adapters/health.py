"""Read-only probes of the desk's configuration for `desk doctor`: warehouse, source, broker."""

import dataclasses
import os
from pathlib import Path

import confluent_kafka
import pika
import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from confluent_kafka.admin import AdminClient

from desk_pipeline.adapters.configuration import connect_args, unreachable_warehouse
from desk_pipeline.adapters.kafka import KafkaSettings
from desk_pipeline.adapters.publisher import amqp_url_from
from desk_pipeline.adapters.trade_sources import trade_source_from
from desk_pipeline.adapters.warehouse import MIGRATIONS
from desk_pipeline.adapters.warehouse.business_calendar import mismatch_line, recorded_timezone
from desk_pipeline.domain.calendar import same_business_days
from desk_pipeline.domain.errors import DeskPipelineError


@dataclasses.dataclass(frozen=True)
class Finding:
    """One check's outcome: ``ok`` and a sentence an operator can act on."""

    check: str
    ok: bool
    detail: str


def _redacted(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable URL>"


def warehouse_findings(url: str) -> list[Finding]:
    """Whether the warehouse answers and its schema is at the latest migration; never migrates."""
    shown = _redacted(url)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        # Connecting would create an empty file: say what is missing instead.
        return [
            Finding("warehouse", False, f"{shown}: no database file; run `desk backfill` first"),
            Finding("migrations", False, "no warehouse to check"),
        ]
    engine = sa.create_engine(url, connect_args=connect_args(url))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
            current = MigrationContext.configure(conn).get_current_revision()
    except sa.exc.SQLAlchemyError as err:
        # The same line a command prints when it cannot open the warehouse.
        detail = unreachable_warehouse(url, err)
        return [
            Finding("warehouse", False, detail),
            Finding("migrations", False, "no warehouse to check"),
        ]
    finally:
        engine.dispose()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    if current == head:
        migrations = Finding("migrations", True, f"schema at the latest revision {head}")
    else:
        migrations = Finding(
            "migrations",
            False,
            f"schema at revision {current or 'none'}, latest is {head}; "
            "run `desk migrate` (any other desk command applies them too)",
        )
    return [Finding("warehouse", True, f"{shown} answers"), migrations]


def calendar_finding(url: str, timezone: str, quoted: tuple[str, str], reachable: bool) -> Finding:
    """Where the calendar's settings came from, and whether the warehouse's time zone is it.

    Args:
        url: the warehouse (DESK_WAREHOUSE_URL); only read.
        timezone: DESK_TIMEZONE.
        quoted: DESK_START_DATE and DESK_TIMEZONE as messages quote them, with their origin.
        reachable: the warehouse answered (:func:`warehouse_findings`).
    """
    settings = ", ".join(quoted)
    if not reachable:
        return Finding("calendar", False, f"{settings}; no warehouse to check its time zone")
    recorded = recorded_timezone(url)
    if recorded is None:
        return Finding(
            "calendar", True, f"{settings}; the warehouse records its time zone when opened"
        )
    if not same_business_days(recorded, timezone):
        return Finding("calendar", False, mismatch_line(recorded, quoted[1], url))
    return Finding("calendar", True, f"{settings}; the warehouse's days are cut in {recorded}")


def source_finding(spec: str) -> Finding:
    """Whether the trade source named by DESK_TRADE_SOURCE can be read."""
    kind, _, argument = spec.partition(":")
    if kind == "landing":
        folder = Path(argument).expanduser()
        if not folder.is_dir():
            return Finding("source", False, f"landing folder {folder} does not exist")
        if not os.access(folder, os.R_OK | os.X_OK):
            return Finding("source", False, f"landing folder {folder} is not readable")
        files = len(list(folder.glob("*.csv")))
        return Finding("source", True, f"landing folder {folder}: {files} CSV file(s)")
    try:
        source = trade_source_from(spec)
        instruments = len(source.instruments())
    except (DeskPipelineError, OSError, ValueError, sa.exc.SQLAlchemyError) as err:
        return Finding("source", False, f"{kind} source is not readable: {err}")
    return Finding("source", True, f"{kind} source answers ({instruments} instruments)")


def broker_finding(spec: str, timeout: float = 5.0) -> Finding:
    """Whether the event broker of DESK_EVENT_PUBLISHER accepts a connection."""
    kind = spec.partition(":")[0]
    if kind == "log":
        return Finding("broker", True, "events go to the log; no broker to reach")
    if kind == "kafka":
        return _kafka_finding(spec, timeout)
    try:
        url = amqp_url_from(spec)
    except DeskPipelineError as err:
        return Finding("broker", False, str(err))
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    parameters.connection_attempts = 1
    # pika unquotes the vhost ("%2F" -> "/"): shown as the URL path, "/" for the default one.
    shown = f"{parameters.host}:{parameters.port}/{parameters.virtual_host.lstrip('/')}"
    try:
        pika.BlockingConnection(parameters).close()
    except pika.exceptions.AMQPError as err:
        return Finding("broker", False, f"RabbitMQ at {shown} is not reachable: {err!r}")
    return Finding("broker", True, f"RabbitMQ at {shown} accepts connections")


def _kafka_finding(spec: str, timeout: float) -> Finding:
    try:
        settings = KafkaSettings.from_spec(spec)
    except DeskPipelineError as err:
        return Finding("broker", False, str(err))
    shown = f"Kafka at {settings.bootstrap_servers}"
    try:
        # Every topic's metadata: asking for the event topic by name could create it.
        metadata = AdminClient(settings.config()).list_topics(timeout=timeout)
    except confluent_kafka.KafkaException as err:
        return Finding("broker", False, f"{shown} is not reachable: {err.args[0].str()}")
    topic = metadata.topics.get(settings.topic)
    layout = (
        f"topic {settings.topic} has {len(topic.partitions)} partition(s)"
        if topic is not None
        else f"topic {settings.topic} does not exist yet (`desk consume` creates it)"
    )
    return Finding(
        "broker", True, f"{shown} accepts connections ({len(metadata.brokers)} broker(s)); {layout}"
    )
