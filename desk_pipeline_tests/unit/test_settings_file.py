"""desk.env: the calendar `make run` writes beside the warehouse, under the environment's values.

The kind of bug this pins: `make run` set DESK_START_DATE for its own processes only, so a
`desk` in the user's shell fell back to 2026-01-01 and worked on the demo's warehouse with
another calendar (a backfill the demo's calendar refuses ran, and left a hole in the history).
"""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.defs.settings import (
    DEFAULT_START_DATE,
    ENVIRONMENT,
    DeskSettings,
    environment_values,
    setting_problems,
    settings_file,
)
from desk_pipeline.domain.errors import InvalidRangeError, SettingsError
from desk_pipeline_tests.location import desk_settings

# What `make desk-env` writes (Makefile), for a demo that starts on 2026-11-19.
MAKE_RUN_FILE = """\
# The desk calendar of the warehouse in this folder, written by make run (make desk-env).
# Every desk process on the warehouse reads it: the UI, its daemon and runs, desk and the
# API in the project folder. A DESK_* variable set in the environment wins over it.
DESK_START_DATE=2026-11-19
DESK_TIMEZONE=Europe/London
"""


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path) -> Path:
    for name in ENVIRONMENT.values():
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def write(home: Path, text: str = MAKE_RUN_FILE) -> Path:
    file = home / "desk.env"
    file.write_text(text, encoding="utf-8")
    return file


def test_the_file_is_desk_env_in_dagster_home_else_in_dot_desk_of_the_current_folder(
    monkeypatch, tmp_path, home
):
    assert settings_file() == home / "desk.env"
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.chdir(tmp_path)
    assert settings_file() == tmp_path / ".desk" / "desk.env"


def test_a_shell_without_desk_variables_takes_make_runs_calendar_and_says_from_where(home):
    file = write(home)
    desk = DeskSettings.from_env()
    assert (desk.start_date, desk.timezone) == ("2026-11-19", "Europe/London")
    assert desk.quoted("start_date") == f"DESK_START_DATE=2026-11-19 (from {file})"
    assert desk.quoted("timezone") == f"DESK_TIMEZONE=Europe/London (from {file})"
    # Values of the file are no variables: the resources bind them as values, not dg.EnvVar.
    assert desk.set_variables == frozenset()


def test_a_variable_set_in_the_environment_wins_over_the_file(monkeypatch, home):
    file = write(home)
    monkeypatch.setenv("DESK_START_DATE", "2026-01-05")
    desk = DeskSettings.from_env()
    assert (desk.start_date, desk.timezone) == ("2026-01-05", "Europe/London")
    assert desk.quoted("start_date") == "DESK_START_DATE=2026-01-05 (set in the environment)"
    assert desk.quoted("timezone") == f"DESK_TIMEZONE=Europe/London (from {file})"
    assert desk.set_variables == {"DESK_START_DATE"}


def test_an_empty_variable_is_unset_and_leaves_the_files_value(monkeypatch, home):
    write(home)
    monkeypatch.setenv("DESK_TIMEZONE", "")
    assert DeskSettings.from_env().timezone == "Europe/London"


def test_without_the_file_the_contracts_defaults_apply_and_are_said_to_be_defaults():
    desk = DeskSettings.from_env()
    assert (desk.start_date, desk.timezone) == (DEFAULT_START_DATE, "UTC")
    assert desk.quoted("start_date") == f"DESK_START_DATE={DEFAULT_START_DATE} (the default)"


def test_explicit_settings_read_no_file_and_quote_values_alone(home):
    write(home)
    desk = desk_settings(start_date="2026-03-01")
    assert (desk.start_date, desk.timezone) == ("2026-03-01", "UTC")
    assert desk.quoted("start_date") == "DESK_START_DATE=2026-03-01"


def test_a_bad_value_of_the_file_is_one_line_naming_the_file(home):
    file = write(home, "DESK_TIMEZONE=Mars/Olympus\nDESK_START_DATE=2026-11-19\n")
    line = (
        f"DESK_TIMEZONE=Mars/Olympus (from {file}): not a time zone of the IANA database; "
        "use a name such as UTC or Europe/London"
    )
    with pytest.raises(SettingsError) as raised:
        DeskSettings.from_env()
    assert raised.value.lines == [line]
    assert setting_problems() == {"DESK_TIMEZONE": line}


