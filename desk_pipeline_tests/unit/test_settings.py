"""DeskSettings: the DESK_* variables read when asked, validated, each bad one named on a line."""

import dataclasses

import pydantic
import pytest
from dagster._utils.schedules import is_valid_cron_string

from desk_pipeline.defs.settings import (
    DEFAULT_DESK_HOURS,
    ENVIRONMENT,
    DeskSettings,
    environment_values,
    intraday_deadline_cron,
    setting_problems,
)
from desk_pipeline.domain.errors import SettingsError
from desk_pipeline_tests.location import desk_settings


@pytest.fixture(autouse=True)
def no_desk_variables(monkeypatch, tmp_path):
    for name in ENVIRONMENT.values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))


def test_every_setting_reads_the_variable_the_contract_names():
    assert sorted(ENVIRONMENT.values()) == sorted(
        [
            "DESK_WAREHOUSE_URL",
            "DESK_TRADE_SOURCE",
            "DESK_TIMEZONE",
            "DESK_START_DATE",
            "DESK_EVENT_PUBLISHER",
            "DESK_HAIRCUT_SCHEDULE",
            "DESK_HOURS",
            "DESK_FRESHNESS_MINUTES",
            "DESK_MAX_QUARANTINE_RATE",
            "DESK_INTRADAY_RETENTION_DAYS",
            "DESK_ISSUER_CONCENTRATION_LIMIT",
        ]
    )


def test_unset_and_empty_variables_take_the_contracts_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("DESK_TIMEZONE", "")
    monkeypatch.setenv("DESK_FRESHNESS_MINUTES", "")
    settings = DeskSettings.from_env()
    defaults = desk_settings(warehouse_url=f"sqlite:///{tmp_path}/home/warehouse.db")
    assert settings.model_dump() == defaults.model_dump()
    assert (settings.timezone, settings.intraday_freshness_minutes) == ("UTC", 20)
    assert settings.set_variables == frozenset()


