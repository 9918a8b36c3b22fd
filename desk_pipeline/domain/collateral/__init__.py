"""The collateral context: holdings, haircuts and the CollateralRanking by lendable value.

It owns the translation of end-of-day positions into holdings (``holdings``, the anti-corruption
layer from positions: the one place this context reads the positions model), haircut schedules
(``schedule``) over the rating scales (``ratings``) and their lookup (``haircuts``), each
holding's terms, marks, haircut and lendable value (``lendable``) and eligibility
(``eligibility``), the ranking, lendable value per currency and issuer concentration
(``ranking``) and the ranking's quality rules (``quality``). It never imports
``domain.positions``.
"""
