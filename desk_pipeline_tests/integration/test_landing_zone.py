"""The landing folder read like a landing zone: complete files only, odd entries refused whole."""

import json
import os
import random
import resource
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.trade_sources import MAX_FILE_BYTES, LandingFolderSource
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.validation.quarantine import MAX_KEPT_BYTES
from desk_pipeline_tests.builders import trade, write_landing_file
from desk_pipeline_tests.sizes import examples

START, END = pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-03-10", tz="UTC")


@pytest.fixture
def repo(sqlite_url) -> PositionRepository:
    repository = PositionRepository(sqlite_url)
    yield repository
    repository.engine.dispose()


def ingest_all(source: LandingFolderSource, repo: PositionRepository) -> list[str]:
    sources = []
    for batch in source.batches(START, END):
        repo.ingest(batch.source, batch.received, batch.trades, batch.rejected)
        sources.append(batch.source)
    return sources


def stored_trades(repo: PositionRepository) -> pd.DataFrame:
    with repo.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                t.current_trades.c.trade_id,
                t.current_trades.c.quantity,
                t.current_trades.c.price,
                t.current_trades.c.trade_time_us,
            ).order_by(t.current_trades.c.trade_id)
        ).all()
    return pd.DataFrame(rows, columns=["trade_id", "quantity", "price", "trade_time_us"])


def at(hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(f"2026-03-05 {hhmm}", tz="UTC")


def test_odd_entries_are_refused_whole_with_a_reason_and_never_followed_out(repo, tmp_path):
    folder = tmp_path / "landing"
    write_landing_file(folder, "good.csv", [trade("G-1", 10, 1.0, at=at("09:00"))])
    write_landing_file(folder, "TRADES.CSV", [trade("U-1", 20, 2.0, at=at("09:10"))])
    write_landing_file(folder, "spaced.csv ", [trade("S-1", 30, 3.0, at=at("09:20"))])
    write_landing_file(folder, ".hidden.csv", [trade("H-1", 1, 1.0, at=at("09:30"))])
    write_landing_file(folder, "late.csv.part", [trade("P-1", 1, 1.0, at=at("09:40"))])
    secret = tmp_path / "secret.txt"
    secret.write_text("trade_id,book_id\nTOP-SECRET,B\n")
    os.mkfifo(folder / "f.csv")
    (folder / "d.csv").mkdir()
    (folder / "out.csv").symlink_to(secret)
    (folder / "dangling.csv").symlink_to(folder / "gone.csv")
    (folder / "loop.csv").symlink_to(folder / "loop.csv")
    (folder / "inside.csv").symlink_to(folder / "good.csv")
    os.close(os.open(os.fsencode(folder) + b"/bad-\xff.csv", os.O_CREAT | os.O_WRONLY))

    sources = ingest_all(LandingFolderSource(folder), repo)

    quarantine = repo.quarantined()
    reasons = dict(zip(quarantine["source"], quarantine["reason"], strict=True))
    assert "a FIFO (named pipe), not a file" in reasons["landing:f.csv#type"]
    assert "a folder, not a file" in reasons["landing:d.csv#type"]
    assert "out of the landing folder, never followed" in reasons["landing:out.csv#link"]
    assert "leads nowhere" in reasons["landing:dangling.csv#link"]
    assert "leads nowhere" in reasons["landing:loop.csv#link"]
    assert "not UTF-8" in reasons["landing:bad-\\xff.csv#name"]
    assert "TOP-SECRET" not in "".join(quarantine["raw"]) + "".join(quarantine["reason"])
    assert set(stored_trades(repo)["trade_id"]) == {"G-1", "U-1", "S-1"}
    assert not any(".hidden" in s or ".part" in s for s in sources)
    # The next run reads the same folder: nothing is quarantined twice.
    ingest_all(LandingFolderSource(folder), repo)
    assert len(repo.quarantined()) == len(quarantine) == 6


def test_an_oversized_file_is_refused_on_its_size_on_disk_without_being_read(repo, tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    with (folder / "huge.csv").open("wb") as huge:  # sparse: takes no disk space
        huge.truncate(MAX_FILE_BYTES + 1)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    ingest_all(LandingFolderSource(folder), repo)

    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < MAX_FILE_BYTES / 2**20 / 4
    reason = repo.quarantined().set_index("source")["reason"]["landing:huge.csv#size"]
    assert f"{MAX_FILE_BYTES + 1} bytes, over the {MAX_FILE_BYTES} byte limit" in reason


def full_file(folder: Path, rows: int) -> bytes:
    trades = [
        trade(f"W-{i:03d}", -150 + i, 120.75 + i / 100, at=at("10:30") + pd.Timedelta(seconds=i))
        for i in range(rows)
    ]
    return write_landing_file(folder, "complete.csv", trades).read_bytes()


@pytest.mark.parametrize("seed", range(3))
def test_a_writer_racing_the_reader_never_lands_cut_values(repo, tmp_path, seed):
    """A writer appends in uneven pieces while the desk polls: only whole rows ever land."""
    expected_folder, folder = tmp_path / "expected", tmp_path / "landing"
    content = full_file(expected_folder, rows=40)
    folder.mkdir()
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(content)), 60))
    done = threading.Event()

    def write() -> None:
        with (folder / "trades.csv").open("wb") as file:
            for lo, hi in zip([0, *cuts], [*cuts, len(content)], strict=True):
                file.write(content[lo:hi])
                file.flush()
                time.sleep(rng.uniform(0, 0.02))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    source = LandingFolderSource(folder)
    polls = 0
    while not done.is_set():
        ingest_all(source, repo)
        polls += 1
    writer.join()
    ingest_all(source, repo)

    expected = PositionRepository(f"sqlite:///{tmp_path}/expected.db")
    ingest_all(LandingFolderSource(expected_folder), expected)
    pd.testing.assert_frame_equal(stored_trades(repo), stored_trades(expected))
    expected.engine.dispose()
    assert polls > 1
    assert repo.quarantined().empty  # no cut value, hence no conflicting duplicate


