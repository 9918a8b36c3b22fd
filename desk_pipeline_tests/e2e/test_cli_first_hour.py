"""What a new user meets first with `desk`: dates, a missing warehouse, errors, noise, books."""

import dataclasses
import functools
import json
import re
import subprocess

import pandas as pd
import pytest
import sqlalchemy as sa

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.builders import trade, write_landing_file
from desk_pipeline_tests.conftest import pg_schema, schema_url
from desk_pipeline_tests.e2e import driver
from desk_pipeline_tests.e2e.checkout import user_environment

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]
# Nothing listens here: connections are refused at once.
CLOSED_PORT = 9
CLOSED_WAREHOUSE = f"postgresql+psycopg://desk:secret@127.0.0.1:{CLOSED_PORT}/desk"


# These tests read the exit code and stderr themselves.
run_desk = functools.partial(driver.run_desk, check=False)


def one_line(result: subprocess.CompletedProcess) -> str:
    """The error line: alone on stderr, nothing on stdout, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert lines[0].startswith("desk: ")
    return lines[0]


@dataclasses.dataclass(frozen=True)
class Landed:
    env: dict[str, str]
    backfill: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> Landed:
    """Two books over three days in a landing folder, backfilled once into a new home."""
    tmp = tmp_path_factory.mktemp("first_hour")
    landing = tmp / "landing"
    rows = [
        trade(f"T-{i}-{b}", q * (i + 1), p, book=b, instrument=ins, at=pd.Timestamp(f"{d} 09:00Z"))
        for i, d in enumerate(DAYS)
        for b, ins, q, p in [
            ("REPO-1", "DE0001", 1_250_000, 99.5),
            ("SECLEND-1", "US0003", -50, 101),
        ]
    ]
    write_landing_file(landing, "trades.csv", rows)
    env = user_environment(
        DAGSTER_HOME=str(tmp / "home"),
        DESK_START_DATE="2026-03-01",
        DESK_TRADE_SOURCE=f"landing:{landing}",
        DESK_WAREHOUSE_URL=f"sqlite:///{tmp}/warehouse.db",
    )
    backfill = run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[-1])
    assert backfill.returncode == 0, backfill.stderr
    return Landed(env, backfill)


@pytest.mark.parametrize(
    "written", ["11/12/2026", "20/11/2026", "20261120", "Nov 20 2026", "2026-02-30", "2026-3-5"]
)
def test_a_date_not_written_yyyy_mm_dd_is_a_usage_error(written, tmp_path):
    env = user_environment(DESK_WAREHOUSE_URL=f"sqlite:///{tmp_path}/none.db")
    result = run_desk(env, "positions", "--book", "REPO-1", "--date", written)
    assert result.returncode == 2
    line = one_line(result)
    assert "--date" in line and repr(written) in line and "YYYY-MM-DD" in line
    assert list(tmp_path.iterdir()) == []  # refused before looking for a warehouse


def test_backfill_refuses_a_loose_date_before_running_anything(tmp_path):
    env = user_environment(DAGSTER_HOME=str(tmp_path / "home"))
    result = run_desk(env, "backfill", "--start", "Nov 20 2026", "--end", "2026-11-20")
    assert result.returncode == 2
    assert "--start" in one_line(result)
    assert not (tmp_path / "home").exists()


def today_in(zone: str) -> str:
    return pd.Timestamp.now(tz=zone).strftime("%Y-%m-%d")


def after_today(env: dict[str, str], late: str, *args: str) -> str:
    """`desk ARGS`'s line, checked: days ``late`` are after today in DESK_TIMEZONE, the fix."""
    zone = env["DESK_TIMEZONE"]
    # Today as desk saw it: the day before or after the command ran (midnight may pass).
    before = today_in(zone)
    result = run_desk(env, *args)
    assert result.returncode == 2, result.stderr
    line = one_line(result)
    assert line in {
        f"desk: {late} after today: the desk's last business day is today, {today} in "
        f"DESK_TIMEZONE={zone} (set in the environment); pick days up to {today}"
        for today in (before, today_in(zone))
    }, line
    return line


