"""The run of the Prospect tab: the visitor's settings checked, then the library's run (`prospect_with_config`, as
`hf-nuggets score` runs it) in a background thread, watched by a `RunCallback` so the page stays live (the phase,
the partial histogram, Cancel), and its results, or the rows scored before a cancel, put on the page."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from hf_nuggets import GoldenScorer, export_repo_folder, load_default_task_set
from hf_nuggets.data.formatting import examples_from_rows
from hf_nuggets.run.build import prospect_with_config
from hf_nuggets.run.config import ScoreConfig
from hf_nuggets.run.loop import CancelCallback, RunCancelled, RunControl, RunState, batch_fits
from hf_nuggets.selection import GAIN_COLUMN, SCORE_COLUMN, dataset_gated, n_selected, top_indices
from hf_nuggets.summary import flaw_report, format_summary
from prospectors import Prospectors
from rendering import (
    UserError,
    duration,
    error_text,
    histogram_html,
    message_html,
    results_table,
    stats_html,
    stop_message,
    tasks_frame,
)
from visitor_data import MAX_DATA_MB, check_rows, column_mapping, read_upload, workspace

logger = logging.getLogger("hf_nuggets.space")

MAX_SECONDS = 600
DEFAULT_SECONDS = 120
DEFAULT_TASKS = 8
#: Row-task pairs a second the embedded prospector scores on a 2-vCPU machine (the run summary's `pairs_per_s`):
#: measured by the browser test, 16 sample rows against 8 tasks, 1 min 14 s in all (spaces/README.md).
MEASURED_PAIRS_PER_S = 1.9
#: Share of the time budget that the default run is planned to take at that pace, the rest a margin for loading the
#: model, the zero-shot pass and a slower or busier machine (a free Space is shared).
BUDGET_SHARE = 0.5
#: The rows scored by default: as many as the measured pace scores against the default tasks in half the default
#: time budget (`MEASURED_PAIRS_PER_S * DEFAULT_SECONDS * BUDGET_SHARE / DEFAULT_TASKS`, rounded down: 14).
DEFAULT_ROWS = int(MEASURED_PAIRS_PER_S * DEFAULT_SECONDS * BUDGET_SHARE / DEFAULT_TASKS)


def expected_seconds(rows: int, num_tasks: int) -> float:
    """The seconds a run of `rows` rows against `num_tasks` tasks takes at the measured pace of the embedded
    prospector on a 2-vCPU machine (`MEASURED_PAIRS_PER_S`)."""
    return rows * num_tasks / MEASURED_PAIRS_PER_S


def default_run_hint() -> str:
    """What the idle status line says: the default run, how long it takes, and that the budget bounds it."""
    return (
        f"The default run, {DEFAULT_ROWS} rows against {DEFAULT_TASKS} tasks, takes about "
        f"{duration(expected_seconds(DEFAULT_ROWS, DEFAULT_TASKS))} on a free 2-vCPU Space "
        f"({MEASURED_PAIRS_PER_S:g} row-task pairs a second). More rows take longer: the time budget stops the run "
        "early and keeps the rows scored by then."
    )


TASKS_SHIPPED = "Shipped task set (16 varied tasks)"
TASKS_REFINED = "Refined from my data"
TASKS_UPLOADED = "Upload a task set"

_STOPS: dict[str, threading.Event] = {}  # a running job's stop flag, by the visitor's session

# ---------------------------------------------------------------------------------------------------------------------
# What the visitor asked for


@dataclass
class RunRequest:
    """A visitor's prospecting settings, checked (see `check_request`)."""

    dataset: Any
    source: str
    columns: dict[str, str | None]
    mapping: dict[str, str | None]
    rows: int
    num_tasks: int
    seconds: float
    top_percent: float
    task_mode: str
    task_rows: Any = None  # the uploaded task set

    @property
    def refined(self) -> bool:
        return self.task_mode == TASKS_REFINED

    def config(self, out_dir: str | Path, batch_size: int) -> ScoreConfig:
        """The run's settings, as `hf-nuggets score` would take them: refined tasks are its `--tasks auto`, drawn
        from every row to score."""
        return ScoreConfig(
            out=str(out_dir),
            num_tasks=self.num_tasks,
            columns={key: name or "" for key, name in self.columns.items()},  # "" is "no such column"
            top=self.top_percent,
            limit=self.rows,
            max_seconds=self.seconds,
            batch_size=batch_size,
            **({"tasks": "auto", "task_sample_size": self.rows} if self.refined else {}),
        )

    def task_set(self) -> Any:
        """The tasks given to the run instead of `config.tasks`: the uploaded ones (`None`: shipped or refined)."""
        return self.task_rows if self.task_mode == TASKS_UPLOADED else None

    def known_tasks(self) -> list[dict] | None:
        """The tasks as rows, when they are known before the run (shipped or uploaded; refined ones are not)."""
        if self.task_mode == TASKS_UPLOADED:
            return self.task_rows.select(range(min(self.num_tasks, len(self.task_rows)))).to_list()
        return None if self.refined else load_default_task_set(self.num_tasks)

    def tasks_used(self, summary: Mapping[str, Any]) -> list[dict]:
        """The tasks the run used, as rows: known ones, or the refined ones that `summary.json` names (their rows of
        the data and why each was chosen)."""
        known = self.known_tasks()
        if known is not None:
            return known
        made = summary["tasks"]["provenance"]
        examples = examples_from_rows(self.dataset.select(made["rows"]), self.columns)
        return [
            {"instruction": e.instruction, "input": e.input, "output": e.output, "refine_reason": reason}
            for e, reason in zip(examples, made["reasons"], strict=True)
        ]


