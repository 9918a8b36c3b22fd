"""The positions domain wires itself: trades, snapshots, EODs, their valuation, checks, sensors."""

import dagster as dg

from desk_pipeline.defs.partitions import DeskPartitions
from desk_pipeline.defs.positions.assets import position_assets
from desk_pipeline.defs.positions.checks import position_checks
from desk_pipeline.defs.positions.freshness import with_freshness
from desk_pipeline.defs.positions.sensors import restatement_sensor
from desk_pipeline.defs.positions.valuation import valuation_asset
from desk_pipeline.defs.settings import DeskSettings


def positions_definitions(settings: DeskSettings, partitions: DeskPartitions) -> dg.Definitions:
    """The positions assets on ``partitions``, with the policies and checks ``settings`` tune."""
    assets = with_freshness(position_assets(partitions), settings)
    return dg.Definitions(
        assets=[*assets, valuation_asset(partitions.daily)],
        asset_checks=position_checks(settings),
        sensors=[restatement_sensor],
    )
