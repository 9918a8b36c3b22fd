"""Text output of the `desk` command: its JSON documents as tables that fit 100 columns.

Every renderer takes the document `--json` prints and shows the same facts: numbers with
thousands separators and their unit or currency, shares and haircuts in percent, one dash for
every missing value, and a header naming the book, the day and the snapshot.
"""

import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from desk_pipeline.domain import completeness
from desk_pipeline.domain.collateral.brief import REASON_CODES, brief_reason, reason_code
from desk_pipeline.domain.collateral.lendable import lendable_value
from desk_pipeline.queries import (
    BooksDocument,
    ConcentrationDayDocument,
    ConcentrationDocument,
    DaysDocument,
    PositionsDocument,
    QuarantinedRow,
    RankingDocument,
    RankingItem,
    StatusDocument,
)

# The widest text `desk` prints; a narrower terminal gets its own width.
WIDTH = 100
MISSING = "-"


def render(renderable: RenderableType) -> str:
    """The text of ``renderable``, at most WIDTH columns wide, without trailing blanks.

    Styles (bold headers) only when stdout is a terminal, which then also bounds the width.
    """
    terminal = sys.stdout.isatty()
    width = min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns) if terminal else WIDTH
    console = Console(width=width, highlight=False, force_terminal=terminal, no_color=not terminal)
    with console.capture() as captured:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


def quantity(value: float | None) -> str:
    """A quantity in units (nominal or shares), with up to six decimals when it has them."""
    if value is None:
        return MISSING
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def price(value: float | None) -> str:
    """A price per unit: six significant digits (bond prices are a fraction of par, 0.97)."""
    return MISSING if value is None else f"{value:,.6g}"


def money(value: float | None) -> str:
    """An amount of money in whole currency units, with thousands separators (JSON: exact)."""
    if value is None:
        return MISSING
    # -0.3 rounds to "-0": a sign on nothing reads as a loss.
    return "0" if abs(value) < 0.5 else f"{value:,.0f}"


def percent(value: float | None, decimals: int = 1) -> str:
    """A share or rate 0..1 as a percentage."""
    return MISSING if value is None else f"{value:.{decimals}%}"


def text(value: Any) -> str:
    """A text value, or the dash when missing."""
    return MISSING if value is None or value == "" else str(value)


def instant(value: str | None) -> str:
    """An ISO 8601 instant as ``YYYY-MM-DD HH:MM UTC`` (the snapshot's as-of)."""
    if value is None:
        return MISSING
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


def _table(
    title: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[str]]
) -> RenderableType:
    """A borderless table; ``columns`` are (header, "left"|"right"|"wrap").

    Numbers ("right") and ids ("left") never wrap; free text ("wrap") takes what width is left.
    """
    table = Table(
        box=box.SIMPLE_HEAD,
        # The box's one-space column separator is the only gap: positions --marks needs 93.
        padding=0,
        pad_edge=False,
        expand=False,
    )
    for header, justify in columns:
        table.add_column(
            header,
            justify="right" if justify == "right" else "left",
            no_wrap=justify != "wrap",
            overflow="fold",
        )
    for row in rows:
        table.add_row(*row)
    # The header line runs the full width; a table title would wrap at the table's own width.
    return Group(Text(title, style="bold"), table)


def _footnotes(lines: Sequence[str]) -> list[RenderableType]:
    return [Text(line) for line in lines]


