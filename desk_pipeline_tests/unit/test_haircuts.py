import csv
import math
from importlib import resources

import pandas as pd
import pytest

from desk_pipeline.adapters.haircut_schedules import load_schedule
from desk_pipeline.domain.collateral.haircuts import (
    fx_addon,
    haircuts_for,
    haircuts_on,
    residual_maturity_years,
    scale_haircut,
)
from desk_pipeline.domain.collateral.ratings import rating_notch
from desk_pipeline.domain.collateral.schedule import (
    SCHEDULE_COLUMNS,
    HaircutScheduleError,
    parse_schedule,
)
from desk_pipeline.domain.schema import INSTRUMENT_DTYPES, conform, empty_frame

BUSINESS_DATE = pd.Timestamp("2025-03-14")
BASEL = load_schedule(None)
EUROSYSTEM = parse_schedule(
    resources.files("desk_pipeline").joinpath("haircuts/eurosystem_style.csv").read_text("utf-8")
)

# Basel Framework CRE22.49 (in force 1 Jan 2023, bis.org/basel_framework/chapter/CRE/22.htm),
# percent at 10 days, residual maturity <=1y, 1-3y, 3-5y, 5-10y, >10y; None = not eligible. Written
# out here, independently of the CSV, so that changing any cell fails a test. Checked cell by cell
# against SAMA's transposition of that table (rules 9.49, Table 14), not against the BIS page
# itself, which no reference corpus held (docs/collateral.md).
BUCKET_MATURITIES = {  # a maturity date well inside each bucket, from BUSINESS_DATE
    "<=1y": "2025-09-14",
    "1-3y": "2027-03-14",
    "3-5y": "2029-03-14",
    "5-10y": "2032-09-14",
    ">10y": "2045-03-14",
}
BASEL_DEBT = {
    ("sovereign", "AAA..AA-"): (0.5, 2, 2, 4, 4),
    ("sovereign", "A+..BBB-"): (1, 3, 3, 6, 6),
    ("sovereign", "BB+..BB-"): (15, 15, 15, 15, 15),
    ("other", "AAA..AA-"): (1, 3, 4, 6, 12),
    ("other", "A+..BBB-"): (2, 4, 6, 12, 20),
    ("other", "BB+..BB-"): (None, None, None, None, None),
    ("securitisation", "AAA..AA-"): (2, 8, 8, 16, 16),
    ("securitisation", "A+..BBB-"): (4, 12, 12, 24, 24),
    ("securitisation", "BB+..BB-"): (None, None, None, None, None),
}
BASEL_FLAT = {
    "equity_main_index": 20,
    "gold": 20,
    "equity_other": 30,
    "cash": 0,
    "fund": 30,
}
BAND_EDGES = {"AAA..AA-": ("AAA", "AA-"), "A+..BBB-": ("A+", "BBB-"), "BB+..BB-": ("BB+", "BB-")}
DEBT_CLASSES = {
    "sovereign": ("government_bond", "sovereign"),
    "other": ("corporate_bond", "other"),
    "securitisation": ("securitisation", "securitisation"),
}
# How the file keys each issuer column of CRE22.49 (asset_class, issuer_type) and its buckets.
BASEL_DEBT_BONDS = "government_bond|agency_bond|covered_bond|corporate_bond"
BASEL_FILE_KEYS = {
    "sovereign": (BASEL_DEBT_BONDS, "sovereign"),
    "other": (BASEL_DEBT_BONDS, "other"),
    "securitisation": ("securitisation", ""),
}
BUCKET_BOUNDS = ((None, 1), (1, 3), (3, 5), (5, 10), (10, None))  # years, (from, to]


