"""The main job: score a dataset with a `GoldenScorer`, write the results and a summary, keep what was done."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .gates import FLAGS_COLUMN, GATE_NAMES, GateSettings, check_gates, gated_mask, split_flags
from .scorer import OUTPUT_COLUMNS, GoldenScorer
from .selection import SCORE_COLUMN, check_percent, select_top
from .summary import score_quantiles

logger = logging.getLogger(__name__)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_dataset_files(dataset: Any, out_dir: str | os.PathLike, stem: str) -> dict[str, str]:
    """Write a dataset as `<stem>.parquet` and `<stem>.jsonl` (each written to a temporary name, then renamed)."""
    out = Path(out_dir)
    paths = {}
    for suffix, writer in (("parquet", dataset.to_parquet), ("jsonl", lambda p: dataset.to_json(p, lines=True))):
        final = out / f"{stem}.{suffix}"
        tmp = out / f".{stem}.{suffix}.tmp"
        writer(str(tmp))
        os.replace(tmp, final)
        paths[suffix] = str(final)
    return paths


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"Output folder `out_dir`={str(out)!r} is not writable: {err}.") from err


def batch_fits(elapsed: float, rows_done: int, next_rows: int, max_seconds: float) -> bool:
    """Whether a batch of `next_rows` rows is expected to end within `max_seconds`, at the pace so far.

    Example:

    ```python
    >>> batch_fits(elapsed=200.0, rows_done=64, next_rows=16, max_seconds=210.0)  # 3.125 s a row: ends at 250 s
    False
    >>> batch_fits(elapsed=150.0, rows_done=64, next_rows=16, max_seconds=210.0)  # ends at about 187.5 s
    True
    ```
    """
    if rows_done <= 0:
        return True
    return elapsed + elapsed / rows_done * next_rows <= max_seconds


def prepare_task_set(
    dataset: Any,
    scorer: GoldenScorer,
    task_set: Any = None,
    auto_options: Mapping[str, Any] | None = None,
    *,
    progress: bool = True,
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

    Returns:
        `tuple[GoldenScorer, dict]`: The scorer and `{"source", "count"}` (plus `provenance` for `"auto"`);
        `source` is `"auto"`, `"shipped"`, the file or Hub id, or `"given"` for tasks passed in memory.
    """
    if auto_options and not (isinstance(task_set, str) and task_set == "auto"):
        raise ValueError(f"`auto_options` are for `task_set='auto'`, got `task_set`={task_set!r}.")
    if isinstance(task_set, str) and task_set == "auto":
        from .refine import auto_task_set

        tasks, provenance = auto_task_set(
            dataset,
            prospector=scorer.loaded_prospector,
            columns=scorer.columns,
            template=scorer.template,
            limits=scorer.limits,
            gate_settings=scorer.gate_settings,
            progress=progress,
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
    limit: int | None = None,
    max_seconds: float | None = None,
    batch_size: int = 16,
    source: str | None = None,
    progress: bool = True,
    gates: str | Sequence[str] | None = "all",
) -> tuple[Any, dict[str, Any]]:
    """Score `dataset`, write `scored.parquet`, `scored.jsonl` and `summary.json` to `out_dir`, and return both.

    Rows are scored in order, batch by batch, under a progress bar. With `max_seconds`, a batch starts only if it is
    expected to end within the budget (at the pace of the rows scored so far; the first batch always runs), and the
    rows scored by then are kept and written (the summary says the run stopped early). When a row fails, the rows
    scored before it are written to `scored.partial.*` and the error says where.

    Args:
        dataset (`datasets.Dataset`): The candidates.
        scorer (`GoldenScorer`): The scorer (prospector, task set, template, limits).
        out_dir (`str`): Output folder, created if missing.
        task_set (*optional*): `"auto"` draws the tasks from the rows to be scored with `auto_task_set` (before
            any scoring; too little data fails there); a file, Hub id, list of dicts or `Dataset` replaces the
            scorer's tasks; `None` (default) keeps them. See `prepare_task_set`.
        auto_options (`dict`, *optional*): Arguments of `auto_task_set` (`num_tasks`, `sample_size`, `seed`, ...).
        top_percent (`float`, *optional*): Also write the top `top_percent`% as `selected.parquet/.jsonl`.
        limit (`int`, *optional*): Score only the first `limit` rows.
        max_seconds (`float`, *optional*): Time budget for scoring (loading the model not included).
        batch_size (`int`, *optional*, defaults to `16`): Rows per scorer call.
        source (`str`, *optional*): Where the data came from, recorded in the summary.
        progress (`bool`, *optional*, defaults to `True`): Show a progress bar.
        gates (`str` or `list[str]`, *optional*, defaults to `"all"`): The gates that keep rows out of the top (see
            `select_top`); `None` to select by golden score alone. The summary counts the flagged rows either way.

    Returns:
        `tuple[datasets.Dataset, dict]`: The scored rows and the summary.
    """
    from tqdm.auto import tqdm

    if top_percent is not None:
        check_percent(top_percent, "top_percent")
    check_gates(gates)
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"`limit` must be a positive integer, got {limit!r}.")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"`max_seconds` must be positive, got {max_seconds!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if not hasattr(dataset, "__len__"):
        raise TypeError("`prospect` needs a `datasets.Dataset` with a length; map an IterableDataset with the scorer.")
    if len(dataset) == 0:
        raise ValueError("The dataset is empty: there is nothing to score.")
    out = Path(out_dir)
    _check_writable(out)
    rows_total = len(dataset) if limit is None else min(limit, len(dataset))

    t0 = time.perf_counter()
    scorer.loaded_prospector  # noqa: B018 - loads the model (timed as load_s)
    t1 = time.perf_counter()
    work = dataset.select(range(rows_total)) if rows_total < len(dataset) else dataset
    scorer, tasks_record = prepare_task_set(work, scorer, task_set, auto_options, progress=progress)
    task_seconds = time.perf_counter() - t1
    scorer.zero_shot_scores  # noqa: B018 - computes and caches the zero-shot scores
    t2 = time.perf_counter()

    columns: dict[str, list] = {name: [] for name in OUTPUT_COLUMNS}
    stopped_early = False
    bar = tqdm(total=rows_total, unit="row", desc="Prospecting", disable=not progress)
    try:
        for start in range(0, rows_total, batch_size):
            stop = min(start + batch_size, rows_total)
            result = scorer(dataset[start:stop], indices=list(range(start, stop)))
            for name, values in result.items():
                columns.setdefault(name, []).extend(values)
            bar.update(stop - start)
            next_rows = min(batch_size, rows_total - stop)
            if (
                max_seconds is not None
                and next_rows
                and not batch_fits(time.perf_counter() - t2, stop, next_rows, max_seconds)
            ):
                stopped_early = True
                break
    except Exception as err:
        bar.close()
        done = len(columns[SCORE_COLUMN])
        partial = dataset.select(range(done))
        for name, values in columns.items():
            partial = partial.add_column(name, values)
        paths = save_dataset_files(partial, out, "scored.partial")
        raise RuntimeError(
            f"Scoring stopped at rows {done}-{min(done + batch_size, rows_total) - 1}: {err} "
            f"The {done} rows scored before are saved in {paths['parquet']} and {paths['jsonl']}."
        ) from err
    bar.close()
    t3 = time.perf_counter()

    done = len(columns[SCORE_COLUMN])
    scored = dataset.select(range(done))
    for name, values in columns.items():
        scored = scored.add_column(name, values)
    files = save_dataset_files(scored, out, "scored")
    for stale in ("scored.partial.parquet", "scored.partial.jsonl"):
        (out / stale).unlink(missing_ok=True)

    summary = run_summary(
        scorer,
        source=source,
        rows_total=rows_total,
        rows_scored=done,
        stopped_early=stopped_early,
        max_seconds=max_seconds,
        quantiles=score_quantiles(columns[SCORE_COLUMN]),
        times=(t0, t1, t2, t3),
        pairs_scored=done * len(scorer.tasks),
        flags=columns[FLAGS_COLUMN],
        gates=gates,
        tasks=tasks_record,
        task_seconds=task_seconds,
    )
    summary["files"] = files
    if top_percent is not None:
        summary["selection"] = selection_record(scored, top_percent, out, gates=gates)
    _atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return scored, summary


