"""What the `desk` commands share at the terminal: the date and book options, stdout and stderr.

The answer goes to stdout; notices and logs to stderr.
"""

import codecs
import contextlib
import dataclasses
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
from rich.console import RenderableType

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
    if isinstance(text, str):
        click.echo(text)
        return
    from desk_pipeline import console  # pandas: a command's answer, not `desk --help`, loads it

    click.echo(console.render(text))


class _Checked(click.ParamType):
    """A value ``check(value, option)`` accepts, as it returns it; else a usage error (exit 2)."""

    def __init__(self, name: str, check: Callable[[str, str], str]) -> None:
        self.name = name
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if str(value).startswith("--"):
            # `--start $DESK_START_DATE --end ...` with the variable unset takes the next option.
            self.fail(
                f"got the option {value!r} where a {self.name} was expected: is a variable "
                "meant to give it empty or unset? (`source .desk/desk.env` sets the calendar's)",
                param,
                ctx,
            )
        try:
            return self.check(str(value), "")
        except InvalidRangeError as err:
            self.fail(str(err).strip(), param, ctx)


def _query_check(name: str) -> Callable[[str, str], str]:
    """``desk_pipeline.queries.<name>``, imported at the first value it checks.

    The queries load pandas and the warehouse (about a second): `desk --help`, `desk --version`
    and a usage error answer without them.
    """

    def check(value: str, option: str) -> str:
        from desk_pipeline import queries

        return getattr(queries, name)(value, option)

    return check


# A calendar date written YYYY-MM-DD; a book id ingest would keep.
ISO_DATE = _Checked("YYYY-MM-DD", _query_check("business_day"))
BOOK_ID = _Checked("BOOK", _query_check("book_id"))


def log_to_stderr() -> None:
    """Log INFO and above on stderr, each line with its time and level.

    Alembic's INFO lines (the dialect and DDL mode of every migration context, opened each time
    the warehouse is) only with --verbose or --debug: its warnings, and a failed migration (an
    error `desk` reports), still show. pika's lines only with --verbose or --debug.
    """
    # The long-running commands report progress through their adapters' loggers.
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.NOTSET if log_level() else logging.WARNING)
    # pika logs each failed connection attempt as ERROR with a traceback; the desk's own line
    # says what failed and what waits.
    logging.getLogger("pika").setLevel(logging.NOTSET if log_level() else logging.CRITICAL)


@dataclasses.dataclass
class _Folded(logging.Filter):
    """Lets the first ``shown`` records starting with ``prefix`` through; counts them all."""

    prefix: str
    shown: int
    seen: int = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.prefix):
            return True
        self.seen += 1
        return self.seen <= self.shown


@contextlib.contextmanager
def folded(logger: str, prefix: str, shown: int = 1) -> Iterator[_Folded]:
    """While the block runs, ``logger``'s lines starting with ``prefix`` are logged ``shown`` times.

    For a warning that each of many batches repeats (late trades, day after day of a backfill
    before the stored days), or one the command's own last line repeats (``shown=0``); the
    caller says how many there were (``seen``).
    """
    fold = _Folded(prefix, shown)
    source = logging.getLogger(logger)
    source.addFilter(fold)
    try:
        yield fold
    finally:
        source.removeFilter(fold)


# The non-ASCII characters of the desk's own text (table titles, hints, reasons), spelled in
# ASCII where the output's encoding lacks them; any other character is escaped.
SPELLED_IN_ASCII = {
    "\u2192": "->",
    "\u2026": "...",
    "\u00b7": "-",
    "\u00b1": "+/-",
    "\ufffd": "?",  # what the quarantine stores for a character no database takes
}
UNENCODABLE = "desk_spelled"


def _spell_out(err: UnicodeError) -> tuple[str, int]:
    r"""Codec error handler: SPELLED_IN_ASCII, else the character's escape (``\u20ac``)."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    return "".join(
        SPELLED_IN_ASCII.get(char) or char.encode("ascii", "backslashreplace").decode("ascii")
        for char in err.object[err.start : err.end]
    ), err.end


codecs.register_error(UNENCODABLE, _spell_out)


def write_any_text() -> None:
    """Make stdout and stderr write every character, whatever encoding they were given.

    A latin-1 or cp1252 locale, PYTHONIOENCODING, or a lone surrogate even in UTF-8: a
    character the encoding lacks is spelled out (SPELLED_IN_ASCII, else escaped) instead of
    failing the command with a UnicodeEncodeError. `--json` is ASCII already (``json.dumps``
    escapes the rest). An ASCII stream click writes as UTF-8 (click treats it as a
    misconfigured locale); rich, which reads the encoding, draws its tables in ASCII there.
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=UNENCODABLE)


def utf8_arguments(args: list[str]) -> list[str]:
    """``args`` as the UTF-8 text the desk's ids are, whatever the locale decoded them as.

    Under an ASCII locale (LC_ALL=C without UTF-8 mode) Python keeps every non-ASCII byte of
    the command line as a lone surrogate, which no lookup can match and no database accepts:
    such an argument is decoded again from its bytes, as UTF-8.

    Raises:
        click.UsageError: an argument whose bytes are not UTF-8.
    """
    decoded = []
    for arg in args:
        if not any("\udc80" <= char <= "\udcff" for char in arg):  # surrogate-escaped bytes
            decoded.append(arg)
            continue
        raw = os.fsencode(arg)
        try:
            decoded.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            shown = raw.decode("utf-8", "backslashreplace")
            raise click.UsageError(f"the argument '{shown}' is not UTF-8 text") from None
    return decoded
