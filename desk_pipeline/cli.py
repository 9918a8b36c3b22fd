"""The `desk` command: backfill; positions, rankings, concentration, quarantine; events."""

import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
import dagster as dg
import pandas as pd
from rich.console import RenderableType

from desk_pipeline import console, queries
from desk_pipeline.adapters import consumer as event_consumer
from desk_pipeline.adapters.configuration import unreachable_warehouse
from desk_pipeline.adapters.kafka import KafkaSettings, consume_kafka
from desk_pipeline.adapters.publisher import (
    Backoff,
    PublishError,
    amqp_url_from,
    publisher_from,
    relay_forever,
    relay_once,
)
from desk_pipeline.adapters.warehouse import (
    NoWarehouseError,
    PositionRepository,
    WarehouseError,
    WarehouseUnreachableError,
    require_warehouse,
)
from desk_pipeline.defs import runs as desk_runs
from desk_pipeline.defs.partitions import desk_partitions
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.domain.calendar import business_dates
from desk_pipeline.domain.errors import DeskPipelineError, InvalidRangeError, SettingsError
from desk_pipeline.progress import RunProgress

# What `desk` exits with; `desk --help` and the README list them.
EXIT_CODES = {
    0: "done",
    1: "no answer: nothing stored for that book and day, a check, run or relay failed",
    2: "usage or configuration: a bad option or date, a DESK_* setting, no warehouse there",
    130: "interrupted",
}

# Days per Dagster run in a backfill: bounds memory and gives the progress bar steps.
BACKFILL_CHUNK_DAYS = 31


def backfill_chunks(dates: list[str]) -> list[list[str]]:
    """The business days of a backfill cut into runs of at most BACKFILL_CHUNK_DAYS."""
    return [dates[i : i + BACKFILL_CHUNK_DAYS] for i in range(0, len(dates), BACKFILL_CHUNK_DAYS)]


