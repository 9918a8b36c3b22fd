"""The HTTP API through FastAPI's TestClient over a real SQLite warehouse and Dagster instance.

Two business days of a small landing desk are computed once through the daily job (the same
definitions the API's commands run); every route, error and command is checked against the
documents of `desk_pipeline.queries` (what `desk … --json` prints) and the Dagster instance.
"""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from desk_pipeline import commands, queries
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.api import create_app
from desk_pipeline.defs.partitions import desk_partitions
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.domain.errors import InvalidRangeError
from desk_pipeline_tests.builders import at, trade, write_landing_file

# One worker runs the module: its tests share one computed desk.

D1, D2 = "2026-03-02", "2026-03-03"
TOKEN = "test-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINAL = {"SUCCESS", "FAILURE", "CANCELED"}
INSTRUMENTS = """\
instrument_id,name,asset_class,issuer_type,issuer,rating,maturity_date,currency
DE-BUND-7Y,Bund 2033,government_bond,sovereign,Germany,AAA,2033-02-15,EUR
DE-BUND-2Y,Bund 2028,government_bond,sovereign,Germany,AAA,2028-03-01,EUR
IT-BTP-2Y,BTP 2028,government_bond,sovereign,Italy,BBB,2028-01-01,EUR
"""
PRICES = """\
instrument_id,price_date,price
DE-BUND-7Y,2026-03-03,0.98
DE-BUND-2Y,2026-03-03,1.00
IT-BTP-2Y,2026-03-03,1.01
"""


def landing(folder: Path) -> None:
    good = [
        trade("R-1", 1_000_000, 0.97, book="REPO-1", instrument="DE-BUND-7Y", at=at(D1, "09:00")),
        trade("R-2", -400_000, 0.98, book="REPO-1", instrument="DE-BUND-7Y", at=at(D2, "10:00")),
        trade("R-3", 500_000, 1.00, book="REPO-1", instrument="DE-BUND-2Y", at=at(D2, "11:00")),
        trade("R-4", 250_000, 1.01, book="REPO-1", instrument="IT-BTP-2Y", at=at(D2, "12:00")),
        trade("S-1", 300_000, 1.00, book="SECLEND-1", instrument="IT-BTP-2Y", at=at(D1, "14:00")),
    ]
    bad = [dict(good[0], trade_id=f"BAD-{i}", quantity="lots") for i in range(3)]
    write_landing_file(folder, "trades.csv", [*good, *bad])
    (folder / "instruments.csv").write_text(INSTRUMENTS, encoding="utf-8")
    (folder / "prices.csv").write_text(PRICES, encoding="utf-8")


def desk_settings(tmp: Path) -> DeskSettings:
    folder = tmp / "landing"
    landing(folder)
    return DeskSettings(
        warehouse_url=f"sqlite:///{tmp}/warehouse.db",
        trade_source=f"landing:{folder}",
        timezone="UTC",
        start_date="2026-03-01",
        event_publisher="log",
        haircut_schedule="",
    )


def compute_days(desk: DeskSettings, instance: dg.DagsterInstance, days: list[str]) -> None:
    definitions = commands.definitions_for(desk)
    for day in days:
        assert commands.RunSpec("daily_job", day).execute(definitions, instance).success


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="module")
def desk(tmp_path_factory, instance) -> DeskSettings:
    desk = desk_settings(tmp_path_factory.mktemp("api"))
    compute_days(desk, instance, [D1, D2])
    return desk


@pytest.fixture(scope="module")
def repo(desk) -> PositionRepository:
    return PositionRepository(desk.warehouse_url)


@pytest.fixture(scope="module")
def client(desk, instance) -> Iterator[TestClient]:
    with TestClient(create_app(desk, token=TOKEN, instance=instance)) as client:
        yield client


def finished(client: TestClient, run_id: str, seconds: float = 300) -> dict:
    """Poll GET /runs/{run_id} until the run ends; fail at the deadline."""
    deadline = time.monotonic() + seconds
    state: dict = {}
    while time.monotonic() < deadline:
        response = client.get(f"/runs/{run_id}")
        assert response.status_code == 200, response.text
        state = response.json()
        if state["status"] in FINAL:
            return state
        time.sleep(0.2)
    pytest.fail(f"run {run_id} did not end in {seconds}s (last: {state})")


