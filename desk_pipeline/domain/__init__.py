"""Pure pandas/numpy rules of the desk, in bounded contexts over a shared kernel.

Contexts: ``positions`` (trades, the average-cost engine, snapshots, keep-last, restatement,
valuation), ``collateral`` (holdings through the ACL ``collateral.holdings``, haircuts, ranking)
and ``reference`` (validation of received reference data and marks). The shared kernel sits here:
``schema``, ``parsing``, ``validation``, ``precision``, ``errors``, ``reasons``, ``calendar``,
``marks`` (prices and FX rates as of a day, which valuation and ranking both read) and
``completeness`` (whether a stored EOD's valuation and ranking were computed from it).
"""
