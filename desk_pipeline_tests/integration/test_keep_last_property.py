"""The warehouse's atomic keep-last upsert agrees with the domain rule `supersedes`."""

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.snapshots import supersedes

DAY = "2026-03-02"
BASE = pd.Timestamp("2026-03-02 12:00", tz="UTC")

writes = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from([100.0, 200.0])),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(writes)
def test_whatever_order_snapshots_arrive_in_the_stored_eod_is_the_one_supersedes_picks(
    tmp_path_factory, sequence
):
    repo = PositionRepository(f"sqlite:///{tmp_path_factory.mktemp('kl')}/w.db")
    kept: tuple | None = None
    for as_of_step, computed_step, quantity in sequence:
        as_of = BASE + pd.Timedelta(minutes=10 * as_of_step)
        computed_us = 1_000_000 * (computed_step + 1)
        snapshot = pd.DataFrame(
            {
                "book_id": ["B1"],
                "instrument_id": ["I1"],
                "quantity": [quantity],
                "avg_price": [1.0],
                "realized_pnl": [0.0],
                "as_of": [as_of],
                "business_date": [DAY],
            }
        )
        repo.keep_last_eod(snapshot, computed_us)
        candidate = (as_of, pd.Timestamp(computed_us * 1000, tz="UTC"), quantity)
        # A later recomputation with identical rows writes nothing but confirms the stored
        # EOD as that recent, so an older computation finishing afterwards still loses.
        if kept is None or supersedes(candidate[0], candidate[1], kept[0], kept[1]):
            kept = candidate
    header, rows = repo.eod("B1", DAY)
    assert header["as_of"] == kept[0]
    assert rows["quantity"].tolist() == [kept[2]]
    repo.engine.dispose()
