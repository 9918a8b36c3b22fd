"""Dagster's PostgreSQL event log on one pooled connection per process (see event_log.py).

dagster-postgres connects anew for every event (``NullPool``): a new server backend per event.
In the webserver, too, the pooled connection is pinged before use (``storage_postgres.py``: a
connection PostgreSQL dropped is replaced instead of failing the next launch).
Configured in ``desk_pipeline/instance/dagster-postgres.yaml``.
"""

from typing import Any

from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import (
    create_pg_engine,
)

from desk_pipeline.defs.event_log import POOL_RECYCLE_S, fork_safe
from desk_pipeline.defs.storage_postgres import PrePingedInWebserver


class DeskPostgresEventLogStorage(PrePingedInWebserver, PostgresEventLogStorage):
    """Dagster's PostgreSQL event log on one pooled connection per process.

    Config: dagster-postgres's (``postgres_url`` or ``postgres_db``, ``should_autocreate_tables``).
    """

    def __init__(self, postgres_url: str, *args: Any, **kwargs: Any):
        super().__init__(postgres_url, *args, **kwargs)
        # As Dagster's own optimize_for_webserver holds one: AUTOCOMMIT, like the engine it
        # replaces.
        self._engine.dispose()
        self._engine = fork_safe(
            create_pg_engine(
                self.postgres_url,
                self._token_provider,
                isolation_level="AUTOCOMMIT",
                pool_size=1,
                pool_recycle=POOL_RECYCLE_S,
                pool_pre_ping=True,
            )
        )

    def dispose(self) -> None:
        """Dagster's dispose, and the pooled connection closed."""
        super().dispose()
        self._engine.dispose()
