"""A separate process writing one book-day's EOD, optionally hanging inside the transaction.

Usage: ``python -m desk_pipeline_tests.integration.eod_writer URL STEP [--hang]``. With
``--hang`` it stops after the old rows were deleted and the new header upserted, prints
``IN_TRANSACTION <backend pid>`` and sleeps, so that a test can SIGKILL it there. The hook is
a SQLAlchemy event on this process's engine: production code knows nothing of it.
"""

import sys
import time
from typing import Any

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters.warehouse import PositionRepository, now_micros
from desk_pipeline_tests.builders import with_micro_units

DAY = "2026-03-02"
BOOK = "CRASH-BOOK"
ROWS = 20_000


def snapshot(step: int) -> pd.DataFrame:
    """EOD rows as of 09:00 + step x 10 min; quantities encode the step (step x 1e6 + i)."""
    frame = pd.DataFrame(
        {
            "book_id": BOOK,
            "instrument_id": [f"I{i:06d}" for i in range(ROWS)],
            "quantity": [float(step * 1_000_000 + i) for i in range(ROWS)],
            "avg_price": 1.0,
            "realized_pnl": 0.0,
            "business_date": DAY,
            "as_of": pd.Timestamp(f"{DAY} 09:00", tz="UTC") + pd.Timedelta(minutes=10 * step),
        }
    )
    return with_micro_units(frame)


def main(url: str, step: int, hang: bool) -> None:
    repo = PositionRepository(url)
    if hang:

        @sa.event.listens_for(repo.engine, "after_cursor_execute")
        def _stop_inside(
            conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
        ) -> None:
            if statement.lstrip().upper().startswith("DELETE FROM EOD_POSITIONS"):
                cursor.execute("SELECT pg_backend_pid()")
                print(f"IN_TRANSACTION {cursor.fetchone()[0]}", flush=True)
                time.sleep(600)

    repo.keep_last_eod(snapshot(step), now_micros())
    print("COMMITTED", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), "--hang" in sys.argv[3:])
