"""Numeric precision of the desk: exact quantities, bounded prices, one rounding rule for output.

Quantities are fixed-point decimals: a quantity is an integer number of units of
``10**-QUANTITY_DECIMALS`` (micro-units), so trades whose quantities sum to zero in decimal leave
a position exactly flat. Positions are exact in micro-units: the engine adds micro-units, its
frames carry each position's ``quantity_micro_units`` (int64) and the warehouse stores those
integers, so a position rolled from a stored checkpoint equals its recomputation. Trades and what
people read carry a quantity as the float64 nearest to its decimal (``from_units``), converted
back exactly by ``to_units``. Prices, averages and P&L are binary floats; what the desk prints
is rounded by :func:`for_output`, the one rounding rule.
"""

import numpy as np
import numpy.typing as npt

# A quantity has at most this many decimal places; a finer one is quarantined.
QUANTITY_DECIMALS = 6
QUANTITY_SCALE = 10**QUANTITY_DECIMALS
# Largest |quantity| of one trade, in units (nominal or shares).
MAX_ABS_QUANTITY = 1e9
# Largest |micro-units| of a position the desk holds exactly: the engine keeps micro-units in
# float64, whose integers are exact up to 2**53 (the warehouse's BIGINT holds more). Beyond it
# sums round to the float's spacing (2 micro-units up to 2**54, ...): a JPY book's nominal can pass
# it, and one book's position must not stop every book's end of day.
MAX_POSITION_MICRO_UNITS = 2**53
# The same bound in units: about 9.007e9.
MAX_EXACT_POSITION = MAX_POSITION_MICRO_UNITS / QUANTITY_SCALE
# Below this |quantity| (units) the float64 nearest to a decimal tells its micro-units apart
# (its spacing, at most 2**-20, is under a micro-unit), so ``to_units(from_units(u)) == u``.
# Above it, up to MAX_EXACT_POSITION, the float people read is the nearest to the position
# within a micro-unit, while the stored micro-units stay exact. Trades (MAX_ABS_QUANTITY) are
# far below it.
MAX_FLOAT_EXACT_QUANTITY = 2**33
# Below 2**32 units (here in micro-units) ``x * 10**6`` rounds to the right micro-units: the
# float's error (under 0.24 micro-units) and the product's rounding (0.25) stay under half a
# micro-unit. Between it and MAX_FLOAT_EXACT_QUANTITY they can pass half (4456946523.790561
# came back one micro-unit low), and to_units picks the neighbour that converts back.
_DIRECT_ROUNDING_UNITS = 2**32 * QUANTITY_SCALE
# Prices are per unit of quantity, in the instrument's currency: 0 < price <= MAX_PRICE.
MAX_PRICE = 1e9
# Significant digits of every number the desk prints (see for_output).
OUTPUT_SIGNIFICANT_DIGITS = 12


def to_units(quantities: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Quantities (units, float) as micro-units: integer-valued float64, rounded half to even.

    Integer-valued float64 rather than int64: sums stay exact below 2**53 micro-units
    (``MAX_POSITION_MICRO_UNITS``), and the position engine keeps a key's whole state in one
    float64 row. The float nearest to a decimal converts back to that decimal's micro-units
    exactly below ``MAX_FLOAT_EXACT_QUANTITY``, and to micro-units that convert back to the same
    float above it. Rounding (not truncation) removes float dust from quantities computed
    elsewhere: 0.1 + 0.2 - 0.3 is 0 micro-units. ``-0`` becomes ``+0``.

    Args:
        quantities: quantities in units (scalar, list, array or Series); NaN stays NaN.

    Returns:
        A float64 array of the same shape.
    """
    source = np.asarray(quantities, dtype=np.float64)
    # In place on the one new array: a million quantities are converted on every engine call.
    units = np.empty_like(source)
    np.multiply(source, QUANTITY_SCALE, out=units)
    np.rint(units, out=units)
    units += 0.0
    # Two reductions tell that no quantity needs its neighbours tried (trades never do); NaN
    # fails the comparisons and leads to the mask, where it stays as it is.
    limit = _DIRECT_ROUNDING_UNITS
    if units.size and not (units.max() < limit and -units.min() < limit):
        large = np.abs(units) >= limit
        units[large] = _converting_back(units[large], source[large])
    return units


def _converting_back(
    units: npt.NDArray[np.float64], quantities: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``units``, or the neighbour of each that :func:`from_units` turns back into its quantity.

    ``units`` is the rounded product of ``quantities`` and 10**6, at most one micro-unit from
    the decimal a quantity is the nearest float of (below ``MAX_FLOAT_EXACT_QUANTITY``).
    """
    for step in (-1.0, 1.0):
        neighbour = units + step
        takes = (from_units(units) != quantities) & (from_units(neighbour) == quantities)
        units = np.where(takes, neighbour, units)
    return units


def from_units(units: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Micro-units back to quantities: the float64 nearest to each decimal (one exact division).

    Args:
        units: integer-valued micro-units (float or int), e.g. from :func:`to_units`.

    Returns:
        A float64 array of the same shape; ``to_units(from_units(u)) == u`` for every
        ``|u| < MAX_FLOAT_EXACT_QUANTITY * QUANTITY_SCALE``.
    """
    return np.asarray(units, dtype=np.float64) / QUANTITY_SCALE


def exact_quantities(quantities: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Quantities put back on the micro-unit grid: ``from_units(to_units(quantities))``.

    The identity for what the engine writes; a quantity from elsewhere (an older snapshot, a
    sum of floats) loses its float dust, so a dust-only position reads as flat.
    """
    return from_units(to_units(quantities))


def for_output(value: float) -> float:
    """The one rounding rule for prices, rates, averages, P&L and values that people read.

    Rounds to ``OUTPUT_SIGNIFICANT_DIGITS`` (12) significant digits. A float64 holds 15 to 17
    significant digits and each operation of the engine, valuation or ranking adds at most half a
    unit in the last place; the noise of a handful of operations (14.999999999998348 for 15,
    99.99999999999999 for 100) sits in digits 13 to 17 and is dropped, with three digits of
    margin. Twelve digits still resolve a cent on 9,999,999,999.99 and are more than any input
    carries (prices and FX rates come with at most about ten). Relative rather than a fixed
    number of decimals, because the same rule serves haircuts (0.0282842712475), FX rates and
    money amounts of any size. Quantities are not rounded: they are exact decimals already
    (:func:`exact_quantities`). NaN and infinities are returned unchanged.

    Only for presentation (CLI/API documents, asset metadata): stored values keep full
    precision, so an incremental computation from a stored state equals a recomputation.
    """
    # Decimal formatting rounds the binary value exactly (half to even); scaling by 10**k would
    # round twice.
    return float(f"{float(value):.{OUTPUT_SIGNIFICANT_DIGITS}g}")
