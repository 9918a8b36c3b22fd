"""`desk status` and `desk doctor` as an operator runs them: the installed script, real services."""

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.cli import cli
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, empty_frame
from desk_pipeline_tests.builders import at, make_trades, trade, write_landing_file
from desk_pipeline_tests.e2e.driver import run_desk

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]
# Nothing listens here: connections are refused at once.
CLOSED_PORT = 9


def environment(tmp_path: Path, **desk: str) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DAGSTER_HOME": str(home),
        "DESK_START_DATE": "2026-03-01",
        **desk,
    }


@pytest.fixture
def healthy(tmp_path) -> dict:
    landing = tmp_path / "landing"
    write_landing_file(landing, "day1.csv", [trade("T-1", 10, 1.0, at=at(DAYS[0], "09:00"))])
    url = f"sqlite:///{tmp_path}/warehouse.db"
    PositionRepository(url).engine.dispose()  # an up-to-date schema
    return environment(tmp_path, DESK_WAREHOUSE_URL=url, DESK_TRADE_SOURCE=f"landing:{landing}")


def test_a_mistyped_command_gets_a_suggestion_and_help_opens_no_instance(tmp_path, monkeypatch):
    # Commands load when invoked: click's suggestions come from the desk's list of them.
    runner = CliRunner()
    typo = runner.invoke(cli, ["posiitons", "--book", "B1"])
    assert typo.exit_code == 2 and "Did you mean 'positions'?" in typo.output
    # --help and usage errors of a command that starts runs neither repair runs nor touch the
    # instance: its dagster.yaml (one an earlier desk wrote) is left as it is.
    home = tmp_path / "home"
    home.mkdir()
    earlier = Path(__file__).parents[1] / "integration/earlier_instances/dagster-02f3ebf.yaml"
    (home / "dagster.yaml").write_bytes(earlier.read_bytes())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert runner.invoke(cli, ["tick", "--help"]).exit_code == 0
    assert runner.invoke(cli, ["backfill", "--start", "nope", "--end", "nope"]).exit_code == 2
    assert (home / "dagster.yaml").read_bytes() == earlier.read_bytes()


def checks(result: subprocess.CompletedProcess) -> dict[str, dict]:
    return {c["check"]: c for c in json.loads(result.stdout)["checks"]}


def test_every_command_has_help():
    # In-process: --help reads no settings, and seven interpreters would cost a minute.
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for command in ["backfill", "positions", "ranking", "quarantine", "status", "doctor"]:
        assert command in top.output
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, command


