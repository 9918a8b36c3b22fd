"""`desk` on a terminal or pipe whose encoding lacks characters it prints, and its log noise.

Every read keeps its exit code and its answer under an ASCII or latin-1 output (a C locale,
PYTHONIOENCODING): characters the encoding lacks are spelled out or escaped, never a
UnicodeEncodeError; `--json` parses to the same document. The long-running commands keep
Alembic's INFO lines to --verbose.
"""

import dataclasses
import json
import subprocess
import urllib.parse
import urllib.request

import pandas as pd
import pytest

from desk_pipeline.cli.terminal import UNENCODABLE
from desk_pipeline_tests.broker import free_port
from desk_pipeline_tests.builders import trade, write_landing_file, write_reference_files
from desk_pipeline_tests.e2e import driver
from desk_pipeline_tests.e2e.checkout import user_environment

DAYS = ["2026-03-02", "2026-03-03"]
# Ids, names and issuers as a desk abroad writes them: latin-1 letters, an arrow, CJK.
BOOK = "RÉPO→1"
BUND, JGB = "DE-BUND→2031", "JP-国債-10"
ENCODINGS = {
    "PYTHONIOENCODING=ascii": {"PYTHONIOENCODING": "ascii"},
    "PYTHONIOENCODING=latin-1": {"PYTHONIOENCODING": "latin-1"},
    # stderr too: without errors in PYTHONIOENCODING, Python's stderr backslash-escapes.
    "PYTHONIOENCODING=latin-1:strict": {"PYTHONIOENCODING": "latin-1:strict"},
    "LC_ALL=C": {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"},
}
LOCALE = ("PYTHONIOENCODING", "PYTHONUTF8", "LC_ALL", "LC_CTYPE", "LANG")
READS = {
    "ranking": ["ranking", "--book", BOOK, "--date", DAYS[1]],
    "positions --marks": ["positions", "--book", BOOK, "--date", DAYS[1], "--marks"],
    "concentration": ["concentration", "--book", BOOK, "--date", DAYS[1]],
    "quarantine": ["quarantine"],
    "books --book": ["books", "--book", BOOK],
    "status": ["status"],
    "no such day": ["positions", "--book", f"{BOOK}…", "--date", DAYS[1]],
    "bad date": ["ranking", "--book", BOOK, "--date", "2026-03-0→"],
    "relay --once": ["relay", "--once"],
    "help": ["ranking", "--help"],
}
JSON_READS = ["ranking", "positions --marks", "concentration", "quarantine", "status"]
# Every read under the strictest encoding (latin-1 lacks the arrow, CJK and the middle dot; strict
# on stderr too), two under each of the others: the writer is one handler at desk's entry, which
# test_terminal_encoding checks character by character, so the whole product of reads and
# encodings would cost a minute of CI and test nothing more.
STRICTEST = "PYTHONIOENCODING=latin-1:strict"
CASES = [(STRICTEST, read) for read in READS] + [
    (encoding, read)
    for encoding in ENCODINGS
    if encoding != STRICTEST
    for read in ("ranking", "bad date")
]
JSON_CASES = [(STRICTEST, read) for read in JSON_READS] + [
    (encoding, "ranking") for encoding in ENCODINGS if encoding != STRICTEST
]


@dataclasses.dataclass(frozen=True)
class Output:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def desk_abroad(tmp_path_factory) -> dict[str, str]:
    """A book of non-ASCII ids over two days, and rejected rows whose reasons quote them."""
    tmp = tmp_path_factory.mktemp("encodings")
    landing = tmp / "landing"
    nine = pd.Timestamp(f"{DAYS[0]} 09:00Z")
    rows = [
        trade("T-1", 1_000_000, 0.98, book=BOOK, instrument=BUND, at=nine),
        trade("T-2", 500_000, 1.01, book=BOOK, instrument=JGB, at=nine),
        {**trade("T-3→", 10, 1.0, book=BOOK, instrument=BUND, at=nine), "quantity": "viel±"},
        {**trade("T-4", 10, 1.0, book=BOOK, instrument=JGB, at=nine), "trade_time": "→ heute"},
    ]
    write_landing_file(landing, "trades.csv", rows)
    write_reference_files(
        landing,
        instruments=[
            f"{BUND},Bund 2031,government_bond,sovereign,Bundesrepublik Deutschland,AAA,"
            "2031-02-15,EUR",
            f"{JGB},JGB 10年,government_bond,sovereign,日本国,A,2035-03-20,JPY",
        ],
        prices=[f"{BUND},{DAYS[1]},0.99", f"{JGB},{DAYS[1]},1.02"],
        books=[f"{BOOK},EUR,5"],
        fx_rates=[f"EUR,{DAYS[1]},1.08", f"JPY,{DAYS[1]},0.0067"],
    )
    env = {k: v for k, v in user_environment().items() if k not in LOCALE}
    env.update(
        DAGSTER_HOME=str(tmp / "home"),
        DESK_START_DATE="2026-03-01",
        DESK_TRADE_SOURCE=f"landing:{landing}",
        DESK_WAREHOUSE_URL=f"sqlite:///{tmp}/warehouse.db",
        LANG="C.UTF-8",
    )
    driver.run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[-1])
    return env


