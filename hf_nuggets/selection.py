"""Selecting the nuggets: the top (or bottom) n% of a scored dataset."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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


def rank_order(scores: Any, gains: Any | None = None) -> np.ndarray:
    """Row indices from best to worst: golden score descending, then gain descending, then row index.

    Example:

    ```python
    >>> rank_order([0.5, 1.0, 0.5], [0.1, 0.0, 0.3]).tolist()
    [1, 2, 0]
    ```
    """
    scores = np.asarray(scores, dtype=np.float64)
    gains = np.zeros_like(scores) if gains is None else np.asarray(gains, dtype=np.float64)
    # np.lexsort sorts by the last key first and is stable, so equal keys keep row order.
    return np.lexsort((-gains, -scores))


def select_top(
    dataset: Any,
    percent: float = 5,
    *,
    bottom: bool = False,
    score_column: str = SCORE_COLUMN,
    gain_column: str | None = GAIN_COLUMN,
):
    """Keep the top `percent`% of a scored dataset by golden score, ties broken by `nuggets_gain`.

    Args:
        dataset (`datasets.Dataset`): A dataset with a `golden_score` column (see `GoldenScorer`).
        percent (`float`, *optional*, defaults to `5`): Percentage of rows to keep, in (0, 100]; the count is
            rounded to the nearest row, and at least one row is kept.
        bottom (`bool`, *optional*, defaults to `False`): Keep the worst rows instead (worst first).
        score_column (`str`, *optional*, defaults to `"golden_score"`): The score column.
        gain_column (`str`, *optional*, defaults to `"nuggets_gain"`): Tie-breaking column; `None` to skip.
            Remaining ties keep the original row order.

    Returns:
        `datasets.Dataset`: The selected rows, best first (worst first with `bottom=True`).

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
    order = rank_order(scores, gains)
    if bottom:
        order = order[::-1]
    return dataset.select(order[: n_selected(len(dataset), percent)].tolist())
