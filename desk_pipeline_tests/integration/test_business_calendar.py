"""The warehouse's time zone: recorded by the first process, refused to every process in another.

Found on the demo: a `desk backfill` with DESK_TIMEZONE=America/New_York on the UTC-built
warehouse replaced a day's EOD (as of 00:00 UTC the next day) by one as of a later instant, and
a UTC backfill of the same day could not replace it back (keep-last keeps the later as-of);
`desk status` and `desk doctor` said all was well.
"""

import threading

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from desk_pipeline import commands
from desk_pipeline.adapters.warehouse import (
    PositionRepository,
    TimezoneMismatchError,
    WarehouseError,
)
from desk_pipeline.adapters.warehouse.business_calendar import recorded_timezone
from desk_pipeline.api import create_app
from desk_pipeline.domain.errors import SettingsError
from desk_pipeline_tests.builders import at, trade, write_landing_file
from desk_pipeline_tests.location import desk_settings

DAY = "2026-03-02"
NEW_YORK = "DESK_TIMEZONE=America/New_York (set in the environment)"


def refusal(url: str) -> str:
    shown = sa.make_url(url).render_as_string(hide_password=True)
    return (
        f"{NEW_YORK} is not UTC, the time zone the business days of the warehouse {shown} are "
        "cut in: set DESK_TIMEZONE=UTC for this warehouse (a process in another zone would "
        "store other days under the same dates), or use another warehouse"
    )


def test_the_first_process_records_its_zone_and_a_process_in_another_is_refused(warehouse_url):
    assert recorded_timezone(warehouse_url) is None
    first = PositionRepository(warehouse_url)
    first.require_timezone("UTC", "DESK_TIMEZONE=UTC (the default)")
    assert recorded_timezone(warehouse_url) == "UTC"
    first.engine.dispose()

    other = PositionRepository(warehouse_url)  # another process
    with pytest.raises(TimezoneMismatchError) as refused:
        other.require_timezone("America/New_York", NEW_YORK)
    assert str(refused.value) == refusal(warehouse_url)
    # A configuration error for the CLI (exit 2), a warehouse the API cannot use (503).
    assert isinstance(refused.value, SettingsError) and isinstance(refused.value, WarehouseError)
    other.require_timezone("UTC", "DESK_TIMEZONE=UTC (the default)")
    # Another name of the same days is the same zone (Etc/UTC is Debian's default).
    for alias in ("Etc/UTC", "Zulu", "GMT"):
        other.require_timezone(alias, f"DESK_TIMEZONE={alias}")
        desk_settings(warehouse_url=warehouse_url, timezone=alias).require_warehouse_timezone()
    assert recorded_timezone(warehouse_url) == "UTC"
    other.engine.dispose()


def test_processes_racing_on_a_new_warehouse_record_one_zone(warehouse_url):
    PositionRepository(warehouse_url).engine.dispose()  # migrated, nothing recorded
    zones = ["UTC", "Asia/Tokyo"] * 3
    start = threading.Barrier(len(zones))
    outcomes: dict[int, str] = {}

    def open_in(index: int, zone: str) -> None:
        repository = PositionRepository(warehouse_url)
        start.wait()
        try:
            repository.require_timezone(zone, f"DESK_TIMEZONE={zone}")
            outcomes[index] = zone
        except TimezoneMismatchError:
            outcomes[index] = "refused"
        finally:
            repository.engine.dispose()

    threads = [threading.Thread(target=open_in, args=item) for item in enumerate(zones)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    recorded = recorded_timezone(warehouse_url)
    assert recorded in {"UTC", "Asia/Tokyo"}
    assert sorted(outcomes.values()) == sorted(
        zone if zone == recorded else "refused" for zone in zones
    )


def test_reading_the_record_creates_no_warehouse(tmp_path):
    assert recorded_timezone(f"sqlite:///{tmp_path}/none.db") is None
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def utc_desk(tmp_path, dagster_instance):
    """One landing day computed by the daily job in UTC (the warehouse records UTC)."""
    folder = tmp_path / "landing"
    write_landing_file(folder, "trades.csv", [trade("T-1", 100, 99.5, at=at(DAY, "09:00"))])
    desk = desk_settings(
        warehouse_url=f"sqlite:///{tmp_path}/warehouse.db",
        trade_source=f"landing:{folder}",
        start_date="2026-03-01",
    )
    definitions = commands.definitions_for(desk)
    assert commands.RunSpec("daily_job", DAY).execute(definitions, dagster_instance).success
    return desk


def test_a_run_in_another_zone_fails_naming_the_warehouses_zone(utc_desk, dagster_instance):
    # What the daemon's and the UI's runs do when their DESK_TIMEZONE is not the warehouse's.
    stored = PositionRepository(utc_desk.warehouse_url).eod("B1", DAY)
    assert stored is not None
    new_york = desk_settings(**{**utc_desk.__dict__, "timezone": "America/New_York"})
    definitions = commands.definitions_for(new_york)
    with pytest.raises(Exception, match="is not UTC, the time zone the business days"):
        commands.RunSpec("daily_job", DAY).execute(definitions, dagster_instance)
    after = PositionRepository(utc_desk.warehouse_url).eod("B1", DAY)
    assert after is not None and after[0] == stored[0]  # the UTC EOD, as of the same instant


def test_the_api_in_another_zone_answers_503_with_the_line_desk_prints(utc_desk, dagster_instance):
    new_york = desk_settings(**{**utc_desk.__dict__, "timezone": "America/New_York"})
    with TestClient(create_app(new_york, token=None, instance=dagster_instance)) as client:
        for day in (DAY, "2199-12-31"):  # a stored day; a day after today (in either zone)
            response = client.get(f"/books/B1/eod/{day}")
            assert response.status_code == 503, response.text
            assert "is not UTC, the time zone the business days" in response.json()["detail"]