def desk(env: dict[str, str], *args: str) -> Output:
    """Run `desk ARGS`; its output decoded as what it wrote: the stream's encoding, or UTF-8.

    Click writes UTF-8 on an ASCII stream (it takes that for a misconfigured locale).
    """
    result = subprocess.run([driver.DESK, *args], env=env, capture_output=True, timeout=300)
    encoding = "latin-1" if "latin-1" in env.get("PYTHONIOENCODING", "") else "utf-8"
    return Output(result.returncode, result.stdout.decode(encoding), result.stderr.decode(encoding))


def shown(text: str, env: dict[str, str]) -> str:
    """``text`` as `desk` writes it under ``env``: spelled out where latin-1 lacks a character."""
    if "latin-1" not in env.get("PYTHONIOENCODING", ""):
        return text
    return text.encode("latin-1", UNENCODABLE).decode("latin-1")


def assert_no_encoding_failure(output: Output) -> None:
    for failure in ("UnicodeEncodeError", "Traceback", "Logging error"):
        assert failure not in output.stderr + output.stdout, output.stderr


def test_the_ranking_prints_on_a_latin_1_terminal(desk_abroad):
    # It exited 1 with 'desk: UnicodeEncodeError: 'latin-1' codec can't encode character
    # '\u2192'' (the fx→EUR column), nothing on stdout.
    env = {**desk_abroad, "PYTHONIOENCODING": "latin-1"}
    ranking = desk(env, "ranking", "--book", BOOK, "--date", DAYS[1])
    assert (ranking.code, ranking.stderr) == (0, "")
    assert ranking.stdout.startswith("Collateral ranking · RÉPO->1 · 2026-03-03 · as of")
    assert "fx->EUR" in ranking.stdout
    assert "JP-\\u56fd\\u50b5-10" in ranking.stdout  # escaped: latin-1 has no CJK


@pytest.fixture(scope="module")
def answers(desk_abroad) -> dict[str, Output]:
    """Each read's output on a UTF-8 terminal: the exit code and facts every encoding keeps."""
    return {name: desk(desk_abroad, *args) for name, args in READS.items()}


@pytest.mark.parametrize(("encoding", "read"), CASES)
def test_every_read_keeps_its_exit_code_and_answer_whatever_the_output_encoding(
    desk_abroad, answers, encoding, read
):
    env = {**desk_abroad, **ENCODINGS[encoding]}
    output = desk(env, *READS[read])
    expected = answers[read]
    assert_no_encoding_failure(output)
    assert output.code == expected.code, output.stderr
    if expected.stdout:
        for fact in (BOOK, BUND, JGB, "Bundesrepublik Deutschland", "日本国", "viel±"):
            if fact in expected.stdout:
                assert shown(fact, env) in output.stdout, output.stdout
    else:
        assert output.stdout == ""
        assert shown(expected.stderr, env) == output.stderr