def test_the_default_warehouse_follows_dagster_home_when_the_settings_are_built(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    assert DeskSettings.from_env().warehouse_url == f"sqlite:///{tmp_path}/elsewhere/warehouse.db"
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.chdir(tmp_path)
    assert DeskSettings.from_env().warehouse_url == f"sqlite:///{tmp_path}/.desk/warehouse.db"


def test_set_variables_are_read_parsed_and_recorded(monkeypatch):
    monkeypatch.setenv("DESK_TIMEZONE", "Europe/London")
    monkeypatch.setenv("DESK_HOURS", "7-18")
    monkeypatch.setenv("DESK_FRESHNESS_MINUTES", " 45 ")
    monkeypatch.setenv("DESK_MAX_QUARANTINE_RATE", "0.2")
    settings = DeskSettings.from_env()
    assert (settings.timezone, settings.desk_hours) == ("Europe/London", "7-18")
    assert (settings.intraday_freshness_minutes, settings.max_quarantine_rate) == (45, 0.2)
    assert settings.set_variables == {
        "DESK_TIMEZONE",
        "DESK_HOURS",
        "DESK_FRESHNESS_MINUTES",
        "DESK_MAX_QUARANTINE_RATE",
    }


def test_only_the_contracts_exact_names_are_read(monkeypatch):
    # A value read under another name would be bound as a dg.EnvVar that is not set.
    monkeypatch.setenv("desk_timezone", "Europe/London")
    monkeypatch.setenv("timezone", "Europe/Paris")
    monkeypatch.setenv("desk_hours", "7-18")
    monkeypatch.setenv("DESK_DESK_HOURS", "7-18")
    settings = DeskSettings.from_env()
    assert (settings.timezone, settings.desk_hours, settings.set_variables) == (
        "UTC",
        "0-23",
        frozenset(),
    )
    assert environment_values()["timezone"] == "UTC"


def test_explicit_settings_ignore_the_environment(monkeypatch):
    monkeypatch.setenv("DESK_FRESHNESS_MINUTES", "45")
    monkeypatch.setenv("DESK_TIMEZONE", "Europe/London")
    settings = desk_settings(trade_source="landing:/tmp")
    assert (settings.intraday_freshness_minutes, settings.timezone) == (20, "UTC")
    assert settings.set_variables == frozenset()


def test_explicit_settings_are_keywords_validated_frozen_and_hashable():
    with pytest.raises(TypeError):
        DeskSettings("sqlite://")
    with pytest.raises(pydantic.ValidationError):
        desk_settings(intraday_freshness_minutes=0)
    with pytest.raises(pydantic.ValidationError):
        desk_settings(set_variables=frozenset())
    settings = desk_settings()
    with pytest.raises(pydantic.ValidationError):
        settings.timezone = "Europe/London"
    assert hash(settings) == hash(desk_settings()) and settings == desk_settings()
    assert not dataclasses.is_dataclass(settings)


@pytest.mark.parametrize(
    ("variables", "lines"),
    [
        (
            {"DESK_FRESHNESS_MINUTES": "ten"},
            ["DESK_FRESHNESS_MINUTES=ten: not a whole number; use a value such as 20"],
        ),
        (
            {
                "DESK_FRESHNESS_MINUTES": "0",
                "DESK_MAX_QUARANTINE_RATE": "x",
                "DESK_INTRADAY_RETENTION_DAYS": "1.5",
            },
            [
                "DESK_FRESHNESS_MINUTES=0: should be greater than 0; use a value such as 20",
                "DESK_MAX_QUARANTINE_RATE=x: not a number; use a value such as 0.05",
                "DESK_INTRADAY_RETENTION_DAYS=1.5: not a whole number; use a value such as 7",
            ],
        ),
        (
            {"DESK_ISSUER_CONCENTRATION_LIMIT": "2", "DESK_TIMEZONE": "Mars/Olympus"},
            [
                "DESK_TIMEZONE=Mars/Olympus: not a time zone of the IANA database; "
                "use a name such as UTC or Europe/London",
                "DESK_ISSUER_CONCENTRATION_LIMIT=2: should be less than or equal to 1; "
                "use a value such as 0.25",
            ],
        ),
        (
            {"DESK_WAREHOUSE_URL": "postgresql+psycopg://desk:s3cret@db/desk", "DESK_HOURS": ""},
            [],
        ),
        (
            # Each passed the checks once and failed the code location or every run instead.
            {
                "DESK_HOURS": "25",
                "DESK_START_DATE": "20260101",
                "DESK_FRESHNESS_MINUTES": "99999999999999999999999",
                "DESK_INTRADAY_RETENTION_DAYS": "99999999999",
            },
            [
                "DESK_START_DATE=20260101: not a date; use YYYY-MM-DD, e.g. 2026-01-01",
                "DESK_HOURS=25: not a cron hour field of hours 0-23; use a value such as 0-23, "
                "7-18 or 8,12,16",
                "DESK_FRESHNESS_MINUTES=99999999999999999999999: should be less than or equal to "
                "10080; use a value such as 20",
                "DESK_INTRADAY_RETENTION_DAYS=99999999999: should be less than or equal to 3650; "
                "use a value such as 7",
            ],
        ),
        (
            {"DESK_HOURS": "abc", "DESK_START_DATE": "0001-01-01"},
            [
                "DESK_START_DATE=0001-01-01: before 1970-01-01, where partitions begin; "
                "use YYYY-MM-DD, e.g. 2026-01-01",
                "DESK_HOURS=abc: not a cron hour field of hours 0-23; use a value such as 0-23, "
                "7-18 or 8,12,16",
            ],
        ),
        (
            {"DESK_START_DATE": "2026-W01-1"},
            ["DESK_START_DATE=2026-W01-1: not a date; use YYYY-MM-DD, e.g. 2026-01-01"],
        ),
        (
            # A port out of range failed later, in the relay and the consumer: "ValueError:
            # Port out of range 0-65535 (--debug shows the traceback)", exit 1 (attack).
            {"DESK_EVENT_PUBLISHER": "rabbitmq:amqp://guest:pw@127.0.0.1:99999/"},
            [
                "DESK_EVENT_PUBLISHER=rabbitmq:amqp://guest:***@127.0.0.1:99999/: not a usable "
                "AMQP URL (Port out of range 0-65535); e.g. "
                "rabbitmq:amqp://user:password@host:5672/%2F"
            ],
        ),
        (
            {"DESK_EVENT_PUBLISHER": "nope"},
            [
                "DESK_EVENT_PUBLISHER=nope: not an event publisher; use log, "
                "rabbitmq:amqp://user:password@host:5672/%2F or kafka:host:9092"
            ],
        ),
    ],
)
def test_each_bad_variable_is_one_line_naming_it(monkeypatch, variables, lines):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert setting_problems() == {line.partition("=")[0]: line for line in lines}
    if lines:
        with pytest.raises(SettingsError) as raised:
            DeskSettings.from_env()
        assert raised.value.lines == lines
    else:
        DeskSettings.from_env()


def test_a_bad_url_is_shown_without_its_password(monkeypatch):
    monkeypatch.setenv("DESK_WAREHOUSE_URL", "mysql://desk:s3cret@db/desk")
    [line] = setting_problems().values()
    assert line.startswith("DESK_WAREHOUSE_URL=mysql://desk:***@db/desk: ") and "s3cret" not in line


def test_environment_values_are_the_raw_values_with_defaults_for_doctor(monkeypatch, tmp_path):
    monkeypatch.setenv("DESK_TRADE_SOURCE", "ftp:x")
    monkeypatch.setenv("DESK_EVENT_PUBLISHER", "")
    values = environment_values()
    assert values["trade_source"] == "ftp:x"  # unvalidated: doctor probes each on its own
    assert values["event_publisher"] == "log"
    assert values["warehouse_url"] == f"sqlite:///{tmp_path}/home/warehouse.db"


def test_default_desk_hours_pass_dagsters_cron_check():
    # desk_hours_problem trusts the default without importing Dagster (read commands): this
    # is the check it skips.
    assert is_valid_cron_string(intraday_deadline_cron("0", DEFAULT_DESK_HOURS))
