"""Dates given to `desk` and the HTTP API: YYYY-MM-DD and nothing else."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desk_pipeline.domain.errors import InvalidRangeError
from desk_pipeline.queries import business_day

DATES = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2199, 12, 31))
# Other ways of writing a date that loose parsers accept, each with its own reading.
OTHER_WRITINGS = ["%d/%m/%Y", "%m/%d/%Y", "%Y%m%d", "%b %d %Y", "%d %B %Y", "%Y/%m/%d", "%d.%m.%Y"]


@given(DATES)
def test_an_iso_date_is_itself(day):
    assert business_day(day.isoformat(), "--date") == day.isoformat()


@given(DATES, st.sampled_from(OTHER_WRITINGS))
def test_any_other_writing_of_a_date_is_refused_naming_the_option(day, writing):
    written = day.strftime(writing)
    with pytest.raises(InvalidRangeError, match=r"--date .* YYYY-MM-DD"):
        business_day(written, "--date")


@pytest.mark.parametrize(
    "written", ["2026-02-30", "2026-13-01", "2026-1-5", "2026-W47-5", "2026-11-20T00:00", ""]
)
def test_a_date_that_does_not_exist_or_is_not_only_a_date_is_refused(written):
    with pytest.raises(InvalidRangeError):
        business_day(written, "--date")