def run_range(
    job: Any,
    instance: dg.DagsterInstance,
    days: list[str],
    *,
    trigger: str,
    tags: dict[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> str:
    """One single-run range backfill of ``job`` over ``days``, in-process; returns the run id.

    The run's tags name this process, so a later command can fail the run if it is killed.
    ``run_config`` chooses the run's loggers (`desk backfill` shows a progress bar instead).
    """
    result = job.execute_in_process(
        run_config=run_config,
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": days[0],
            "dagster/asset_partition_range_end": days[-1],
            "desk/trigger": trigger,
            **desk_runs.process_tags(),
            **(tags or {}),
        },
        raise_on_error=True,
    )
    return result.run_id


def _settings() -> DeskSettings:
    # Read when a command needs them, not at import: `main` may change the environment, and a
    # bad setting must not stop `desk doctor` (it is one line, exit 2, for the other commands).
    return DeskSettings.from_env()


def _definitions() -> dg.Definitions:
    """The code location's definitions for the environment's settings, as the UI loads them."""
    from desk_pipeline.definitions import build_definitions

    return build_definitions(_settings())


def _repository() -> PositionRepository:
    """The warehouse, migrated; one that cannot be opened is a DESK_WAREHOUSE_URL problem.

    Raises:
        SettingsError: the database does not answer, is no database, or has a schema this
            desk does not know; the line is the one `desk doctor` shows.
    """
    from desk_pipeline.defs.resources import WarehouseResource

    url = _settings().warehouse_url
    try:
        return WarehouseResource(url=url).repository()
    except WarehouseError as err:
        raise SettingsError([unreachable_warehouse(url, err)]) from err


def _reader() -> PositionRepository:
    """The warehouse of a command that only reads: it must exist, a read never creates one.

    Raises:
        NoWarehouseError: none at the configured URL; the message says where desk looked and
            how to point it elsewhere.
        SettingsError: the warehouse does not answer (the line `desk doctor` shows).
    """
    url = _settings().warehouse_url
    try:
        require_warehouse(url)
    except NoWarehouseError as err:
        raise NoWarehouseError(f"{err}; {_where_desk_looks()}") from err
    except WarehouseUnreachableError as err:
        raise SettingsError([unreachable_warehouse(url, err)]) from err
    return _repository()


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


def _log_level() -> str | None:
    """Dagster's run log on stderr: none by default, INFO with --verbose, DEBUG with --debug."""
    return click.get_current_context().find_root().obj["log_level"]


def _notice(line: str) -> None:
    """Tell the operator what the desk is doing for them, on stderr (stdout stays the answer)."""
    click.echo(f"desk: {line}", err=True)


def _emit(document: Any, as_json: bool, human: Callable[[], RenderableType]) -> None:
    """``document`` as JSON on stdout, or ``human()``: a table (console.py) or a sentence."""
    if as_json:
        click.echo(json.dumps(document, indent=2, allow_nan=False))
        return
    text = human()
    click.echo(text if isinstance(text, str) else console.render(text))


class _IsoDate(click.ParamType):
    """A calendar date written YYYY-MM-DD (queries.business_day); anything else is a usage error."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return queries.business_day(str(value), "")
        except InvalidRangeError as err:
            self.fail(str(err).strip(), param, ctx)


ISO_DATE = _IsoDate()

# Options of the whole command that users also type after a subcommand.
_ANYWHERE = ("-v", "--verbose", "--debug")


class _Desk(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `desk backfill … --verbose` means `desk --verbose backfill …`.
        ordered = [a for a in args if a in _ANYWHERE] + [a for a in args if a not in _ANYWHERE]
        return super().parse_args(ctx, ordered)


@click.group(
    cls=_Desk,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="\b\nExit codes:\n"
    + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()),
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Details on stderr: Dagster's run log and warnings."
)
@click.option("--debug", is_flag=True, help="On an error, the traceback; Dagster's debug log.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """Securities-financing desk pipeline: positions, end-of-day snapshots, collateral ranking."""
    ctx.obj = {"log_level": "DEBUG" if debug else "INFO" if verbose else None}
    if not (verbose or debug):
        # Dagster's beta and supersession notices are for the desk's developers.
        warnings.simplefilter("ignore")
    # Runs left by a killed desk process hold pool slots that would block every later run:
    # any command fails them first (doctor only reports them unless told to --repair).
    if ctx.invoked_subcommand != "doctor" and desk_runs.instance_exists():
        for repair in desk_runs.repair_orphaned_runs(desk_runs.desk_instance()):
            _notice(f"repaired {repair.describe()}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def migrate(as_json: bool) -> None:
    """Bring the warehouse schema to the latest revision; safe to run from several shells.

    Deployments run it before starting the desk. Other commands migrate a warehouse that is
    behind too, under the same lock; a current schema is only read.
    """
    from desk_pipeline.adapters.warehouse import schema_head

    repository = _repository()
    applied = repository.applied
    document = {"revision": repository.schema_revision(), "applied": applied}
    done = f"applied {', '.join(applied)}" if applied else "nothing to apply"
    _emit(document, as_json, lambda: f"warehouse schema at {schema_head()} ({done})")


@cli.command()
@click.option("--start", required=True, type=ISO_DATE, help="First business day.")
@click.option("--end", required=True, type=ISO_DATE, help="Last business day (inclusive).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def backfill(start: str, end: str, as_json: bool) -> None:
    """Bring the warehouse up to date for business days START..END.

    Ingests the configured source, computes positions, end-of-day snapshots, their valuation
    and collateral rankings through the Dagster definitions (visible in the UI afterwards), then
    relays events. Stored days that trades arriving now make stale are restated in the same
    runs, whatever the range.
    Idempotent: running it again changes nothing.
    """
    settings = _settings()
    defs = _definitions()
    daily = desk_partitions(settings).daily

    first, last = queries.business_day(start, "--start"), queries.business_day(end, "--end")
    # Days made stale by late trades, before or after the range, are restated by the runs
    # themselves (defs/end_of_day.py), whichever run ingests the late trade.
    dates = business_dates(first, last)
    known = set(daily.get_partition_keys())
    outside = [d for d in dates if d not in known]
    if outside:
        raise InvalidRangeError(
            f"days {outside[0]}..{outside[-1]} are outside the desk calendar "
            f"({settings.start_date} to today); set DESK_START_DATE earlier or pick other days"
        )
    # Connects (and migrates): an unusable warehouse fails here, before any run starts.
    _repository()
    instance = desk_runs.desk_instance()
    progress = RunProgress(
        defs.resolve_job_def("daily_job"), backfill_chunks(dates), log_level=_log_level()
    )
    with (
        desk_runs.backfill_claim(instance, dates[0], dates[-1], on_wait=_notice) as claim,
        desk_runs.watching_orphans(instance),
        progress.shown(),
    ):
        tags = {desk_runs.BACKFILL_TAG: claim}
        runs = [
            run_range(
                progress.job,
                instance,
                list(chunk),
                trigger="desk backfill",
                tags=tags,
                run_config=progress.run_config,
            )
            for chunk in progress.each_chunk()
        ]
    relay = relay_once(_repository(), publisher_from(_settings().event_publisher))
    document = {
        "start": dates[0],
        "end": dates[-1],
        "days": len(dates),
        "runs": runs,
        "events_published": relay.published,
        "events_pending": relay.backlog,
    }
    _emit(
        document,
        as_json,
        lambda: (
            f"backfilled {len(dates)} days, {dates[0]}..{dates[-1]}, in {len(runs)} run(s); "
            f"events published {relay.published}, waiting {relay.backlog}"
        ),
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def tick(as_json: bool) -> None:
    """Snapshot every book as of the 10-minute window that just closed, as the schedule does.

    Runs intraday_job for that window in-process (the run shows in the UI); the daemon's EOD
    refresh then follows. For a desk run without the daemon, and `make run`, whose demo starts
    with fresh 10-minute snapshots instead of failing its freshness policy until the first tick.
    """
    defs = _definitions()
    _repository()  # an unusable warehouse fails here, before the run
    window = desk_partitions(_settings()).intraday.get_last_partition_key()
    run = defs.resolve_job_def("intraday_job").execute_in_process(
        instance=desk_runs.desk_instance(),
        partition_key=window,
        tags={"desk/trigger": "desk tick", **desk_runs.process_tags()},
        # Dagster's console log only on request, as for `desk backfill`.
        run_config={"loggers": {"console": {"config": {"log_level": _log_level() or "CRITICAL"}}}},
        raise_on_error=True,
    )
    document = {"window": window, "run_id": run.run_id}
    _emit(document, as_json, lambda: f"snapshot of the 10-minute window {window}, run {run.run_id}")


@cli.command()
@click.option("--book", default=None, help="List this book's stored days instead.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def books(book: str | None, as_json: bool) -> None:
    """The books with stored end-of-day positions, and their days: what the other commands show.

    Without --book: each book's number of days, first and latest day. With --book: each stored
    day of that book, its snapshot's as-of and whether it awaits restatement; exits 1 when the
    book has none.
    """
    repo = _reader()
    if book is None:
        document = queries.books_document(repo)
        _emit(document, as_json, lambda: console.books(document))
        return
    days = queries.days_document(repo, book)
    _emit(days, as_json, lambda: console.days(days))


@cli.command()
@click.option("--book", required=True, help="Book id.")
@click.option("--date", "business_date", required=True, type=ISO_DATE, help="Business day.")
@click.option(
    "--marks",
    is_flag=True,
    help="Add each position's mark, market value and unrealised P&L (the eod_valuation asset).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def positions(book: str, business_date: str, marks: bool, as_json: bool) -> None:
    """The stored end-of-day positions of BOOK on DATE (flat positions omitted)."""
    document = queries.positions_document(_reader(), book, business_date, marks=marks)
    _emit(document, as_json, lambda: console.positions(document))


@cli.command()
@click.option("--book", required=True, help="Book id.")
@click.option("--date", "business_date", required=True, type=ISO_DATE, help="Business day.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def ranking(book: str, business_date: str, as_json: bool) -> None:
    """The collateral ranking of BOOK on DATE: eligible items by lendable value, then the rest."""
    repo = _reader()
    document = queries.ranking_document(repo, book, business_date)
    _emit(
        document,
        as_json,
        lambda: console.ranking(document, _base_currency(repo, book, business_date)),
    )


def _base_currency(repo: PositionRepository, book: str, business_date: str) -> str | None:
    """The book's base currency (the unit of its ranking values) from stored reference data."""
    day = pd.Timestamp(business_date)
    books = repo.reference_as_of(day, day).books
    currency = books.loc[books["book_id"] == book, "base_currency"]
    return None if currency.empty else str(currency.iloc[0])


@cli.command()
@click.option("--book", required=True, help="Book id.")
@click.option("--date", "business_date", required=True, type=ISO_DATE, help="Business day.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def concentration(book: str, business_date: str, as_json: bool) -> None:
    """Each issuer's share of BOOK's eligible lendable value on DATE, flagged over the limit.

    The limit is DESK_ISSUER_CONCENTRATION_LIMIT (default 0.25); shares come from the stored
    ranking, issuers from the stored instrument reference data.
    """
    repo = _reader()
    document = queries.concentration_document(
        repo, book, business_date, _settings().issuer_concentration_limit
    )
    _emit(
        document,
        as_json,
        lambda: console.concentration(document, _base_currency(repo, book, business_date)),
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def quarantine(as_json: bool) -> None:
    """Every rejected input row, with its source and reason."""
    document = queries.quarantine_document(_reader())
    _emit(document, as_json, lambda: console.quarantine(document))


def _log_to_stderr() -> None:
    # The long-running commands report progress through their adapters' loggers.
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )


@cli.command()
@click.option("--once", is_flag=True, help="One pass over the outbox, then exit.")
@click.option(
    "--max-backoff",
    default=60.0,
    show_default=True,
    help="Longest wait between attempts while the broker is unreachable, seconds.",
)
@click.option(
    "--retry-parked",
    is_flag=True,
    help="First put parked events back in the queue (once what made them unpublishable is fixed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def relay(once: bool, max_backoff: float, retry_parked: bool, as_json: bool) -> None:
    """Publish pending events from the outbox to DESK_EVENT_PUBLISHER, in order, at least once.

    Without --once it runs until interrupted, backing off exponentially while the broker is
    unreachable. With --once it exits 1 when events are left waiting. An event the broker can
    never take (e.g. a routing key over AMQP's 255 bytes) is parked with its reason (`desk
    status`); its book's later events wait behind it while other books' events flow.
    """
    _log_to_stderr()
    repository = _repository()
    publisher = publisher_from(_settings().event_publisher)
    if retry_parked:
        _notice(f"{repository.unpark_events()} parked event(s) back in the queue")
    if not once:
        relay_forever(repository, publisher, backoff=Backoff(maximum=max_backoff))
        return
    result = relay_once(repository, publisher)
    document = {
        "published": result.published,
        "failed": result.failed,
        "parked": result.parked,
        "backlog": result.backlog,
    }
    _emit(
        document,
        as_json,
        lambda: f"published {result.published}, parked {result.parked}, backlog {result.backlog}",
    )
    if result.failed:
        raise PublishError(f"relay: {result.failed} events wait in the outbox: {result.error}")


def _request_ranking(book_id: str, business_date: str) -> None:
    """Run collateral_ranking for the day through the Dagster definitions (seen in the UI).

    The asset ranks every book of the day in one run, so the day's other events find it fresh.
    """
    # Imported late: the commands load every asset module, which most `desk` commands never use.
    from desk_pipeline import commands

    trigger = {commands.TRIGGER_TAG: f"desk consume: PositionSnapshotCreated {book_id}"}
    run = commands.ranking_run(book_id, business_date, trigger)
    run.execute(_definitions(), desk_runs.desk_instance())


@cli.command()
@click.option(
    "--source",
    default=None,
    help="rabbitmq:<amqp url> or kafka:<servers>[?topic=<name>] (default: DESK_EVENT_PUBLISHER).",
)
@click.option(
    "--queue", help="RabbitMQ: queue to consume, declared with <queue>.dlq (required there)."
)
@click.option(
    "--consumer",
    "name",
    default="eod-ranking",
    show_default=True,
    help="Consumer name: the inbox key that makes redeliveries no-ops; Kafka's consumer group.",
)
@click.option(
    "--prefetch", default=20, show_default=True, help="RabbitMQ: unacknowledged messages."
)
@click.option(
    "--max-attempts",
    default=5,
    show_default=True,
    help="Tries before a failing message goes to the dead-letter queue.",
)
@click.option(
    "--idle-exit",
    type=float,
    default=None,
    help="Exit after this many seconds without a message (default: run until interrupted).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def consume(
    source: str | None,
    queue: str | None,
    name: str,
    prefetch: int,
    max_attempts: int,
    idle_exit: float | None,
    as_json: bool,
) -> None:
    """Consume PositionSnapshotCreated events: record each new EOD, rank it unless fresh.

    From a RabbitMQ queue, or from the Kafka event topic in the consumer group --consumer
    (offsets committed after the inbox write; poison messages go to <topic>.dlq).
    """
    _log_to_stderr()
    spec = source or _settings().event_publisher

    def inbox() -> event_consumer.InboxConsumer:
        repository = _repository()
        handler = event_consumer.EodRankingHandler(repository, _request_ranking)
        return event_consumer.InboxConsumer(repository, name, handler, max_attempts=max_attempts)

    if spec.startswith("kafka:"):
        kafka = KafkaSettings.from_spec(spec)
        stats = consume_kafka(kafka, inbox(), idle_seconds=idle_exit)
        where = kafka.shown()
    else:
        url = amqp_url_from(spec)
        if not queue:
            raise click.UsageError("RabbitMQ needs --queue (the queue to consume)")
        stats = event_consumer.consume(
            url, queue, inbox(), prefetch=prefetch, idle_seconds=idle_exit
        )
        where = queue
    _emit(stats.as_dict(), as_json, lambda: f"consumer {name} on {where}: {stats.as_dict()}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def status(as_json: bool) -> None:
    """Per book: latest EOD, stale days awaiting restatement, quarantined rows, pending events.

    Quarantined rows without a readable book_id are counted under "unattributed".
    """
    document = queries.status_document(_reader())
    _emit(document, as_json, lambda: console.status(document))


@cli.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Fail runs whose desk process is gone and free their pool slots; list what was done.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def doctor(repair: bool, as_json: bool) -> None:
    """Check the configuration: warehouse reachable, migrations current, source, broker, runs.

    Changes nothing (no migration, no file) unless --repair. Exits 1 when any check fails.
    """
    from desk_pipeline.adapters import health

    # Each setting is checked on its own, so one bad value does not hide the other checks; a
    # bad value's finding is the very line the other commands print.
    from desk_pipeline.defs.settings import ENVIRONMENT, environment_values, setting_problems

    problems = setting_problems()
    values = environment_values()
    if "DESK_WAREHOUSE_URL" in problems:
        findings = [
            health.Finding("warehouse", False, problems.pop("DESK_WAREHOUSE_URL")),
            health.Finding("migrations", False, "no warehouse to check"),
        ]
    else:
        findings = health.warehouse_findings(values["warehouse_url"])
    for check, field, probe in (
        ("source", "trade_source", health.source_finding),
        ("broker", "event_publisher", health.broker_finding),
    ):
        if ENVIRONMENT[field] in problems:
            findings.append(health.Finding(check, False, problems.pop(ENVIRONMENT[field])))
        else:
            findings.append(probe(values[field]))
    findings += [health.Finding("settings", False, line) for line in problems.values()]
    repaired = []
    if desk_runs.instance_exists():
        instance = desk_runs.desk_instance()
        if repair:
            repaired = [r.describe() for r in desk_runs.repair_orphaned_runs(instance)]
        orphans = [run.run_id for run in desk_runs.orphaned_runs(instance)]
        detail = (
            f"{len(orphans)} run(s) whose desk process is gone ({', '.join(orphans)}); "
            "run `desk doctor --repair` (any other desk command repairs them too)"
            if orphans
            else "no run is held by a dead desk process"
        )
        findings.append(health.Finding("runs", not orphans, detail))
    document = {
        "ok": all(f.ok for f in findings),
        "checks": [{"check": f.check, "ok": f.ok, "detail": f.detail} for f in findings],
        "repaired": repaired,
    }
    _emit(
        document,
        as_json,
        lambda: "\n".join(
            [
                *(f"repaired {line}" for line in repaired),
                *(f"{'ok  ' if f.ok else 'FAIL'} {f.check:<10} {f.detail}" for f in findings),
            ]
        ),
    )
    failed = [f.check for f in findings if not f.ok]
    if failed:
        raise DeskPipelineError(f"doctor: {', '.join(failed)} failed")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Serve the HTTP API (OpenAPI document at /openapi.json) until interrupted.

    Reads are open; the two commands (POST) need `Authorization: Bearer <DESK_API_TOKEN>` and
    are refused while DESK_API_TOKEN is unset. Their runs execute in this process on the
    DAGSTER_HOME instance (docs/api.md).
    """
    import uvicorn

    from desk_pipeline.api import create_app
    from desk_pipeline.defs.runs import desk_instance

    _log_to_stderr()
    token = os.environ.get("DESK_API_TOKEN") or None
    app = create_app(_settings(), token=token, instance=desk_instance())
    uvicorn.run(app, host=host, port=port, log_level="info")


def main() -> None:
    """Entry point: a failure is one line on stderr, `desk: <what failed>; <what to check>`.

    The exit code says which kind of failure (EXIT_CODES); with --debug the error is raised
    instead, traceback and all.
    """
    debug = False
    try:
        with cli.make_context("desk", sys.argv[1:]) as ctx:
            debug = ctx.params["debug"]
            cli.invoke(ctx)
    except click.exceptions.Exit as done:  # --help
        sys.exit(done.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("desk: interrupted", err=True)
        sys.exit(130)
    except Exception as err:
        if debug:
            raise
        code, line = _failure(err)
        click.echo(f"desk: {line}", err=True)
        sys.exit(code)


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def _failure(err: Exception) -> tuple[int, str]:
    """The exit code (EXIT_CODES) and the one line that explain ``err``."""
    if isinstance(err, SettingsError):  # one line per bad DESK_* variable
        return 2, "\ndesk: ".join(err.lines)
    if isinstance(err, click.UsageError):
        command = err.ctx.command_path if err.ctx else "desk"
        return 2, f"{_first_line(err.format_message())} (see `{command} --help`)"
    if isinstance(err, click.ClickException):
        return err.exit_code, _first_line(err.format_message())
    if isinstance(err, NoWarehouseError):
        return 2, _first_line(err)
    if isinstance(err, dg.DagsterExecutionStepExecutionError):
        return 1, (
            f"run failed in step {err.step_key}: {_first_line(err.user_exception or err)}; "
            "the run is in the Dagster UI, --verbose shows its log and --debug the traceback"
        )
    if isinstance(err, dg.DagsterError):
        # A run failed after its retries: the last attempt's error says why.
        attempts = getattr(err, "user_code_process_error_infos", None) or []
        why = _first_line(attempts[-1].message if attempts else err)
        return 1, f"a run failed: {why}; the run is in the Dagster UI, --verbose shows its log"
    if isinstance(err, DeskPipelineError):
        return 1, _first_line(err)
    return 1, f"{type(err).__name__}: {_first_line(err)} (--debug shows the traceback)"
