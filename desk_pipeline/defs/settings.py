"""The DESK_* settings: read from the environment and desk.env, validated, each error named."""

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pydantic
import pydantic_settings

from desk_pipeline.adapters import configuration
from desk_pipeline.adapters.warehouse.business_calendar import (
    TimezoneMismatchError,
    mismatch_line,
    recorded_timezone,
)
from desk_pipeline.domain import calendar
from desk_pipeline.domain.errors import InvalidRangeError, SettingsError

DEFAULT_START_DATE = "2026-01-01"
# Bounds of the numbers: a week of freshness limit, ten years of intraday snapshots (beyond
# that the purge's cutoff, a pandas Timedelta, overflows and every tick fails).
MAX_FRESHNESS_MINUTES = 7 * 24 * 60
MAX_RETENTION_DAYS = 3650
# Every hour of the day: the intraday freshness policy's default window.
DEFAULT_DESK_HOURS = "0-23"
NUMBER_PROBLEMS = {"int_parsing": "not a whole number", "float_parsing": "not a number"}
# The settings file beside the Dagster instance and the default warehouse, which `make run`
# writes: the calendar its own processes run with, read by every other desk process on that
# warehouse too (a `desk` in the user's shell, the API), under the variables set in the
# environment. It holds only the calendar, which defines what the stored days mean; the other
# settings, URLs with credentials among them, stay in the environment.
SETTINGS_FILE = "desk.env"
FILE_FIELDS = ("start_date", "timezone")
# Where a value came from, as a message says it after the value: FROM_FILE + the file's path.
FROM_ENVIRONMENT = "set in the environment"
FROM_FILE = "from "
BY_DEFAULT = "the default"


def intraday_deadline_cron(marks: str, hours: str) -> str:
    """The intraday freshness policy's cron: check ``marks`` (minute field) within ``hours``."""
    return f"{marks} {hours} * * *"


def desk_hours_problem(hours: str) -> str | None:
    """DESK_HOURS: a cron hour field (0-23) that makes, in the policy's cron, a valid one.

    Checked by Dagster's own cron validation: the one the freshness policy applies when the
    definitions are built, so a value that passes here never fails the code location's load.
    """
    if hours == DEFAULT_DESK_HOURS:
        # Valid (a unit test checks it): a read command that never builds the definitions
        # does not pay for importing Dagster, over a second, to check it again.
        return None
    from dagster._utils.schedules import is_valid_cron_string

    # The hour field's validity does not depend on the minute field the policy puts before it.
    if is_valid_cron_string(intraday_deadline_cron("0", hours)):
        return None
    return "not a cron hour field of hours 0-23; use a value such as 0-23, 7-18 or 8,12,16"


CHECKS = {
    "warehouse_url": configuration.warehouse_url_problem,
    "trade_source": configuration.trade_source_problem,
    "timezone": configuration.timezone_problem,
    "start_date": configuration.start_date_problem,
    "event_publisher": configuration.event_publisher_problem,
    "haircut_schedule": configuration.haircut_schedule_problem,
    "desk_hours": desk_hours_problem,
}


def desk_home() -> Path:
    """DAGSTER_HOME, else ./.desk, absolute: the instance's folder, the default warehouse's."""
    return Path(os.environ.get("DAGSTER_HOME") or "./.desk").resolve()


def default_warehouse_url() -> str:
    """The contract's warehouse: ``sqlite:///<DAGSTER_HOME or ./.desk, absolute>/warehouse.db``."""
    return f"sqlite:///{desk_home()}/warehouse.db"


def settings_file() -> Path:
    """The settings file `make run` writes: ``<DAGSTER_HOME or ./.desk, absolute>/desk.env``."""
    return desk_home() / SETTINGS_FILE


