"""Numeric precision of the desk: exact quantities, bounded prices, one rounding rule for output.

Quantities are fixed-point decimals: a quantity is an integer number of units of
``10**-QUANTITY_DECIMALS`` (micro-units), so trades whose quantities sum to zero in decimal leave
a position exactly flat. Frames and the warehouse carry a quantity as the float64 nearest to its
decimal (``from_units``); arithmetic on quantities converts to micro-units first (``to_units``),
where it is integer arithmetic. Prices, averages and P&L are binary floats; what the desk prints
is rounded by :func:`for_output`, the one rounding rule.
"""

import numpy as np
import numpy.typing as npt

# A quantity has at most this many decimal places; a finer one is quarantined.
QUANTITY_DECIMALS = 6
QUANTITY_SCALE = 10**QUANTITY_DECIMALS
# Largest |quantity| of one trade, in units (nominal or shares). Micro-units of positions up to
# 2**53 / QUANTITY_SCALE (about 9.0e9 units) add exactly in float64.
MAX_ABS_QUANTITY = 1e9
# Largest |quantity| of a position that is exact to the micro-unit end to end. Below 2**32 units
# the stored float64 is within half its spacing (2**-22) of the decimal, 0.24 micro-units, and
# multiplying by 10**6 rounds by at most 0.25 more (the product is below 2**52): under half a
# micro-unit, so rounding gives back the same micro-units. Between 2**32 and 2**33 the two
# errors reach 0.48 + 0.25 and about one quantity in 90 came back one micro-unit off (e.g.
# 4456946523.790561). Above the bound whole units stay exact (up to about 5.7e11), micro-units
# do not.
MAX_EXACT_POSITION = 2**32
# Prices are per unit of quantity, in the instrument's currency: 0 < price <= MAX_PRICE.
MAX_PRICE = 1e9
# Significant digits of every number the desk prints (see for_output).
OUTPUT_SIGNIFICANT_DIGITS = 12


def to_units(quantities: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Quantities (units, float) as micro-units: integer-valued float64, rounded half to even.

    Integer-valued float64 rather than int64: sums stay exact below 2**53 micro-units (beyond
    ``MAX_EXACT_POSITION`` the float column of the warehouse is the tighter bound anyway), and
    the position engine keeps a key's whole state in one float64 row. Rounding (not truncation)
    makes the conversion of the float nearest to a decimal exact, and removes float dust from
    quantities computed elsewhere: 0.1 + 0.2 - 0.3 is 0 micro-units. ``-0`` becomes ``+0``.

    Args:
        quantities: quantities in units (scalar, list, array or Series); NaN stays NaN.

    Returns:
        A float64 array of the same shape.
    """
    # In place on the one new array: a million quantities are converted on every engine call.
    units = np.array(quantities, dtype=np.float64)
    units *= QUANTITY_SCALE
    np.rint(units, out=units)
    units += 0.0
    return units


def from_units(units: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Micro-units back to quantities: the float64 nearest to each decimal (one exact division).

    Args:
        units: integer-valued micro-units, e.g. from :func:`to_units`.

    Returns:
        A float64 array of the same shape; ``to_units(from_units(u)) == u`` for every
        ``|u| < MAX_EXACT_POSITION * QUANTITY_SCALE``.
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
