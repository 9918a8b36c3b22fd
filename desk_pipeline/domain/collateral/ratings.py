"""Long-term credit rating scales: each agency symbol's notch, 0 = AAA/Aaa, 21 = D."""

import pandas as pd

# Long-term rating scales, best first; Fitch uses the S&P symbols. Equal positions are the
# agencies' usual equivalences, so a Moody's-rated bond lands in the same Basel band.
RATING_SCALE: tuple[str, ...] = (
    "AAA", "AA+", "AA", "AA-", "A+", "A", "A-", "BBB+", "BBB", "BBB-", "BB+", "BB", "BB-",
    "B+", "B", "B-", "CCC+", "CCC", "CCC-", "CC", "C", "D",
)  # fmt: skip
MOODYS_SCALE: tuple[str, ...] = (
    "Aaa", "Aa1", "Aa2", "Aa3", "A1", "A2", "A3", "Baa1", "Baa2", "Baa3", "Ba1", "Ba2", "Ba3",
    "B1", "B2", "B3", "Caa1", "Caa2", "Caa3", "Ca", "C",
)  # fmt: skip
_NOTCH: dict[str, int] = {
    **{r: i for i, r in enumerate(MOODYS_SCALE)},
    **{r: i for i, r in enumerate(RATING_SCALE)},
    "SD": RATING_SCALE.index("D"),
    "RD": RATING_SCALE.index("D"),
}


def rating_notch(ratings: pd.Series) -> pd.Series:
    """Position of each rating on the long-term scale: 0 = AAA/Aaa, 21 = D; NaN when unrated.

    Args:
        ratings: S&P/Fitch (``AA-``) or Moody's (``Aa3``) symbols; None, blank or unknown symbols
            count as unrated.

    Returns:
        A float64 series aligned with ``ratings``.
    """
    cleaned = ratings.astype("object").where(ratings.notna(), None)
    notches = [_NOTCH.get(r.strip()) if isinstance(r, str) else None for r in cleaned]
    return pd.Series(notches, index=ratings.index, dtype="float64")