# Kiritimati is UTC+14: for 14 hours of each UTC day, its today is UTC's tomorrow.
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati"])
def test_backfill_of_days_after_today_names_today_in_desk_timezone_exit_2(zone, tmp_path):
    env = user_environment(
        DAGSTER_HOME=str(tmp_path / "home"), DESK_TIMEZONE=zone, DESK_START_DATE="2026-03-01"
    )
    days = ["backfill", "--start", "2199-12-30", "--end", "2199-12-31"]
    line = after_today(env, "days 2199-12-30..2199-12-31 are", *days)
    assert "DESK_START_DATE" not in line  # it advised setting DESK_START_DATE earlier
    after_today(
        env, "day 2199-12-31 is", "backfill", "--start", "2199-12-31", "--end", "2199-12-31"
    )
    assert not (tmp_path / "home").exists()  # refused before any run or repair


def test_backfill_of_days_before_desk_start_date_names_its_value_and_exits_2(tmp_path):
    env = user_environment(DAGSTER_HOME=str(tmp_path / "home"), DESK_START_DATE="2026-03-01")
    result = run_desk(env, "backfill", "--start", "2026-02-27", "--end", "2026-03-02")
    assert result.returncode == 2, result.stderr
    assert one_line(result) == (
        "desk: days 2026-02-27..2026-02-28 are before DESK_START_DATE=2026-03-01 (set in the "
        "environment), the desk's first business day: set DESK_START_DATE to 2026-02-27 or "
        "earlier"
    )
    assert not (tmp_path / "home").exists()


def test_a_reversed_backfill_range_says_so_and_exits_2_even_with_debug(tmp_path):
    env = user_environment(DAGSTER_HOME=str(tmp_path / "home"), DESK_START_DATE="2026-03-01")
    for flags in ([], ["--debug"]):
        result = run_desk(env, *flags, "backfill", "--start", DAYS[2], "--end", DAYS[0])
        assert result.returncode == 2, result.stderr
        assert one_line(result) == (
            f"desk: date range {DAYS[2]}..{DAYS[0]} is reversed: its start is after its end; "
            "give the earlier day first"
        )
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("command", ["positions", "ranking", "concentration"])
@pytest.mark.parametrize("flags", [[], ["--debug"]])
def test_a_read_of_a_day_after_today_is_a_bad_date_before_any_warehouse(command, flags, tmp_path):
    env = user_environment(
        DESK_WAREHOUSE_URL=f"sqlite:///{tmp_path}/none.db", DESK_TIMEZONE="Pacific/Kiritimati"
    )
    after_today(env, "day 2199-12-31 is", *flags, command, "--book", "B", "--date", "2199-12-31")
    assert list(tmp_path.iterdir()) == []  # refused before looking for a warehouse


