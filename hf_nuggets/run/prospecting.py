"""The main job: score a dataset with a `GoldenScorer`, write the results and a summary, keep what was done."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..algorithms.redundancy import check_min_distance
from ..data.checks import check_columns
from ..gates import FLAGS_COLUMN, check_gates
from ..scoring.scorer import GoldenScorer
from ..selection import SCORE_COLUMN, check_percent
from ..summary import score_quantiles
from ..utils.files import check_writable, folder_lock
from .loop import (
    CallbackHandler,
    ProgressCallback,
    RunCallback,
    RunState,
    TimeBudgetCallback,
    check_callbacks,
    score_rows,
)
from .outputs import (
    PARTIAL_STEM,
    SCORED_STEM,
    remove_stale_outputs,
    run_summary,
    save_dataset_files,
    selection_record,
    write_summary,
)

logger = logging.getLogger(__name__)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during the scoring of `prospect`, raised once the rows scored before are saved as `scored.partial.*`.

    It is a `KeyboardInterrupt`, so whatever stops on Ctrl-C still stops; its message says where the rows are.

    Attributes:
        rows_saved (`int`): The rows written to the partial files.
        files (`dict[str, str]`): The partial files, `{"parquet": ..., "jsonl": ...}`.
    """

    def __init__(self, message: str, rows_saved: int, files: Mapping[str, str]):
        super().__init__(message)
        self.rows_saved, self.files = rows_saved, dict(files)


