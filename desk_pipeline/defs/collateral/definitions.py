"""The collateral domain wires itself: the daily ranking and its checks."""

import dagster as dg

from desk_pipeline.defs.collateral.assets import collateral_assets
from desk_pipeline.defs.collateral.checks import COLLATERAL_CHECKS
from desk_pipeline.defs.partitions import DeskPartitions


def collateral_definitions(partitions: DeskPartitions) -> dg.Definitions:
    """collateral_ranking on the business days of ``partitions``, with its checks."""
    return dg.Definitions(
        assets=collateral_assets(partitions.daily), asset_checks=COLLATERAL_CHECKS
    )
