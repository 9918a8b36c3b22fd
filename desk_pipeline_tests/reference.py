"""A plain per-trade reference implementation of the position rules, for property tests.

Deliberately the simplest possible code: one dict per position, one trade at a time, in the
order ARCHITECTURE.md prescribes. Quantities are exact integers of micro-units, converted through
Python's ``decimal`` (not the engine's conversion); prices, averages and P&L are floats computed
with the engine's formulas, so the vectorised engine must agree with it exactly.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from desk_pipeline.domain.precision import QUANTITY_DECIMALS, QUANTITY_SCALE


def micro_units(quantity: float | str | Decimal) -> int:
    """A quantity as an exact number of micro-units, through its shortest decimal form."""
    exact = Decimal(str(quantity)).scaleb(QUANTITY_DECIMALS)
    return int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))


@dataclass
class RefPosition:
    units: int = 0  # micro-units of quantity
    avg_price: float = 0.0
    realized_pnl: float = 0.0

    @property
    def quantity(self) -> float:
        # int / int is correctly rounded: the float nearest to the decimal.
        return self.units / QUANTITY_SCALE

    def apply(self, qty: float | str | Decimal, price: float) -> None:
        units = micro_units(qty)
        if self.units == 0 or (self.units > 0) == (units > 0):
            new = self.units + units
            self.avg_price = (self.units * self.avg_price + units * price) / new
            self.units = new
            return
        closed = min(abs(units), abs(self.units)) / QUANTITY_SCALE
        if self.units > 0:
            self.realized_pnl += (price - self.avg_price) * closed
        else:
            self.realized_pnl += (self.avg_price - price) * closed
        remainder = self.units + units
        if abs(units) < abs(self.units):
            self.units = remainder
        elif abs(units) == abs(self.units):
            self.units, self.avg_price = 0, 0.0
        else:
            self.units, self.avg_price = remainder, price


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
