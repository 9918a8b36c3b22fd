"""Quality rules on a stored collateral ranking, as pure functions over frames.

Each returns the offending rows (empty when the rule holds) so an asset check can both pass/fail
and show examples.
"""

import numpy as np
import pandas as pd

from desk_pipeline.domain.schema import require_columns

# Stored values go through a float column and back; only rounding noise is tolerated.
VALUE_RTOL = 1e-9
_BOOK_DAY = ["book_id", "business_date"]
_ITEM = ["book_id", "business_date", "instrument_id"]


def coverage_gaps(holdings: pd.DataFrame, ranking: pd.DataFrame) -> pd.DataFrame:
    """(book, day, instrument) keys not ranked exactly once for exactly the held instruments.

    Args:
        holdings: ``holdings.holdings_from_positions`` (the ACL) of the stored EOD.
        ranking: the stored ranking of the same days.

    Returns:
        ``book_id``, ``business_date``, ``instrument_id``, ``times_ranked`` and ``problem``:
        ``missing`` (held, never ranked), ``duplicated`` (held, ranked more than once) or
        ``not_held`` (ranked but not held), ordered by key.
    """
    require_columns(holdings, _ITEM, where="coverage_gaps holdings")
    require_columns(ranking, _ITEM, where="coverage_gaps ranking")
    # One pass over both sides' keys (a range is ~25k items a day): each key gets a code, and
    # holdings and rankings are counted per code.
    keys = pd.concat([holdings.loc[:, _ITEM], ranking.loc[:, _ITEM]], ignore_index=True)
    code = keys.groupby(_ITEM, sort=False, dropna=False).ngroup().to_numpy()
    n_held = len(holdings)
    held = np.bincount(code[:n_held], minlength=code.max(initial=-1) + 1) > 0
    times_ranked = np.bincount(code[n_held:], minlength=len(held))
    problem = np.select(
        [~held, times_ranked == 0, times_ranked > 1], ["not_held", "missing", "duplicated"], ""
    )
    bad = np.flatnonzero(problem != "")
    first_row = pd.Series(np.arange(len(code))).groupby(code).first().to_numpy()
    gaps = keys.iloc[first_row[bad]].assign(
        times_ranked=times_ranked[bad].astype("int64"), problem=problem[bad]
    )
    return gaps.sort_values(_ITEM, kind="stable").reset_index(drop=True)


def inconsistent_values(ranking: pd.DataFrame, rtol: float = VALUE_RTOL) -> pd.DataFrame:
    """Items whose value is not quantity x price x fx_rate x (1 - haircut) within ``rtol``.

    Items with any of those five missing are not judged (e.g. no price: nothing to recompute).
    """
    inputs = ["quantity", "price", "fx_rate", "haircut", "value"]
    require_columns(ranking, [*_ITEM, *inputs], where="inconsistent_values")
    numbers = ranking.loc[:, inputs].astype("float64")
    present = numbers.notna().all(axis=1).to_numpy()
    expected = (
        numbers["quantity"] * numbers["price"] * numbers["fx_rate"] * (1.0 - numbers["haircut"])
    ).to_numpy()
    close = np.isclose(numbers["value"].to_numpy(), expected, rtol=rtol, atol=0.0)
    return ranking.loc[present & ~close].reset_index(drop=True)


def misranked_book_days(ranking: pd.DataFrame) -> pd.DataFrame:
    """(book, day) pairs whose eligible ranks are not 1..n by descending value.

    Ineligible items must carry no rank. A book-day is misranked when, with its eligible items
    in rank order, a rank is missing or is not its position, a value is missing, or a value
    exceeds the one ranked before it. Returns ``book_id`` and ``business_date``, ordered.
    """
    require_columns(ranking, [*_ITEM, "eligible", "rank", "value"], where="misranked_book_days")
    eligible = ranking["eligible"].astype(bool)
    unranked = ranking.loc[~eligible & ranking["rank"].notna(), _BOOK_DAY]
    judged = ranking.loc[eligible, [*_BOOK_DAY, "rank", "value"]].sort_values(
        [*_BOOK_DAY, "rank"], kind="stable", na_position="last"
    )
    in_group = judged.groupby(_BOOK_DAY, sort=False)
    ranks = judged["rank"].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    values = judged["value"].to_numpy(dtype="float64")
    wrong = (
        (ranks != (in_group.cumcount() + 1).to_numpy(dtype="float64"))
        | (in_group["value"].diff().to_numpy(dtype="float64") > 0)
        | np.isnan(values)
    )
    bad = pd.concat([unranked, judged.loc[wrong, _BOOK_DAY]])
    bad = bad.drop_duplicates().sort_values(_BOOK_DAY, kind="stable")
    return bad.reset_index(drop=True)


def haircuts_out_of_range(ranking: pd.DataFrame) -> pd.DataFrame:
    """Eligible items whose haircut is missing or outside [0, 1)."""
    require_columns(ranking, [*_ITEM, "eligible", "haircut"], where="haircuts_out_of_range")
    haircut = ranking["haircut"].astype("float64")
    ok = (haircut >= 0.0) & (haircut < 1.0)
    return ranking.loc[ranking["eligible"].astype(bool) & ~ok].reset_index(drop=True)
