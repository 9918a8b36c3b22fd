"""The positions context: trades and their versions, the average-cost engine, snapshots.

It owns the seed's TradingBook, PositionSnapshot and DailyBookPosition: received trades and their
versions (``trades``), positions at average cost with realised P&L (``engine``), end-of-day
snapshots, the keep-last rule and the PositionSnapshotCreated event (``snapshots``), the
restatement range after late trades (``restatement``), EOD valuation and unrealised P&L at the
day's marks (``valuation``) and the reconciliation predicates (``reconciliation``). It never
imports ``domain.collateral``: the collateral context reads positions through its ACL,
``domain.collateral.holdings``.
"""
