"""The desk's definitions and assets built from explicit settings (no environment read)."""

import functools

import dagster as dg

from desk_pipeline.definitions import build_definitions
from desk_pipeline.defs.collateral.assets import collateral_assets
from desk_pipeline.defs.partitions import desk_partitions
from desk_pipeline.defs.positions.assets import position_assets
from desk_pipeline.defs.positions.valuation import valuation_asset
from desk_pipeline.defs.reference.assets import reference_assets
from desk_pipeline.defs.resources import resources_from
from desk_pipeline.defs.settings import DeskSettings


def desk_settings(**changes: object) -> DeskSettings:
    """The contract's defaults (UTC, from 2026-01-01, simulator, log) with ``changes``."""
    base = DeskSettings(
        warehouse_url="sqlite://",
        trade_source="simulator",
        timezone="UTC",
        start_date="2026-01-01",
        event_publisher="log",
        haircut_schedule="",
    )
    return DeskSettings(**{**base.__dict__, **changes})


@functools.cache
def _definitions(settings: DeskSettings) -> dg.Definitions:
    return build_definitions(settings)


def desk_definitions(**changes: object) -> dg.Definitions:
    """The code location for ``desk_settings(**changes)``, built once per settings."""
    return _definitions(desk_settings(**changes))


def desk_resources(**changes: object) -> dict[str, dg.ConfigurableResource]:
    """The resources of ``desk_settings(**changes)``, bound as the code location binds them."""
    return resources_from(desk_settings(**changes))


@functools.cache
def _assets(settings: DeskSettings) -> dict[str, dg.AssetsDefinition]:
    partitions = desk_partitions(settings)
    built = [
        *position_assets(partitions),
        valuation_asset(partitions.daily),
        *collateral_assets(partitions.daily),
        *reference_assets(partitions.daily),
    ]
    return {a.key.to_user_string(): a for a in built}


def desk_assets(*names: str, **changes: object) -> list[dg.AssetsDefinition]:
    """The named assets, without resources, on the partitions of ``desk_settings(**changes)``."""
    assets = _assets(desk_settings(**changes))
    return [assets[name] for name in names]
