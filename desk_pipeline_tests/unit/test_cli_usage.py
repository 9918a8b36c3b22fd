"""What `desk` says to a mistyped command line before it opens anything."""

import importlib.metadata
import logging

import click
import pytest
from click.testing import CliRunner

from desk_pipeline.cli import cli
from desk_pipeline.cli.group import COMMANDS, SHORT_HELP
from desk_pipeline.cli.terminal import folded


def test_an_option_where_a_date_was_expected_says_a_variable_may_be_empty():
    # `desk backfill --start $DESK_START_DATE --end ...` with the variable unset: it said
    # "'--end' is not a calendar date written YYYY-MM-DD" (new-user walkthrough).
    result = CliRunner().invoke(cli, ["backfill", "--start", "--end", "2026-03-02"])
    assert result.exit_code == 2
    assert (
        "got the option '--end' where a YYYY-MM-DD was expected: is a variable meant to give it "
        "empty or unset? (`source .desk/desk.env` sets the calendar's)"
    ) in result.output


def test_desk_version_is_the_installed_distributions():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"desk {importlib.metadata.version('desk_pipeline')}\n"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_desk_help_lists_each_command_with_its_own_short_help(command):
    # `desk --help` lists SHORT_HELP, so that it loads no command: at every width, what the
    # command itself would list.
    assert set(SHORT_HELP) == set(COMMANDS)
    loaded = cli.get_command(click.Context(cli), command)
    assert loaded is not None
    for width in (40, 60, 80, 200):
        listed = CliRunner().invoke(cli, ["--help"], terminal_width=width).output
        short = loaded.get_short_help_str(width - 6 - len("concentration"))
        assert f"  {command:<13}  {short}\n" in listed, width


def test_a_warning_each_batch_repeats_is_logged_once_and_counted(caplog):
    # `desk backfill` of days before the stored ones printed one late-trades warning per day
    # (35 for the README's example of earlier days).
    source = logging.getLogger("desk_pipeline.tests.folded")
    with caplog.at_level(logging.INFO), folded(source.name, "late trades") as late:
        for day in range(5):
            source.warning("late trades for day %d", day)
        source.warning("another warning")
    source.warning("late trades after the block")
    assert [r.getMessage() for r in caplog.records] == [
        "late trades for day 0",
        "another warning",
        "late trades after the block",
    ]
    assert late.seen == 5


def test_a_warning_the_commands_last_line_repeats_is_not_logged(caplog):
    source = logging.getLogger("desk_pipeline.tests.folded")
    with caplog.at_level(logging.INFO), folded(source.name, "relay: %s", shown=0) as said:
        source.warning("relay: %s events wait", 3)
    assert caplog.records == [] and said.seen == 1
