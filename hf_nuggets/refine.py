"""Task-set refinement (SuperNUGGETS 2.1): quality first, then diversity, after near-duplicate removal."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .formatting import Example, examples_from_rows

logger = logging.getLogger(__name__)

SELECTORS = ("kcenter", "affinity")


def _quality(examples: list[Example], quality: Any, rows: Any, progress: bool) -> tuple[np.ndarray, str]:
    if callable(quality):
        return np.asarray(quality(examples), dtype=np.float64), getattr(quality, "__name__", "callable")
    if quality in (None, "judge"):
        from .quality import judge_scores

        return judge_scores(examples, progress=progress), "judge: embedded SmolLM2-135M-Instruct, log p(Yes)/p(No)"
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


def refine_task_set(
    dataset: Any,
    *,
    size: int = 100,
    top_quality: int = 20,
    pool: int = 10_000,
    quality: str | Callable | None = "judge",
    selector: str = "kcenter",
    dedup: bool = True,
    dedup_threshold: float = 0.7,
    embedder: Any = None,
    columns: Mapping[str, str | None] | None = None,
    seed: int = 0,
    progress: bool = True,
):
    """Build a small, high-quality, diverse predefined task set from a dataset.

    1. Quality: score every row (`quality`), keep the best `pool` rows; the best `top_quality` enter the set.
    2. Near-duplicates: with `dedup`, MinHash LSH over character 5-gram shingles of instruction and input drops
       every row whose Jaccard similarity to a better row reaches `dedup_threshold`.
    3. Embeddings of the remaining pool (the embedded all-MiniLM-L6-v2 by default).
    4. Diversity: `kcenter` adds rows by greedy farthest-point selection seeded with the quality picks (the
       paper's choice); `affinity` adds the exemplars of affinity propagation over the cosine similarities of the
       rest, with the preference found by bisection so the number of exemplars is what is missing.

    Args:
        dataset (`datasets.Dataset` or `list[dict]`): The pool of instruction examples.
        size (`int`, *optional*, defaults to `100`): Size of the task set.
        top_quality (`int`, *optional*, defaults to `20`): How many of the best-quality rows enter directly.
        pool (`int`, *optional*, defaults to `10000`): How many of the best-quality rows the selection draws from.
        quality (`str` or `callable`, *optional*, defaults to `"judge"`): `"judge"` (the embedded prospector as a
            Yes/No judge), the name of a column holding scores, a reward-model id or path, or a callable mapping a
            list of `Example` to scores. Higher is better.
        selector (`str`, *optional*, defaults to `"kcenter"`): `"kcenter"` or `"affinity"`.
        dedup (`bool`, *optional*, defaults to `True`): Remove near-duplicates before selecting.
        dedup_threshold (`float`, *optional*, defaults to `0.7`): Jaccard similarity that counts as a duplicate.
        embedder (*optional*): An `Embedder`, a model name, or a callable `list[str] -> array`.
        columns (`dict`, *optional*): Column mapping, as for `GoldenScorer`.
        seed (`int`, *optional*, defaults to `0`): Seed for the hashing and affinity propagation's noise.
        progress (`bool`, *optional*, defaults to `True`): Show progress bars.

    Returns:
        `datasets.Dataset`: `instruction`, `input`, `output` and why each task was chosen: `refine_reason`
        (`"quality"` or the selector), `quality_score`, `quality_rank` (0 is best), `cluster` and `cluster_size`
        (affinity: the cluster the task represents; k-center: the points it is nearest to among the pool).

    Example:

    ```python
    >>> rows = [{"instruction": f"Task {i} about topic {i % 5}", "output": "x" * (i + 1)} for i in range(30)]
    >>> embed = lambda texts: [[float(t.endswith(str(d))) for d in range(5)] for t in texts]
    >>> tasks = refine_task_set(rows, size=5, top_quality=2, quality=lambda ex: [len(e.output) for e in ex],
    ...                         embedder=embed, progress=False)
    >>> list(tasks["refine_reason"])
    ['quality', 'quality', 'kcenter', 'kcenter', 'kcenter']
    ```
    """
    from datasets import Dataset

    from .algorithms.minhash import near_duplicates
    from .embeddings import embed_texts

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
    examples = examples_from_rows(dataset, columns, what="dataset")
    examples = [e for e in examples if e.output]
    if size > len(examples):
        raise ValueError(f"`size` ({size}) is larger than the pool of {len(examples)} rows with an answer.")
    if pool < size:
        raise ValueError(f"`pool` ({pool}) must be at least `size` ({size}).")

    scores, quality_name = _quality(examples, quality, dataset, progress)
    if len(scores) != len(examples):
        raise ValueError(f"`quality` returned {len(scores)} scores for {len(examples)} rows.")
    ranked = np.lexsort((np.arange(len(scores)), -scores))  # best first, ties by row order
    quality_rank = np.empty(len(scores), dtype=np.int64)
    quality_rank[ranked] = np.arange(len(scores))
    candidates = ranked[:pool]

    removed = 0
    if dedup:
        texts = [task_text(examples[i]) for i in candidates]
        groups = near_duplicates(texts, threshold=dedup_threshold, seed=seed)
        drop = set()
        for group in groups.groups:
            drop.update(sorted(group)[1:])  # candidates are in quality order: keep the best of each group
        removed = len(drop)
        candidates = np.array([c for j, c in enumerate(candidates) if j not in drop])
        if len(candidates) < size:
            raise ValueError(
                f"Only {len(candidates)} rows remain after removing {removed} near-duplicates; `size` is {size}."
            )
    chosen = list(candidates[:top_quality])
    vectors = embed_texts([task_text(examples[i]) for i in candidates], embedder, progress=progress)
    need = size - len(chosen)
    cluster = np.full(len(candidates), -1)
    if need > 0 and selector == "kcenter":
        from .algorithms.kcenter import kcenter_greedy

        picks = kcenter_greedy(vectors, size, seeds=list(range(len(chosen))) or None, metric="cosine")
        picks = [int(p) for p in picks]
        chosen = [candidates[p] for p in picks]
        cluster = np.argmax(vectors @ vectors[picks].T, axis=1)
    elif need > 0:
        from .algorithms.affinity import find_preference_for_k

        rest = np.arange(len(chosen), len(candidates))
        sims = vectors[rest] @ vectors[rest].T
        search = find_preference_for_k(sims.astype(np.float64), need, random_state=seed)
        exemplars = [int(rest[e]) for e in search.result.cluster_centers_indices]
        seeded = len(chosen)
        chosen += [candidates[e] for e in exemplars]
        labels = np.asarray(search.result.labels)
        cluster[rest] = np.where(labels >= 0, labels + seeded, -1)
        cluster[:seeded] = np.arange(seeded)
    else:
        cluster[: len(chosen)] = np.arange(len(chosen))
    sizes = np.bincount(cluster[cluster >= 0], minlength=len(chosen))
    logger.info("Refined %d tasks from %d rows (%d near-duplicates removed).", len(chosen), len(examples), removed)
    rows = []
    for slot, row in enumerate(chosen):
        example = examples[row]
        rows.append(
            {
                "instruction": example.instruction,
                "input": example.input,
                "output": example.output,
                "refine_reason": "quality" if slot < min(top_quality, size) else selector,
                "quality_score": float(scores[row]),
                "quality_rank": int(quality_rank[row]),
                "cluster": slot,
                "cluster_size": int(sizes[slot]),
            }
        )
    out = Dataset.from_list(rows)
    out.info.description = (
        f"Task set refined by hf-nuggets: quality={quality_name}, selector={selector}, dedup={dedup} "
        f"({removed} near-duplicates removed), size={size}, top_quality={top_quality}, pool={pool}."
    )
    return out
