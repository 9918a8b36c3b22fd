"""The commands that run or check the desk: migrate, backfill, tick, doctor."""

import click

from desk_pipeline.adapters.warehouse import trading_book
from desk_pipeline.cli.group import repair_orphans, repair_orphans_first
from desk_pipeline.cli.signals import stop_point, stops_on_signals
from desk_pipeline.cli.terminal import ISO_DATE, emit, folded, log_level, notice
from desk_pipeline.cli.warehouse import open_repository, settings
from desk_pipeline.defs import runs as desk_runs
from desk_pipeline.domain.errors import DeskPipelineError
from desk_pipeline.queries.doctor import doctor_document


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def migrate(as_json: bool) -> None:
    """Bring the warehouse schema to the latest revision; safe to run from several shells.

    Deployments run it before starting the desk. Other commands migrate a warehouse that is
    behind too, under the same lock; a current schema is only read.
    """
    from desk_pipeline.adapters.warehouse import schema_head

    repository = open_repository()
    applied = repository.applied
    document = {"revision": repository.schema_revision(), "applied": applied}
    done = f"applied {', '.join(applied)}" if applied else "nothing to apply"
    emit(document, as_json, lambda: f"warehouse schema at {schema_head()} ({done})")


@click.command()
@click.option("--start", required=True, type=ISO_DATE, help="First business day.")
@click.option("--end", required=True, type=ISO_DATE, help="Last business day (inclusive).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@stops_on_signals("nothing was backfilled; run the same command again")
def backfill(start: str, end: str, as_json: bool) -> None:
    """Bring the warehouse up to date for business days START..END.

    Ingests the configured source, computes positions, end-of-day snapshots, their valuation
    and collateral rankings through the Dagster definitions (visible in the UI afterwards), then
    relays events. Stored days that trades arriving now make stale are restated in the same
    runs, whatever the range.
    Idempotent: running it again changes nothing. SIGTERM or Ctrl-C stops it within seconds
    (exit 143 or 130) with one line naming the days done and the command that finishes the rest.
    """
    # Imported late: the commands load every asset module, which most `desk` commands never use.
    from desk_pipeline.commands import backfill as own_runs

    desk = settings()
    # A day outside the calendar is a bad date (exit 2), refused before anything is repaired.
    dates = desk.calendar_days(start, end)
    stop_point(backfill_left(dates, done=0))
    repair_orphans_first()
    # A backfill before the stored days makes them stale with each day's trades: one line for
    # all, and what is left stale at the end.
    with folded(trading_book.log.name, trading_book.LATE_TRADES) as late:
        done = own_runs.backfill(
            desk,
            dates,
            warehouse=open_repository,
            on_wait=notice,
            log_level=log_level(),
            on_days_done=lambda count: stop_point(backfill_left(dates, count)),
            stop_check=stop_point,
        )
    if late.seen > 1:
        stale = int(open_repository().eod_headers()["stale"].sum())
        notice(
            f"late or corrected trades arrived in {late.seen} batches; the runs restated the "
            f"stored days they made stale ({stale} stale EOD(s) left: `desk status`)"
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
    emit(
        document,
        as_json,
        lambda: (
            f"backfilled {len(days)} days, {days[0]}..{days[-1]}, in {len(done.runs)} run(s); "
            f"events published {done.events_published}, waiting {done.events_pending}"
        ),
    )


def backfill_left(dates: list[str], done: int) -> str:
    """What a stop leaves of a backfill of ``dates`` whose first ``done`` days are complete.

    Its runs go forward in time, a range of days each; a day is complete (EODs, valuations and
    rankings of every book stored) once the run that holds it succeeded. Every write is one
    transaction and recomputing a day gives the same rows, so a backfill of the days not complete
    finishes the work: the e2e test checks that it ends as an uninterrupted backfill does.
    """
    if done == len(dates):
        return (
            f"{_days(dates)} backfilled; events the broker has not confirmed wait in the outbox "
            "(`desk relay --once` publishes them)"
        )
    rest = dates[done:]
    finish = (
        f"`desk backfill --start {rest[0]} --end {rest[-1]}` completes "
        f"{'it' if len(rest) == 1 else 'them'}"
    )
    if not done:
        return f"{_days(rest)} not complete: {finish}"
    return f"{_days(dates[:done])} complete, {_days(rest)} not: {finish}"


def _days(dates: list[str]) -> str:
    return f"day {dates[0]}" if len(dates) == 1 else f"days {dates[0]}..{dates[-1]}"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@stops_on_signals(
    "the window's snapshot is stored whole or not at all: `desk tick` again snapshots the "
    "latest window"
)
def tick(as_json: bool) -> None:
    """Snapshot every book as of the 10-minute window that just closed, as the schedule does.

    Runs intraday_job for that window in-process (the run shows in the UI); the daemon's EOD
    refresh then follows. For a desk run without the daemon, and `make run`, whose demo starts
    with fresh 10-minute snapshots instead of failing its freshness policy until the first tick.
    """
    from desk_pipeline.commands import backfill as own_runs  # late, as in `backfill`

    repair_orphans_first()
    done = own_runs.tick(
        settings(), warehouse=open_repository, log_level=log_level(), stop_check=stop_point
    )
    document = {"window": done.window, "as_of": done.as_of.isoformat(), "run_id": done.run_id}
    # The partition key names the window by its start; the snapshot is as of its end.
    emit(
        document,
        as_json,
        lambda: (
            f"snapshot of every book as of {done.as_of:%Y-%m-%d %H:%M %Z} (10-minute window "
            f"{done.window}), run {done.run_id}"
        ),
    )


@click.command()
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
    repaired = repair_orphans(instance) if repair and instance is not None else []
    document = doctor_document(instance, repaired)
    emit(
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
    # One check may fail on several lines (a line per bad DESK_* variable): named once.
    failed = list(dict.fromkeys(c["check"] for c in document["checks"] if not c["ok"]))
    if failed:
        raise DeskPipelineError(f"doctor: {', '.join(failed)} failed")