@pytest.fixture(scope="module")
def documents(desk_abroad) -> dict[str, object]:
    """Each read's `--json` document on a UTF-8 terminal."""
    return {
        read: json.loads(desk(desk_abroad, *READS[read], "--json").stdout) for read in JSON_READS
    }


@pytest.mark.parametrize(("encoding", "read"), JSON_CASES)
def test_json_parses_to_the_same_document_whatever_the_output_encoding(
    desk_abroad, documents, encoding, read
):
    output = desk({**desk_abroad, **ENCODINGS[encoding]}, *READS[read], "--json")
    assert json.loads(output.stdout) == documents[read]
    assert not json.dumps(documents[read], ensure_ascii=False).isascii()  # the test has a point


def test_a_non_ascii_argument_under_the_c_locale_is_read_as_utf_8(desk_abroad):
    # Python keeps each non-ASCII byte of the command line as a lone surrogate under LC_ALL=C;
    # the book was not found (exit 1) or the database refused the surrogates.
    env = {**desk_abroad, **ENCODINGS["LC_ALL=C"]}
    output = desk(env, "positions", "--book", BOOK, "--date", DAYS[1], "--json")
    assert output.code == 0, output.stderr
    assert json.loads(output.stdout)["book_id"] == BOOK


def test_an_argument_that_is_not_utf_8_is_a_usage_error(desk_abroad):
    result = subprocess.run(
        [driver.DESK, "positions", "--book", b"R\xc9PO", "--date", DAYS[1]],
        env=desk_abroad,
        capture_output=True,
        timeout=300,
    )
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode() == (
        "desk: the argument 'R\\xc9PO' is not UTF-8 text (see `desk --help`)\n"
    )


ALEMBIC = ("Context impl", "Will assume", "alembic")


def test_relay_keeps_alembic_to_verbose(desk_abroad):
    quiet = desk(desk_abroad, "relay", "--once")
    assert quiet.code == 0 and not any(line in quiet.stderr for line in ALEMBIC), quiet.stderr
    for flag in ("-v", "--debug"):
        told = desk(desk_abroad, flag, "relay", "--once")
        assert told.code == 0 and "INFO Context impl SQLiteImpl." in told.stderr, told.stderr


def test_consume_keeps_alembic_to_verbose(desk_abroad):
    # Nothing listens on the port: consume opens the warehouse, then fails on the broker.
    closed = f"rabbitmq:amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    drain = ("consume", "--source", closed, "--queue", "q.none", "--idle-exit", "1")
    quiet = desk(desk_abroad, *drain)
    assert quiet.code == 1 and quiet.stderr.strip().splitlines()[-1].startswith("desk: consumer")
    assert not any(line in quiet.stderr for line in ALEMBIC), quiet.stderr
    told = desk(desk_abroad, "-v", *drain)
    assert "INFO Context impl SQLiteImpl." in told.stderr, told.stderr


@pytest.mark.slow  # a real web server
def test_serve_keeps_alembic_to_verbose(desk_abroad, tmp_path):
    base = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "serve.log"
    url = f"{base}/books/{urllib.parse.quote(BOOK)}/ranking/{DAYS[1]}"
    with driver.desk_running(desk_abroad, log, "serve", "--port", base.rsplit(":", 1)[1]):
        ranking = driver.wait_until(
            "a ranking over HTTP", 120, lambda: urllib.request.urlopen(url, timeout=30).read()
        )
    assert json.loads(ranking)["book_id"] == BOOK
    text = log.read_text()
    assert "Uvicorn running" in text and "GET /books/" in text
    assert not any(line in text for line in ALEMBIC), text
