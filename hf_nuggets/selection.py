"""Selecting the nuggets: the one place rows are ranked, and the top (or bottom) n% of a scored dataset.

Rows rank by golden score, then by `nuggets_gain`, then by row order; rows that a chosen gate flags (see
`hf_nuggets.gates`) rank after every other row, so they are never in a top n% and come first among the worst. Every
path that chooses rows (`select_top`, `filter_for_training` and the callback, the CLI's `--top`, sharded and streaming
runs, the Space, cards and the Hub export) calls `rank_order` or `top_indices` here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .gates import FLAGS_COLUMN, check_gates, gated_mask

logger = logging.getLogger(__name__)

SCORE_COLUMN = "golden_score"
GAIN_COLUMN = "nuggets_gain"


def check_percent(percent: float, name: str = "percent") -> float:
    """Validate a percentage in (0, 100]."""
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent <= 100:
        raise ValueError(f"`{name}` must be in (0, 100], got {percent!r}.")
    return float(percent)


def n_selected(n_rows: int, percent: float) -> int:
    """How many rows the top `percent`% of `n_rows` rows is: rounded to nearest, at least one."""
    return max(1, min(n_rows, math.floor(n_rows * percent / 100 + 0.5)))


def rank_order(scores: Any, gains: Any | None = None, gated: Any | None = None) -> np.ndarray:
    """Row indices from best to worst: ungated rows first, then golden score, gain, and row index.

    Args:
        scores (`list[float]`): Golden scores.
        gains (`list[float]`, *optional*): Mean gains, the first tie-breaker.
        gated (`list[bool]`, *optional*): Rows a gate keeps out of selection (see `gated_mask`); they rank last.

    Returns:
        `np.ndarray`: Row indices, best first.

    Example:

    ```python
    >>> rank_order([0.5, 1.0, 0.5], [0.1, 0.0, 0.3]).tolist()
    [1, 2, 0]
    >>> rank_order([0.5, 1.0, 0.5], [0.1, 0.0, 0.3], gated=[False, True, False]).tolist()
    [2, 0, 1]
    ```
    """
    scores = np.asarray(scores, dtype=np.float64)
    gains = np.zeros_like(scores) if gains is None else np.asarray(gains, dtype=np.float64)
    gated = np.zeros(scores.shape, dtype=bool) if gated is None else np.asarray(gated, dtype=bool)
    # np.lexsort sorts by the last key first and is stable, so equal keys keep row order.
    return np.lexsort((-gains, -scores, gated))


def top_indices(
    scores: Any, gains: Any | None = None, gated: Any | None = None, *, percent: float, bottom: bool = False
) -> np.ndarray:
    """The rows of the top (or bottom) `percent`%: the count is `n_selected` of all rows.

    A gated row is never in a top: when fewer ungated rows remain than the count, the top is the ungated rows. The
    bottom lists gated rows first, worst first.

    Example:

    ```python
    >>> top_indices([0.9, 0.1, 0.5, 0.7], gated=[True, False, False, False], percent=50).tolist()
    [3, 2]
    >>> top_indices([0.9, 0.1, 0.5, 0.7], gated=[True, False, False, False], percent=50, bottom=True).tolist()
    [0, 1]
    ```
    """
    order = rank_order(scores, gains, gated)
    k = n_selected(len(order), check_percent(percent))
    if bottom:
        return order[::-1][:k]
    if gated is not None:
        k = min(k, len(order) - int(np.count_nonzero(gated)))
    return order[:k]


def gated_rows(flags: Sequence[Any] | None, gates: str | Sequence[str] | None = "all") -> np.ndarray | None:
    """The gated-row mask for `gates` from a `nuggets_flags` column, or `None` when no gate applies.

    `gates="all"` (the default everywhere) applies every gate recorded in the flags, and nothing when there are no
    flags (`flags=None`: data scored before gates existed). Naming gates explicitly needs the flags.
    """
    names = check_gates(gates)
    if not names:
        return None
    if flags is None:
        if gates != "all":
            raise KeyError(
                f"`gates`={list(names)} needs the `{FLAGS_COLUMN}` column, which this dataset lacks; score it again "
                "with `GoldenScorer`, or pass `gates=None`."
            )
        return None
    return gated_mask(flags, names)


def dataset_gated(dataset: Any, gates: str | Sequence[str] | None = "all") -> np.ndarray | None:
    """`gated_rows` of a scored `datasets.Dataset` (its `nuggets_flags` column, when it has one)."""
    if not check_gates(gates):
        return None
    return gated_rows(dataset[FLAGS_COLUMN] if FLAGS_COLUMN in dataset.column_names else None, gates)


def select_top(
    dataset: Any,
    percent: float = 5,
    *,
    bottom: bool = False,
    score_column: str = SCORE_COLUMN,
    gain_column: str | None = GAIN_COLUMN,
    gates: str | Sequence[str] | None = "all",
):
    """Keep the top `percent`% of a scored dataset by golden score, ties broken by `nuggets_gain`.

    Rows flagged by a chosen gate (the `nuggets_flags` column) are never selected, and come first with `bottom=True`.

    Args:
        dataset (`datasets.Dataset`): A dataset with a `golden_score` column (see `GoldenScorer`).
        percent (`float`, *optional*, defaults to `5`): Percentage of rows to keep, in (0, 100]; the count is
            rounded to the nearest row, and at least one row is kept.
        bottom (`bool`, *optional*, defaults to `False`): Keep the worst rows instead (worst first).
        score_column (`str`, *optional*, defaults to `"golden_score"`): The score column.
        gain_column (`str`, *optional*, defaults to `"nuggets_gain"`): Tie-breaking column; `None` to skip.
            Remaining ties keep the original row order.
        gates (`str` or `list[str]`, *optional*, defaults to `"all"`): The gates that keep rows out: `"all"` for
            every gate recorded in `nuggets_flags`, a list of names from `GATE_NAMES`, or `None` to rank by golden
            score alone (the selection of hf-nuggets before gates).

    Returns:
        `datasets.Dataset`: The selected rows, best first (worst first with `bottom=True`). It can hold fewer rows than
        the percentage when gates leave fewer rows.

    Example:

    ```python
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"golden_score": [0.2, 0.9, 0.5, 0.9], "nuggets_gain": [0.0, 0.1, 0.0, 0.3]})
    >>> best = select_top(ds, percent=50)
    >>> list(best["golden_score"]), list(best["nuggets_gain"])
    ([0.9, 0.9], [0.3, 0.1])
    ```
    """
    percent = check_percent(percent)
    if not hasattr(dataset, "select") or not hasattr(dataset, "__len__"):
        raise TypeError(
            "`select_top` needs a `datasets.Dataset` (with a length); for an `IterableDataset`, score it first "
            "and materialise it, e.g. `Dataset.from_generator(lambda: iter(scored))`."
        )
    columns = dataset.column_names
    if score_column not in columns:
        raise KeyError(f"Column `{score_column}` not found; score the dataset first (see `GoldenScorer`).")
    if len(dataset) == 0:
        raise ValueError("The dataset is empty: there is nothing to select.")
    scores = np.asarray(dataset[score_column], dtype=np.float64)
    gains = np.asarray(dataset[gain_column], dtype=np.float64) if gain_column and gain_column in columns else None
    gated = dataset_gated(dataset, gates)
    chosen = top_indices(scores, gains, gated, percent=percent, bottom=bottom)
    if not bottom and gated is not None and len(chosen) < n_selected(len(dataset), percent):
        logger.warning(
            "Gates leave %d of %d rows: the top %s%% holds %d rows.", len(chosen), len(dataset), percent, len(chosen)
        )
    return dataset.select(chosen.tolist())
