"""Selecting the nuggets: the one place rows are ranked, and the top (or bottom) n% of a scored dataset.

Rows rank by golden score, then by `nuggets_gain`, then by row order; rows that a chosen gate flags (see
`hf_nuggets.gates`) rank after every other row, so they are never in a top n% and come first among the worst. Every
path that chooses rows (`select_top`, `filter_for_training` and the callback, the CLI's `--top`, sharded and streaming
runs, the Space, cards and the Hub export) calls `rank_order` or `top_indices` here.

With `min_distance`, the top is also diverse (DEITA's rule, see `hf_nuggets.algorithms.redundancy`): the selection
walks down the ranking of the ungated rows and skips a row whose nearest already-kept row is closer than
`min_distance` in cosine distance, until it holds the requested count. Rows are compared by the sentence embedding of
their question side, the instruction and the input (the text `hf_nuggets.taskset.refine.task_text` embeds): two rows
that ask the same thing in other words are redundant even when their answers differ, while one instruction applied to
two different inputs is two tasks. The embeddings come from the `nuggets_embedding` column when the dataset has one,
else from the embedded all-MiniLM-L6-v2 (or any `embedder`), computed for the rows the walk visits only, in blocks
along the ranking.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from .gates import FLAGS_COLUMN, check_gates, gated_mask

logger = logging.getLogger(__name__)

SCORE_COLUMN = "golden_score"
GAIN_COLUMN = "nuggets_gain"
#: A column of precomputed sentence embeddings (one vector per row) that a diverse selection reads instead of
#: embedding the rows itself.
EMBEDDING_COLUMN = "nuggets_embedding"
#: The settings of the LSH that a diverse selection accepts in `lsh` (see `redundancy_walk`).
LSH_KEYS = ("n_bits_per_table", "n_tables", "recall", "seed")


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


class Selection(NamedTuple):
    """The rows a selection keeps, and what passed the others over.

    Attributes:
        indices (`np.ndarray`, int64): The selected rows, best first (worst first for a bottom selection).
        wanted (`int`): The count asked for: `n_selected` of all rows.
        gated (`int`): Rows a chosen gate keeps out of any top.
        redundant (`int`): Rows the diverse walk skipped as redundant before it held `wanted` rows (0 without
            `min_distance`).
        min_distance (`float` or `None`): The cosine-distance threshold of the walk; `None` for a plain top.
        neighbours (`dict` or `None`): How the walk found near rows: `method` (`"lsh"` or `"exact"`), the LSH's
            `n_bits_per_table`, `n_tables` and `seed`, `recall_at_threshold` (the S-curve at `min_distance`),
            `distance_computations`, and `embeddings` (where the vectors came from).
    """

    indices: np.ndarray
    wanted: int
    gated: int
    redundant: int
    min_distance: float | None
    neighbours: dict[str, Any] | None


def _embedder_name(embedder: Any) -> str:
    from .taskset.embeddings import EMBEDDED_EMBEDDER_ID

    if embedder is None:
        return EMBEDDED_EMBEDDER_ID
    if isinstance(embedder, str):
        return embedder
    return str(getattr(embedder, "name", None) or "a callable embedder")


def _vector_reader(
    dataset: Any, embeddings: Any, embedder: Any, columns: Mapping[str, str | None] | None
) -> tuple[Any, str]:
    """What gives the walk its vectors (an array, or a callable from row indices to vectors) and how to name it."""
    if embeddings is None and EMBEDDING_COLUMN in dataset.column_names:
        embeddings = EMBEDDING_COLUMN
    if isinstance(embeddings, str):
        if embeddings not in dataset.column_names:
            raise KeyError(f"`embeddings` names the column `{embeddings}`, which the dataset lacks.")
        column = dataset.select_columns([embeddings])
        return (lambda rows: np.asarray(column.select(rows.tolist())[embeddings], dtype=np.float32)), (
            f"the `{embeddings}` column"
        )
    if embeddings is not None:
        array = np.asarray(embeddings, dtype=np.float32)
        if array.ndim != 2 or len(array) != len(dataset):
            raise ValueError(
                f"`embeddings` must hold one vector per row, shape ({len(dataset)}, dim), got shape {array.shape}."
            )
        return array, "given"
    from .data.formatting import examples_from_batch, resolve_columns
    from .taskset.embeddings import embed_texts
    from .taskset.refine import task_text

    mapping = resolve_columns(dataset.column_names, columns)
    texts = dataset.select_columns([name for name in mapping.values() if name])

    def read(rows: np.ndarray) -> np.ndarray:
        examples = examples_from_batch(texts.select(rows.tolist()).to_dict(), mapping, rows.tolist())
        return embed_texts([task_text(e) for e in examples], embedder)

    return read, f"{_embedder_name(embedder)} on the instruction and input"


def _check_lsh(lsh: bool | Mapping[str, Any]) -> dict[str, Any] | None:
    """The walk's settings from `lsh`: `None` for exact search, else the LSH settings given."""
    if lsh is False:
        return None
    if lsh is True:
        return {}
    if not isinstance(lsh, Mapping):
        raise TypeError(f"`lsh` must be True, False or a dict of LSH settings, got {type(lsh).__name__}.")
    unknown = sorted(set(lsh) - set(LSH_KEYS))
    if unknown:
        raise ValueError(f"Unknown LSH setting(s) {unknown} in `lsh`; the settings are {list(LSH_KEYS)}.")
    return dict(lsh)


