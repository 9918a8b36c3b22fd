"""The quarantine: each distinct rejected input once, with every source it arrived in.

Owns ``quarantine`` and ``quarantine_arrivals``. Trade ingestion (trading_book.py) and reference
data (reference.py) write it through :func:`_store_quarantine`, in their own transactions.
"""

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import _chunks, _insert, _insert_for, _read
from desk_pipeline.adapters.warehouse.codec import _records
from desk_pipeline.adapters.warehouse.engine import Store
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, conform
from desk_pipeline.domain.validation.quarantine import rejection_fingerprints


class QuarantineStore(Store):
    """Reads of the quarantined inputs."""

    def quarantined(self) -> pd.DataFrame:
        """One row per distinct rejected input, oldest first.

        Returns:
            The quarantine table's columns (``source`` and ``row_number`` of its first arrival)
            and ``sources``: a list of every source it arrived in, in order of arrival.
        """
        q, a = t.quarantine, t.quarantine_arrivals
        with self._transaction("quarantined") as conn:
            rows = _read(conn, sa.select(q).order_by(q.c.id))
            arrivals = _read(
                conn,
                sa.select(a.c.quarantine_id, a.c.source).order_by(a.c.arrived_at_us, a.c.source),
            )
        sources = arrivals.groupby("quarantine_id", sort=False)["source"].agg(list)
        return rows.assign(sources=rows["id"].map(sources))


def _store_quarantine(conn: sa.Connection, quarantined: pd.DataFrame | None, stamp: int) -> int:
    """Quarantine each distinct rejected input once and record every source it arrived in.

    Returns the number of inputs not in the quarantine before.
    """
    if quarantined is None or quarantined.empty:
        return 0
    rows = conform(quarantined, QUARANTINE_DTYPES).assign(
        fingerprint=rejection_fingerprints(quarantined).to_numpy(), quarantined_at_us=stamp
    )
    q = t.quarantine
    fingerprints = list(rows["fingerprint"].unique())

    def stored() -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(fingerprints):
            query = sa.select(q.c.fingerprint, q.c.id).where(q.c.fingerprint.in_(chunk))
            found.update(conn.execute(query).tuples().all())
        return found

    known = stored()
    new = rows.loc[~rows["fingerprint"].isin(known)].drop_duplicates("fingerprint")
    _insert(conn, q, _records(new))
    ids = rows["fingerprint"].map(stored() if len(new) else known)
    arrivals = (
        rows.assign(quarantine_id=ids.to_numpy(), arrived_at_us=stamp)
        .drop_duplicates(["quarantine_id", "source"])
        .loc[:, ["quarantine_id", "source", "row_number", "arrived_at_us"]]
    )
    stmt = _insert_for(conn, t.quarantine_arrivals).on_conflict_do_nothing()
    conn.execute(stmt, _records(arrivals))
    return len(new)
