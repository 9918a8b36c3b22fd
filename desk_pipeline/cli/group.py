"""The `desk` group: its options, help epilog and what it does before any command."""

import warnings

import click
import dagster as dg

from desk_pipeline.cli.exits import EXIT_CODES
from desk_pipeline.cli.terminal import notice
from desk_pipeline.defs import runs as desk_runs

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
        for line in repair_orphans(desk_runs.desk_instance()):
            notice(f"repaired {line}")


def repair_orphans(instance: dg.DagsterInstance) -> list[str]:
    """Fail the runs of dead desk processes and free their pool slots; what was done."""
    return [repair.describe() for repair in desk_runs.repair_orphaned_runs(instance)]
