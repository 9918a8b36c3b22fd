"""The trading book's id dictionary: an integer key for every book and instrument id.

Owns ``book_keys`` and ``instrument_keys``. ``current_trades`` stores each trade's book and
instrument as keys; reads turn the keys into categoricals of the ids
(``trade_batches.trades_from_keys``), so the position engine takes their codes as they are and
no id string is hashed, or even made, per trade. A key is given by the ingestion that first
stores its id (:func:`_assign_keys`) and never changes: the dictionary is append-only.
"""

import dataclasses
from typing import cast

import numpy as np
import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import _insert
from desk_pipeline.adapters.warehouse.engine import WarehouseError


@dataclasses.dataclass(frozen=True)
class IdKind:
    """One kind of id the dictionary keys: its table, key column and id column."""

    table: sa.Table
    key: str
    id: str


BOOK = IdKind(t.book_keys, "book_key", "book_id")
INSTRUMENT = IdKind(t.instrument_keys, "instrument_key", "instrument_id")


@dataclasses.dataclass(frozen=True)
class IdDictionary:
    """One kind's ids and their keys.

    Attributes:
        keys: int64, distinct (positive), the key of each id.
        ids: distinct strings in id order (code point order, as Python compares strings),
            aligned with ``keys``. Categoricals on them come in the order the position engine
            numbers keys in, so it need not sort them; it checks, so a dictionary out of
            order costs a sort, never a wrong answer.
    """

    keys: np.ndarray
    ids: pd.Index

    @classmethod
    def in_id_order(cls, keys: np.ndarray, ids: pd.Index) -> "IdDictionary":
        """The dictionary of ``keys`` and their ``ids`` (aligned), sorted by id here."""
        order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
        return cls(np.asarray(keys, dtype=np.int64)[order], pd.Index(ids, dtype=object)[order])

    def position_of_key(self) -> np.ndarray:
        """int64 array indexed by key: the key's position in ``ids``, -1 for no such key."""
        lookup = np.full(int(self.keys.max()) + 1 if len(self.keys) else 0, -1, dtype=np.int64)
        lookup[self.keys] = np.arange(len(self.keys))
        return lookup

    def by_key(self, values: pd.Series, missing: int) -> np.ndarray:
        """``values`` (int64 by id) as an int64 array indexed by key; ``missing`` where none."""
        out = np.full(len(self.position_of_key()), missing, dtype=np.int64)
        at = self.ids.get_indexer(values.index)
        out[self.keys[at[at >= 0]]] = values.to_numpy(dtype=np.int64)[at >= 0]
        return out

    def codes(self, keys: np.ndarray, *, where: str) -> np.ndarray:
        """The position in ``ids`` of each of ``keys`` (int64): one array lookup, no hashing.

        Raises:
            WarehouseError: a key is not in the dictionary (``where`` names the read).
        """
        lookup = self.position_of_key()
        keys = np.asarray(keys, dtype=np.int64)
        if len(keys) == 0:
            return keys
        if keys.min() < 0 or keys.max() >= len(lookup) or (codes := lookup[keys]).min() < 0:
            missing = sorted(set(keys.tolist()) - set(self.keys.tolist()))[:5]
            raise WarehouseError(f"{where}: keys {missing} are not in the id dictionary")
        return codes

    def categorical(self, keys: np.ndarray, *, where: str) -> pd.Categorical:
        """``keys`` as a categorical of their ids, whose categories are every id, in id order."""
        categorical = pd.Categorical.from_codes(
            self.codes(keys, where=where), dtype=pd.CategoricalDtype(self.ids)
        )
        # The stubs type a categorical by its codes' values; its values are the ids.
        return cast(pd.Categorical, categorical)

    def keys_of(self, ids: pd.Series, *, where: str) -> np.ndarray:
        """The key (int64) of each of ``ids``: one hash of the column, then array lookups.

        Raises:
            WarehouseError: an id has no key (``where`` names the write).
        """
        codes, distinct = pd.factorize(ids)
        at = self.ids.get_indexer(distinct)
        if (at < 0).any():
            raise WarehouseError(f"{where}: ids {list(distinct[at < 0][:5])} have no key")
        return self.keys[at][codes]


def _dictionary(conn: sa.Connection, kind: IdKind) -> IdDictionary:
    """The whole dictionary of ``kind``, read in ``conn``'s transaction (thousands of rows).

    The database sorts the ids by code point: SQLite's default (BINARY) collation compares
    UTF-8 bytes, and PostgreSQL's "C" collation too, whatever the database's own collation.
    """
    table = kind.table
    name = table.c[kind.id]
    by_code_point = name.collate("C") if conn.dialect.name == "postgresql" else name
    rows = conn.execute(sa.select(table.c[kind.key], name).order_by(by_code_point)).all()
    keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return IdDictionary(keys, pd.Index([r[1] for r in rows], dtype=object))


def _assign_keys(conn: sa.Connection, kind: IdKind, ids: pd.Series) -> IdDictionary:
    """Give each of ``ids`` that has no key the next free one; the dictionary afterwards.

    New ids take the keys after the largest stored, in id order. The caller must hold the
    ingestion lock (``engine._serialised(conn, "ingest")``; on SQLite every write transaction
    holds the database's write lock): two ingestions reading the same largest key would give
    one key twice. The unique id and primary key would then refuse the second batch, never
    store a wrong key.
    """
    stored = _dictionary(conn, kind)
    distinct = pd.Index(pd.unique(ids), dtype=object)
    new = distinct[stored.ids.get_indexer(distinct) < 0].sort_values()
    if new.empty:
        return stored
    first = int(stored.keys.max()) + 1 if len(stored.keys) else 1
    keys = np.arange(first, first + len(new), dtype=np.int64)
    _insert(conn, kind.table, pd.DataFrame({kind.key: keys, kind.id: new.to_numpy()}))
    return IdDictionary.in_id_order(np.concatenate([stored.keys, keys]), stored.ids.append(new))
