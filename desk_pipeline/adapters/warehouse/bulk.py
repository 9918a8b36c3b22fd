"""Low-level SQL shared by every store: inserts, upserts, bulk COPY, chunked IN lists, reads."""

from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from desk_pipeline.adapters.warehouse.engine import WarehouseError

# Bound parameters per IN list: well under SQLite's 32,766 and PostgreSQL's 65,535 limits.
CHUNK = 5000
# A write that adds this share of a table's rows refreshes its PostgreSQL statistics.
ANALYZE_GROWTH = 0.1


def _analyze_if_grown(conn: sa.Connection, tables: Sequence[sa.Table], added: int) -> None:
    """Refresh PostgreSQL's statistics of tables a write grew by ``ANALYZE_GROWTH`` or more.

    Without statistics PostgreSQL estimated that looking up a tick's 1,000 trade ids by the
    first column of trade_versions' key matched a tenth of a million-row table, and scanned
    all of it: the tick grew with the trades booked before it. Autovacuum analyses too, but
    later. Statistics scale with the table, so small writes never need this.
    """
    if conn.dialect.name != "postgresql" or added == 0:
        return
    for table in tables:
        estimate = conn.exec_driver_sql(
            f"SELECT reltuples FROM pg_class WHERE oid = '{table.name}'::regclass"
        ).scalar()
        # reltuples is -1 until the table is first analysed.
        if estimate is None or estimate < 0 or added >= ANALYZE_GROWTH * estimate:
            conn.exec_driver_sql(f"ANALYZE {table.name}")


def _insert_for(conn: sa.Connection, table: sa.Table) -> Any:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise WarehouseError(f"unsupported warehouse dialect {dialect!r}; use SQLite or PostgreSQL")


def _upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: list[dict[str, Any]] | pd.DataFrame,
    *,
    keys: list[str],
    newer: str | None = None,
    older: str | None = None,
) -> None:
    """Insert rows; on a key conflict take the row with the higher ``newer`` / lower ``older``.

    A frame (one row per key) takes the bulk path of :func:`_bulk_upsert`.
    """
    if isinstance(rows, pd.DataFrame):
        _bulk_upsert(conn, table, rows, keys=keys, newer=newer, older=older)
        return
    if not rows:
        return
    insert = _insert_for(conn, table)
    columns = [c for c in rows[0] if c not in keys]
    if newer is not None:
        condition = insert.excluded[newer] > table.c[newer]
    elif older is not None:
        condition = insert.excluded[older] < table.c[older]
    else:
        condition = None  # as in _bulk_upsert: the row always replaces the stored one
    stmt = insert.on_conflict_do_update(
        index_elements=keys, set_={c: insert.excluded[c] for c in columns}, where=condition
    )
    for chunk in _chunks(rows, 10_000):
        conn.execute(stmt, chunk)


def _insert(
    conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]] | pd.DataFrame
) -> None:
    if isinstance(rows, pd.DataFrame):
        _bulk_insert(conn, table, rows)
        return
    for chunk in _chunks(rows, 50_000):
        conn.execute(table.insert(), chunk)


