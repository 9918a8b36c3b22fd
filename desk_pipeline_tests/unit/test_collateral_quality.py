"""The collateral context's translation function, issuer concentration and ranking quality rules."""

import itertools

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.defs.resources import DeskSettings, HaircutScheduleResource, resources_from
from desk_pipeline.domain.collateral.holdings import HOLDING_COLUMNS, holdings_from_positions
from desk_pipeline.domain.collateral.quality import (
    coverage_gaps,
    haircuts_out_of_range,
    inconsistent_values,
    misranked_book_days,
)
from desk_pipeline.domain.collateral.ranking import issuer_concentration, rank_collateral_days
from desk_pipeline.domain.errors import DeskPipelineError
from desk_pipeline.domain.schema import POSITION_DTYPES, conform
from desk_pipeline_tests.location import desk_definitions
from desk_pipeline_tests.sizes import examples
from desk_pipeline_tests.unit.test_collateral import BASEL, books, fx, instruments, prices

DAY = "2025-03-14"
AS_OF = pd.Timestamp("2025-03-15", tz="UTC")


def eod(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """Stored EOD rows (business_date, book, instrument, quantity) as the warehouse returns them."""
    frame = pd.DataFrame(rows, columns=["business_date", "book_id", "instrument_id", "quantity"])
    positions = conform(frame.assign(avg_price=99.0, realized_pnl=5.0), POSITION_DTYPES)
    return positions.assign(
        business_date=frame["business_date"],
        snapshot_id=frame["book_id"] + "@" + frame["business_date"],
        as_of=AS_OF,
    )


def test_holdings_drop_flat_rows_and_keep_only_what_collateral_needs() -> None:
    stored = eod([(DAY, "B1", "A", 10.0), (DAY, "B1", "FLAT", 0.0), (DAY, "B2", "A", -3.0)])
    held = holdings_from_positions(stored)
    assert tuple(held.columns) == HOLDING_COLUMNS  # avg_price / realized_pnl stay behind
    assert held[["book_id", "instrument_id", "quantity"]].to_numpy().tolist() == [
        ["B1", "A", 10.0],
        ["B2", "A", -3.0],
    ]
    assert list(held["snapshot_id"]) == [f"B1@{DAY}", f"B2@{DAY}"]
    assert (held["business_date"] == DAY).all() and (held["as_of"] == AS_OF).all()


def test_holdings_sum_duplicate_rows_and_drop_those_summing_to_zero() -> None:
    stored = eod([(DAY, "B1", "A", 4.0), (DAY, "B1", "A", 6.0), (DAY, "B1", "Z", 2.0)])
    stored = pd.concat([stored, eod([(DAY, "B1", "Z", -2.0)])], ignore_index=True)
    held = holdings_from_positions(stored)
    assert held[["instrument_id", "quantity"]].to_numpy().tolist() == [["A", 10.0]]


def test_holdings_of_no_positions_are_empty_with_the_holding_columns() -> None:
    held = holdings_from_positions(eod([]))
    assert held.empty and tuple(held.columns) == HOLDING_COLUMNS


def test_holdings_need_the_snapshot_columns() -> None:
    with pytest.raises(DeskPipelineError):
        holdings_from_positions(eod([(DAY, "B1", "A", 1.0)]).drop(columns="snapshot_id"))


def test_ranking_days_reads_positions_through_the_translation_so_flat_books_get_no_rows() -> None:
    stored = eod([(DAY, "B1", "UST2Y", 10.0), (DAY, "FLATBOOK", "UST2Y", 0.0)])
    ranked = rank_collateral_days(
        stored,
        instruments([("UST2Y", "government_bond", "sovereign", "AA+", "2027-03-15", "USD")]),
        prices([("UST2Y", DAY, 100.0)]),
        books([]),
        fx([]),
        BASEL,
    )
    assert list(ranked["book_id"]) == ["B1"] and list(ranked["snapshot_id"]) == [f"B1@{DAY}"]


def ranked(rows: list[tuple]) -> pd.DataFrame:
    """A ranking: (book, instrument, quantity, price, fx, haircut, value, eligible, rank)."""
    columns = ["book_id", "instrument_id", "quantity", "price", "fx_rate", "haircut", "value"]
    frame = pd.DataFrame(rows, columns=[*columns, "eligible", "rank"])
    frame["rank"] = frame["rank"].astype("Int64")
    return frame.assign(business_date=DAY)


# B1: 100 x 1.0 x 1 x (1 - 0.02) = 98; 50 x 2.0 x 1 x (1 - 0.20) = 80; 10 x 3.0 x (1 - 0.04) = 28.8
GOOD = ranked(
    [
        ("B1", "BOND", 100.0, 1.0, 1.0, 0.02, 98.0, True, 1),
        ("B1", "EQ", 50.0, 2.0, 1.0, 0.20, 80.0, True, 2),
        ("B1", "BOND2", 10.0, 3.0, 1.0, 0.04, 28.8, True, 3),
        ("B1", "JUNK", 5.0, 1.0, 1.0, float("nan"), float("nan"), False, None),
    ]
)
ISSUERS = pd.DataFrame(
    {"instrument_id": ["BOND", "EQ", "BOND2", "JUNK"], "issuer": ["UST", "ACME", "UST", "JUNKCO"]}
)


def test_issuer_shares_sum_eligible_values_per_issuer_and_flag_those_over_the_limit() -> None:
    shares = issuer_concentration(GOOD, ISSUERS, limit=0.45)
    # UST: (98 + 28.8) / 206.8 = 0.6132; ACME: 80 / 206.8 = 0.3868; JUNKCO is ineligible.
    assert list(shares.columns) == [
        "book_id",
        "business_date",
        "issuer",
        "value",
        "share",
        "over_limit",
    ]
    assert list(shares["issuer"]) == ["UST", "ACME"]
    assert shares["value"].tolist() == pytest.approx([126.8, 80.0])
    assert shares["share"].tolist() == pytest.approx([126.8 / 206.8, 80.0 / 206.8])
    assert shares["over_limit"].tolist() == [True, False]


def test_a_share_equal_to_the_limit_is_not_over_it() -> None:
    halves = ranked(
        [
            ("B1", "BOND", 1.0, 1.0, 1.0, 0.0, 50.0, True, 1),
            ("B1", "EQ", 1.0, 1.0, 1.0, 0.0, 50.0, True, 2),
        ]
    )
    assert not issuer_concentration(halves, ISSUERS, limit=0.5)["over_limit"].any()


def test_an_instrument_without_an_issuer_counts_as_its_own_issuer() -> None:
    no_issuer = ISSUERS.assign(issuer=[None, None, None, None])
    shares = issuer_concentration(GOOD, no_issuer, limit=0.25)
    assert sorted(shares["issuer"]) == ["BOND", "BOND2", "EQ"]


def test_shares_are_per_book() -> None:
    two_books = pd.concat([GOOD, GOOD.assign(book_id="B2").head(1)], ignore_index=True)
    shares = issuer_concentration(two_books, ISSUERS, limit=0.25)
    b2 = shares[shares["book_id"] == "B2"]
    assert b2["share"].tolist() == [1.0] and b2["over_limit"].tolist() == [True]


def holdings(instrument_ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"book_id": "B1", "business_date": DAY, "instrument_id": instrument_ids})


