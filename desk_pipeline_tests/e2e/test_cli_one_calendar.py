"""One calendar for every process on the demo's warehouse: make run's desk.env, the user's shell.

A new user followed the README. `make run` set DESK_START_DATE (the demo's first day) for its
own processes only, so `desk` in the user's shell took the default 2026-01-01: the README's own
`desk backfill --start 2026-01-05 --end 2026-01-09` passed the calendar guard the demo's
calendar would have refused, and the late-trade restatement recomputed every stored demo EOD
from those five days and the demo's, without the months between (REPO-EUR-01 on the demo's
second day: 192 open positions became 282), with nothing to flag it. `make run` now writes its
calendar to $DAGSTER_HOME/desk.env, which every desk process reads under its environment.

And `desk` with DESK_TIMEZONE=America/New_York on the UTC-built demo called today's stored day
"after today" with no hint of the warehouse's zone; a backfill in that zone replaced a day's EOD
by one cut at other bounds. The warehouse now records its zone and refuses another.
"""

import dataclasses
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from desk_pipeline_tests.builders import at, trade, write_landing_file
from desk_pipeline_tests.e2e.checkout import (
    MAKE,
    fresh_checkout,
    make_run_prerequisites,
    user_environment,
)

pytestmark = pytest.mark.slow

DEMO_DAYS = 2
# The demo's first day as the Makefile computes it (UTC): DEMO_DAYS back, on a business day.
TODAY = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
FIRST = TODAY - pd.Timedelta(days=DEMO_DAYS - 1)
FIRST -= pd.Timedelta(days=max(0, FIRST.dayofweek - 4))
DEMO = [d.strftime("%Y-%m-%d") for d in pd.date_range(FIRST, TODAY, freq="D")]
# Days long before the demo, as the README's old example was: 2026-01-05..09 in November.
EARLY = [d.strftime("%Y-%m-%d") for d in pd.date_range(FIRST - pd.Timedelta(days=60), periods=5)]
EVE = (FIRST - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
BOOK = "REPO-1"
NEW_YORK = "America/New_York"


@dataclasses.dataclass(frozen=True)
class Project:
    """A fresh checkout after `make run`'s desk-env step, and a landing folder of trades."""

    checkout: Path
    landing: Path
    made: str

    @property
    def desk_env(self) -> Path:
        return self.checkout / ".desk" / "desk.env"

    def make(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*MAKE, *args, f"DEMO_DAYS={DEMO_DAYS}"],
            cwd=self.checkout,
            env=user_environment(),
            capture_output=True,
            text=True,
            timeout=600,
        )

    def desk(self, *args: str, **variables: str) -> subprocess.CompletedProcess:
        """`desk` as the README has the user call it: in the project folder, no DESK_* set.

        The trades come from the landing folder (fast); the calendar is not set here.
        """
        env = user_environment(DESK_TRADE_SOURCE=f"landing:{self.landing}", **variables)
        return subprocess.run(
            [".venv/bin/desk", *args],
            cwd=self.checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and result.stdout == "", result.stdout + result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    checkout = fresh_checkout(tmp_path_factory.mktemp("checkout"))
    landing = checkout.parent / "landing"
    rows = [
        trade(f"T-{day}", 100 * (i + 1), 99.5, book=BOOK, instrument="DE0001", at=at(day, "09:00"))
        for i, day in enumerate([*EARLY, *DEMO])
    ]
    write_landing_file(landing, "trades.csv", rows)
    project = Project(checkout, landing, "")
    made = project.make("desk-env")
    assert made.returncode == 0, made.stdout + made.stderr
    return dataclasses.replace(project, made=made.stdout)


def test_make_run_writes_its_calendar_beside_the_warehouse(project):
    assert f"desk-env: {project.desk_env} written" in project.made
    lines = project.desk_env.read_text(encoding="utf-8").splitlines()
    assert [x for x in lines if not x.startswith("#")] == [
        f"DESK_START_DATE={DEMO[0]}",
        "DESK_TIMEZONE=UTC",
    ]


def test_a_backfill_before_the_demo_in_the_users_shell_is_refused_naming_the_demos_start(
    project,
):
    result = project.desk("backfill", "--start", EARLY[0], "--end", EARLY[-1])
    assert result.returncode == 2, result.stderr
    file = project.desk_env
    assert one_line(result) == (
        f"desk: days {EARLY[0]}..{EARLY[-1]} are before DESK_START_DATE={DEMO[0]} (from "
        f"{file}), the desk's first business day: set DESK_START_DATE to {EARLY[0]} or earlier "
        f"in {file} (`make desk-env DESK_START_DATE={EARLY[0]}` rewrites it), then backfill "
        f"{EARLY[0]}..{EVE} in one range: the days left out before {DEMO[0]} would be missing "
        "from every later day's positions"
    )
    # Refused before anything was opened: no warehouse, no run.
    assert sorted(p.name for p in file.parent.iterdir()) == ["desk.env"]


def test_a_variable_set_in_the_environment_still_wins_over_the_file(project, tmp_path):
    elsewhere = f"sqlite:///{tmp_path}/warehouse.db"
    result = project.desk(
        "backfill",
        "--start",
        EARLY[0],
        "--end",
        EARLY[0],
        DESK_START_DATE=EARLY[0],
        DESK_WAREHOUSE_URL=elsewhere,
    )
    assert result.returncode == 0, result.stderr
    assert f"backfilled 1 days, {EARLY[0]}..{EARLY[0]}" in result.stdout


def test_the_demos_warehouse_refuses_a_process_in_another_time_zone(project):
    built = project.desk("backfill", "--start", DEMO[0], "--end", DEMO[-1])
    assert built.returncode == 0, built.stderr
    stored = project.desk("positions", "--book", BOOK, "--date", DEMO[0], "--json")
    assert stored.returncode == 0, stored.stderr
    warehouse = project.checkout / ".desk" / "warehouse.db"
    refusal = (
        f"desk: DESK_TIMEZONE={NEW_YORK} (set in the environment) is not UTC, the time zone the "
        f"business days of the warehouse sqlite:///{warehouse} are cut in: set DESK_TIMEZONE=UTC "
        "for this warehouse (a process in another zone would store other days under the same "
        "dates), or use another warehouse"
    )
    for command in (
        ["positions", "--book", BOOK, "--date", DEMO[-1]],  # today: "after today" in New York
        ["positions", "--book", BOOK, "--date", DEMO[0]],
        ["backfill", "--start", DEMO[0], "--end", DEMO[0]],
        ["tick"],
        ["status"],
    ):
        result = project.desk(*command, DESK_TIMEZONE=NEW_YORK)
        assert result.returncode == 2, (command, result.stderr)
        assert one_line(result) == refusal, command
    # Nothing was written in New York's days: the UTC EOD is as it was.
    assert project.desk("positions", "--book", BOOK, "--date", DEMO[0], "--json").stdout == (
        stored.stdout
    )
    doctor = project.desk("doctor", DESK_TIMEZONE=NEW_YORK)
    assert doctor.returncode == 1
    assert f"FAIL calendar   {refusal.removeprefix('desk: ')}" in doctor.stdout


def test_make_run_in_another_zone_stops_before_touching_the_warehouse_or_its_calendar(project):
    before = project.desk_env.read_text(encoding="utf-8")
    steps = [t for t in make_run_prerequisites() if t != "dev"]
    made = project.make(*steps, f"DESK_TIMEZONE={NEW_YORK}")
    assert made.returncode != 0
    assert (
        f"desk: DESK_TIMEZONE={NEW_YORK} (set in the environment) is not UTC, the time zone the "
        "business days of the warehouse"
    ) in made.stderr
    assert "backfilled" not in made.stdout
    assert project.desk_env.read_text(encoding="utf-8") == before
    doctor = project.desk("doctor")
    calendar = next(x for x in doctor.stdout.splitlines() if " calendar " in x)
    assert calendar == (
        f"ok   calendar   DESK_START_DATE={DEMO[0]} (from {project.desk_env}), DESK_TIMEZONE=UTC "
        f"(from {project.desk_env}); the warehouse's days are cut in UTC"
    )
