"""Desk-scale benchmark: position engine, 10-minute tick, year-long backfills and reads.

Run from the repository root::

    python -m benchmarks.bench                      # full size (see --help), all sections
    python -m benchmarks.bench --smoke --out-dir /tmp/bench   # seconds; used by the test suite
    python -m benchmarks.bench --sections backfill --databases sqlite --days 20 --profile
                                                    # where a backfill day's time goes (py-spy)

Prints one table and writes ``<out-dir>/<name>.json`` with every figure and a description of
the machine. Ratios matter more than absolute figures: they compare code paths measured in the
same process on the same data.
"""

import argparse
import cProfile
import dataclasses
import json
import os
import platform
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd
import sqlalchemy as sa

from benchmarks import backfill_profile
from desk_pipeline.adapters.warehouse import (
    IdDictionary,
    PositionRepository,
    micros_of,
    now_micros,
    trades_from_keys,
)
from desk_pipeline.domain.positions.engine import positions_as_of, roll_positions
from desk_pipeline.domain.precision import to_units
from desk_pipeline.domain.schema import (
    POSITION_DTYPES,
    POSITION_STATE_DTYPES,
    TRADE_DTYPES,
    conform,
)

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("engine", "tick", "tick-e2e", "backfill", "read")
PG_ADMIN_URL = os.environ.get(
    "DESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DAY = pd.Timestamp("2026-03-02", tz="UTC")  # a Monday; engine and tick data live on it
PREVIOUS_DAY = "2026-02-27"  # the Friday before DAY: its EOD opens the tick's day


@dataclasses.dataclass(frozen=True)
class Size:
    """Every size knob of one benchmark run."""

    engine_trades: int = 1_000_000
    sparse_books: int = 100
    sparse_instruments: int = 10_000
    dense_keys: int = 1_000
    incremental_open: int = 600_000
    incremental_trades: int = 100_000
    repeats: int = 3
    tick_booked: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    tick_window_trades: int = 1_000
    tick_repeats: int = 3
    # tick-e2e: calendar days backfilled before today, ticks (each with its EOD refresh) per desk
    tick_e2e_days: int = 5
    tick_e2e_repeats: int = 3
    books: int = 50
    instruments: int = 5_000
    instruments_per_book: int = 500
    trades_per_day: int = 100_000
    days: tuple[int, ...] = (250, 500)
    databases: tuple[str, ...] = ("sqlite", "postgresql")
    read_calls: int = 1_000
    # --profile: runs of each range of the weekday probe (backfill_profile), at least 2
    probe_repeats: int = 3


SMOKE = Size(
    engine_trades=20_000,
    sparse_books=10,
    sparse_instruments=500,
    dense_keys=50,
    incremental_open=5_000,
    incremental_trades=1_000,
    repeats=2,
    tick_booked=(1_000, 5_000),
    tick_window_trades=200,
    tick_repeats=2,
    tick_e2e_days=2,
    tick_e2e_repeats=1,
    books=4,
    instruments=200,
    instruments_per_book=50,
    trades_per_day=500,
    days=(3,),
    read_calls=20,
    probe_repeats=2,
)


# ---- synthetic trades ------------------------------------------------------------------------


def synthetic_trades(
    rng: np.random.Generator,
    books: np.ndarray,
    instruments: np.ndarray,
    quantities: np.ndarray,
    start: pd.Timestamp,
    end: pd.Timestamp,
    prefix: str,
) -> pd.DataFrame:
    """Trades (TRADE_DTYPES) on the given keys, distinct times sorted in [start, end), unique ids.

    Times are whole microseconds, the warehouse's precision, so trades read back from it (or
    through ``as_the_warehouse_reads``) keep them; distinct, so that no figure includes the
    engine's tie-break of equal times by trade_id (sorted draws plus 0, 1, 2, ... µs).
    """
    n = len(books)
    span_us = (end.value - start.value) // 1000
    times = (np.sort(rng.integers(0, span_us - n + 1, n)) + np.arange(n)) * 1000 + start.value
    return conform(
        pd.DataFrame(
            {
                "trade_id": [f"{prefix}{i:09d}" for i in range(n)],
                "version": np.ones(n, dtype=np.int64),
                "status": "NEW",
                "book_id": books,
                "instrument_id": instruments,
                "quantity": quantities,
                "price": np.round(rng.uniform(50.0, 150.0, n), 4),
                "trade_time": pd.to_datetime(times, utc=True),
            }
        ),
        TRADE_DTYPES,
    )


def names(prefix: str, n: int) -> np.ndarray:
    """``n`` sortable identifiers, e.g. B000, B001."""
    width = len(str(max(n - 1, 1)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(n)], dtype=object)


def sparse_set(size: Size, rng: np.random.Generator) -> pd.DataFrame:
    """Many keys, few trades each: every trade picks a random (book, instrument)."""
    n = size.engine_trades
    books = names("B", size.sparse_books)[rng.integers(0, size.sparse_books, n)]
    instruments = names("I", size.sparse_instruments)[rng.integers(0, size.sparse_instruments, n)]
    quantities = rng.choice([-1.0, 1.0], n) * rng.integers(1, 50, n) * 100.0
    return synthetic_trades(
        rng, books, instruments, quantities, DAY, DAY + pd.Timedelta(days=1), "S"
    )


def dense_set(size: Size, rng: np.random.Generator) -> pd.DataFrame:
    """Few keys, many trades each, lot sizes that often close a position exactly or flip it."""
    n = size.engine_trades
    n_books = max(1, size.dense_keys // 100)
    per_book = size.dense_keys // n_books
    key = rng.integers(0, n_books * per_book, n)
    books = names("B", n_books)[key // per_book]
    instruments = names("I", per_book)[key % per_book]
    quantities = rng.choice([-300.0, -200.0, -100.0, 100.0, 200.0, 300.0], n)
    return synthetic_trades(
        rng, books, instruments, quantities, DAY, DAY + pd.Timedelta(days=1), "D"
    )


# ---- (a) the seed's per-trade loop, with the corrected average-cost rule ---------------------


@dataclasses.dataclass
class SeedPosition:
    """The seed's Position, with realised P&L and the corrected average-cost rule."""

    instrument_id: str
    quantity: float
    average_price: float
    realized_pnl: float = 0.0

    def apply_trade(self, quantity_delta: float, price: float) -> str:
        """Apply one trade; returns what it did (increase, reduction, close or flip)."""
        held = self.quantity
        if held == 0 or (held > 0) == (quantity_delta > 0):
            new = held + quantity_delta
            self.average_price = (held * self.average_price + quantity_delta * price) / new
            self.quantity = new
            return "increase"
        closed = min(abs(quantity_delta), abs(held))
        self.realized_pnl += (price - self.average_price) * closed * (1.0 if held > 0 else -1.0)
        if abs(quantity_delta) < abs(held):
            self.quantity = held + quantity_delta  # a reduction keeps the average cost
            return "reduction"
        if abs(quantity_delta) == abs(held):
            self.quantity, self.average_price = 0.0, 0.0
            return "close"
        self.quantity, self.average_price = held + quantity_delta, price
        return "flip"


@dataclasses.dataclass
class SeedTradingBook:
    """The seed's TradingBook: a dict of positions, one trade at a time."""

    book_id: str
    positions: dict[str, SeedPosition] = dataclasses.field(default_factory=dict)

    def apply_trade(self, instrument_id: str, quantity: float, price: float) -> str:
        """Apply one trade to the instrument's position, opening it when new."""
        position = self.positions.get(instrument_id)
        if position is None:
            position = self.positions[instrument_id] = SeedPosition(instrument_id, 0.0, 0.0)
        return position.apply_trade(quantity, price)


def seed_loop(trades: pd.DataFrame) -> tuple[dict[str, SeedTradingBook], dict[str, int]]:
    """Apply time-ordered trades one by one, as the seed does; counts of each kind of trade."""
    books: dict[str, SeedTradingBook] = {}
    kinds = {"increase": 0, "reduction": 0, "close": 0, "flip": 0}
    columns = (trades[c].tolist() for c in ("book_id", "instrument_id", "quantity", "price"))
    for book_id, instrument_id, quantity, price in zip(*columns, strict=True):
        book = books.get(book_id)
        if book is None:
            book = books[book_id] = SeedTradingBook(book_id)
        kinds[book.apply_trade(instrument_id, quantity, price)] += 1
    return books, kinds


def seed_frame(books: dict[str, SeedTradingBook]) -> pd.DataFrame:
    """The seed's final state as POSITION_DTYPES rows sorted by key."""
    rows = [
        (b, p.instrument_id, p.quantity, p.average_price, p.realized_pnl)
        for b, book in books.items()
        for p in book.positions.values()
    ]
    frame = pd.DataFrame(rows, columns=list(POSITION_DTYPES))
    return conform(frame.sort_values(["book_id", "instrument_id"], kind="stable"), POSITION_DTYPES)


def position_state(positions: pd.DataFrame) -> pd.DataFrame:
    """Generated POSITION_DTYPES rows as the engine's state: with their exact micro-units."""
    micro_units = to_units(positions["quantity"]).astype(np.int64)
    return conform(positions.assign(quantity_micro_units=micro_units), POSITION_STATE_DTYPES)


def best_of(repeats: int, run: Callable[[], Any]) -> tuple[float, Any]:
    """Best wall time (s) of ``repeats`` calls, and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


# What the engine section measures the engine on (the warehouse's reads), and the before.
WAREHOUSE_KEYS = "warehouse keys (categorical)"
OBJECT_IDS = "object ids (before)"


def stored_with_keys(trades: pd.DataFrame) -> tuple[pd.DataFrame, IdDictionary, IdDictionary]:
    """``trades`` as current_trades stores them, and the warehouse's id dictionaries.

    Keys are given in order of first arrival, as ingestion gives them; the dictionaries come in
    id order, as the warehouse reads them. Setup, not measured: ingestion does it.

    Returns:
        ``(rows, books, instruments)``: current_trades columns (book_key, instrument_key,
        trade_time_us) and the two dictionaries, as ``TradingBookStore.trades_since`` reads them.
    """
    rows = trades.drop(columns=["book_id", "instrument_id", "trade_time"])
    dictionaries = []
    for column, key in (("book_id", "book_key"), ("instrument_id", "instrument_key")):
        codes, ids = pd.factorize(trades[column])
        rows[key] = codes + 1
        keys = np.arange(1, len(ids) + 1, dtype=np.int64)
        dictionaries.append(IdDictionary.in_id_order(keys, pd.Index(ids, dtype=object)))
    rows["trade_time_us"] = micros_of(trades["trade_time"])
    return rows, dictionaries[0], dictionaries[1]


def as_the_warehouse_reads(trades: pd.DataFrame) -> pd.DataFrame:
    """``trades`` as the warehouse hands them to the engine: stored with keys, read back through
    ``trades_from_keys`` (the warehouse's own code), ids as categoricals of the dictionary."""
    return trades_from_keys(*stored_with_keys(trades))


def engine_section(size: Size) -> dict[str, Any]:
    """Seed loop vs pandas groupby bound vs the numba engine, plus the incremental step.

    The engine is measured on what the product hands it: trades read through the warehouse's
    integer keys (``trades_from_keys``: ids as categoricals of its id dictionary, WAREHOUSE_KEYS),
    and, as the before, with ids as Python strings (object), where hashing a million strings
    dominates both the engine and the groupby.
    """
    rng = np.random.default_rng(20260302)
    empty = conform(pd.DataFrame(columns=list(POSITION_STATE_DTYPES)), POSITION_STATE_DTYPES)
    as_of = DAY + pd.Timedelta(days=1)
    warm_up = sparse_set(SMOKE, rng).head(100)
    for trades in (warm_up, as_the_warehouse_reads(warm_up)):
        positions_as_of(empty, trades, as_of)  # compile or load numba's cache first
    out: dict[str, Any] = {"ids": WAREHOUSE_KEYS, "before": OBJECT_IDS}
    for label, strings in (("sparse", sparse_set(size, rng)), ("dense", dense_set(size, rng))):
        stored = stored_with_keys(strings)
        read_s, trades = best_of(size.repeats, lambda s=stored: trades_from_keys(*s))
        seed_s, (books, kinds) = best_of(size.repeats, lambda t=trades: seed_loop(t))
        seed = seed_frame(books)
        n = len(trades)
        out[label] = {"trades": n, "trade_kinds": kinds, "seed_loop_s": seed_s, "read_s": read_s}
        floor_s, floor_matches = notional_floor(trades, size.repeats)
        out[label].update(floor_s=floor_s, floor_matches_groupby=floor_matches)
        for ids, data in (("keys", trades), ("object", strings)):
            groupby_s, sums = best_of(
                size.repeats,
                lambda t=data: t.groupby(["book_id", "instrument_id"], observed=True)[
                    "quantity"
                ].sum(),
            )
            engine_s, engine = best_of(
                size.repeats, lambda t=data: positions_as_of(empty, t, as_of)
            )
            figures = {
                "keys": len(sums),
                "groupby_s": groupby_s,
                "engine_s": engine_s,
                "seed_trades_per_s": n / seed_s,
                "groupby_trades_per_s": n / groupby_s,
                "engine_trades_per_s": n / engine_s,
                "engine_vs_seed": seed_s / engine_s,
                "engine_time_vs_groupby": engine_s / groupby_s,
                "engine_time_vs_floor": engine_s / floor_s,
                "engine_profile_s": engine_profile(empty, data, as_of),
                "engine_matches_seed": frames_match(engine, seed),
                "engine_quantity_matches_groupby": bool(
                    np.allclose(engine["quantity"].to_numpy(), sums.to_numpy())
                ),
            }
            if ids == "keys":
                out[label].update(figures)
            else:
                out[label]["object_ids"] = figures
    out["incremental"] = incremental_step(size, rng)
    return out


def notional_floor(trades: pd.DataFrame, repeats: int) -> tuple[float, bool]:
    """The physical floor: a numpy pass over three 8-byte columns, whatever the engine does.

    Sums quantity x price per (book, instrument) key (``np.bincount`` weighted by the products,
    into a preallocated buffer), on an int64 key column built beforehand from the dictionary
    codes, as a columnar store would hold it. Nothing is sorted, hashed or allocated per row.

    Args:
        trades: TRADE_DTYPES rows with categorical ids (``as_the_warehouse_reads``).
        repeats: timed calls; the best counts.

    Returns:
        The best time (s), and whether the per-key sums equal pandas' groupby of the products.
    """
    books = trades["book_id"].cat.codes.to_numpy().astype(np.int64)
    instruments = trades["instrument_id"].cat.codes.to_numpy().astype(np.int64)
    keys = books * len(trades["instrument_id"].cat.categories) + instruments
    quantity = trades["quantity"].to_numpy(dtype=np.float64)
    price = trades["price"].to_numpy(dtype=np.float64)
    products = np.empty_like(quantity)
    floor_s, sums = best_of(
        repeats, lambda: np.bincount(keys, weights=np.multiply(quantity, price, out=products))
    )
    grouped = (
        trades.assign(notional=quantity * price)
        .groupby(["book_id", "instrument_id"], observed=True)["notional"]
        .sum()
    )
    return floor_s, bool(np.allclose(sums[np.unique(keys)], grouped.to_numpy()))


def engine_profile(empty: pd.DataFrame, trades: pd.DataFrame, as_of: pd.Timestamp) -> dict:
    """Where one engine call spends its time: seconds per call ``positions_as_of`` makes.

    One call under cProfile (numba kernels appear as calls). ``positions_as_of`` runs the engine
    in ``_roll`` and builds the frame itself, so the calls of both count; ``_roll`` is their own
    time (array indexing and arithmetic written inline). Largest first.
    """
    profiler = cProfile.Profile()
    profiler.enable()
    positions_as_of(empty, trades, as_of)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    roots = [f for f in stats if f[2] in ("positions_as_of", "_roll")]
    spent = {
        function[2]: sum(callers[root][3] for root in roots if root in callers)
        for function, (*_, callers) in stats.items()
        if function not in roots and any(root in callers for root in roots)
    }
    spent["_roll"] = sum(stats[root][2] for root in roots)
    return dict(sorted(spent.items(), key=lambda item: -item[1]))


def frames_match(engine: pd.DataFrame, seed: pd.DataFrame) -> bool:
    """Same keys in the same order, and the same figures up to float rounding."""
    return bool(
        len(engine) == len(seed)
        and (engine["book_id"].to_numpy() == seed["book_id"].to_numpy()).all()
        and (engine["instrument_id"].to_numpy() == seed["instrument_id"].to_numpy()).all()
        and np.allclose(engine["quantity"], seed["quantity"], rtol=1e-9, atol=1e-6)
        and np.allclose(engine["avg_price"], seed["avg_price"], rtol=1e-9, atol=1e-6)
        and np.allclose(engine["realized_pnl"], seed["realized_pnl"], rtol=1e-9, atol=1e-3)
    )


def incremental_step(size: Size, rng: np.random.Generator) -> dict[str, Any]:
    """Apply a batch of new trades to a large opening state (the next tick's work).

    The opening positions have object ids, as the warehouse reads them (eod_positions,
    intraday_positions); the trades are read through the keys, or as objects for the before.
    """
    n_books = 100 if size.incremental_open >= 100_000 else 10
    per_book = size.incremental_open // n_books
    book_names, instrument_names = names("B", n_books), names("I", per_book)
    opening = position_state(
        pd.DataFrame(
            {
                "book_id": np.repeat(book_names, per_book),
                "instrument_id": np.tile(instrument_names, n_books),
                "quantity": rng.integers(1, 100, n_books * per_book) * 100.0,
                "avg_price": rng.uniform(50.0, 150.0, n_books * per_book),
                "realized_pnl": np.zeros(n_books * per_book),
            }
        )
    )
    pick = rng.integers(0, len(opening), size.incremental_trades)
    quantities = rng.choice([-1.0, 1.0], len(pick)) * rng.integers(1, 50, len(pick)) * 100.0
    start = DAY + pd.Timedelta(hours=12)
    trades = synthetic_trades(
        rng,
        opening["book_id"].to_numpy()[pick],
        opening["instrument_id"].to_numpy()[pick],
        quantities,
        start,
        start + pd.Timedelta(minutes=10),
        "N",
    )
    end = start + pd.Timedelta(minutes=10)
    out: dict[str, Any] = {"open_positions": len(opening), "new_trades": len(trades)}
    # As a tick gets them: the opening positions as stored (object ids), the trades as read.
    for ids, batch in (("keys", as_the_warehouse_reads(trades)), ("object", trades)):
        step_s, rolled = best_of(size.repeats, lambda t=batch: positions_as_of(opening, t, end))
        if ids == "keys":
            out.update(positions_out=len(rolled), step_s=step_s)
        else:
            out["object_ids"] = {"positions_out": len(rolled), "step_s": step_s}
    return out


# ---- warehouses ------------------------------------------------------------------------------


@contextmanager
def warehouse_url(database: str, workdir: Path, label: str) -> Iterator[str]:
    """A fresh, empty warehouse: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if database == "sqlite":
        path = workdir / f"{label}-{uuid.uuid4().hex[:6]}.db"
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def row_counts(url: str) -> dict[str, int]:
    """Rows in the tables a backfill writes."""
    engine = sa.create_engine(url)
    tables = (
        "trade_versions",
        "current_trades",
        "eod_snapshots",
        "eod_positions",
        "collateral_rankings",
        "outbox",
    )
    with engine.connect() as conn:
        counts = {
            t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()) for t in tables
        }
    engine.dispose()
    return counts


# ---- 2. the 10-minute tick -------------------------------------------------------------------


def tick_section(size: Size, workdir: Path) -> dict[str, Any]:
    """Latency of one 10-minute tick against days with more and more trades already booked."""
    rng = np.random.default_rng(7)
    book_names = names("BK", size.books)
    instrument_names = names("ISIN", size.instruments)
    # Each book trades its own slice of the universe, as the simulator's books do.
    universe = (
        np.arange(size.books)[:, None] * 97 + np.arange(size.instruments_per_book)[None, :]
    ) % size.instruments

    def draw(n: int, start: pd.Timestamp, end: pd.Timestamp, prefix: str) -> pd.DataFrame:
        book = rng.integers(0, size.books, n)
        slot = rng.integers(0, size.instruments_per_book, n)
        quantities = rng.choice([-1.0, 1.0], n, p=[0.4, 0.6]) * rng.integers(1, 50, n) * 100.0
        return synthetic_trades(
            rng,
            book_names[book],
            instrument_names[universe[book, slot]],
            quantities,
            start,
            end,
            prefix,
        )

    noon = DAY + pd.Timedelta(hours=12)
    # The book as the previous business day closed it: every key the desk trades is held, so
    # every tick snapshots the same keys whatever the volume booked earlier today.
    previous_eod = position_state(
        pd.DataFrame(
            {
                "book_id": np.repeat(book_names, size.instruments_per_book),
                "instrument_id": instrument_names[universe.ravel()],
                "quantity": rng.integers(1, 100, universe.size) * 100.0,
                "avg_price": np.round(rng.uniform(50.0, 150.0, universe.size), 4),
                "realized_pnl": np.zeros(universe.size),
            }
        )
    ).assign(business_date=PREVIOUS_DAY, as_of=pd.Timestamp("2026-02-28", tz="UTC"))
    out: dict[str, Any] = {}
    for database in size.databases:
        rows = []
        for booked in size.tick_booked:
            with warehouse_url(database, workdir, "tick") as url:
                repo = PositionRepository(url)
                repo.keep_last_eod(previous_eod, now_micros())
                earlier = draw(booked, DAY, noon, "E")
                repo.ingest("bench:earlier", len(earlier), earlier, _no_rejects())
                # The previous window's snapshot: what the 11:50-12:00 tick left behind.
                opening = repo.opening(noon)
                rolled = positions_as_of(
                    opening.positions, repo.trades_since(opening.bounds, noon), noon
                )
                repo.replace_intraday(noon, rolled, opening.read_at_us)
                times, written = [], 0
                for k in range(size.tick_repeats):
                    start = noon + pd.Timedelta(minutes=10 * k)
                    end = start + pd.Timedelta(minutes=10)
                    window = draw(size.tick_window_trades, start, end, f"W{k}-")
                    started = time.perf_counter()
                    written = tick(repo, window, start, end)
                    times.append(time.perf_counter() - started)
                repo.engine.dispose()
            rows.append(
                {
                    "booked_before": booked,
                    "window_trades": size.tick_window_trades,
                    "opening_positions": len(previous_eod),
                    "snapshot_rows": written,
                    "tick_s_median": float(np.median(times)),
                    "tick_s_max": float(max(times)),
                }
            )
        first = rows[0]["tick_s_median"]
        for row in rows:
            row["vs_smallest"] = row["tick_s_median"] / first
        out[database] = rows
    return out


def tick(
    repo: PositionRepository, window: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> int:
    """What the trades and intraday_positions assets do for one 10-minute partition."""
    repo.ingest(f"bench:{start.isoformat()}", len(window), window, _no_rejects())
    opening = repo.opening(start)
    snapshots = roll_positions(opening.positions, repo.trades_since(opening.bounds, end), [end])
    return repo.replace_intraday(end, snapshots.drop(columns="as_of"), opening.read_at_us)


def _no_rejects() -> pd.DataFrame:
    from desk_pipeline.domain.schema import QUARANTINE_DTYPES, empty_frame

    return empty_frame(QUARANTINE_DTYPES)


# ---- 2b. the tick end to end, as the schedule and the EOD sensor launch it -------------------


def tick_e2e_section(
    size: Size, workdir: Path, baselines: list[Path], out: dict[str, Any], save: Callable[[], None]
) -> None:
    """This checkout's tick and EOD refresh runs, interleaved with each baseline tree's.

    See ``benchmarks.tick_e2e``; speed-ups are each baseline's median over this checkout's.
    Figures go into ``out[database]``, saved after each database.
    """
    # Imported here: Dagster's import costs seconds that the other sections do not need.
    from benchmarks import tick_e2e

    trees = {"current": ROOT, **{f"baseline:{path.name}": path for path in baselines}}
    for database in size.databases:
        out[database] = tick_e2e.measure(
            trees, database, size.tick_e2e_days, size.tick_e2e_repeats, workdir, PG_ADMIN_URL
        )
        save()


# ---- 3. year-long backfills through the Dagster definitions ----------------------------------


def backfill_dates(business_days: int) -> tuple[str, str]:
    """First and last date of the ``business_days`` weekdays ending before today (UTC)."""
    today = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
    days = pd.bdate_range(end=today - pd.Timedelta(days=1), periods=business_days)
    return days[0].strftime("%Y-%m-%d"), days[-1].strftime("%Y-%m-%d")


def backfill_command(size: Size, url: str, start: str, end: str) -> list[str]:
    """The child process backfilling ``start``..``end`` (benchmarks.backfill_run)."""
    return [
        sys.executable,
        "-m",
        "benchmarks.backfill_run",
        f"--url={url}",
        f"--start={start}",
        f"--end={end}",
        f"--books={size.books}",
        f"--instruments={size.instruments}",
        f"--trades-per-day={size.trades_per_day}",
        f"--instruments-per-book={size.instruments_per_book}",
    ]


def backfill_child(
    size: Size, url: str, start: str, end: str, workdir: Path, profile: bool
) -> tuple[dict[str, Any], float, dict[str, Any] | None]:
    """Backfill in a child process on a fresh Dagster instance, under py-spy if ``profile``.

    Returns:
        The child's JSON line, its wall seconds seen from here, and its profile (or None).
    """
    home = Path(tempfile.mkdtemp(prefix="dagster-home-", dir=workdir))
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = backfill_command(size, url, start, end)
    if profile:
        figures = backfill_profile.profiled(command, ROOT, env, home / "py-spy.txt")
        stdout = figures.pop("stdout")
        return json.loads(stdout.strip().splitlines()[-1]), figures["wall_s"], figures
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"backfill failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall, None


def run_backfill(
    size: Size, url: str, business_days: int, workdir: Path, profile: bool = False
) -> dict[str, Any]:
    """Backfill in a child process (benchmarks.backfill_run); wall time, peak RSS, rows.

    With ``profile``, also ``profile``: CPU seconds per group of desk code (backfill_profile).
    """
    start, end = backfill_dates(business_days)
    child, wall, profiled = backfill_child(size, url, start, end, workdir, profile)
    counts = row_counts(url)
    out = {
        "business_days": business_days,
        "start": start,
        "end": end,
        "calendar_days": child["calendar_days"],
        "runs": child["runs"],
        "wall_s": wall,
        "in_process_s": child["wall_s"],
        "peak_rss_mb": child["peak_rss_mb"],
        "rows": counts,
        "rows_written": sum(counts.values()),
        "trades_per_s": counts["trade_versions"] / wall,
    }
    if profiled is not None:
        out["profile"] = profiled
    return out


def weekday_probe(size: Size, database: str, workdir: Path) -> dict[str, Any]:
    """What one business day and one weekend day add to a run, per group (backfill_profile).

    One warm-up run first, discarded; then ``size.probe_repeats`` rounds of the three ranges,
    interleaved, each run on a fresh warehouse and Dagster instance.
    """
    started = time.perf_counter()
    ranges = backfill_profile.probe_ranges(pd.Timestamp.now(tz="UTC").tz_localize(None))

    def profiled_run(label: str) -> dict[str, Any]:
        start, end = ranges[label]
        with warehouse_url(database, workdir, f"probe-{label}") as url:
            _, _, profiled = backfill_child(size, url, start, end, workdir, profile=True)
        assert profiled is not None  # asked for
        return profiled

    warm_up = {"range": backfill_profile.WARM_UP_RANGE}
    warm_up.update(profiled_run(backfill_profile.WARM_UP_RANGE))
    order = backfill_profile.probe_order(size.probe_repeats)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in backfill_profile.PROBE_ORDER}
    for label in order:
        runs[label].append(profiled_run(label))
    loads = [
        r[key] for rs in runs.values() for r in rs for key in ("load_1m_at_start", "load_1m_at_end")
    ]
    return {
        "ranges": ranges,
        "repeats": size.probe_repeats,
        "order": order,
        "warm_up": warm_up,
        "runs": runs,
        "wall_s": time.perf_counter() - started,
        "load_1m": [min(loads), max(loads)],
        "per_day": backfill_profile.per_day(runs),
    }


# ---- 4. reading ------------------------------------------------------------------------------


def percentiles(times: list[float]) -> dict[str, float]:
    """p50 / p95 / max of call times, in milliseconds."""
    ms = np.array(times) * 1000
    return {
        "calls": len(times),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
    }


def read_section(size: Size, url: str) -> dict[str, Any]:
    """One book-day EOD (what `desk positions` reads) and every book's latest EOD."""
    repo = PositionRepository(url)
    headers = repo.eod_headers()[["book_id", "business_date"]]
    rng = np.random.default_rng(11)
    picks = headers.iloc[rng.integers(0, len(headers), size.read_calls)]
    one, rows_one = [], 0
    for book_id, business_date in picks.itertuples(index=False):
        started = time.perf_counter()
        stored = repo.eod(book_id, business_date)
        one.append(time.perf_counter() - started)
        rows_one = max(rows_one, 0 if stored is None else len(stored[1]))
    latest, rows_latest = [], 0
    for _ in range(size.read_calls):
        started = time.perf_counter()
        rows_latest = len(repo.latest_eods())
        latest.append(time.perf_counter() - started)
    repo.engine.dispose()
    return {
        "one_book_day": {**percentiles(one), "max_rows": rows_one},
        "all_books_latest": {**percentiles(latest), "rows": rows_latest},
    }


def backfill_and_read(
    size: Size,
    workdir: Path,
    sections: set[str],
    out: dict[str, Any],
    save: Callable[[], None],
    profile: bool = False,
) -> None:
    """Backfill every size of ``size.days`` per database; read from the first one.

    Figures go into ``out["backfill"]`` and ``out["read"]``, saved after every run. With
    ``profile``, each backfill runs under py-spy and ``out["backfill_probe"]`` gets the cost of
    a business day and of a weekend day per database (backfill_profile).
    """
    out.setdefault("backfill", {})
    out.setdefault("read", {})
    for database in size.databases:
        if profile and "backfill" in sections:
            out.setdefault("backfill_probe", {})[database] = weekday_probe(size, database, workdir)
            save()
        runs: list[dict[str, Any]] = []
        if "backfill" in sections:
            out["backfill"][database] = runs
        for business_days in size.days if "backfill" in sections else size.days[:1]:
            with warehouse_url(database, workdir, f"backfill{business_days}") as url:
                runs.append(
                    run_backfill(
                        size, url, business_days, workdir, profile and "backfill" in sections
                    )
                )
                if len(runs) > 1:
                    runs[-1]["wall_vs_first"] = runs[-1]["wall_s"] / runs[0]["wall_s"]
                save()
                if "read" in sections and business_days == size.days[0]:
                    out["read"][database] = read_section(size, url)
                    save()
        if "backfill" not in sections:
            out.pop("backfill")


# ---- report ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU, cores, RAM and the versions the figures depend on."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            postgres = conn.execute(sa.text("SHOW server_version")).scalar()
        engine.dispose()
    except sa.exc.OperationalError:
        postgres = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(ram, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "numba": numba.__version__,
        "sqlalchemy": sa.__version__,
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres,
    }


def table(results: dict[str, Any]) -> str:
    """The figures as a plain-text table."""
    lines = [f"{'measure':<72} {'value':>18}", "-" * 91]

    def add(label: str, value: str) -> None:
        lines.append(f"{label:<72} {value:>18}")

    engine = results.get("engine", {})
    for label in ("sparse", "dense"):
        if label in engine:
            e = engine[label]
            add(f"engine {label}: trades / keys", f"{e['trades']:,} / {e['keys']:,}")
            add("  seed loop (trades/s)", f"{e['seed_trades_per_s']:,.0f}")
            add(f"  {WAREHOUSE_KEYS}: stored rows to frame (ms)", f"{e['read_s'] * 1000:,.1f}")
            for ids, f in ((WAREHOUSE_KEYS, e), (OBJECT_IDS, e["object_ids"])):
                add(
                    f"  {ids}: pandas groupby sum bound (trades/s)",
                    f"{f['groupby_trades_per_s']:,.0f}",
                )
                add(f"  {ids}: engine (trades/s)", f"{f['engine_trades_per_s']:,.0f}")
                add(f"  {ids}: engine speed-up vs seed loop", f"{f['engine_vs_seed']:.1f}x")
                add(f"  {ids}: engine time / groupby time", f"{f['engine_time_vs_groupby']:.2f}")
                add(
                    f"  {ids}: engine time / numpy floor time ({e['floor_s'] * 1000:.0f} ms)",
                    f"{f['engine_time_vs_floor']:.1f}",
                )
                profiled = sum(f["engine_profile_s"].values())
                for name, spent in list(f["engine_profile_s"].items())[:3]:
                    add(
                        f"  {ids}: engine profile, in {name}",
                        f"{spent * 1000:,.0f} ms ({spent / profiled:.0%})",
                    )
                add(f"  {ids}: engine matches seed loop", str(f["engine_matches_seed"]))
    if "incremental" in engine:
        i = engine["incremental"]
        for ids, f in (("trades keyed", i), ("object ids", i["object_ids"])):
            add(
                f"incremental, {ids}: {i['new_trades']:,} trades on {i['open_positions']:,} pos.",
                f"{f['step_s'] * 1000:,.0f} ms",
            )
    for database, rows in results.get("tick", {}).items():
        for row in rows:
            add(
                f"tick {database}: +{row['window_trades']:,} on {row['booked_before']:,} "
                f"booked, {row['snapshot_rows']:,} rows",
                f"{row['tick_s_median'] * 1000:,.0f} ms ({row['vs_smallest']:.2f}x)",
            )
    for database, e2e in results.get("tick-e2e", {}).items():
        for label, desk in e2e["desks"].items():
            for run in ("tick", "eod_refresh"):
                f = desk[run]
                add(
                    f"tick-e2e {database} {label} {run}: wall / CPU s (load)",
                    f"{f['wall_s_median']:.1f} / {f['cpu_s_median']:.1f} "
                    f"({f['load_1m_median']:.1f})",
                )
        for label, ratios in e2e["speedup"].items():
            add(
                f"tick-e2e {database}: {label} / current, tick / EOD (wall)",
                f"{ratios['tick_wall']:.1f}x / {ratios['eod_refresh_wall']:.1f}x",
            )
    for database, runs in results.get("backfill", {}).items():
        for run in runs:
            add(
                f"backfill {database} {run['business_days']} days: wall / peak RSS",
                f"{run['wall_s']:,.0f} s / {run['peak_rss_mb']:,.0f} MB",
            )
            add(
                "  trade versions / EOD rows / rows written",
                f"{run['rows']['trade_versions']:,} / {run['rows']['eod_positions']:,} / "
                f"{run['rows_written']:,}",
            )
            if "profile" in run:
                p = run["profile"]
                add(
                    "  profiled: wall / CPU / waited s (load 1m at start, end)",
                    f"{p['wall_s']:,.0f} / {p['cpu_s']:,.0f} / {p['waited_s']:,.0f} "
                    f"({p['load_1m_at_start']:.1f}, {p['load_1m_at_end']:.1f})",
                )
                add("  CPU s by group: in the run / per calendar day", "")
                for label, value in backfill_profile.table_rows(p, run["calendar_days"]):
                    add(label, value)
    for database, probe in results.get("backfill_probe", {}).items():
        add(f"backfill {database} probe: what a business day and a weekend day add to a run", "")
        lines += backfill_profile.probe_lines(probe)
    for database, read in results.get("read", {}).items():
        for label, r in read.items():
            add(
                f"read {database} {label} p50 / p95 ({r['calls']} calls)",
                f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} ms",
            )
    return "\n".join(lines)


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Size]:
    """Command-line options over the full or the smoke size."""

    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(x.replace("_", "")) for x in text.split(",") if x)

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), for tests")
    parser.add_argument("--name", help="result file name (default: full or smoke)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=",".join(SECTIONS))
    parser.add_argument("--databases", help="sqlite,postgresql")
    parser.add_argument("--engine-trades", type=int)
    parser.add_argument("--books", type=int)
    parser.add_argument("--instruments", type=int)
    parser.add_argument("--instruments-per-book", type=int)
    parser.add_argument("--trades-per-day", type=int)
    parser.add_argument("--days", type=ints, help="business days per backfill, e.g. 250,500")
    parser.add_argument("--tick-booked", type=ints, help="trades booked before the tick")
    parser.add_argument("--read-calls", type=int)
    parser.add_argument("--tick-e2e-repeats", type=int, help="ticks (with EOD refresh) per desk")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="backfill: run each backfill under py-spy, report seconds per group of desk "
        "functions, and what a business day and a weekend day cost",
    )
    parser.add_argument(
        "--probe-repeats",
        type=int,
        help="--profile: runs of each range of the weekday probe (at least 2; default 3)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="tick-e2e: another tree of the project (e.g. `git archive` of the commit before a "
        "change) measured interleaved with this one; repeatable",
    )
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else Size()
    overrides = {
        "engine_trades": args.engine_trades,
        "books": args.books,
        "instruments": args.instruments,
        "instruments_per_book": args.instruments_per_book,
        "trades_per_day": args.trades_per_day,
        "days": args.days,
        "tick_booked": args.tick_booked,
        "read_calls": args.read_calls,
        "tick_e2e_repeats": args.tick_e2e_repeats,
        "probe_repeats": args.probe_repeats,
        "databases": tuple(args.databases.split(",")) if args.databases else None,
    }
    size = dataclasses.replace(size, **{k: v for k, v in overrides.items() if v is not None})
    if size.probe_repeats < 2:
        parser.error("--probe-repeats: at least 2 (one run per range shows no noise)")
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {','.join(SECTIONS)}")
    return args, size


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the selected sections, print the table, write the JSON; returns the results."""
    args, size = parse(argv)
    sections = set(args.sections.split(","))
    name = args.name or ("smoke" if args.smoke else "full")
    results: dict[str, Any] = {
        "name": name,
        "started_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "command": " ".join(["python -m benchmarks.bench", *(argv or sys.argv[1:])]),
        "size": dataclasses.asdict(size),
        "machine": machine(),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{name}.json"

    def save() -> None:
        # Saved after every section: a long run stopped early keeps what it measured.
        results["load_average"] = os.getloadavg()
        results["finished_at"] = pd.Timestamp.now(tz="UTC").isoformat()
        path.write_text(json.dumps(results, indent=2, default=str) + "\n")

    # Other processes on the machine skew every figure: record the load before and after.
    results["load_average_at_start"] = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="desk-bench-") as tmp:
        workdir = Path(tmp)
        if "engine" in sections:
            results["engine"] = engine_section(size)
            save()
        if "tick" in sections:
            results["tick"] = tick_section(size, workdir)
            save()
        if "tick-e2e" in sections:
            results["tick-e2e"] = {}
            tick_e2e_section(size, workdir, args.baseline, results["tick-e2e"], save)
        if sections & {"backfill", "read"}:
            backfill_and_read(size, workdir, sections, results, save, args.profile)
    sys.stdout.write(table(results) + f"\n\nwritten: {path}\n")
    return results


if __name__ == "__main__":
    main()