def check_run_arguments(
    *,
    top_percent: float | None = None,
    min_distance: float | None = None,
    limit: int | None = None,
    gates: str | Sequence[str] | None = "all",
    **positive: Any,
) -> None:
    """The argument checks every run shares: `top_percent`, `min_distance`, `limit`, `gates`, and positive integers by
    name.

    Example:

    ```python
    >>> check_run_arguments(top_percent=5, limit=10, batch_size=16)
    >>> check_run_arguments(batch_size=0)
    Traceback (most recent call last):
    ...
    ValueError: `batch_size` must be a positive integer, got 0.
    ```
    """
    if top_percent is not None:
        check_percent(top_percent, "top_percent")
    if min_distance is not None:
        check_min_distance(min_distance)
        if top_percent is None:
            raise ValueError("`min_distance` needs `top_percent`: it makes the top selection diverse.")
    check_gates(gates)
    for name, value in (("limit", limit), *positive.items()):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def prepare_task_set(
    dataset: Any,
    scorer: GoldenScorer,
    task_set: Any = None,
    auto_options: Mapping[str, Any] | None = None,
    *,
    progress: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[GoldenScorer, dict[str, Any]]:
    """The scorer a run uses, and the `tasks` record of its summary.

    Args:
        dataset (`datasets.Dataset`): The rows that will be scored (`"auto"` draws its tasks from them).
        scorer (`GoldenScorer`): The scorer as configured.
        task_set (*optional*): `None` keeps the scorer's tasks; `"auto"` builds them with `auto_task_set` from
            `dataset`, with the scorer's prospector, columns, template, limits and gate settings; anything else
            `GoldenScorer` accepts (a file, a Hub id, a list of dicts, a `Dataset`) replaces them.
        auto_options (`dict`, *optional*): More arguments of `auto_task_set` (`num_tasks`, `sample_size`, `seed`,
            `quality`, `selector`, ...), for `"auto"` only.
        progress (`bool`, *optional*, defaults to `True`): Show progress bars.
        should_stop (`Callable[[], bool]`, *optional*): For `"auto"`, asked between the small steps of drawing the
            tasks (see `refine_task_set`); `True` abandons the run with `RunCancelled`.

    Returns:
        `tuple[GoldenScorer, dict]`: The scorer and `{"source", "count"}` (plus `provenance` for `"auto"`);
        `source` is `"auto"`, `"shipped"`, the file or Hub id, or `"given"` for tasks passed in memory.
    """
    if auto_options and not (isinstance(task_set, str) and task_set == "auto"):
        raise ValueError(f"`auto_options` are for `task_set='auto'`, got `task_set`={task_set!r}.")
    if isinstance(task_set, str) and task_set == "auto":
        from ..taskset.refine import auto_task_set

        tasks, provenance = auto_task_set(
            dataset,
            prospector=scorer.loaded_prospector,
            columns=scorer.columns,
            template=scorer.template,
            limits=scorer.limits,
            gate_settings=scorer.gate_settings,
            progress=progress,
            should_stop=should_stop,
            **dict(auto_options or {}),
        )
        scorer = scorer.with_options(task_set=tasks.select_columns(["instruction", "input", "output"]).to_list())
        return scorer, {"source": "auto", "count": len(scorer.tasks), "provenance": provenance}
    if task_set is not None:
        scorer = scorer.with_options(task_set=task_set)
    return scorer, {"source": getattr(scorer, "task_source", "given"), "count": len(scorer.tasks)}


def prospect(
    dataset: Any,
    scorer: GoldenScorer,
    out_dir: str | os.PathLike,
    *,
    task_set: Any = None,
    auto_options: Mapping[str, Any] | None = None,
    top_percent: float | None = None,
    min_distance: float | None = None,
    limit: int | None = None,
    max_seconds: float | None = None,
    batch_size: int = 16,
    source: str | None = None,
    progress: bool = True,
    gates: str | Sequence[str] | None = "all",
    callbacks: Sequence[RunCallback] = (),
) -> tuple[Any, dict[str, Any]]:
    """Score `dataset`, write `scored.parquet`, `scored.jsonl` and `summary.json` to `out_dir`, and return both.

    Rows are scored in order, batch by batch, under a progress bar. With `max_seconds`, a batch starts only if it is
    expected to end within the budget (at the pace of the rows scored so far; the first batch always runs), and the
    rows scored by then are kept and written (the summary says the run stopped early). When a row fails, the rows
    scored before it are written to `scored.partial.*` and the error says where; so are they on Ctrl-C.

    Args:
        dataset (`datasets.Dataset`): The candidates.
        scorer (`GoldenScorer`): The scorer (prospector, task set, template, limits).
        out_dir (`str`): Output folder, created if missing. The run holds it (see `folder_lock`): another run there is
            refused until this one ends. A finished run removes the `scored.partial.*` of an earlier run, and its
            `selected.*` when this run makes no selection.
        task_set (*optional*): `"auto"` draws the tasks from the rows to be scored with `auto_task_set` (before
            any scoring; too little data fails there); a file, Hub id, list of dicts or `Dataset` replaces the
            scorer's tasks; `None` (default) keeps them. See `prepare_task_set`.
        auto_options (`dict`, *optional*): Arguments of `auto_task_set` (`num_tasks`, `sample_size`, `seed`, ...).
        top_percent (`float`, *optional*): Also write the top `top_percent`% as `selected.parquet/.jsonl`.
        min_distance (`float`, *optional*): Make that top diverse: skip rows closer than this cosine distance to a
            better kept row (see `select_top`); the summary's `selection` counts them as `rows_redundant`.
        limit (`int`, *optional*): Score only the first `limit` rows.
        max_seconds (`float`, *optional*): Time budget for scoring (loading the model not included).
        batch_size (`int`, *optional*, defaults to `16`): Rows per scorer call.
        source (`str`, *optional*): Where the data came from, recorded in the summary.
        progress (`bool`, *optional*, defaults to `True`): Show a progress bar.
        gates (`str` or `list[str]`, *optional*, defaults to `"all"`): The gates that keep rows out of the top (see
            `select_top`); `None` to select by golden score alone. The summary counts the flagged rows either way.
        callbacks (`list[RunCallback]`, *optional*): Hooks of the run (see `hf_nuggets.run.loop`): they see each
            phase and batch, may stop the run (keeping the rows done) or cancel it with `RunCancelled` (the rows done
            are saved as `scored.partial.*`); with `task_set="auto"`, they also see each step of drawing the tasks
            (`on_step`), where stopping abandons the run.

    Returns:
        `tuple[datasets.Dataset, dict]`: The scored rows and the summary.

    Raises:
        FolderLockedError: Another live run holds `out_dir` (a `RuntimeError`).
        RuntimeError: A row failed (or a hook cancelled the run); the rows done are in `scored.partial.*`.
        RunInterrupted: Ctrl-C during scoring (a `KeyboardInterrupt`); the rows done are in `scored.partial.*`.
    """
    check_run_arguments(
        top_percent=top_percent, min_distance=min_distance, limit=limit, gates=gates, batch_size=batch_size
    )
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"`max_seconds` must be positive, got {max_seconds!r}.")
    if not hasattr(dataset, "__len__"):
        raise TypeError("`prospect` needs a `datasets.Dataset` with a length; map an IterableDataset with the scorer.")
    if len(dataset) == 0:
        raise ValueError("The dataset is empty: there is nothing to score.")
    columns_read = check_columns(dataset.column_names, scorer.columns, source=source or "the dataset")
    out = check_writable(out_dir)
    with folder_lock(out):  # one run at a time in a folder; freed however the run ends
        rows_total = len(dataset) if limit is None else min(limit, len(dataset))
        hooks = [ProgressCallback(disable=not progress), *check_callbacks(callbacks)]
        if max_seconds is not None:
            hooks.append(TimeBudgetCallback(max_seconds))
        handler, state = CallbackHandler(hooks), RunState(rows_total=rows_total)

        t0 = time.perf_counter()
        handler.phase(state, "loading")
        scorer.loaded_prospector  # noqa: B018 - loads the model (timed as load_s)
        t1 = time.perf_counter()
        work = dataset.select(range(rows_total)) if rows_total < len(dataset) else dataset
        handler.phase(state, "tasks")
        scorer, tasks_record = prepare_task_set(
            work, scorer, task_set, auto_options, progress=progress, should_stop=lambda: handler.step(state)
        )
        state.num_tasks, state.tasks = len(scorer.tasks), list(scorer.tasks)
        task_seconds = time.perf_counter() - t1
        handler.phase(state, "zero_shot")
        scorer.zero_shot_scores  # noqa: B018 - computes and caches the zero-shot scores
        t2 = time.perf_counter()

        handler.phase(state, "scoring")
        columns: dict[str, list] = {}
        try:
            score_rows(
                dataset, scorer, stop=rows_total, batch_size=batch_size, callbacks=hooks, state=state, into=columns
            )
        except (Exception, KeyboardInterrupt) as err:
            partial = _with_columns(dataset, columns)
            done = len(partial)
            paths = save_dataset_files(partial, out, PARTIAL_STEM) if done else {}
            saved = (
                f"The {done} rows scored before are saved in {paths['parquet']} and {paths['jsonl']}."
                if done
                else "No row was scored before, so no scored.partial.* was written."
            )
            if isinstance(err, KeyboardInterrupt):
                stopped = f"Scoring stopped after {done} of {rows_total} rows. {saved}"
                raise RunInterrupted(stopped, done, paths) from err
            raise RuntimeError(
                f"Scoring stopped at rows {done}-{min(done + batch_size, rows_total) - 1}: {err} {saved}"
            ) from err
        t3 = time.perf_counter()

        handler.phase(state, "writing")
        scored = _with_columns(dataset, columns)
        done = len(scored)
        files = save_dataset_files(scored, out, SCORED_STEM)

        summary = run_summary(
            scorer,
            source=source,
            rows_total=rows_total,
            rows_scored=done,
            stopped_early=state.stopped_early,
            max_seconds=max_seconds,
            quantiles=score_quantiles(columns[SCORE_COLUMN]),
            times=(t0, t1, t2, t3),
            pairs_scored=done * len(scorer.tasks),
            flags=columns[FLAGS_COLUMN],
            gates=gates,
            tasks=tasks_record,
            task_seconds=task_seconds,
            columns=columns_read,
        )
        summary["files"] = files
        if top_percent is not None:
            summary["selection"] = selection_record(
                scored,
                top_percent,
                out,
                gates=gates,
                min_distance=min_distance,
                columns=scorer.columns,
                progress=progress,
            )
        remove_stale_outputs(out, selection=top_percent is not None)
        write_summary(out, summary)
        return scored, summary


def _with_columns(dataset: Any, columns: Mapping[str, list]) -> Any:
    """The first rows of `dataset` with the score columns added, as many rows as every column holds.

    An interrupt may land between the columns of a batch; rows not in every column are left out.
    """
    done = min((len(values) for values in columns.values()), default=0)
    rows = dataset.select(range(done))
    for name, values in columns.items():
        rows = rows.add_column(name, values[:done])
    return rows
