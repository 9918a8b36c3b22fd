"""`make run` in a fresh checkout, then the README's UI backfill clicked in Chromium, then `desk`.

The README says: start the calendar earlier (`make run DESK_START_DATE=…`), then Jobs →
`daily_job` → Partitions → Materialize… → Missing → Launch backfill, and the whole daily chain
(reference data, EOD, valuation, ranking and their checks) is there for those days. This test
does exactly that against a real `dagster dev` started by `make run`, and then asks `desk` for
the rankings of the backfilled days. Screenshots of the asset graph and of one backfilled
partition's metadata go to test-artifacts/.
"""

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from desk_pipeline_tests.broker import free_port
from desk_pipeline_tests.e2e.checkout import MAKE, ROOT, fresh_checkout, user_environment
from desk_pipeline_tests.e2e.driver import wait_until
from desk_pipeline_tests.e2e.test_dagster_ui import Dagster, dagster_dev, dismiss_community_dialog

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts"
BOOK = "REPO-EUR-01"
# Where the README's flow starts and ends, in its own words.
README_FLOW = (
    "**Jobs** →\n  `daily_job` → **Partitions** tab → **Materialize…** → in *Partition selection* "
    "click\n  **Missing**"
)


def weekday_on_or_before(day: pd.Timestamp) -> pd.Timestamp:
    return day - pd.Timedelta(days=max(0, day.dayofweek - 4))


TODAY = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
# A one-day demo (the Makefile starts it on a business day), a calendar three days longer.
DEMO_FIRST = weekday_on_or_before(TODAY)
CALENDAR_FIRST = weekday_on_or_before(DEMO_FIRST - pd.Timedelta(days=3))
MISSING = [
    d.strftime("%Y-%m-%d")
    for d in pd.date_range(CALENDAR_FIRST, DEMO_FIRST - pd.Timedelta(days=1), freq="D")
]

BACKFILLS = """
{ partitionBackfillsOrError(limit: 5) {
    ... on PartitionBackfills { results { id status partitionNames } } } }
"""
BACKFILL_RUNS = """
query($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status stepStats { stepKey status } } }
  }
}
"""
FRESHNESS = """
{ assetNodes(assetKeys: [{path: ["intraday_positions"]}]) {
    freshnessStatusInfo { freshnessStatus } } }
"""
PARTITION_STATS = """
{ assetNodes { assetKey { path } partitionStats { numMaterialized numPartitions numFailed } } }
"""


class MadeRun:
    """`make run` running in the background: its output so far and its UI."""

    def __init__(self, checkout: Path, log: Path) -> None:
        self.checkout = checkout
        self.log = log

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def desk(self, *args: str) -> subprocess.CompletedProcess:
        """`desk` as the README has the user call it, in the checkout."""
        return subprocess.run(
            [".venv/bin/desk", *args],
            cwd=self.checkout,
            env=user_environment(),
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Iterator[tuple[MadeRun, Dagster]]:
    checkout = fresh_checkout(tmp_path_factory.mktemp("checkout"))
    port = free_port()
    log = checkout.parent / "make_run.log"
    command = [
        *MAKE,
        "run",
        "DEMO_DAYS=1",
        f"DESK_START_DATE={CALENDAR_FIRST:%Y-%m-%d}",
        f"PORT={port}",
    ]
    run = MadeRun(checkout, log)
    try:
        with dagster_dev(
            [shutil.which("make") or "make", *command[1:]],
            cwd=checkout,
            env=user_environment(),
            log=log,
            port=port,
            what="make run's UI with the code location loaded",
            seconds=900,
            grace=60,
            ready=lambda: "dagster dev" in run.output(),
        ) as server:
            yield run, server
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "make_run.log").write_text(run.output(), encoding="utf-8")


