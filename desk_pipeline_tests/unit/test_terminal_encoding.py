"""`desk` writes any text to any output encoding and reads its arguments as UTF-8.

A character the output's encoding lacks is spelled out (the desk's own typography) or escaped,
never a UnicodeEncodeError; an argument the locale could not decode is read from its bytes.
"""

import ast
import io
import sys
import unicodedata
from pathlib import Path
from unittest import mock

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

import desk_pipeline
from desk_pipeline.cli import main
from desk_pipeline.cli.group import COMMANDS
from desk_pipeline.cli.terminal import SPELLED_IN_ASCII, utf8_arguments, write_any_text

ENCODINGS = ["ascii", "latin-1", "cp1252", "koi8_r", "utf-8"]
# Every character, lone surrogates (from undecodable file names or arguments) included.
ANY_TEXT = st.text(st.characters(exclude_categories=()))


def spelled_plainly(text: str, encoding: str) -> str:
    """The reference: each character as is, or its ASCII spelling, or its Python escape."""

    def one(char: str) -> str:
        try:
            char.encode(encoding)
            return char
        except UnicodeEncodeError:
            pass
        if char in SPELLED_IN_ASCII:
            return SPELLED_IN_ASCII[char]
        code = ord(char)
        if code < 0x100:
            return f"\\x{code:02x}"
        return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"

    return "".join(one(char) for char in text)


def stream(encoding: str) -> io.TextIOWrapper:
    """A strict output stream in ``encoding``, as Python opens stdout under that locale."""
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors="strict", newline="")


def written(output: io.TextIOWrapper, encoding: str | None = None) -> str:
    """What was written to ``output``, decoded as ``encoding`` (default: the stream's)."""
    output.flush()
    buffer = output.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode(encoding or output.encoding)


@given(text=ANY_TEXT, encoding=st.sampled_from(ENCODINGS))
def test_any_text_reaches_any_output_encoding_spelled_or_escaped(text, encoding):
    stdout, stderr = stream(encoding), stream(encoding)
    with mock.patch.object(sys, "stdout", stdout), mock.patch.object(sys, "stderr", stderr):
        write_any_text()
    for output in (stdout, stderr):
        output.write(text)
        assert written(output) == spelled_plainly(text, encoding)


def test_a_latin_1_output_spells_the_desk_arrow_and_escapes_what_has_no_spelling():
    output = stream("latin-1")
    with (
        mock.patch.object(sys, "stdout", output),
        mock.patch.object(sys, "stderr", stream("ascii")),
    ):
        write_any_text()
    output.write("fx→EUR · RÉPO-1 · JP-国債 …")
    assert written(output) == "fx->EUR · RÉPO-1 · JP-\\u56fd\\u50b5 ..."


def own_characters() -> set[str]:
    """The non-ASCII characters of the package's string literals (docstrings are not output)."""
    found: set[str] = set()
    for path in Path(desk_pipeline.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in docstrings:
                    # Lone surrogates are bounds of range checks, never written.
                    found.update(
                        char
                        for char in node.value
                        if not char.isascii() and unicodedata.category(char) != "Cs"
                    )
    return found


def test_every_non_ascii_character_the_desk_writes_has_an_ascii_spelling():
    # A table title or hint on a latin-1 terminal reads 'fx->EUR', not 'fx\u2192EUR'.
    assert own_characters() <= set(SPELLED_IN_ASCII), own_characters() - set(SPELLED_IN_ASCII)
    assert all(spelling.isascii() for spelling in SPELLED_IN_ASCII.values())


@given(text=st.text())
def test_an_argument_the_c_locale_kept_as_surrogates_is_read_as_the_utf_8_it_was(text):
    # How Python decodes sys.argv under LC_ALL=C without UTF-8 mode.
    as_c_locale = text.encode("utf-8").decode("ascii", "surrogateescape")
    assert utf8_arguments([as_c_locale, "--date"]) == [text, "--date"]


def test_an_argument_that_is_not_utf_8_is_a_usage_error():
    as_c_locale = b"R\xc9PO".decode("ascii", "surrogateescape")
    with pytest.raises(click.UsageError, match=r"the argument 'R\\xc9PO' is not UTF-8 text"):
        utf8_arguments(["positions", "--book", as_c_locale])


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_prints_on_a_strict_output_in_any_encoding(encoding, command):
    stdout, stderr = stream(encoding), stream(encoding)
    argv = ["desk", *([command] if command else []), "--help"]
    with (
        mock.patch.object(sys, "argv", argv),
        mock.patch.object(sys, "stdout", stdout),
        mock.patch.object(sys, "stderr", stderr),
        pytest.raises(SystemExit) as done,
    ):
        main()
    assert done.value.code == 0, written(stderr)
    # Click writes an ASCII stream as UTF-8 (it takes ASCII for a misconfigured locale).
    text = written(stdout, "utf-8" if encoding == "ascii" else None)
    assert text.startswith("Usage: desk") and written(stderr) == ""