def test_a_ranking_with_every_holding_once_has_no_coverage_gaps() -> None:
    assert coverage_gaps(holdings(["BOND", "EQ", "BOND2", "JUNK"]), GOOD).empty


def test_missing_duplicated_and_unheld_items_are_coverage_gaps() -> None:
    doubled = pd.concat([GOOD, GOOD.head(1)], ignore_index=True)
    gaps = coverage_gaps(holdings(["BOND", "EQ", "BOND2", "OTHER"]), doubled)
    assert gaps[["instrument_id", "problem"]].to_numpy().tolist() == [
        ["BOND", "duplicated"],
        ["JUNK", "not_held"],
        ["OTHER", "missing"],
    ]


def test_consistent_values_pass_and_a_value_off_by_more_than_1e_9_relative_fails() -> None:
    assert inconsistent_values(GOOD).empty
    off = GOOD.copy()
    off.loc[1, "value"] = 80.0 * (1 + 1e-8)
    assert list(inconsistent_values(off)["instrument_id"]) == ["EQ"]
    rounding = GOOD.copy()
    rounding.loc[1, "value"] = 80.0 * (1 + 1e-12)
    assert inconsistent_values(rounding).empty


def test_ranks_one_to_n_by_descending_value_pass_and_any_other_order_fails() -> None:
    assert misranked_book_days(GOOD).empty
    swapped = GOOD.copy()
    swapped.loc[[0, 1], "rank"] = [2, 1]  # rank 1 now worth 80 < rank 2 worth 98
    gapped = GOOD.copy()
    gapped.loc[2, "rank"] = 4
    ranked_ineligible = GOOD.copy()
    ranked_ineligible.loc[3, "rank"] = 4
    for bad in (swapped, gapped, ranked_ineligible):
        assert misranked_book_days(bad).to_numpy().tolist() == [["B1", DAY]]


