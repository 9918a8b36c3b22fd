"""The checks of the configuration: `desk doctor`."""

import dagster as dg
from typing_extensions import TypedDict

from desk_pipeline.adapters import health
from desk_pipeline.defs import runs as desk_runs
from desk_pipeline.defs.settings import (
    ENVIRONMENT,
    environment_values,
    quoted_calendar,
    setting_problems,
)


class Check(TypedDict):
    """One check of `desk doctor`: its name, whether it passed, a sentence to act on."""

    check: str
    ok: bool
    detail: str


class DoctorDocument(TypedDict):
    """`desk doctor --json`."""

    ok: bool
    checks: list[Check]
    repaired: list[str]


def doctor_document(instance: dg.DagsterInstance | None, repaired: list[str]) -> DoctorDocument:
    """The `desk doctor --json` document: each check of the configuration; changes nothing.

    Args:
        instance: the desk's Dagster instance, whose runs held by a dead desk process fail the
            ``runs`` check; None when DAGSTER_HOME holds none yet (no ``runs`` check).
        repaired: what the caller repaired first (``Repair.describe()`` lines), listed as is.

    Returns:
        ``{"ok", "checks": [{"check", "ok", "detail"}], "repaired"}``: checks ``warehouse``,
        ``migrations``, ``calendar`` (unless DESK_START_DATE or DESK_TIMEZONE is bad),
        ``source``, ``broker``, one ``settings`` per other bad DESK_* value, then ``runs``;
        ``ok`` when all passed.
    """
    findings = _configuration_findings()
    if instance is not None:
        orphans = [run.run_id for run in desk_runs.orphaned_runs(instance)]
        detail = (
            f"{len(orphans)} run(s) whose desk process is gone ({', '.join(orphans)}); "
            "run `desk doctor --repair` (desk backfill, tick, consume and serve repair them too)"
            if orphans
            else "no run is held by a dead desk process"
        )
        findings.append(health.Finding("runs", not orphans, detail))
    return {
        "ok": all(f.ok for f in findings),
        "checks": [{"check": f.check, "ok": f.ok, "detail": f.detail} for f in findings],
        "repaired": repaired,
    }


def _configuration_findings() -> list[health.Finding]:
    # Each setting is checked on its own, so one bad value does not hide the other checks; a
    # bad value's finding is the very line the other commands print.
    problems = setting_problems()
    values = environment_values()
    if "DESK_WAREHOUSE_URL" in problems:
        findings = [
            health.Finding("warehouse", False, problems.pop("DESK_WAREHOUSE_URL")),
            health.Finding("migrations", False, "no warehouse to check"),
        ]
    else:
        findings = health.warehouse_findings(values["warehouse_url"])
        if not {"DESK_START_DATE", "DESK_TIMEZONE"} & problems.keys():
            # Where the calendar came from (the environment, desk.env, the defaults), and
            # whether the warehouse's days are cut in its time zone.
            findings.append(
                health.calendar_finding(
                    values["warehouse_url"], values["timezone"], quoted_calendar(), findings[0].ok
                )
            )
    for check, field, probe in (
        ("source", "trade_source", health.source_finding),
        ("broker", "event_publisher", health.broker_finding),
    ):
        if ENVIRONMENT[field] in problems:
            findings.append(health.Finding(check, False, problems.pop(ENVIRONMENT[field])))
        else:
            findings.append(probe(values[field]))
    return findings + [health.Finding("settings", False, line) for line in problems.values()]
