"""Where ``ps-pipelines run`` writes: all of it (Dagster's events at DEBUG, dbt's output, the
sandbox's) to a log file under the home folder; to the console only the progress per stage and
asset group (``lib/progress.py``), warnings, errors and the summary. ``--verbose`` puts the
whole stream back on the console, and still writes the file.

The runs execute in this process, so the stream is routed here: while a run executes,
``sys.stdout`` and ``sys.stderr`` (where Dagster's console logger and dagster-dbt write) are
streams into the log file; the console is the stream that was ``sys.stdout`` before. Those
streams have no file descriptor, so Dagster's compute-log capture (which redirects
descriptors and has ``tail`` copy the capture to the terminal) leaves them alone.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TextIO

from dagster import AssetKey, DagsterEvent, DagsterEventType, InitLoggerContext, JobDefinition, LoggerDefinition
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._loggers import colored_console_logger

from ps_pipelines.lib.progress import StageProgress

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# Dagster attaches its metadata (the event among it) to each record under this attribute.
DAGSTER_META = "dagster_meta"
# The step's end: the assets it did not materialize (nothing to write, or it failed) are done too.
STEP_ENDS = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_SKIPPED}


def log_path(home: Path, now: datetime | None = None) -> Path:
    return home / "logs" / f"run-{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}.log"


class _IntoLog(io.TextIOBase):
    """A text stream into the log file (without terminal colours), and onto ``console`` too."""

    def __init__(self, file: TextIO, console: TextIO | None) -> None:
        self.file, self.console = file, console

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.file.write(ANSI_ESCAPE.sub("", text))
        if self.console is not None:
            self.console.write(text)
        return len(text)

    def flush(self) -> None:
        self.file.flush()
        if self.console is not None:
            self.console.flush()


def console_line(record: logging.LogRecord, log_file: Path | str) -> str | None:
    """What a Dagster log record shows on the calm console: one line for a warning or an error
    (the error's cause, the traceback being in the log file), nothing below a warning."""
    if record.levelno < logging.WARNING:
        return None
    meta: Mapping[str, Any] = getattr(record, DAGSTER_META, None) or {}
    message = str(meta.get("orig_message") or record.getMessage()).strip()
    first, _, rest = message.partition("\n")
    where = meta.get("step_key") or meta.get("job_name") or "dagster"
    line = f"{logging.getLevelName(record.levelno)} {where}: {first}"
    error = _error_of(meta.get("dagster_event"))
    if error is not None:
        line += f" {error} (traceback in {log_file})"
    elif rest.strip():
        line += f" (more in {log_file})"
    return line


def _error_of(event: DagsterEvent | None) -> str | None:
    """The root cause of a failed step or run: its first line (``Class: message``)."""
    info = getattr(getattr(event, "event_specific_data", None), "error", None) if event is not None else None
    if info is None:
        return None
    while info.cause is not None:
        info = info.cause
    lines = info.message.strip().splitlines()
    return lines[0] if lines else info.cls_name


class RunLog:
    """The log file of one ``ps-pipelines run`` and its console. Close it when done."""

    def __init__(self, path: Path, *, verbose: bool = False, console: TextIO | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.verbose = path, verbose
        self.console = console if console is not None else sys.stdout
        self.file: IO[str] = path.open("a", encoding="utf-8", buffering=1)
        self._stage: StageProgress | None = None
        self._steps: dict[str, list[AssetKey]] = {}
        self._running: set[AssetKey] = set()  # what the run executing now selected
        self._shown: set[str] = set()  # the warnings and errors on the console

    def close(self) -> None:
        self.file.close()

    def say(self, line: str) -> None:
        """A line for the person at the console (and the file)."""
        self.file.write(ANSI_ESCAPE.sub("", line) + "\n")
        self.console.write(line + "\n")
        self.console.flush()

    def detail(self, line: str) -> None:
        """A line for the file (and the console when verbose)."""
        self.file.write(line + "\n")
        if self.verbose:
            self.console.write(line + "\n")
            self.console.flush()

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        """Route what the code inside writes to stdout and stderr into the file."""
        previous = sys.stdout, sys.stderr
        sys.stdout = _IntoLog(self.file, previous[0] if self.verbose else None)
        sys.stderr = _IntoLog(self.file, previous[1] if self.verbose else None)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr = previous

    # -- the Dagster side ----------------------------------------------------------------------

    def with_loggers(self, job: JobDefinition) -> tuple[JobDefinition, dict]:
        """``job`` with Dagster's console logger (into the file, by ``capturing``) and this log's
        own, and the run config that turns both on."""
        job = job.with_logger_defs({"console": colored_console_logger,
                                    "progress": LoggerDefinition(self._progress_logger)})
        return job, {"loggers": {"console": {"config": {"log_level": "DEBUG"}}, "progress": {}}}

    def _progress_logger(self, _: InitLoggerContext) -> logging.Logger:
        logger = logging.Logger("ps_pipelines.progress", logging.DEBUG)
        logger.addHandler(_ProgressHandler(self))
        return logger

    @contextlib.contextmanager
    def stage(self, label: str, groups: Mapping[AssetKey, str],
              steps: Mapping[str, Iterable[AssetKey]]) -> Iterator[StageProgress]:
        """Follow a stage (its assets' groups, and which assets each step holds) while inside,
        and say when it is done."""
        self._stage, self._steps = StageProgress(label, groups), {step: list(keys) for step, keys in steps.items()}
        try:
            yield self._stage
            self.say(self._stage.finish())
        finally:
            self._stage, self._steps = None, {}

    def up_to_date(self, keys: Iterable[AssetKey]) -> None:
        if self._stage is not None:
            self._show(self._stage.up_to_date(keys))

    @contextlib.contextmanager
    def run(self, keys: Iterable[AssetKey]) -> Iterator[None]:
        """A run of the stage executes ``keys`` inside, its output into the file; once it
        returns, whatever of ``keys`` no event settled is done."""
        self._running = set(keys)
        try:
            with self.capturing():
                yield
            if self._stage is not None:
                self._stage.runs += 1
                self._show(self._stage.ran(self._running))
        finally:
            self._running = set()

    def on_record(self, record: logging.LogRecord) -> None:
        event = (getattr(record, DAGSTER_META, None) or {}).get("dagster_event")
        if self._stage is not None and isinstance(event, DagsterEvent):
            self._show(self._progress(self._stage, event))
        line = None if self.verbose else console_line(record, self.path)
        # Once: a read-back pass meets the same invalid postings again (verbose: the console
        # logger showed it already).
        if line is not None and line not in self._shown:
            self._shown.add(line)
            self.console.write(line + "\n")
            self.console.flush()

    def _show(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.say(line)

    def _progress(self, stage: StageProgress, event: DagsterEvent) -> list[str]:
        # A step of an earlier run of the stage (dbt's, say) may hold assets this run leaves out.
        step_keys = [key for key in self._steps.get(event.step_key or "", []) if key in self._running]
        if event.event_type == DagsterEventType.STEP_START:
            stage.step_started(step_keys)
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION and event.asset_key is not None:
            metadata = event.step_materialization_data.materialization.metadata
            return stage.materialized(event.asset_key, {name: getattr(value, "value", value)
                                                        for name, value in metadata.items()})
        elif event.event_type in STEP_ENDS:
            return stage.ran(step_keys)
        return []


def stage_of(log: RunLog, graph: AssetGraph, label: str,
             keys: Iterable[AssetKey]) -> contextlib.AbstractContextManager[StageProgress]:
    """``log.stage`` of ``keys``: by asset group, each step holding its assets."""
    steps: dict[str, list[AssetKey]] = {}
    for key in keys:
        steps.setdefault(graph.assets_def_for_key(key).op.name, []).append(key)
    return log.stage(label, {key: graph.get(key).group_name for key in keys}, steps)


class _ProgressHandler(logging.Handler):
    def __init__(self, log: RunLog) -> None:
        super().__init__(logging.DEBUG)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.log.on_record(record)
        except Exception:  # a broken progress line must never fail the run
            self.handleError(record)
