"""Random interleavings of trades, corrections, ticks, backfills and restatements keep EODs right.

The machine runs the real assets as Dagster runs them (`materialize` on an ephemeral instance, a
backfill's range in one run) over a SQLite warehouse fed by a landing folder; a plain per-trade
reference is the oracle.
"""

import itertools
import shutil
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from desk_pipeline.defs.positions.sensors import restatement_request
from desk_pipeline.defs.resources import (
    CalendarResource,
    HaircutScheduleResource,
    LandingFolderTradeSource,
    WarehouseResource,
)
from desk_pipeline_tests.builders import trade, write_landing_file
from desk_pipeline_tests.location import desk_assets
from desk_pipeline_tests.reference import reference_positions
from desk_pipeline_tests.sizes import examples

eod_positions, intraday_positions, trades = desk_assets(
    "eod_positions", "intraday_positions", "trades"
)

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
FIRST = pd.Timestamp(DAYS[0], tz="UTC")
BOOKS = ["B1", "B2"]
INSTRUMENTS = ["XS0001", "XS0002"]

quantities = st.sampled_from([-30, -20, -10, 10, 20, 30])
prices = st.sampled_from([9.5, 10.0, 10.5, 11.0])
# Any minute of the four days: new trades, late trades and trades on days not yet stored.
minutes = st.integers(min_value=0, max_value=len(DAYS) * 24 * 60 - 1)


def as_key(instant: pd.Timestamp) -> str:
    return instant.strftime("%Y-%m-%d-%H:%M")