def date_error(value: str) -> str:
    """What `desk positions --date VALUE` says, with the API's parameter name."""
    with pytest.raises(InvalidRangeError) as refused:
        queries.business_day(value, "date")
    return str(refused.value)


def assert_problem(response, status: int, detail: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["instance"] == response.request.url.path
    assert body["detail"] == detail
    return body


def test_eod_over_http_is_the_desk_positions_document(client, repo):
    response = client.get(f"/books/REPO-1/eod/{D2}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document == queries.positions_document(repo, "REPO-1", D2)
    assert document["as_of"] == "2026-03-04T00:00:00+00:00"
    held = {p["instrument_id"]: p for p in document["positions"]}
    assert held["DE-BUND-7Y"]["quantity"] == 600_000.0
    assert held["DE-BUND-7Y"]["avg_price"] == pytest.approx(0.97)
    assert held["DE-BUND-7Y"]["realized_pnl"] == pytest.approx(4_000.0)
    assert sorted(held) == ["DE-BUND-2Y", "DE-BUND-7Y", "IT-BTP-2Y"]


def test_eod_with_marks_is_the_desk_positions_marks_document(client, repo):
    document = client.get(f"/books/REPO-1/eod/{D2}", params={"marks": "true"}).json()
    assert document == queries.positions_document(repo, "REPO-1", D2, marks=True)
    bund = next(p for p in document["positions"] if p["instrument_id"] == "DE-BUND-7Y")
    assert bund["price"] == 0.98
    assert bund["market_value"] == pytest.approx(588_000.0)
    assert bund["unrealized_pnl"] == pytest.approx(6_000.0)


def test_ranking_and_concentration_are_the_cli_documents(client, repo, desk):
    ranking = client.get(f"/books/REPO-1/ranking/{D2}").json()
    assert ranking == queries.ranking_document(repo, "REPO-1", D2)
    assert [i["instrument_id"] for i in ranking["items"]] == [
        "DE-BUND-7Y",
        "DE-BUND-2Y",
        "IT-BTP-2Y",
    ]
    assert [i["rank"] for i in ranking["items"]] == [1, 2, 3]
    concentration = client.get(f"/books/REPO-1/concentration/{D2}").json()
    limit = desk.issuer_concentration_limit
    assert concentration == queries.concentration_document(repo, "REPO-1", D2, limit)
    shares = {i["issuer"]: i for i in concentration["issuers"]}
    assert set(shares) == {"Germany", "Italy"}
    assert shares["Germany"]["over_limit"] is True
    assert sum(i["share"] for i in shares.values()) == pytest.approx(1.0)


def test_status_is_the_desk_status_document(client, repo):
    document = client.get("/status").json()
    assert document == queries.status_document(repo)
    assert {b["book_id"]: b["latest_eod"] for b in document["books"]} == {
        "REPO-1": D2,
        "SECLEND-1": D2,
    }
    assert document["quarantined_total"] == 3


def test_books_and_days_list_the_stored_eods(client):
    assert client.get("/books").json() == {
        "books": [
            {"book_id": "REPO-1", "days": 2, "first_eod": D1, "latest_eod": D2},
            {"book_id": "SECLEND-1", "days": 2, "first_eod": D1, "latest_eod": D2},
        ]
    }
    days = client.get("/books/REPO-1/days").json()
    assert days == {
        "book_id": "REPO-1",
        "days": [
            {"business_date": D1, "as_of": "2026-03-03T00:00:00+00:00", "stale": False},
            {"business_date": D2, "as_of": "2026-03-04T00:00:00+00:00", "stale": False},
        ],
    }


def test_quarantine_is_served_a_page_at_a_time(client, repo):
    everything = queries.quarantine_document(repo)
    assert [r["trade_id"] for r in everything] == ["BAD-0", "BAD-1", "BAD-2"]
    first = client.get("/quarantine", params={"limit": 2}).json()
    assert first == {"total": 3, "offset": 0, "limit": 2, "items": everything[:2]}
    rest = client.get("/quarantine", params={"offset": 2, "limit": 2}).json()
    assert rest == {"total": 3, "offset": 2, "limit": 2, "items": everything[2:]}
    assert client.get("/quarantine").json()["items"] == everything


def test_unknown_book_or_day_is_a_404_problem_with_the_cli_message(client):
    # The detail says what is stored instead: an unknown book (with the stored id it most
    # likely meant), or the book's stored days.
    assert_problem(
        client.get(f"/books/NOPE/eod/{D2}"),
        404,
        f"no end-of-day positions for book NOPE on {D2}: no day of book NOPE is stored",
    )
    assert_problem(
        client.get(f"/books/repo-1/eod/{D2}"),
        404,
        f"no end-of-day positions for book repo-1 on {D2}: no day of book repo-1 is stored "
        "(did you mean REPO-1?)",
    )
    assert_problem(
        client.get("/books/REPO-1/eod/2026-03-09"),
        404,
        f"no end-of-day positions for book REPO-1 on 2026-03-09: its latest stored day is {D2}",
    )
    assert_problem(
        client.get("/books/REPO-1/eod/2026-02-27"),
        404,
        f"no end-of-day positions for book REPO-1 on 2026-02-27: its first stored day is {D1}",
    )
    assert_problem(
        client.get("/books/REPO-1/ranking/2026-03-09"),
        404,
        f"no collateral ranking for book REPO-1 on 2026-03-09: its latest stored day is {D2}",
    )
    assert_problem(
        client.get(f"/books/NOPE/concentration/{D2}"),
        404,
        f"no collateral ranking for book NOPE on {D2}: no day of book NOPE is stored",
    )
    assert_problem(
        client.get("/books/NOPE/days"), 404, "no end-of-day positions for book NOPE on any day"
    )
    assert_problem(
        client.get("/runs/no-such-run"), 404, "no run no-such-run on the Dagster instance"
    )
    assert_problem(client.get("/no/such/route"), 404, "Not Found")
    assert_problem(client.delete("/books"), 405, "Method Not Allowed")


def book_error(value: str) -> str:
    """What `desk positions --book VALUE` says, with the API's parameter name."""
    with pytest.raises(InvalidRangeError) as refused:
        queries.book_id(value, "book")
    return str(refused.value)


def book_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every route with a ``{book}``: (method, path template with the day filled in)."""
    return [
        (method.upper(), path.replace("{date}", D2))
        for path, operations in client.app.openapi()["paths"].items()
        if "{book}" in path
        for method in operations
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_client(request, client, instance, tmp_path) -> Iterator[TestClient]:
    """The module's client (SQLite), or one over a PostgreSQL warehouse of its own."""
    if request.param == "sqlite":
        yield client
        return
    desk = desk_settings(tmp_path).model_copy(
        update={"warehouse_url": request.getfixturevalue("pg_url")}
    )
    with TestClient(create_app(desk, token=TOKEN, instance=instance)) as pg_client:
        yield pg_client


def test_a_book_id_ingest_would_refuse_is_a_422_problem_on_every_route(any_client):
    # PostgreSQL refuses NUL in a query: GET /books/A%00B/days was a 503 with the SQL in it.
    routes = book_routes(any_client)
    assert len(routes) >= 5
    for method, path in routes:
        for book, asked in [
            ("A%00B", "A\x00B"),
            ("R%0B", "R\x0b"),
            ("x" * 65, "x" * 65),
            # Shown as BOOK1 on every screen: a zero-width space, a right-to-left override.
            ("BOOK%E2%80%8B1", "BOOK\u200b1"),
            ("%E2%80%AE1KOOB", "\u202e1KOOB"),
            # A line separator (breaks one-line reports), a no-break space, a variation selector.
            ("BOOK%E2%80%A81", "BOOK\u20281"),
            ("BOOK%C2%A01", "BOOK\u00a01"),
            ("BOOK%EF%B8%8F1", "BOOK\ufe0f1"),
        ]:
            response = any_client.request(method, path.replace("{book}", book), headers=AUTH)
            assert_problem(response, 422, book_error(asked))
    # The warehouse is read for a book id it could hold.
    assert any_client.get("/books/NOPE/days").status_code == 404


def test_a_bad_date_or_parameter_is_a_422_problem(client):
    for route in ("eod", "ranking", "concentration"):
        assert_problem(client.get(f"/books/REPO-1/{route}/not-a-day"), 422, date_error("not-a-day"))
    body = assert_problem(
        client.get("/quarantine", params={"limit": 0}),
        422,
        "query.limit: Input should be greater than or equal to 1",
    )
    assert body["errors"][0]["loc"] == ["query", "limit"]
    assert_problem(
        client.get(f"/books/REPO-1/eod/{D2}", params={"marks": "perhaps"}),
        422,
        "query.marks: Input should be a valid boolean, unable to interpret input",
    )
    ranking = client.post("/books/REPO-1/rankings/31.02.2026", headers=AUTH)
    assert_problem(ranking, 422, date_error("31.02.2026"))


def utc_today() -> str:
    return pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")


def after_today(client: TestClient, day: str, method: str, path: str, **kwargs) -> None:
    """``method path`` is the 422 of a ``day`` after today (UTC), naming today as desk saw it."""
    before = utc_today()  # midnight may pass during the request
    response = client.request(method, path, **kwargs)
    details = {
        f"day {day} is after today: the desk's last business day is today, {today} in "
        f"DESK_TIMEZONE=UTC; pick days up to {today}"
        for today in (before, utc_today())
    }
    assert response.status_code == 422, response.text
    assert response.json()["detail"] in details
    assert_problem(response, 422, response.json()["detail"])


def test_a_day_after_today_is_a_422_problem_as_the_cli_says_it(client, instance):
    # The day is a bad one (`desk positions` exits 2), not one with nothing stored (404).
    runs = instance.get_runs_count()
    for route in ("eod", "ranking", "concentration"):
        after_today(client, "2199-12-31", "GET", f"/books/REPO-1/{route}/2199-12-31")
    after_today(client, "2199-12-31", "POST", "/books/REPO-1/rankings/2199-12-31", headers=AUTH)
    assert instance.get_runs_count() == runs


def test_a_ranking_request_for_a_day_before_desk_start_date_is_a_422_but_the_day_is_read(
    desk, instance
):
    # D1 is stored, by a desk whose calendar started earlier: it is read, but no run can rank
    # it (there is no daily partition before DESK_START_DATE).
    runs = instance.get_runs_count()
    later = desk.model_copy(update={"start_date": D2})
    with TestClient(create_app(later, token=TOKEN, instance=instance)) as late_start:
        assert_problem(
            late_start.post(f"/books/REPO-1/rankings/{D1}", headers=AUTH),
            422,
            f"day {D1} is before DESK_START_DATE={D2}, the desk's first business day: set "
            f"DESK_START_DATE to {D1} or earlier",
        )
        assert late_start.get(f"/books/REPO-1/eod/{D1}").status_code == 200
        assert late_start.get(f"/books/REPO-1/ranking/{D1}").status_code == 200
    assert instance.get_runs_count() == runs


def test_a_snapshot_request_while_no_window_has_closed_is_a_422_as_desk_tick_says_it(
    desk, instance
):
    # DESK_START_DATE in the future: the calendar has no closed 10-minute window to snapshot.
    runs = instance.get_runs_count()
    later = desk.model_copy(update={"start_date": "2199-01-01"})
    with TestClient(create_app(later, token=TOKEN, instance=instance)) as not_started:
        assert_problem(
            not_started.post("/books/REPO-1/snapshots", headers=AUTH),
            422,
            "no 10-minute window has closed since DESK_START_DATE=2199-01-01 (00:00 in "
            "DESK_TIMEZONE=UTC); set DESK_START_DATE earlier",
        )
    assert instance.get_runs_count() == runs


def test_commands_need_the_bearer_token(client):
    for post in (f"/books/REPO-1/rankings/{D2}", "/books/REPO-1/snapshots"):
        missing = assert_problem(
            client.post(post),
            401,
            "a bearer token is required: Authorization: Bearer <DESK_API_TOKEN>",
        )
        assert missing["instance"] == post
        assert client.post(post).headers["www-authenticate"] == "Bearer"
        assert_problem(
            client.post(post, headers={"Authorization": f"Basic {TOKEN}"}),
            401,
            "a bearer token is required: Authorization: Bearer <DESK_API_TOKEN>",
        )
        assert_problem(
            client.post(post, headers={"Authorization": "Bearer wrong"}),
            403,
            "the bearer token is not the server's DESK_API_TOKEN",
        )


def test_commands_are_refused_while_the_server_has_no_token(desk, instance):
    runs = instance.get_runs_count()
    with TestClient(create_app(desk, token=None, instance=instance)) as tokenless:
        assert_problem(
            tokenless.post(f"/books/REPO-1/rankings/{D2}", headers=AUTH),
            503,
            "commands are disabled: set DESK_API_TOKEN and restart `desk serve`",
        )
        assert tokenless.get(f"/books/REPO-1/eod/{D2}").status_code == 200  # reads stay open
    assert instance.get_runs_count() == runs


def test_a_command_for_an_unknown_book_or_day_is_a_404_problem(client):
    assert_problem(
        client.post("/books/NOPE/snapshots", headers=AUTH),
        404,
        "no end-of-day positions for book NOPE on any day",
    )
    assert_problem(
        client.post("/books/REPO-1/rankings/2026-03-09", headers=AUTH),
        404,
        f"no end-of-day positions for book REPO-1 on 2026-03-09: its latest stored day is {D2}",
    )


def test_a_ranking_request_runs_through_dagster_and_is_idempotent_while_in_flight(
    client, instance, repo
):
    before = queries.ranking_document(repo, "REPO-1", D2)
    # Hold the worker so the request is certainly in flight when it is repeated.
    gate = threading.Event()
    client.app.state.runs._worker.submit(gate.wait)
    first = client.post(f"/books/REPO-1/rankings/{D2}", headers=AUTH)
    again = client.post(f"/books/REPO-1/rankings/{D2}", headers=AUTH)
    assert first.status_code == again.status_code == 202
    run_id = first.json()["run_id"]
    assert first.json() == {
        "run_id": run_id,
        "runs": [run_id],
        "request": f"POST /books/REPO-1/rankings/{D2}",
        "duplicate": False,
        "status_url": f"/runs/{run_id}",
    }
    assert first.headers["location"] == f"/runs/{run_id}"
    assert again.json() == {**first.json(), "duplicate": True}
    waiting = client.get(f"/runs/{run_id}").json()
    assert (waiting["status"], waiting["job"], waiting["partition"]) == ("QUEUED", "daily_job", D2)
    gate.set()

    done = finished(client, run_id)
    assert done["status"] == "SUCCESS"
    assert done["start_time"] < done["end_time"]
    run = instance.get_run_by_id(run_id)
    assert run is not None and run.job_name == "daily_job"
    assert run.tags["dagster/partition"] == D2
    assert run.tags[commands.REQUEST_TAG] == f"POST /books/REPO-1/rankings/{D2}"
    assert run.tags[commands.TRIGGER_TAG] == f"desk serve: POST /books/REPO-1/rankings/{D2}"
    assert run.tags[commands.BOOK_TAG] == "REPO-1"
    materialised = instance.get_latest_materialization_event(dg.AssetKey("collateral_ranking"))
    assert materialised is not None and materialised.run_id == run_id
    # Re-ranking a stored day changes nothing; a new request after the run is a new run.
    assert queries.ranking_document(repo, "REPO-1", D2) == before
    later = client.post(f"/books/REPO-1/rankings/{D2}", headers=AUTH).json()
    assert later["run_id"] != run_id and later["duplicate"] is False
    assert finished(client, later["run_id"])["status"] == "SUCCESS"


def test_a_snapshot_request_snapshots_the_latest_window_then_refreshes_its_day(tmp_path):
    with dg.instance_for_test() as instance:
        desk = desk_settings(tmp_path)
        compute_days(desk, instance, [D1, D2])
        with TestClient(create_app(desk, token=TOKEN, instance=instance)) as client:
            window = desk_partitions(desk).intraday.get_last_partition_key()
            accepted = client.post("/books/REPO-1/snapshots", headers=AUTH)
            assert accepted.status_code == 202, accepted.text
            body = accepted.json()
            snapshot, refresh = body["runs"]
            assert body["run_id"] == refresh
            assert finished(client, refresh)["status"] == "SUCCESS"
            first = client.get(f"/runs/{snapshot}").json()
            last = client.get(f"/runs/{refresh}").json()
        # The window may have moved on between the test's look and the server's.
        assert first["job"] == "intraday_job" and first["partition"] >= window
        assert (first["status"], last["job"]) == ("SUCCESS", "daily_job")
        day = last["partition"]
        assert first["partition"].startswith(day)
        assert body["request"] == f"POST /books/REPO-1/snapshots window {first['partition']}"
        assert first["end_time"] <= last["start_time"]
        repo = PositionRepository(desk.warehouse_url)
        intraday = desk_partitions(desk).intraday
        window_end = intraday.time_window_for_partition_key(first["partition"]).end
        assert repo.opening(pd.Timestamp(window_end)).positions["book_id"].nunique() == 2
        refreshed = queries.positions_document(repo, "REPO-1", day)
        assert pd.Timestamp(refreshed["as_of"]) >= pd.Timestamp(window_end)
        held = {p["instrument_id"]: p["quantity"] for p in refreshed["positions"]}
        assert held == {"DE-BUND-7Y": 600_000.0, "DE-BUND-2Y": 500_000.0, "IT-BTP-2Y": 250_000.0}


def test_a_failed_run_cancels_the_runs_queued_after_it_in_its_request(desk, instance):
    queue = commands.RunQueue(commands.definitions_for(desk), instance)
    accepted = queue.submit(
        "two runs", [commands.RunSpec("no_such_job", D2), commands.RunSpec("daily_job", D2)]
    )
    queue.shutdown()  # waits for the request
    failed, cancelled = (queue.status(run_id) for run_id in accepted.run_ids)
    assert failed is not None and failed["status"] == "FAILURE"
    assert "could not start" in failed["reason"] and "no_such_job" in failed["reason"]
    assert cancelled is not None and cancelled["status"] == "CANCELED"
    assert cancelled["reason"] == f"run {accepted.run_ids[0]} failed first"
    assert all(instance.get_run_by_id(r) is None for r in accepted.run_ids)


def test_an_unreachable_warehouse_is_a_503_problem(instance, tmp_path):
    down = DeskSettings(
        warehouse_url="postgresql+psycopg://desk@127.0.0.1:9/desk",  # nothing listens on 9
        trade_source="simulator",
        timezone="UTC",
        start_date="2026-03-01",
        event_publisher="log",
        haircut_schedule="",
    )
    with TestClient(create_app(down, token=TOKEN, instance=instance)) as client:
        status = client.get("/status")
        assert status.status_code == 503 and "127.0.0.1" in status.json()["detail"]
        health = client.get("/health")
        assert health.status_code == 503
        assert [c["ok"] for c in health.json()["checks"]] == [False, False]
        assert "not reachable" in health.json()["detail"]


def test_health_reports_the_warehouse_checks(client):
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert [c["check"] for c in health["checks"]] == ["warehouse", "migrations"]
    assert all(c["ok"] for c in health["checks"])


def test_the_openapi_document_describes_every_route_and_the_token(client):
    document = client.get("/openapi.json").json()
    assert {(m.upper(), p) for p, ops in document["paths"].items() for m in ops} == {
        ("GET", "/health"),
        ("GET", "/status"),
        ("GET", "/books"),
        ("GET", "/books/{book}/days"),
        ("GET", "/books/{book}/eod/{date}"),
        ("GET", "/books/{book}/ranking/{date}"),
        ("GET", "/books/{book}/concentration/{date}"),
        ("GET", "/quarantine"),
        ("POST", "/books/{book}/snapshots"),
        ("POST", "/books/{book}/rankings/{date}"),
        ("GET", "/runs/{run_id}"),
    }
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, ops in document["paths"].items():
        for method, operation in ops.items():
            secured = operation.get("security") == [{"HTTPBearer": []}]
            assert secured == (method == "post"), (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"]


# The OpenAPI document does not depend on the warehouse, so it is read at collection from an app
# over none (schemathesis' lazy fixture loader does not run under pytest 9); the generated
# requests go to the module's app over the computed desk.
schema = schemathesis.openapi.from_dict(
    create_app(
        DeskSettings(warehouse_url="sqlite://", start_date="2026-03-01"),
        token=None,
        instance=dg.DagsterInstance.ephemeral(),
    ).openapi()
)


# CI-sized: 11 operations x up to 40 generated requests each. Every check but one: a date the
# document allows (format: date) in a year outside business_day's bounds is a 422 by design.
@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error_or_breaks_the_document(case, client):
    case.call_and_validate(headers=AUTH, app=client.app, excluded_checks=[positive_data_acceptance])
