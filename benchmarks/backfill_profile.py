"""Where a backfill's time goes: py-spy samples of the backfill child, grouped by desk function.

``python -m benchmarks.bench --sections backfill --profile`` runs every backfill child
(benchmarks.backfill_run) under ``py-spy record`` and charges each sample of the main thread to
one group (GROUPS): the first rule whose pattern matches a frame of the stack. py-spy samples
the thread while it runs or waits for a CPU, not while it waits for I/O; the samples share the
child's CPU seconds (user + system) pro rata. So the figures hold on a machine other processes
load (waiting for a CPU stretches every sample alike), and the child's wall minus its CPU is
what it waited for: fsync of SQLite commits, PostgreSQL round trips, the CPU when loaded.
Threads other than the main one (Dagster's background threads, idle almost always) are left
out.

It also measures, per group, what one business day and one weekend day (no trades) add to a
run, from three short backfills on fresh warehouses (the probe): Monday to Friday, Monday to
Sunday, and Monday to the next Friday, each one run (chunks are longer than 12 days)::

    weekend day  = (Mon..Sun - Mon..Fri) / 2
    business day = (Mon..next Fri - Mon..Sun) / 5
    per run      = Mon..Fri - 5 business days   (start-up, instance, step overhead)

Each figure is a difference of two runs, so it carries the noise of both.
"""

import collections
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

PY_SPY = Path(os.environ.get("DESK_PY_SPY", Path(sys.executable).parent / "py-spy"))
RATE_HZ = 100
STARTUP = "startup: imports, definitions, instance"
DAGSTER = "dagster: event log, run and step bookkeeping"
# (group, pattern over one frame "function (path:line)"): the first rule matching any frame of
# a sample's stack below run_range wins, so a rule for a caller (an asset check re-reading
# trades) comes before the rule for what it calls. Samples outside run_range are the child's
# start-up; samples inside it without a desk frame are Dagster's.
GROUPS: tuple[tuple[str, str], ...] = (
    ("asset checks", r"\(desk_pipeline/defs/\w+/checks\.py:"),
    ("reference data (instruments, marks)", r"\(desk_pipeline/defs/reference/"),
    ("valuation", r"(^|\.)store_valuations \("),
    ("ranking", r"(^|\.)(rank_days|store_rankings) \(|\(desk_pipeline/defs/collateral/"),
    ("ingest (source -> trade tables)", r"(^|\.)ingest_window \("),
    ("EOD keep-last write", r"(^|\.)keep_last_eod \("),
    ("EOD trades read + roll", r"(^|\.)store_eods \("),
    ("restatement check (stale days)", r"(^|\.)(stale_days|restate_stale_days) \("),
    ("intraday windows", r"(^|\.)store_windows \("),
    ("other desk code (metadata, resources)", r"\(desk_pipeline/"),
)
ORDER = (*(group for group, _ in GROUPS), DAGSTER, STARTUP)
_RULES = tuple((group, re.compile(pattern)) for group, pattern in GROUPS)
_IN_RUN = re.compile(r"(^|\.)run_range \(")
_OTHER_THREAD = ("Thread._bootstrap ", "_bootstrap (threading.py")
# Functions listed per group in the JSON: where to look first.
TOP_FUNCTIONS = 5


def group_of(frames: Sequence[str]) -> str:
    """The group a main-thread stack (root first) is charged to."""
    runs = [i for i, frame in enumerate(frames) if _IN_RUN.search(frame)]
    if not runs:
        return STARTUP
    inside = frames[runs[0] + 1 :]
    for group, rule in _RULES:
        if any(rule.search(frame) for frame in inside):
            return group
    return DAGSTER


def _function(frames: Sequence[str], group: str) -> str:
    """The innermost frame of the group's package (dagster or desk_pipeline), without its line.

    The innermost frame of the stack when the package has none.
    """
    package = "(dagster/" if group == DAGSTER else "(desk_pipeline/"
    own = [f for f in frames if package in f] or list(frames)
    return re.sub(r":\d+\)$", ")", own[-1])


def main_thread_samples(raw: Iterable[str]) -> list[tuple[list[str], int]]:
    """``(frames root first, samples)`` of the main thread from py-spy's raw (folded) output."""
    stacks = []
    for line in raw:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and not stack.startswith(_OTHER_THREAD):
            stacks.append((stack.split(";"), int(count)))
    return stacks


