"""Progress of `desk backfill` on stderr: one bar over the steps of all its runs, with an ETA."""

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PROGRESS_LOGGER = "desk_progress"


class _StepHandler(logging.Handler):
    """Advances the bar when Dagster reports a finished step (its event rides on the record)."""

    def __init__(self, progress: "RunProgress") -> None:
        super().__init__(level=logging.DEBUG)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is None:
            return
        if event.event_type_value == "STEP_START":
            self.progress.started(event.step_key)
        elif event.event_type_value in {"STEP_SUCCESS", "STEP_SKIPPED"}:
            self.progress.finished()


class RunProgress:
    """A progress bar fed by the steps of in-process runs of one job, chunk after chunk.

    Each chunk (one run over a range of days) runs every step of the job (its assets and
    checks), so the bar counts steps over all chunks: it moves within a short backfill's single
    run, and on a long backfill its estimate covers the chunks still to come.
    """

    def __init__(
        self, job: dg.JobDefinition, chunks: Sequence[Sequence[str]], *, log_level: str | None
    ) -> None:
        """``log_level``: Dagster's run log on stderr at that level, or None for none."""
        self.chunks = chunks
        self.steps = len(job.nodes_in_topological_order)
        self.log_level = log_level
        handler = _StepHandler(self)

        def progress_logger(_context: dg.InitLoggerContext) -> logging.Logger:
            logger = logging.Logger(PROGRESS_LOGGER, level=logging.DEBUG)
            logger.addHandler(handler)
            return logger

        feed = dg.LoggerDefinition(progress_logger, description="Finished steps to the bar.")
        self.job = job.with_logger_defs(
            {"console": dg.colored_console_logger, **job.loggers, PROGRESS_LOGGER: feed}
        )
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task: TaskID | None = None
        self._chunk = 0

    @property
    def run_config(self) -> dict[str, Any]:
        """Run config naming the loggers: the job's, the bar's, and the console at log_level."""
        loggers: dict[str, Any] = {name: {} for name in self.job.loggers if name != "console"}
        if self.log_level:
            loggers["console"] = {"config": {"log_level": self.log_level}}
        return {"loggers": loggers}

    def each_chunk(self) -> Iterator[Sequence[str]]:
        """The chunks in order; the bar is complete for each one once the caller moves on."""
        for number, chunk in enumerate(self.chunks, start=1):
            self._chunk = number
            self._describe(f"{chunk[0]}..{chunk[-1]}")
            yield chunk
            assert self._task is not None
            self._bar.update(self._task, completed=number * self.steps)

    def started(self, step: str) -> None:
        """A step began: name it."""
        self._describe(step)

    def finished(self) -> None:
        """A step ended."""
        if self._task is not None:
            self._bar.advance(self._task)

    def _describe(self, what: str) -> None:
        if self._task is not None:
            self._bar.update(
                self._task, description=f"run {self._chunk}/{len(self.chunks)} {what:<24.24}"
            )

    @contextmanager
    def shown(self) -> Iterator["RunProgress"]:
        """Show the bar while the block runs."""
        with self._bar:
            self._task = self._bar.add_task("backfill", total=self.steps * len(self.chunks))
            yield self
