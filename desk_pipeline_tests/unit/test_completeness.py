"""Which stored EODs lack their valuation or ranking: the rule `desk status` lists days by."""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.domain.completeness import (
    CURRENT,
    DERIVED,
    EOD_DERIVATION_COLUMNS,
    MISSING,
    NOT_NEEDED,
    OLDER,
    derivation_states,
    incomplete_eods,
    stored_states,
)
from desk_pipeline.domain.errors import MissingColumnsError
from desk_pipeline_tests.sizes import examples

BOOKS = ("REPO-1", "SECLEND-1", "TRIPARTY-1")


def day(n: int) -> str:
    return (pd.Timestamp("2026-03-02") + pd.Timedelta(days=n)).strftime("%Y-%m-%d")


def eods_of(rows: list[dict]) -> pd.DataFrame:
    """Stored EOD headers as the warehouse reads them beside their valuation and ranking."""
    return pd.DataFrame(rows, columns=[*EOD_DERIVATION_COLUMNS, "as_of_us"])


def eod(book: str, n: int, *, open_positions: int = 2, has_rows: bool = True, **flags: bool):
    """One header: valued and ranked from its own snapshot unless ``flags`` say otherwise."""
    return {
        "book_id": book,
        "business_date": day(n),
        "position_count": open_positions,
        "has_rows": has_rows,
        **{f"{p}_current": flags.get(f"{p}_current", True) for p in DERIVED},
        **{f"{p}_older": flags.get(f"{p}_older", False) for p in DERIVED},
        "as_of_us": (n + 1) * 86_400_000_000,
    }


def reference_state(current: bool, older: bool, due: bool) -> str:
    """One product of one EOD, as the module's docstring states the rule."""
    if current:
        return CURRENT
    if older:
        return OLDER
    return MISSING if due else NOT_NEEDED


def reference_incomplete(eods: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """Plain loop over the headers: (day, book, valuation, ranking) of each incomplete EOD."""
    found = []
    for row in eods.to_dict("records"):
        valuation = reference_state(
            row["valuation_current"], row["valuation_older"], bool(row["has_rows"])
        )
        ranking = reference_state(
            row["ranking_current"], row["ranking_older"], row["position_count"] > 0
        )
        if valuation not in (CURRENT, NOT_NEEDED) or ranking not in (CURRENT, NOT_NEEDED):
            found.append((row["business_date"], row["book_id"], valuation, ranking))
    return sorted(found)


headers_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "book": st.sampled_from(BOOKS),
            "n": st.integers(0, 6),
            "open_positions": st.integers(0, 3),
            "has_rows": st.booleans(),
            **{f"{p}_{kind}": st.booleans() for p in DERIVED for kind in ("current", "older")},
        }
    ),
    max_size=20,
    unique_by=lambda r: (r["book"], r["n"]),
)


@settings(max_examples=examples(200), deadline=None)
@given(headers_strategy)
def test_incomplete_eods_equal_the_plain_rule(drawn):
    eods = eods_of([eod(r.pop("book"), r.pop("n"), **r) for r in drawn])

    found = incomplete_eods(eods)

    got = list(
        zip(
            found["business_date"],
            found["book_id"],
            found["valuation"],
            found["ranking"],
            strict=True,
        )
    )
    assert got == reference_incomplete(eods)  # ordered by day, then book
    states = derivation_states(eods)
    assert list(states.index) == list(eods.index)
    assert list(states["complete"]) == [
        (b, d) not in {(r[1], r[0]) for r in got}
        for b, d in zip(eods["book_id"], eods["business_date"], strict=True)
    ]
    assert (found["as_of_us"].to_numpy() > 0).all()  # the header's other columns are carried


def test_an_eod_replaced_after_its_ranking_was_stored_is_incomplete_until_ranked_again():
    # The attack: a backfill stopped between eod_positions and collateral_ranking left day 1's
    # new EOD beside the ranking and valuation of the snapshot it replaced, and day 2 unranked.
    eods = eods_of(
        [
            eod("REPO-1", 0),
            eod(
                "REPO-1",
                1,
                valuation_current=False,
                valuation_older=True,
                ranking_current=False,
                ranking_older=True,
            ),
            eod("SECLEND-1", 2, ranking_current=False),
        ]
    )

    found = incomplete_eods(eods)

    assert found[["business_date", "book_id", "valuation", "ranking"]].to_numpy().tolist() == [
        [day(1), "REPO-1", OLDER, OLDER],
        [day(2), "SECLEND-1", CURRENT, MISSING],
    ]


