"""`desk serve` as an operator runs it: a snapshot requested over HTTP, run by Dagster, read back.

The installed `desk` script serves on a free loopback port; the test posts a snapshot request with
the bearer token, polls the run until it succeeds, reads the refreshed EOD over HTTP and compares
it with what `desk positions --json` prints for the same book and day.
"""

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from desk_pipeline_tests.broker import free_port
from desk_pipeline_tests.builders import trade, write_landing_file
from desk_pipeline_tests.e2e import driver
from desk_pipeline_tests.e2e.driver import run_desk, wait_until
from desk_pipeline_tests.e2e.event_desk import last_line
from desk_pipeline_tests.e2e.test_cli_operator import environment

pytestmark = pytest.mark.slow  # a real web server

TOKEN = "e2e-token-4711"
FINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def call(url: str, method: str = "GET", token: str | None = None) -> tuple[int, Any]:
    """One request; the status and the JSON body, for errors too."""
    request = urllib.request.Request(url, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


@contextmanager
def serving(env: dict, log: Path) -> Iterator[str]:
    """`desk serve` on a free port until the block ends; yields its base URL.

    Started as a background job of a shell that ran Dagster starts it (SIGINT and SIGTERM
    ignored) and stopped with SIGTERM, as an operator stops it.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with driver.desk_running(env, log, "serve", "--port", str(port)) as server:
        wait_until("desk serve answering", 120, lambda: call(f"{base}/health")[0] == 200)
        yield base
        # uvicorn shuts down gracefully on SIGTERM, the run in progress included.
        code = driver.stop(server, "desk serve", seconds=60)
    assert (code, last_line(log)) == (
        143,
        "desk: serve stopped by SIGTERM; a run in progress, if any, was finished first; "
        "requested runs not started were dropped",
    ), log.read_text()[-3000:]
    assert "Application shutdown complete." in log.read_text()
    # Its runs log at INFO: DEBUG wrote every engine event of every run to the server's log.
    assert " - DEBUG - " not in log.read_text()


def test_a_snapshot_requested_over_http_is_read_back_as_desk_positions_prints_it(tmp_path):
    # A trade inside the latest closed 10-minute window and one the day before, backfilled.
    closed = pd.Timestamp.now(tz="UTC").floor("10min")
    recent = closed - pd.Timedelta(minutes=5)
    day_before = recent.normalize() - pd.Timedelta(days=1)
    landing = tmp_path / "landing"
    write_landing_file(
        landing,
        "trades.csv",
        [
            trade(
                "T-1",
                100,
                1.00,
                book="REPO-1",
                instrument="DE0001",
                at=day_before + pd.Timedelta(hours=9),
            ),
            trade("T-2", 50, 1.30, book="REPO-1", instrument="DE0001", at=recent),
        ],
    )
    env = environment(
        tmp_path,
        DESK_WAREHOUSE_URL=f"sqlite:///{tmp_path}/warehouse.db",
        DESK_TRADE_SOURCE=f"landing:{landing}",
        DESK_START_DATE=(day_before - pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
        DESK_API_TOKEN=TOKEN,
    )
    run_desk(
        env,
        "backfill",
        "--start",
        day_before.strftime("%Y-%m-%d"),
        "--end",
        day_before.strftime("%Y-%m-%d"),
    )

    with serving(env, tmp_path / "serve.log") as base:
        status, refused = call(f"{base}/books/REPO-1/snapshots", "POST")
        assert status == 401 and refused["detail"].startswith("a bearer token is required")
        status, accepted = call(f"{base}/books/REPO-1/snapshots", "POST", TOKEN)
        assert status == 202, accepted
        snapshot, refresh = accepted["runs"]
        assert accepted["run_id"] == refresh
        done = wait_until(
            "the snapshot request's runs succeeding",
            300,
            lambda: (state := call(f"{base}/runs/{refresh}")[1])["status"] in FINAL and state,
        )
        assert done["status"] == "SUCCESS", done
        day = done["partition"]
        status, over_http = call(f"{base}/books/REPO-1/eod/{day}")
        assert status == 200, over_http

    printed = json.loads(
        run_desk(env, "positions", "--book", "REPO-1", "--date", day, "--json").stdout
    )
    assert over_http == printed
    assert day == recent.strftime("%Y-%m-%d")
    (position,) = over_http["positions"]
    assert position["instrument_id"] == "DE0001"
    assert position["quantity"] == 150.0
    assert position["avg_price"] == pytest.approx((100 * 1.00 + 50 * 1.30) / 150)
    assert pd.Timestamp(over_http["as_of"]) >= closed

    # Both runs are on the DAGSTER_HOME instance (what the UI shows), tagged with the request.
    with driver.open_instance(Path(env["DAGSTER_HOME"])) as instance:
        runs = [instance.get_run_by_id(run_id) for run_id in (snapshot, refresh)]
    assert [(r.job_name, r.status) for r in runs] == [
        ("intraday_job", dg.DagsterRunStatus.SUCCESS),
        ("daily_job", dg.DagsterRunStatus.SUCCESS),
    ]
    assert {r.tags["desk/request"] for r in runs} == {accepted["request"]}
    assert runs[0].tags["dagster/partition"].startswith(day)