def check_request(
    session: dict,
    instruction: str,
    input_: str,
    output: str,
    messages: str,
    task_mode: str,
    task_file: str | None,
    num_tasks: float,
    rows: float,
    seconds: float,
    top_percent: float,
    *,
    max_upload_mb: float,
    max_data_mb: float = MAX_DATA_MB,
) -> RunRequest:
    """Check the settings before any model loads; a problem is a `UserError` (or a `ValueError` of the library)."""
    data = session.get("data")
    if not data:
        raise UserError("Bring data first: upload a file, use the sample, or load a Hub dataset.")
    dataset = data["dataset"]
    columns = column_mapping(instruction, input_, output, messages)
    rows = max(1, min(int(rows or len(dataset)), len(dataset)))
    num_tasks = int(num_tasks or DEFAULT_TASKS)
    task_rows = None
    mapping = check_rows(dataset, columns, rows)
    if task_mode == TASKS_UPLOADED:
        task_rows, _ = read_upload(
            task_file, field="the Task set file box", max_mb=max_upload_mb, max_data_mb=max_data_mb
        )
        GoldenScorer(None, task_rows, num_tasks=num_tasks)  # validates the columns, loads nothing
    elif task_mode == TASKS_REFINED and rows < num_tasks:
        raise UserError(f"Refining {num_tasks} tasks needs at least {num_tasks} rows; {rows} are selected.")
    return RunRequest(
        dataset=dataset,
        source=data["source"],
        columns=columns,
        mapping=mapping,
        rows=rows,
        num_tasks=num_tasks,
        seconds=float(min(max(seconds or DEFAULT_SECONDS, 5), MAX_SECONDS)),
        top_percent=float(top_percent or 5),
        task_mode=task_mode,
        task_rows=task_rows,
    )


# ---------------------------------------------------------------------------------------------------------------------
# The run, in a thread, watched by the page


