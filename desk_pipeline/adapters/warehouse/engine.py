"""The warehouse's connection: engine, Alembic migrations, locks and one transaction per call.

Every store of the package builds on :class:`Store`; the errors here are the package's own.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from desk_pipeline.adapters.configuration import connect_args, driver_line
from desk_pipeline.adapters.transient import is_transient
from desk_pipeline.domain.errors import DeskPipelineError

log = logging.getLogger(__name__)

# The package sits in adapters/, next to the migrations folder.
MIGRATIONS = Path(__file__).parent.parent / "migrations"


class WarehouseError(DeskPipelineError):
    """A warehouse read or write failed; the message names the operation."""


class NoWarehouseError(WarehouseError):
    """No desk warehouse at the URL: no SQLite file, or a database without the desk's schema."""


class WarehouseUnreachableError(WarehouseError):
    """The warehouse's database does not answer (server down, wrong host or port, bad file)."""


class Store:
    """One SQLite or PostgreSQL warehouse: its engine, its schema, one transaction per operation."""

    def __init__(self, url: str) -> None:
        """Connect to ``url`` (a SQLAlchemy URL) and bring its schema to the latest migration."""
        self.url = url
        self.engine = _engine(url)
        self.applied = self.migrate()

    def migrate(self) -> list[str]:
        """Apply every pending Alembic migration, one process at a time; return those applied.

        A schema already at the latest revision is only read (no DDL, no lock held). Otherwise
        the migration runs in one transaction under the warehouse's migration lock (a
        PostgreSQL advisory lock per schema; SQLite's write lock, taken by ``BEGIN IMMEDIATE``),
        and re-reads the revision once it holds the lock, so processes racing on a new
        warehouse apply each migration exactly once and all succeed.

        Raises:
            WarehouseError: the schema is at a revision this code does not know (newer code
                migrated it), or the migration failed.
        """
        head = schema_head()
        if self.schema_revision() == head:
            return []
        config = _alembic_config()
        try:
            with self.engine.begin() as conn:
                _serialised(conn, "migrate")
                current = MigrationContext.configure(conn).get_current_revision()
                pending = _pending_revisions(current)
                if pending:
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
        except sa.exc.SQLAlchemyError as err:
            raise warehouse_error("migrate", err) from err
        if pending:
            log.info("migrated the warehouse schema from %s to %s", current or "none", head)
        return pending

    def schema_revision(self) -> str | None:
        """The warehouse schema's Alembic revision; None for a new, empty warehouse."""
        with self._transaction("schema_revision") as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[sa.Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as err:
            raise warehouse_error(operation, err) from err


def warehouse_error(operation: str, err: sa.exc.SQLAlchemyError) -> WarehouseError:
    """The desk's error for ``operation``'s failure: the driver's first line, never the SQL.

    A failure a retry may cure (adapters.transient: a dropped or refused connection, a locked
    SQLite file) is a WarehouseUnreachableError: the warehouse does not answer.
    """
    reason = driver_line(err)
    if is_transient(err):
        return WarehouseUnreachableError(f"{operation}: the warehouse does not answer: {reason}")
    return WarehouseError(f"{operation}: {reason}")


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 120})

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Take the write lock when a transaction starts, so two writers queue instead of
            # failing on lock upgrade; WAL lets readers continue while one writes.
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args(url))


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def schema_head() -> str:
    """The latest migration revision this code knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise WarehouseError(f"no migrations found under {MIGRATIONS}")
    return head


def require_warehouse(url: str) -> str:
    """The schema revision of the desk warehouse at ``url``, which must exist; creates nothing.

    A read must not leave an empty warehouse behind: a SQLite file that does not exist is not
    opened (connecting would create it), and nothing is migrated.

    Raises:
        NoWarehouseError: no SQLite file at the path, or a database without the desk's schema.
        WarehouseUnreachableError: the database does not answer; the message has the
            driver's first line and the URL without its password.
    """
    shown = sa.make_url(url).render_as_string(hide_password=True)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise NoWarehouseError(f"no warehouse at {url.removeprefix('sqlite:///')}")
    engine = sa.create_engine(url, connect_args=connect_args(url))
    try:
        with engine.connect() as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
    except sa.exc.DBAPIError as err:
        reason = driver_line(err)
        raise WarehouseUnreachableError(f"the warehouse {shown} does not answer: {reason}") from err
    finally:
        engine.dispose()
    if revision is None:
        raise NoWarehouseError(f"no desk warehouse in {shown} (the database has no desk tables)")
    return revision


def _pending_revisions(current: str | None) -> list[str]:
    """Revisions between ``current`` and the head, oldest first.

    Raises:
        WarehouseError: ``current`` is not a revision of this code (a newer desk migrated the
            warehouse); running older code against it would corrupt it.
    """
    script = ScriptDirectory.from_config(_alembic_config())
    if current is not None and current not in {s.revision for s in script.walk_revisions()}:
        raise WarehouseError(
            f"the warehouse schema is at revision {current}, which this desk does not know "
            f"(its latest is {schema_head()}); upgrade desk_pipeline before using this warehouse"
        )
    return [s.revision for s in script.iterate_revisions("head", current)][::-1]


def _serialised(conn: sa.Connection, what: str) -> None:
    """Hold ``what``'s lock until ``conn``'s transaction ends.

    PostgreSQL: a transaction-scoped advisory lock keyed by ``what`` and the schema, released
    at commit or rollback (or when a killed process's connection drops). Writers that insert
    the same new keys (a migration's tables, the first batch of a source) queue on it instead
    of failing on a unique violation. SQLite needs nothing: every transaction starts with
    ``BEGIN IMMEDIATE``, which already admits one writer at a time.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:what || '.' || current_schema()))"),
            {"what": f"desk_pipeline.{what}"},
        )
