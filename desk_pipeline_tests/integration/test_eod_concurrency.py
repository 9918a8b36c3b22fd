"""Keep-last under concurrent writers and a writer killed mid-transaction, on PostgreSQL."""

import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pytest
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse import PositionRepository, now_micros
from desk_pipeline_tests.builders import with_micro_units
from desk_pipeline_tests.integration import eod_writer

pytestmark = pytest.mark.postgres

BOOKS = ("B1", "B2")
INSTRUMENTS = 40
WRITERS = 8
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(pg_url):
    repository = PositionRepository(pg_url)
    yield repository
    repository.engine.dispose()


def snapshot(day: str, step: int) -> pd.DataFrame:
    """Both books as of 09:00 + step x 10 min; each quantity encodes its step."""
    as_of = pd.Timestamp(f"{day} 09:00", tz="UTC") + pd.Timedelta(minutes=10 * step)
    frame = pd.DataFrame(
        [
            {
                "book_id": book,
                "instrument_id": f"I{i:03d}",
                "quantity": float(step * 1000 + i + 1),
                "avg_price": 1.0,
                "realized_pnl": 0.0,
                "business_date": day,
                "as_of": as_of,
            }
            for book in BOOKS
            for i in range(INSTRUMENTS)
        ]
    )
    return with_micro_units(frame)


def test_concurrent_writers_of_the_same_book_day_always_leave_the_newest_snapshot(repo):
    days = [f"2026-03-{d:02d}" for d in range(2, 7)]
    mixes: list[str] = []
    stop = threading.Event()

    def read_continuously() -> None:
        while not stop.is_set():
            for day in days:
                stored = repo.eod("B1", day)
                if stored is not None:
                    steps = {int(q) // 1000 for q in stored[1]["quantity"]}
                    expected = (stored[0]["as_of"].hour - 9) * 6 + stored[0]["as_of"].minute // 10
                    if steps != {expected} or len(stored[1]) != INSTRUMENTS:
                        mixes.append(f"{day}: steps {steps}, as_of step {expected}")

    reader = threading.Thread(target=read_continuously)
    reader.start()
    errors: list[BaseException] = []
    try:
        for day in days:
            steps = random.Random(day).sample(range(1, 30), WRITERS)
            barrier = threading.Barrier(WRITERS)

            def write(step: int, day: str = day, barrier: threading.Barrier = barrier) -> None:
                try:
                    barrier.wait(timeout=30)
                    repo.keep_last_eod(snapshot(day, step), now_micros())
                except BaseException as err:  # reported below, a thread cannot raise
                    errors.append(err)

            threads = [threading.Thread(target=write, args=(s,)) for s in steps]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            newest = max(steps)
            for book in BOOKS:
                header, rows = repo.eod(book, day)
                assert header["as_of"] == snapshot(day, newest)["as_of"].iloc[0]
                assert sorted(rows["quantity"]) == [newest * 1000 + i + 1 for i in range(40)]
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert mixes == []
    with repo.engine.connect() as conn:
        headers = conn.execute(
            sa.select(t.eod_snapshots.c.book_id, t.eod_snapshots.c.business_date)
        ).all()
        orphans = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.eod_positions)
            .where(t.eod_positions.c.snapshot_id.not_in(sa.select(t.eod_snapshots.c.snapshot_id)))
        ).scalar()
        last_events = conn.execute(
            sa.select(t.outbox.c.book_id, t.outbox.c.business_date, t.outbox.c.payload).order_by(
                t.outbox.c.id
            )
        ).all()
    assert len(headers) == len(set(headers)) == len(BOOKS) * len(days)
    assert orphans == 0
    # The last event announced for each book-day names the snapshot that stayed.
    announced = {(b, d): payload for b, d, payload in last_events}
    for book in BOOKS:
        for day in days:
            assert repo.eod(book, day)[0]["snapshot_id"] in announced[(book, day)]


def run_writer(url: str, step: int, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "desk_pipeline_tests.integration.eod_writer", url, str(step), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        start_new_session=True,
    )


def backend_state(repo: PositionRepository, pid: int) -> str | None:
    with repo.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar()


def poll(condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def read_line(stream: IO[str], seconds: float = 60) -> str:
    """The next line the writer prints, failing at the deadline instead of blocking forever."""
    ready, _, _ = select.select([stream], [], [], seconds)
    if not ready:
        raise AssertionError(f"the writer printed nothing within {seconds} s")
    return stream.readline()


def assert_eod_is_step(repo: PositionRepository, step: int) -> None:
    header, rows = repo.eod(eod_writer.BOOK, eod_writer.DAY)
    expected = eod_writer.snapshot(step)
    assert header["as_of"] == expected["as_of"].iloc[0]
    assert len(rows) == eod_writer.ROWS
    assert rows["quantity"].sum() == expected["quantity"].sum()


def test_a_writer_killed_mid_transaction_leaves_the_previous_eod_and_a_rerun_completes_it(
    repo, pg_url
):
    repo.keep_last_eod(eod_writer.snapshot(1), now_micros())
    events_before = len(repo.pending_events())

    writer = run_writer(pg_url, 2, "--hang")
    try:
        line = read_line(writer.stdout)
        assert line.startswith("IN_TRANSACTION"), line + writer.stderr.read()
        backend = int(line.split()[1])
        # Its delete of the old rows and its header update are done but not committed.
        assert poll(lambda: backend_state(repo, backend), "the backend") == "idle in transaction"
        assert_eod_is_step(repo, 1)  # readers meanwhile see the old EOD, whole
    finally:
        os.killpg(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    poll(lambda: backend_state(repo, backend) is None, "PostgreSQL to roll the backend back")

    assert_eod_is_step(repo, 1)
    assert len(repo.pending_events()) == events_before  # no event for an EOD never stored

    rerun = run_writer(pg_url, 2)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert "COMMITTED" in out
    assert_eod_is_step(repo, 2)
    assert len(repo.pending_events()) == events_before + 1
    with repo.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.eod_snapshots)).scalar() == 1
