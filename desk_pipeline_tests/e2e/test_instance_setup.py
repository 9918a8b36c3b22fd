"""The Dagster instance a user gets: from `make` on every run, and from `desk` in a new home."""

import stat
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from desk_pipeline.defs.runs import instance_yaml
from desk_pipeline_tests.builders import trade, write_landing_file
from desk_pipeline_tests.e2e import driver
from desk_pipeline_tests.e2e.checkout import user_environment
from desk_pipeline_tests.e2e.driver import DESK

ROOT = Path(__file__).resolve().parents[2]
# `-o` keeps make from reinstalling the shared virtualenv when pyproject.toml is newer than it.
MAKE = ["make", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/bin/desk"]


def make(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MAKE, *args, f"DAGSTER_HOME={home}"],
        env=user_environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
        # SIGPIPE ignored, as Python's os.exec* and systemd services (IgnoreSIGPIPE=yes) leave
        # it: a pipe closed early is then an error a command prints, not a silent death.
        restore_signals=False,
    )


def inode(home: Path) -> int:
    return (home / "dagster.yaml").stat().st_ino


def files_in(folder: Path) -> list[str]:
    """Every name in ``folder``, hidden ones included (the temporary file is hidden)."""
    return sorted(path.name for path in folder.iterdir())


def test_make_writes_the_instance_asked_for_on_every_run_and_switches_to_postgres(tmp_path):
    home = tmp_path / "home"
    first = make(home, "instance")
    assert first.returncode == 0, first.stderr
    first_inode = inode(home)
    # Nothing on stderr: comparing with a missing file printed "cat: write error: Broken pipe".
    assert all(make(tmp_path / f"new-{i}", "instance").stderr == "" for i in range(10))
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == instance_yaml(
        "dagster.yaml", "dagster-sqlite.yaml"
    )

    # The issue: a second `make run` with the PostgreSQL overlay kept the SQLite file.
    postgres = make(
        home,
        "instance",
        "DAGSTER_YAML=dagster.yaml dagster-postgres.yaml",
        DAGSTER_PG_URL="postgresql://dagster@127.0.0.1:5432/dagster",
    )
    assert postgres.returncode == 0, postgres.stderr
    assert postgres.stderr == ""
    # Replaced by a rename, not rewritten in place: a Dagster process opening the file meanwhile
    # reads the old one or the new one, never a truncated one.
    postgres_inode = inode(home)
    assert postgres_inode != first_inode
    assert files_in(home) == ["dagster.yaml"]  # no temporary file left behind
    written = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8"))
    assert written["run_storage"]["class"] == "DeskPostgresRunStorage"
    assert written["event_log_storage"]["config"] == {"postgres_url": {"env": "DAGSTER_PG_URL"}}

    back = make(home, "instance")
    assert back.returncode == 0, back.stderr
    back_written = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8"))
    assert "run_storage" not in back_written
    assert back_written["event_log_storage"]["class"] == "DeskSqliteEventLogStorage"
    # (Compared with the file it replaced: a freed inode number may be given out again.)
    back_inode = inode(home)
    assert back_inode != postgres_inode
    # Unchanged settings are not rewritten (and not announced).
    again = make(home, "instance")
    assert again.returncode == 0 and "written" not in again.stdout
    assert inode(home) == back_inode
    assert files_in(home) == ["dagster.yaml"]


def test_make_replaces_the_instance_with_its_mode_and_through_a_link(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # An operator's mode and a dagster.yaml linked to a shared file are kept, as `cat >` kept them.
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "dagster.yaml").write_text("old: settings\n", encoding="utf-8")
    (shared / "dagster.yaml").chmod(0o640)
    (home / "dagster.yaml").symlink_to(shared / "dagster.yaml")
    before = (shared / "dagster.yaml").stat().st_ino

    written = make(home, "instance")
    assert written.returncode == 0, written.stderr
    assert (home / "dagster.yaml").is_symlink()
    assert (shared / "dagster.yaml").read_text(encoding="utf-8") == instance_yaml(
        "dagster.yaml", "dagster-sqlite.yaml"
    )
    assert (shared / "dagster.yaml").stat().st_ino != before
    assert stat.S_IMODE((shared / "dagster.yaml").stat().st_mode) == 0o640
    assert files_in(home) == ["dagster.yaml"] and files_in(shared) == ["dagster.yaml"]


def test_make_leaves_no_temporary_file_when_the_instance_cannot_be_replaced(tmp_path):
    home = tmp_path / "home"
    (home / "dagster.yaml").mkdir(parents=True)  # a rename cannot replace a folder
    refused = make(home, "instance")
    assert refused.returncode != 0
    assert "cannot overwrite directory" in refused.stderr
    assert files_in(home) == ["dagster.yaml"] and (home / "dagster.yaml").is_dir()
    assert files_in(home / "dagster.yaml") == []


def test_make_refuses_the_postgres_instance_without_its_url_and_an_unknown_file(tmp_path):
    home = tmp_path / "home"
    assert make(home, "instance").returncode == 0
    before = (home / "dagster.yaml").read_text(encoding="utf-8")

    refused = make(home, "instance", "DAGSTER_YAML=dagster.yaml dagster-postgres.yaml")
    assert refused.returncode != 0
    assert "DAGSTER_PG_URL is not set" in refused.stderr
    unknown = make(home, "instance", "DAGSTER_YAML=dagster.yaml dagster-mysql.yaml")
    assert unknown.returncode != 0
    assert "dagster-mysql.yaml" in unknown.stderr and "dagster-postgres.yaml" in unknown.stderr
    # A refusal leaves the instance as it was.
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == before


def test_no_instance_file_sits_where_dagster_dev_starts():
    # `dagster dev` warns that a dagster.yaml in its working folder "will not be used".
    assert not (ROOT / "dagster.yaml").exists() and not (ROOT / "dagster.yml").exists()
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text(encoding="utf-8"))
    assert workspace["load_from"][0]["python_module"]["working_directory"] == "."


def test_a_dagster_home_created_by_desk_backfill_gets_the_desks_instance_settings(tmp_path):
    landing = tmp_path / "landing"
    at = pd.Timestamp("2026-03-02 09:00", tz="UTC")
    write_landing_file(landing, "trades.csv", [trade("T-1", 100, 99.5, book="REPO-1", at=at)])
    home = tmp_path / "new" / "home"
    env = user_environment(
        DAGSTER_HOME=str(home),
        DESK_START_DATE="2026-03-01",
        DESK_TRADE_SOURCE=f"landing:{landing}",
        DESK_WAREHOUSE_URL=f"sqlite:///{tmp_path}/warehouse.db",
    )
    result = subprocess.run(
        [DESK, "backfill", "--start", "2026-03-02", "--end", "2026-03-02"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == instance_yaml(
        "dagster.yaml", "dagster-sqlite.yaml"
    )
    # Dagster prints its telemetry banner only when telemetry is on.
    assert "telemetry" not in result.stderr.lower()
    with driver.open_instance(home) as instance:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
        [run] = instance.get_runs()
        assert run.job_name == "daily_job"
