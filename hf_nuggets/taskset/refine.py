"""Task-set refinement (SuperNUGGETS 2.1): gates, quality, near-duplicate removal, diversity; and task sets drawn
automatically from the data being scored."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..data.formatting import Example, examples_from_rows

logger = logging.getLogger(__name__)

SELECTORS = ("kcenter", "affinity")

#: `auto_task_set` defaults: as many tasks as the shipped task set, drawn from a sample small enough for the judge.
AUTO_NUM_TASKS = 16
AUTO_SAMPLE_SIZE = 256
#: Rows the gates and a quality callable read between two `should_stop` checks (texts embedded: 8 times as many).
STOP_CHECK_ROWS = 32


class TaskPoolTooSmallError(ValueError):
    """Too few rows are left (after the gates and near-duplicate removal) for the task set asked for.

    Attributes:
        available (`int`): Rows left to choose tasks from.
        wanted (`int`): Tasks asked for.
        detail (`str`): Where the rows went (rows read, gated by gate, near-duplicates removed).
    """

    def __init__(self, available: int, wanted: int, detail: str = "", name: str = "size"):
        self.available, self.wanted, self.detail, self.name = available, wanted, detail, name
        super().__init__(
            f"`{name}` ({wanted}) is larger than the pool of {available} rows" + (f" {detail}" if detail else "") + "."
        )


def check_stop(should_stop: Callable[[], bool] | None, doing: str) -> None:
    """Raise `RunCancelled` when `should_stop` (if any) asks to stop; `doing` says where, in its message."""
    if should_stop is not None and should_stop():
        from ..run.loop import RunCancelled

        raise RunCancelled(f"Stopped while {doing}.")


def _sliced(
    examples: list, read: Callable[[list], Any], should_stop: Callable[[], bool] | None, doing: str, rows: int
):
    """`read` over slices of `rows` examples, `should_stop` checked before each; the results in order."""
    out = []
    for start in range(0, len(examples), rows):
        check_stop(should_stop, f"{doing} ({start} of {len(examples)} rows done)")
        out.append(read(examples[start : start + rows]))
    return out


def _quality(
    examples: list[Example],
    quality: Any,
    rows: Any,
    prospector: Any,
    progress: bool,
    should_stop: Callable[[], bool] | None = None,
):
    if callable(quality):

        def score(part: list[Example]) -> np.ndarray:
            values = np.asarray(quality(part), dtype=np.float64)
            if values.shape != (len(part),):
                raise ValueError(f"`quality` returned {values.size} scores for {len(part)} rows.")
            return values

        parts = _sliced(examples, score, should_stop, "scoring the quality of the rows", STOP_CHECK_ROWS)
        scores = np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)
        return scores, getattr(quality, "__name__", "callable")
    if quality in (None, "judge"):
        from .quality import prospector_quality_scores

        scores = prospector_quality_scores(examples, prospector, progress=progress, should_stop=should_stop)
        return scores, f"judge: {prospector.name}, log p(Yes)/p(No)"
    if isinstance(quality, str) and hasattr(rows, "column_names") and quality in rows.column_names:
        return np.asarray(rows[quality], dtype=np.float64), f"column `{quality}`"
    if isinstance(quality, str):
        from .quality import reward_model_scores

        return reward_model_scores(examples, quality, progress=progress), f"reward model {quality}"
    raise TypeError(
        "`quality` must be 'judge', a column name, a reward model id or path, or a callable; "
        f"got {type(quality).__name__}."
    )


def task_text(example: Example) -> str:
    """The text a task is embedded and deduplicated by: its instruction and input."""
    return example.instruction + (f"\n{example.input}" if example.input else "")


def _gate_text(total: int, gated: int, by_gate: Mapping[str, int]) -> str:
    parts = ", ".join(f"{name} {count}" for name, count in by_gate.items() if count)
    return f"{total} rows, {gated} gated" + (f": {parts}" if parts else "")


#: How many rows of the paper's task set (100) enter directly by quality.
TOP_QUALITY = 20


def default_top_quality(size: int) -> int:
    """How many best-quality rows enter a task set of `size` directly when `top_quality` is not given: the paper's
    20 (of 100), and a fifth of a set smaller than 100 (at least 1), so that a small set stays mostly diverse.

    Example:

    ```python
    >>> default_top_quality(100), default_top_quality(500), default_top_quality(4), default_top_quality(30)
    (20, 20, 1, 6)
    ```
    """
    return min(TOP_QUALITY, max(1, size // 5))


def refine_task_set(
    dataset: Any,
    *,
    size: int = 100,
    top_quality: int | None = None,
    pool: int = 10_000,
    quality: str | Callable | None = "judge",
    selector: str = "kcenter",
    dedup: bool = True,
    dedup_threshold: float = 0.7,
    embedder: Any = None,
    columns: Mapping[str, str | None] | None = None,
    seed: int = 0,
    progress: bool = True,
    prospector: Any = None,
    template: str = "alpaca",
    limits: Any = None,
    gate_settings: Any = None,
    return_provenance: bool = False,
    should_stop: Callable[[], bool] | None = None,
):
    """Build a small, high-quality, diverse predefined task set from a dataset.

    0. Gates: the prospector reads every row's signals (`flag_examples`); a row that any gate flags (`empty`,
       `placeholder`, `unaligned`, `unfinished`, see `hf_nuggets.gates`) never enters the task set. The drops are
       counted per gate.
    1. Quality: score every remaining row (`quality`), keep the best `pool` rows; the best `top_quality` enter the
       set.
    2. Near-duplicates: with `dedup`, MinHash LSH over character 5-gram shingles of instruction and input drops
       every row whose Jaccard similarity to a better row reaches `dedup_threshold`.
    3. Embeddings of the remaining pool (the embedded all-MiniLM-L6-v2 by default).
    4. Diversity: `kcenter` adds rows by greedy farthest-point selection seeded with the quality picks (the
       paper's choice); `affinity` adds the exemplars of affinity propagation over the cosine similarities of the
       rest, with the preference found by bisection so the number of exemplars is what is missing. Up to
       `exemplars.SPARSE_ABOVE` (250) rows, dense affinity propagation over all pairs; above, two-stage affinity
       propagation over the rows' 20-NN graph found by SimHash LSH (`taskset.exemplars.affinity_exemplars`).

    Args:
        dataset (`datasets.Dataset` or `list[dict]`): The pool of instruction examples.
        size (`int`, *optional*, defaults to `100`): Size of the task set.
        top_quality (`int`, *optional*): How many of the best-quality rows enter directly; at most `size`. Not given:
            `default_top_quality(size)`, the paper's 20 of 100, a fifth of a smaller set.
        pool (`int`, *optional*, defaults to `10000`): How many of the best-quality rows the selection draws from.
        quality (`str` or `callable`, *optional*, defaults to `"judge"`): `"judge"` (the prospector as a Yes/No
            judge), the name of a column holding scores, a reward-model id or path, or a callable mapping a list of
            `Example` to scores, one a row (it is called on slices of `STOP_CHECK_ROWS` rows). Higher is better.
        selector (`str`, *optional*, defaults to `"kcenter"`): `"kcenter"` or `"affinity"`.
        dedup (`bool`, *optional*, defaults to `True`): Remove near-duplicates before selecting.
        dedup_threshold (`float`, *optional*, defaults to `0.7`): Jaccard similarity that counts as a duplicate.
        embedder (*optional*): An `Embedder`, a model name, or a callable `list[str] -> array`.
        columns (`dict`, *optional*): Column mapping, as for `GoldenScorer`.
        seed (`int`, *optional*, defaults to `0`): Seed for the hashing and affinity propagation's noise.
        progress (`bool`, *optional*, defaults to `True`): Show progress bars.
        prospector (`Prospector` or `str`, *optional*): The model that reads the gates' signals (and judges, with
            `quality="judge"`): a loaded `Prospector`, a name or path for `load_prospector`, or `None` for the
            embedded SmolLM2-135M-Instruct. Use the prospector that will score against the task set.
        template (`str`, *optional*, defaults to `"alpaca"`): Prompt template of the gates' signals.
        limits (`TruncationLimits`, *optional*): Token limits of the gates' signals.
        gate_settings (`GateSettings`, *optional*): Thresholds and placeholders of the gates.
        return_provenance (`bool`, *optional*, defaults to `False`): Also return how the set was made.
        should_stop (`Callable[[], bool]`, *optional*): Asked between small steps of the work (every
            `STOP_CHECK_ROWS` rows of the gates and of a quality callable, every batch of the judge, every
            `8 * STOP_CHECK_ROWS` texts embedded); when it returns `True`, the refinement stops with `RunCancelled`
            (from `hf_nuggets.run.loop`). It may also raise an error of its own. A run's cancel button and time
            budget reach the refinement through it.

    Returns:
        `datasets.Dataset`: `instruction`, `input`, `output` and why each task was chosen: `refine_reason`
        (`"quality"` or the selector), `quality_score`, `quality_rank` (0 is best, among the rows that pass the
        gates), `cluster` and `cluster_size` (affinity: the cluster the task represents; k-center: the points it is
        nearest to among the pool), and `row`, the task's row in `dataset`. With `return_provenance`, a tuple of it
        and a dict: `rows_in`, `gated` (`rows` and `by_gate`, a row counting under each gate that fires),
        `near_duplicates`, `quality`, `selector`, `size`, `top_quality`, `pool`, `dedup_threshold` (`None` without
        dedup), `seed`, `diversity` (which path ran: `path` is `"kcenter"`, `"dense"` or `"two-stage"` (affinity),
        or `"none"`, with the figures of `affinity_exemplars`), `seconds` (wall time of each step: `gates`,
        `quality`, `near_duplicates`, `embedding`, `diversity`) and `rows` (the `row` column).

    Raises:
        TaskPoolTooSmallError: Fewer rows than `size` are left (checked before the model runs, after the gates and
            after near-duplicate removal); a `ValueError`.
        RunCancelled: `should_stop` asked to stop.

    Example:

    ```python
    >>> import math
    >>> from hf_nuggets.gates import GateSettings
    >>> rows = [{"instruction": f"Task {i} about topic {i % 5}", "output": "x" * (i + 1)} for i in range(30)]
    >>> rows += [{"instruction": "Say nothing.", "output": ""}, {"instruction": "Say it.", "output": "<nooutput>"}]
    >>> embed = lambda texts: [[float(t.endswith(str(d))) for d in range(5)] for t in texts]
    >>> loose = GateSettings(alignment_threshold=-math.inf)  # a random test model aligns nothing
    >>> tasks, made = refine_task_set(rows, size=5, top_quality=2, quality=lambda ex: [len(e.output) for e in ex],
    ...                               embedder=embed, prospector=tiny_prospector, gate_settings=loose,
    ...                               return_provenance=True, progress=False)
    >>> list(tasks["refine_reason"])
    ['quality', 'quality', 'kcenter', 'kcenter', 'kcenter']
    >>> made["gated"]
    {'rows': 2, 'by_gate': {'empty': 1, 'placeholder': 1, 'unaligned': 0, 'unfinished': 0}}
    ```
    """
    from datasets import Dataset

    from ..algorithms.minhash import near_duplicates
    from ..gates import flag_counts
    from ..scoring.prospector import Prospector, load_prospector
    from ..scoring.scorer import flag_examples
    from .embeddings import embed_texts

    if top_quality is None and isinstance(size, int) and not isinstance(size, bool) and size >= 1:
        top_quality = default_top_quality(size)
    for name, value in (("size", size), ("top_quality", top_quality), ("pool", pool)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "top_quality" else 1):
            raise ValueError(
                f"`{name}` must be a {'non-negative' if name == 'top_quality' else 'positive'} integer, got {value!r}."
            )
    if top_quality > size:
        raise ValueError(f"`top_quality` ({top_quality}) cannot exceed `size` ({size}).")
    if selector not in SELECTORS:
        raise ValueError(f"`selector` must be one of {SELECTORS}, got {selector!r}.")
    if not 0 < dedup_threshold <= 1:
        raise ValueError(f"`dedup_threshold` must be in (0, 1], got {dedup_threshold!r}.")
    if pool < size:
        raise ValueError(f"`pool` ({pool}) must be at least `size` ({size}).")
    if prospector is not None and not isinstance(prospector, (Prospector, str, os.PathLike)):
        raise TypeError(
            f"`prospector` must be a `Prospector`, a model name or path, or None; got {type(prospector).__name__}."
        )
    examples = examples_from_rows(dataset, columns, what="dataset")
    total = len(examples)
    if size > total:  # before any model runs
        raise TaskPoolTooSmallError(total, size)

    if not isinstance(prospector, Prospector):
        prospector = load_prospector(None if prospector is None else str(prospector))
    flags: list[str] = []

    def read_gates(part: list[Example]) -> None:
        nonlocal gate_settings
        read = flag_examples(prospector, part, template=template, limits=limits, gate_settings=gate_settings)
        gate_settings = read["gate_settings"]  # calibrated once, on the first slice
        flags.extend(read["flags"])

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    _sliced(examples, read_gates, should_stop, "reading the gates' signals", STOP_CHECK_ROWS)
    timings["gates"] = time.perf_counter() - clock
    keep = np.array([i for i, f in enumerate(flags) if not f], dtype=np.int64)  # rows of `dataset`
    by_gate = flag_counts(flags)
    gated = {"rows": total - len(keep), "by_gate": by_gate}
    if size > len(keep):
        raise TaskPoolTooSmallError(
            len(keep), size, f"left after the gates ({_gate_text(total, gated['rows'], by_gate)})"
        )
    kept = [examples[i] for i in keep]
    quality_rows = dataset.select(keep.tolist()) if hasattr(dataset, "select") else dataset
    clock = time.perf_counter()
    scores, quality_name = _quality(kept, quality, quality_rows, prospector, progress, should_stop)
    timings["quality"] = time.perf_counter() - clock
    if len(scores) != len(kept):
        raise ValueError(f"`quality` returned {len(scores)} scores for {len(kept)} rows.")
    ranked = np.lexsort((np.arange(len(scores)), -scores))  # best first, ties by row order
    quality_rank = np.empty(len(scores), dtype=np.int64)
    quality_rank[ranked] = np.arange(len(scores))
    candidates = ranked[:pool]

    clock = time.perf_counter()
    removed = 0
    if dedup:
        texts = [task_text(kept[i]) for i in candidates]
        groups = near_duplicates(texts, threshold=dedup_threshold, seed=seed)
        drop = set()
        for group in groups.groups:
            drop.update(sorted(group)[1:])  # candidates are in quality order: keep the best of each group
        removed = len(drop)
        candidates = np.array([c for j, c in enumerate(candidates) if j not in drop])
        if len(candidates) < size:
            raise TaskPoolTooSmallError(
                len(candidates),
                size,
                "left after the gates and near-duplicate removal "
                f"({_gate_text(total, gated['rows'], by_gate)}; {removed} near-duplicates"
                + (f"; the best {pool} by quality kept" if pool < len(kept) else "")
                + ")",
            )
    timings["near_duplicates"] = time.perf_counter() - clock
    clock = time.perf_counter()
    chosen = list(candidates[:top_quality])
    texts = [task_text(kept[i]) for i in candidates]
    parts = _sliced(
        texts, lambda part: embed_texts(part, embedder, progress=progress), should_stop, "embedding the rows",
        8 * STOP_CHECK_ROWS,
    )  # fmt: skip
    vectors = np.concatenate(parts)
    need = size - len(chosen)
    cluster = np.full(len(candidates), -1)
    diversity: dict = {"path": selector if need > 0 else "none"}
    timings["embedding"] = time.perf_counter() - clock
    clock = time.perf_counter()
    if need > 0 and selector == "kcenter":
        from ..algorithms.kcenter import kcenter_greedy

        picks = kcenter_greedy(vectors, size, seeds=list(range(len(chosen))) or None, metric="cosine")
        picks = [int(p) for p in picks]
        chosen = [candidates[p] for p in picks]
        cluster = np.argmax(vectors @ vectors[picks].T, axis=1)
    elif need > 0:
        from .exemplars import SPARSE_ABOVE, affinity_exemplars

        rest = np.arange(len(chosen), len(candidates))
        centers, labels, diversity = affinity_exemplars(vectors[rest], need, seed=seed, sparse_above=SPARSE_ABOVE)
        exemplars = [int(rest[e]) for e in centers]
        seeded = len(chosen)
        chosen += [candidates[e] for e in exemplars]
        labels = np.asarray(labels)
        cluster[rest] = np.where(labels >= 0, labels + seeded, -1)
        cluster[:seeded] = np.arange(seeded)
    else:
        cluster[: len(chosen)] = np.arange(len(chosen))
    timings["diversity"] = time.perf_counter() - clock
    sizes = np.bincount(cluster[cluster >= 0], minlength=len(chosen))
    logger.info(
        "Refined %d tasks from %d rows (%d gated, %d near-duplicates removed).",
        len(chosen),
        total,
        gated["rows"],
        removed,
    )
    rows = []
    for slot, position in enumerate(chosen):
        example = kept[position]
        rows.append(
            {
                "instruction": example.instruction,
                "input": example.input,
                "output": example.output,
                "refine_reason": "quality" if slot < min(top_quality, size) else selector,
                "quality_score": float(scores[position]),
                "quality_rank": int(quality_rank[position]),
                "cluster": slot,
                "cluster_size": int(sizes[slot]),
                "row": int(keep[position]),
            }
        )
    out = Dataset.from_list(rows)
    out.info.description = (
        f"Task set refined by hf-nuggets: gates dropped {gated['rows']} of {total} rows"
        + (f" ({', '.join(f'{k} {v}' for k, v in by_gate.items() if v)})" if gated["rows"] else "")
        + f", quality={quality_name}, selector={selector}"
        + (f" ({diversity['path']})" if selector == "affinity" else "")
        + f", dedup={dedup} ({removed} near-duplicates removed), "
        f"size={size}, top_quality={top_quality}, pool={pool}."
    )
    if not return_provenance:
        return out
    provenance = {
        "rows_in": total,
        "gated": gated,
        "near_duplicates": removed,
        "quality": quality_name,
        "selector": selector,
        "size": size,
        "top_quality": top_quality,
        "pool": pool,
        "dedup_threshold": dedup_threshold if dedup else None,
        "seed": seed,
        "diversity": diversity,
        "seconds": {name: round(value, 3) for name, value in timings.items()},
        "rows": [row["row"] for row in rows],
    }
    return out, provenance


def auto_task_set(
    dataset: Any,
    *,
    num_tasks: int = AUTO_NUM_TASKS,
    sample_size: int = AUTO_SAMPLE_SIZE,
    seed: int = 0,
    prospector: Any = None,
    columns: Mapping[str, str | None] | None = None,
    template: str = "alpaca",
    limits: Any = None,
    gate_settings: Any = None,
    quality: str | Callable | None = "judge",
    top_quality: int | None = None,
    selector: str = "kcenter",
    dedup_threshold: float = 0.7,
    embedder: Any = None,
    progress: bool = True,
    should_stop: Callable[[], bool] | None = None,
):
    """A task set drawn from the data being scored, as SuperNUGGETS draws its tasks from its own pool.

    A seeded random sample of `sample_size` rows (all rows when there are no more) goes through `refine_task_set`:
    the gates first (no empty, placeholder, unaligned or unfinished row becomes a task), then quality, near-duplicate
    removal and diversity. The rows chosen as tasks stay among the candidates (the simplest, and nothing is hidden):
    each is scored against a task set that holds itself, which can add 1/`num_tasks` to its golden score and, since
    a row predicts its own answer very well (+0.8 to +2.9 nats on the shipped sample), lifts its `nuggets_gain` far
    more. The provenance names those rows so they can be told apart or dropped.

    Args:
        dataset (`datasets.Dataset` or `list[dict]`): The data that will be scored (map-style: it needs a length).
        num_tasks (`int`, *optional*, defaults to `16`): Size of the task set (the shipped set has 16 tasks).
        sample_size (`int`, *optional*, defaults to `256`): Rows drawn at random to choose the tasks from; the
            judge and the gates read each of them once.
        seed (`int`, *optional*, defaults to `0`): Seed of the sample (and of the hashing and affinity propagation).
        prospector (`Prospector` or `str`, *optional*): The prospector that will score (gates and judge); the
            embedded SmolLM2-135M-Instruct when omitted.
        columns (`dict`, *optional*): Column mapping, as for `GoldenScorer`.
        template (`str`, *optional*, defaults to `"alpaca"`): Prompt template of the gates' signals.
        limits (`TruncationLimits`, *optional*): Token limits of the gates' signals.
        gate_settings (`GateSettings`, *optional*): Thresholds and placeholders of the gates.
        quality (`str` or `callable`, *optional*, defaults to `"judge"`): As for `refine_task_set`.
        top_quality (`int`, *optional*): Best-quality rows that enter directly; `num_tasks // 5` (at least 1) when
            omitted (the paper's 20 of 100).
        selector (`str`, *optional*, defaults to `"kcenter"`): `"kcenter"` or `"affinity"`.
        dedup_threshold (`float`, *optional*, defaults to `0.7`): Jaccard similarity that counts as a duplicate.
        embedder (*optional*): As for `refine_task_set`.
        progress (`bool`, *optional*, defaults to `True`): Show progress bars.
        should_stop (`Callable[[], bool]`, *optional*): As for `refine_task_set` (`prospect` passes its hooks').

    Returns:
        `tuple[datasets.Dataset, dict]`: The tasks (the columns of `refine_task_set`, `row` being the row of
        `dataset`) and their provenance: `source` (`"auto"`), `num_tasks`, `seed`, `rows_available`, `sample_size`
        (rows sampled), `gated` (`rows` and `by_gate`), `near_duplicates`, `quality`, `selector`, `top_quality`,
        `rows` (the rows of `dataset` chosen as tasks, in task order), `reasons` (why each was chosen, in the same
        order: the `refine_reason` column) and `tasks_stay_candidates` (`True`).

    Raises:
        TaskPoolTooSmallError: The data holds fewer than `num_tasks` rows (checked before any model runs), or fewer
            are left after the gates and near-duplicate removal.

    Example:

    ```python
    >>> import math
    >>> from hf_nuggets.gates import GateSettings
    >>> rows = [{"instruction": f"Task {i} about topic {i % 5}", "output": "x" * (i + 1)} for i in range(40)]
    >>> embed = lambda texts: [[float(t.endswith(str(d))) for d in range(5)] for t in texts]
    >>> tasks, made = auto_task_set(rows, num_tasks=4, sample_size=20, seed=1, prospector=tiny_prospector,
    ...                             quality=lambda ex: [len(e.output) for e in ex], embedder=embed,
    ...                             gate_settings=GateSettings(alignment_threshold=-math.inf), progress=False)
    >>> len(tasks), made["sample_size"], made["rows"] == list(tasks["row"])
    (4, 20, True)
    ```
    """
    for name, value in (("num_tasks", num_tasks), ("sample_size", sample_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    if sample_size < num_tasks:
        raise ValueError(f"`sample_size` ({sample_size}) must be at least `num_tasks` ({num_tasks}).")
    if not hasattr(dataset, "__len__"):
        raise TypeError(
            "`auto_task_set` needs map-style data with a length (a `datasets.Dataset` or a list of dicts), "
            f"got {type(dataset).__name__}."
        )
    available = len(dataset)
    if available < num_tasks:  # before any model runs
        raise TaskPoolTooSmallError(available, num_tasks, "in the data", name="num_tasks")
    if available > sample_size:
        sample = np.sort(np.random.default_rng(seed).choice(available, size=sample_size, replace=False))
    else:
        sample = np.arange(available)
    rows = dataset.select(sample.tolist()) if hasattr(dataset, "select") else [dataset[int(i)] for i in sample]
    try:
        tasks, made = refine_task_set(
            rows,
            size=num_tasks,
            top_quality=max(1, num_tasks // 5) if top_quality is None else top_quality,
            pool=len(sample),
            quality=quality,
            selector=selector,
            dedup=True,
            dedup_threshold=dedup_threshold,
            embedder=embedder,
            columns=columns,
            seed=seed,
            progress=progress,
            prospector=prospector,
            template=template,
            limits=limits,
            gate_settings=gate_settings,
            return_provenance=True,
            should_stop=should_stop,
        )
    except TaskPoolTooSmallError as err:
        detail = f"{err.detail}, in a sample of {len(sample)} of the data's {available} rows"
        raise TaskPoolTooSmallError(err.available, num_tasks, detail, name="num_tasks") from None
    chosen = [int(sample[r]) for r in tasks["row"]]
    tasks = tasks.remove_columns("row").add_column("row", chosen)
    provenance = {
        "source": "auto",
        "num_tasks": num_tasks,
        "seed": seed,
        "rows_available": available,
        "sample_size": len(sample),
        "gated": made["gated"],
        "near_duplicates": made["near_duplicates"],
        "quality": made["quality"],
        "selector": selector,
        "top_quality": made["top_quality"],
        "rows": chosen,
        "reasons": list(tasks["refine_reason"]),
        "tasks_stay_candidates": True,
    }
    logger.info("Auto task set: %d tasks from a sample of %d of %d rows.", num_tasks, len(sample), available)
    return tasks, provenance
