"""Reference data and marks: instruments, books, prices and FX rates from the trade source."""

from collections.abc import Callable
from typing import Any

import dagster as dg
import pandas as pd

from desk_pipeline.defs import catalogue
from desk_pipeline.defs.end_of_day import restate_marked_days
from desk_pipeline.defs.policies import RETRY_TRANSIENT, retried_if_transient
from desk_pipeline.defs.reporting import report_restated
from desk_pipeline.defs.resources import (
    HaircutScheduleResource,
    TradeSourceResource,
    WarehouseResource,
)
from desk_pipeline.domain.marks import PRICE_LOOKBACK
from desk_pipeline.domain.reference.validation import validate_reference

# Today's partition is refreshed hourly: marks and reference data can land during the day, and
# the ranking's own condition re-ranks after each refresh.
REFRESH_HOURLY = dg.AutomationCondition.on_cron("0 * * * *")
# What a changed mark restates: the valuation and the ranking, not the positions.
MARKED_KEYS = (dg.AssetKey("eod_valuation"), dg.AssetKey("collateral_ranking"))

INSTRUMENTS_TABLE = catalogue.catalogue_metadata(
    "instruments",
    dg.TableSchema(
        columns=[
            dg.TableColumn("instrument_id", "string", description="ISIN or desk id."),
            dg.TableColumn("asset_class", "string", description="government_bond, equity_other…"),
            dg.TableColumn(
                "issuer_type", "string", description="sovereign, other, securitisation."
            ),
            dg.TableColumn("rating", "string", description="Long-term rating; empty = unrated."),
            dg.TableColumn("maturity_date", "string", description="YYYY-MM-DD; empty = none."),
            dg.TableColumn("currency", "string", description="ISO 4217."),
        ]
    ),
)
PRICES_TABLE = catalogue.catalogue_metadata(
    "prices",
    dg.TableSchema(
        columns=[
            dg.TableColumn("instrument_id", "string", description="ISIN or desk id."),
            dg.TableColumn("price_date", "string", description="Business day of the mark."),
            dg.TableColumn("price", "float", description="Per unit of quantity, its currency."),
        ]
    ),
)


def reference_assets(daily: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The instruments and prices assets on the business days."""
    return [
        _reference_asset(daily, pool="desk_instruments", metadata=INSTRUMENTS_TABLE)(
            retried_if_transient(instruments)
        ),
        _reference_asset(daily, pool="desk_prices", metadata=PRICES_TABLE)(
            retried_if_transient(prices)
        ),
    ]


def _reference_asset(
    daily: dg.PartitionsDefinition, pool: str, metadata: dict[str, Any]
) -> Callable[[Callable[..., dg.MaterializeResult]], dg.AssetsDefinition]:
    """The policy the reference assets share: daily, one run per backfill, refreshed hourly."""
    return dg.asset(
        partitions_def=daily,
        group_name="collateral",
        kinds={"pandas", "sql"},
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=REFRESH_HOURLY,
        retry_policy=RETRY_TRANSIENT,
        pool=pool,
        # First among a run's ready steps: marks stored before the run's EODs are not late
        # for them, so a backfill records and confirms no mark change of its own days.
        op_tags={"dagster/priority": "1"},
        owners=catalogue.OWNERS,
        tags={"desk/layer": "reference"},
        metadata=metadata,
    )


def instruments(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trade_source: TradeSourceResource,
) -> dg.MaterializeResult:
    """One row per instrument (and per book): the reference data the collateral ranking uses.

    Instruments (asset class, issuer type, rating, maturity, currency) and books (base currency,
    holding period) as the source has them now; bad rows go to the quarantine. The master is not
    dated, so materialising any day refreshes it for every day: the warehouse keeps the latest
    row per instrument and book, and never deletes one the source stops sending.
    """
    source = trade_source.source()
    received = validate_reference(
        trade_source.kind, instruments=source.instruments(), books=source.books()
    )
    written = warehouse.repository().replace_reference(
        instruments=received.instruments, books=received.books, quarantined=received.quarantine
    )
    context.log.info("instruments %s: %s", context.partition_key_range, written)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written["instruments"],
            "books": written["books"],
            "received": received.received,
            "quarantined": len(received.quarantine),
        }
    )


def prices(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    trade_source: TradeSourceResource,
    haircuts: HaircutScheduleResource,
) -> dg.MaterializeResult:
    """One row per (instrument, day): the mark in the instrument's currency, plus FX rates.

    A day's partition stores every mark and USD rate the source has from PRICE_LOOKBACK before
    the day to the day itself (a landing folder hands over its whole prices.csv and fx_rates.csv),
    keyed by date, so re-running a day replaces its marks; bad rows go to the quarantine.
    A mark that changes a stored one, or fills a day late, makes the stored valuations and
    rankings that read it stale: this run values and ranks those days again (every book).
    """
    dates = pd.DatetimeIndex(context.partition_keys)
    source = trade_source.source()
    first, last = dates[0] - PRICE_LOOKBACK, dates[-1]
    received = validate_reference(
        trade_source.kind,
        prices=source.prices(first, last),
        fx_rates=source.fx_rates(first, last),
    )
    repo = warehouse.repository()
    written = repo.replace_reference(
        prices=received.prices, fx_rates=received.fx_rates, quarantined=received.quarantine
    )
    # Valuation and ranking depend on prices: in a run with both, they value and rank the
    # run's own days after this step, at the new marks.
    later = set(MARKED_KEYS) <= context.job_def.asset_layer.selected_asset_keys
    restated = restate_marked_days(
        repo, haircuts.schedule(), leave=context.partition_keys if later else ()
    )
    report_restated(context, {}, restated, cause="changed or late marks", chain=MARKED_KEYS)
    context.log.info(
        "prices %s: %s, restated %s", context.partition_key_range, written, restated or "nothing"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written["prices"],
            "fx_rates": written["fx_rates"],
            "mark_changes": written["mark_changes"],
            "restated_days": ", ".join(restated),
            "received": received.received,
            "quarantined": len(received.quarantine),
            "instruments_priced": int(received.prices["instrument_id"].nunique()),
        }
    )
