"""Any DESK_* values: refused as one line naming the variable, or a code location that loads.

The kind of bug this pins: a value the settings accepted (DESK_HOURS=25, a start date Python
reads but Dagster does not, a number too large for Dagster or pandas) that then failed the
definitions' load or every run with a traceback naming no variable.
"""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from desk_pipeline.definitions import build_definitions
from desk_pipeline.defs.settings import ENVIRONMENT, DeskSettings
from desk_pipeline.domain.errors import SettingsError

# What an environment variable can hold: any text but NUL (and lone surrogates).
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
# Each strategy mixes usable values with the odd ones a person may type.
HOURS = st.one_of(
    st.sampled_from(["0-23", "7-18", "8,12,16", "*/2", "23-1", "25", "abc", "1 2", "?", "L"]),
    st.text(alphabet="0123456789-,*/ ", max_size=8),
    TEXT,
)
DATES = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.strftime("%Y%m%d")),
    st.dates().map(lambda d: "{}-W{:02d}-{}".format(*d.isocalendar())),
    TEXT,
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.sampled_from(["0", "1", "59", "61", "10080", "10081", "3650", "3651", "1.5", "x"]),
)


@settings(max_examples=25, deadline=None)
@given(hours=HOURS, start=DATES, minutes=NUMBERS, retention=NUMBERS)
@example(hours="abc", start="2026-01-01", minutes="20", retention="7")
@example(hours="25", start="2026-01-01", minutes="20", retention="7")
@example(hours="0-23", start="2026-01-01", minutes="99999999999999999999999", retention="7")
@example(hours="0-23", start="20260101", minutes="20", retention="7")
@example(hours="0-23", start="2026-W01-1", minutes="20", retention="7")
@example(hours="0-23", start="0001-01-01", minutes="20", retention="7")
@example(hours="0-23", start="2026-01-01", minutes="20", retention="99999999999")
@example(hours="7-18", start="1970-01-01", minutes="10080", retention="3650")
@example(hours="0-23", start="\n", minutes="0", retention="0")
def test_settings_are_refused_by_name_or_the_definitions_load_and_run(
    hours, start, minutes, retention
):
    variables = {
        "DESK_WAREHOUSE_URL": "sqlite://",
        "DESK_HOURS": hours,
        "DESK_START_DATE": start,
        "DESK_FRESHNESS_MINUTES": minutes,
        "DESK_INTRADAY_RETENTION_DAYS": retention,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ENVIRONMENT.values():
            patch.delenv(name, raising=False)
        for name, value in variables.items():
            patch.setenv(name, value)
        try:
            desk = DeskSettings.from_env()
        except SettingsError as err:
            # Only the variables given can be wrong; each line names one and says what to use.
            assert err.lines and all("\n" not in line for line in err.lines)
            assert {line.partition("=")[0] for line in err.lines} <= variables.keys()
            assert all("; " in line for line in err.lines)
            return
    definitions = build_definitions(desk)
    dg.Definitions.validate_loadable(definitions)
    for job in ("intraday_job", "daily_job"):
        partitioned = definitions.resolve_job_def(job).partitions_def
        assert partitioned is not None
        # No key yet only while DESK_START_DATE is in the future (allowed: a planned start).
        start_day = dt.date.fromisoformat(desk.start_date)
        if start_day < dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1):
            assert partitioned.get_first_partition_key() is not None
            assert partitioned.get_last_partition_key() is not None
    # Every intraday run purges the snapshots older than the retention: its cutoff computes.
    assert pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=desk.intraday_retention_days)