def instruments(rows: list[dict]) -> pd.DataFrame:
    defaults = {
        "name": "n/a",
        "issuer": "n/a",
        "issuer_type": "other",
        "rating": None,
        "maturity_date": None,
        "currency": "USD",
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    frame["maturity_date"] = pd.to_datetime(frame["maturity_date"])
    return conform(frame, INSTRUMENT_DTYPES)


def basel_debt_cells() -> list[tuple[str, str, str, str, float | None]]:
    return [
        (issuer, band, bucket, rating, pct)
        for (issuer, band), row in BASEL_DEBT.items()
        for bucket, pct in zip(BUCKET_MATURITIES, row, strict=True)
        for rating in BAND_EDGES[band]
    ]


@pytest.mark.parametrize(("issuer", "band", "bucket", "rating", "pct"), basel_debt_cells())
def test_every_basel_debt_cell_gives_the_cre22_49_haircut_at_both_edges_of_its_rating_band(
    issuer: str, band: str, bucket: str, rating: str, pct: float | None
) -> None:
    asset_class, issuer_type = DEBT_CLASSES[issuer]
    inst = instruments(
        [
            {
                "instrument_id": "X",
                "asset_class": asset_class,
                "issuer_type": issuer_type,
                "rating": rating,
                "maturity_date": BUCKET_MATURITIES[bucket],
            }
        ]
    )
    got = haircuts_for(inst, BUSINESS_DATE, BASEL).iloc[0]
    if pct is None:
        assert not got["eligible"]
        assert got["reason"].startswith("rating_below_floor: ")
        assert math.isnan(got["base_haircut"])
    else:
        assert got["eligible"], got["reason"]
        assert got["reason"] is None
        assert got["base_haircut"] == pytest.approx(pct / 100, abs=1e-12)


@pytest.mark.parametrize(("asset_class", "pct"), BASEL_FLAT.items())
def test_every_basel_flat_haircut_applies_whatever_the_rating_and_maturity(
    asset_class: str, pct: float
) -> None:
    inst = instruments(
        [
            {"instrument_id": "A", "asset_class": asset_class},
            {"instrument_id": "B", "asset_class": asset_class, "rating": "BB"},
        ]
    )
    got = haircuts_for(inst, BUSINESS_DATE, BASEL)
    assert got["eligible"].all()
    assert got["base_haircut"].tolist() == pytest.approx([pct / 100] * 2, abs=1e-12)


def expected_basel_rows() -> list[tuple]:
    rows = []
    for (issuer, band), cells in BASEL_DEBT.items():
        asset_class, issuer_type = BASEL_FILE_KEYS[issuer]
        best, worst = BAND_EDGES[band]
        # A band with one value for every maturity (the BB rows) is one all-maturity row.
        graded = len(set(cells)) > 1
        buckets = zip(BUCKET_BOUNDS, cells, strict=True) if graded else [((None, None), cells[0])]
        rows += [
            (asset_class, issuer_type, best, worst, low, high, pct, pct is not None)
            for (low, high), pct in buckets
        ]
    flat = [(cls, "", "", "", None, None, pct, True) for cls, pct in BASEL_FLAT.items()]
    return rows + flat


def shipped_basel_rows() -> list[tuple]:
    text = resources.files("desk_pipeline").joinpath("haircuts/basel_cre22.csv").read_text("utf-8")
    table = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))

    def number(cell: str) -> float | None:
        return float(cell) if cell else None

    return [
        (
            row["asset_class"],
            row["issuer_type"],
            row["rating_best"],
            row["rating_worst"],
            number(row["maturity_from_years"]),
            number(row["maturity_to_years"]),
            number(row["haircut_pct"]),
            {"true": True, "false": False}[row["eligible"]],
        )
        for row in table
        if row["rule"] == "haircut"
    ]


def test_the_basel_file_holds_exactly_the_cells_of_the_expected_table_in_order() -> None:
    # Whole-table comparison, so a changed bucket bound or rating band fails too, not only a
    # changed percentage (the lookups above probe maturities well inside each bucket).
    assert shipped_basel_rows() == expected_basel_rows()


def test_the_basel_schedule_is_quoted_at_10_days_with_an_8_percent_fx_add_on() -> None:
    assert BASEL.name == "basel_cre22"
    assert BASEL.reference_holding_period_days == 10
    assert BASEL.fx_addon == pytest.approx(0.08)
    assert BASEL.maturity_buckets == "upper_inclusive"


