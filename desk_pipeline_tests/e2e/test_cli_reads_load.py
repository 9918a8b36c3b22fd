"""The read commands answer without loading Dagster, the engine or the asset definitions.

A trader waits for `desk positions`: importing Dagster alone costs it over a second, and runs
are what the other commands are for. Fails if a read (or something it imports) loads them.
"""

import json
import subprocess
import sys

from desk_pipeline_tests.builders import at, trade, write_landing_file
from desk_pipeline_tests.e2e.driver import desk_env, run_desk

DAY = "2026-03-02"
READS = [
    ["books", "--json"],
    ["positions", "--book", "B1", "--date", DAY, "--json"],
    ["ranking", "--book", "B1", "--date", DAY, "--json"],
    ["concentration", "--book", "B1", "--date", DAY, "--json"],
    ["quarantine", "--json"],
    ["status", "--json"],
]
# Each read's document on a line, then the heavy modules the process loaded.
PROBE = """
import json, sys
from desk_pipeline.cli import cli
for args in json.loads(sys.argv[1]):
    cli.main(args, standalone_mode=False)
    print()
heavy = ("dagster", "numba", "desk_pipeline.definitions", "desk_pipeline.defs.runs")
print(json.dumps([name for name in heavy if name in sys.modules]))
"""


def test_read_commands_load_neither_dagster_nor_the_engine(tmp_path):
    landing = tmp_path / "landing"
    write_landing_file(
        landing, "day.csv", [trade("T-1", 10, 101.5, at=at(DAY, "09:00"), book="B1")]
    )
    env = desk_env(
        tmp_path / "home",
        DESK_WAREHOUSE_URL=f"sqlite:///{tmp_path}/warehouse.db",
        DESK_TRADE_SOURCE=f"landing:{landing}",
        DESK_START_DATE="2026-03-01",
    )
    run_desk(env, "backfill", "--start", DAY, "--end", DAY)

    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(READS)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    *documents, loaded = done.stdout.strip().split("\n\n")
    assert json.loads(loaded) == []
    positions = json.loads(documents[1])
    assert positions["positions"] == [
        {"instrument_id": "XS0001", "quantity": 10, "avg_price": 101.5, "realized_pnl": 0}
    ]


# `desk` with each argument list, in one process; then which of pandas and the warehouse it loaded.
BARE_PROBE = """
import json, sys
from desk_pipeline.cli import main
for args in json.loads(sys.argv[1]):
    sys.argv = ["desk", *args]
    try:
        main()
    except SystemExit:
        pass
heavy = ("pandas", "sqlalchemy", "desk_pipeline.adapters.warehouse", "dagster")
print(json.dumps([name for name in heavy if name in sys.modules]))
"""


def test_version_help_and_an_unknown_command_load_neither_pandas_nor_the_warehouse(tmp_path):
    # They loaded both through the exit codes' error classes: over a second before one line;
    # --help loaded every command (Dagster with cli.runs) to list them: 3.5 s.
    asked = [["--version"], ["postions", "--book", "B1"], ["--help"]]
    done = subprocess.run(
        [sys.executable, "-c", BARE_PROBE, json.dumps(asked)],
        env=desk_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    *answers, loaded = done.stdout.strip().splitlines()
    assert json.loads(loaded) == []
    assert answers[0].startswith("desk ")  # the version line
    assert "No such command 'postions'" in done.stderr
    assert "  backfill       Bring the warehouse up to date for business days" in done.stdout