def positions(document: PositionsDocument) -> RenderableType:
    """`desk positions`: one row per open position; with marks, valuation in two currencies."""
    items = document["positions"]
    title = (
        f"End-of-day positions · {document['book_id']} · {document['business_date']} · "
        f"as of {instant(document['as_of'])} · {len(items)} open"
    )
    if not items or "market_value" not in items[0]:
        plain = [
            (
                p["instrument_id"],
                quantity(p["quantity"]),
                price(p["avg_price"]),
                money(p["realized_pnl"]),
            )
            for p in items
        ]
        columns = [
            ("instrument", "left"),
            ("quantity (units)", "right"),
            ("avg price", "right"),
            ("realised P&L", "right"),
        ]
        if not items:
            return _table(title, columns, plain)
        # A book holds instruments of several currencies: the rows are not one currency's.
        legend = (
            "Avg price and realised P&L in each instrument's own currency; --marks adds the "
            "currency, the mark and the values in the book's."
        )
        return Group(_table(title, columns, plain), Text(legend))
    notes = [f"{p['instrument_id']}: {p['reason']}" for p in items if p["reason"]]
    rows = [
        (
            p["instrument_id"],
            text(p["currency"]),
            quantity(p["quantity"]),
            price(p["avg_price"]),
            price(p["price"]) + (f" ({p['price_date']})" if p["stale_price"] else ""),
            price(p["fx_rate"]),
            money(p["market_value"]),
            money(p["unrealized_pnl"]),
            money(p["realized_pnl"]),
        )
        for p in items
    ]
    bases = sorted({p["base_currency"] for p in items if p["base_currency"]})
    columns = [
        ("instrument", "left"),
        ("ccy", "left"),
        ("quantity", "right"),
        ("avg price", "right"),
        ("mark", "right"),
        (f"fx→{bases[0] if len(bases) == 1 else 'base'}", "right"),
        ("market value", "right"),
        ("unrealised", "right"),
        ("realised", "right"),
    ]
    totals = []
    for base in bases:
        own = [p for p in items if p["base_currency"] == base]
        value = sum(p["market_value_base"] or 0.0 for p in own)
        unrealised = sum(p["unrealized_pnl_base"] or 0.0 for p in own)
        totals.append(
            f"In {base}: market value {money(value)}, unrealised P&L {money(unrealised)} "
            "(the book's base currency, at each position's fx rate)."
        )
    dated = sorted({p["price_date"] for p in items if p["price_date"] and not p["stale_price"]})
    legend = (
        f"Amounts in the instrument's currency (ccy), whole units; marks of "
        f"{', '.join(dated) or MISSING}, a stale mark shows its own date."
    )
    return Group(_table(title, columns, rows), *_footnotes([*totals, legend, *notes]))


def ranking(document: RankingDocument, base_currency: str | None = None) -> RenderableType:
    """`desk ranking`: eligible items by lendable value (rank 1 highest), then the ineligible."""
    items = document["items"]
    eligible = [i for i in items if i["eligible"]]
    ineligible = [i for i in items if not i["eligible"]]
    currency = base_currency or "base ccy"
    title = (
        f"Collateral ranking · {document['book_id']} · {document['business_date']} · "
        f"as of {instant(document['as_of'])} · {len(eligible)} eligible"
    )
    rows = [
        (
            text(i["rank"]),
            i["instrument_id"],
            quantity(i["quantity"]),
            price(i["price"]),
            price(i["fx_rate"]),
            percent(i["haircut"]),
            money(i["value"]),
        )
        for i in eligible
    ]
    columns = [
        ("rank", "right"),
        ("instrument", "left"),
        ("quantity", "right"),
        ("price", "right"),
        (f"fx→{currency}", "right"),
        ("haircut", "right"),
        (f"lendable {currency}", "right"),
    ]
    total = sum(i["value"] or 0.0 for i in eligible)
    parts: list[RenderableType] = [
        _table(title, columns, rows),
        *_footnotes(_older_snapshot(document)),
        Text(
            f"Lendable value {money(total)} {currency}: the sum of quantity x price x fx x "
            "(1 - haircut) over the eligible items, in whole units."
        ),
    ]
    if ineligible:
        parts.extend(_ineligible(document["book_id"], ineligible, currency))
    return Group(*parts)


