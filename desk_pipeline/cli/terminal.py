"""What the `desk` commands share at the terminal: the date option, stdout and stderr.

The answer goes to stdout; notices and logs to stderr.
"""

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import RenderableType

from desk_pipeline import console, queries
from desk_pipeline.domain.errors import InvalidRangeError


def log_level() -> str | None:
    """Dagster's run log on stderr: none by default, INFO with --verbose, DEBUG with --debug."""
    return click.get_current_context().find_root().obj["log_level"]


def notice(line: str) -> None:
    """Tell the operator what the desk is doing for them, on stderr (stdout stays the answer)."""
    click.echo(f"desk: {line}", err=True)


def emit(document: Any, as_json: bool, human: Callable[[], RenderableType]) -> None:
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


def log_to_stderr() -> None:
    """Log INFO and above on stderr, each line with its time and level."""
    # The long-running commands report progress through their adapters' loggers.
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
