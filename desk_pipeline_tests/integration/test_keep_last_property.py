"""The warehouse applies keep_last atomically: its EOD is the one the per-row reference keeps."""

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.keep_last_reference import supersedes

DAY = "2026-03-02"
BASE = pd.Timestamp("2026-03-02 12:00", tz="UTC")

# None: the recomputation of the day found the book holding nothing (an empty EOD).
writes = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from([100.0, 200.0, None])),
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
                "quantity_micro_units": [round((quantity or 0) * 1_000_000)],
                "avg_price": [1.0],
                "realized_pnl": [0.0],
                "as_of": [as_of],
                "business_date": [DAY],
            }
        )
        recomputed = pd.DataFrame({"business_date": [DAY], "as_of": [as_of]})
        repo.keep_last_eod(
            snapshot.iloc[0:0] if quantity is None else snapshot, computed_us, recomputed
        )
        candidate = (as_of, pd.Timestamp(computed_us * 1000, tz="UTC"), quantity)
        # A later recomputation with identical rows writes nothing but confirms the stored
        # EOD as that recent, so an older computation finishing afterwards still loses. An
        # empty recomputation only empties an EOD already stored.
        if kept is None and quantity is None:
            continue
        if kept is None or supersedes(candidate[0], candidate[1], kept[0], kept[1]):
            kept = candidate
    stored = repo.eod("B1", DAY)
    if kept is None:
        assert stored is None
    else:
        header, rows = stored
        assert header["as_of"] == kept[0]
        assert rows["quantity"].tolist() == ([] if kept[2] is None else [kept[2]])
    repo.engine.dispose()