def selection_record(
    scored: Any, top_percent: float, out: Path, *, gates: str | Sequence[str] | None = "all"
) -> dict[str, Any]:
    """Write the top `top_percent`% of `scored` as `selected.*` in `out` and describe it for `summary.json`."""
    selected = select_top(scored, top_percent, gates=gates)
    return {
        "top_percent": top_percent,
        "rows_selected": len(selected),
        "threshold": min(selected[SCORE_COLUMN]) if len(selected) else None,
        "gates": list(check_gates(gates) or ()),
        "files": save_dataset_files(selected, out, "selected"),
    }


def gates_record(
    flags: Sequence[str] | Mapping[str, int] | None,
    gates: str | Sequence[str] | None,
    asked: GateSettings,
    settings: GateSettings,
) -> dict[str, Any]:
    """The `gates` part of `summary.json`: which gates apply, their thresholds, and the rows each one flagged.

    `flags` is the `nuggets_flags` column, or a count of its values (for a stream); `asked` the settings as given
    (`"auto"` thresholds) and `settings` as used.
    """
    names = check_gates(gates) or ()
    record: dict[str, Any] = {
        "applied": list(names),
        "alignment_threshold": settings.alignment_threshold,
        "completeness_threshold": settings.completeness_threshold,
        "calibrated": [
            name
            for name in ("alignment_threshold", "completeness_threshold")
            if getattr(asked, name) == "auto" and getattr(settings, name) != -math.inf
        ],
        "placeholders": list(settings.placeholders),
    }
    if flags is not None:
        # Counted over the distinct values (a handful), never a list the size of the data: streams stay bounded.
        tally = Counter(flags) if not isinstance(flags, Mapping) else flags
        values = list(tally)
        weights = np.array([tally[v] for v in values], dtype=np.int64)
        record["rows_flagged"] = int(weights[gated_mask(values, names)].sum()) if names and values else 0
        counts = dict.fromkeys(GATE_NAMES, 0)
        for value, weight in zip(values, weights.tolist(), strict=True):
            for name in split_flags(value):
                counts[name] += weight
        record["counts"] = counts
    return record


