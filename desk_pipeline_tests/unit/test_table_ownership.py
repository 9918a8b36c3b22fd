"""One warehouse store per aggregate: each store touches only the tables it owns.

The ownership map below is the one place that says which store owns which table of
``desk_pipeline.adapters.tables``. A store reaches another aggregate's tables only by calling a
function of the owning module that takes its connection; those calls are listed, each with its
reason, in ``CROSS_STORE_CALLS``.
"""

import ast
import re
from pathlib import Path

import pytest

from desk_pipeline.adapters import tables, warehouse
from desk_pipeline.adapters.warehouse import PositionRepository, Store

PACKAGE = Path(warehouse.__file__).parent
PREFIX = "desk_pipeline.adapters.warehouse."

# Store class -> (its modules in the warehouse package, the tables it owns).
OWNERSHIP: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "TradingBookStore": (
        ("trading_book", "trade_batches", "id_dictionary"),
        frozenset(
            {
                "trade_versions",
                "current_trades",
                "book_keys",
                "instrument_keys",
                "ingested_batches",
                "source_watermarks",
                "trading_books",
                "late_changes",
            }
        ),
    ),
    "PositionSnapshotStore": (
        ("position_snapshot",),
        frozenset({"intraday_windows", "intraday_positions"}),
    ),
    "DailyBookPositionStore": (
        ("daily_book_position", "keep_last"),
        frozenset({"eod_snapshots", "eod_positions"}),
    ),
    "CollateralRankingStore": (
        ("collateral_ranking",),
        frozenset({"collateral_rankings", "eod_valuations"}),
    ),
    "ReferenceStore": (
        ("reference",),
        frozenset({"instruments", "books", "prices", "fx_rates", "mark_changes"}),
    ),
    "QuarantineStore": (("quarantine",), frozenset({"quarantine", "quarantine_arrivals"})),
    "PositionSnapshotCreatedOutbox": (("outbox",), frozenset({"outbox", "inbox"})),
    "BusinessCalendarStore": (("business_calendar",), frozenset({"desk_calendar"})),
}

# Modules of the package that belong to no store and name no table: the repository that joins
# the stores, and the machinery every store shares.
SHARED = frozenset({"__init__", "engine", "bulk", "codec"})

# (calling module, owning module, function) -> why one transaction spans the two aggregates.
CROSS_STORE_CALLS: dict[tuple[str, str, str], str] = {
    ("trading_book", "quarantine", "_store_quarantine"): (
        "accepted + quarantined = received: a batch and its rejected rows commit together"
    ),
    ("reference", "quarantine", "_store_quarantine"): (
        "reference rows and their rejected rows commit together"
    ),
    ("reference", "daily_book_position", "_latest_eod_as_of"): (
        "a new mark is recorded as a mark change only when a stored EOD's day may read it"
    ),
    ("keep_last", "outbox", "enqueue"): (
        "outbox: an EOD and its PositionSnapshotCreated event commit together"
    ),
    ("daily_book_position", "trading_book", "_late_changes"): (
        "eod_headers flags stale EODs from the late changes read in the same transaction"
    ),
    ("position_snapshot", "trading_book", "_late_changes"): (
        "the opening state skips snapshots that late changes made stale"
    ),
    ("position_snapshot", "trading_book", "_first_trades"): (
        "the opening state of a book without a valid snapshot starts at its first trade"
    ),
    ("position_snapshot", "daily_book_position", "_eod_headers_until"): (
        "the opening state rolls forward from each book's latest valid EOD"
    ),
    ("position_snapshot", "daily_book_position", "_eod_rows_of"): (
        "the opening state reads the rows of the EODs it chose, in the same transaction"
    ),
    ("position_snapshot", "daily_book_position", "_latest_eod_as_of"): (
        "ingestion's coverage (how far stored snapshots reach) includes the EODs"
    ),
    ("collateral_ranking", "daily_book_position", "_lock_current_eods"): (
        "rankings and valuations replace only rows of the current EODs, locked until commit"
    ),
    ("collateral_ranking", "daily_book_position", "_one_eod"): (
        "valued_eod joins one EOD and its valuation in one statement, never a mix"
    ),
    ("collateral_ranking", "daily_book_position", "_eod_headers_beside"): (
        "desk status reads every EOD beside its valuation and ranking in one statement"
    ),
    ("collateral_ranking", "daily_book_position", "_eod_rows_of_days"): (
        "the ranking checks read the EOD rows and the rankings of their days in one transaction"
    ),
    ("collateral_ranking", "daily_book_position", "_eod_headers_joined"): (
        "a ranking read judges the ranking against the EOD stored beside it, in one statement"
    ),
}

