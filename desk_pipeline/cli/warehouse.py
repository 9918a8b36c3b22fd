"""The settings and the warehouse of a `desk` command, opened when the command needs them."""

import os
from pathlib import Path

from desk_pipeline.adapters.configuration import unreachable_warehouse
from desk_pipeline.adapters.warehouse import (
    NoWarehouseError,
    PositionRepository,
    TimezoneMismatchError,
    WarehouseError,
    WarehouseUnreachableError,
    require_warehouse,
)
from desk_pipeline.adapters.warehouse import open_repository as repository_at
from desk_pipeline.cli.terminal import notice
from desk_pipeline.defs.settings import DeskSettings, default_warehouse_url, desk_home
from desk_pipeline.domain.errors import SettingsError


def settings() -> DeskSettings:
    """The DESK_* settings, read now, for the warehouse's calendar.

    Raises:
        SettingsError: every bad setting, one line each; or (TimezoneMismatchError) the
            warehouse's business days are cut in another time zone than DESK_TIMEZONE: refused
            before the command reads, judges a day or starts a run (exit 2).
    """
    # Read when a command needs them, not at import: `main` may change the environment, and a
    # bad setting must not stop `desk doctor` (it is one line, exit 2, for the other commands).
    desk = DeskSettings.from_env()
    desk.require_warehouse_timezone()
    return desk


def open_repository() -> PositionRepository:
    """The warehouse, migrated; one that cannot be opened is a DESK_WAREHOUSE_URL problem.

    Its business days must be cut in DESK_TIMEZONE (a new warehouse records it).

    Raises:
        SettingsError: the database does not answer, is no database, or has a schema this
            desk does not know; the line is the one `desk doctor` shows. A
            TimezoneMismatchError (one too) names both time zones and the fix.
    """
    desk = settings()
    url = desk.warehouse_url
    # Only the current folder's ./.desk: a DAGSTER_HOME or a DESK_WAREHOUSE_URL was chosen.
    new_here = (
        not os.environ.get("DAGSTER_HOME")
        and url == default_warehouse_url()
        and not (desk_home() / "warehouse.db").exists()
    )
    try:
        repository = repository_at(url)
        repository.require_timezone(desk.timezone, desk.quoted("timezone"))
    except TimezoneMismatchError:
        raise
    except WarehouseError as err:
        raise SettingsError([unreachable_warehouse(url, err)]) from err
    if new_here:
        notice(
            f"created a new warehouse in ./.desk here ({desk_home()}): DESK_WAREHOUSE_URL and "
            "DAGSTER_HOME are not set; the demo's is in the folder `make run` ran in"
        )
    return repository


def open_reader() -> PositionRepository:
    """The warehouse of a command that only reads: it must exist, a read never creates one.

    Raises:
        NoWarehouseError: none at the configured URL; the message says where desk looked and
            how to point it elsewhere.
        SettingsError: the warehouse does not answer (the line `desk doctor` shows).
    """
    url = settings().warehouse_url
    try:
        require_warehouse(url)
    except NoWarehouseError as err:
        raise NoWarehouseError(f"{err}; {_where_desk_looks()}") from err
    except WarehouseUnreachableError as err:
        raise SettingsError([unreachable_warehouse(url, err)]) from err
    return open_repository()


def _where_desk_looks() -> str:
    if os.environ.get("DESK_WAREHOUSE_URL"):
        return "that is DESK_WAREHOUSE_URL: point it at the desk's warehouse"
    home = os.environ.get("DAGSTER_HOME")
    folder = f"DAGSTER_HOME ({home})" if home else f"./.desk in the current folder ({Path.cwd()})"
    return (
        f"DESK_WAREHOUSE_URL is not set, so desk looked in {folder}: run desk in the folder "
        "`make run` ran in, or set DESK_WAREHOUSE_URL (or DAGSTER_HOME) to your warehouse; "
        "`desk backfill` creates one"
    )