class RestatementMachine(RuleBasedStateMachine):
    """The desk under random late, amended, cancelled and duplicated trades."""

    @initialize()
    def start(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="desk_sm_"))
        self.landing = self.folder / "landing"
        self.landing.mkdir()
        self.archive = self.folder / "archive"
        self.archive.mkdir()
        self.pending: list[dict] = []
        self.url = f"sqlite:///{self.folder}/warehouse.db"
        self.resources = {
            "warehouse": WarehouseResource(url=self.url),
            "trade_source": LandingFolderTradeSource(folder=str(self.landing)),
            "calendar": CalendarResource(timezone="UTC"),
            "haircuts": HaircutScheduleResource(),
        }
        # The assets' own repository (one per URL per process): one engine to dispose.
        self.repo = self.resources["warehouse"].repository()
        self.instance = dg.DagsterInstance.ephemeral()
        self.written: dict[tuple[str, int], dict] = {}  # every (trade_id, version) sent
        self.files = itertools.count()
        self.ids = itertools.count()
        self.next_window = FIRST + pd.Timedelta(hours=9)

    def teardown(self) -> None:
        self.repo.engine.dispose()
        self.instance.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    # ---- what the source sends -------------------------------------------------------------

    def send(self, rows: list[dict]) -> None:
        self.pending += rows
        for row in rows:
            self.written.setdefault((row["trade_id"], row["version"]), row)

    def deliver(self) -> None:
        """What was sent since the last step lands as one file, for the next asset to ingest."""
        if self.pending:
            write_landing_file(self.landing, f"f{next(self.files):04d}.csv", self.pending)
            self.pending = []

    def archive_ingested(self) -> None:
        # An operator archives ingested files; re-reading them would change nothing but time.
        for path in self.landing.glob("*.csv"):
            path.rename(self.archive / path.name)

    def latest(self, trade_id: str) -> dict:
        return max(
            (r for (tid, _), r in self.written.items() if tid == trade_id),
            key=lambda r: r["version"],
        )

    @rule(
        book=st.sampled_from(BOOKS),
        instrument=st.sampled_from(INSTRUMENTS),
        quantity=quantities,
        price=prices,
        minute=minutes,
    )
    def book_trade(self, book: str, instrument: str, quantity: int, price: float, minute: int):
        at = FIRST + pd.Timedelta(minutes=minute)
        tid = f"T{next(self.ids)}"
        self.send([trade(tid, quantity, price, book=book, instrument=instrument, at=at)])

    @precondition(lambda self: self.written)
    @rule(data=st.data(), quantity=quantities, price=prices, minute=minutes)
    def amend_trade(self, data: st.DataObject, quantity: int, price: float, minute: int):
        tid = data.draw(st.sampled_from(sorted({tid for tid, _ in self.written})))
        old = self.latest(tid)
        at = FIRST + pd.Timedelta(minutes=minute)
        amended = dict(old, version=old["version"] + 1, status="AMEND", trade_time=at)
        self.send([dict(amended, quantity=float(quantity), price=float(price))])

    @precondition(lambda self: self.written)
    @rule(data=st.data())
    def cancel_trade(self, data: st.DataObject):
        tid = data.draw(st.sampled_from(sorted({tid for tid, _ in self.written})))
        old = self.latest(tid)
        self.send([dict(old, version=old["version"] + 1, status="CANCEL")])

    @precondition(lambda self: self.written)
    @rule(data=st.data())
    def resend_a_version(self, data: st.DataObject):
        key = data.draw(st.sampled_from(sorted(self.written)))
        self.send([self.written[key]])

    # ---- what the pipeline does ------------------------------------------------------------

    @precondition(lambda self: self.next_window < FIRST + pd.Timedelta(days=len(DAYS)))
    @rule(skip=st.integers(min_value=0, max_value=150))
    def tick(self, skip: int):
        """The 10-minute schedule: ingest the window, snapshot every book as of its end."""
        window = self.next_window + pd.Timedelta(minutes=10 * skip)
        window = min(window, FIRST + pd.Timedelta(days=len(DAYS), minutes=-10))
        key = as_key(window)
        self.deliver()
        self.run([trades, intraday_positions], partition_key=key)
        self.archive_ingested()
        self.next_window = window + pd.Timedelta(minutes=10)

    @rule(first=st.integers(0, len(DAYS) - 1), length=st.integers(1, len(DAYS)))
    def backfill_eods(self, first: int, length: int):
        days = DAYS[first : first + length]
        self.eods(days[0], days[-1])

    @rule()
    def restate(self):
        """The restatement sensor's request, run: afterwards nothing is stale."""
        request = restatement_request(self.repo.eod_headers(), self.repo.late_changes())
        if request is not None:
            self.eods(
                request.tags["dagster/asset_partition_range_start"],
                request.tags["dagster/asset_partition_range_end"],
            )
        assert not self.repo.eod_headers()["stale"].any()

    def eods(self, start: str, end: str) -> None:
        self.deliver()
        self.run(
            [eod_positions],
            tags={
                "dagster/asset_partition_range_start": start,
                "dagster/asset_partition_range_end": end,
            },
        )
        self.archive_ingested()

    def run(self, assets: list[dg.AssetsDefinition], **partitions) -> None:
        result = dg.materialize(
            assets, resources=self.resources, instance=self.instance, **partitions
        )
        assert result.success

    # ---- what must always hold -------------------------------------------------------------

    @invariant()
    def every_current_eod_equals_the_reference(self) -> None:
        if not hasattr(self, "repo"):
            return
        stored = self.repo.all_trade_versions()
        versions = stored.to_dict(orient="records")
        ingested = set(zip(stored["trade_id"], stored["version"], strict=True))
        # Nothing ingested is invented or lost: what is stored was sent, once per version.
        assert ingested <= set(self.written) and len(ingested) == len(stored)
        headers = self.repo.eod_headers()
        for h in headers[~headers["stale"]].itertuples():
            as_of = pd.Timestamp(h.as_of_us * 1000, tz="UTC")
            expected = {
                k[1]: p
                for k, p in reference_positions(versions, as_of).items()
                if k[0] == h.book_id
            }
            rows = self.repo.eod(h.book_id, h.business_date)[1].set_index("instrument_id")
            assert set(rows.index) == set(expected), (h.book_id, h.business_date)
            for instrument, ref in expected.items():
                got = rows.loc[instrument]
                assert got["quantity"] == pytest.approx(ref.quantity), (h, instrument)
                assert got["avg_price"] == pytest.approx(ref.avg_price), (h, instrument)
                assert got["realized_pnl"] == pytest.approx(ref.realized_pnl), (h, instrument)


RestatementMachine.TestCase.settings = settings(
    # Each step is a Dagster run: 10 machines of 15 steps in CI, 100 in the thorough profile.
    max_examples=examples(10),
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_trading_days_keep_every_current_eod_equal_to_the_reference = RestatementMachine.TestCase