def test_eligible_haircuts_in_0_to_1_pass_and_1_negative_or_missing_fail() -> None:
    assert haircuts_out_of_range(GOOD).empty  # JUNK's NaN haircut is ineligible, not judged
    for haircut in (1.0, -0.01, float("nan")):
        bad = GOOD.copy()
        bad.loc[0, "haircut"] = haircut
        assert list(haircuts_out_of_range(bad)["instrument_id"]) == ["BOND"]


def test_the_issuer_limit_defaults_to_25_percent(monkeypatch) -> None:
    monkeypatch.delenv("DESK_ISSUER_CONCENTRATION_LIMIT", raising=False)
    assert DeskSettings.from_env().issuer_concentration_limit == 0.25
    assert HaircutScheduleResource().issuer_concentration_limit == 0.25


def test_the_issuer_limit_is_read_from_the_environment_into_the_haircuts_resource(
    monkeypatch,
) -> None:
    monkeypatch.setenv("DESK_ISSUER_CONCENTRATION_LIMIT", "0.4")
    settings = DeskSettings.from_env()
    haircuts = resources_from(settings)["haircuts"]
    assert isinstance(haircuts, HaircutScheduleResource)
    assert haircuts.issuer_concentration_limit == 0.4


def test_the_code_location_carries_the_collateral_ranking_checks() -> None:
    defs = desk_definitions()
    ranking_checks = {
        key.name
        for key in defs.resolve_asset_graph().asset_check_keys
        if key.asset_key == dg.AssetKey("collateral_ranking")
    }
    assert ranking_checks == {
        "every_holding_ranked_once",
        "ranking_values_consistent",
        "haircuts_in_range",
        "issuer_concentration_under_limit",
        "ranked_at_current_marks",
    }


def test_a_day_ranked_at_a_mark_that_changed_since_fails_its_check_with_how_to_restate() -> None:
    from desk_pipeline.defs.collateral.checks import check_ranked_at_current_marks

    failed = check_ranked_at_current_marks(
        ["2026-03-02", "2026-03-05"], ["2026-03-02", "2026-03-03"]
    )
    assert not failed.passed
    assert failed.metadata["stale_days"].value == 1
    assert failed.metadata["examples"].value == "2026-03-02"
    assert "desk backfill" in failed.metadata["restate"].value
    assert check_ranked_at_current_marks(["2026-03-05"], ["2026-03-02"]).passed


