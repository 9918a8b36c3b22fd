"""Quality rules on a stored collateral ranking, as pure functions over frames.

Each returns the offending rows (empty when the rule holds) so an asset check can both pass/fail
and show examples.
"""

import numpy as np
import pandas as pd

from desk_pipeline.domain.collateral.lendable import lendable_value
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
    # holdings and rankings are counted per code. Codes come in order of first appearance.
    code = _item_codes(holdings, ranking)
    n_held = len(holdings)
    held = np.bincount(code[:n_held], minlength=code.max(initial=-1) + 1) > 0
    times_ranked = np.bincount(code[n_held:], minlength=len(held))
    problem = np.select(
        [~held, times_ranked == 0, times_ranked > 1], ["not_held", "missing", "duplicated"], ""
    )
    bad = np.flatnonzero(problem != "")
    # The first row of each code, in code order.
    first = np.ones(len(code), dtype=bool)
    first[1:] = code[1:] > np.maximum.accumulate(code)[:-1]
    rows = np.flatnonzero(first)[bad]
    of_holdings = rows < n_held
    keys = pd.concat(
        [
            holdings.iloc[rows[of_holdings]].loc[:, _ITEM].astype(object),
            ranking.iloc[rows[~of_holdings] - n_held].loc[:, _ITEM].astype(object),
        ],
        ignore_index=True,
    )
    at = np.concatenate([bad[of_holdings], bad[~of_holdings]])
    gaps = keys.assign(times_ranked=times_ranked[at].astype("int64"), problem=problem[at])
    return gaps.sort_values(_ITEM, kind="stable").reset_index(drop=True)


def _item_codes(holdings: pd.DataFrame, ranking: pd.DataFrame) -> np.ndarray:
    """One int64 code per row of ``holdings`` then of ``ranking``: equal codes, equal keys.

    Key columns that are categoricals of the same categories on both sides (as the warehouse
    reads them) are compared by their integer codes; others are hashed, missing values as one
    value. Codes are numbered from 0 in order of first appearance.
    """
    code = np.zeros(len(holdings) + len(ranking), dtype=np.int64)
    for column in _ITEM:
        values, distinct = _column_codes(holdings[column], ranking[column])
        code = pd.factorize(code * distinct + values)[0].astype(np.int64)
    return code


def _column_codes(left: pd.Series, right: pd.Series) -> tuple[np.ndarray, int]:
    """Codes of ``left`` then ``right``'s values (equal values, equal codes) and how many."""
    if (
        isinstance(left.dtype, pd.CategoricalDtype)
        and isinstance(right.dtype, pd.CategoricalDtype)
        and left.cat.categories.equals(right.cat.categories)
    ):
        missing = len(left.cat.categories)
        codes = np.concatenate([left.cat.codes.to_numpy(), right.cat.codes.to_numpy()])
        return np.where(codes < 0, missing, codes).astype(np.int64), missing + 1
    both = pd.concat([left.astype(object), right.astype(object)], ignore_index=True)
    codes, distinct = pd.factorize(both, use_na_sentinel=False)
    return codes.astype(np.int64), len(distinct)


def inconsistent_values(ranking: pd.DataFrame, rtol: float = VALUE_RTOL) -> pd.DataFrame:
    """Items whose value is not quantity x price x fx_rate x (1 - haircut) within ``rtol``.

    Items with any of those five missing are not judged (e.g. no price: nothing to recompute).
    Offenders are ordered by (book, day, instrument).
    """
    inputs = ["quantity", "price", "fx_rate", "haircut", "value"]
    require_columns(ranking, [*_ITEM, *inputs], where="inconsistent_values")
    numbers = ranking.loc[:, inputs].astype("float64")
    present = numbers.notna().all(axis=1).to_numpy()
    expected = lendable_value(
        *(numbers[c].to_numpy() for c in ("quantity", "price", "fx_rate", "haircut"))
    )
    close = np.isclose(numbers["value"].to_numpy(), expected, rtol=rtol, atol=0.0)
    return _by_item(ranking.loc[present & ~close])


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
    """Eligible items whose haircut is missing or outside [0, 1), by (book, day, instrument)."""
    require_columns(ranking, [*_ITEM, "eligible", "haircut"], where="haircuts_out_of_range")
    haircut = ranking["haircut"].astype("float64")
    ok = (haircut >= 0.0) & (haircut < 1.0)
    return _by_item(ranking.loc[ranking["eligible"].astype(bool) & ~ok])


def _by_item(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` ordered by (book, day, instrument): offenders listed alike however read."""
    return rows.sort_values(_ITEM, kind="stable").reset_index(drop=True)
