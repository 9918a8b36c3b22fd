"""What `desk positions` / `desk ranking` say when nothing is stored for a book and day."""

import pandas as pd
import pytest

from desk_pipeline.queries import nothing_stored


class Headers:
    """A warehouse holding EOD headers of REPO-EUR-01 on 2026-03-02, 03 and 05 only."""

    def eod_headers(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "book_id": ["REPO-EUR-01"] * 3 + ["SECLEND-01"],
                "business_date": ["2026-03-02", "2026-03-03", "2026-03-05", "2026-03-02"],
            }
        )


@pytest.mark.parametrize(
    ("book", "day", "what", "why"),
    [
        ("NOPE", "2026-03-03", None, "no day of book NOPE is stored"),
        (
            "repo-eur-01",
            "2026-03-03",
            None,
            "no day of book repo-eur-01 is stored (did you mean REPO-EUR-01?)",
        ),
        (
            "REPO-EUR-1",
            "2026-03-03",
            None,
            "no day of book REPO-EUR-1 is stored (did you mean REPO-EUR-01?)",
        ),
        ("REPO-EUR-01", "2026-03-09", None, "its latest stored day is 2026-03-05"),
        ("REPO-EUR-01", "2026-02-27", None, "its first stored day is 2026-03-02"),
        (
            "REPO-EUR-01",
            "2026-03-04",
            None,
            "its days 2026-03-02..2026-03-05 are stored, but not this one",
        ),
        (
            "REPO-EUR-01",
            "2026-03-03",
            "collateral ranking",
            "the day's end-of-day positions are stored, not ranked yet",
        ),
    ],
)
def test_the_answer_says_what_is_stored_instead(book, day, what, why):
    error = nothing_stored(Headers(), book, day, *([what] if what else []))
    kind = what or "end-of-day positions"
    assert str(error) == f"no {kind} for book {book} on {day}: {why}"