def _bulk_values(frame: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """The frame's rows as tuples of Python values, missing values as None (SQL NULL).

    Float columns keep NaN as a float, as SQLAlchemy's executemany passed it. The columns are
    converted at once; the rows are made as the driver consumes them: a list of every row
    cost a tenth more on a 100k-row insert (and held them all).
    """
    columns = []
    for name in frame.columns:
        column = frame[name]
        if not pd.api.types.is_float_dtype(column) and column.isna().any():
            column = column.astype(object).where(column.notna(), None)
        columns.append(column.tolist())
    return zip(*columns, strict=True)


def _driver(conn: sa.Connection) -> Any:
    """The driver's own connection under ``conn`` (psycopg or sqlite3), for the bulk paths.

    Raises:
        WarehouseError: ``conn`` holds no driver connection (it was invalidated).
    """
    raw = conn.connection.driver_connection
    if raw is None:
        raise WarehouseError("the warehouse connection was invalidated; retry the operation")
    return raw


def _bulk_insert(
    conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, *, into: str | None = None
) -> None:
    """Insert a frame (columns named as the table's) through the driver's fast path.

    Bypasses SQLAlchemy's per-row parameter processing, which dominated year-long backfills:
    binary COPY on PostgreSQL, one prepared executemany on SQLite. Runs in ``conn``'s
    transaction. ``into`` names a staging table shaped like ``table`` to fill instead.
    """
    if frame.empty:
        return
    target = into or table.name
    names = ", ".join(frame.columns)
    raw = _driver(conn)
    try:
        if conn.dialect.name == "postgresql":
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                # Binary rows, typed from the table: half the client time of text COPY.
                copy.set_types([_copy_type(table.c[name]) for name in frame.columns])
                for row in _bulk_values(frame):
                    copy.write_row(row)
            return
        marks = ", ".join("?" * len(frame.columns))
        raw.executemany(f"INSERT INTO {target} ({names}) VALUES ({marks})", _bulk_values(frame))
    except conn.dialect.loaded_dbapi.Error as err:
        # Re-raised as SQLAlchemy's own error, so _transaction names the operation as usual.
        raise sa.exc.DBAPIError.instance(
            f"bulk insert into {target}", None, err, conn.dialect.loaded_dbapi.Error
        ) from err


def _copy_type(column: sa.Column[Any]) -> str:
    """The PostgreSQL type name psycopg's binary COPY dumps ``column``'s values as."""
    kind = column.type
    for sql_type, name in (
        (sa.Boolean, "bool"),
        (sa.BigInteger, "int8"),
        (sa.Integer, "int4"),
        (sa.Float, "float8"),
        (sa.Text, "text"),
        (sa.String, "varchar"),
    ):
        if isinstance(kind, sql_type):
            return name
    raise WarehouseError(f"no binary COPY type for {column.table.name}.{column.name} ({kind})")


def _bulk_upsert(
    conn: sa.Connection,
    table: sa.Table,
    frame: pd.DataFrame,
    *,
    keys: list[str],
    newer: str | None = None,
    older: str | None = None,
) -> None:
    """:func:`_upsert` for a frame with one row per key, through the driver's fast path.

    Without ``newer`` or ``older`` a row always replaces the stored row with its key.
    PostgreSQL: COPY into a transaction-scoped staging table, then one set-based
    INSERT ... SELECT ... ON CONFLICT. SQLite: one prepared executemany of the upsert.
    """
    if frame.empty:
        return
    name = table.name
    names = ", ".join(frame.columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in frame.columns if c not in keys)
    conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    if newer is not None:
        conflict += f" WHERE excluded.{newer} > {name}.{newer}"
    elif older is not None:
        conflict += f" WHERE excluded.{older} < {name}.{older}"
    if conn.dialect.name == "postgresql":
        stage = f"stage_{name}"
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{stage}")
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {names} FROM {name} WITH NO DATA"
        )
        _bulk_insert(conn, table, frame, into=stage)
        conn.exec_driver_sql(f"INSERT INTO {name} ({names}) SELECT {names} FROM {stage} {conflict}")
        return
    marks = ", ".join("?" * len(frame.columns))
    try:
        _driver(conn).executemany(
            f"INSERT INTO {name} ({names}) VALUES ({marks}) {conflict}", _bulk_values(frame)
        )
    except conn.dialect.loaded_dbapi.Error as err:
        raise sa.exc.DBAPIError.instance(
            f"bulk upsert into {name}", None, err, conn.dialect.loaded_dbapi.Error
        ) from err


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _read(conn: sa.Connection, query: sa.Select[Any], *, raw: bool = False) -> pd.DataFrame:
    """Run ``query`` into a frame; ``raw`` fetches the driver's tuples directly.

    ``raw`` skips SQLAlchemy's row objects, which dominated reads of millions of trades; use it
    only for columns that need no result processing (strings, integers, floats).
    """
    result = conn.execute(query)
    names = list(result.keys())
    # Plain tuples: pandas probes SQLAlchemy's Row objects attribute by attribute, slowly.
    rows = result.cursor.fetchall() if raw else [tuple(row) for row in result.all()]
    if not rows or len(set(names)) < len(names):
        return pd.DataFrame(rows, columns=names)
    # from_records converts the tuples in one pass: three times faster than column lists.
    return pd.DataFrame.from_records(rows, columns=names)


def _rows_by_trade_id(conn: sa.Connection, table: sa.Table, trade_ids: list[str]) -> pd.DataFrame:
    """Rows of ``table`` whose trade_id is in ``trade_ids``, by primary-key lookups.

    Plain driver SQL: SQLAlchemy's expansion of large IN lists cost more than the lookups.
    PostgreSQL takes the ids as one array parameter (``= ANY``); SQLite in chunks of ``CHUNK``.
    """
    names = [c.name for c in table.columns]
    select = f"SELECT {', '.join(names)} FROM {table.name} WHERE trade_id"
    raw = _driver(conn)
    rows: list[Any] = []
    try:
        if conn.dialect.name == "postgresql":
            with raw.cursor() as cursor:
                cursor.execute(f"{select} = ANY(%s)", (trade_ids,))
                rows = cursor.fetchall()
        else:
            for chunk in _chunks(trade_ids):
                marks = ", ".join("?" * len(chunk))
                rows.extend(raw.execute(f"{select} IN ({marks})", chunk).fetchall())
    except conn.dialect.loaded_dbapi.Error as err:
        raise sa.exc.DBAPIError.instance(
            f"lookup in {table.name}", None, err, conn.dialect.loaded_dbapi.Error
        ) from err
    if not rows:
        return pd.DataFrame(columns=names)
    return pd.DataFrame.from_records(rows, columns=names)


def _read_empty(table: sa.Table) -> pd.DataFrame:
    return pd.DataFrame(columns=[c.name for c in table.columns])