# Raw SQL naming a table (keywords in capitals, as the package writes SQL; prose is lower case).
RAW_SQL_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE|ANALYZE)\s+(\w+)")

TABLE_NAMES = frozenset(tables.metadata.tables)
STORE_OF_MODULE = {m: store for store, (modules, _) in OWNERSHIP.items() for m in modules}


def parse(module: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))


def tables_referenced(tree: ast.Module) -> set[str]:
    """Tables a module names: ``t.X`` through its alias of the tables module, imported
    ``tables.X`` names, and table names in raw SQL strings."""
    aliases: set[str] = set()
    direct: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "desk_pipeline.adapters":
            aliases |= {a.asname or a.name for a in node.names if a.name == "tables"}
        elif isinstance(node, ast.ImportFrom) and node.module == "desk_pipeline.adapters.tables":
            direct |= {a.name for a in node.names if a.name in TABLE_NAMES}
        elif isinstance(node, ast.Import):
            aliases |= {
                a.asname or a.name for a in node.names if a.name == "desk_pipeline.adapters.tables"
            }
    found = set(direct)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = ast.unparse(node.value)
            if owner in aliases and node.attr in TABLE_NAMES:
                found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found |= {m for m in RAW_SQL_TABLE.findall(node.value) if m in TABLE_NAMES}
    return found


def store_imports(tree: ast.Module) -> set[tuple[str, str]]:
    """(store module, name) of every import from another module of the warehouse package."""
    found: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PREFIX):
            module = (node.module or "").removeprefix(PREFIX)
            found |= {(module, a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == PREFIX.rstrip("."):
            found |= {(a.name, "*") for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {
                (a.name.removeprefix(PREFIX), "*") for a in node.names if a.name.startswith(PREFIX)
            }
    return {(m, name) for m, name in found if m in STORE_OF_MODULE}


def test_every_table_has_exactly_one_owning_store():
    owned = [table for _, tables_owned in OWNERSHIP.values() for table in tables_owned]
    assert sorted(owned) == sorted(set(owned)), "a table is owned by two stores"
    assert set(owned) == TABLE_NAMES


def test_every_module_of_the_warehouse_belongs_to_a_store_or_is_shared_machinery():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == set(STORE_OF_MODULE) | SHARED


@pytest.mark.parametrize("module", sorted(STORE_OF_MODULE))
def test_a_store_module_names_only_the_tables_its_store_owns(module):
    _, owned = OWNERSHIP[STORE_OF_MODULE[module]]
    foreign = tables_referenced(parse(module)) - owned
    assert not foreign, f"{module}.py touches {sorted(foreign)}, owned by other stores"


@pytest.mark.parametrize("module", sorted(SHARED))
def test_shared_machinery_names_no_table(module):
    assert not tables_referenced(parse(module))


@pytest.mark.parametrize("module", sorted(STORE_OF_MODULE))
def test_a_store_reaches_another_aggregate_only_through_the_listed_functions(module):
    store = STORE_OF_MODULE[module]
    calls = {
        (module, owner, name)
        for owner, name in store_imports(parse(module))
        if STORE_OF_MODULE[owner] != store
    }
    listed = {call for call in CROSS_STORE_CALLS if call[0] == module}
    assert calls == listed


def test_the_listed_cross_store_functions_take_the_callers_connection():
    for _, owner, name in CROSS_STORE_CALLS:
        function = next(
            node
            for node in ast.walk(parse(owner))
            if isinstance(node, ast.FunctionDef) and node.name == name
        )
        assert function.args.args[0].arg == "conn", f"{owner}.{name}"


def test_stores_do_not_inherit_from_one_another():
    for name in OWNERSHIP:
        assert getattr(warehouse, name).__bases__ == (Store,), name


def test_the_repository_joins_every_store_and_no_two_stores_define_one_method():
    stores = [getattr(warehouse, name) for name in OWNERSHIP]
    assert set(PositionRepository.__bases__) == set(stores)
    seen: dict[str, str] = {}
    for store in stores:
        for method in (m for m in vars(store) if not m.startswith("__")):
            assert method not in seen, f"{store.__name__} and {seen[method]} define {method}"
            seen[method] = store.__name__
