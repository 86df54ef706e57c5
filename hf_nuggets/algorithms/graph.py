"""Similarity graphs given as edge lists: validation, symmetrisation and connected components.

A graph is `(rows, cols, sims, n)`: edge `e` goes from point `rows[e]` to point `cols[e]` with similarity `sims[e]`
("how well `cols[e]` would represent `rows[e]`"), over points `0 .. n-1`. Sparse affinity propagation and its two-stage
form (`hf_nuggets.algorithms.two_stage_affinity`) take graphs in this form, e.g. from `lsh.knn_graph`.

Guarantees: every check raises `ValueError` naming the argument and the first offending edge or point; nothing
builds an `n x n` matrix (memory linear in the number of edges).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._validation import check_int

__all__ = ["Graph", "check_graph", "count_components", "symmetrize_graph"]


class Graph(NamedTuple):
    """A validated edge list: `rows`, `cols` (int64), `sims` (float64), and the number of points `n`."""

    rows: np.ndarray
    cols: np.ndarray
    sims: np.ndarray
    n: int


def check_graph(rows: Any, cols: Any, sims: Any, n: int, *, allow_isolated: bool = False) -> Graph:
    """Validate an edge list and return it as arrays of fixed dtypes (self-edges kept as given).

    Args:
        rows (`np.ndarray` of int): Source point of each edge, in `[0, n)`.
        cols (`np.ndarray` of int): Target point of each edge, in `[0, n)`.
        sims (`np.ndarray` of float): Similarity of each edge; finite.
        n (`int`): Number of points, at least 1.
        allow_isolated (`bool`, *optional*, defaults to `False`): Accept points without any edge to another point
            (in either direction). Affinity propagation can only make such a point its own exemplar, which on a kNN
            graph means the neighbour search missed it: an error by default. A single point (`n == 1`) is fine.

    Returns:
        `Graph`: `(rows, cols, sims, n)` as int64, int64, float64 arrays and an `int`.

    Raises:
        ValueError: Arrays of different lengths or not 1-D, indices out of range, non-finite similarities, an edge
            given twice, or (unless `allow_isolated`) isolated points; the message names the first one.

    Example:

    ```python
    >>> check_graph([0, 1], [1, 0], [0.5, 0.5], 3)
    Traceback (most recent call last):
    ...
    ValueError: The graph has 1 isolated point (no edge to or from another point), e.g. point 2.
    ```
    """
    n = check_int("n", n)
    rows, cols, sims = np.asarray(rows), np.asarray(cols), np.asarray(sims)
    for name, arr in (("rows", rows), ("cols", cols)):
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise ValueError(f"`{name}` must be a 1-D integer array, got shape {arr.shape} and dtype {arr.dtype}.")
    if sims.ndim != 1 or not rows.size == cols.size == sims.size:
        sizes = f"{rows.size}, {cols.size}, {sims.size}"
        raise ValueError(f"`rows`, `cols` and `sims` must be 1-D of equal length, got {sizes}.")
    for name, arr in (("rows", rows), ("cols", cols)):
        bad = np.flatnonzero((arr < 0) | (arr >= n))
        if bad.size:
            raise ValueError(f"`{name}` must hold indices in [0, {n}), got {arr[bad[0]]} at edge {bad[0]}.")
    if sims.size and sims.dtype.kind not in "iuf":
        raise ValueError(f"`sims` must hold real numbers, got dtype {sims.dtype}.")
    bad = np.flatnonzero(~np.isfinite(sims))
    if bad.size:
        e = bad[0]
        raise ValueError(
            f"`sims` must be finite, got {sims[e]} at edge {e} ({rows[e]} -> {cols[e]}); {bad.size} non-finite in all."
        )
    rows, cols, sims = rows.astype(np.int64), cols.astype(np.int64), sims.astype(np.float64)
    key = np.sort(rows * n + cols)
    dup = np.flatnonzero(key[1:] == key[:-1])
    if dup.size:
        raise ValueError(f"`rows`/`cols` must not repeat an edge, got ({key[dup[0]] // n}, {key[dup[0]] % n}) twice.")
    if not allow_isolated and n > 1:
        off = rows != cols
        touched = np.zeros(n, dtype=bool)
        touched[rows[off]] = True
        touched[cols[off]] = True
        lonely = np.flatnonzero(~touched)
        if lonely.size:
            plural = "s" if lonely.size > 1 else ""
            raise ValueError(
                f"The graph has {lonely.size} isolated point{plural} (no edge to or from another point), "
                f"e.g. point{plural} {', '.join(map(str, lonely[:5]))}."
            )
    return Graph(rows, cols, sims, n)


def symmetrize_graph(rows: Any, cols: Any, sims: Any, n: int) -> Graph:
    """The union of a graph and its reverse: each edge `i -> j` also gives `j -> i` (with the same similarity)
    where the graph lacks it. Self-edges are dropped.

    On a kNN graph, `j` among the neighbours of `i` does not make `i` a neighbour of `j`; affinity propagation then
    lets `i` choose `j` as its exemplar while `j` cannot "see" `i` among the points it could represent. The union
    makes the choice mutual (Frey & Dueck cluster symmetric sparse similarities). Where both directions are given
    they are kept as given, so non-symmetric similarities stay non-symmetric.

    Args:
        rows, cols, sims, n: The graph (see `check_graph`; isolated points allowed).

    Returns:
        `Graph`: The symmetric graph, edges sorted by row then column.

    Example:

    ```python
    >>> g = symmetrize_graph([0, 1], [1, 2], [0.9, 0.4], 3)
    >>> g.rows.tolist(), g.cols.tolist(), g.sims.tolist()
    ([0, 1, 1, 2], [1, 0, 2, 1], [0.9, 0.9, 0.4, 0.4])
    ```
    """
    g = check_graph(rows, cols, sims, n, allow_isolated=True)
    off = g.rows != g.cols
    r, c, s = g.rows[off], g.cols[off], g.sims[off]
    key = np.concatenate((r * n + c, c * n + r))
    val = np.concatenate((s, s))
    order = np.argsort(key, kind="stable")  # given edges sort before their mirrors of the same key
    key, val = key[order], val[order]
    first = np.concatenate(([True], key[1:] != key[:-1]))
    key, val = key[first], val[first]
    return Graph(key // n, key % n, val, n)


def count_components(rows: Any, cols: Any, n: int) -> int:
    """Number of weakly connected components of the graph on `n` points (isolated points count as components).

    Example:

    ```python
    >>> count_components([0, 2], [1, 3], 5)
    3
    ```
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    adjacency = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
    return int(connected_components(adjacency, directed=True, connection="weak", return_labels=False))
