"""What each DESK_* value must be before the desk uses it: a problem and its fix, or None.

Each check returns ``"what is wrong; what to do"`` (the text after ``DESK_X=value: `` in the
one-line error every command and `desk doctor` print) or None when the value is usable. Only
cheap, local checks: parsing, and the landing folder on disk. Whether a database answers is
found when the desk first connects (:func:`unreachable_warehouse`).
"""

import datetime as dt
import os
import re
import zoneinfo
from pathlib import Path

import sqlalchemy as sa

from desk_pipeline.domain.calendar import EARLIEST_DAY
from desk_pipeline.domain.errors import DeskPipelineError

# Pseudo-filesystems of the kernel: never a landing zone, and reading some of their files blocks.
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")
# DESK_START_DATE: exactly YYYY-MM-DD (ASCII digits), from the Unix epoch on.
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
EARLIEST_START = dt.date.fromisoformat(EARLIEST_DAY)
WAREHOUSE_EXAMPLE = "sqlite:////srv/desk/warehouse.db or postgresql+psycopg://desk@db:5432/desk"


def shown(value: str) -> str:
    """A value as it may be printed, on one line.

    A database or broker URL loses its password; a character that is not printable (a newline,
    a tab) is shown as its escape.
    """
    for prefix in ("sql:", "rabbitmq:", ""):
        if value.startswith(prefix) and "://" in value:
            try:
                url = sa.make_url(value.removeprefix(prefix))
            except sa.exc.ArgumentError:
                break
            return _printable(prefix + url.render_as_string(hide_password=True))
    return _printable(value)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _database_url_problem(url: str) -> str | None:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return f"not a database URL; use {WAREHOUSE_EXAMPLE}"
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        return f"{backend} databases are not supported; use {WAREHOUSE_EXAMPLE}"
    if backend == "sqlite" and parsed.database and Path(parsed.database).is_dir():
        return "names a folder, not a database file; add a file name such as warehouse.db"
    return None


def warehouse_url_problem(url: str) -> str | None:
    """DESK_WAREHOUSE_URL: a SQLAlchemy URL of SQLite or PostgreSQL."""
    return _database_url_problem(url)


def landing_folder_problem(folder: str) -> str | None:
    """The folder of ``landing:<folder>``: an absolute, existing, readable, ordinary folder."""
    if not folder.strip():
        return "no folder after 'landing:'; use landing:/absolute/path/to/folder"
    path = Path(folder).expanduser()
    if not path.is_absolute():
        # The daemon, the webserver and each shell start in different directories.
        return (
            "the landing folder must be an absolute path (a relative one means another folder "
            "to each process); use landing:/absolute/path/to/folder"
        )
    if not path.exists():
        return "the landing folder does not exist; create it or correct the path"
    if not path.is_dir():
        return "names a file, not a folder; point it at the folder the trade files land in"
    resolved = path.resolve()
    if resolved == Path(resolved.anchor) or str(resolved).startswith(SYSTEM_FOLDERS):
        return (
            f"{resolved} is a system folder, not a landing folder; point it at a folder that "
            "only receives trade files"
        )
    if not os.access(resolved, os.R_OK | os.X_OK):
        return "the desk may not list this folder (permissions); grant it read access"
    return None


def trade_source_problem(spec: str) -> str | None:
    """DESK_TRADE_SOURCE: ``simulator``, ``landing:<folder>`` or ``sql:<database url>``."""
    kind, colon, argument = spec.partition(":")
    if kind == "simulator" and not colon:
        return None
    if kind == "landing":
        return landing_folder_problem(argument)
    if kind == "sql":
        problem = _database_url_problem(argument)
        return None if problem is None else f"after 'sql:' {problem}"
    return (
        f"{kind!r} is not a trade source; use simulator, landing:/absolute/folder or "
        "sql:<database url>"
    )