def launch_chromium(playwright, chromium: Path):
    return playwright.chromium.launch(
        executable_path=str(chromium),
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


def wait_for_graph(page: Page) -> None:
    """Every asset of the lineage shown, and its status loaded."""
    for name in [
        "trades",
        "intraday_positions",
        "eod_positions",
        "eod_valuation",
        "collateral_ranking",
        "instruments",
        "prices",
    ]:
        page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
    try:
        # For the screenshot: the nodes' status lines, loaded after the graph.
        page.wait_for_function(
            "() => !document.body.innerText.includes('Loading')", timeout=120_000, polling=1_000
        )
    except PlaywrightTimeoutError:
        pass


def test_a_fresh_make_run_is_green_with_its_days_and_a_fresh_window(made):
    run, server = made
    output = run.output()
    assert "will not be used" not in output  # no dagster.yaml where dagster dev starts
    # Dagster's beta, preview and supersession notices are for the desk's developers.
    assert not re.search(r"(Beta|Preview|Supersession)Warning", output), output
    assert "Broken pipe" not in output  # the instance target's comparison read all it was given
    assert f"backfilled {len(pd.date_range(DEMO_FIRST, TODAY))} days" in output
    stats = {
        n["assetKey"]["path"][0]: n["partitionStats"]
        for n in server.graphql(PARTITION_STATS)["assetNodes"]
    }
    assert all(s["numFailed"] == 0 for s in stats.values()), stats
    assert stats["eod_positions"]["numMaterialized"] == len(pd.date_range(DEMO_FIRST, TODAY))
    assert stats["intraday_positions"]["numMaterialized"] >= 1

    def freshness() -> str | None:
        [node] = server.graphql(FRESHNESS)["assetNodes"]
        status = node["freshnessStatusInfo"]["freshnessStatus"]
        return status in {"HEALTHY", "WARNING", "DEGRADED"} and status

    # The daemon's freshness daemon evaluates the policy: it passes before the schedule's first
    # tick.
    assert wait_until("the intraday freshness policy evaluated", 300, freshness) == "HEALTHY"


def test_the_readme_ui_backfill_brings_the_daily_chain_that_desk_then_finds(made, chromium):
    run, server = made
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert " ".join(README_FLOW.split()) in " ".join(readme.split())
    assert "**Launch backfill**" in readme
    [lineage] = re.findall(r"Lineage with both asset groups open: (\S+)", run.output())
    before = run.desk("ranking", "--book", BOOK, "--date", MISSING[-1])
    assert before.returncode == 1 and "no collateral ranking" in before.stderr

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(lineage, wait_until="networkidle")
            # A fresh instance greets its first visitor with "Join the Dagster community"; a new
            # user presses Skip, and the instance remembers it.
            page.get_by_role("button", name="Skip").click(timeout=120_000)
            try:
                wait_for_graph(page)
            finally:
                page.screenshot(path=ARTIFACTS / "asset_graph.png", full_page=True)

            # The README's flow, click by click, from the navigation bar.
            page.get_by_role("link").filter(has_text=re.compile(r"^Jobs$")).click(timeout=120_000)
            page.get_by_text("daily_job", exact=True).first.click(timeout=120_000)
            page.get_by_role("tab", name="Partitions").click()
            page.get_by_role("button", name="Materialize…").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_role("button", name="Missing", exact=True).click()
            dialog.get_by_text(f"{len(MISSING)} partitions", exact=True).wait_for(timeout=30_000)
            try:
                dialog.get_by_role("button", name="Launch backfill").click()
                dialog.wait_for(state="hidden", timeout=60_000)
            finally:
                page.screenshot(path=ARTIFACTS / "launch_backfill.png", full_page=True)
        finally:
            browser.close()

    def backfill_done() -> dict | None:
        results = server.graphql(BACKFILLS)["partitionBackfillsOrError"]["results"]
        [backfill] = [b for b in results if sorted(b["partitionNames"] or []) == MISSING]
        assert backfill["status"] not in {"FAILED", "CANCELED", "FAILING"}, backfill
        return backfill if backfill["status"] == "COMPLETED_SUCCESS" else None

    backfill = wait_until("the UI backfill COMPLETED_SUCCESS", 900, backfill_done)
    runs = server.graphql(BACKFILL_RUNS, {"id": backfill["id"]})["runsOrError"]["results"]
    steps = {s["stepKey"]: s["status"] for r in runs for s in r["stepStats"]}
    assert set(steps.values()) == {"SUCCESS"}, steps
    # The whole daily chain and its checks, not eod_positions alone.
    for step in [
        "instruments",
        "prices",
        "eod_positions",
        "eod_valuation",
        "collateral_ranking",
        "eod_positions_eod_matches_recomputation",
        "collateral_ranking_checks",
    ]:
        assert step in steps, sorted(steps)

    for day in MISSING:
        ranking = run.desk("ranking", "--book", BOOK, "--date", day, "--json")
        assert ranking.returncode == 0, ranking.stderr
        document = json.loads(ranking.stdout)
        assert document["business_date"] == day and document["items"]
        assert any(i["eligible"] and i["rank"] == 1 for i in document["items"])
        marks = run.desk("positions", "--book", BOOK, "--date", day, "--marks", "--json")
        assert marks.returncode == 0, marks.stderr
        assert all("market_value" in p for p in json.loads(marks.stdout)["positions"])

    # One backfilled partition's figures, as the UI shows them.
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(
                f"{server.url}/assets/eod_valuation?view=partitions", wait_until="networkidle"
            )
            dismiss_community_dialog(page)
            # A day inside the range: the first and last also label the partitions bar.
            day = MISSING[1]
            page.get_by_placeholder("Filter by name").fill(day)
            figure = page.get_by_text("market_value_EUR").first
            item = page.get_by_text(day, exact=True).filter(visible=True).last
            try:
                # The list re-renders as the filter applies: a click may land on the old one.
                for _ in range(5):
                    item.click(timeout=60_000)
                    try:
                        figure.wait_for(timeout=15_000)
                        break
                    except PlaywrightTimeoutError:
                        continue
                figure.wait_for(timeout=15_000)
            finally:
                page.screenshot(path=ARTIFACTS / "partition_metadata.png", full_page=True)
        finally:
            browser.close()
