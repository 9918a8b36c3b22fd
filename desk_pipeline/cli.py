"""The `desk` command: backfill the warehouse and read positions, rankings and quarantine."""

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click
import dagster as dg
import pandas as pd

from desk_pipeline.adapters.publisher import publisher_from, relay_once
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.calendar import business_dates
from desk_pipeline.domain.errors import DeskPipelineError, InvalidRangeError, NoEndOfDayError

# Days per Dagster run in a backfill: bounds memory and gives the progress bar steps.
BACKFILL_CHUNK_DAYS = 31


def _settings() -> Any:
    # Imported late: loading the definitions reads the environment, which `main` may change.
    from desk_pipeline.defs.resources import SETTINGS

    return SETTINGS


def _repository() -> PositionRepository:
    from desk_pipeline.defs.resources import WarehouseResource

    return WarehouseResource(url=_settings().warehouse_url).repository()


def _date(value: str, option: str) -> str:
    try:
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    except ValueError as err:
        raise InvalidRangeError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from err


def _emit(document: Any, as_json: bool, human: Callable[[], str]) -> None:
    click.echo(json.dumps(document, indent=2) if as_json else human())


def _number(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _text(value: Any) -> str | None:
    # pandas 3 reads a missing string as NaN; JSON wants null.
    return None if pd.isna(value) else str(value)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Securities-financing desk pipeline: positions, end-of-day snapshots, collateral ranking."""


@cli.command()
@click.option("--start", required=True, help="First business day, YYYY-MM-DD.")
@click.option("--end", required=True, help="Last business day, YYYY-MM-DD (inclusive).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def backfill(start: str, end: str, as_json: bool) -> None:
    """Bring the warehouse up to date for business days START..END.

    Ingests the configured source, computes positions, end-of-day snapshots and collateral
    rankings through the Dagster definitions (visible in the UI afterwards), then relays events.
    Idempotent: running it again changes nothing.
    """
    from desk_pipeline.definitions import defs
    from desk_pipeline.defs.partitions import DAILY

    dates = business_dates(_date(start, "--start"), _date(end, "--end"))
    known = set(DAILY.get_partition_keys())
    outside = [d for d in dates if d not in known]
    if outside:
        raise InvalidRangeError(
            f"days {outside[0]}..{outside[-1]} are outside the desk calendar "
            f"({_settings().start_date} to today); set DESK_START_DATE earlier or pick other days"
        )
    job = defs.resolve_job_def("daily_job")
    instance = (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )
    chunks = [dates[i : i + BACKFILL_CHUNK_DAYS] for i in range(0, len(dates), BACKFILL_CHUNK_DAYS)]
    runs = []
    with click.progressbar(chunks, label="backfill", file=sys.stderr, show_pos=True) as bar:
        for chunk in bar:
            result = job.execute_in_process(
                instance=instance,
                tags={
                    "dagster/asset_partition_range_start": chunk[0],
                    "dagster/asset_partition_range_end": chunk[-1],
                    "desk/trigger": "desk backfill",
                },
                raise_on_error=True,
            )
            runs.append(result.run_id)
    relay = relay_once(_repository(), publisher_from(_settings().event_publisher))
    document = {
        "start": dates[0],
        "end": dates[-1],
        "days": len(dates),
        "runs": runs,
        "events_published": relay.published,
        "events_pending": relay.backlog,
    }
    _emit(document, as_json, lambda: f"backfilled {len(dates)} days in {len(runs)} run(s)")


@cli.command()
@click.option("--book", required=True, help="Book id.")
@click.option("--date", "day", required=True, help="Business day, YYYY-MM-DD.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def positions(book: str, day: str, as_json: bool) -> None:
    """The stored end-of-day positions of BOOK on DATE (flat positions omitted)."""
    business_date = _date(day, "--date")
    stored = _repository().eod(book, business_date)
    if stored is None:
        raise NoEndOfDayError(f"no end-of-day positions for book {book} on {business_date}")
    header, rows = stored
    rows = rows[rows["quantity"] != 0]
    document = {
        "book_id": book,
        "business_date": business_date,
        "as_of": header["as_of"].isoformat(),
        "positions": [
            {
                "instrument_id": r.instrument_id,
                "quantity": float(r.quantity),
                "avg_price": float(r.avg_price),
                "realized_pnl": float(r.realized_pnl),
            }
            for r in rows.itertuples()
        ],
    }
    _emit(
        document,
        as_json,
        lambda: (
            f"{book} {business_date} as of {document['as_of']}\n"
            + rows.drop(columns="book_id").to_string(index=False)
        ),
    )


@cli.command()
@click.option("--book", required=True, help="Book id.")
@click.option("--date", "day", required=True, help="Business day, YYYY-MM-DD.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def ranking(book: str, day: str, as_json: bool) -> None:
    """The collateral ranking of BOOK on DATE: eligible items by lendable value, then the rest."""
    business_date = _date(day, "--date")
    rows = _repository().ranking(book, business_date)
    if rows.empty:
        raise NoEndOfDayError(f"no collateral ranking for book {book} on {business_date}")
    document = {
        "book_id": book,
        "business_date": business_date,
        "as_of": rows["as_of"].iloc[0].isoformat(),
        "items": [
            {
                "rank": None if pd.isna(r.rank) else int(r.rank),
                "instrument_id": r.instrument_id,
                "quantity": float(r.quantity),
                "price": _number(r.price),
                "fx_rate": _number(r.fx_rate),
                "haircut": _number(r.haircut),
                "value": _number(r.value),
                "eligible": bool(r.eligible),
                "reason": _text(r.reason),
            }
            for r in rows.itertuples()
        ],
    }
    _emit(
        document,
        as_json,
        lambda: rows.drop(columns=["book_id", "business_date", "snapshot_id", "as_of"]).to_string(
            index=False
        ),
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def quarantine(as_json: bool) -> None:
    """Every rejected input row, with its source and reason."""
    rows = _repository().quarantined()
    document = [
        {
            "source": r.source,
            "trade_id": r.trade_id,
            "reason": _text(r.reason),
            "reason_code": r.reason_code,
            "row_number": int(r.row_number),
            "raw": r.raw,
        }
        for r in rows.itertuples()
    ]
    _emit(
        document,
        as_json,
        lambda: rows[["source", "row_number", "trade_id", "reason"]].to_string(index=False),
    )


def main() -> None:
    """Entry point: user errors print one line on stderr and exit 1, without a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except DeskPipelineError as err:
        click.echo(f"desk: {err}", err=True)
        sys.exit(1)
    except dg.DagsterExecutionStepExecutionError as err:
        click.echo(f"desk: run failed: {err.user_exception or err}", err=True)
        sys.exit(1)