def test_a_file_written_under_a_temporary_name_is_read_only_after_its_rename(repo, tmp_path):
    folder = tmp_path / "landing"
    content = full_file(tmp_path / "expected", rows=5)
    folder.mkdir()
    part = folder / "trades.csv.part"
    part.write_bytes(content[: len(content) // 2])
    assert ingest_all(LandingFolderSource(folder), repo) == []
    part.write_bytes(content)
    part.rename(folder / "trades.csv")
    ingest_all(LandingFolderSource(folder), repo)
    assert len(stored_trades(repo)) == 5


HEADER = "trade_id,book_id,instrument_id,quantity,price,trade_time"
BAD_ROWS = [
    "X-1,BOOK-A,ISIN-1,ten,10,2026-03-05T09:00:00Z",  # quantity not a number
    "X-2,BOOK-A,ISIN-1,10,-1,2026-03-05T09:00:00Z",  # negative price
    "X-3,BOOK-A,ISIN-1,10,10,2026-03",  # a year-month is not a time
]
GOOD_ROW = "G-1,BOOK-A,ISIN-1,10,10,2026-03-05T09:00:00Z"


def land(folder: Path, name: str, rows: list[str], *, crlf: bool = False) -> None:
    end = "\r\n" if crlf else "\n"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(end.join([HEADER, *rows, ""]).encode())


def file_of(source: str) -> str:
    return source.split("#")[0]


def test_a_bad_row_is_quarantined_once_with_every_file_it_arrived_in(repo, tmp_path):
    # Seen: 5 quarantine rows for 2 distinct bad rows (a renamed copy, an appended row, CRLF).
    folder = tmp_path / "landing"
    source = LandingFolderSource(folder)
    land(folder, "a.csv", [GOOD_ROW, BAD_ROWS[0], BAD_ROWS[1]])
    ingest_all(source, repo)
    land(folder, "a-copy.csv", [GOOD_ROW, BAD_ROWS[0], BAD_ROWS[1]])
    land(folder, "a.csv", [GOOD_ROW, BAD_ROWS[0], BAD_ROWS[1], BAD_ROWS[2]])  # one appended
    land(folder, "a-crlf.csv", [GOOD_ROW, BAD_ROWS[0], BAD_ROWS[1]], crlf=True)
    ingest_all(source, repo)

    quarantine = repo.quarantined().set_index("trade_id")
    assert list(quarantine.index) == ["X-1", "X-2", "X-3"]
    # A source is a file and a digest of the content read (a.csv was read twice: two versions).
    every_file = {"landing:a.csv", "landing:a-copy.csv", "landing:a-crlf.csv"}
    for trade_id in ["X-1", "X-2"]:
        assert file_of(quarantine.loc[trade_id, "source"]) == "landing:a.csv"
        sources = quarantine.loc[trade_id, "sources"]
        assert len(sources) == 4 and {file_of(s) for s in sources} == every_file
    assert [file_of(s) for s in quarantine.loc["X-3", "sources"]] == ["landing:a.csv"]
    assert stored_trades(repo)["trade_id"].tolist() == ["G-1"]


@settings(max_examples=examples(15), deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.sampled_from(range(len(BAD_ROWS))), max_size=4), st.booleans()),
        min_size=1,
        max_size=5,
    )
)
def test_the_quarantine_holds_each_distinct_rejected_row_once_wherever_it_arrived(files):
    """Property: rows == distinct bad rows sent; each row's sources == the files that held it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "landing"
        repo = PositionRepository(f"sqlite:///{tmp}/warehouse.db")
        source = LandingFolderSource(folder)
        held: dict[str, set[str]] = {}
        for n, (bad, crlf) in enumerate(files):
            land(folder, f"f{n}.csv", [GOOD_ROW, *(BAD_ROWS[i] for i in bad)], crlf=crlf)
            for i in bad:
                held.setdefault(f"X-{i + 1}", set()).add(f"landing:f{n}.csv")
            ingest_all(source, repo)
        quarantine = repo.quarantined()
        repo.engine.dispose()
    assert sorted(quarantine["trade_id"]) == sorted(held)
    got = {r.trade_id: {file_of(s) for s in r.sources} for r in quarantine.itertuples()}
    assert got == held


def test_a_file_just_created_empty_waits_for_its_writer_and_is_quarantined_only_if_it_stays_so(
    repo, tmp_path
):
    # Seen: a poll between a writer's open() and its first write quarantined the empty file.
    folder = tmp_path / "landing"
    folder.mkdir()
    content = full_file(tmp_path / "expected", rows=3)
    source = LandingFolderSource(folder, settle_seconds=0.5)
    with (folder / "new.csv").open("wb") as file:
        writes = threading.Timer(0.1, lambda: (file.write(content), file.flush()))
        writes.start()
        ingest_all(source, repo)  # polls while the file is still empty
        writes.join()
    ingest_all(source, repo)
    assert repo.quarantined().empty
    assert len(stored_trades(repo)) == 3

    (folder / "empty.csv").touch()
    ingest_all(source, repo)

    assert repo.quarantined()["reason"].tolist() == ["file is empty"]


def test_a_file_naming_a_column_twice_is_quarantined_whole_not_read_first_one_wins(repo, tmp_path):
    # Seen: "trade_id" twice read as "trade_id" and "trade_id.1": T3 landed, T3b was dropped.
    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / "twice.csv").write_text(
        "trade_id,book_id,instrument_id,quantity,price,trade_time,trade_id\n"
        "T3,BOOK-A,ISIN-1,10,10,2026-03-05T09:00:00Z,T3b\n"
    )
    (folder / "cased.csv").write_text(f" Book_ID,{HEADER},BOOK_ID \nB,{GOOD_ROW},C\n")
    ingest_all(LandingFolderSource(folder), repo)

    quarantine = repo.quarantined().set_index("source")
    assert stored_trades(repo).empty
    assert sorted(map(file_of, quarantine.index)) == ["landing:cased.csv", "landing:twice.csv"]
    assert (quarantine["reason_code"] == "unreadable_file").all()
    reasons = {file_of(s): r for s, r in quarantine["reason"].items()}
    assert reasons["landing:twice.csv"] == "column names repeat (case-insensitive): ['trade_id']"
    assert reasons["landing:cased.csv"] == "column names repeat (case-insensitive): ['book_id']"


def test_a_huge_bad_value_is_kept_cut_to_a_bounded_size_with_its_size_and_digest(repo, tmp_path):
    # Seen: a 30 MB trade_id stored in full twice (trade_id and raw) in one quarantine row.
    folder = tmp_path / "landing"
    huge = "T" * 30_000_000
    land(folder, "huge.csv", [f"{huge},BOOK-A,ISIN-1,10,10,2026-03-05T09:00:00Z"])
    land(folder, "huge2.csv", [f"{huge[:-1]}U,BOOK-A,ISIN-1,10,10,2026-03-05T09:00:00Z"])
    ingest_all(LandingFolderSource(folder), repo)

    quarantine = repo.quarantined()
    assert quarantine["reason_code"].tolist() == ["trade_id_too_long"] * 2  # two distinct inputs
    first = quarantine.iloc[0]
    assert first["trade_id"].startswith("T" * MAX_KEPT_BYTES + "…[truncated, 30000000 bytes, ")
    assert len(first["trade_id"]) < MAX_KEPT_BYTES + 120
    assert len(first["raw"]) < 2 * MAX_KEPT_BYTES
    row = json.loads(first["raw"])  # still JSON: the status finds the row's book
    assert row["book_id"] == "BOOK-A" and row["trade_id"] == first["trade_id"]
    assert quarantine.iloc[0]["trade_id"] != quarantine.iloc[1]["trade_id"]
