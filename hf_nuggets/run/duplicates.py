"""Dedup before scoring: exact and near-duplicate candidates are scored once and share the score.

Exact duplicates (same stripped instruction, input and output) always share a score, and it is the very score
they would get on their own. Near-duplicates (character 5-gram shingle Jaccard at least `threshold`, found with
MinHash LSH from `hf_nuggets.algorithms.minhash`, each candidate pair verified exactly) share the score of the
first row of their group, which is an approximation: the summary says how many rows were affected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..data.formatting import examples_from_batch, resolve_columns


def _text(example) -> str:
    return f"{example.instruction}\n{example.input}\n{example.output}"


def duplicate_representatives(
    dataset: Any, columns: Mapping[str, str | None] | None = None, *, threshold: float = 1.0, chunk: int = 1024
) -> tuple[np.ndarray, dict[str, Any]]:
    """For each row, the index of the row whose score it will take (itself when it is scored).

    Args:
        dataset (`datasets.Dataset`): The candidates.
        columns (`dict`, *optional*): Column mapping, as for `GoldenScorer`.
        threshold (`float`, *optional*, defaults to `1.0`): Jaccard similarity from which two rows are near
            duplicates, in (0, 1]; `1.0` shares scores between exact duplicates only.
        chunk (`int`, *optional*, defaults to `1024`): Rows read at once.

    Returns:
        `tuple[np.ndarray, dict]`: `rep_of` (int64, `rep_of[i] <= i`, representatives map to themselves) and a
        report: `rows`, `exact_duplicates`, `near_duplicates`, `rows_scored`, `rows_saved`, `threshold`.

    Raises:
        ValueError: `threshold` is not in (0, 1].

    Example:

    ```python
    >>> from datasets import Dataset
    >>> ds = Dataset.from_list([{"instruction": "Hi", "input": "", "output": "Hello"}] * 2)
    >>> duplicate_representatives(ds)[0].tolist()
    [0, 0]
    ```
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError(f"`threshold` must be in (0, 1], got {threshold!r}.")
    n = len(dataset)
    mapping = resolve_columns(dataset.column_names, columns)
    rep_of = np.arange(n, dtype=np.int64)
    first: dict[tuple[str, str, str], int] = {}
    texts: list[str] = []
    distinct: list[int] = []
    for start in range(0, n, chunk):
        batch = dataset[start : start + chunk]
        for offset, example in enumerate(examples_from_batch(batch, mapping)):
            i = start + offset
            key = (example.instruction, example.input, example.output)
            if key in first:
                rep_of[i] = first[key]
            else:
                first[key] = i
                distinct.append(i)
                texts.append(_text(example))
    exact = int((rep_of != np.arange(n)).sum())
    near = 0
    if threshold < 1 and len(texts) > 1:
        from ..algorithms.minhash import near_duplicates

        groups = near_duplicates(texts, threshold=threshold).groups
        distinct_arr = np.asarray(distinct, dtype=np.int64)
        for group in groups:
            rows = distinct_arr[group]
            head = int(rows.min())
            for row in rows:
                if row != head:
                    rep_of[rep_of == row] = head
                    near += 1
    # exact duplicates of a near duplicate point at its representative too
    rep_of = rep_of[rep_of]
    scored = int((rep_of == np.arange(n)).sum())
    report = {
        "threshold": float(threshold),
        "rows": n,
        "exact_duplicates": exact,
        "near_duplicates": near,
        "rows_scored": scored,
        "rows_saved": n - scored,
    }
    return rep_of, report
