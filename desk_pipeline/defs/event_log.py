"""Dagster's event log storages, keeping their connections open between events.

Every Dagster event (a step starting, an asset materialised, a check evaluated) is one write to
the event log, and a run writes dozens: a 10-minute tick about 40, a backfill run of 31 days
several hundred. Dagster's SQLite and PostgreSQL event logs open a new connection for each
write (``NullPool``): SQLite also builds a new engine and commits with an fsync (WAL,
``synchronous=FULL``), about 20 ms per event on the desk's 2-core machine; PostgreSQL starts a
new server backend per event. These subclasses keep one pooled connection per database (per
run shard on SQLite) and, on SQLite, commit as the warehouse does (WAL, ``synchronous=NORMAL``:
a commit survives the process being killed, the last commits before a power loss may be lost,
which costs run history, never a trade). Everything else is Dagster's own storage.

Configured in ``desk_pipeline/instance/dagster-sqlite.yaml``; the PostgreSQL one is in
``event_log_postgres.py`` (``dagster-postgres.yaml``), so that a SQLite desk does not import
dagster-postgres (about 0.3 s per process).
"""

import collections
import os
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Self

import sqlalchemy as sa
from dagster import Field, StringSource
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.base import EventHandlerFn
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorageWatchdog,
)
from dagster._serdes import ConfigurableClassData
from watchdog.events import FileSystemEvent
from watchdog.observers import Observer

# Run shards whose engine a process keeps: a run writes to its own shard and to the index, and
# a daemon or webserver touching many runs must not keep a file open for each.
OPEN_SHARDS = 8
# Seconds after which a pooled connection is replaced, so that a server-side idle timeout
# never hands a run a dead connection (PostgreSQL's is also pinged before each use).
POOL_RECYCLE_S = 3600


# Every pooled engine of the desk's event logs, so that a forked child starts with empty pools.
_ENGINES: "weakref.WeakSet[sa.Engine]" = weakref.WeakSet()


def _forget_parent_connections() -> None:
    """In a forked child: give every pooled engine a new, empty pool (SQLAlchemy's recipe).

    ``dispose(close=False)`` drops the parent's connections without closing them, which would
    end the parent's sessions; an event hook at checkout comes too late, as a pre-ping would
    already have used the parent's socket.
    """
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parent_connections)


def fork_safe(engine: sa.Engine) -> sa.Engine:
    """``engine``, registered so that a forked run worker never shares its sockets or files."""
    _ENGINES.add(engine)
    return engine


class _RunLogWatchdog(SqliteEventLogStorageWatchdog):
    """Dagster's watcher of a run's log (the UI's live run page), woken by its WAL file too.

    Dagster's watcher waits for ``<run>.db`` to change, which its storage caused by closing the
    connection after each event (the last close checkpoints the write-ahead log into the file).
    With the connection kept open, events are committed to ``<run>.db-wal`` and reach the file
    only at a checkpoint: the live log stood still until the page was reloaded.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._patterns = [self._log_path, f"{self._log_path}-wal"]

    def on_modified(self, event: FileSystemEvent) -> None:
        """Read the run's new events, whichever of its two files changed."""
        self._process_log()


class DeskSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log under ``<dagster_home>/history/runs/``, connections reused.

    The same files as Dagster's default SQLite storage, so an instance keeps its history when
    it switches to this class. Config: ``dagster_home`` (the instance's directory, usually
    ``env: DAGSTER_HOME``).
    """

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None):
        self._engines: collections.OrderedDict[str, sa.Engine] = collections.OrderedDict()
        super().__init__(os.path.join(dagster_home, "history", "runs"), inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        """``dagster_home``: the instance's directory."""
        return {"dagster_home": Field(StringSource)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> Self:
        """The storage the instance's YAML describes."""
        return cls(config_value["dagster_home"], inst_data)

    def _engine_for(self, shard: str) -> sa.Engine:
        """The shard's pooled engine, created on first use; called under ``self._db_lock``.

        The least recently used engine beyond OPEN_SHARDS is closed.
        """
        engine = self._engines.get(shard)
        if engine is None:
            engine = fork_safe(
                sa.create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=sa.pool.QueuePool,
                    pool_size=1,
                    pool_recycle=POOL_RECYCLE_S,
                    connect_args={"timeout": 15},
                )
            )
            sa.event.listen(
                engine, "connect", lambda conn, _: conn.execute("PRAGMA synchronous=NORMAL")
            )
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            self._engines[shard] = engine
            if len(self._engines) > OPEN_SHARDS:
                self._engines.popitem(last=False)[1].dispose()
        self._engines.move_to_end(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        # Dagster's lock: the event watcher's threads share the storage.
        with self._db_lock, self._engine_for(shard).connect() as conn, conn.begin():
            yield conn

    def _close_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def watch(self, run_id: str, cursor: str | None, callback: EventHandlerFn) -> None:
        """Dagster's watch, with :class:`_RunLogWatchdog`."""
        observer = self._obs
        if observer is None:
            observer = Observer()
            observer.start()
            # Dagster annotates the attribute as None (it is set lazily, here too).
            self._obs = observer  # type: ignore[assignment]
        watchdog = _RunLogWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (
            watchdog,
            observer.schedule(watchdog, self._base_dir, recursive=True),
        )

    def wipe(self) -> None:
        """Dagster's wipe, after closing the connections to the files it deletes."""
        self._close_engines()
        super().wipe()

    def dispose(self) -> None:
        """Dagster's dispose, and the pooled connections closed."""
        super().dispose()
        self._close_engines()
