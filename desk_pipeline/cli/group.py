"""The `desk` group: its options, help epilog, its commands and what it does before them.

Commands are imported when they are invoked (click's lazy-loading pattern), so a read such as
`desk positions` loads neither Dagster nor the asset definitions: it answers in a fraction of
the time a command that starts runs needs.
"""

import importlib
import warnings
from typing import TYPE_CHECKING

import click

from desk_pipeline.cli.exits import EXIT_CODES
from desk_pipeline.cli.terminal import notice

if TYPE_CHECKING:
    import dagster as dg

# Options of the whole command that users also type after a subcommand.
_ANYWHERE = ("-v", "--verbose", "--debug")
# Each command and the module that defines it, as a function of the command's name.
COMMANDS = {
    **dict.fromkeys(
        ("books", "positions", "ranking", "concentration", "quarantine", "status"),
        "desk_pipeline.cli.reads",
    ),
    **dict.fromkeys(("migrate", "backfill", "tick", "doctor"), "desk_pipeline.cli.runs"),
    **dict.fromkeys(("relay", "consume", "serve"), "desk_pipeline.cli.events"),
}
# Each command's short help as `desk --help` lists it, so that the list imports no command
# (cli.runs loads Dagster: `desk --help` took 3.5 s). A unit test holds each to the command's.
SHORT_HELP: dict[str, str] = {
    "backfill": "Bring the warehouse up to date for business days START..END.",
    "books": "The books with stored end-of-day positions, and their days: what the other "
    "commands show.",
    "concentration": "Each issuer's share of BOOK's eligible lendable value on DATE, flagged "
    "over the limit.",
    "consume": "Consume PositionSnapshotCreated events: record each new EOD, rank it unless fresh.",
    "doctor": "Check the configuration: warehouse reachable, migrations current, source, "
    "broker, runs.",
    "migrate": "Bring the warehouse schema to the latest revision; safe to run from several "
    "shells.",
    "positions": "The stored end-of-day positions of BOOK on DATE (flat positions omitted).",
    "quarantine": "Every rejected input row, with its source and reason.",
    "ranking": "The collateral ranking of BOOK on DATE: eligible items by lendable value, then "
    "the rest.",
    "relay": "Publish pending events from the outbox to DESK_EVENT_PUBLISHER, in order, at "
    "least once.",
    "serve": "Serve the HTTP API (OpenAPI document at /openapi.json) until SIGTERM or Ctrl-C "
    "(143, 130).",
    "status": "Per book: latest EOD, stale days awaiting restatement, quarantined rows, "
    "pending events.",
    "tick": "Snapshot every book as of the 10-minute window that just closed, as the schedule "
    "does.",
}


class _Desk(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `desk backfill … --verbose` means `desk --verbose backfill …`.
        ordered = [a for a in args if a in _ANYWHERE] + [a for a in args if a not in _ANYWHERE]
        if ordered and set(ordered) <= {*_ANYWHERE, "--"} and not ctx.resilient_parsing:
            # `desk -v` alone asks what `desk` alone asks: the help, not "Missing command."
            raise click.exceptions.NoArgsIsHelpError(ctx)
        return super().parse_args(ctx, ordered)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        # A bare command of that help shortens it as the command itself would.
        rows = [
            (name, click.Command(name, help=SHORT_HELP[name]).get_short_help_str(limit))
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as unknown:
            # Click suggests from the commands already loaded, which lazy loading leaves empty.
            raise click.exceptions.NoSuchCommand(
                unknown.command_name, possibilities=COMMANDS, ctx=ctx
            ) from None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command = getattr(importlib.import_module(module), cmd_name)
        assert isinstance(command, click.Command), f"{module}.{cmd_name} is not a command"
        return command


@click.group(
    cls=_Desk,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="\b\nExit codes:\n"
    + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items()),
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Details on stderr: Dagster's run log, warnings but Dagster's beta notices.",
)
@click.option("--debug", is_flag=True, help="On an error, the traceback; Dagster's debug log.")
@click.version_option(package_name="desk_pipeline", message="desk %(version)s")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """Securities-financing desk pipeline: positions, end-of-day snapshots, collateral ranking."""
    ctx.obj = {"log_level": "DEBUG" if debug else "INFO" if verbose else None}
    if not (verbose or debug):
        # Dagster's beta and supersession notices are for the desk's developers.
        warnings.simplefilter("ignore")


def repair_orphans_first() -> None:
    """Fail the runs of dead desk processes before a command starts runs of its own.

    Such runs hold pool slots that would block the command's runs; `desk doctor` only reports
    them (unless --repair), and the read commands never open the Dagster instance.
    """
    from desk_pipeline.defs import runs as desk_runs

    if desk_runs.instance_exists():
        for line in repair_orphans(desk_runs.desk_instance()):
            notice(f"repaired {line}")


def repair_orphans(instance: "dg.DagsterInstance") -> list[str]:
    """Fail the runs of dead desk processes and free their pool slots; what was done."""
    from desk_pipeline.defs import runs as desk_runs

    return [repair.describe() for repair in desk_runs.repair_orphaned_runs(instance)]
