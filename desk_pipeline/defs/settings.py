"""The DESK_* settings: read from the environment, validated, each error naming its variable."""

import os
from pathlib import Path
from typing import Annotated, Any

import pydantic

from desk_pipeline.adapters import configuration
from desk_pipeline.domain.errors import SettingsError

DEFAULT_START_DATE = "2026-01-01"
NUMBER_PROBLEMS = {"int_parsing": "not a whole number", "float_parsing": "not a number"}

# Each setting's environment variable; the checks name the variable, not the field.
ENVIRONMENT = {
    "warehouse_url": "DESK_WAREHOUSE_URL",
    "trade_source": "DESK_TRADE_SOURCE",
    "timezone": "DESK_TIMEZONE",
    "start_date": "DESK_START_DATE",
    "event_publisher": "DESK_EVENT_PUBLISHER",
    "haircut_schedule": "DESK_HAIRCUT_SCHEDULE",
    "desk_hours": "DESK_HOURS",
    "intraday_freshness_minutes": "DESK_FRESHNESS_MINUTES",
    "max_quarantine_rate": "DESK_MAX_QUARANTINE_RATE",
    "intraday_retention_days": "DESK_INTRADAY_RETENTION_DAYS",
    "issuer_concentration_limit": "DESK_ISSUER_CONCENTRATION_LIMIT",
}
CHECKS = {
    "warehouse_url": configuration.warehouse_url_problem,
    "trade_source": configuration.trade_source_problem,
    "timezone": configuration.timezone_problem,
    "start_date": configuration.start_date_problem,
    "event_publisher": configuration.event_publisher_problem,
    "haircut_schedule": configuration.haircut_schedule_problem,
}


@pydantic.dataclasses.dataclass(frozen=True)
class DeskSettings:
    """The desk's configuration: the DESK_* variables of the contract, with working defaults.

    Validated on construction (pydantic): a bad value raises ``pydantic.ValidationError``;
    :meth:`from_env` turns it into a :class:`SettingsError` naming the variable.
    """

    warehouse_url: str
    trade_source: str
    timezone: str
    start_date: str
    event_publisher: str
    haircut_schedule: str
    # Freshness policy of intraday_positions: hours (cron hour field) and maximum snapshot age.
    desk_hours: str = "0-23"
    intraday_freshness_minutes: Annotated[int, pydantic.Field(gt=0)] = 20
    # Quality and housekeeping: quarantined share of received rows; intraday snapshot retention.
    max_quarantine_rate: Annotated[float, pydantic.Field(ge=0, le=1)] = 0.05
    intraday_retention_days: Annotated[int, pydantic.Field(ge=1)] = 7
    # Collateral: the largest share of a book's eligible lendable value one issuer may hold.
    issuer_concentration_limit: Annotated[float, pydantic.Field(gt=0, le=1)] = 0.25
    # The DESK_* variables that were set (from_env): the resources bind those values through
    # dg.EnvVar, so a URL with credentials stays out of the UI; explicit settings bind values.
    set_variables: frozenset[str] = frozenset()

    @pydantic.field_validator(*CHECKS)
    @classmethod
    def _usable(cls, value: str, info: pydantic.ValidationInfo) -> str:
        problem = CHECKS[str(info.field_name)](value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @classmethod
    def from_env(cls) -> "DeskSettings":
        """Read the DESK_* variables; unset ones take the defaults of ARCHITECTURE.md.

        Raises:
            SettingsError: one line per bad variable, ``DESK_X=value: problem; fix``.
        """
        try:
            # Validated as a mapping: the environment's strings are parsed into the fields' types.
            set_variables = frozenset(name for name in ENVIRONMENT.values() if os.environ.get(name))
            values = {**environment_values(), "set_variables": set_variables}
            return pydantic.TypeAdapter(cls).validate_python(values)
        except pydantic.ValidationError as err:
            raise SettingsError([_line(error) for error in err.errors()]) from None


def environment_values() -> dict[str, str]:
    """The DESK_* values as set, unvalidated, with the contract's defaults for unset ones."""
    home = Path(os.environ.get("DAGSTER_HOME") or "./.desk").resolve()
    values = {
        field: os.environ[name] for field, name in ENVIRONMENT.items() if os.environ.get(name)
    }
    values.setdefault("warehouse_url", f"sqlite:///{home}/warehouse.db")
    values.setdefault("trade_source", "simulator")
    values.setdefault("timezone", "UTC")
    values.setdefault("start_date", DEFAULT_START_DATE)
    values.setdefault("event_publisher", "log")
    values.setdefault("haircut_schedule", "")
    return values


def _line(error: Any) -> str:
    """One pydantic error as ``DESK_X=value: problem; fix``."""
    field = str(error["loc"][0])
    problem = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] != "value_error":  # a number out of bounds or not a number at all
        default = DeskSettings.__dataclass_fields__[field].default
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
