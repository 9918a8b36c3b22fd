"""Numeric precision of the desk: exact quantities, bounded prices, one rounding rule for output.

Quantities are fixed-point decimals: a quantity is an integer number of units of
``10**-QUANTITY_DECIMALS`` (micro-units), so trades whose quantities sum to zero in decimal leave
a position exactly flat. Prices, averages and P&L are binary floats; what the desk prints is
rounded by :func:`for_output`, the one rounding rule.
"""

# A quantity has at most this many decimal places; a finer one is quarantined.
QUANTITY_DECIMALS = 6
QUANTITY_SCALE = 10**QUANTITY_DECIMALS
# Largest |quantity| of one trade, in units (nominal or shares). Micro-units of positions up to
# 2**53 / QUANTITY_SCALE (about 9.0e9 units) add exactly in float64.
MAX_ABS_QUANTITY = 1e9
# Prices are per unit of quantity, in the instrument's currency: 0 < price <= MAX_PRICE.
MAX_PRICE = 1e9
