"""The run launcher's forkserver preload (defs/preload.py) loads every kernel a run needs."""

import subprocess
import sys

# In a fresh interpreter: import the preload, then run the engine as a tick and an EOD do (the
# warehouse's categorical trades of 50 books and 5,000 instruments, string-id opening rows, trades
# with distinct times and trades sharing a time).
SCRIPT = """
import numpy as np, pandas as pd
import desk_pipeline.defs.preload
from desk_pipeline.domain.positions import engine
from desk_pipeline.domain.schema import POSITION_STATE_DTYPES, conform, empty_frame
kernels = [f for f in vars(engine).values() if hasattr(f, "signatures")]
loaded = {f: len(f.signatures) for f in kernels}
n = 20_000
rng = np.random.default_rng(1)
trades = pd.DataFrame({
    "trade_id": [f"T{i:06d}" for i in range(n)], "version": 1, "status": "NEW",
    "book_id": pd.Categorical([f"B{i:02d}" for i in rng.integers(0, 50, n)]),
    "instrument_id": pd.Categorical([f"I{i:04d}" for i in rng.integers(0, 5000, n)]),
    "quantity": rng.normal(size=n), "price": 100.0,
    "trade_time": pd.Timestamp("2026-01-02", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s"),
})
as_of = [pd.Timestamp("2026-01-03", tz="UTC")]
opening = conform(engine.positions_as_of(empty_frame(POSITION_STATE_DTYPES), trades, as_of[0]),
                  POSITION_STATE_DTYPES)
engine.roll_positions(opening, trades, as_of)
# At desk scale trades share a millisecond: the engine reorders them, into writable copies.
tied = trades.assign(trade_time=trades["trade_time"].dt.floor("min"))
engine.roll_positions(opening, tied, as_of)
print([f.__name__ for f in kernels if len(f.signatures) != loaded[f]])
"""


def test_a_run_after_the_preload_loads_no_kernel_of_its_own():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
