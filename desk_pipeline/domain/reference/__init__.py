"""The reference context: validation of received reference data and marks (prices).

It owns the rules a received instrument, book, price (mark) or FX rate row must pass before it is
stored (``validation``), on the shared framework of ``domain.validation``. It sits above the two
other contexts: it reuses their id and rating rules (``positions.trades.BOOK_ID``,
``collateral.ratings.rating_notch``), and neither of them imports it.
"""
