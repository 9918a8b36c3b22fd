"""What the asset catalogue shows: owners, tags, warehouse tables and their column schemas."""

import dagster as dg

OWNERS = ["team:securities-financing-desk"]


def _columns(*columns: tuple[str, str, str]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name, kind, description=text) for name, kind, text in columns]
    )


_BOOK = ("book_id", "string", "Trading book (repo or securities-lending book).")
_INSTRUMENT = ("instrument_id", "string", "Instrument held or traded (ISIN or desk id).")
_DATE = ("business_date", "string", "Business day YYYY-MM-DD in DESK_TIMEZONE.")
_POSITION = (
    ("quantity", "float", "Signed quantity: + long / received, - short / delivered."),
    ("avg_price", "float", "Average cost of the open quantity; 0 when flat."),
    ("realized_pnl", "float", "Realised P&L since the book's first trade, price units."),
)


def catalogue_metadata(table: str, schema: dg.TableSchema) -> dict[str, object]:
    """Definition metadata naming the warehouse table an asset writes and its columns."""
    return {"dagster/table_name": f"warehouse.{table}", "dagster/column_schema": schema}


TRADES = catalogue_metadata(
    "trade_versions",
    _columns(
        ("trade_id", "string", "Source trade id; versions of one trade share it."),
        ("version", "int", "Version of the trade; the highest counts."),
        ("status", "string", "NEW, AMEND or CANCEL."),
        _BOOK,
        _INSTRUMENT,
        ("quantity", "float", "Signed quantity: + buy / receive, - sell / deliver."),
        ("price", "float", "Trade price."),
        ("trade_time", "timestamp", "When the trade was done, UTC."),
        ("source", "string", "File or feed the version came from."),
    ),
)
INTRADAY_POSITIONS = catalogue_metadata(
    "intraday_positions",
    _columns(
        ("as_of", "timestamp", "End of the 10-minute window the snapshot is taken at, UTC."),
        _BOOK,
        _INSTRUMENT,
        *_POSITION,
    ),
)
EOD_POSITIONS = catalogue_metadata(
    "eod_positions",
    _columns(
        ("snapshot_id", "string", "Snapshot kept as the day's EOD (keep-last rule)."),
        _BOOK,
        _DATE,
        _INSTRUMENT,
        *_POSITION,
    ),
)
EOD_VALUATION = catalogue_metadata(
    "eod_valuations",
    _columns(
        ("snapshot_id", "string", "The EOD snapshot valued (see eod_positions)."),
        _BOOK,
        _DATE,
        _INSTRUMENT,
        ("price", "float", "Mark on or before the day, instrument currency; empty when none."),
        ("price_date", "string", "Date of the mark, YYYY-MM-DD."),
        ("stale_price", "bool", "The mark is more than 5 days old."),
        ("currency", "string", "Instrument currency; empty when the instrument is unknown."),
        ("base_currency", "string", "The book's base currency."),
        ("fx_rate", "float", "Instrument currency to the book's base currency."),
        ("market_value", "float", "quantity x price, instrument currency."),
        ("market_value_base", "float", "market_value x fx_rate, base currency."),
        ("unrealized_pnl", "float", "(price - avg_price) x quantity, instrument currency."),
        ("unrealized_pnl_base", "float", "unrealized_pnl x fx_rate, base currency."),
        ("reason", "string", "Why a value is empty; stale-mark warnings."),
    ),
)
COLLATERAL_RANKING = catalogue_metadata(
    "collateral_rankings",
    _columns(
        _BOOK,
        _DATE,
        _INSTRUMENT,
        ("rank", "int", "1 = highest lendable value; empty when ineligible."),
        ("quantity", "float", "EOD quantity."),
        ("price", "float", "Close price used, instrument currency."),
        ("fx_rate", "float", "Instrument currency to the book's base currency."),
        ("haircut", "float", "Haircut from the schedule (Basel CRE22 by default)."),
        ("value", "float", "quantity x price x fx_rate x (1 - haircut), base currency."),
        ("eligible", "bool", "Whether the holding is eligible collateral."),
        ("reason", "string", "Why an ineligible holding is ineligible."),
    ),
)
