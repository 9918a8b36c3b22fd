"""The id dictionary on real SQLite and PostgreSQL: whatever ids arrive in whatever batches, the
trades read back through their integer keys are the trades that arrived, and a key once given
never changes, also when two ingestions race."""

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.warehouse import PositionRepository, to_micros
from desk_pipeline.domain.positions.trades import effective_trades
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, TRADE_COLUMNS, empty_frame
from desk_pipeline_tests.builders import T0, make_trades, trade
from desk_pipeline_tests.conftest import pg_schema, schema_url
from desk_pipeline_tests.sizes import examples

# Ids as they may arrive: any text a VARCHAR(64) holds on both databases, alike-looking ones too.
IDS = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=8
)
NO_REJECTS = empty_frame(QUARANTINE_DTYPES)


@contextmanager
def fresh_warehouse(database: str, tmp_path, pg_engine) -> Iterator[PositionRepository]:
    """A new, empty warehouse per hypothesis example: a SQLite file or a PostgreSQL schema."""
    with ExitStack() as cleanup:
        if database == "sqlite":
            url = f"sqlite:///{tmp_path}/{uuid.uuid4().hex[:8]}.db"
        else:
            url = schema_url(cleanup.enter_context(pg_schema(pg_engine)))
        repo = PositionRepository(url)
        try:
            yield repo
        finally:
            repo.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request) -> str:
    return request.param


@st.composite
def batches(draw) -> list[list[dict]]:
    """Trade versions on a few drawn ids, split into batches; amendments may move a trade to
    another book or instrument, and a later batch may bring back an id or a new one."""
    books = draw(st.lists(IDS, min_size=1, max_size=4, unique=True))
    instruments = draw(st.lists(IDS, min_size=1, max_size=5, unique=True))
    versions = []
    for i in range(draw(st.integers(1, 25))):
        base = trade(
            f"T{i:03d}",
            draw(st.integers(-5, 5).filter(bool)),
            draw(st.sampled_from([9.5, 10.0, 12.25])),
            draw(st.integers(0, 600)),
            book=draw(st.sampled_from(books)),
            instrument=draw(st.sampled_from(instruments)),
        )
        versions.append(base)
        versions.extend(
            dict(
                base,
                version=v,
                status=draw(st.sampled_from(["AMEND", "CANCEL"])),
                book_id=draw(st.sampled_from(books)),
                instrument_id=draw(st.sampled_from(instruments)),
                trade_time=T0 + pd.Timedelta(minutes=draw(st.integers(0, 600))),
            )
            for v in range(2, 2 + draw(st.integers(0, 2)))
        )
    order = draw(st.permutations(range(len(versions))))
    cuts = sorted(draw(st.lists(st.integers(1, len(versions)), max_size=3)))
    shuffled = [versions[i] for i in order]
    return [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(versions)], strict=True) if a < b]


def as_strings(trades: pd.DataFrame) -> pd.DataFrame:
    """Ids as plain objects, rows by trade_id: how the reference is compared."""
    frame = trades.astype({"book_id": object, "instrument_id": object})
    return frame.sort_values("trade_id", kind="stable").reset_index(drop=True)


def dictionary(repo: PositionRepository, table: str) -> dict[str, int]:
    with repo.engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()
    return {name: key for key, name in rows}


@settings(
    max_examples=examples(8),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches(), st.data())
