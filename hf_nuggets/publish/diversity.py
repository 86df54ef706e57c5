"""Diversity of a dataset's text: distinct word n-grams and their repeat rate, from one streaming pass of sketches."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


def text_columns_of(column_names: Sequence[str]) -> list[str]:
    """The columns whose text is the example: `messages`, else those of `instruction`, `input`, `output`."""
    if "messages" in column_names and "instruction" not in column_names:
        return ["messages"]
    return [c for c in ("instruction", "input", "output") if c in column_names]


def iter_row_fields(
    dataset: Any, columns: Sequence[str] | None = None, *, batch_size: int = 1000
) -> Iterator[list[str]]:
    """Yield the text fields of each row: one string per text column, one per message of a chat column.

    N-grams are counted within a field, never across two (an instruction's last word and its answer's first word
    make no bigram).
    """
    columns = list(columns) if columns is not None else text_columns_of(dataset.column_names)
    if not columns:
        raise KeyError(
            f"No text column found among {sorted(dataset.column_names)}: pass `text_columns=` to name them."
        )
    for batch in dataset.select_columns(columns).iter(batch_size=batch_size):
        for i in range(len(batch[columns[0]])):
            fields = []
            for column in columns:
                value = batch[column][i]
                if isinstance(value, list):  # chat messages
                    fields.extend(str(m.get("content") or "") for m in value if isinstance(m, Mapping))
                elif value is not None:
                    fields.append(str(value))
            yield fields


def diversity_report(
    dataset: Any,
    selected_indices: Sequence[int] | None = None,
    *,
    n: int = 2,
    text_columns: Sequence[str] | None = None,
    epsilon: float = 0.25,
    delta: float = 0.1,
    precision: int = 12,
    seed: int = 0,
    lowercase: bool = False,
    batch_size: int = 1000,
) -> dict[str, Any]:
    """Distinct word n-grams (F0) and the second frequency moment (F2) of the full set and of the selection.

    One streaming pass over the rows feeds two pairs of sketches from `hf_nuggets.algorithms.sketches` (HyperLogLog
    for F0, fast AMS for F2): every row goes to the full set's, the rows in `selected_indices` also to the
    selection's. N-grams are counted within each text field (see `iter_row_fields`). Memory does not grow with the
    data, and each result is exactly what `sketches.diversity_stats` gives on the same fields.

    Args:
        dataset (`datasets.Dataset`): The scored rows.
        selected_indices (`list[int]`, *optional*): Row indices of the selection.
        n (`int`, *optional*, defaults to `2`): Words per n-gram.
        text_columns (`list[str]`, *optional*): Columns whose text is counted (default: see `text_columns_of`).
        epsilon (`float`, *optional*, defaults to `0.25`): F2 relative error bound.
        delta (`float`, *optional*, defaults to `0.1`): Probability that an F2 bound fails.
        precision (`int`, *optional*, defaults to `12`): HyperLogLog precision (2**precision registers).
        seed (`int`, *optional*, defaults to `0`): Seed of the sketches.
        lowercase (`bool`, *optional*, defaults to `False`): Lowercase the texts first.
        batch_size (`int`, *optional*, defaults to `1000`): Rows read at a time.

    Returns:
        `dict`: `n`, `full` and (with a selection) `selected`: the keys of `sketches.diversity_stats` (`n`, `f0`,
        `f2`, `repeat_rate`, `effective_distinct`, ...) plus their error bounds `f0_bound` (one standard error),
        `f2_bound`, `repeat_rate_bound` and `effective_distinct_bound` (each holding with probability at least
        1 - delta).

    Example:

    ```python
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"instruction": ["the cat sat", "the cat ran"], "output": ["a dog sat", "ok"]})
    >>> report = diversity_report(ds, [0])
    >>> report["full"]["n"], report["selected"]["n"]
    (6, 4)
    ```
    """
    from ..algorithms.sketches import FastAMSSketch, HyperLogLog, iter_ngram_hashes

    names = ["full"] + (["selected"] if selected_indices is not None else [])
    sketches = {name: (HyperLogLog(precision, seed=seed), FastAMSSketch(epsilon, delta, seed=seed)) for name in names}
    kept = {int(i) for i in selected_indices} if selected_indices is not None else set()
    rows = iter_row_fields(dataset, text_columns, batch_size=batch_size)
    for start in range(0, len(dataset), batch_size):
        fields = list(itertools.islice(rows, batch_size))
        groups = {"full": [text for row in fields for text in row]}
        if selected_indices is not None:
            groups["selected"] = [text for i, row in enumerate(fields, start) if i in kept for text in row]
        for name, texts in groups.items():
            for hashes in iter_ngram_hashes(texts, n, batch_size=max(len(texts), 1), lowercase=lowercase):
                for sketch in sketches[name]:
                    sketch.update(hashes)
    return {"n": n, **{name: _sketch_stats(*sketches[name], n=n) for name in names}}


def _sketch_stats(f0: Any, f2: Any, *, n: int) -> dict[str, Any]:
    """The statistics of `sketches.diversity_stats` from its two sketches, with absolute error bounds added."""
    from ..algorithms.sketches import diversity_stats_from_sketches

    stats = diversity_stats_from_sketches(f0, f2, n=n)
    eps = stats["f2_epsilon"]
    return {
        **{key: stats[key] for key in ("ngram_order", "n", "f0", "f0_relative_standard_error")},
        "f0_bound": stats["f0"] * stats["f0_relative_standard_error"],
        **{key: stats[key] for key in ("f2", "f2_epsilon", "f2_delta")},
        "f2_bound": eps * stats["f2"],
        "repeat_rate": stats["repeat_rate"],
        "repeat_rate_bound": eps * stats["repeat_rate"],
        "effective_distinct": stats["effective_distinct"],
        "effective_distinct_bound": stats["effective_distinct"] * eps / (1 - eps),
    }
