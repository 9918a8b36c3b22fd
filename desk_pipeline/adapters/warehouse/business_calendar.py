"""The time zone the warehouse's business days are cut in, recorded once and checked on open.

Owns the table ``desk_calendar``. A stored day D is the desk's [D 00:00, D+1 00:00) in one time
zone: a process with another DESK_TIMEZONE writes days with other bounds under the same dates
(keep-last then takes its EOD as the later one, and no process of the right zone can replace
it), so every process checks its time zone against the recorded one before it reads or writes.
"""

from pathlib import Path

import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.configuration import connect_args, shown
from desk_pipeline.adapters.warehouse.codec import now_micros
from desk_pipeline.adapters.warehouse.engine import Store, WarehouseError, _serialised
from desk_pipeline.domain.calendar import same_business_days
from desk_pipeline.domain.errors import SettingsError


class TimezoneMismatchError(WarehouseError, SettingsError):
    """The process's DESK_TIMEZONE is not the warehouse's: a configuration error (exit 2).

    A WarehouseError too, so the API answers it as a server whose warehouse it cannot use (503).
    """

    def __init__(self, line: str) -> None:
        SettingsError.__init__(self, [line])


def mismatch_line(recorded: str, setting: str, url: str) -> str:
    """The one line refusing a process whose DESK_TIMEZONE is not ``recorded``, with the fix.

    ``setting`` quotes the process's value (``DESK_TIMEZONE=zone (origin)``); the warehouse at
    ``url`` is shown without its password.
    """
    return (
        f"{setting} is not {recorded}, the time zone the business days of the warehouse "
        f"{shown(url)} are cut in: set DESK_TIMEZONE={recorded} for this warehouse (a process "
        "in another zone would store other days under the same dates), or use another warehouse"
    )


class BusinessCalendarStore(Store):
    """The warehouse's business-day time zone, recorded by the first process that opens it."""

    # The zones this process found recorded: the record never changes once written.
    _agreed: frozenset[str] = frozenset()

    def business_timezone(self, timezone: str) -> str:
        """The recorded time zone; ``timezone`` is recorded when none is (a new warehouse).

        A warehouse stored before the record existed takes the zone of the first process that
        opens it since.
        """
        calendar = t.desk_calendar
        with self._transaction("business_timezone") as conn:
            _serialised(conn, "desk_calendar")
            recorded = conn.execute(sa.select(calendar.c.timezone)).scalar_one_or_none()
            if recorded is None:
                row = {"id": 1, "timezone": timezone, "recorded_at_us": now_micros()}
                conn.execute(sa.insert(calendar).values(row))
                recorded = timezone
        return str(recorded)

    def require_timezone(self, timezone: str, setting: str) -> None:
        """Go on only when ``timezone`` is the warehouse's (recorded now if it has none).

        Checked once per repository and zone.

        Args:
            timezone: the process's DESK_TIMEZONE.
            setting: how the refusal quotes it, e.g. ``DESK_TIMEZONE=UTC (the default)``.

        Raises:
            TimezoneMismatchError: another zone is recorded; the line names it and the fix.
        """
        if timezone in self._agreed:
            return
        recorded = self.business_timezone(timezone)
        if not same_business_days(recorded, timezone):
            raise TimezoneMismatchError(mismatch_line(recorded, setting, self.url))
        self._agreed = self._agreed | {timezone}


# Zones found recorded, by warehouse URL: a record never changes, so a process reads it once.
_RECORDED: dict[str, str] = {}


def recorded_timezone(url: str) -> str | None:
    """The time zone recorded in the warehouse at ``url``, read only; creates and migrates nothing.

    None when there is no warehouse there, no record yet, or the database does not answer:
    opening the warehouse says why (a read must not leave an empty SQLite file behind).
    """
    if url in _RECORDED:
        return _RECORDED[url]
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    engine = sa.create_engine(url, connect_args=connect_args(url))
    try:
        with engine.connect() as conn:
            recorded = conn.execute(sa.select(t.desk_calendar.c.timezone)).scalar_one_or_none()
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    if recorded is not None:
        _RECORDED[url] = recorded
    return recorded