def test_the_file_holds_the_calendar_only_and_says_so_for_anything_else(home):
    # A URL with a password in a file would reach the UI as a plain value; nothing set there
    # is ignored in silence either.
    file = write(home, MAKE_RUN_FILE + "DESK_WAREHOUSE_URL=sqlite:////x.db\nDESK_HOURS=7-18\n")
    with pytest.raises(SettingsError) as raised:
        DeskSettings.from_env()
    assert raised.value.lines == [
        f"{file} sets DESK_HOURS, DESK_WAREHOUSE_URL: it holds the desk calendar only "
        "(DESK_START_DATE and DESK_TIMEZONE); set the others in the environment"
    ]


def test_an_unreadable_file_is_one_line(home):
    file = write(home, "DESK_START_DATE=2026-11-19\n")
    file.write_bytes(b"DESK_TIMEZONE=\xff\xfe\n")
    with pytest.raises(SettingsError) as raised:
        DeskSettings.from_env()
    [line] = raised.value.lines
    assert line.startswith(f"{file}: cannot be read (") and "\n" not in line


def test_doctor_sees_the_files_values(monkeypatch, home):
    write(home)
    monkeypatch.setenv("DESK_TIMEZONE", "Asia/Tokyo")
    values = environment_values()
    assert (values["start_date"], values["timezone"]) == ("2026-11-19", "Asia/Tokyo")


ZONES = st.sampled_from(["UTC", "Europe/London", "America/New_York", "Asia/Tokyo"])
DAYS = st.dates().map(lambda d: max(d.isoformat(), "1970-01-01"))
VALUES = st.fixed_dictionaries(
    {},
    optional={"DESK_START_DATE": st.one_of(DAYS, st.just("")), "DESK_TIMEZONE": ZONES},
)


@settings(max_examples=60, deadline=None)
@given(environment=VALUES, file=VALUES)
def test_each_calendar_setting_comes_from_the_environment_else_the_file_else_the_default(
    environment, file
):
    defaults = {"DESK_START_DATE": DEFAULT_START_DATE, "DESK_TIMEZONE": "UTC"}
    home = Path(str(settings_file().parent))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        written = write(home, "".join(f"{k}={v}\n" for k, v in file.items()))
        desk = DeskSettings.from_env()
    for field, name in (("start_date", "DESK_START_DATE"), ("timezone", "DESK_TIMEZONE")):
        if environment.get(name):
            wanted, origin = environment[name], "set in the environment"
        elif file.get(name):
            wanted, origin = file[name], f"from {written}"
        else:
            wanted, origin = defaults[name], "the default"
        assert getattr(desk, field) == wanted
        assert desk.quoted(field) == f"{name}={wanted} ({origin})"
        assert (name in desk.set_variables) == bool(environment.get(name))


def test_a_day_before_make_runs_calendar_is_refused_naming_the_file_and_a_range_without_gap(
    home,
):
    # The user's path: the README's backfill of January on the demo's warehouse, in a shell
    # that sets no DESK_* variable.
    file = write(home)
    with pytest.raises(InvalidRangeError) as refused:
        DeskSettings.from_env().calendar_days("2026-01-05", "2026-01-09")
    assert str(refused.value) == (
        f"days 2026-01-05..2026-01-09 are before DESK_START_DATE=2026-11-19 (from {file}), the "
        f"desk's first business day: set DESK_START_DATE to 2026-01-05 or earlier in {file} "
        "(`make desk-env DESK_START_DATE=2026-01-05` rewrites it), then backfill "
        "2026-01-05..2026-11-18 in one range: the days left out before 2026-11-19 would be "
        "missing from every later day's positions"
    )


def test_a_refusal_names_a_variable_set_in_the_environment_as_such(monkeypatch, home):
    write(home)
    monkeypatch.setenv("DESK_START_DATE", "2026-03-01")
    monkeypatch.setenv("DESK_TIMEZONE", "Asia/Tokyo")
    desk = DeskSettings.from_env()
    with pytest.raises(InvalidRangeError) as refused:
        desk.calendar_days("2026-02-27", "2026-03-02")
    assert str(refused.value) == (
        "days 2026-02-27..2026-02-28 are before DESK_START_DATE=2026-03-01 (set in the "
        "environment), the desk's first business day: set DESK_START_DATE to 2026-02-27 or "
        "earlier"
    )
    with pytest.raises(InvalidRangeError) as refused:
        desk.stored_day("2199-12-31")
    assert "in DESK_TIMEZONE=Asia/Tokyo (set in the environment); pick days" in str(refused.value)
