"""A plain per-trade reference implementation of the position rules, for property tests.

Deliberately the simplest possible code: one dict per position, one trade at a time, in the
order ARCHITECTURE.md prescribes. The vectorised engine must agree with it exactly.
"""

from dataclasses import dataclass


@dataclass
class RefPosition:
    quantity: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0

    def apply(self, qty: float, price: float) -> None:
        if self.quantity == 0 or (self.quantity > 0) == (qty > 0):
            new = self.quantity + qty
            self.avg_price = (self.quantity * self.avg_price + qty * price) / new
            self.quantity = new
            return
        closed = min(abs(qty), abs(self.quantity))
        if self.quantity > 0:
            self.realized_pnl += (price - self.avg_price) * closed
        else:
            self.realized_pnl += (self.avg_price - price) * closed
        remainder = self.quantity + qty
        if abs(qty) < abs(self.quantity):
            self.quantity = remainder
        elif abs(qty) == abs(self.quantity):
            self.quantity, self.avg_price = 0.0, 0.0
        else:
            self.quantity, self.avg_price = remainder, price


def reference_positions(trade_versions: list[dict], as_of) -> dict[tuple[str, str], RefPosition]:
    """Positions as of ``as_of`` from every version of every trade (dicts of trade columns)."""
    latest: dict[str, dict] = {}
    for t in trade_versions:
        if t["trade_id"] not in latest or t["version"] > latest[t["trade_id"]]["version"]:
            latest[t["trade_id"]] = t
    live = [t for t in latest.values() if t["status"] != "CANCEL" and t["trade_time"] < as_of]
    book: dict[tuple[str, str], RefPosition] = {}
    for t in sorted(live, key=lambda t: (t["trade_time"], t["trade_id"])):
        book.setdefault((t["book_id"], t["instrument_id"]), RefPosition()).apply(
            t["quantity"], t["price"]
        )
    return book