def top_selection(
    dataset: Any,
    percent: float = 5,
    *,
    bottom: bool = False,
    score_column: str = SCORE_COLUMN,
    gain_column: str | None = GAIN_COLUMN,
    gates: str | Sequence[str] | None = "all",
    min_distance: float | None = None,
    embeddings: Any = None,
    embedder: Any = None,
    columns: Mapping[str, str | None] | None = None,
    lsh: bool | Mapping[str, Any] = True,
    progress: bool = False,
) -> Selection:
    """The rows of the top (or bottom) `percent`% of a scored dataset, and the counts of the rows passed over.

    This is `select_top` without building the dataset: the arguments are the same (see there).

    Returns:
        `Selection`: The selected row indices, the count asked for, the rows gated and the rows skipped as redundant.

    Example:

    ```python
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"golden_score": [0.9, 0.8, 0.7, 0.1],
    ...                         "nuggets_embedding": [[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.7, 0.7]]})
    >>> chosen = top_selection(ds, 50, min_distance=0.05)
    >>> chosen.indices.tolist(), chosen.redundant
    ([0, 2], 1)
    ```
    """
    percent = check_percent(percent)
    if not hasattr(dataset, "select") or not hasattr(dataset, "__len__"):
        raise TypeError(
            "`select_top` needs a `datasets.Dataset` (with a length); for an `IterableDataset`, score it first "
            "and materialise it, e.g. `Dataset.from_generator(lambda: iter(scored))`."
        )
    columns_present = dataset.column_names
    if score_column not in columns_present:
        raise KeyError(f"Column `{score_column}` not found; score the dataset first (see `GoldenScorer`).")
    if len(dataset) == 0:
        raise ValueError("The dataset is empty: there is nothing to select.")
    if min_distance is not None:
        from .algorithms.redundancy import check_min_distance

        min_distance = check_min_distance(min_distance)
        if bottom:
            raise ValueError("`min_distance` makes a diverse top; it cannot be combined with `bottom=True`.")
    settings = _check_lsh(lsh)
    scores = np.asarray(dataset[score_column], dtype=np.float64)
    gains = (
        np.asarray(dataset[gain_column], dtype=np.float64) if gain_column and gain_column in columns_present else None
    )
    gated = dataset_gated(dataset, gates)
    n_gated = int(np.count_nonzero(gated)) if gated is not None else 0
    wanted = n_selected(len(dataset), percent)
    if min_distance is None:
        chosen = top_indices(scores, gains, gated, percent=percent, bottom=bottom)
        return Selection(chosen, wanted, n_gated, 0, None, None)
    return _diverse_selection(
        dataset, scores, gains, gated, wanted, n_gated, min_distance, embeddings, embedder, columns, settings, progress
    )


def _diverse_selection(
    dataset, scores, gains, gated, wanted, n_gated, min_distance, embeddings, embedder, columns, settings, progress
) -> Selection:
    """The diverse top: the redundancy walk over the ranking of the ungated rows (gates apply first)."""
    from tqdm.auto import tqdm

    from .algorithms.redundancy import redundancy_walk, walk_recall

    order = rank_order(scores, gains, gated)[: len(scores) - n_gated]
    vectors, source = _vector_reader(dataset, embeddings, embedder, columns)
    with tqdm(total=wanted, desc="Diverse selection", unit="row", disable=not progress) as bar:
        walk = redundancy_walk(
            order,
            vectors,
            wanted,
            min_distance,
            method="exact" if settings is None else "lsh",
            progress=bar.update,
            **(settings or {}),
        )
    neighbours: dict[str, Any] = {"method": "exact" if settings is None else "lsh", "embeddings": source}
    if walk.params is not None:
        neighbours.update(
            {
                "n_bits_per_table": walk.params.k,
                "n_tables": walk.params.l,
                "seed": (settings or {}).get("seed", 0),
                "recall_at_threshold": walk_recall(min_distance, walk.params.k, walk.params.l),
            }
        )
    neighbours["distance_computations"] = walk.n_distance_computations
    if walk.kept.size < wanted:
        logger.warning(
            "Only %d of %d rows are neither gated nor within cosine distance %g of a better row: the diverse top "
            "holds %d rows, fewer than the %d asked for.",
            walk.kept.size,
            len(scores),
            min_distance,
            walk.kept.size,
            wanted,
        )
    return Selection(walk.kept, wanted, n_gated, int(walk.skipped.size), min_distance, neighbours)