def _ineligible(book_id: str, items: list[RankingItem], currency: str) -> list[RenderableType]:
    """The ineligible items by deciding reason (:data:`_REASON_ORDER`), the largest first.

    An ineligible item lends nothing, so its row shows what it is worth before any haircut
    (the size a trader weighs; the JSON ``value`` applies the haircut the schedule would give)
    and its reason in brief: the book, instrument, quantity and day are on the row already.
    """
    valued = sorted(
        ((i, _market_value(i)) for i in items),
        key=lambda pair: (
            _code_order(pair[0]["reason"]),
            pair[1] is None,
            -abs(pair[1] or 0.0),
            pair[0]["instrument_id"],
        ),
    )
    rows = [
        (
            i["instrument_id"],
            quantity(i["quantity"]),
            price(i["price"]),
            price(i["fx_rate"]),
            money(worth),
            text(brief_reason(i["reason"], book_id, i["instrument_id"])),
        )
        for i, worth in valued
    ]
    columns = [
        ("instrument", "left"),
        ("quantity", "right"),
        ("price", "right"),
        (f"fx→{currency}", "right"),
        (f"market {currency}", "right"),
        ("reason", "wrap"),
    ]
    codes = Counter(reason_code(i["reason"]) for i, _ in valued)
    title = f"Not eligible · {len(items)} · " + ", ".join(
        f"{_words(code)} {count:,}" for code, count in codes.items()
    )
    legend = (
        f"Market value in {currency} = quantity x price x fx, before haircut: an ineligible "
        "item lends nothing. Reasons in brief; --json gives each in full."
    )
    return [_table(title, columns, rows), Text(legend)]


def _market_value(item: RankingItem) -> float | None:
    """The market value in base currency, None without price or rate.

    The lendable value before any haircut: the domain's rule (lendable.lendable_value).
    """
    if item["price"] is None or item["fx_rate"] is None:
        return None
    return lendable_value(item["quantity"], item["price"], item["fx_rate"], 0.0)


# Ineligible items by deciding reason, in the checks' order, but short positions last: a short
# is no inventory to pledge, while a long holding that cannot be pledged (matured, below the
# floor, unpriced) is what a trader acts on. A code this desk does not know comes after them.
_REASON_ORDER = (*(c for c in REASON_CODES if c != "short_position"), "short_position")


def _code_order(reason: str | None) -> int:
    code = reason_code(reason)
    return _REASON_ORDER.index(code) if code in _REASON_ORDER else len(_REASON_ORDER)


def _words(code: str | None) -> str:
    return MISSING if code is None else code.replace("_", " ")


def concentration(
    document: ConcentrationDocument, base_currency: str | None = None
) -> RenderableType:
    """`desk concentration`: each issuer's share of eligible lendable value, against the limit."""
    limit = document["limit"]
    currency = base_currency or "base ccy"
    title = (
        f"Issuer concentration · {document['book_id']} · {document['business_date']} · "
        f"as of {instant(document['as_of'])} · limit {percent(limit)}"
    )
    rows = [
        (
            text(i["issuer"]),
            money(i["value"]),
            percent(i["share"]),
            "over the limit" if i["over_limit"] else "",
        )
        for i in document["issuers"]
    ]
    columns = [
        ("issuer", "left"),
        (f"lendable {currency}", "right"),
        ("share", "right"),
        ("", "left"),
    ]
    over = sum(i["over_limit"] for i in document["issuers"])
    summary = (
        f"{len(rows)} issuers, {over} over the limit of {percent(limit)} "
        "(DESK_ISSUER_CONCENTRATION_LIMIT)."
    )
    return Group(
        _table(title, columns, rows), *_footnotes(_older_snapshot(document)), Text(summary)
    )


def _older_snapshot(document: RankingDocument | ConcentrationDocument) -> list[str]:
    """Under a ranked table: that its ranking is of an older EOD snapshot, and the fix; or nothing.

    ``as_of`` is the snapshot ranked, ``eod_as_of`` the current EOD's (queries.RankedFrom).
    """
    fix = document["incomplete_fix"]
    if document["current"] or fix is None:
        return []
    ranked, current = instant(document["as_of"]), instant(document["eod_as_of"])
    # Two lines within WIDTH; "changed since" also covers a restatement, which keeps the as-of.
    return [
        f"Ranked from an older snapshot (as of {ranked}); current EOD as of {current}.",
        f"The EOD changed since: {_completes(fix, 1)}.",
    ]


