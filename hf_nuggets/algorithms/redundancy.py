"""Redundancy-aware walk down a ranking: DEITA's representation filter (Liu et al., ICLR 2024), with SimHash LSH.

The walk visits rows best first and keeps a row unless an already-kept row lies closer than `min_distance` in cosine
distance (`1 - cosine similarity`); it stops once `n_keep` rows are kept or the ranking runs out. The neighbour query
"is a kept row closer than `min_distance`?" is answered either exactly (every kept row) or with an incremental
random-hyperplane LSH index of the kept rows (Charikar, STOC 2002), whose candidates are then checked exactly.

Guarantees:

- A row is skipped only when a kept row truly lies closer than `min_distance` (the candidates' similarities are
  exact, float32): the LSH walk never skips a row the exact walk would keep *given the same kept set*. It misses a
  kept neighbour at angle `theta` with probability at most `(1 - (1 - theta/pi)**k)**l`, `k` bits per table and `l`
  tables; `walk_lsh_params` picks `(k, l)` so that a neighbour right at the threshold is found with probability at
  least `recall` (closer ones with more), with about one unrelated candidate per table. A missed neighbour keeps a
  row the exact walk skips, and later decisions then see a different kept set.
- `method="exact"` is the exact DEITA walk; it is the oracle of the LSH walk and costs `O(kept x visited x dim)`.
- Vectors are read lazily, in blocks along the ranking, so a walk over the top rows embeds only the rows it visits.
- Deterministic for a given `seed`. Memory: the kept vectors and `l` dictionaries of their bucket codes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ._validation import check_int, check_prob
from .lsh import LSHParams, SimHashLSH, s_curve, simhash_collision_probability

__all__ = ["WalkResult", "check_min_distance", "redundancy_walk", "walk_lsh_params", "walk_recall"]

#: Target probability of finding a kept row right at the threshold, and the table budget, of the default LSH.
DEFAULT_RECALL = 0.95
DEFAULT_MAX_TABLES = 32
#: Rows read (and embedded) at least per block of the walk.
MIN_BLOCK = 64
#: Rows the exact walk compares with the kept set in one matrix product (then one by one within the chunk).
EXACT_CHUNK = 256


class WalkResult(NamedTuple):
    """What a redundancy walk did.

    Attributes:
        kept (`np.ndarray`, int64): The kept rows, in walk order (best first).
        skipped (`np.ndarray`, int64): The rows skipped as redundant, in walk order.
        nearest (`np.ndarray`, int64): For each skipped row, the kept row found closer than the threshold (the most
            similar one among those checked).
        visited (`int`): Rows visited: `len(kept) + len(skipped)`.
        n_distance_computations (`int`): Exact similarities computed.
        params (`LSHParams` or `None`): The `(k, l)` of the LSH walk; `None` for the exact walk.
    """

    kept: np.ndarray
    skipped: np.ndarray
    nearest: np.ndarray
    visited: int
    n_distance_computations: int
    params: LSHParams | None


def check_min_distance(min_distance: Any) -> float:
    """Validate a cosine-distance threshold: a number in (0, 2).

    Example:

    ```python
    >>> check_min_distance(0.1)
    0.1
    ```
    """
    ok = isinstance(min_distance, (int, float, np.floating, np.integer)) and not isinstance(min_distance, bool)
    if not ok or not 0 < min_distance < 2:
        raise ValueError(f"`min_distance` must be a cosine distance in (0, 2), got {min_distance!r}.")
    return float(min_distance)


def walk_lsh_params(
    min_distance: float, n: int, *, recall: float = DEFAULT_RECALL, max_tables: int = DEFAULT_MAX_TABLES
) -> LSHParams:
    """The LSH of a walk that keeps up to `n` rows: few far candidates, and a kept row at the threshold found with
    probability `recall`.

    The rule (Indyk & Motwani's `k`, then the tables for the recall): with `k = ceil(log2 n)` bits per table, a kept
    row orthogonal to the query (one bit collides with probability 1/2) shares its bucket in one table with
    probability `1/n`, so each table brings about one unrelated candidate; then `l` is the fewest tables whose S-curve
    `1 - (1 - p**k)**l` reaches `recall` at the threshold, where one bit collides with probability
    `p = 1 - arccos(1 - min_distance)/pi` (Charikar 2002). If that needs more than `max_tables` tables, `k` goes down
    one bit at a time until it does not (more candidates, same recall). Rows closer than the threshold are found with
    higher probability.

    Args:
        min_distance (`float`): Cosine-distance threshold, in (0, 2).
        n (`int`): The most rows the walk keeps (the index's size at the end).
        recall (`float`, *optional*, defaults to `0.95`): Probability of finding a kept row at the threshold.
        max_tables (`int`, *optional*, defaults to `32`): Most tables allowed (memory: `l` bucket entries per kept
            row).

    Returns:
        `LSHParams`: `(k, l, rho)`, `rho` nan.

    Example:

    ```python
    >>> k, l, _ = walk_lsh_params(0.1, 2600)
    >>> k, l, round(walk_recall(0.1, k, l), 3)
    (12, 18, 0.952)
    ```
    """
    min_distance = check_min_distance(min_distance)
    n = check_int("n", n)
    recall = check_prob("recall", recall)
    max_tables = check_int("max_tables", max_tables)
    p = simhash_collision_probability(max(-1.0, 1.0 - min_distance))
    if p <= 0:  # min_distance near 2: one bit per table, as many tables as the recall needs
        return LSHParams(1, max_tables, float("nan"))
    tables = 0
    for k in range(min(64, max(1, math.ceil(math.log2(max(n, 2))))), 0, -1):
        if p**k >= 1:
            return LSHParams(k, 1, float("nan"))
        tables = max(1, math.ceil(math.log1p(-recall) / math.log1p(-(p**k))))
        if tables <= max_tables:
            return LSHParams(k, tables, float("nan"))
    return LSHParams(1, tables, float("nan"))


def walk_recall(distance: float, k: int, l: int) -> float:  # noqa: E741
    """Probability that an LSH walk with `(k, l)` finds a kept row at cosine distance `distance` (the S-curve).

    Example:

    ```python
    >>> round(walk_recall(0.0, 12, 16), 3)
    1.0
    ```
    """
    return float(s_curve(simhash_collision_probability(float(np.clip(1.0 - distance, -1.0, 1.0))), k, l))


def _normalized(X: np.ndarray) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise ValueError(f"The vectors must be a finite 2-D array, got shape {X.shape}.")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms


class _Blocks:
    """The ranking's vectors, read in blocks: an array indexed by row, or a callable from row indices to vectors."""

    def __init__(self, vectors: Any, order: np.ndarray):
        self.order = order
        self.read = vectors if callable(vectors) else None
        self.array = None if callable(vectors) else np.asarray(vectors)
        self.pos = 0

    def next(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[self.pos : self.pos + size]
        self.pos += rows.size
        X = self.read(rows) if self.read is not None else self.array[rows]
        X = np.asarray(X)
        if X.shape[0] != rows.size:
            raise ValueError(f"`vectors` gave {X.shape[0]} vectors for {rows.size} rows.")
        return rows, _normalized(X)


class _KeptSet:
    """The kept vectors, with an incremental SimHash index (or none, for the exact walk)."""

    def __init__(self, dim: int, capacity: int, params: LSHParams | None, seed: int):
        self.vectors = np.empty((capacity, dim), dtype=np.float32)
        self.size = 0
        self.hasher = None
        if params is not None:
            self.hasher = SimHashLSH(dim, n_bits_per_table=params.k, n_tables=params.l, seed=seed)
            self.tables: list[dict[int, list[int]]] = [{} for _ in range(params.l)]
        self.n_distance_computations = 0

    def add(self, x: np.ndarray) -> None:
        """Keep `x` (exact walk: no index)."""
        self.vectors[self.size] = x
        self.size += 1

    def visit_lsh(self, x: np.ndarray, codes: Sequence[int], threshold: float) -> tuple[int, float]:
        """Look `x` up among its LSH candidates; keep it (and index it) unless one is more similar than `threshold`.

        Returns:
            `tuple[int, float]`: The position of the most similar candidate and its similarity (`-1, -inf` without
            candidates); `x` was kept when the similarity is at most `threshold`.
        """
        buckets = [table.get(code) for table, code in zip(self.tables, codes, strict=True)]
        found = [bucket for bucket in buckets if bucket is not None]
        j, sim = -1, -math.inf
        if found:
            unique = set(found[0]).union(*found[1:]) if len(found) > 1 else found[0]
            cand = np.fromiter(unique, dtype=np.int64, count=len(unique))
            sims = self.vectors[cand] @ x
            self.n_distance_computations += cand.size
            best = int(np.argmax(sims))
            j, sim = int(cand[best]), float(sims[best])
            if sim > threshold:
                return j, sim
        position = self.size
        self.vectors[position] = x
        for table, code, bucket in zip(self.tables, codes, buckets, strict=True):
            if bucket is None:
                table[code] = [position]
            else:
                bucket.append(position)
        self.size += 1
        return j, sim


def redundancy_walk(
    order: Any,
    vectors: Any,
    n_keep: int,
    min_distance: float,
    *,
    method: str = "lsh",
    n_bits_per_table: int | None = None,
    n_tables: int | None = None,
    recall: float = DEFAULT_RECALL,
    seed: int = 0,
    block_size: int = MIN_BLOCK,
    progress: Callable[[int], None] | None = None,
) -> WalkResult:
    """Walk down a ranking and keep `n_keep` rows, skipping each row closer than `min_distance` to a kept row.

    Args:
        order (`np.ndarray`): Row indices, best first: the rows the walk may visit (leave gated rows out).
        vectors (`np.ndarray` or `Callable`): The rows' vectors (e.g. sentence embeddings), indexed by row, shape
            `(n_rows, dim)`; or a callable that takes an array of row indices and returns their vectors, called on
            blocks along `order` (only the rows the walk visits are read). Vectors are normalised here.
        n_keep (`int`): Rows to keep; the walk stops there, or at the end of `order` with fewer.
        min_distance (`float`): Cosine-distance threshold in (0, 2): a row is skipped when `1 - cos` to a kept row is
            below it.
        method (`str`, *optional*, defaults to `"lsh"`): `"lsh"` (SimHash index of the kept rows, candidates checked
            exactly) or `"exact"` (every kept row checked).
        n_bits_per_table (`int`, *optional*): LSH bits per table `k`; default from `walk_lsh_params`.
        n_tables (`int`, *optional*): LSH tables `l`; default from `walk_lsh_params`.
        recall (`float`, *optional*, defaults to `0.95`): Target of `walk_lsh_params` for the defaults.
        seed (`int`, *optional*, defaults to `0`): Seed of the hyperplanes.
        block_size (`int`, *optional*, defaults to `64`): Fewest rows read per block; a block holds at least as many
            rows as are still to keep.
        progress (`Callable[[int], None]`, *optional*): Called with the number of rows kept in each block.

    Returns:
        `WalkResult`: The kept and skipped rows, the kept neighbour of each skipped row, the rows visited, the
        distance computations made and the LSH parameters.

    Example:

    ```python
    >>> X = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.7, 0.7]])
    >>> result = redundancy_walk([0, 1, 2, 3], X, 3, 0.05)
    >>> result.kept.tolist(), result.skipped.tolist(), result.nearest.tolist()
    ([0, 2, 3], [1], [0])
    ```
    """
    order = np.asarray(order, dtype=np.int64).reshape(-1)
    n_keep = check_int("n_keep", n_keep)
    min_distance = check_min_distance(min_distance)
    block_size = check_int("block_size", block_size)
    if method not in ("lsh", "exact"):
        raise ValueError(f"`method` must be 'lsh' or 'exact', got {method!r}.")
    params = None
    if method == "lsh":
        params = walk_lsh_params(min_distance, min(n_keep, order.size), recall=recall)
        k = params.k if n_bits_per_table is None else check_int("n_bits_per_table", n_bits_per_table, 1, 64)
        params = LSHParams(k, params.l if n_tables is None else check_int("n_tables", n_tables), float("nan"))
    threshold = np.float32(1.0 - min_distance)  # skip when the similarity exceeds it
    blocks = _Blocks(vectors, order)
    kept, skipped, nearest = [], [], []
    store: _KeptSet | None = None
    while len(kept) < n_keep and blocks.pos < order.size:
        rows, X = blocks.next(max(block_size, n_keep - len(kept)))
        if store is None:
            store = _KeptSet(X.shape[1], min(n_keep, order.size), params, seed)
        before = len(kept)
        if params is None:
            for c0 in range(0, rows.size, EXACT_CHUNK):
                chunk = slice(c0, c0 + EXACT_CHUNK)
                _exact_block(store, rows[chunk], X[chunk], threshold, n_keep, kept, skipped, nearest)
        else:
            _lsh_block(store, rows, X, threshold, n_keep, kept, skipped, nearest)
        if progress is not None:
            progress(len(kept) - before)
    return WalkResult(
        np.asarray(kept, dtype=np.int64),
        np.asarray(skipped, dtype=np.int64),
        np.asarray(nearest, dtype=np.int64),
        len(kept) + len(skipped),
        store.n_distance_computations if store is not None else 0,
        params,
    )


def _lsh_block(store: _KeptSet, rows, X, threshold, n_keep, kept, skipped, nearest) -> None:
    """One block of the LSH walk: hash the block at once, then decide row by row against the kept set."""
    # (rows, tables) Python ints as dictionary keys; int64 (same bits) converts much faster than uint64
    codes = np.ascontiguousarray(store.hasher.hash(X).T).view(np.int64).tolist()
    for i, row in enumerate(rows.tolist()):
        if len(kept) == n_keep:
            return
        j, sim = store.visit_lsh(X[i], codes[i], threshold)
        if sim > threshold:
            skipped.append(row)
            nearest.append(kept[j])
        else:
            kept.append(row)


def _exact_block(store: _KeptSet, rows, X, threshold, n_keep, kept, skipped, nearest) -> None:
    """One chunk of the exact walk: similarities to the rows kept before the chunk in one product, then row by row
    against those and the rows kept within the chunk."""
    start = store.size
    if start:
        S = X @ store.vectors[:start].T
        best_before = np.argmax(S, axis=1)
        sim_before = S[np.arange(len(rows)), best_before]
        store.n_distance_computations += S.size
    for i, row in enumerate(rows.tolist()):
        if len(kept) == n_keep:
            return
        j, sim = (int(best_before[i]), float(sim_before[i])) if start else (-1, -math.inf)
        if store.size > start:  # rows kept earlier in this block
            inner = store.vectors[start : store.size] @ X[i]
            store.n_distance_computations += inner.size
            m = int(np.argmax(inner))
            if inner[m] > sim:
                j, sim = start + m, float(inner[m])
        if sim > threshold:
            skipped.append(row)
            nearest.append(kept[j])
        else:
            store.add(X[i])
            kept.append(row)
