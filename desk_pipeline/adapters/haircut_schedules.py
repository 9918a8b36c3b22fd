"""Haircut schedule files: the packaged Basel CRE22 default or a file named by the operator."""

from importlib import resources
from pathlib import Path

from desk_pipeline.domain.collateral.schedule import (
    HaircutSchedule,
    HaircutScheduleError,
    parse_schedule,
)

DEFAULT_SCHEDULE = "haircuts/basel_cre22.csv"


def load_schedule(path: str | None = None) -> HaircutSchedule:
    """Read and parse a schedule file; the packaged Basel CRE22 schedule when ``path`` is None."""
    if not path:
        text = resources.files("desk_pipeline").joinpath(DEFAULT_SCHEDULE).read_text("utf-8")
        return parse_schedule(text)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise HaircutScheduleError(f"DESK_HAIRCUT_SCHEDULE={path}: cannot read: {err}") from err
    return parse_schedule(text)