def select_top(
    dataset: Any,
    percent: float = 5,
    *,
    bottom: bool = False,
    score_column: str = SCORE_COLUMN,
    gain_column: str | None = GAIN_COLUMN,
    gates: str | Sequence[str] | None = "all",
    min_distance: float | None = None,
    embeddings: Any = None,
    embedder: Any = None,
    columns: Mapping[str, str | None] | None = None,
    lsh: bool | Mapping[str, Any] = True,
    progress: bool = False,
):
    """Keep the top `percent`% of a scored dataset by golden score, ties broken by `nuggets_gain`.

    Rows flagged by a chosen gate (the `nuggets_flags` column) are never selected, and come first with `bottom=True`.
    With `min_distance`, the top is also diverse: walking down the ranking of the rows no gate flags, a row is
    skipped when a row already kept lies closer than `min_distance` in cosine distance between the embeddings of their
    instruction and input, and the walk goes on past skipped rows until it holds the requested count (DEITA's rule;
    see `hf_nuggets.algorithms.redundancy`). Near rows are found with SimHash LSH over the kept rows, exactly checked.

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
        min_distance (`float`, *optional*): Cosine distance (`1 - cosine similarity`), in (0, 2), below which a row
            is redundant with a better kept row and skipped; `None` (the default) for the plain top. 0.2 is the value
            suggested for the embedded all-MiniLM-L6-v2 (README, "A diverse top": 59 of 60 planted paraphrases lie
            below it, and 2 of 300 distinct sample rows).
        embeddings (`np.ndarray` or `str`, *optional*): The rows' vectors, shape `(len(dataset), dim)`, or the name
            of a column holding them; by default the `nuggets_embedding` column when there is one, else computed.
        embedder (*optional*): What computes the embeddings of the instruction and input when they are not given: an
            `Embedder`, a model name or path, or a callable `list[str] -> array`; `None` for the embedded
            all-MiniLM-L6-v2.
        columns (`dict`, *optional*): How the rows' texts are read, as `GoldenScorer`'s `columns`.
        lsh (`bool` or `dict`, *optional*, defaults to `True`): The neighbour search: `True` for SimHash LSH with the
            settings of `walk_lsh_params` (a kept row at the threshold is found with probability 0.95, closer ones
            more often), a dict to set `n_bits_per_table`, `n_tables`, `recall` or `seed`, `False` for exact search
            over every kept row.
        progress (`bool`, *optional*, defaults to `False`): Show a progress bar of the diverse walk.

    Returns:
        `datasets.Dataset`: The selected rows, best first (worst first with `bottom=True`). It can hold fewer rows than
        the percentage when gates, or gates and redundancy, leave fewer rows (a warning says so).

    Example:

    ```python
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"golden_score": [0.2, 0.9, 0.5, 0.9], "nuggets_gain": [0.0, 0.1, 0.0, 0.3]})
    >>> best = select_top(ds, percent=50)
    >>> list(best["golden_score"]), list(best["nuggets_gain"])
    ([0.9, 0.9], [0.3, 0.1])
    ```
    """
    chosen = top_selection(
        dataset,
        percent,
        bottom=bottom,
        score_column=score_column,
        gain_column=gain_column,
        gates=gates,
        min_distance=min_distance,
        embeddings=embeddings,
        embedder=embedder,
        columns=columns,
        lsh=lsh,
        progress=progress,
    )
    if not bottom and chosen.min_distance is None and chosen.gated and len(chosen.indices) < chosen.wanted:
        logger.warning(
            "Gates leave %d of %d rows: the top %s%% holds %d rows.",
            len(chosen.indices),
            len(dataset),
            percent,
            len(chosen.indices),
        )
    if chosen.redundant:
        logger.info("Skipped %d rows as redundant (cosine distance < %g).", chosen.redundant, chosen.min_distance)
    return dataset.select(chosen.indices.tolist())
