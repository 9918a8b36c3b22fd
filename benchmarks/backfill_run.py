"""One year-long backfill through the project's Dagster definitions, run as a child process.

The benchmark starts this module in its own process so that wall time and peak RSS belong to
the backfill alone. It mirrors ``desk backfill``: the project's ``daily_job`` in chunks of
``BACKFILL_CHUNK_DAYS`` partitions, each chunk one single-run range backfill, on a
``DAGSTER_HOME`` instance with the desk's default dagster.yaml. The only change to the
definitions is the trade source: the simulator at the size given on the command line
(``DESK_TRADE_SOURCE`` only knows the default size).
"""

import argparse
import json
import os
import resource
import sys
import time
from typing import Any

import dagster as dg


def sized_definitions(books: int, instruments: int, per_day: int, per_book: int) -> Any:
    """The project's definitions with the simulator source at the given size.

    Imported late: loading the definitions reads the environment, which ``main`` sets first.
    """
    from desk_pipeline.adapters.simulator import DeskSimulator
    from desk_pipeline.adapters.trade_sources import SimulatorSource, TradeSource
    from desk_pipeline.definitions import build_definitions
    from desk_pipeline.defs.resources import SimulatorTradeSource
    from desk_pipeline.defs.settings import DeskSettings

    defs = build_definitions(DeskSettings.from_env())

    class SizedSimulatorSource(SimulatorTradeSource):
        """The demo desk (kind ``simulator``) at the benchmark's size."""

        n_books: int
        n_instruments: int
        trades_per_day: int
        instruments_per_book: int

        def source(self) -> TradeSource:
            """A simulator source at this size."""
            return SimulatorSource(
                DeskSimulator(
                    n_books=self.n_books,
                    n_instruments=self.n_instruments,
                    trades_per_day=self.trades_per_day,
                    instruments_per_book=self.instruments_per_book,
                )
            )

    source = SizedSimulatorSource(
        n_books=books,
        n_instruments=instruments,
        trades_per_day=per_day,
        instruments_per_book=per_book,
    )
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        resources={**defs.resources, "trade_source": source},
    )


def main(argv: list[str] | None = None) -> None:
    """Backfill ``--start``..``--end`` and print one JSON line: wall time, peak RSS, runs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--books", type=int, required=True)
    parser.add_argument("--instruments", type=int, required=True)
    parser.add_argument("--trades-per-day", type=int, required=True)
    parser.add_argument("--instruments-per-book", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ["DESK_WAREHOUSE_URL"] = args.url
    os.environ["DESK_START_DATE"] = args.start
    started = time.perf_counter()

    from desk_pipeline.commands.backfill import backfill_chunks, run_range
    from desk_pipeline.defs.runs import desk_instance
    from desk_pipeline.domain.calendar import business_dates

    defs = sized_definitions(
        args.books, args.instruments, args.trades_per_day, args.instruments_per_book
    )
    job = defs.resolve_job_def("daily_job")
    dates = business_dates(args.start, args.end)
    chunks = backfill_chunks(dates)
    # As `desk backfill` opens it: the desk's dagster.yaml written into a new DAGSTER_HOME.
    instance = desk_instance()
    for chunk in chunks:
        run_range(job, instance, chunk, trigger="benchmark backfill")
    document = {
        "wall_s": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "runs": len(chunks),
        "calendar_days": len(dates),
    }
    sys.stdout.write(json.dumps(document) + "\n")


if __name__ == "__main__":
    main()