def profile_of(raw: Iterable[str], cpu_s: float) -> dict[str, Any]:
    """CPU seconds of ``cpu_s`` per group (ORDER), pro rata of main-thread samples.

    Returns:
        ``samples``; ``groups``: group -> seconds (every group of ORDER, 0.0 when unsampled);
        ``top``: group -> up to TOP_FUNCTIONS ``[function, seconds]``, most first.

    Raises:
        ValueError: no main-thread sample (py-spy could not attach).
    """
    stacks = main_thread_samples(raw)
    total = sum(count for _, count in stacks)
    if total == 0:
        raise ValueError("py-spy recorded no sample of the main thread")
    per_group: collections.Counter[str] = collections.Counter()
    per_function: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for frames, count in stacks:
        group = group_of(frames)
        per_group[group] += count
        per_function[group][_function(frames, group)] += count
    seconds = cpu_s / total
    return {
        "samples": total,
        "groups": {group: per_group[group] * seconds for group in ORDER},
        "top": {
            group: [[name, n * seconds] for name, n in functions.most_common(TOP_FUNCTIONS)]
            for group, functions in per_function.items()
        },
    }


def profiled(command: list[str], cwd: Path, env: dict[str, str], raw: Path) -> dict[str, Any]:
    """Run ``command`` with py-spy attached: its stdout, wall and CPU seconds, load, profile.

    ``groups`` (:func:`profile_of`) are CPU seconds; ``waited_s`` is wall minus CPU.

    The child is started here and py-spy attaches to it (py-spy as the parent would swallow the
    child's exit status and write to its stdout).

    Raises:
        RuntimeError: the child or py-spy failed.
    """
    load = os.getloadavg()
    # Only reaped children count, and py-spy is reaped after the child: this is the child's CPU.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    spy = subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            f"--pid={child.pid}",
            "--format=raw",
            f"--rate={RATE_HZ}",
            f"--output={raw}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    spied, _ = spy.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"backfill failed ({child.returncode}):\n{stderr[-4000:]}")
    if spy.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}):\n{spied[-2000:]}")
    with raw.open() as lines:
        profile = profile_of(lines, cpu)
    return {
        "stdout": stdout,
        "wall_s": wall,
        "cpu_s": cpu,
        "waited_s": wall - cpu,
        "load_1m_at_start": load[0],
        "load_1m_at_end": os.getloadavg()[0],
        **profile,
    }


def probe_ranges(today: pd.Timestamp) -> dict[str, tuple[str, str]]:
    """The probe's three ranges, starting the Monday two weeks before ``today``'s week."""
    monday = today.normalize() - pd.Timedelta(days=today.weekday() + 14)

    def day(offset: int) -> str:
        return (monday + pd.Timedelta(days=offset)).strftime("%Y-%m-%d")

    return {
        "mon_fri": (day(0), day(4)),
        "mon_sun": (day(0), day(6)),
        "mon_next_fri": (day(0), day(11)),
    }


def per_day(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """CPU seconds per business day, per weekend day and per run, per group and in total.

    ``runs`` are the profiles of the ranges of :func:`probe_ranges`; ``waited`` is wall minus
    CPU (I/O, and the CPU when the machine is loaded).
    """
    table = {}
    for group in (*ORDER, "total", "waited"):

        def spent(label: str, group: str = group) -> float:
            run = runs[label]
            if group == "waited":
                return float(run["waited_s"])
            return float(sum(run["groups"].values()) if group == "total" else run["groups"][group])

        business = (spent("mon_next_fri") - spent("mon_sun")) / 5
        table[group] = {
            "business_day_s": business,
            "weekend_day_s": (spent("mon_sun") - spent("mon_fri")) / 2,
            "per_run_s": spent("mon_fri") - 5 * business,
        }
    return table


def table_rows(profile: dict[str, Any], calendar_days: int) -> list[tuple[str, str]]:
    """``(label, value)`` rows of one profiled backfill: CPU seconds, and per calendar day."""
    rows = []
    for group, seconds in profile["groups"].items():
        if seconds > 0:
            rows.append((f"  {group}", f"{seconds:,.1f} / {seconds / calendar_days:.2f} per day"))
    return rows


def probe_rows(probe: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, value)`` rows of the probe: business day / weekend day / per run, by group."""
    return [
        (
            f"  {group}",
            f"{f['business_day_s']:.2f} / {f['weekend_day_s']:.2f} / {f['per_run_s']:.1f}",
        )
        for group, f in probe["per_day"].items()
        if group in ("total", "waited") or any(abs(v) >= 0.005 for v in f.values())
    ]
