"""A ranking item's reason in brief: only what a table row does not already show.

An item's ``reason`` (``eligibility.eligibility``) names the book, the instrument, its quantity
and the ranking day, so that it reads alone: in ``--json``, the API, a log. A table row of the
ranking shows those in its own columns and header; there the brief keeps the rest:
``short position``, ``matured 2026-04-28``, ``rating BB below basel_cre22 floor for
corporate_bond``. The patterns below follow the wording of the checks (``eligibility``,
``haircuts._lookup_reasons``, ``marks.stale_price_reason``); a part they do not recognise is
kept whole, so a change of wording can make a row longer, never drop a fact.
"""

import re

# Every code a ranking reason may carry, the deciding ones in the order the checks try them
# (docs/collateral.md), then the stale_price warning.
REASON_CODES = (
    "unknown_instrument",
    "short_position",
    "matured",
    "asset_class_not_accepted",
    "rating_below_floor",
    "not_eligible",
    "no_schedule_cell",
    "no_price",
    "no_fx_rate",
    "stale_price",
)
_DATE = r"\d{4}-\d{2}-\d{2}"
# Parts are joined by "; "; only one followed by a code and its colon starts a part, so a
# schedule's free-text note holding "; " stays in its part.
_PARTS = re.compile("; (?=(?:" + "|".join(REASON_CODES) + "): )")
# Per code: the detail's wording, with the row's own instrument (and book) as named groups,
# and the brief made from the other groups. asset_class_not_accepted and not_eligible name
# nothing the row shows: their detail is their brief.
_BRIEFS = {
    "unknown_instrument": (
        r"(?P<instrument>.+) is not in the instrument reference data",
        "not in the instrument reference data",
    ),
    "short_position": (r"(?P<book>.+) holds -[\d,.]+ of (?P<instrument>.+)", "short position"),
    "matured": (rf"(?P<instrument>.+) matured on (?P<date>{_DATE})", "matured {date}"),
    "asset_class_not_accepted": (r"(?P<detail>.+)", "{detail}"),
    "rating_below_floor": (
        r"(?P<instrument>.+) \((?P<rating>[^()]+)\) is below the (?P<floor>.+ floor for \S+)",
        "rating {rating} below {floor}",
    ),
    "not_eligible": (r"(?P<detail>.+)", "{detail}"),
    "no_schedule_cell": (
        r"no (?P<schedule>.+) cell for (?P<instrument>.+) (?P<terms>\([^()]+\))",
        "no {schedule} cell {terms}",
    ),
    "no_price": (rf"no price for (?P<instrument>.+) on or before {_DATE}", "no price"),
    "no_fx_rate": (rf"no (?P<pair>\S+) rate on or before {_DATE}", "no {pair} rate"),
    "stale_price": (
        rf"last price on (?P<date>{_DATE}), (?P<days>[\d,]+) days before {_DATE}",
        "stale price of {date} ({days} days old)",
    ),
}
_PATTERNS = {
    code: (re.compile(pattern, re.DOTALL), brief) for code, (pattern, brief) in _BRIEFS.items()
}


def reason_code(reason: str | None) -> str | None:
    """The deciding code of a reason (the code starts it); None for an item without one."""
    return None if reason is None else reason.partition(":")[0]


def brief_reason(reason: str | None, book_id: str, instrument_id: str) -> str | None:
    """``reason`` without what a ranking row of ``book_id`` and ``instrument_id`` shows.

    Args:
        reason: a ranking item's ``reason``, ``"; "``-joined ``"<code>: <detail>"`` parts, or
            None.
        book_id: the item's book.
        instrument_id: the item's instrument.

    Returns:
        The parts in brief, in their order, joined by ``"; "``; a part whose wording this
        module does not recognise, or that names another book or instrument, whole. None for
        None.
    """
    if reason is None:
        return None
    return "; ".join(_brief_part(part, book_id, instrument_id) for part in _PARTS.split(reason))


def _brief_part(part: str, book_id: str, instrument_id: str) -> str:
    code, _, detail = part.partition(": ")
    if code not in _PATTERNS:
        return part
    pattern, brief = _PATTERNS[code]
    match = pattern.fullmatch(detail)
    if match is None:
        return part
    groups = match.groupdict()
    own = {"book": book_id, "instrument": instrument_id}
    if any(groups.pop(name, mine) != mine for name, mine in own.items()):
        return part
    return brief.format(**groups)