def test_an_eod_holding_nothing_needs_no_ranking_but_its_flat_rows_need_a_valuation():
    flat = dict(open_positions=0, ranking_current=False, valuation_current=False)
    eods = eods_of(
        [
            eod("REPO-1", 0, has_rows=False, **flat),  # emptied: nothing to value or rank
            eod("SECLEND-1", 0, has_rows=True, **flat),  # flat rows keep their realised P&L
            # A ranking of the snapshot an emptied EOD replaced is still read: out of date.
            eod("TRIPARTY-1", 0, has_rows=False, ranking_older=True, **flat),
        ]
    )

    states = derivation_states(eods)

    assert states[["valuation", "ranking", "complete"]].to_numpy().tolist() == [
        [NOT_NEEDED, NOT_NEEDED, True],
        [MISSING, NOT_NEEDED, False],
        [NOT_NEEDED, OLDER, False],
    ]


def test_no_stored_eod_is_nothing_incomplete_and_a_missing_column_is_named():
    assert incomplete_eods(eods_of([])).empty
    with pytest.raises(MissingColumnsError, match="derivation_states: missing columns"):
        derivation_states(eods_of([eod("REPO-1", 0)]).drop(columns="ranking_older"))


def reference_stored_state(snapshot: str, derived: str | None, due: bool) -> str:
    """One product of one EOD from the snapshot its stored rows are of: the same plain rule."""
    return reference_state(derived == snapshot, derived is not None and derived != snapshot, due)


stored_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "snapshot_id": st.sampled_from(["s1", "s2", "s3"]),
            "derived": st.none() | st.sampled_from(["s1", "s2", "s3"]),
            "position_count": st.integers(0, 3),
            "has_rows": st.booleans(),
        }
    ),
    max_size=20,
)


@settings(max_examples=examples(200), deadline=None)
@given(stored_strategy, st.sampled_from(DERIVED))
def test_the_state_of_what_a_read_shows_follows_the_same_rule(drawn, product):
    eods = pd.DataFrame(
        drawn, columns=["snapshot_id", "derived", "position_count", "has_rows"]
    ).rename(columns={"derived": f"{product}_snapshot_id"})

    found = stored_states(eods, product)

    due = {"valuation": "has_rows", "ranking": "position_count"}[product]
    expected = [reference_stored_state(r["snapshot_id"], r["derived"], bool(r[due])) for r in drawn]
    assert list(found["state"]) == expected
    assert list(found["current"]) == [s in (CURRENT, NOT_NEEDED) for s in expected]
    assert list(found.index) == list(eods.index)


def test_a_ranking_of_the_snapshot_an_eod_replaced_is_older_whatever_the_eod_now_holds():
    # A late trade restated the day (same as_of, new snapshot s2); the ranking is still s1's.
    eods = pd.DataFrame(
        {
            "snapshot_id": ["s2", "s2", "s2", "s2"],
            "ranking_snapshot_id": ["s1", "s1", "s2", None],
            "position_count": [3, 0, 3, 0],
        }
    )

    found = stored_states(eods, "ranking")

    assert found.to_numpy().tolist() == [
        [OLDER, False],
        [OLDER, False],  # emptied since: the old ranking is still what a read would show
        [CURRENT, True],
        [NOT_NEEDED, True],  # holds nothing: an empty ranking is the EOD's own
    ]


def test_a_read_of_an_unknown_product_or_without_the_snapshot_column_is_refused():
    eods = pd.DataFrame({"snapshot_id": ["s1"], "position_count": [1]})
    with pytest.raises(ValueError, match="product 'marks' is not one of"):
        stored_states(eods, "marks")
    with pytest.raises(MissingColumnsError, match="stored_states: missing columns"):
        stored_states(eods, "ranking")
