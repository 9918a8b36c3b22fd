"""The README as a new user follows it: `make run`'s steps, its `desk` examples, then PostgreSQL.

Each example of "First answers from the `desk` command" runs verbatim in a fresh checkout after
`make run`'s steps (a 2-day demo, no UI), and its output is checked against what the user
should see. A README example this test does not know fails it: README and product agree.
"""

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from desk_pipeline_tests.e2e import driver
from desk_pipeline_tests.e2e.checkout import (
    MAKE,
    command_words,
    fresh_checkout,
    make_run_prerequisites,
    readme_block,
    user_environment,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DEMO_DAYS = 2
BOOK = "REPO-EUR-01"
# The demo's days: the last DEMO_DAYS calendar days up to today (UTC, the demo's time zone), from
# the Friday before when the first is a weekend day (the Makefile's rule, said in the README).
TODAY = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
FIRST = TODAY - pd.Timedelta(days=DEMO_DAYS - 1)
FIRST -= pd.Timedelta(days=max(0, FIRST.dayofweek - 4))
DEMO = [d.strftime("%Y-%m-%d") for d in pd.date_range(FIRST, TODAY, freq="D")]
DAILY_ASSETS = ["instruments", "prices", "eod_positions", "eod_valuation", "collateral_ranking"]
# What text output must never show: pandas' missing-value spellings, scientific notation.
NOISE = re.compile(r"\bNaN\b|\bnan\b|\bNone\b|<NA>|\bNaT\b|\d[eE][+-]\d|Empty DataFrame")


@dataclasses.dataclass(frozen=True)
class Demo:
    checkout: Path
    env: dict[str, str]
    make: subprocess.CompletedProcess


def make_run_steps(
    checkout: Path, env: dict[str, str], *variables: str
) -> subprocess.CompletedProcess:
    """`make run` up to the UI: every prerequisite but `dev`, with a short demo."""
    steps = [t for t in make_run_prerequisites() if t != "dev"]
    return subprocess.run(
        [*MAKE, *steps, f"DEMO_DAYS={DEMO_DAYS}", *variables],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    checkout = fresh_checkout(tmp_path_factory.mktemp("checkout"))
    env = user_environment()
    made = make_run_steps(checkout, env)
    assert made.returncode == 0, made.stdout + made.stderr
    return Demo(checkout, env, made)


def shell(demo: Demo, setup: list[str], line: str) -> subprocess.CompletedProcess:
    """``line`` in bash in the checkout, after the block's setup lines (venv, variables)."""
    script = "\n".join(["set -e", *setup, line])
    return subprocess.run(
        ["bash", "-c", script], cwd=demo.checkout, env=demo.env, capture_output=True, text=True
    )


def table_rows(text: str) -> list[list[str]]:
    """The rows of the first table in ``text``: the lines after its header's rule."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.strip().startswith("───"))
    rows = []
    for line in lines[rule + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_make_run_stores_the_demo_days_and_starts_green(demo):
    assert f"backfilled {len(DEMO)} days, {DEMO[0]}..{DEMO[-1]}" in demo.make.stdout
    # Quiet: make's own lines, one progress line, no Dagster log or warnings.
    assert "dagster - " not in demo.make.stdout + demo.make.stderr
    assert "Warning" not in demo.make.stdout + demo.make.stderr
    [window] = re.findall(r"\(10-minute window (\S+)\), run ", demo.make.stdout)

    with driver.open_instance(demo.checkout / ".desk") as instance:
        # The calendar starts with the demo: every daily partition is materialised.
        for asset in DAILY_ASSETS:
            assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(DEMO), asset
        # The window that just closed is there, fresh enough for the freshness policy (20 min).
        assert instance.get_materialized_partitions(dg.AssetKey("intraday_positions")) == {window}
        event = instance.get_latest_materialization_event(dg.AssetKey("intraday_positions"))
        assert event is not None
        age = pd.Timestamp.now(tz="UTC") - pd.Timestamp(event.timestamp, unit="s", tz="UTC")
        assert age < pd.Timedelta(minutes=20)
        failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        assert failed == []


def test_the_readme_first_answers_run_verbatim_and_show_what_they_say(demo):
    lines = readme_block("## First answers from the `desk` command")
    setup = [line for line in lines if command_words(line)[0] != "desk"]
    assert any("source .venv/bin/activate" in line for line in setup)
    commands = [line for line in lines if command_words(line)[0] == "desk"]
    assert len(commands) >= 8
    shown: dict[str, str] = {}
    for line in commands:
        result = shell(demo, setup, line)
        assert result.returncode == 0, f"{line}\n{result.stderr}"
        assert result.stderr == "", f"{line}\n{result.stderr}"
        words = command_words(line)[1:]
        if "--json" not in words:
            assert max(len(x) for x in result.stdout.splitlines()) <= 100, line
            assert not NOISE.search(result.stdout), f"{line}\n{result.stdout}"
        shown[" ".join(w for w in words if not w.startswith("$"))] = result.stdout
    check_books(shown.pop("books"))
    check_days(shown.pop(f"books --book {BOOK}"))
    check_positions(shown.pop(f"positions --book {BOOK} --date"))
    check_marks(shown.pop(f"positions --book {BOOK} --date --marks"))
    ranking = json.loads(shown.pop(f"ranking --book {BOOK} --date --json"))
    check_ranking(shown.pop(f"ranking --book {BOOK} --date"), ranking)
    check_concentration(shown.pop(f"concentration --book {BOOK} --date"))
    check_concentration_day(shown.pop("concentration --date"))
    check_status(shown.pop("status"))
    assert shown == {}, f"README examples without an expectation here: {list(shown)}"


def test_the_readme_backfill_example_brings_the_demos_calendar_up_to_date_again(demo):
    # The old example, days of January, passed a calendar of 2026-01-01 in the user's shell and
    # left a hole in every stored demo day; this one is the demo's own calendar, from desk.env.
    lines = readme_block("## The `desk` command")
    setup = [line for line in lines if command_words(line)[0] == "source"]
    assert setup == [line for line in lines if line.startswith("source .desk/desk.env")]
    [backfill] = [line for line in lines if command_words(line)[:2] == ["desk", "backfill"]]
    result = shell(demo, ["source .venv/bin/activate", *setup], backfill)
    assert result.returncode == 0, f"{backfill}\n{result.stderr}"
    assert f"backfilled {len(DEMO)} days, {DEMO[0]}..{DEMO[-1]}," in result.stdout
    books = shell(demo, ["source .venv/bin/activate"], "desk books --json")
    stored = json.loads(books.stdout)["books"]
    assert {(b["first_eod"], b["latest_eod"], b["days"]) for b in stored} == {
        (DEMO[0], DEMO[-1], len(DEMO))
    }


def check_books(text: str) -> None:
    assert text.startswith("Books with end-of-day positions · 20\n")
    rows = table_rows(text)
    # Every book on every day: the demo starts on a business day, and every book trades on it.
    assert rows == [[book, str(len(DEMO)), DEMO[0], DEMO[-1]] for book, *_ in rows]
    assert len(rows) == 20 and BOOK in {row[0] for row in rows}


def check_days(text: str) -> None:
    assert text.startswith(f"Stored days · {BOOK} · {len(DEMO)}\n")
    assert [row[0] for row in table_rows(text)] == DEMO


def check_positions(text: str) -> None:
    assert text.startswith(f"End-of-day positions · {BOOK} · {DEMO[-1]} · as of ")
    rows = table_rows(text)
    assert rows and all(len(row) == 4 for row in rows)
    # Quantities with thousands separators, whole numbers for bonds' nominal.
    assert any(re.fullmatch(r"-?\d{1,3}(,\d{3})+", row[1]) for row in rows)


def check_marks(text: str) -> None:
    assert text.startswith(f"End-of-day positions · {BOOK} · {DEMO[-1]} · as of ")
    assert re.search(r"In EUR: market value -?[\d,]+, unrealised P&L -?[\d,]+", text)
    currencies = {row[1] for row in table_rows(text)}
    assert currencies <= {"EUR", "USD", "GBP", "JPY"} and "EUR" in currencies


def check_ranking(text: str, document: dict) -> None:
    # The contract's document, unchanged, and whether it is of the current EOD (added keys).
    assert list(document)[:4] == ["book_id", "business_date", "as_of", "items"]
    assert set(document) - {"book_id", "business_date", "as_of", "items"} == {
        "current",
        "snapshot_id",
        "eod_as_of",
        "eod_snapshot_id",
        "incomplete_fix",
    }
    # While `make run` is up, today's ranking may trail a tick's EOD for a moment; the text says
    # so exactly then.
    assert ("Ranked from an older snapshot" in text) is not document["current"]
    assert (document["book_id"], document["business_date"]) == (BOOK, DEMO[-1])
    eligible = [i for i in document["items"] if i["eligible"]]
    ineligible = [i for i in document["items"] if not i["eligible"]]
    assert {tuple(sorted(i)) for i in document["items"]} == {
        (
            "eligible",
            "fx_rate",
            "haircut",
            "instrument_id",
            "price",
            "quantity",
            "rank",
            "reason",
            "value",
        )
    }
    # The same facts as the JSON: every eligible item at its rank, the same total.
    assert text.startswith(f"Collateral ranking · {BOOK} · {DEMO[-1]} · as of ")
    assert f"· {len(eligible)} eligible" in text.splitlines()[0]
    rows = table_rows(text)
    assert [(row[0], row[1]) for row in rows] == [
        (str(i["rank"]), i["instrument_id"]) for i in eligible
    ]
    total = sum(i["value"] for i in eligible)
    assert f"Lendable value {total:,.0f} EUR" in text
    if ineligible:
        assert f"Not eligible · {len(ineligible)}" in text
        assert all(i["instrument_id"] in text for i in ineligible)


def check_concentration(text: str) -> None:
    assert text.startswith(f"Issuer concentration · {BOOK} · {DEMO[-1]} · as of ")
    assert text.splitlines()[0].endswith("· limit 25.0%")
    rows = table_rows(text)
    assert rows and all(re.search(r"\b\d+\.\d%", " ".join(row)) for row in rows)


def check_concentration_day(text: str) -> None:
    # Every demo book, each on at least one row (its issuers over the limit, else its largest).
    assert text.startswith(f"Issuer concentration · {DEMO[-1]} · 20 books · limit 25.0%\n")
    books = {row[0] for row in table_rows(text) if re.fullmatch(r"[A-Z]+-[A-Z]{3}-\d{2}", row[0])}
    assert len(books) == 20 and BOOK in books
    assert re.search(
        r"over the limit of 25\.0% \(DESK_ISSUER_CONCENTRATION_LIMIT\): \d+ of 20\.", text
    )


def check_status(text: str) -> None:
    assert text.startswith("Desk status · 20 books\n")
    assert "quarantined 0 (0 unattributed), events pending 0" in text


def test_the_readme_postgresql_switch_after_a_sqlite_run_takes_effect(
    demo, pg_url, dagster_pg_url, monkeypatch
):
    home = demo.checkout / ".desk"
    with driver.open_instance(home) as sqlite_instance:
        sqlite_runs = {r.run_id for r in sqlite_instance.get_runs()}
    assert sqlite_runs

    lines = readme_block("### PostgreSQL")
    exported = dict(
        command_words(line)[1].split("=", 1) for line in lines if line.startswith("export ")
    )
    assert set(exported) == {"DESK_WAREHOUSE_URL", "DAGSTER_PG_URL"}
    [make_line] = [command_words(line) for line in lines if line.startswith("make ")]
    assert make_line[:2] == ["make", "run"]
    # The README's servers are examples: the test's own databases take their place.
    env = {**demo.env, "DESK_WAREHOUSE_URL": pg_url, "DAGSTER_PG_URL": dagster_pg_url}
    made = make_run_steps(demo.checkout, env, *make_line[2:])
    assert made.returncode == 0, made.stdout + made.stderr

    config = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8"))
    assert config["run_storage"]["config"] == {"postgres_url": {"env": "DAGSTER_PG_URL"}}
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    with driver.open_instance(home) as instance:
        assert type(instance.run_storage).__name__ == "DeskPostgresRunStorage"
        runs = {r.run_id for r in instance.get_runs()}
        # The UI shows this warehouse's runs only, none of the SQLite run's history.
        assert runs and not runs & sqlite_runs
        done = instance.get_materialized_partitions(dg.AssetKey("eod_positions"))
    books = subprocess.run(
        ["bash", "-c", "source .venv/bin/activate && desk books --json"],
        cwd=demo.checkout,
        env=env,
        capture_output=True,
        text=True,
    )
    assert books.returncode == 0, books.stderr
    stored = json.loads(books.stdout)["books"]
    assert {(b["first_eod"], b["latest_eod"], b["days"]) for b in stored} == {
        (DEMO[0], DEMO[-1], len(DEMO))
    }
    assert done == set(DEMO)  # no day marked done that the warehouse does not have
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        eods = conn.execute(sa.text("select count(*) from eod_snapshots")).scalar_one()
    engine.dispose()
    assert eods == 20 * len(DEMO)
