"""Dagster's PostgreSQL run and schedule storages, surviving dropped connections in the webserver.

Dagster's webserver calls ``instance.optimize_for_webserver(...)``, which gives each PostgreSQL
storage a pool holding one open connection, without a ping before use. Once PostgreSQL has
dropped that connection (a restart, a failover, ``pg_terminate_backend``, a proxy's idle
timeout), the storage's next statement fails on it: seen as the first launches from the UI
failing and leaving NOT_STARTED runs. The desk's storages build the same pool with
``pool_pre_ping``: a dead connection is replaced before it is used. Outside the webserver
Dagster's run and schedule storages connect anew for every statement (``NullPool``) and are
left as they are; the event log is in ``event_log_postgres.py``.

Configured in ``desk_pipeline/instance/dagster-postgres.yaml``.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

import sqlalchemy as sa
from dagster._serdes import ConfigurableClassData
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
    set_pg_statement_timeout,
)

from desk_pipeline.defs.event_log import fork_safe

if TYPE_CHECKING:
    from dagster_postgres.auth import PgTokenProvider


def webserver_engine(
    engine: sa.Engine,
    postgres_url: str,
    token_provider: "PgTokenProvider | None",
    statement_timeout: int,
    pool_recycle: int,
    max_overflow: int,
) -> sa.Engine:
    """The engine Dagster's ``optimize_for_webserver`` builds, pinging a connection before use.

    ``engine`` is the storage's current engine (its URL's ``options`` are kept, as Dagster
    does); the caller disposes of it.
    """
    kwargs: dict[str, Any] = {
        "isolation_level": "AUTOCOMMIT",
        "pool_size": 1,
        "pool_recycle": pool_recycle,
        "max_overflow": max_overflow,
        "pool_pre_ping": True,
    }
    options = engine.url.query.get("options")
    if options:
        kwargs["connect_args"] = {"options": options}
    pooled = fork_safe(create_pg_engine(postgres_url, token_provider, **kwargs))
    sa.event.listen(
        pooled,
        "connect",
        lambda connection, _: set_pg_statement_timeout(connection, statement_timeout),
    )
    return pooled


class PrePingedInWebserver:
    """Mixin for a dagster-postgres storage: its webserver pool pings before each use.

    Configured as dagster-postgres's storages are (``postgres_url`` or ``postgres_db``,
    ``should_autocreate_tables``).
    """

    _engine: sa.Engine
    postgres_url: str
    _token_provider: "PgTokenProvider | None"

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> Self:
        """The storage the instance's YAML describes (dagster-postgres's config)."""
        arguments: dict[str, Any] = {
            "postgres_url": pg_url_from_config(config_value),
            "should_autocreate_tables": config_value.get("should_autocreate_tables", True),
            "inst_data": inst_data,
            "token_provider": get_token_provider_from_config(config_value),
        }
        return cls(**arguments)

    def optimize_for_webserver(
        self, statement_timeout: int, pool_recycle: int, max_overflow: int
    ) -> None:
        """Dagster's one pooled connection with a statement timeout, pinged before use."""
        previous = self._engine
        self._engine = webserver_engine(
            previous,
            self.postgres_url,
            self._token_provider,
            statement_timeout,
            pool_recycle,
            max_overflow,
        )
        previous.dispose()


class DeskPostgresRunStorage(PrePingedInWebserver, PostgresRunStorage):
    """Dagster's PostgreSQL run storage; in the webserver, dropped connections are replaced."""


class DeskPostgresScheduleStorage(PrePingedInWebserver, PostgresScheduleStorage):
    """Dagster's PostgreSQL schedule storage; in the webserver, dropped connections are replaced."""
