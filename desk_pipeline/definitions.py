"""The code location: every asset, check, job, schedule and sensor with its resources."""

import dagster as dg

from desk_pipeline.defs import automation, runs
from desk_pipeline.defs.collateral.definitions import collateral_definitions
from desk_pipeline.defs.partitions import desk_partitions
from desk_pipeline.defs.positions.definitions import positions_definitions
from desk_pipeline.defs.reference.definitions import reference_definitions
from desk_pipeline.defs.resources import resources_from
from desk_pipeline.defs.settings import DeskSettings


def build_definitions(settings: DeskSettings) -> dg.Definitions:
    """The desk's definitions for ``settings``: each domain folder's, the automation, resources."""
    partitions = desk_partitions(settings)
    return dg.Definitions.merge(
        positions_definitions(settings, partitions),
        collateral_definitions(partitions),
        reference_definitions(partitions),
        dg.Definitions(
            jobs=[automation.intraday_job, automation.daily_job, automation.outbox_relay_job],
            schedules=[automation.intraday_schedule],
            sensors=[
                automation.eod_refresh_sensor,
                automation.outbox_relay_sensor,
                runs.orphaned_runs_sensor,
            ],
            resources=resources_from(settings),
            # Every run executes its steps in its run worker, one process: the schedule's
            # ticks, the automation sensor's EOD refreshes (the implicit asset job), backfills,
            # UI materialisations. A process per step (Dagster's multiprocess default) imported
            # Dagster, pandas, numba and these definitions again for each of a tick's five
            # steps, most of its time and CPU (see the README's tick-e2e figures). Retry
            # policies and pools hold in process (integration/test_run_safety.py); a crashed
            # worker is re-launched by run retries (dagster.yaml).
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def code_location() -> dg.Definitions:
    """What `dagster dev` and `dagster api grpc` load: the definitions for the environment.

    The DESK_* variables are read here, once, when the code location loads (never at import);
    a bad one fails the load with the one-line SettingsError `desk` shows.
    """
    return build_definitions(DeskSettings.from_env())


def __getattr__(name: str) -> dg.Definitions:
    # ARCHITECTURE.md names `defs` as this module's Definitions: built from the environment on
    # each access (PEP 562), so importing the module still reads none.
    if name == "defs":
        return code_location()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
