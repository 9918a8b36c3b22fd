"""The positions domain wires itself: trades, snapshots, EODs, their valuation, checks, sensors."""

import dagster as dg

from desk_pipeline.defs.partitions import DeskPartitions
from desk_pipeline.defs.positions.assets import position_assets
from desk_pipeline.defs.positions.checks import position_checks
from desk_pipeline.defs.positions.freshness import freshness_checks, freshness_sensor
from desk_pipeline.defs.positions.sensors import restatement_sensor
from desk_pipeline.defs.positions.valuation import valuation_asset
from desk_pipeline.defs.settings import DeskSettings


def positions_definitions(settings: DeskSettings, partitions: DeskPartitions) -> dg.Definitions:
    """The positions assets on ``partitions``, with the checks and sensors ``settings`` tune."""
    freshness = freshness_checks(settings)
    return dg.Definitions(
        assets=[*position_assets(partitions), valuation_asset(partitions.daily)],
        asset_checks=[*freshness, *position_checks(settings)],
        sensors=[freshness_sensor(freshness), restatement_sensor],
    )
