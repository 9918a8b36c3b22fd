"""The quality and housekeeping settings come from the environment, with working defaults."""

from desk_pipeline.defs.resources import DeskSettings, WarehouseResource, resources_from


def test_quarantine_threshold_and_intraday_retention_default_to_5_percent_and_7_days(monkeypatch):
    monkeypatch.delenv("DESK_MAX_QUARANTINE_RATE", raising=False)
    monkeypatch.delenv("DESK_INTRADAY_RETENTION_DAYS", raising=False)
    settings = DeskSettings.from_env()
    assert (settings.max_quarantine_rate, settings.intraday_retention_days) == (0.05, 7)


def test_quarantine_threshold_and_intraday_retention_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("DESK_MAX_QUARANTINE_RATE", "0.2")
    monkeypatch.setenv("DESK_INTRADAY_RETENTION_DAYS", "3")
    settings = DeskSettings.from_env()
    assert (settings.max_quarantine_rate, settings.intraday_retention_days) == (0.2, 3)
    warehouse = resources_from(settings)["warehouse"]
    assert isinstance(warehouse, WarehouseResource) and warehouse.intraday_retention_days == 3
