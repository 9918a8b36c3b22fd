"""Which stored EODs await restatement, whatever made them stale."""

import pandas as pd

from desk_pipeline.adapters.warehouse import PositionRepository


def stale_headers(repo: PositionRepository) -> pd.DataFrame:
    """Every stored EOD header, ``stale`` when it awaits restatement.

    Late trades changed the EOD, or a changed or late mark the day's valuation and ranking (then
    every book with an EOD that day is stale).
    """
    headers = repo.eod_headers()
    marked, _ = repo.days_stale_by_marks()
    return headers.assign(stale=headers["stale"] | headers["business_date"].isin(marked))