def misranked_reference(ranking: pd.DataFrame) -> list[tuple[str, str]]:
    """The rule one book-day at a time: ranks 1..n in rank order, values never rising."""
    bad = set()
    for row in ranking.itertuples():
        if not row.eligible and not pd.isna(row.rank):
            bad.add((row.book_id, row.business_date))
    for key, items in ranking[ranking["eligible"]].groupby(["book_id", "business_date"]):
        ordered = items.sort_values("rank", kind="stable", na_position="last")
        ranks = [None if pd.isna(r) else int(r) for r in ordered["rank"]]
        values = list(ordered["value"])
        if (
            ranks != list(range(1, len(ordered) + 1))
            or any(np.isnan(values))
            or any(b > a for a, b in itertools.pairwise(values))
        ):
            bad.add(key)
    return sorted(bad)


@st.composite
def rankings(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["B1", "B2"]),
                st.sampled_from(["2025-03-14", "2025-03-15"]),
                st.one_of(st.none(), st.integers(1, 4)),
                st.one_of(st.just(np.nan), st.sampled_from([10.0, 20.0, 30.0])),
                st.booleans(),
            ),
            max_size=10,
        )
    )
    frame = pd.DataFrame(rows, columns=["book_id", "business_date", "rank", "value", "eligible"])
    return frame.assign(
        instrument_id=[f"I{n}" for n in range(len(frame))],
        rank=pd.array(frame["rank"].tolist(), dtype="Int64"),
        value=frame["value"].astype("float64"),
        eligible=frame["eligible"].astype(bool),
    )


@settings(max_examples=examples(50), deadline=None)
@given(rankings())
def test_misranked_book_days_match_a_book_day_by_book_day_reference(ranking: pd.DataFrame) -> None:
    got = misranked_book_days(ranking)
    assert list(got.itertuples(index=False, name=None)) == misranked_reference(ranking)


ITEM_KEYS = st.tuples(
    st.sampled_from(["B1", "B2"]),
    st.sampled_from(["2025-03-14", "2025-03-15"]),
    st.sampled_from(["I1", "I2", "I3"]),
)


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(ITEM_KEYS, max_size=8), st.lists(ITEM_KEYS, max_size=8))
def test_coverage_gaps_match_a_key_by_key_reference(held: list, ranked: list) -> None:
    columns = ["book_id", "business_date", "instrument_id"]
    got = coverage_gaps(pd.DataFrame(held, columns=columns), pd.DataFrame(ranked, columns=columns))
    assert list(got.itertuples(index=False, name=None)) == coverage_reference(held, ranked)


def coverage_reference(held: list, ranked: list) -> list[tuple]:
    """The coverage rule key by key: (book, day, instrument, times ranked, problem), sorted."""
    expected = []
    for key in sorted(set(held) | set(ranked)):
        times = ranked.count(key)
        problem = "not_held" if key not in held else "missing" if times == 0 else "duplicated"
        if key not in held or times != 1:
            expected.append((*key, times, problem))
    return expected


ITEM_COLUMNS = ["book_id", "business_date", "instrument_id"]


def as_categoricals(frame: pd.DataFrame, categories: dict[str, list[str]] | None) -> pd.DataFrame:
    """``frame``'s key columns as categoricals of ``categories`` (each column's own if None)."""
    return frame.assign(
        **{
            c: pd.Categorical(frame[c], categories=None if categories is None else categories[c])
            for c in ITEM_COLUMNS
        }
    )