class PageCallback(CancelCallback):
    """The Space's hook on the library's run: what the page shows while it runs, the visitor's Cancel, and the time
    budget of the whole run.

    It names each phase for the status line, counts the tasks once they are built, keeps every batch's golden
    scores and gains for the live histogram, and abandons the run with `RunCancelled` before the next batch (or the
    next step of refining the tasks) once `stop` is set (the rows scored by then are saved as `scored.partial.*`). A
    cancel that comes when every row is scored is too late: the run ends normally.

    The time budget counts from the start of the library's run (the prospector loaded): refining the tasks stops
    the run once it is spent (`timed_out`; nothing is scored yet), and scoring stops before a batch that is not
    expected to end within it (the first batch always runs; the rows scored are kept).

    Args:
        stop (`threading.Event`): The visitor's stop flag.
        refining (`int`, *optional*): Tasks being refined from the data, named while they are.
        tasks (`list[dict]`, *optional*): The tasks, when known before the run.
        seconds (`float`, *optional*): The run's time budget; none when omitted.
    """

    def __init__(
        self,
        stop: threading.Event,
        *,
        refining: int | None = None,
        tasks: list[dict] | None = None,
        seconds: float | None = None,
    ):
        super().__init__(stop, reason="cancelled by the visitor")
        self.seconds, self.started, self.timed_out = seconds, None, False
        self.tasks = tasks
        self.num_tasks = len(tasks) if tasks else 0
        self.stage: str | None = None  # the library's phase
        self.phase = "Starting…"
        self.texts = {  # what the status line says in each phase
            "loading": "Loading the prospector…",
            "tasks": f"Refining {refining} tasks from your data (gates, quality judge, then diversity)…"
            if refining
            else "Reading the task set…",
            "zero_shot": "Computing the zero-shot scores of the tasks…",
            "scoring": "Scoring",
            "writing": "Writing the scored data…",
        }
        self._lock = threading.Lock()
        self._scores: list[float] = []
        self._gains: list[float] = []

    def on_phase(self, state: RunState, phase: str) -> None:
        if phase != "writing":
            super().on_phase(state, phase)
        if self.started is None:
            self.started = time.perf_counter()
        self.num_tasks = state.num_tasks or self.num_tasks
        self.stage, self.phase = phase, self.texts[phase]

    def elapsed(self) -> float:
        """Seconds since the library's run started (0 before)."""
        return 0.0 if self.started is None else time.perf_counter() - self.started

    def on_step(self, state: RunState, control: RunControl) -> None:
        super().on_step(state, control)
        if self.seconds is not None and self.elapsed() > self.seconds:
            self.timed_out = control.should_stop = True

    def on_batch_begin(self, state: RunState, control: RunControl) -> None:
        super().on_batch_begin(state, control)
        if self.seconds is not None:
            left = self.seconds - self.elapsed()
            if not batch_fits(state.scoring_seconds, state.rows_done, state.next_rows, state.scoring_seconds + left):
                control.should_stop = True

    def on_batch_end(self, state: RunState, batch: Any, result: Mapping[str, Any]) -> None:
        with self._lock:
            self._scores.extend(float(s) for s in result[SCORE_COLUMN])
            self._gains.extend(float(g) for g in result[GAIN_COLUMN])

    def snapshot(self) -> tuple[list[float], list[float]]:
        """The golden scores and gains of the rows scored so far."""
        with self._lock:
            return list(self._scores), list(self._gains)


@dataclass
class RunResult:
    """What a run leaves: the scored rows, the summary, the Hub-ready folder (`export_repo_folder`) and its zip."""

    scored: Any
    summary: dict[str, Any]
    export: dict[str, Any]
    archive: str


def run_prospecting(
    request: RunRequest, config: ScoreConfig, prospectors: Prospectors, model_choice: str, page: PageCallback
) -> RunResult:
    """Load the visitor's prospector, run the library's prospecting, then write the Hub-ready folder and its zip."""
    page.phase = page.texts["loading"]  # the Space loads it (its own checks and lock); the run then finds it loaded
    model = prospectors.load(model_choice)
    scored, summary = prospect_with_config(
        config,
        request.dataset,
        source=request.source,
        prospector=model,
        task_set=request.task_set(),
        callbacks=[page],
        progress=False,
    )
    page.phase = "Writing the dataset card…"
    out_dir = Path(config.out)
    export = export_repo_folder(scored, out_dir / "hub", top_percent=config.top, summary=summary)
    archive = shutil.make_archive(str(out_dir / "hub-repo"), "zip", root_dir=out_dir / "hub")
    return RunResult(scored, summary, export, archive)


class Job:
    """A function run in a background thread, so the page stays live; its result or its error is kept."""

    def __init__(self, target: Callable[[], Any]):
        self.result: Any = None
        self.error: BaseException | None = None
        self._target = target
        self.thread = threading.Thread(target=self._run, daemon=True, name="hf-nuggets-space-job")

    def _run(self) -> None:
        try:
            self.result = self._target()
        except BaseException as err:  # noqa: BLE001 - reported to the visitor by the page
            self.error = err


def was_cancelled(err: BaseException) -> bool:
    """Whether a run ended on the visitor's Cancel (`prospect` wraps a `RunCancelled` met while scoring)."""
    return isinstance(err, RunCancelled) or isinstance(err.__cause__, RunCancelled)


# ---------------------------------------------------------------------------------------------------------------------
# The page's outputs: session, status, run button, cancel button, results group, histogram, stats, table, tasks,
# summary, report, 4 downloads

SKIP = gr.skip()


def outputs(
    session: dict,
    status: Any = SKIP,
    *,
    running: bool | None = None,
    results: Any = SKIP,
    hist: Any = SKIP,
    stats: Any = SKIP,
    table: Any = SKIP,
    tasks: Any = SKIP,
    summary: Any = SKIP,
    report: Any = SKIP,
    downloads: tuple = (SKIP,) * 4,
) -> tuple:
    buttons = (SKIP, SKIP)
    if running is not None:
        buttons = (gr.update(interactive=not running), gr.update(visible=running))
    return (session, status, *buttons, results, hist, stats, table, tasks, summary, report, *downloads)