def run_summary(
    scorer: GoldenScorer,
    *,
    source: str | None,
    rows_total: int,
    rows_scored: int,
    stopped_early: bool,
    max_seconds: float | None,
    quantiles: dict[str, float],
    times: tuple[float, float, float, float],
    pairs_scored: int,
    flags: Sequence[str] | Mapping[str, int] | None = None,
    gates: str | Sequence[str] | None = "all",
    tasks: Mapping[str, Any] | None = None,
    task_seconds: float = 0.0,
) -> dict[str, Any]:
    """The common part of `summary.json`: counts, model, template, limits, truncations, quantiles and timings.

    Args:
        scorer (`GoldenScorer`): The scorer that ran (its prospector loaded).
        times (`tuple[float, float, float, float]`): `perf_counter` readings at the start, after loading, after the
            zero-shot scores and after scoring.
        pairs_scored (`int`): Candidate-task pairs scored in this run, for the throughput.
        flags (`list[str]`, *optional*): The `nuggets_flags` of the scored rows, counted per gate.
        gates (`str` or `list[str]`, *optional*, defaults to `"all"`): The gates selection applies.
        tasks (`dict`, *optional*): The `tasks` record of `prepare_task_set`.
        task_seconds (`float`, *optional*, defaults to `0`): Seconds spent building the task set, between the
            second and third readings of `times` (not counted as zero-shot time; reported as `tasks_s` for `auto`).
    """
    from . import __version__

    prospector = scorer.loaded_prospector
    t0, t1, t2, t3 = times
    return {
        "hf_nuggets_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "rows_total": rows_total,
        "rows_scored": rows_scored,
        "stopped_early": stopped_early,
        "max_seconds": max_seconds,
        "num_tasks": len(scorer.tasks),
        "tasks": dict(tasks)
        if tasks is not None
        else {"source": getattr(scorer, "task_source", "given"), "count": len(scorer.tasks)},
        "model": prospector.name,
        "model_revision": prospector.revision,
        "device": str(prospector.device),
        "template": scorer.template,
        "limits": {
            "max_demo_tokens": scorer.limits.max_demo_tokens,
            "max_prompt_tokens": scorer.limits.max_prompt_tokens,
            "max_answer_tokens": scorer.limits.max_answer_tokens,
        },
        "truncation": {
            "demonstrations": scorer.stats["demos_truncated"],
            "task_prompts": scorer.stats.get("tasks_prompt_truncated", 0),
            "task_answers": scorer.stats.get("tasks_answer_truncated", 0),
        },
        "duplicates_reused": scorer.stats["duplicates_reused"],
        "gates": gates_record(flags, gates, scorer.gate_settings, scorer.resolved_gate_settings),
        "quantiles": quantiles,
        "timings": {
            "load_s": round(t1 - t0, 3),
            **({"tasks_s": round(task_seconds, 3)} if (tasks or {}).get("source") == "auto" else {}),
            "zero_shot_s": round(t2 - t1 - task_seconds, 3),
            "scoring_s": round(t3 - t2, 3),
            "pairs_per_s": round(pairs_scored / max(t3 - t2, 1e-9), 2),
        },
    }