def concentration_day(
    document: ConcentrationDayDocument, currencies: Mapping[str, str]
) -> RenderableType:
    """`desk concentration --date D`: per book, its issuers over the limit, else its largest.

    Books holding an issuer over the limit come first, then the others, each by its largest
    share: one table says which books breach the limit and how close the others come.
    ``currencies`` maps a book to its base currency, the unit of its values.
    """
    limit = document["limit"]

    def top_share(book: ConcentrationDocument) -> tuple[bool, bool, float, str]:
        issuers = book["issuers"]
        share = issuers[0]["share"] if issuers else None
        over = any(i["over_limit"] for i in issuers)
        return (not over, share is None, -(share or 0.0), book["book_id"])

    rows: list[tuple[str, ...]] = []
    breaching = 0
    for book in sorted(document["books"], key=top_share):
        over = [i for i in book["issuers"] if i["over_limit"]]
        breaching += bool(over)
        unit = f" {currencies[book['book_id']]}" if book["book_id"] in currencies else ""
        rows.extend(
            (
                book["book_id"],
                text(i["issuer"]),
                money(i["value"]) + unit,
                percent(i["share"]),
                "over the limit" if i["over_limit"] else "",
            )
            for i in over or book["issuers"][:1]
        )
        if not book["issuers"]:
            rows.append((book["book_id"], "no eligible collateral", MISSING, MISSING, ""))
    books = len(document["books"])
    title = (
        f"Issuer concentration · {document['business_date']} · {books} "
        f"book{'' if books == 1 else 's'} · limit {percent(limit)}"
    )
    columns = [
        ("book", "left"),
        ("issuer", "wrap"),
        ("lendable", "right"),
        ("share", "right"),
        ("", "left"),
    ]
    notes = [
        f"Books holding an issuer over the limit of {percent(limit)} "
        f"(DESK_ISSUER_CONCENTRATION_LIMIT): {breaching} of {books}.",
        "Per book: each issuer over the limit, or else its largest issuer.",
        "All of a book's issuers: desk concentration --book B --date D.",
    ]
    if document["unranked_books"]:
        day = document["business_date"]
        notes.append(
            f"Not ranked yet: {', '.join(document['unranked_books'])}; "
            f"desk backfill --start {day} --end {day} ranks them."
        )
    older = [(b["book_id"], b["incomplete_fix"]) for b in document["books"] if not b["current"]]
    fixes = sorted({fix for _, fix in older if fix})
    if fixes:
        notes += [
            "Ranked from an older snapshot than their current EOD: "
            f"{_some([book for book, _ in older])}.",
            f"Their EODs changed since: {_completes(fixes[0], 1)}.",
        ]
    return Group(_table(title, columns, rows), *_footnotes(notes))


def quarantine(document: list[QuarantinedRow]) -> RenderableType:
    """`desk quarantine`: every distinct rejected input with where it arrived and its reason."""
    rows = [
        (
            text(q["source"]) + _also(q["sources"]),
            text(q["row_number"]),
            text(q["trade_id"]),
            text(q["reason"]),
        )
        for q in document
    ]
    if not rows:
        return Text("Quarantine: empty, every input row received was accepted.")
    columns = [("source", "wrap"), ("row", "right"), ("trade id", "left"), ("reason", "wrap")]
    return _table(f"Quarantine · {len(rows)} rejected input rows", columns, rows)


def _also(sources: list[str]) -> str:
    # The first arrival is the row's source; later copies are counted, `--json` lists them.
    later = len(sources) - 1
    return f" (+{later} more)" if later > 0 else ""


def status(document: StatusDocument) -> RenderableType:
    """`desk status`: per book, latest EOD, stale days, quarantined rows and pending events."""
    rows = [
        (
            b["book_id"],
            text(b["latest_eod"]),
            instant(b["latest_as_of"]),
            text(", ".join(b["stale_days"])),
            f"{b['quarantined']:,}",
            f"{b['events_pending']:,}",
        )
        for b in document["books"]
    ]
    columns = [
        ("book", "left"),
        ("latest EOD", "left"),
        ("as of", "left"),
        ("stale days", "wrap"),
        ("quarantined", "right"),
        ("events pending", "right"),
    ]
    summary = (
        f"quarantined {document['quarantined_total']:,} "
        f"({document['quarantined_unattributed']:,} unattributed), "
        f"events pending {document['events_pending_total']:,}"
        f" (parked {document['events_parked_total']:,})"
        + "".join(
            f"\nparked {e['event_id']} of {e['book_id']} {e['business_date']}: {e['reason']}"
            for e in document["parked_events"]
        )
    )
    if not rows:
        return Text(f"no books yet\n{summary}")
    return Group(
        _table(f"Desk status · {len(rows)} books", columns, rows),
        Text(summary),
        *_footnotes(_incomplete(document)),
    )


