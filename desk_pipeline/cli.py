"""The `desk` command: backfill; positions, rankings, concentration, quarantine; events."""

import functools
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import dagster as dg
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
from desk_pipeline.defs.settings import DeskSettings
from desk_pipeline.domain.errors import DeskPipelineError, InvalidRangeError, SettingsError

# What `desk` exits with; `desk --help` and the README list them.
EXIT_CODES = {
    0: "done",
    1: "no answer: nothing stored for that book and day, a check, run or relay failed",
    2: "usage or configuration: a bad option or date, a DESK_* setting, no warehouse there",
    130: "interrupted",
}


def _settings() -> DeskSettings:
    # Read when a command needs them, not at import: `main` may change the environment, and a
    # bad setting must not stop `desk doctor` (it is one line, exit 2, for the other commands).
    return DeskSettings.from_env()


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
        for line in _repair_orphans(desk_runs.desk_instance()):
            _notice(f"repaired {line}")


def _repair_orphans(instance: dg.DagsterInstance) -> list[str]:
    """Fail the runs of dead desk processes and free their pool slots; what was done."""
    return [repair.describe() for repair in desk_runs.repair_orphaned_runs(instance)]


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
    # Imported late: the commands load every asset module, which most `desk` commands never use.
    from desk_pipeline.commands import backfill as own_runs

    first, last = queries.business_day(start, "--start"), queries.business_day(end, "--end")
    done = own_runs.backfill(
        _settings(), first, last, warehouse=_repository, on_wait=_notice, log_level=_log_level()
    )
    days = done.days
    document = {
        "start": days[0],
        "end": days[-1],
        "days": len(days),
        "runs": done.runs,
        "events_published": done.events_published,
        "events_pending": done.events_pending,
    }
    _emit(
        document,
        as_json,
        lambda: (
            f"backfilled {len(days)} days, {days[0]}..{days[-1]}, in {len(done.runs)} run(s); "
            f"events published {done.events_published}, waiting {done.events_pending}"
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
    from desk_pipeline.commands import backfill as own_runs  # late, as in `backfill`

    done = own_runs.tick(_settings(), warehouse=_repository, log_level=_log_level())
    document = {"window": done.window, "run_id": done.run_id}
    _emit(
        document,
        as_json,
        lambda: f"snapshot of the 10-minute window {done.window}, run {done.run_id}",
    )


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
        lambda: console.ranking(document, queries.base_currency(repo, book, business_date)),
    )


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
        lambda: console.concentration(document, queries.base_currency(repo, book, business_date)),
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
    # Imported late: the commands load every asset module, which most `desk` commands never use.
    from desk_pipeline import commands

    _log_to_stderr()
    spec = source or _settings().event_publisher

    def inbox() -> event_consumer.InboxConsumer:
        repository = _repository()
        rank = functools.partial(commands.rank_snapshot, _settings())
        handler = event_consumer.EodRankingHandler(repository, rank)
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
    instance = desk_runs.desk_instance() if desk_runs.instance_exists() else None
    repaired = _repair_orphans(instance) if repair and instance is not None else []
    document = queries.doctor_document(instance, repaired)
    _emit(
        document,
        as_json,
        lambda: "\n".join(
            [
                *(f"repaired {line}" for line in repaired),
                *(
                    f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']:<10} {c['detail']}"
                    for c in document["checks"]
                ),
            ]
        ),
    )
    failed = [c["check"] for c in document["checks"] if not c["ok"]]
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