@settings(max_examples=examples(50), deadline=None)
@given(
    st.lists(ITEM_KEYS, max_size=8),
    st.lists(ITEM_KEYS, max_size=8),
    st.sampled_from(["shared", "shared_unsorted", "crossed", "own", "held_only", "ranking_only"]),
)
def test_coverage_gaps_of_categorical_keys_match_the_reference(
    held: list, ranked: list, representation: str
) -> None:
    """As the warehouse reads them (categoricals both sides share) or any other way."""
    holdings_frame = pd.DataFrame(held, columns=ITEM_COLUMNS)
    ranking_frame = pd.DataFrame(ranked, columns=ITEM_COLUMNS)
    union = {c: sorted(set(holdings_frame[c]) | set(ranking_frame[c])) for c in ITEM_COLUMNS}
    if representation in ("shared", "shared_unsorted"):
        if representation == "shared_unsorted":
            union = {c: values[::-1] for c, values in union.items()}
        holdings_frame = as_categoricals(holdings_frame, union)
        ranking_frame = as_categoricals(ranking_frame, union)
    if representation == "crossed":  # equal as dtypes (same ids), codes numbered differently
        holdings_frame = as_categoricals(holdings_frame, union)
        ranking_frame = as_categoricals(ranking_frame, {c: v[::-1] for c, v in union.items()})
    if representation in ("own", "held_only"):
        holdings_frame = as_categoricals(holdings_frame, None)
    if representation in ("own", "ranking_only"):
        ranking_frame = as_categoricals(ranking_frame, None)
    got = coverage_gaps(holdings_frame, ranking_frame)
    assert list(got.itertuples(index=False, name=None)) == coverage_reference(held, ranked)


@settings(max_examples=examples(50), deadline=None)
@given(rankings())
def test_misranked_book_days_of_categorical_ids_match_the_reference(ranking: pd.DataFrame) -> None:
    """Ids as the warehouse reads them for the checks: categoricals of the sorted ids."""
    categorical = ranking.assign(
        **{c: pd.Categorical(ranking[c]) for c in ["book_id", "business_date", "instrument_id"]}
    )
    got = misranked_book_days(categorical)
    assert list(got.itertuples(index=False, name=None)) == misranked_reference(ranking)


@st.composite
def valued_items(draw: st.DrawFn) -> pd.DataFrame:
    """Ranked items in any order: values right, off, or with an input missing."""
    keys = draw(st.lists(ITEM_KEYS, max_size=10, unique=True))
    number = st.sampled_from([np.nan, 0.0, 0.5, 1.0, 1.0, 2.0, 2.0, -3.0])
    rows = [
        (*key, draw(number), draw(number), draw(number), draw(number), draw(st.booleans()))
        for key in keys
    ]
    frame = pd.DataFrame(
        rows, columns=[*ITEM_COLUMNS, "quantity", "price", "fx_rate", "haircut", "eligible"]
    )
    value = frame["quantity"] * frame["price"] * frame["fx_rate"] * (1.0 - frame["haircut"])
    tamper = draw(st.lists(st.sampled_from([1.0, 1.0 + 1e-12, 1.001, 1.001]), min_size=len(frame)))
    return frame.assign(value=value * np.array(tamper[: len(frame)]))


@settings(max_examples=examples(50), deadline=None)
@given(valued_items(), st.booleans())
def test_inconsistent_values_and_bad_haircuts_match_an_item_by_item_reference(
    ranking: pd.DataFrame, categorical: bool
) -> None:
    inconsistent, bad_haircut = [], []
    for row in ranking.itertuples(index=False):
        inputs = [row.quantity, row.price, row.fx_rate, row.haircut, row.value]
        expected = row.quantity * row.price * row.fx_rate * (1.0 - row.haircut)
        if not any(np.isnan(inputs)) and abs(row.value - expected) > 1e-9 * abs(expected):
            inconsistent.append((row.book_id, row.business_date, row.instrument_id))
        if row.eligible and not (0.0 <= row.haircut < 1.0):
            bad_haircut.append((row.book_id, row.business_date, row.instrument_id))
    given_frame = as_categoricals(ranking, None) if categorical else ranking
    got = inconsistent_values(given_frame).loc[:, ITEM_COLUMNS]
    assert list(got.itertuples(index=False, name=None)) == sorted(inconsistent)
    got = haircuts_out_of_range(given_frame).loc[:, ITEM_COLUMNS]
    assert list(got.itertuples(index=False, name=None)) == sorted(bad_haircut)