def test_trades_read_through_keys_are_the_effective_trades_that_arrived(
    database, tmp_path, request, batches, data
):
    pg_engine = request.getfixturevalue("pg_engine") if database == "postgresql" else None
    with fresh_warehouse(database, tmp_path, pg_engine) as repo:
        given_keys: dict[str, dict[str, int]] = {"book_keys": {}, "instrument_keys": {}}
        for n, batch in enumerate(batches):
            repo.ingest(f"batch-{n}", len(batch), make_trades(batch), NO_REJECTS)
            for table, keys in given_keys.items():
                now = dictionary(repo, table)
                # A key once given never changes; every key is distinct.
                assert {i: now[i] for i in keys} == keys
                assert len(set(now.values())) == len(now)
                keys.update(now)
        arrived = [v for batch in batches for v in batch]
        assert set(given_keys["book_keys"]) == {v["book_id"] for v in arrived}
        assert set(given_keys["instrument_keys"]) == {v["instrument_id"] for v in arrived}

        reference = effective_trades(make_trades(arrived))
        end = T0 + pd.Timedelta(days=1)
        read = repo.trades_between(T0, end)
        for column, table in (("book_id", "book_keys"), ("instrument_id", "instrument_keys")):
            # Every id kept, sorted as Python sorts (code points) by the database itself.
            categories = list(read[column].cat.categories)
            assert categories == sorted(given_keys[table])
        pd.testing.assert_frame_equal(
            as_strings(read[list(TRADE_COLUMNS)]), as_strings(reference), check_exact=True
        )

        books = sorted({v["book_id"] for v in arrived})
        # Each book read from its own bound; a book the bounds leave out has nothing read.
        bound_of = {
            book: T0 + pd.Timedelta(minutes=data.draw(st.integers(0, 601)))
            for book in books[: data.draw(st.integers(1, len(books)))]
        }
        bounds = pd.Series({b: to_micros(at) for b, at in bound_of.items()}, dtype="int64")
        read_from_bound = [
            book in bound_of and at >= bound_of[book]
            for book, at in zip(reference["book_id"], reference["trade_time"], strict=True)
        ]
        expected = reference[np.array(read_from_bound, dtype=bool)]
        since = repo.trades_since(bounds, end)
        pd.testing.assert_frame_equal(as_strings(since), as_strings(expected), check_exact=True)


class PausedAfterKeys(PositionRepository):
    """Ingests, and holds its transaction open once the batch's keys are given."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.keys_given = threading.Event()
        self.go_on = threading.Event()

    def _record_late_changes(self, conn, touched, stamp):
        self.keys_given.set()
        assert self.go_on.wait(60)
        return super()._record_late_changes(conn, touched, stamp)


def waiting_for_the_ingestion_lock(repo: PositionRepository) -> bool:
    """Whether a transaction waits for this warehouse's ingestion lock (PostgreSQL's advisory
    lock, ``engine._serialised``). SQLite's lock is its write lock, which shows no waiter."""
    if repo.engine.dialect.name != "postgresql":
        return True
    with repo.engine.connect() as conn:
        waiting = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'advisory' "
                "AND ((classid::bigint << 32) | objid::bigint) "
                "= hashtext('desk_pipeline.ingest.' || current_schema())::bigint"
            )
        ).scalar()
    return bool(waiting)


def test_two_ingestions_racing_on_new_ids_give_each_id_one_key(warehouse_url):
    first = PausedAfterKeys(warehouse_url)
    second = PositionRepository(warehouse_url)
    both = ["B-new", "B-shared"]
    errors: list[BaseException] = []

    def ingest(repo, source, rows):
        try:
            repo.ingest(source, len(rows), make_trades(rows), NO_REJECTS)
        except BaseException as err:  # reported by the assertion below
            errors.append(err)

    a = threading.Thread(
        target=ingest,
        args=(first, "a", [trade("A1", 1, 10.0, book=both[1], instrument="I-a")]),
    )
    a.start()
    assert first.keys_given.wait(60)
    # The second batch names the id the first has just keyed and not committed, and new ones.
    rows = [
        trade("B1", 2, 10.0, book=both[0], instrument="I-a"),
        trade("B2", 3, 10.0, book=both[1]),
    ]
    b = threading.Thread(target=ingest, args=(second, "b", rows))
    b.start()
    deadline = time.monotonic() + 30
    while not waiting_for_the_ingestion_lock(second) and time.monotonic() < deadline:
        time.sleep(0.05)
    first.go_on.set()
    a.join(60)
    b.join(60)
    assert errors == []
    books = dictionary(second, "book_keys")
    assert books.keys() == {"B-new", "B-shared"} and sorted(books.values()) == [1, 2]
    assert dictionary(second, "instrument_keys").keys() == {"I-a", "XS0001"}
    read = as_strings(second.trades_between(T0, T0 + pd.Timedelta(days=1)))
    assert read[["trade_id", "book_id", "instrument_id"]].to_numpy().tolist() == [
        ["A1", "B-shared", "I-a"],
        ["B1", "B-new", "I-a"],
        ["B2", "B-shared", "XS0001"],
    ]
    for repo in (first, second):
        repo.engine.dispose()
