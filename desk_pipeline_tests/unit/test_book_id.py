"""Book ids given to `desk` and the HTTP API: any text ingest keeps as one, nothing else."""

import unicodedata

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from desk_pipeline.cli import cli
from desk_pipeline.domain.errors import InvalidRangeError
from desk_pipeline.queries import book_id
from desk_pipeline_tests.sizes import examples


def ingest_refuses(text: str) -> bool:
    """The plain rule: blank, over 64 characters or 128 UTF-8 bytes, a control character (C0,
    DEL, C1), line or paragraph separator or unpaired surrogate (anywhere, the ends too), or a
    character that does not show as itself (format, unassigned, private-use, a space other than
    U+0020, a variation selector, a Hangul filler), or not NFC (trades.BOOK_ID)."""
    kept = text.strip()
    return (
        not kept
        or len(kept) > 64
        or len(kept.encode("utf-8", errors="surrogatepass")) > 128
        or any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in text)
        or any(
            unicodedata.category(c) in ("Cf", "Cn", "Co")
            or (unicodedata.category(c) == "Zs" and c != " ")
            or "VARIATION SELECTOR" in unicodedata.name(c, "")
            or "FILLER" in unicodedata.name(c, "")
            or c in "\u034f\u17b4\u17b5\u2800"
            for c in kept
        )
        or unicodedata.normalize("NFC", kept) != kept
    )


HIDDEN = ["Cf", "Zs", "Zl", "Zp", "Cn", "Co", "Mn"]


@given(st.text(st.one_of(st.characters(codec=None), st.characters(categories=HIDDEN)), max_size=70))
@example("A\x00B")
@example("BOOK1\n")
@example("\x1cBOOK1")
@example("\x1f")
@example("REPO-1\x7f")
@example("\ud800")
@example(" ")
@example("x" * 65)
@example("\N{GRINNING FACE}" * 33)
@example("Ünïcode-Book 1")
@example("BOOK\u200b1")
@example("\u202e1KOOB")
@example("BOOK\x851")
@example("BOOK\u20281")
@example("BOOK1\u2029")
@example("BOOK\u00a01")
@example("BOOK\ufe0f1")
@example("BOOK-E\u0301")
@settings(max_examples=examples(200))
def test_a_book_id_is_itself_unless_ingest_would_refuse_it(text):
    if ingest_refuses(text):
        with pytest.raises(InvalidRangeError, match=r"^--book .* is no book id: book_id "):
            book_id(text, "--book")
    else:
        assert book_id(text, "--book") == text


@pytest.mark.parametrize(
    "asked", ["BOOK1\n", "\x1cBOOK1", "BOOK1\t", "\x1f", "BOOK1\x85", "BOOK1\u2028"]
)
def test_a_control_character_at_either_end_is_named_as_such(asked):
    # Ingest strips a cell before its checks, so "\x1f" alone was refused as "empty", and
    # "BOOK1\t" was looked up as asked (404, a name cut by the tab in the message).
    with pytest.raises(InvalidRangeError, match="contains control characters"):
        book_id(asked, "--book")


@pytest.mark.parametrize("command", ["books", "positions", "ranking", "concentration"])
def test_every_book_option_refuses_such_an_id_as_a_usage_error_before_any_warehouse(command):
    # DESK_WAREHOUSE_URL is not read: the usage error comes first, exit 2 and one line.
    args = [command, "--book", "A\x01B"] + ([] if command == "books" else ["--date", "2026-03-02"])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "'A\\x01B' is no book id: book_id contains control characters" in result.output


@pytest.mark.parametrize(
    ("asked", "shown", "named"),
    [("BOOK\u200b1", "'BOOK\\u200b1'", "U+200B"), ("\u202e1KOOB", "'\\u202e1KOOB'", "U+202E")],
)
def test_a_book_option_that_would_show_as_another_book_is_refused_naming_the_hidden_character(
    asked, shown, named
):
    # "BOOK\u200b1" was looked up as a book of its own that every screen shows as BOOK1.
    result = CliRunner().invoke(cli, ["positions", "--book", asked, "--date", "2026-03-02"])
    assert result.exit_code == 2, result.output
    assert f"{shown} is no book id: book_id holds an invisible format character {named}" in (
        result.output
    )
