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
Sunday, and Monday to the next Friday, each a single Dagster run (chunks are longer than 12
days)::

    weekend day  = (Mon..Sun - Mon..Fri) / 2
    business day = (Mon..next Fri - Mon..Sun) / 5
    per run      = Mon..Fri - 5 business days   (start-up, instance, step overhead)

A difference of two single runs carries every one-off cost of either run: numba compiling a
kernel signature its disk cache lacks (about 5 s, in the first run of a fresh checkout that
meets it), the first call of anything. So the probe first makes one run it discards
(WARM_UP_RANGE: it rolls business days' trades and, in its asset checks, an empty Sunday, so
every kernel signature a probe run meets is compiled and cached before any run is measured),
then runs each range ``repeats`` times, interleaved (PROBE_ORDER, rotated each round, so a
change of load over the probe touches every range alike), each on a fresh warehouse. The
figures are differences of each range's median run, per group; each carries its noise, the
spread (max - min) of the runs differenced divided like the figure. A figure within its noise,
or negative, is marked as noise: no day costs less than nothing. At the default 3 repeats the
probe makes 10 backfills: 6.3 min on the 2-core EPYC at load 3.5-5.7, about 4 min idle (from
its CPU seconds); ``--probe-repeats 2`` makes 7.
"""

import collections
import os
import re
import resource
import statistics
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


# The probe's ranges in the order of its first round (later rounds rotate it), the range of the
# run it discards first, and how the figures difference the ranges.
PROBE_ORDER = ("mon_fri", "mon_sun", "mon_next_fri")
WARM_UP_RANGE = "mon_sun"
PROBE_LABELS = {
    "mon_fri": "Mon-Fri",
    "mon_sun": "Mon-Sun",
    "mon_next_fri": "Mon-next Fri",
}
# figure -> (range, minus range, days between them)
DIFFERENCES = {
    "business_day": ("mon_next_fri", "mon_sun", 5),
    "weekend_day": ("mon_sun", "mon_fri", 2),
}


def probe_order(repeats: int) -> list[str]:
    """The ranges in the order the probe runs them: PROBE_ORDER, rotated by one each round."""
    n = len(PROBE_ORDER)
    return [PROBE_ORDER[(r + i) % n] for r in range(repeats) for i in range(n)]


def per_day(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """CPU seconds per business day, per weekend day and per run, per group and in total.

    ``runs`` are, per range of :func:`probe_ranges`, the profiles of its repeated runs (at least
    one); ``waited`` is wall minus CPU (I/O, and the CPU when the machine is loaded). Each figure
    is a difference of the ranges' median runs (DIFFERENCES); ``<figure>_noise_s`` is the same
    combination of the ranges' spreads (max - min of their runs): how far the figure could move
    with the run-to-run noise seen (0 with one run per range: unknown, not none).

    Returns:
        group -> ``business_day_s``, ``weekend_day_s``, ``per_run_s`` (Mon..Fri minus five
        business days) and ``<each>_noise_s``.
    """
    table = {}
    for group in (*ORDER, "total", "waited"):

        def spent(run: dict[str, Any], group: str = group) -> float:
            if group == "waited":
                return float(run["waited_s"])
            return float(sum(run["groups"].values()) if group == "total" else run["groups"][group])

        values = {label: [spent(run) for run in profiles] for label, profiles in runs.items()}
        median = {label: statistics.median(v) for label, v in values.items()}
        spread = {label: max(v) - min(v) for label, v in values.items()}
        figures: dict[str, float] = {}
        for figure, (longer, shorter, days) in DIFFERENCES.items():
            figures[f"{figure}_s"] = (median[longer] - median[shorter]) / days
            figures[f"{figure}_noise_s"] = (spread[longer] + spread[shorter]) / days
        figures["per_run_s"] = median["mon_fri"] - 5 * figures["business_day_s"]
        figures["per_run_noise_s"] = spread["mon_fri"] + 5 * figures["business_day_noise_s"]
        table[group] = figures
    return table


def table_rows(profile: dict[str, Any], calendar_days: int) -> list[tuple[str, str]]:
    """``(label, value)`` rows of one profiled backfill: CPU seconds, and per calendar day."""
    rows = []
    for group, seconds in profile["groups"].items():
        if seconds > 0:
            rows.append((f"  {group}", f"{seconds:,.1f} / {seconds / calendar_days:.2f} per day"))
    return rows


def is_noise(value: float, noise: float) -> bool:
    """A probe figure that says nothing: within its noise, or negative (no day costs < 0)."""
    return value < 0 or abs(value) <= noise


def probe_lines(probe: dict[str, Any]) -> list[str]:
    """The probe as text: each range's runs, then per group a business day, a weekend day and
    the per-run remainder with their noise; a figure that is noise (:func:`is_noise`) says so."""
    runs = probe["runs"]
    lines = [
        f"  {len(PROBE_ORDER)} ranges x {probe['repeats']} runs on fresh warehouses after 1 "
        f"warm-up run ({PROBE_LABELS[probe['warm_up']['range']]}, discarded): "
        f"{probe['wall_s'] / 60:.1f} min, load 1m {probe['load_1m'][0]:.1f}-"
        f"{probe['load_1m'][1]:.1f}",
        f"  warm-up: {probe['warm_up']['cpu_s']:.1f} CPU s, against "
        f"{statistics.median(r['cpu_s'] for r in runs[probe['warm_up']['range']]):.1f} "
        "for the median run of its range",
    ]
    for label, profiles in runs.items():
        first, last = probe["ranges"][label]
        lines.append(
            f"  {PROBE_LABELS[label]} ({first}..{last}), CPU s per run (load 1m): "
            + ", ".join(f"{r['cpu_s']:.1f} ({r['load_1m_at_start']:.1f})" for r in profiles)
        )
    lines += [
        "  CPU s by group, from the median run of each range; ± the runs' spread (max - min)",
        f"  {'':<46}{'business day':>18}{'weekend day':>18}{'per run':>18}",
    ]
    noise_seen = False
    for group, f in probe["per_day"].items():
        figures = ("business_day", "weekend_day", "per_run")
        if group not in ("total", "waited") and all(abs(f[f"{k}_s"]) < 0.005 for k in figures):
            continue
        cells = []
        for key in figures:
            value, noise = f[f"{key}_s"], f[f"{key}_noise_s"]
            flag = "?" if is_noise(value, noise) else " "
            noise_seen |= flag == "?"
            cells.append(f"{value:.2f} ±{noise:.2f}{flag}")
        lines.append((f"  {group:<46}" + "".join(f"{cell:>18}" for cell in cells)).rstrip())
    if noise_seen:
        lines.append("  ? within its noise or negative: noise, not a cost")
    return lines