def test_tick_with_desk_start_date_in_the_future_names_it_and_exits_2(tmp_path):
    env = user_environment(DAGSTER_HOME=str(tmp_path / "home"), DESK_START_DATE="2199-01-01")
    result = run_desk(env, "tick")
    assert result.returncode == 2, result.stderr
    assert one_line(result) == (
        "desk: no 10-minute window has closed since DESK_START_DATE=2199-01-01 (00:00 in "
        "DESK_TIMEZONE=UTC); set DESK_START_DATE earlier"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["positions", "--book", "REPO-1", "--date", "2026-03-02"],
        ["ranking", "--book", "REPO-1", "--date", "2026-03-02"],
        ["concentration", "--book", "REPO-1", "--date", "2026-03-02"],
        ["quarantine"],
        ["status"],
        ["books"],
    ],
)
def test_a_read_command_outside_the_project_creates_nothing_and_says_where_it_looked(
    command, tmp_path
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_desk(user_environment(), *command, cwd=elsewhere)
    assert result.returncode == 2
    line = one_line(result)
    assert f"no warehouse at {elsewhere}/.desk/warehouse.db" in line
    assert "DESK_WAREHOUSE_URL" in line and "DAGSTER_HOME" in line
    assert list(elsewhere.iterdir()) == []


def test_a_read_command_leaves_an_empty_postgresql_database_empty(pg_engine):
    with pg_schema(pg_engine) as schema:
        env = user_environment(DESK_WAREHOUSE_URL=schema_url(schema))
        result = run_desk(env, "status")
        assert result.returncode == 2
        assert "no desk tables" in one_line(result)
        with pg_engine.connect() as conn:
            tables = conn.execute(
                sa.text("select count(*) from information_schema.tables where table_schema = :s"),
                {"s": schema},
            ).scalar_one()
        assert tables == 0


def test_a_run_command_without_dagster_home_keeps_its_runs_in_the_folders_desk_instance(
    tmp_path,
):
    # The README runs `desk` in the project folder without DAGSTER_HOME: its runs went to an
    # ephemeral instance, so the UI (`make run`: DAGSTER_HOME=./.desk) showed none of them,
    # and two backfills or an orphaned run were never seen by the next command.
    landing = tmp_path / "landing"
    landing.mkdir()
    yesterday = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    env = user_environment(DESK_TRADE_SOURCE=f"landing:{landing}", DESK_START_DATE=yesterday)

    first = run_desk(env, "tick", "--json", cwd=tmp_path)
    second = run_desk(env, "tick", "--json", cwd=tmp_path)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    # Said once, when the folder's warehouse is created; the next command finds it.
    assert first.stderr.splitlines() == [
        f"desk: created a new warehouse in ./.desk here ({tmp_path}/.desk): DESK_WAREHOUSE_URL "
        "and DAGSTER_HOME are not set; the demo's is in the folder `make run` ran in"
    ]
    assert second.stderr == ""
    with driver.open_instance(tmp_path / ".desk") as instance:
        stored = {run.run_id for run in instance.get_runs()}
    assert stored == {json.loads(r.stdout)["run_id"] for r in (first, second)}
    doctor = run_desk(env, "doctor", cwd=tmp_path)
    assert "ok   runs       no run is held by a dead desk process" in doctor.stdout


def test_an_unreachable_warehouse_is_one_line_and_debug_shows_the_traceback(tmp_path):
    env = user_environment(DESK_WAREHOUSE_URL=CLOSED_WAREHOUSE, DAGSTER_HOME=str(tmp_path))
    for command in (["status"], ["backfill", "--start", DAYS[0], "--end", DAYS[0]]):
        result = run_desk(env, *command)
        assert result.returncode == 2, result.stderr
        line = one_line(result)
        assert line.startswith("desk: DESK_WAREHOUSE_URL=") and "not reachable" in line, line
        assert "secret" not in line
    assert not (tmp_path / "history").exists()  # no run was started
    debug = run_desk(env, "--debug", "status")
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "WarehouseUnreachableError" in debug.stderr


def test_an_unreachable_broker_is_one_line_naming_it_and_verbose_shows_pikas_log(tmp_path):
    # pika logged three ERROR lines and a traceback first, and the line ended "unreachable: ".
    warehouse = f"sqlite:///{tmp_path}/warehouse.db"
    PositionRepository(warehouse).engine.dispose()  # migrated already: its line is not asked
    env = user_environment(
        DESK_WAREHOUSE_URL=warehouse, DAGSTER_HOME=str(tmp_path), DESK_START_DATE=DAYS[0]
    )
    source = f"rabbitmq:amqp://guest:secret@127.0.0.1:{CLOSED_PORT}/%2F"
    # --idle-exit: a drain that ends; without it the consumer waits for the broker (events).
    command = ["consume", "--source", source, "--queue", "q", "--idle-exit", "1"]
    result = run_desk(env, *command)
    assert result.returncode == 1, result.stderr
    assert one_line(result) == (
        f"desk: consumer eod-ranking: broker 127.0.0.1:{CLOSED_PORT} unreachable: "
        "AMQPConnectionError: (AMQPConnectorSocketConnectError: "
        "ConnectionRefusedError(111, 'Connection refused'),)"
    )
    assert "Connection workflow failed" in run_desk(env, "-v", *command).stderr


def test_exit_codes_are_listed_in_the_help():
    result = run_desk(user_environment(), "--help")
    assert result.returncode == 0
    help_text = result.stdout
    for code in ("0", "1", "2", "130"):
        assert any(line.split()[:1] == [code] for line in help_text.splitlines()), code
    assert "--verbose" in help_text and "--debug" in help_text


@pytest.mark.parametrize("flags", [[], ["-v"], ["--debug"], ["--"]])
def test_desk_alone_shows_the_help_and_exits_as_a_usage_error(flags):
    # Like git or docker: the commands and the exit codes, not a one-line usage error. No
    # command is a usage error (exit 2); the help goes to stderr, click's no_args_is_help way.
    # Only global flags is no command too (it said "Missing command.", or with --debug raised).
    result = run_desk(user_environment(), *flags)
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    help_text = result.stderr
    assert help_text.startswith("Usage: desk [OPTIONS] COMMAND [ARGS]...")
    for command in ["backfill", "positions", "ranking", "quarantine", "status", "doctor"]:
        assert any(line.split()[:1] == [command] for line in help_text.splitlines()), command
    assert "Exit codes:" in help_text and "see `desk --help`" not in help_text


@pytest.mark.parametrize(
    "command",
    [["bogus"], ["positions", "--date", "11/12/2026", "--book", "X"], ["--bogus"]],
)
def test_a_usage_error_is_one_line_and_exit_2_even_with_debug(command):
    # --debug shows the desk's tracebacks; a mistyped command line has none worth showing, and
    # scripts tell usage errors (2) from failures (1) by the code (it exited 1 with --debug).
    result = run_desk(user_environment(), "--debug", *command)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert one_line(result).startswith("desk: ")


def test_a_reader_that_goes_away_stops_desk_quietly():
    # `desk ranking --json | head`: the rest of the output is not wanted; no error line.
    desk = subprocess.Popen(
        [driver.DESK, "--help"],
        env=user_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    desk.stdout.close()  # before desk has written anything
    stderr = desk.stderr.read().decode()
    assert desk.wait(timeout=60) == 141, stderr
    assert stderr == ""


def test_a_backfill_is_quiet_a_progress_line_and_one_summary(landed):
    stderr, stdout = landed.backfill.stderr, landed.backfill.stdout
    assert stdout.strip() == (
        f"backfilled 3 days, {DAYS[0]}..{DAYS[-1]}, in 1 run(s); events published 6, waiting 0"
    )
    lines = stderr.strip().splitlines()
    # One progress line: the run's steps counted, with an estimate of the time left.
    assert len(lines) == 1, stderr
    assert re.search(r" (\d+)/\1 steps ", lines[0]) and "ETA" in lines[0], lines[0]
    for noise in ("DEBUG", "Warning", "telemetry", "dagster - "):
        assert noise not in stderr


def test_verbose_shows_the_run_log_wherever_it_is_typed(landed):
    env = landed.env
    result = run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[0], "--verbose")
    assert result.returncode == 0, result.stderr
    assert "dagster - INFO" in result.stderr and "eod_positions" in result.stderr
    assert "dagster - DEBUG" not in result.stderr


def test_books_lists_the_stored_books_and_their_days(landed):
    env = landed.env
    document = json.loads(run_desk(env, "books", "--json").stdout)
    assert document == {
        "books": [
            {"book_id": b, "days": 3, "first_eod": DAYS[0], "latest_eod": DAYS[-1]}
            for b in ("REPO-1", "SECLEND-1")
        ]
    }
    text = run_desk(env, "books")
    assert text.returncode == 0
    assert "REPO-1" in text.stdout and "SECLEND-1" in text.stdout and DAYS[-1] in text.stdout
    days = json.loads(run_desk(env, "books", "--book", "REPO-1", "--json").stdout)
    assert [d["business_date"] for d in days["days"]] == DAYS
    unknown = run_desk(env, "books", "--book", "NOPE")
    assert unknown.returncode == 1 and "NOPE" in one_line(unknown)
    assert "`desk books` lists the stored books and days" in one_line(unknown)
    not_stored = run_desk(env, "positions", "--book", "REPO-1", "--date", "2026-03-09")
    assert not_stored.returncode == 1
    assert one_line(not_stored) == (
        f"desk: no end-of-day positions for book REPO-1 on 2026-03-09: its latest stored day "
        f"is {DAYS[-1]}; "
        "`desk books` lists the stored books and days"
    )


def test_a_past_day_is_read_whatever_desk_start_date_and_one_not_stored_is_exit_1(landed):
    # Only a day after today is a bad date for a read (exit 2): a day before DESK_START_DATE
    # may be stored by a desk whose calendar started earlier, or has nothing stored (exit 1).
    before_start = run_desk(landed.env, "positions", "--book", "REPO-1", "--date", "2026-02-27")
    assert before_start.returncode == 1
    assert one_line(before_start) == (
        f"desk: no end-of-day positions for book REPO-1 on 2026-02-27: its first stored day is "
        f"{DAYS[0]}; `desk books` lists the stored books and days"
    )
    later_start = {**landed.env, "DESK_START_DATE": DAYS[-1]}
    for command in ("positions", "ranking"):
        stored = run_desk(later_start, command, "--book", "REPO-1", "--date", DAYS[0], "--json")
        assert stored.returncode == 0, stored.stderr
        assert json.loads(stored.stdout)["business_date"] == DAYS[0]


def test_concentration_without_a_book_answers_for_every_book_of_the_day(landed, tmp_path):
    # No reference data: every instrument is unknown, so no book has eligible collateral.
    result = run_desk(landed.env, "concentration", "--date", DAYS[-1])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Issuer concentration · {DAYS[-1]} · 2 books · limit 25.0%"
    assert [line.split() for line in lines[4:6]] == [
        ["REPO-1", "no", "eligible", "collateral", "-", "-"],
        ["SECLEND-1", "no", "eligible", "collateral", "-", "-"],
    ]
    not_stored = run_desk(landed.env, "concentration", "--date", "2026-03-09")
    assert not_stored.returncode == 1
    assert one_line(not_stored) == (
        f"desk: no collateral ranking of any book on 2026-03-09: the latest stored day is "
        f"{DAYS[-1]}; `desk books` lists the stored books and days"
    )
    env = user_environment(DESK_WAREHOUSE_URL=f"sqlite:///{tmp_path}/none.db", DESK_TIMEZONE="UTC")
    after_today(env, "day 2199-12-31 is", "concentration", "--date", "2199-12-31")


def test_positions_text_is_a_table_of_formatted_numbers_with_its_header(landed):
    env = landed.env
    result = run_desk(env, "positions", "--book", "REPO-1", "--date", DAYS[-1])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"End-of-day positions · REPO-1 · {DAYS[-1]} · as of ")
    assert max(len(line) for line in lines) <= 100
    [row] = [line for line in lines if "DE0001" in line]
    # 1,250,000 + 2,500,000 + 3,750,000 at 99.5: no scientific notation, no float noise.
    assert row.split() == ["DE0001", "7,500,000", "99.5", "0"]
    json_doc = json.loads(
        run_desk(env, "positions", "--book", "REPO-1", "--date", DAYS[-1], "--json").stdout
    )
    assert json_doc["positions"] == [
        {"instrument_id": "DE0001", "quantity": 7_500_000.0, "avg_price": 99.5, "realized_pnl": 0.0}
    ]
