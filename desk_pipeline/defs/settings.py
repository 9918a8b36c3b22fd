"""The DESK_* settings: read from the environment, validated, each error naming its variable."""

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pydantic
import pydantic_settings

from desk_pipeline.adapters import configuration
from desk_pipeline.domain import calendar
from desk_pipeline.domain.errors import SettingsError

DEFAULT_START_DATE = "2026-01-01"
# Bounds of the numbers: a week of freshness limit, ten years of intraday snapshots (beyond
# that the purge's cutoff, a pandas Timedelta, overflows and every tick fails).
MAX_FRESHNESS_MINUTES = 7 * 24 * 60
MAX_RETENTION_DAYS = 3650
# Every hour of the day: the intraday freshness policy's default window.
DEFAULT_DESK_HOURS = "0-23"
NUMBER_PROBLEMS = {"int_parsing": "not a whole number", "float_parsing": "not a number"}


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


def default_warehouse_url() -> str:
    """The contract's warehouse: ``sqlite:///<DAGSTER_HOME or ./.desk, absolute>/warehouse.db``."""
    home = Path(os.environ.get("DAGSTER_HOME") or "./.desk").resolve()
    return f"sqlite:///{home}/warehouse.db"


class DeskSettings(pydantic_settings.BaseSettings):
    """The desk's configuration: the DESK_* variables of the contract, with working defaults.

    Constructed with keywords (field names), settings read nothing from the environment, and a
    bad value raises ``pydantic.ValidationError``; :meth:`from_env` reads the DESK_* variables
    and raises a :class:`SettingsError` naming each bad one.
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
    # Set by from_env: the fields it was given (model_fields_set) are the variables that were set.
    _from_environment: bool = pydantic.PrivateAttr(default=False)

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
        """Read the DESK_* variables; unset or empty ones take the defaults of ARCHITECTURE.md.

        Raises:
            SettingsError: one line per bad variable, ``DESK_X=value: problem; fix``.
        """
        try:
            settings = cls(**_set_variables())
        except pydantic.ValidationError as err:
            raise SettingsError([_line(error) for error in err.errors()]) from None
        settings._from_environment = True
        return settings

    def today(self) -> str:
        """Today's date in DESK_TIMEZONE, YYYY-MM-DD: the last day of the desk calendar."""
        return calendar.business_day_of(pd.Timestamp.now(tz="UTC"), self.timezone)

    def calendar_days(self, first: str, last: str) -> list[str]:
        """The days ``first``..``last`` (YYYY-MM-DD): DESK_START_DATE to today, or refused.

        What a run needs of its days (`desk backfill`, a ranking request): daily partitions.

        Raises:
            InvalidRangeError: a reversed range, days before DESK_START_DATE or after today;
                the message names the fix (desk_pipeline.domain.calendar.calendar_days).
        """
        return calendar.calendar_days(
            first, last, start_date=self.start_date, today=self.today(), timezone=self.timezone
        )

    def stored_day(self, day: str) -> str:
        """``day`` (YYYY-MM-DD), a day that can have an EOD: not after today, else refused.

        What a read needs of its day; one before DESK_START_DATE may be stored and is read.

        Raises:
            InvalidRangeError: ``day`` is after today in DESK_TIMEZONE; the message names today.
        """
        return calendar.up_to_today(day, today=self.today(), timezone=self.timezone)

    @property
    def set_variables(self) -> frozenset[str]:
        """The DESK_* variables these settings were read from; none for explicit settings.

        The resources bind those values through dg.EnvVar, so a URL with credentials stays out
        of the UI; explicit settings and defaults are bound as values.
        """
        if not self._from_environment:
            return frozenset()
        return frozenset(ENVIRONMENT[field] for field in self.model_fields_set)


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


def environment_values() -> dict[str, str]:
    """The DESK_* values as set, unvalidated, with the contract's defaults for unset ones."""
    values = {
        field: str(info.get_default(call_default_factory=True))
        for field, info in DeskSettings.model_fields.items()
    }
    values.update((FIELDS[name], value) for name, value in _set_variables().items())
    return values


def _line(error: Any) -> str:
    """One pydantic error as ``DESK_X=value: problem; fix``."""
    location = str(error["loc"][0])  # the variable when read, the field for a default
    field = FIELDS.get(location, location)
    problem = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] != "value_error":  # a number out of bounds or not a number at all
        default = DeskSettings.model_fields[field].default
        problem = NUMBER_PROBLEMS.get(error["type"], problem.replace("Input should", "should"))
        problem = f"{problem}; use a value such as {default}"
    return f"{ENVIRONMENT[field]}={configuration.shown(str(error['input']))}: {problem}"


def setting_problems() -> dict[str, str]:
    """Each bad DESK_* variable's line, by variable name; empty when all are usable."""
    try:
        DeskSettings.from_env()
    except SettingsError as err:
        return {line.partition("=")[0]: line for line in err.lines}
    return {}
