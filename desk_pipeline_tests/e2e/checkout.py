"""A new user's setting: a fresh checkout, a shell without desk settings, make and the README."""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# `-o` keeps make from reinstalling the shared virtualenv (pyproject.toml is newer in a copy).
MAKE = ["make", "--no-print-directory", "-o", ".venv/bin/desk"]


def user_environment(**extra: str) -> dict[str, str]:
    """The user's shell: no DESK_*, DAGSTER_HOME or DAGSTER_PG_URL, no virtualenv on PATH."""
    drop = ("DESK_", "DAGSTER_HOME", "DAGSTER_PG_URL", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if not p.endswith("/.venv/bin")]
    return {**env, "PATH": os.pathsep.join(path), **extra}


def fresh_checkout(target: Path) -> Path:
    """The project's files copied to ``target``, as git would check them out, with the venv.

    The virtualenv is the project's own (linked): installing one per test would take minutes.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def make_run_prerequisites() -> list[str]:
    """The targets `make run` makes, in order, as the Makefile says."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    [line] = re.findall(r"^run:(.*)$", makefile, flags=re.MULTILINE)
    return line.split()


def readme_block(heading: str) -> list[str]:
    """The lines of the first ```bash block under ``heading`` in the README, as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n{heading}\n", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def command_words(line: str) -> list[str]:
    """A README line's words as the shell splits them, without its comment."""
    return shlex.split(line, comments=True)
