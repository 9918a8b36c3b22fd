"""The reference domain wires itself: instruments, books, prices and FX rates."""

import dagster as dg

from desk_pipeline.defs.partitions import DeskPartitions
from desk_pipeline.defs.reference.assets import reference_assets


def reference_definitions(partitions: DeskPartitions) -> dg.Definitions:
    """The reference data and marks on the business days of ``partitions``."""
    return dg.Definitions(assets=reference_assets(partitions.daily))
