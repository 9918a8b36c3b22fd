"""A DAGSTER_HOME used only through `desk` commands keeps up with the desk's instance files.

`make run` / `make instance` rewrite $DAGSTER_HOME/dagster.yaml on every call; a home opened only
by desk commands kept the file an earlier desk wrote (seen: one from before the event-log overlay,
so Dagster's per-event connections). A file an operator wrote or edited is never replaced.
"""

import hashlib
import os
from pathlib import Path

import pytest
import yaml

from desk_pipeline.defs import runs

# Files earlier versions of the desk wrote, byte for byte (from `git show <commit>:<file>`).
EARLIER = Path(__file__).parent / "earlier_instances"
# `make run` before the storage overlays: dagster.yaml alone, Dagster's SQLite storage.
BEFORE_OVERLAYS = EARLIER / "dagster-02f3ebf.yaml"
# `make run DAGSTER_YAML="dagster.yaml dagster-postgres.yaml"` before the desk's run storage.
POSTGRES_8B671A7 = EARLIER / "dagster-postgres-8b671a7.yaml"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_the_earlier_files_are_the_registered_versions():
    for path in (BEFORE_OVERLAYS, POSTGRES_8B671A7):
        assert hashlib.sha256(path.read_bytes()).hexdigest() in runs.DESK_WRITTEN


def test_a_desk_command_brings_a_home_written_before_the_event_log_overlay_up_to_date(home):
    config = home / "dagster.yaml"
    config.write_bytes(BEFORE_OVERLAYS.read_bytes())
    with runs.desk_instance() as instance:
        assert type(instance.event_log_storage).__name__ == "DeskSqliteEventLogStorage"
    assert config.read_text(encoding="utf-8") == runs.default_instance_yaml()
    assert not [p.name for p in home.iterdir() if p.name.endswith(".tmp")]


def test_a_desk_written_postgres_file_stays_postgres_with_todays_storages(home):
    config = home / "dagster.yaml"
    config.write_bytes(POSTGRES_8B671A7.read_bytes())
    assert runs.update_instance_file(config) == runs.POSTGRES_FILES
    assert config.read_text(encoding="utf-8") == runs.instance_yaml(*runs.POSTGRES_FILES)
    written = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert written["run_storage"]["class"] == "DeskPostgresRunStorage"


def test_a_missing_file_gets_the_default_and_a_current_one_is_not_rewritten(home):
    config = home / "dagster.yaml"
    assert runs.update_instance_file(config) == runs.INSTANCE_FILES
    assert config.read_text(encoding="utf-8") == runs.default_instance_yaml()
    os.utime(config, ns=(0, 0))
    assert runs.update_instance_file(config) is None
    assert config.stat().st_mtime_ns == 0


@pytest.mark.parametrize(
    "operator_file",
    [
        # A desk file edited by hand (a smaller run queue).
        BEFORE_OVERLAYS.read_text(encoding="utf-8").replace(
            "max_concurrent_runs: 4", "max_concurrent_runs: 2"
        ),
        # Today's default with one line added.
        runs.default_instance_yaml() + "# our change\n",
        # The desk's settings with the operator's own PostgreSQL storage (DAGSTER_YAML naming a
        # file of theirs, or Dagster's documented `storage: postgres:` block).
        runs.instance_yaml("dagster.yaml")
        + "storage:\n  postgres:\n    postgres_url:\n      env: OUR_PG_URL\n",
    ],
    ids=["edited-desk-file", "default-plus-a-line", "operators-postgres-storage"],
)
def test_a_file_the_operator_wrote_or_edited_is_left_alone(home, operator_file):
    config = home / "dagster.yaml"
    config.write_text(operator_file, encoding="utf-8")
    assert runs.update_instance_file(config) is None
    assert config.read_text(encoding="utf-8") == operator_file


def test_a_linked_or_read_only_desk_file_is_left_alone(home, tmp_path):
    shared = tmp_path / "shared.yaml"
    shared.write_bytes(BEFORE_OVERLAYS.read_bytes())
    linked = home / "dagster.yaml"
    linked.symlink_to(shared)
    assert runs.update_instance_file(linked) is None
    assert linked.is_symlink() and shared.read_bytes() == BEFORE_OVERLAYS.read_bytes()

    frozen = tmp_path / "frozen.yaml"
    frozen.write_bytes(BEFORE_OVERLAYS.read_bytes())
    frozen.chmod(0o444)
    assert runs.update_instance_file(frozen) is None
    assert frozen.read_bytes() == BEFORE_OVERLAYS.read_bytes()


def test_a_desk_file_that_cannot_be_replaced_is_used_as_it_is(home, monkeypatch, caplog):
    # As a file mounted on its own (a ConfigMap's subPath): renaming onto it fails with EBUSY.
    config = home / "dagster.yaml"
    config.write_bytes(BEFORE_OVERLAYS.read_bytes())

    def busy(self, target):
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(Path, "replace", busy)
    with runs.desk_instance() as instance:
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
    assert config.read_bytes() == BEFORE_OVERLAYS.read_bytes()
    assert not [p.name for p in home.iterdir() if p.name.endswith(".tmp")]
    assert "cannot be brought up to date" in caplog.text


def test_a_rewritten_desk_file_keeps_its_permissions(home):
    config = home / "dagster.yaml"
    config.write_bytes(BEFORE_OVERLAYS.read_bytes())
    config.chmod(0o640)
    assert runs.update_instance_file(config) == runs.INSTANCE_FILES
    assert config.stat().st_mode & 0o777 == 0o640