# The days `desk status` lists, and the books named on a line (within 100 columns for the
# demo's ids); --json lists every one.
SHOWN_DAYS = 10
SHOWN_BOOKS = 2
_PRODUCT_STATE = {completeness.MISSING: "missing", completeness.OLDER: "of an older snapshot"}


def _incomplete(document: StatusDocument) -> list[str]:
    """The days whose stored EODs lack their valuation or ranking, and the command for them."""
    days = document["incomplete_days"]
    if not days:
        return ["every stored EOD has its valuation and ranking"]
    by_day: dict[str, dict[str, list[str]]] = {}
    for eod in document["incomplete_eods"]:
        lacks = by_day.setdefault(eod["business_date"], {})
        lacks.setdefault(_lacking(eod["valuation"], eod["ranking"]), []).append(eod["book_id"])
    lines = [
        f"incomplete: {len(days)} day(s) whose EOD's valuation or ranking is missing or older "
        "than the EOD"
    ]
    for day in days[:SHOWN_DAYS]:
        lines += [f"  {day} {what}: {_some(books)}" for what, books in by_day[day].items()]
    if len(days) > SHOWN_DAYS:
        lines.append(f"  and {len(days) - SHOWN_DAYS} more day(s): `desk status --json` lists each")
    if document["incomplete_fix"]:
        lines.append(_completes(document["incomplete_fix"], len(days)))
    return lines


def _completes(fix: str, days: int) -> str:
    """The advice for ``days`` incomplete days: the quoted ``fix`` "completes it" (or them)."""
    return f"`{fix}` completes {'it' if days == 1 else 'them'}"


def _lacking(valuation: str, ranking: str) -> str:
    """``valuation missing``, ``ranking of an older snapshot``, ``valuation and ranking ...``."""
    behind = {
        product: _PRODUCT_STATE[state]
        for product, state in (("valuation", valuation), ("ranking", ranking))
        if state in _PRODUCT_STATE
    }
    if len(set(behind.values())) == 1:
        return f"{' and '.join(behind)} {next(iter(behind.values()))}"
    return ", ".join(f"{product} {state}" for product, state in behind.items())


def _some(books: list[str]) -> str:
    """Up to SHOWN_BOOKS book ids, then how many more."""
    shown = ", ".join(books[:SHOWN_BOOKS])
    rest = len(books) - SHOWN_BOOKS
    return f"{shown} and {rest} more" if rest > 0 else shown


def books(document: BooksDocument) -> RenderableType:
    """`desk books`: each book with stored EODs, its number of days, first and latest day."""
    rows = [
        (b["book_id"], f"{b['days']:,}", b["first_eod"], b["latest_eod"]) for b in document["books"]
    ]
    if not rows:
        return Text("No book has a stored EOD yet: `desk backfill --start … --end …` stores some.")
    columns = [("book", "left"), ("days", "right"), ("first", "left"), ("latest", "left")]
    return Group(
        _table(f"Books with end-of-day positions · {len(rows)}", columns, rows),
        Text(
            "One book's days: `desk books --book B`; one day: `desk positions --book B --date D`."
        ),
    )


def days(document: DaysDocument) -> RenderableType:
    """`desk books --book B`: the book's stored days, their as-of and staleness."""
    rows = [
        (
            d["business_date"],
            instant(d["as_of"]),
            "stale: awaiting restatement" if d["stale"] else "",
        )
        for d in document["days"]
    ]
    columns = [("business date", "left"), ("EOD as of", "left"), ("", "left")]
    return _table(f"Stored days · {document['book_id']} · {len(rows)}", columns, rows)
