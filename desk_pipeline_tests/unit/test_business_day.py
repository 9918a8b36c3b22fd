"""Dates given to `desk` and the HTTP API: YYYY-MM-DD and nothing else."""

import datetime as dt

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from desk_pipeline.api.app import create_app
from desk_pipeline.defs.settings import DeskSettings
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


@pytest.mark.parametrize(
    "written", ["1677-09-21", "1899-12-31", "2200-01-01", "2262-04-12", "9999-12-31"]
)
def test_a_real_date_outside_the_desks_range_is_refused_naming_the_range(written):
    with pytest.raises(InvalidRangeError) as refused:
        business_day(written, "--date")
    assert str(refused.value) == (
        f"--date '{written}' is outside the dates the desk holds, 1900-01-01 to 2199-12-31"
    )


@given(st.dates().filter(lambda d: not dt.date(1900, 1, 1) <= d <= dt.date(2199, 12, 31)))
def test_every_real_date_outside_the_range_is_told_so_not_that_it_is_no_date(day):
    with pytest.raises(InvalidRangeError, match="outside the dates the desk holds"):
        business_day(day.isoformat(), "--date")


def test_a_long_value_is_repeated_cut_with_its_length_not_whole():
    with pytest.raises(InvalidRangeError) as refused:
        business_day("9" * 100_000, "--date")
    assert str(refused.value) == (
        f"--date '{'9' * 40}'… (100,000 characters) is not a calendar date written YYYY-MM-DD, "
        "e.g. 2026-03-06"
    )


@given(st.text(max_size=2_000))
def test_whatever_is_refused_is_repeated_on_one_short_line(written):
    try:
        business_day(written, "--date")
    except InvalidRangeError as refused:
        message = str(refused)
        assert "\n" not in message and len(message) <= 600
        assert (repr(written) in message) == (len(written) <= 40)


def test_the_api_repeats_a_long_date_cut_as_desk_does():
    desk = DeskSettings(warehouse_url="sqlite://", start_date="2026-03-01")
    app = create_app(desk, token=None, instance=dg.DagsterInstance.ephemeral())
    with TestClient(app) as client:
        response = client.get(f"/books/B1/eod/{'9' * 20_000}")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"date '{'9' * 40}'… (20,000 characters) is not a calendar date written YYYY-MM-DD, "
        "e.g. 2026-03-06"
    )
    # The path itself is the problem's instance (RFC 9457): once, not twice (it was 40 KB).
    assert len(response.content) < 20_000 + 1_000
