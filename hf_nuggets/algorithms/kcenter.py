"""Greedy k-center (farthest-point) selection: Gonzalez, "Clustering to minimize the maximum intercluster distance",
Theoretical Computer Science 38 (1985).

Guarantees:

- The selection is the farthest-point traversal: each new center is the point farthest from the centers chosen so
  far. From one first center its covering radius is at most twice the optimal radius of k centers (a
  2-approximation; doing better is NP-hard); from `s` seeds, at most twice the optimal radius of `k - s + 1`
  centers. The bound holds for the Euclidean metric, and for cosine in chordal distance `sqrt(2 (1 - cos))` (the
  Euclidean distance between normalised vectors), which orders points exactly as `1 - cos` does.
- Deterministic: without seeds the first center is index 0, and every tie (duplicate points, equal distances) goes
  to the lowest index. Points already selected are never selected again.
- Memory is O(N) beyond the input: a running min-distance vector and the distances from the next (at most 64)
  centers to all points, never an N x N matrix. The next centers are predicted by running the greedy on a small
  pool of the farthest points, so their distances come from one BLAS-3 product instead of many memory-bound
  matrix-vector products; each center is still the exact argmax, so the prediction changes speed, never results.
  Arithmetic is float32; the input is used in place when it is float32 and C-contiguous.
- Inputs are validated; bad ones raise `ValueError` naming the argument and the value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_int, check_vectors

__all__ = ["kcenter_greedy"]

_BATCH = 64  # centers whose distances to all points are computed in one matrix product
_POOL = 4  # the greedy is predicted on the _POOL * _BATCH farthest points


def _check_seeds(seeds: Any, n: int, k: int) -> np.ndarray:
    if seeds is None:
        return np.empty(0, dtype=np.int64)
    arr = np.asarray(seeds)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"`seeds` must be a 1-D sequence of integer indices, got {seeds!r}.")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = int(arr[(arr < 0) | (arr >= n)][0])
        raise ValueError(f"`seeds` must be indices in [0, {n}), got {bad}.")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"`seeds` must not repeat an index, got {seeds!r}.")
    if arr.size > k:
        raise ValueError(f"`seeds` holds {arr.size} indices, more than `k`={k}.")
    return arr


def kcenter_greedy(
    X: Any,
    k: int,
    *,
    seeds: Any = None,
    metric: str = "cosine",
    chunk_size: int = 65536,
    return_radius: bool = False,
) -> np.ndarray | tuple[np.ndarray, float]:
    """Select `k` points by greedy farthest-point traversal (k-center, Gonzalez 1985).

    The seeds (or, without seeds, point 0) come first; then each step adds the point whose distance to its nearest
    selected point is largest, and updates every point's distance to its nearest selected point. Ties go to the
    lowest index, so among duplicate points the first one is selected; once every remaining point lies on a selected
    one (distance 0), the lowest unselected indices are taken in order.

    Args:
        X (`np.ndarray` of shape `(n_points, dim)`): Points (e.g. sentence embeddings); converted to float32. Must be
            finite, and with `metric="cosine"` no row may be all zeros.
        k (`int`): Number of points to select, seeds included; `1 <= k <= n_points`.
        seeds (`Sequence[int]`, *optional*): Indices selected first, in this order (e.g. the top quality picks);
            distinct, in `[0, n_points)`, at most `k` of them.
        metric (`str`, *optional*, defaults to `"cosine"`): `"cosine"` (distance `1 - cos`) or `"euclidean"`.
        chunk_size (`int`, *optional*, defaults to `65536`): Rows of `X` per block of the matrix products (bounds
            the temporary memory).
        return_radius (`bool`, *optional*, defaults to `False`): Also return the covering radius, the largest
            distance from a point to its nearest selected point (in the units of `metric`).

    Returns:
        `np.ndarray` of shape `(k,)` (int64): The selected indices in selection order, seeds first; with
        `return_radius=True`, the tuple `(indices, radius)`.

    Example:

    ```python
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0], [5.0, 0.5]])
    >>> kcenter_greedy(X, 3, metric="euclidean").tolist()
    [0, 3, 4]
    >>> idx, radius = kcenter_greedy(X, 2, seeds=[4], metric="euclidean", return_radius=True)
    >>> idx.tolist(), round(radius, 3)
    ([4, 0], 5.025)
    ```
    """
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f'`metric` must be "cosine" or "euclidean", got {metric!r}.')
    X = check_vectors("X", X, shape="(n_points, dim)")
    n = X.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"`k` must be an integer in [1, n_points={n}], got {k!r}.")
    chunk_size = check_int("chunk_size", chunk_size)
    seeds_arr = _check_seeds(seeds, n, int(k))
    k = int(k)

    # Squared norms, and for cosine the inverse norms, computed in blocks.
    sq = np.empty(n, dtype=np.float32)
    for r0 in range(0, n, chunk_size):
        block = X[r0 : r0 + chunk_size]
        sq[r0 : r0 + chunk_size] = np.einsum("ij,ij->i", block, block)
    if metric == "cosine":
        if (sq == 0).any():
            raise ValueError(
                f"`X` must not hold all-zero rows with metric='cosine', got one at row {int(np.argmin(sq))}."
            )
        scale = (1.0 / np.sqrt(sq)).astype(np.float32)

    min_dist = np.full(n, np.inf, dtype=np.float32)  # metric value to the nearest selected point; -1 once selected
    dist = np.empty(n, dtype=np.float32)
    selected = np.empty(k, dtype=np.int64)
    row_of = np.full(n, -1, dtype=np.int64)  # row of each point in `dots` (-1: not precomputed)
    batch = np.empty(0, dtype=np.int64)
    dots_buffer = np.empty((min(_BATCH, k), n), dtype=np.float32)
    dots = dots_buffer[:0]

    def precompute(points: np.ndarray) -> None:
        """Dot products of `points` with every point: rows already computed are kept (moved to the front), the
        others come from one matrix product per block of rows of X (reading X once)."""
        nonlocal batch, dots
        old_rows = np.sort(row_of[points[row_of[points] >= 0]])
        row_of[batch] = -1
        for i, r in enumerate(old_rows.tolist()):  # ascending, r >= i: no row is overwritten before it is moved
            if r != i:
                dots_buffer[i] = dots_buffer[r]
        kept = batch[old_rows]
        new = points[~np.isin(points, kept)]
        batch = np.concatenate([kept, new])
        dots = dots_buffer[: batch.size]
        row_of[batch] = np.arange(batch.size)
        if new.size:
            P, out = X[new], dots_buffer[kept.size : batch.size]
            for r0 in range(0, n, chunk_size):
                np.matmul(P, X[r0 : r0 + chunk_size].T, out=out[:, r0 : r0 + chunk_size])

    def select(t: int, c: int) -> None:
        selected[t] = c
        np.copyto(dist, dots[row_of[c]])
        if metric == "cosine":  # 1 - cos
            np.multiply(dist, scale, out=dist)
            np.multiply(dist, -scale[c], out=dist)
            np.add(dist, 1.0, out=dist)
        else:  # squared distance, clipped at 0 against rounding
            np.multiply(dist, -2.0, out=dist)
            np.add(dist, sq, out=dist)
            np.add(dist, sq[c], out=dist)
        np.maximum(dist, 0.0, out=dist)
        np.minimum(min_dist, dist, out=min_dist)
        min_dist[c] = -1.0  # never selected again: below every real distance

    def metric_values(dots: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Metric values from the dot products between points `rows` and `cols` (a small matrix)."""
        if metric == "cosine":
            return 1.0 - dots * scale[rows][:, None] * scale[cols][None, :]
        return sq[rows][:, None] + sq[cols][None, :] - 2.0 * dots

    def predict(t: int, c: int) -> np.ndarray:
        """The next centers, by running the greedy on a pool of the farthest points only (c, the farthest, first).

        While the pool's largest remaining distance stays above the distances outside it, this is exactly the
        sequence of the full greedy; after that it is a guess. Either way the centers taken are checked exactly.
        """
        size = min(_BATCH, k - t)
        n_pool = min(n - t, _POOL * size)  # n - t points are unselected
        pool = np.sort(np.argpartition(min_dist, n - n_pool)[n - n_pool :])  # sorted: ties go to the lowest index
        if not (pool == c).any():  # c ties with another maximum left out
            pool[np.argmin(min_dist[pool])] = c
            pool.sort()
        D = metric_values(X[pool] @ X[pool].T, pool, pool)
        md = min_dist[pool].copy()
        out = np.empty(size, dtype=np.int64)
        for i in range(size):
            j = int(np.argmax(md))
            out[i] = pool[j]
            np.minimum(md, D[j], out=md)
            md[j] = -1.0
        return out

    # Seeds (or point 0) first, then farthest points. Each center is the exact farthest point (argmax over all
    # points); its distances come from a batch precomputed for the centers `predict` expects next, so one BLAS-3
    # product replaces many memory-bound matrix-vector products.
    first = seeds_arr if seeds_arr.size else np.zeros(1, dtype=np.int64)
    for b0 in range(0, first.size, _BATCH):
        precompute(first[b0 : b0 + _BATCH])
        for t in range(b0, min(b0 + _BATCH, first.size)):
            select(t, int(first[t]))
    for t in range(first.size, k):
        c = int(np.argmax(min_dist))  # first maximum: the lowest index wins ties
        if row_of[c] < 0:
            precompute(predict(t, c))
        select(t, c)
    if not return_radius:
        return selected
    radius = float(max(min_dist.max(), 0.0))
    if metric == "euclidean":
        radius = float(np.sqrt(radius))
    return selected, radius