def test_4_percent_at_10_days_is_2_828_percent_at_5_days() -> None:
    # 0.04 x sqrt(5 / 10) = 0.04 x 0.7071068 = 0.0282843
    assert scale_haircut(0.04, 5, BASEL) == pytest.approx(0.0282843, abs=1e-7)


def test_0_5_percent_at_10_days_is_0_354_percent_at_5_days_and_0_707_percent_at_20_days() -> None:
    # 0.005 x sqrt(0.5) = 0.0035355; 0.005 x sqrt(2) = 0.0070711
    assert scale_haircut(0.005, 5, BASEL) == pytest.approx(0.0035355, abs=1e-7)
    assert scale_haircut(0.005, 20, BASEL) == pytest.approx(0.0070711, abs=1e-7)


def test_fx_add_on_of_8_percent_at_10_days_is_5_657_percent_at_5_days() -> None:
    # 0.08 x sqrt(0.5) = 0.0565685
    assert fx_addon(5, BASEL) == pytest.approx(0.0565685, abs=1e-7)
    assert fx_addon(10, BASEL) == pytest.approx(0.08)


def test_scaling_applies_element_wise_to_series() -> None:
    got = scale_haircut(pd.Series([0.04, 0.2]), pd.Series([5.0, 10.0]), BASEL)
    assert got.tolist() == pytest.approx([0.04 * math.sqrt(0.5), 0.2])


def test_a_schedule_without_reference_holding_period_is_not_scaled() -> None:
    assert EUROSYSTEM.reference_holding_period_days is None
    assert scale_haircut(0.04, 5, EUROSYSTEM) == 0.04
    assert fx_addon(5, EUROSYSTEM) == 0.0


def test_bucket_edges_are_upper_inclusive_in_basel() -> None:
    # 2026-03-14 is 365 days = 0.9993 years away: still the <=1y bucket; 2028-03-14 is 1096 days =
    # 3.0007 years: the 3-5y bucket, which for AAA other issuers is 4 % instead of 3 %.
    inst = instruments(
        [
            {"instrument_id": "1Y", "asset_class": "corporate_bond", "rating": "AAA",
             "maturity_date": "2026-03-14"},
            {"instrument_id": "3Y", "asset_class": "corporate_bond", "rating": "AAA",
             "maturity_date": "2028-03-14"},
        ]
    )  # fmt: skip
    got = haircuts_for(inst, BUSINESS_DATE, BASEL)
    assert got["base_haircut"].tolist() == pytest.approx([0.01, 0.04])


def test_residual_maturity_counts_calendar_days_over_365_25() -> None:
    got = residual_maturity_years(pd.Series(pd.to_datetime(["2027-03-14", None])), BUSINESS_DATE)
    assert got.iloc[0] == pytest.approx(730 / 365.25)
    assert math.isnan(got.iloc[1])


def test_ratings_order_from_aaa_to_d_and_moodys_symbols_map_to_the_same_notch() -> None:
    got = rating_notch(pd.Series(["AAA", "AA-", "BBB-", "BB+", "D", "Aa3", "Baa3", None, "junk"]))
    assert got.tolist()[:7] == [0, 3, 9, 10, 21, 3, 9]
    assert got.iloc[7:].isna().all()


def test_a_moodys_rated_bond_gets_the_haircut_of_its_sp_equivalent() -> None:
    inst = instruments(
        [{"instrument_id": "M", "asset_class": "government_bond", "issuer_type": "sovereign",
          "rating": "Baa1", "maturity_date": "2032-09-14"}]
    )  # fmt: skip
    assert haircuts_for(inst, BUSINESS_DATE, BASEL)["base_haircut"].iloc[0] == pytest.approx(0.06)


def test_a_perpetual_bond_falls_in_the_longest_bucket() -> None:
    inst = instruments([{"instrument_id": "P", "asset_class": "corporate_bond", "rating": "A"}])
    assert haircuts_for(inst, BUSINESS_DATE, BASEL)["base_haircut"].iloc[0] == pytest.approx(0.20)


