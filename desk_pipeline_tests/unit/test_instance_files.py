"""Every dagster.yaml the desk writes today is one a later desk command recognises as its own."""

import hashlib

import pytest

from desk_pipeline.defs import runs

COMBINATIONS = [("dagster.yaml",), runs.INSTANCE_FILES, runs.POSTGRES_FILES]


@pytest.mark.parametrize("names", COMBINATIONS, ids=" + ".join)
def test_todays_instance_files_are_registered_as_desk_written(names):
    digest = hashlib.sha256(runs.instance_yaml(*names).encode("utf-8")).hexdigest()
    assert runs.DESK_WRITTEN.get(digest) == names, (
        f"add {digest!r}: {names} to runs.DESK_WRITTEN (and keep the earlier entries: homes "
        "holding them are brought up to date by the next desk command)"
    )


def test_every_registered_version_stands_for_files_that_exist():
    for names in runs.DESK_WRITTEN.values():
        assert names[0] == "dagster.yaml"
        assert all((runs.INSTANCE_DIR / name).is_file() for name in names)
