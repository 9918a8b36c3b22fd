"""Conversions several stores share: stored microseconds, stored micro-units, frames to rows."""

import datetime as dt
from typing import Any, cast

import numpy as np
import pandas as pd

from desk_pipeline.domain.precision import from_units


def to_micros(ts: pd.Timestamp) -> int:
    """A tz-aware timestamp as integer microseconds since the epoch (UTC)."""
    return int(pd.Timestamp(ts).tz_convert("UTC").value // 1000)


def micros_of(times: pd.Series) -> np.ndarray:
    """:func:`to_micros` of a whole column, vectorised (whatever its time resolution)."""
    since = times.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")
    return (since // pd.Timedelta(microseconds=1)).to_numpy(dtype="int64")


def from_micros(values: Any) -> Any:
    """Integer microseconds (scalar or array) back to UTC timestamps."""
    return pd.to_datetime(values, unit="us", utc=True)


def now_micros() -> int:
    """The wall clock in microseconds; the warehouse stamps ingestion and computation with it."""
    return int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)


def with_quantity(rows: pd.DataFrame) -> pd.DataFrame:
    """Stored position rows with ``quantity``, the float nearest to their exact micro-units.

    Snapshots store only ``quantity_micro_units`` (``tables.MicroUnits``); readers get both, as
    ``schema.POSITION_STATE_DTYPES`` has them.
    """
    micro_units = rows["quantity_micro_units"].to_numpy(dtype=np.int64)
    return rows.assign(quantity=from_units(micro_units), quantity_micro_units=micro_units)


def _nulls_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every missing value as None (SQL NULL), NaN floats included.

    Only columns with gaps are boxed as objects: boxing every cell dominated large writes.
    """
    gaps = [name for name in frame.columns if frame[name].isna().any()]
    boxed = {name: frame[name].astype(object).where(frame[name].notna(), None) for name in gaps}
    return frame.assign(**boxed) if boxed else frame


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame``'s rows as dicts by column name, the parameter shape SQLAlchemy executes."""
    # The stubs key records by Hashable; the frames here are labelled by table column names.
    return cast(list[dict[str, Any]], frame.to_dict(orient="records"))