class DeskSettings(pydantic_settings.BaseSettings):
    """The desk's configuration: the DESK_* variables of the contract, with working defaults.

    Constructed with keywords (field names), settings read nothing from the environment, and a
    bad value raises ``pydantic.ValidationError``; :meth:`from_env` reads the DESK_* variables,
    then the calendar from desk.env (:func:`settings_file`) for those not set, and raises a
    :class:`SettingsError` naming each bad one.
    """

    # Each field's alias is its variable, exactly as the contract spells it (case-sensitive): a
    # value read under another name would reach Dagster as a dg.EnvVar that is not set. Empty
    # variables count as unset; field names stay valid keywords for explicit settings.
    model_config = pydantic_settings.SettingsConfigDict(
        frozen=True, case_sensitive=True, env_ignore_empty=True, validate_by_name=True
    )

    # Computed when settings are built, from DAGSTER_HOME as it is then (never at import).
    warehouse_url: str = pydantic.Field(
        default_factory=default_warehouse_url, validation_alias="DESK_WAREHOUSE_URL"
    )
    trade_source: str = pydantic.Field("simulator", validation_alias="DESK_TRADE_SOURCE")
    timezone: str = pydantic.Field("UTC", validation_alias="DESK_TIMEZONE")
    start_date: str = pydantic.Field(DEFAULT_START_DATE, validation_alias="DESK_START_DATE")
    event_publisher: str = pydantic.Field("log", validation_alias="DESK_EVENT_PUBLISHER")
    haircut_schedule: str = pydantic.Field("", validation_alias="DESK_HAIRCUT_SCHEDULE")
    # Freshness policy of intraday_positions: hours (cron hour field) and maximum snapshot age,
    # at most a week (a policy's window beyond that means no policy, and overflows Dagster's).
    desk_hours: str = pydantic.Field(DEFAULT_DESK_HOURS, validation_alias="DESK_HOURS")
    intraday_freshness_minutes: int = pydantic.Field(
        20, gt=0, le=MAX_FRESHNESS_MINUTES, validation_alias="DESK_FRESHNESS_MINUTES"
    )
    # Quality and housekeeping: quarantined share of received rows; intraday snapshot retention.
    max_quarantine_rate: float = pydantic.Field(
        0.05, ge=0, le=1, validation_alias="DESK_MAX_QUARANTINE_RATE"
    )
    intraday_retention_days: int = pydantic.Field(
        7, ge=1, le=MAX_RETENTION_DAYS, validation_alias="DESK_INTRADAY_RETENTION_DAYS"
    )
    # Collateral: the largest share of a book's eligible lendable value one issuer may hold.
    issuer_concentration_limit: float = pydantic.Field(
        0.25, gt=0, le=1, validation_alias="DESK_ISSUER_CONCENTRATION_LIMIT"
    )
    # Set by from_env: where each field's value came from (FROM_ENVIRONMENT, "from <desk.env>",
    # BY_DEFAULT); None for explicit settings, whose messages quote values alone.
    _origins: dict[str, str] | None = pydantic.PrivateAttr(default=None)

    def __init__(self, **values: Any) -> None:
        # Keywords only: BaseSettings' positional parameters are its own options (_case_sensitive,
        # _env_prefix, ...), so DeskSettings("sqlite://", ...) would silently take every default.
        super().__init__(**values)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[pydantic_settings.BaseSettings],
        init_settings: pydantic_settings.PydanticBaseSettingsSource,
        env_settings: pydantic_settings.PydanticBaseSettingsSource,
        dotenv_settings: pydantic_settings.PydanticBaseSettingsSource,
        file_secret_settings: pydantic_settings.PydanticBaseSettingsSource,
    ) -> tuple[pydantic_settings.PydanticBaseSettingsSource, ...]:
        """Only the keywords given: explicit settings (tests, the API's) ignore the environment."""
        return (init_settings,)

    @pydantic.field_validator(*CHECKS)
    @classmethod
    def _usable(cls, value: str, info: pydantic.ValidationInfo) -> str:
        problem = CHECKS[str(info.field_name)](value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @classmethod
    def from_env(cls) -> "DeskSettings":
        """Read the DESK_* variables, then desk.env; the rest take the defaults of ARCHITECTURE.md.

        A variable set in the environment wins over the file (the contract: configuration is by
        environment variable); the file gives every process on the warehouse `make run`'s
        calendar when its environment does not set one.

        Raises:
            SettingsError: one line per bad variable, ``DESK_X=value: problem; fix`` (``DESK_X=
                value (from <desk.env>): ...`` for a value of the file), or the file's problem.
        """
        file = settings_file()
        from_file, problems = _file_variables(file)
        if problems:
            raise SettingsError(problems)
        environment = _set_variables()
        origins = _origins(environment, from_file, file)
        try:
            settings = cls(**{**from_file, **environment})
        except pydantic.ValidationError as err:
            raise SettingsError([_line(error, origins) for error in err.errors()]) from None
        settings._origins = origins
        return settings

    def quoted(self, field: str) -> str:
        """``DESK_X=value (where it came from)``: a setting as a message quotes it.

        The origin is said for settings read by :meth:`from_env`: FROM_ENVIRONMENT, ``from
        <desk.env>`` or BY_DEFAULT; explicit settings are quoted without one.
        """
        text = f"{ENVIRONMENT[field]}={configuration.shown(str(getattr(self, field)))}"
        origin = (self._origins or {}).get(field)
        return f"{text} ({origin})" if origin else text

    def today(self) -> str:
        """Today's date in DESK_TIMEZONE, YYYY-MM-DD: the last day of the desk calendar."""
        return calendar.business_day_of(pd.Timestamp.now(tz="UTC"), self.timezone)

    def calendar_days(self, first: str, last: str) -> list[str]:
        """The days ``first``..``last`` (YYYY-MM-DD): DESK_START_DATE to today, or refused.

        What a run needs of its days (`desk backfill`, a ranking request): daily partitions.

        Raises:
            InvalidRangeError: a reversed range, days before DESK_START_DATE or after today;
                the message names the fix (desk_pipeline.domain.calendar.calendar_days) and
                where each setting it quotes came from.
            TimezoneMismatchError: the days are refused, and the warehouse's days are cut in
                another time zone than DESK_TIMEZONE: that, not the days, is what to fix.
        """
        try:
            return calendar.calendar_days(
                first,
                last,
                start_date=self.start_date,
                today=self.today(),
                timezone=self.timezone,
                quotes=self._quotes(),
            )
        except InvalidRangeError:
            self.require_warehouse_timezone()
            raise

    def stored_day(self, day: str) -> str:
        """``day`` (YYYY-MM-DD), a day that can have an EOD: not after today, else refused.

        What a read needs of its day; one before DESK_START_DATE may be stored and is read.

        Raises:
            InvalidRangeError: ``day`` is after today in DESK_TIMEZONE; the message names today.
            TimezoneMismatchError: as for :meth:`calendar_days`.
        """
        try:
            return calendar.up_to_today(
                day, today=self.today(), timezone=self.timezone, quotes=self._quotes()
            )
        except InvalidRangeError:
            self.require_warehouse_timezone()
            raise

    def require_warehouse_timezone(self) -> None:
        """Go on unless the warehouse records another time zone than DESK_TIMEZONE.

        Reads the record only (a warehouse that does not exist or has none passes); opening the
        warehouse records the zone and checks it too (``BusinessCalendarStore``). Every `desk`
        command asks first (cli.warehouse.settings); the API where a day is refused, since
        "after today" in the wrong zone is the zone's fault.

        Raises:
            TimezoneMismatchError: one line naming both zones and the fix.
        """
        recorded = recorded_timezone(self.warehouse_url)
        if recorded is not None and not calendar.same_business_days(recorded, self.timezone):
            line = mismatch_line(recorded, self.quoted("timezone"), self.warehouse_url)
            raise TimezoneMismatchError(line)

    def _quotes(self) -> calendar.Quotes:
        earlier = "set DESK_START_DATE to {day} or earlier"
        origin = (self._origins or {}).get("start_date", "")
        if origin.startswith(FROM_FILE):
            # `make run` wrote it for every process on the warehouse: changed there, or by
            # make run, the calendar moves for all of them.
            file = origin.removeprefix(FROM_FILE)
            earlier += f" in {file} (`make desk-env DESK_START_DATE={{day}}` rewrites it)"
        # Stored days are restated from the trades stored before them when earlier trades
        # arrive: days never ingested between would be missing from every later position.
        gap = (
            ", then backfill {day}..{eve} in one range: the days left out before {start} "
            "would be missing from every later day's positions"
        )
        return calendar.Quotes(self.quoted("start_date"), self.quoted("timezone"), earlier, gap)

    @property
    def set_variables(self) -> frozenset[str]:
        """The DESK_* variables these settings were read from; none for explicit settings.

        The resources bind those values through dg.EnvVar, so a URL with credentials stays out
        of the UI; explicit settings and defaults are bound as values.
        """
        return frozenset(
            ENVIRONMENT[field]
            for field, origin in (self._origins or {}).items()
            if origin == FROM_ENVIRONMENT
        )


# Each setting's environment variable; the checks name the variable, not the field.
ENVIRONMENT = {
    field: str(info.validation_alias) for field, info in DeskSettings.model_fields.items()
}
FIELDS = {variable: field for field, variable in ENVIRONMENT.items()}


def _set_variables() -> dict[str, str]:
    """The DESK_* variables that are set and not empty, by name, unvalidated."""
    # validate_by_name makes pydantic-settings also try each field's own name (`timezone`):
    # only the contract's variables count.
    read = pydantic_settings.EnvSettingsSource(DeskSettings)()
    return {name: value for name, value in read.items() if name in FIELDS}


def _file_variables(file: Path) -> tuple[dict[str, str], list[str]]:
    """The calendar variables ``file`` sets (none when it does not exist), and its problems.

    A problem is one line: the file cannot be read, or it sets something other than the
    calendar (FILE_FIELDS), which would be ignored in silence otherwise.
    """
    allowed = [ENVIRONMENT[field] for field in FILE_FIELDS]
    try:
        source = pydantic_settings.DotEnvSettingsSource(
            DeskSettings, env_file=file, dotenv_filtering="only_existing"
        )
    except (OSError, UnicodeDecodeError) as err:
        why = getattr(err, "strerror", None) or str(err)
        return {}, [f"{file}: cannot be read ({why}); fix it or remove it (`make run` writes it)"]
    others = sorted(name for name in source.env_vars if name not in allowed)
    if others:
        return {}, [
            f"{file} sets {', '.join(others)}: it holds the desk calendar only "
            f"({' and '.join(allowed)}); set the others in the environment"
        ]
    return {name: value for name, value in source().items() if name in allowed}, []


def _origins(environment: dict[str, str], from_file: dict[str, str], file: Path) -> dict[str, str]:
    """Where each field's value comes from: the environment, else ``file``, else the default."""
    return {
        field: FROM_ENVIRONMENT
        if name in environment
        else f"{FROM_FILE}{file}"
        if name in from_file
        else BY_DEFAULT
        for field, name in ENVIRONMENT.items()
    }


def quoted_calendar() -> tuple[str, str]:
    """DESK_START_DATE and DESK_TIMEZONE as messages quote them, each with where it came from.

    Unvalidated, for `desk doctor`: a bad value has a finding of its own.
    """
    file = settings_file()
    from_file, _ = _file_variables(file)
    origins = _origins(_set_variables(), from_file, file)
    values = environment_values()
    start, zone = (
        f"{ENVIRONMENT[f]}={configuration.shown(values[f])} ({origins[f]})"
        for f in ("start_date", "timezone")
    )
    return start, zone


def environment_values() -> dict[str, str]:
    """The DESK_* values as set, unvalidated: the environment's, desk.env's, else the defaults."""
    values = {
        field: str(info.get_default(call_default_factory=True))
        for field, info in DeskSettings.model_fields.items()
    }
    from_file, _ = _file_variables(settings_file())
    values.update((FIELDS[name], value) for name, value in from_file.items())
    values.update((FIELDS[name], value) for name, value in _set_variables().items())
    return values


def _line(error: Any, origins: dict[str, str]) -> str:
    """One pydantic error as ``DESK_X=value: problem; fix``, saying a file's value came from it."""
    location = str(error["loc"][0])  # the variable when read, the field for a default
    field = FIELDS.get(location, location)
    problem = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] != "value_error":  # a number out of bounds or not a number at all
        default = DeskSettings.model_fields[field].default
        problem = NUMBER_PROBLEMS.get(error["type"], problem.replace("Input should", "should"))
        problem = f"{problem}; use a value such as {default}"
    origin = origins[field]
    where = f" ({origin})" if origin.startswith(FROM_FILE) else ""
    return f"{ENVIRONMENT[field]}={configuration.shown(str(error['input']))}{where}: {problem}"


def setting_problems() -> dict[str, str]:
    """Each bad DESK_* variable's line, by variable name; empty when all are usable."""
    try:
        DeskSettings.from_env()
    except SettingsError as err:
        return {line.partition("=")[0]: line for line in err.lines}
    return {}