def shown(frame: Any) -> dict:
    """A table's update: `frame`, made visible (the tables are hidden until they have rows)."""
    return gr.update(value=frame, visible=True)


def progress_outputs(
    session: dict, page: PageCallback, request: RunRequest, stop: threading.Event, started: float, progress: Any
) -> tuple:
    """The page while the run goes on: the phase, or the rows scored so far with their histogram."""
    scores, _ = page.snapshot()
    elapsed = duration(time.perf_counter() - started)
    if page.stage != "scoring" and not scores:
        progress(None, desc=page.phase)
        return outputs(session, message_html("info", f"{page.phase} · {elapsed}", progress=0.0))
    rows = request.rows
    progress((len(scores), rows), desc="Scoring rows", unit="rows")
    text = f"Scored {len(scores)} of {rows} rows against {page.num_tasks} tasks · {elapsed}"
    if stop.is_set():
        text += " · cancelling after this batch…"
    hist = SKIP
    if scores and page.num_tasks:
        hist = histogram_html(scores, n_selected(len(scores), request.top_percent), page.num_tasks)
    return outputs(
        session,
        message_html("info", text, progress=len(scores) / rows),
        results=gr.update(visible=bool(scores)),
        hist=hist,
        tasks=shown(tasks_frame(page.tasks)) if page.tasks else SKIP,
    )


def done_outputs(
    session: dict, result: RunResult, request: RunRequest, out_dir: Path, started: float, show: str
) -> tuple:
    """The page after a run: histogram, stats, ranked rows, tasks, summary and downloads; the session keeps the
    result for the row view and the push."""
    scored, summary, top_percent = result.scored, result.summary, request.top_percent
    num_tasks = summary["num_tasks"]
    files = summary.get("files", {})
    rows_scored = scored.to_dict()
    gated = dataset_gated(scored)
    kept = len(top_indices(scored[SCORE_COLUMN], scored[GAIN_COLUMN], gated, percent=top_percent))
    threshold = (summary.get("selection") or {}).get("threshold")
    note = flaw_report(scored) if "flaw" in scored.column_names else ""
    ungated_scores = [s for i, s in enumerate(rows_scored[SCORE_COLUMN]) if gated is None or not gated[i]]
    public_summary = {k: v for k, v in summary.items() if k not in ("files", "source")}
    public_summary["source"] = request.source
    session["result"] = {
        "dir": str(out_dir),
        "parquet": files.get("parquet"),
        "summary": summary,
        "source": request.source,
        "mapping": request.mapping,
        "top_percent": top_percent,
    }
    done = (
        f"Done: {summary['rows_scored']} of {summary['rows_total']} rows scored against {num_tasks} tasks in "
        f"{duration(time.perf_counter() - started)}."
    )
    kind = "ok"
    if summary.get("stopped_early"):
        kind, done = "warn", done + f" The {request.seconds:g} s budget ran out; raise it to score the other rows."
    return outputs(
        session,
        message_html(kind, done),
        running=False,
        results=gr.update(visible=True),
        hist=histogram_html(ungated_scores, kept, num_tasks),
        stats=stats_html(summary, kept, top_percent, threshold, note),
        table=shown(results_table(rows_scored, request.mapping, show)),
        tasks=shown(tasks_frame(request.tasks_used(summary))),
        summary=public_summary,
        report=format_summary(summary, rows_scored),
        downloads=(
            gr.update(value=files.get("parquet"), visible=True),
            gr.update(value=files.get("jsonl"), visible=True),
            gr.update(value=str(Path(result.export["folder"]) / "README.md"), visible=True),
            gr.update(value=result.archive, visible=True),
        ),
    )


def failed_outputs(
    session: dict, err: BaseException, page: PageCallback, request: RunRequest, out_dir: Path, show: str
) -> tuple:
    """The page after a failed run: the rows scored before a cancel (`scored.partial.*`), or the error."""
    cancelled = was_cancelled(err)
    partial = out_dir / "scored.partial.parquet"
    if cancelled and partial.is_file():
        from datasets import Dataset

        scored = Dataset.from_parquet(str(partial), cache_dir=str(out_dir / "hf-cache"))
        rows_scored = scored.to_dict()
        session["result"] = None
        return outputs(
            session,
            message_html(
                "warn",
                f"Cancelled after {len(scored)} rows. The rows scored so far are shown below and can be "
                "downloaded; run again to score them all.",
            ),
            running=False,
            results=gr.update(visible=True),
            hist=histogram_html(
                rows_scored[SCORE_COLUMN], n_selected(len(scored), request.top_percent), page.num_tasks
            ),
            stats="",
            table=shown(results_table(rows_scored, request.mapping, show)),
            tasks=shown(tasks_frame(page.tasks)) if page.tasks else gr.update(visible=False),
            summary={"cancelled": True, "rows_scored": len(scored)},
            report="",
            downloads=(
                gr.update(value=str(partial), visible=True),
                gr.update(value=str(out_dir / "scored.partial.jsonl"), visible=True),
                gr.update(value=None, visible=False),
                gr.update(value=None, visible=False),
            ),
        )
    if cancelled and page.timed_out:
        text = (
            f"The {request.seconds:g} s time budget ran out while refining the tasks from your data, before any row "
            "was scored: raise the budget, score fewer rows, or use the shipped task set."
        )
        return outputs(session, message_html("error", text), running=False)
    if cancelled:
        return outputs(session, message_html("warn", "Cancelled before any row was scored."), running=False)
    if not isinstance(err, (UserError, ImportError)):
        logger.error("Prospecting failed: %s: %s", type(err).__name__, err)
    return outputs(session, message_html("error", error_text(err)), running=False)


