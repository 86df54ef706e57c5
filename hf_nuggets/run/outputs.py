"""What a run writes: the scored rows, the selection, and the records of `summary.json`."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._version import __version__
from ..gates import GATE_NAMES, GateSettings, check_gates, gated_mask, split_flags
from ..selection import SCORE_COLUMN, top_selection
from ..utils.files import atomic_path, atomic_write_json

if TYPE_CHECKING:
    from ..scoring.scorer import GoldenScorer

SUMMARY_FILE = "summary.json"
#: The stems of the data files a run writes, each as `<stem>.parquet` and `<stem>.jsonl`: every scored row, the rows
#: scored before a failure or Ctrl-C, and the top `top_percent`%.
SCORED_STEM, PARTIAL_STEM, SELECTED_STEM = "scored", "scored.partial", "selected"
DATA_SUFFIXES = ("parquet", "jsonl")


def save_dataset_files(dataset: Any, out_dir: str | os.PathLike, stem: str) -> dict[str, str]:
    """Write a dataset as `<stem>.parquet` and `<stem>.jsonl`, each through a unique temporary file then renamed."""
    out = Path(out_dir)
    paths = {}
    for suffix, writer in (("parquet", dataset.to_parquet), ("jsonl", lambda p: dataset.to_json(p, lines=True))):
        final = out / f"{stem}.{suffix}"
        with atomic_path(final) as tmp:
            writer(str(tmp))
        paths[suffix] = str(final)
    return paths


def remove_stale_outputs(out_dir: str | os.PathLike, *, selection: bool) -> None:
    """Remove what an earlier run left in `out_dir` that this finished run does not replace.

    `scored.partial.*` always goes (the run just wrote every row), `selected.*` when this run made no selection
    (`selection=False`): those rows were picked from other scores.
    """
    out = Path(out_dir)
    stems = (PARTIAL_STEM,) if selection else (PARTIAL_STEM, SELECTED_STEM)
    for stem in stems:
        for suffix in DATA_SUFFIXES:
            (out / f"{stem}.{suffix}").unlink(missing_ok=True)


def selection_record(
    scored: Any,
    top_percent: float,
    out: Path,
    *,
    gates: str | Sequence[str] | None = "all",
    min_distance: float | None = None,
    columns: Mapping[str, str | None] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Write the top `top_percent`% of `scored` as `selected.*` in `out` and describe it for `summary.json`.

    With `min_distance`, the top is diverse (see `select_top`) and the record says how many rows were skipped as
    redundant (`rows_redundant`) and how their neighbours were found (`neighbours`).
    """
    chosen = top_selection(
        scored, top_percent, gates=gates, min_distance=min_distance, columns=columns, progress=progress
    )
    selected = scored.select(chosen.indices.tolist())
    record = {
        "top_percent": top_percent,
        "rows_selected": len(selected),
        "threshold": min(selected[SCORE_COLUMN]) if len(selected) else None,
        "gates": list(check_gates(gates) or ()),
        "min_distance": chosen.min_distance,
        "rows_redundant": chosen.redundant,
    }
    if chosen.neighbours is not None:
        record["neighbours"] = chosen.neighbours
    record["files"] = save_dataset_files(selected, out, SELECTED_STEM)
    return record


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
    columns: Mapping[str, str | None] | None = None,
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
        columns (`dict`, *optional*): How the rows were read (the mapping `check_columns` returns); the scorer's
            `columns` as given when omitted.
    """
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
        "dtype": str(next(prospector.model.parameters()).dtype).replace("torch.", ""),
        "dtype_reason": (prospector.source or {}).get("dtype_reason", "given"),
        "candidates_per_forward": getattr(scorer, "candidates_per_forward", 1),
        "template": scorer.template,
        # How the rows were read: the card and `hf-nuggets card` show their texts through it.
        "columns": dict(columns) if columns is not None else scorer.columns,
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


def written_files(summary: Mapping[str, Any], out_dir: str | os.PathLike) -> list[str]:
    """Every file a finished run wrote, as its summary records them: the scored rows, the `selected.*` of `--top`,
    and `summary.json`.

    Example:

    ```python
    >>> summary = {"files": {"parquet": "out/scored.parquet", "jsonl": "out/scored.jsonl"},
    ...            "selection": {"files": {"parquet": "out/selected.parquet", "jsonl": "out/selected.jsonl"}}}
    >>> written_files(summary, "out")
    ['out/scored.parquet', 'out/scored.jsonl', 'out/selected.parquet', 'out/selected.jsonl', 'out/summary.json']
    ```
    """
    files = list((summary.get("files") or {}).values())
    files += list(((summary.get("selection") or {}).get("files") or {}).values())
    return [*files, os.path.join(str(out_dir), SUMMARY_FILE)]


def write_summary(out: str | os.PathLike, summary: Mapping[str, Any]) -> Path:
    """Write `summary.json` in `out` (atomically)."""
    return atomic_write_json(Path(out) / SUMMARY_FILE, dict(summary))
