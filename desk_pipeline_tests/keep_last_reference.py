"""A plain per-snapshot reference of the keep-last rule, for property tests.

Deliberately the simplest possible code: one comparison per book-day, written from
ARCHITECTURE.md ("Keep the last snapshot of each day"), so that the vectorised
``domain.positions.snapshots.keep_last`` and the warehouse that applies it must agree with it.
"""

from typing import Any

from desk_pipeline.domain.positions.snapshots import EMPTY_DIGEST


def supersedes(new_as_of: Any, new_computed_at: Any, old_as_of: Any, old_computed_at: Any) -> bool:
    """Whether a snapshot replaces (or, with identical content, confirms) the stored one.

    A later ``as_of`` wins; for the same ``as_of`` a later computation wins (a restatement).
    An older snapshot never overwrites a newer one, whatever order runs finish in.
    """
    return new_as_of > old_as_of or (new_as_of == old_as_of and new_computed_at > old_computed_at)


def keep_last_rows(
    candidates: list[dict[str, Any]],
    stored: list[dict[str, Any]],
    recomputed_days: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """``keep_last`` one row at a time: the winners with ``empty``, ``changed``, ``restatement``.

    Rows are dicts of ``book_id``, ``business_date``, ``as_of_us``, ``computed_at_us`` and
    ``content_digest``; ``recomputed_days`` rows have ``business_date``, ``as_of_us`` and
    ``computed_at_us``. The winners are sorted by (book_id, business_date).
    """
    by_key = {(s["book_id"], s["business_date"]): s for s in stored}
    proposed = [{**c, "empty": False} for c in candidates]
    offered = {(c["book_id"], c["business_date"]) for c in candidates}
    days = {}
    for day in recomputed_days:
        days.setdefault(day["business_date"], day)
    for book, date in by_key:
        if date in days and (book, date) not in offered:
            day = days[date]
            proposed.append(
                {
                    "book_id": book,
                    "business_date": date,
                    "as_of_us": day["as_of_us"],
                    "computed_at_us": day["computed_at_us"],
                    "content_digest": EMPTY_DIGEST,
                    "empty": True,
                }
            )
    winners = []
    for row in proposed:
        old = by_key.get((row["book_id"], row["business_date"]))
        if old is None:
            winners.append({**row, "changed": True, "restatement": False})
            continue
        if not supersedes(
            row["as_of_us"], row["computed_at_us"], old["as_of_us"], old["computed_at_us"]
        ):
            continue
        same_as_of = row["as_of_us"] == old["as_of_us"]
        changed = not same_as_of or row["content_digest"] != old["content_digest"]
        winners.append({**row, "changed": changed, "restatement": same_as_of and changed})
    return sorted(winners, key=lambda w: (w["book_id"], w["business_date"]))