def test_ineligible_instruments_carry_a_short_reason_code() -> None:
    inst = instruments(
        [
            {"instrument_id": "MAT", "asset_class": "government_bond", "issuer_type": "sovereign",
             "rating": "AAA", "maturity_date": "2025-03-13"},
            {"instrument_id": "UNR", "asset_class": "corporate_bond",
             "maturity_date": "2030-01-01"},
            {"instrument_id": "B", "asset_class": "government_bond", "issuer_type": "sovereign",
             "rating": "B+", "maturity_date": "2030-01-01"},
            {"instrument_id": "EQ", "asset_class": "equity_main_index"},
            {"instrument_id": "TODAY", "asset_class": "government_bond",
             "issuer_type": "sovereign", "rating": "AAA", "maturity_date": "2025-03-14"},
        ]
    )  # fmt: skip
    got = haircuts_for(inst, BUSINESS_DATE, BASEL)
    codes = [r.split(":")[0] if r else None for r in got["reason"]]
    assert codes == ["matured", "rating_below_floor", "rating_below_floor", None, None]
    assert got["reason"].iloc[0] == "matured: MAT matured on 2025-03-13"
    # A bond maturing today has not passed its maturity: residual 0 is the shortest bucket.
    assert got["base_haircut"].iloc[4] == pytest.approx(0.005)


def test_the_eurosystem_style_schedule_parses_in_the_same_format() -> None:
    assert EUROSYSTEM.name == "eurosystem_style"
    assert EUROSYSTEM.maturity_buckets == "lower_inclusive"
    assert EUROSYSTEM.fx_addon == 0.0


def test_eurosystem_style_cells_follow_category_credit_step_and_lower_inclusive_buckets() -> None:
    # ECB/2015/35 Table 2, fixed coupon, CQS 1-2: category I [1-3) 1.0 %, category III [7-10) 6.0 %;
    # CQS 3: category I [0-1) 6.0 %. 2028-03-14 is 3.0007 years away: [3-5), 1.5 % for category I.
    inst = instruments(
        [
            {"instrument_id": "I13", "asset_class": "government_bond", "issuer_type": "sovereign",
             "rating": "AA", "maturity_date": "2027-03-14"},
            {"instrument_id": "III710", "asset_class": "corporate_bond", "rating": "A-",
             "maturity_date": "2033-03-14"},
            {"instrument_id": "I01_CQS3", "asset_class": "government_bond",
             "issuer_type": "sovereign", "rating": "BBB", "maturity_date": "2025-09-14"},
            {"instrument_id": "I35", "asset_class": "government_bond", "issuer_type": "sovereign",
             "rating": "AAA", "maturity_date": "2028-03-14"},
            {"instrument_id": "EQ", "asset_class": "equity_main_index"},
            {"instrument_id": "ABS3", "asset_class": "securitisation",
             "issuer_type": "securitisation", "rating": "BBB", "maturity_date": "2030-01-01"},
        ]
    )  # fmt: skip
    got = haircuts_for(inst, BUSINESS_DATE, EUROSYSTEM)
    assert got["base_haircut"].iloc[:4].tolist() == pytest.approx([0.01, 0.06, 0.06, 0.015])
    assert got["reason"].iloc[4].startswith("asset_class_not_accepted: ")
    assert got["reason"].iloc[5].startswith("rating_below_floor: ")


def test_a_row_marked_not_eligible_inside_the_floor_gives_not_eligible() -> None:
    text = """rule,key,value,asset_class,issuer_type,rating_best,rating_worst,maturity_from_years,maturity_to_years,haircut_pct,eligible,note
setting,name,tiny,,,,,,,,,
haircut,,,corporate_bond,,AAA,AAA,,,,false,AAA corporates
haircut,,,corporate_bond,,AA+,BBB-,,,5,true,the rest
"""  # noqa: E501
    inst = instruments([{"instrument_id": "C", "asset_class": "corporate_bond", "rating": "AAA"}])
    got = haircuts_for(inst, BUSINESS_DATE, parse_schedule(text))
    assert got["reason"].iloc[0] == "not_eligible: tiny lists AAA corporates as not eligible"


