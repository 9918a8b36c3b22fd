"""A warehouse failure is told by its operation and the driver's first line, never its SQL.

SQLAlchemy's messages carry the statement and its parameters: the HTTP API sent them to its
clients in 503 bodies, and `desk` printed them. A dropped or refused connection is "does not
answer" (exit 2, as at start-up); a PostgreSQL host that accepts connections and never answers
fails after the connect timeout instead of holding the command forever.
"""

import contextlib
import socket
import sys
from collections.abc import Iterator

import dagster as dg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from desk_pipeline.adapters import configuration
from desk_pipeline.adapters.warehouse import (
    PositionRepository,
    WarehouseError,
    WarehouseUnreachableError,
    require_warehouse,
)
from desk_pipeline.api import create_app
from desk_pipeline.cli import main
from desk_pipeline.defs.settings import DeskSettings


def test_a_failed_statement_names_the_operation_and_the_drivers_line_not_the_sql(warehouse_url):
    repo = PositionRepository(warehouse_url)
    with pytest.raises(WarehouseError) as failed, repo._transaction("probe") as conn:
        conn.execute(
            sa.text("SELECT secret_column FROM no_such_table WHERE book_id = :b"), {"b": 1}
        )
    message = str(failed.value)
    assert message.startswith("probe: ") and "no_such_table" in message
    assert "SELECT" not in message and "[SQL" not in message and "sqlalche.me" not in message
    assert not isinstance(failed.value, WarehouseUnreachableError)  # a retry would not cure it
    repo.engine.dispose()


@pytest.mark.postgres
def test_a_connection_dropped_mid_operation_is_a_warehouse_that_does_not_answer(pg_url):
    repo = PositionRepository(pg_url)
    with pytest.raises(WarehouseUnreachableError) as dropped, repo._transaction("probe") as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
    message = str(dropped.value)
    assert message.startswith("probe: the warehouse does not answer: "), message
    assert "SELECT" not in message and "[SQL" not in message
    repo.engine.dispose()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers; its number."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.postgres
def test_a_postgres_host_that_never_answers_fails_after_the_connect_timeout(monkeypatch):
    monkeypatch.setattr(configuration, "CONNECT_TIMEOUT_SECONDS", 1)
    with silent_server() as port:
        url = f"postgresql+psycopg://desk:secret@127.0.0.1:{port}/desk"
        with pytest.raises(WarehouseUnreachableError, match="does not answer"):
            require_warehouse(url)
        settings = DeskSettings(warehouse_url=url, start_date="2026-03-01", timezone="UTC")
        app = create_app(settings, token=None, instance=dg.DagsterInstance.ephemeral())
        with TestClient(app) as client:
            response = client.get("/books/REPO-1/days")
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "the warehouse does not answer" in detail or "not reachable" in detail, detail
    assert "SELECT" not in detail and "secret" not in detail


@pytest.mark.postgres
def test_desk_gives_up_on_a_silent_warehouse_with_one_line_and_exit_2(
    monkeypatch, capsys, tmp_path
):
    # It waited forever (attack: `timeout 60 desk positions ...` ended 124, nothing printed).
    monkeypatch.setattr(configuration, "CONNECT_TIMEOUT_SECONDS", 1)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with silent_server() as port:
        url = f"postgresql+psycopg://desk:secret@127.0.0.1:{port}/desk"
        monkeypatch.setenv("DESK_WAREHOUSE_URL", url)
        command = ["desk", "positions", "--book", "B", "--date", "2026-03-02"]
        monkeypatch.setattr(sys, "argv", command)
        with pytest.raises(SystemExit) as exited:
            main()
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("desk: DESK_WAREHOUSE_URL=postgresql+psycopg://desk:***@"), line
    assert "timeout expired" in line and "secret" not in line