# ---------------------------------------------------------------------------------------------------------------------
# The handlers of the Prospect and Cancel buttons


class RunHandler:
    """The Prospect button: check the settings, run in a thread, show its progress, then its results.

    Args:
        prospectors (`Prospectors`): The prospectors offered.
        max_upload_mb (`float`): Largest task file.
        batch_size (`int`): Rows per scorer call; the page updates after each batch.
        max_data_mb (`float`, *optional*, defaults to `100`): Megabytes a task file's rows may take once read.
    """

    def __init__(
        self, prospectors: Prospectors, *, max_upload_mb: float, batch_size: int, max_data_mb: float = MAX_DATA_MB
    ):
        self.prospectors, self.max_upload_mb, self.batch_size = prospectors, max_upload_mb, batch_size
        self.max_data_mb = max_data_mb

    def run(
        self,
        session: dict,
        instruction: str,
        input_: str,
        output: str,
        messages: str,
        model_choice: str,
        task_mode: str,
        task_file: str | None,
        num_tasks: float,
        rows: float,
        seconds: float,
        top_percent: float,
        show: str,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 - how Gradio injects the progress bar
    ) -> Iterator[tuple]:
        try:
            asked = check_request(
                session, instruction, input_, output, messages, task_mode, task_file, num_tasks, rows, seconds,
                top_percent, max_upload_mb=self.max_upload_mb, max_data_mb=self.max_data_mb,
            )  # fmt: skip
            out_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workspace(session)))
            config = asked.config(out_dir, self.batch_size)
        except Exception as err:  # noqa: BLE001 - every failure is a message
            if not isinstance(err, (UserError, ValueError, KeyError, TypeError)):
                logger.exception("Prospecting not started")
            yield outputs(session, message_html("error", error_text(err)), running=False)
            return

        stop = threading.Event()
        key = request.session_hash if request else uuid.uuid4().hex
        _STOPS[key] = stop
        page = PageCallback(
            stop, refining=asked.num_tasks if asked.refined else None, tasks=asked.known_tasks(), seconds=asked.seconds
        )
        job = Job(lambda: run_prospecting(asked, config, self.prospectors, model_choice, page))
        started = time.perf_counter()
        job.thread.start()
        hidden = tuple(gr.update(visible=False, value=None) for _ in range(4))
        yield outputs(
            session,
            message_html("info", "Starting…", progress=0.0),
            running=True,
            results=gr.update(visible=False),
            table=gr.update(visible=False),  # the last run's rows, until this run has its own
            tasks=gr.update(visible=False),
            downloads=hidden,
        )
        seen = None
        try:
            while job.thread.is_alive():
                job.thread.join(timeout=0.5)
                now = (len(page.snapshot()[0]), page.phase)
                if now != seen:
                    seen = now
                    yield progress_outputs(session, page, asked, stop, started, progress)
        finally:
            stop.set()  # a closed page stops its job too
            _STOPS.pop(key, None)
        try:
            if job.error is not None:
                yield failed_outputs(session, job.error, page, asked, out_dir, show)
            else:
                yield done_outputs(session, job.result, asked, out_dir, started, show)
        except Exception as err:  # noqa: BLE001 - showing the results failed: a message, not error badges
            logger.exception("Results not shown")
            yield outputs(
                session, message_html("error", f"Could not show the results: {error_text(err)}"), running=False
            )


def cancel(request: gr.Request):
    """The Cancel button: the visitor's running job stops after the batch being scored."""
    return stop_message(
        _STOPS, request, idle="Nothing is running.", stopping="Cancelling: the batch being scored finishes first…"
    )
