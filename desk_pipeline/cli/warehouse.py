"""The settings and the warehouse of a `desk` command, opened when the command needs them."""

import os
from pathlib import Path

from desk_pipeline.adapters.configuration import unreachable_warehouse
from desk_pipeline.adapters.warehouse import (
    NoWarehouseError,
    PositionRepository,
    WarehouseError,
    WarehouseUnreachableError,
    require_warehouse,
)
from desk_pipeline.adapters.warehouse import open_repository as repository_at
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.domain.errors import SettingsError


def settings() -> DeskSettings:
    """The DESK_* settings, read now (SettingsError lists every bad one)."""
    # Read when a command needs them, not at import: `main` may change the environment, and a
    # bad setting must not stop `desk doctor` (it is one line, exit 2, for the other commands).
    return DeskSettings.from_env()


def open_repository() -> PositionRepository:
    """The warehouse, migrated; one that cannot be opened is a DESK_WAREHOUSE_URL problem.

    Raises:
        SettingsError: the database does not answer, is no database, or has a schema this
            desk does not know; the line is the one `desk doctor` shows.
    """
    url = settings().warehouse_url
    try:
        return repository_at(url)
    except WarehouseError as err:
        raise SettingsError([unreachable_warehouse(url, err)]) from err


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