def test_doctor_passes_on_a_healthy_configuration_and_changes_nothing(healthy, tmp_path):
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = run_desk(healthy, "doctor", "--json", check=False)
    assert result.returncode == 0, result.stderr
    found = checks(result)
    assert json.loads(result.stdout)["ok"] is True
    assert set(found) == {"warehouse", "migrations", "calendar", "source", "broker"}
    assert all(c["ok"] for c in found.values()), found
    assert "1 CSV file" in found["source"]["detail"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_doctor_names_every_broken_part_and_exits_non_zero(tmp_path):
    env = environment(
        tmp_path,
        DESK_WAREHOUSE_URL=f"postgresql+psycopg://desk:secret@127.0.0.1:{CLOSED_PORT}/desk",
        DESK_TRADE_SOURCE=f"landing:{tmp_path}/no-such-folder",
        DESK_EVENT_PUBLISHER=f"rabbitmq:amqp://guest:guest@127.0.0.1:{CLOSED_PORT}/%2F",
    )
    result = run_desk(env, "doctor", "--json", check=False)
    assert result.returncode == 1
    found = checks(result)
    assert not any(c["ok"] for c in found.values()), found
    assert "not reachable" in found["warehouse"]["detail"]
    assert "secret" not in result.stdout + result.stderr  # the password is never shown
    assert "does not exist" in found["source"]["detail"]
    assert "not reachable" in found["broker"]["detail"]
    assert result.stderr.strip().splitlines() == [
        "desk: doctor: warehouse, migrations, calendar, source, broker failed"
    ]


def test_doctor_names_a_failed_check_once_however_many_lines_it_has(healthy):
    env = {**healthy, "DESK_TIMEZONE": "Nowhere/City", "DESK_START_DATE": "yesterday"}
    result = run_desk(env, "doctor", check=False)
    assert result.returncode == 1
    assert sum(line.startswith("FAIL settings") for line in result.stdout.splitlines()) == 2
    assert result.stderr.strip().splitlines() == ["desk: doctor: settings failed"]


def test_doctor_reports_a_warehouse_behind_the_latest_migration(healthy, tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table legacy (id integer)"))
    engine.dispose()
    result = run_desk({**healthy, "DESK_WAREHOUSE_URL": url}, "doctor", check=False)
    assert result.returncode == 1
    line = next(x for x in result.stdout.splitlines() if "migrations" in x)
    assert line.startswith("FAIL") and "revision none, latest is" in line


@pytest.mark.rabbitmq
def test_doctor_reaches_the_real_broker(healthy):
    env = {**healthy, "DESK_EVENT_PUBLISHER": "rabbitmq:amqp://guest:guest@127.0.0.1:5672/%2F"}
    result = run_desk(env, "doctor", "--json", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepts connections" in checks(result)["broker"]["detail"]


def test_status_shows_latest_eod_stale_days_quarantine_and_backlog_per_book(tmp_path):
    landing = tmp_path / "landing"
    good = [
        trade("R-1", 100, 1.0, book="REPO-1", instrument="DE0001", at=at(DAYS[0], "09:00")),
        trade("R-2", 50, 1.1, book="REPO-1", instrument="DE0001", at=at(DAYS[2], "09:00")),
        trade("S-1", -5, 99.0, book="SECLEND-1", instrument="US0003", at=at(DAYS[1], "10:00")),
    ]
    bad = dict(good[0], trade_id="BAD", quantity="lots")
    write_landing_file(landing, "trades.csv", [*good, bad])
    url = f"sqlite:///{tmp_path}/warehouse.db"
    env = environment(
        tmp_path,
        DESK_WAREHOUSE_URL=url,
        DESK_TRADE_SOURCE=f"landing:{landing}",
        # The broker is down: the backfill's events wait in the outbox.
        DESK_EVENT_PUBLISHER=f"rabbitmq:amqp://guest:guest@127.0.0.1:{CLOSED_PORT}/%2F",
    )
    backfill = run_desk(
        env, "backfill", "--start", DAYS[0], "--end", DAYS[-1], "--json", check=False
    )
    assert backfill.returncode == 0, backfill.stderr
    pending = json.loads(backfill.stdout)["events_pending"]
    assert pending == len(DAYS) + 2  # SECLEND-1 has no EOD before its first trade

    # A late amendment of day 2 arrives after the EODs were taken: days 2 and 3 go stale.
    late = make_trades(
        [
            trade(
                "S-1",
                -6,
                99.0,
                book="SECLEND-1",
                instrument="US0003",
                at=at(DAYS[1], "10:00"),
                version=2,
                status="AMEND",
            )
        ]
    )
    repo = PositionRepository(url)
    repo.ingest("landing:late.csv", 1, late, empty_frame(QUARANTINE_DTYPES))
    repo.engine.dispose()

    result = run_desk(env, "status", "--json", check=False)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    books = {b["book_id"]: b for b in document["books"]}
    assert set(books) == {"REPO-1", "SECLEND-1"}
    assert books["REPO-1"]["latest_eod"] == DAYS[-1]
    assert pd.Timestamp(books["REPO-1"]["latest_as_of"]) == at(DAYS[-1], "00:00") + pd.Timedelta(
        days=1
    )
    assert books["REPO-1"]["stale_days"] == []
    assert books["SECLEND-1"]["stale_days"] == DAYS[1:]
    assert books["REPO-1"]["quarantined"] == 1 and books["SECLEND-1"]["quarantined"] == 0
    assert books["REPO-1"]["events_pending"] == len(DAYS)
    assert document["events_pending_total"] == pending
    assert document["quarantined_total"] == 1

    human = run_desk(env, "status", check=False)
    assert human.returncode == 0 and "SECLEND-1" in human.stdout
    assert "events pending 5" in human.stdout