def timezone_problem(name: str) -> str | None:
    """DESK_TIMEZONE: an IANA time zone name."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "not a time zone of the IANA database; use a name such as UTC or Europe/London"
    return None


def start_date_problem(text: str) -> str | None:
    """DESK_START_DATE: a calendar date, YYYY-MM-DD, from 1970-01-01 on (a future one is usable).

    Strictly YYYY-MM-DD: Python's ``date.fromisoformat`` also reads 20260101 and 2026-W01-1,
    which Dagster's daily partitions (``%Y-%m-%d``) do not; partitions start at the epoch.
    """
    fix = "use YYYY-MM-DD, e.g. 2026-01-01"
    try:
        if not ISO_DATE.fullmatch(text):
            raise ValueError(text)
        date = dt.date.fromisoformat(text)
    except ValueError:
        return f"not a date; {fix}"
    if date < EARLIEST_START:
        return f"before {EARLIEST_START}, where partitions begin; {fix}"
    return None


def event_publisher_problem(spec: str) -> str | None:
    """DESK_EVENT_PUBLISHER: ``log``, ``rabbitmq:<amqp url>`` or ``kafka:<bootstrap servers>``."""
    kind, colon, argument = spec.partition(":")
    if (kind == "log" and not colon) or (kind == "kafka" and argument):
        return None
    if kind == "rabbitmq" and argument.startswith(("amqp://", "amqps://")):
        return amqp_url_problem(argument)
    return (
        "not an event publisher; use log, rabbitmq:amqp://user:password@host:5672/%2F or "
        "kafka:host:9092"
    )


def amqp_url_problem(url: str) -> str | None:
    """Why pika cannot use the AMQP URL ``url`` (a port out of range, a bad option); None if it can.

    Checked with the settings, so that the relay and the consumer do not fail on it later.
    """
    import pika  # late: most desk commands never reach a broker

    try:
        pika.URLParameters(url)
    except ValueError as err:
        return f"not a usable AMQP URL ({err}); e.g. rabbitmq:amqp://user:password@host:5672/%2F"
    return None


def haircut_schedule_problem(path: str) -> str | None:
    """DESK_HAIRCUT_SCHEDULE: empty (the packaged Basel table) or a readable CSV file."""
    if path and not Path(path).expanduser().is_file():
        return "no such file; give the path of a haircut schedule CSV, or unset it for Basel"
    return None


def driver_line(err: BaseException) -> str:
    """The first line of a database error as its driver wrote it.

    SQLAlchemy's own message adds the statement and its parameters ([SQL: ...]) and a link;
    a terminal or an API client gets this line, the traceback (--debug) keeps the rest.
    """
    driver = getattr(err, "orig", None) or err
    lines = str(driver).strip().splitlines()
    return lines[0] if lines else type(driver).__name__


def unreachable_warehouse(url: str, err: Exception) -> str:
    """The one line for a warehouse the desk could not open, naming the setting.

    ``err`` is what opening it raised: a driver error (chained) when it did not answer or is no
    database, or the repository's own error (unchained) when its schema is unusable.
    """
    if isinstance(err, DeskPipelineError) and err.__cause__ is None:
        return f"DESK_WAREHOUSE_URL={shown(url)}: {err}"
    cause: BaseException = err
    while cause.__cause__ is not None:
        cause = cause.__cause__
    reason = driver_line(cause)
    if "not a database" in reason:
        fix = "point it at the desk's warehouse file, or at a path where a new one may be made"
        return f"DESK_WAREHOUSE_URL={shown(url)}: is not a SQLite database ({reason}); {fix}"
    return (
        f"DESK_WAREHOUSE_URL={shown(url)}: the warehouse is not reachable ({reason}); start the "
        "database or correct the URL"
    )


# Seconds a PostgreSQL connection may take to be established before the database "does not
# answer" (libpq's connect_timeout).
CONNECT_TIMEOUT_SECONDS = 10


def connect_args(url: str) -> dict[str, int]:
    """An engine's driver arguments: PostgreSQL's connect timeout, unless ``url`` sets one.

    A host that accepts the TCP connection and never answers would otherwise hold a command,
    a run or a health check forever.
    """
    if not url.startswith("postgresql") or "connect_timeout" in sa.make_url(url).query:
        return {}
    return {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