def test_haircuts_for_an_empty_frame_is_an_empty_frame() -> None:
    got = haircuts_for(empty_frame(INSTRUMENT_DTYPES), BUSINESS_DATE, BASEL)
    assert list(got.columns) == ["instrument_id", "base_haircut", "eligible", "reason"]
    assert got.empty


def test_haircuts_for_does_not_modify_its_input() -> None:
    inst = instruments([{"instrument_id": "C", "asset_class": "corporate_bond", "rating": "A"}])
    before = inst.copy()
    haircuts_for(inst, BUSINESS_DATE, BASEL)
    pd.testing.assert_frame_equal(inst, before)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("haircut,,,bond,,,,,,5,true,x", "unknown asset_class"),
        ("haircut,,,cash,,ZZZ,,,,5,true,x", "is not a rating"),
        ("haircut,,,cash,,,,,,five,true,x", "is not a number"),
        ("haircut,,,cash,,,,,,,true,x", "eligible cells without haircut_pct"),
        ("haircut,,,cash,,,,,,1,maybe,x", "expected true, false or blank"),
        ("setting,colour,red,,,,,,,,,", "unknown setting"),
        ("cell,,,cash,,,,,,1,true,x", "unknown rule"),
    ],
)
def test_a_malformed_schedule_is_rejected_with_a_message_naming_the_problem(
    row: str, message: str
) -> None:
    header = ",".join(SCHEDULE_COLUMNS)
    with pytest.raises(HaircutScheduleError, match=message):
        parse_schedule(f"{header}\n{row}\n")


def test_cells_shared_across_days_still_quote_each_day_s_own_maturity_and_bucket() -> None:
    text = """rule,key,value,asset_class,issuer_type,rating_best,rating_worst,maturity_from_years,maturity_to_years,haircut_pct,eligible,note
setting,name,short,,,,,,,,,
haircut,,,corporate_bond,,,,,1,2,true,up to a year
"""  # noqa: E501
    bond = {"instrument_id": "C", "asset_class": "corporate_bond", "maturity_date": "2026-03-16"}
    inst = instruments([bond] * 4)
    # 470, 366 and 365 days before maturity (1.29, 1.002 and 0.999 years), then matured: the
    # first two share a cell lookup, yet each reason quotes its own day's maturity.
    days = pd.to_datetime(["2024-12-01", "2025-03-15", "2025-03-16", "2026-03-17"]).to_numpy()
    got = haircuts_on(inst, days.astype("datetime64[ns]"), parse_schedule(text))
    assert got["reason"].tolist()[:2] == [
        "no_schedule_cell: no short cell for C (corporate_bond, unrated, 1.29 years)",
        "no_schedule_cell: no short cell for C (corporate_bond, unrated, 1.00 years)",
    ]
    assert got["base_haircut"].iloc[2] == pytest.approx(0.02)
    assert got["reason"].iloc[3] == "matured: C matured on 2026-03-16"
    expected = pd.concat(
        [
            haircuts_for(inst.iloc[[n]], pd.Timestamp(day), parse_schedule(text))
            for n, day in enumerate(days)
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_a_residual_maturity_is_quoted_with_two_decimals_and_an_undated_one_in_words() -> None:
    text = """rule,key,value,asset_class,issuer_type,rating_best,rating_worst,maturity_from_years,maturity_to_years,haircut_pct,eligible,note
setting,name,short,,,,,,,,,
haircut,,,,,,,,1,2,true,up to a year
"""  # noqa: E501
    inst = instruments(
        [
            {"instrument_id": "C", "asset_class": "corporate_bond", "maturity_date": "2027-03-16"},
            {"instrument_id": "E", "asset_class": "equity_main_index"},
        ]
    )
    got = haircuts_for(inst, pd.Timestamp("2025-03-15"), parse_schedule(text))
    # 731 days are 2.0014 years (read "2.0 years" before); an undated one read "inf years".
    assert got["reason"].tolist() == [
        "no_schedule_cell: no short cell for C (corporate_bond, unrated, 2.00 years)",
        "no_schedule_cell: no short cell for E (equity_main_index, unrated, no maturity date)",
    ]
