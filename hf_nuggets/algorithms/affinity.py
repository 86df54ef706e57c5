"""Affinity propagation: Frey & Dueck, "Clustering by Passing Messages Between Data Points", Science 315 (2007).

Guarantees:

- `mode="exact"` (dense) returns the same exemplars, labels and iteration count as
  `sklearn.cluster.AffinityPropagation(affinity="precomputed")` given the same preference, damping, `max_iter`,
  `convergence_iter` and integer `random_state` (same float64 arithmetic in the same order, same noise, same
  handling of non-convergence and of degenerate inputs). scikit-learn is not needed at run time.
- `mode="fast"` (dense) runs the same algorithm in float32 on row blocks with preallocated buffers: its memory is
  three float32 N x N matrices (S, responsibilities, availabilities) plus O(N) vectors and cache-sized blocks.
- `sparse_affinity_propagation` takes similarities on edges only (absent pairs mean -inf) and uses memory linear in
  the number of edges. With the same `random_state` its noise equals the dense noise entry for entry, so on a graph
  holding all N x N edges it gives the same result as `mode="exact"` (same float64 operations in the same order).
- Similarities need not be symmetric. Inputs are validated; bad ones raise `ValueError` naming the argument.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from ._validation import check_int
from .graph import check_graph, count_components

__all__ = [
    "AffinityPropagation",
    "AffinityPropagationResult",
    "ConvergenceWarning",
    "PreferenceSearchResult",
    "affinity_propagation",
    "find_preference_for_k",
    "sparse_affinity_propagation",
]

_BLOCK_ELEMS = 1 << 16  # elements per row block in fast mode: a few blocks fit in a 2 MiB L2 cache
_NOT_CONVERGED = "Affinity propagation did not converge, this model may return degenerate cluster centers and labels."
_NO_CENTERS = "Affinity propagation did not converge and this model will not have any cluster centers."


class ConvergenceWarning(UserWarning):
    """Affinity propagation stopped at `max_iter` before its exemplar decisions were stable."""


class AffinityPropagationResult(NamedTuple):
    """The outcome of one affinity propagation run.

    Attributes:
        cluster_centers_indices (`np.ndarray`): Sorted indices of the exemplars, one per cluster (empty if none).
        labels (`np.ndarray`): Cluster index of each point, into `cluster_centers_indices`; -1 where unassigned.
        n_iter (`int`): Number of message-passing iterations run (0 for degenerate inputs).
        converged (`bool`): Whether the exemplar decisions were stable for `convergence_iter` iterations.
    """

    cluster_centers_indices: np.ndarray
    labels: np.ndarray
    n_iter: int
    converged: bool


class PreferenceSearchResult(NamedTuple):
    """What `find_preference_for_k` found: the preference and the run it gave."""

    preference: float
    result: AffinityPropagationResult


# ----------------------------------------------------------------------------------------------- validation


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_params(damping: float, max_iter: int, convergence_iter: int) -> None:
    if isinstance(damping, bool) or not isinstance(damping, (int, float)) or not 0.5 <= damping < 1:
        raise ValueError(f"`damping` must be in [0.5, 1), got {damping!r}.")
    check_int("max_iter", max_iter)
    check_int("convergence_iter", convergence_iter)


def _rng(random_state: Any) -> np.random.RandomState | np.random.Generator | None:
    if random_state is None or isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return random_state
    if _is_int(random_state):
        return np.random.RandomState(random_state)
    raise ValueError(f"`random_state` must be None, an int or a numpy random generator, got {random_state!r}.")


def _check_preference(preference: Any, n: int) -> np.ndarray:
    pref = np.asarray(preference)
    if pref.dtype.kind not in "iuf" or pref.shape not in ((), (n,)) or not np.all(np.isfinite(pref)):
        raise ValueError(f"`preference` must be a finite number or an array of shape ({n},), got {preference!r}.")
    return pref


def _row_blocks(n_rows: int, n_cols: int, elems: int = _BLOCK_ELEMS) -> Iterator[tuple[int, int]]:
    step = max(1, elems // max(n_cols, 1))
    for r0 in range(0, n_rows, step):
        yield r0, min(r0 + step, n_rows)


def _check_dense(S: Any) -> np.ndarray:
    S = np.asarray(S)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"`S` must be a square similarity matrix, got shape {S.shape}.")
    if S.shape[0] == 0:
        raise ValueError("`S` must not be empty, got shape (0, 0).")
    if S.dtype.kind not in "iuf":
        raise ValueError(f"`S` must hold real numbers, got dtype {S.dtype}.")
    for r0, r1 in _row_blocks(*S.shape, elems=1 << 20):
        bad = ~np.isfinite(S[r0:r1])
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(f"`S` must be finite, got {S[r0 + i, j]} at ({r0 + i}, {j}).")
    return S


def _offdiag_all_equal(S: np.ndarray) -> bool:
    n = S.shape[0]
    if n == 1:
        return True
    value = S[0, 1]
    for r0, r1 in _row_blocks(n, n):
        eq = S[r0:r1] == value
        eq[np.arange(r1 - r0), np.arange(r0, r1)] = True
        if not eq.all():
            return False
    return True


# ----------------------------------------------------------------------------------------------- shared pieces


class _Stability:
    """Counts, per point, in how many of the last `window` iterations it was an exemplar."""

    def __init__(self, n: int, window: int):
        self.window, self.history, self.count = window, np.zeros((window, n), dtype=bool), np.zeros(n, np.int64)

    def converged(self, it: int, E: np.ndarray) -> bool:
        slot = it % self.window
        self.count -= self.history[slot]
        self.count += E
        self.history[slot] = E
        if it < self.window:  # the decisions must have been recorded for a full window plus one iteration
            return False
        stable = np.all((self.count == 0) | (self.count == self.window))
        return bool(stable and E.any())


def _add_noise(S: np.ndarray, rng: Any, eps: float, tiny: float) -> None:
    """S += (eps * S + tiny) * N(0, 1), drawn row-major in blocks (same stream as one N x N draw)."""
    if rng is None:
        return
    for r0, r1 in _row_blocks(*S.shape):
        block = S[r0:r1]
        block += (eps * block + tiny) * rng.standard_normal(size=block.shape)


def _degenerate(pref: np.ndarray, first_offdiag: float, n: int) -> AffinityPropagationResult:
    warnings.warn("All samples have mutually equal similarities. Returning arbitrary cluster center(s).", stacklevel=3)
    if pref.flat[0] > first_offdiag:
        return AffinityPropagationResult(np.arange(n), np.arange(n), 0, True)
    return AffinityPropagationResult(np.array([0]), np.zeros(n, dtype=np.intp), 0, True)


def _no_exemplars(n: int, n_iter: int) -> AffinityPropagationResult:
    warnings.warn(_NO_CENTERS, ConvergenceWarning, stacklevel=3)
    return AffinityPropagationResult(np.array([], dtype=np.intp), np.full(n, -1, dtype=np.intp), n_iter, False)


def _argmax_over(S: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """`argmax(S[:, idx], axis=1)` on row blocks (no N x K temporary)."""
    out = np.empty(S.shape[0], dtype=np.intp)
    for r0, r1 in _row_blocks(S.shape[0], idx.size):
        out[r0:r1] = S[r0:r1][:, idx].argmax(axis=1)
    return out


def _dense_labels(
    S: np.ndarray, E: np.ndarray, n_iter: int, converged: bool, exact: bool
) -> AffinityPropagationResult:
    """Assign points to exemplars, move each exemplar to its cluster's medoid, assign again."""
    n = S.shape[0]
    ex = np.flatnonzero(E)
    K = ex.size
    if K == 0:
        return _no_exemplars(n, n_iter)
    if not converged:
        warnings.warn(_NOT_CONVERGED, ConvergenceWarning, stacklevel=3)
    c = _argmax_over(S, ex)
    c[ex] = np.arange(K)
    order = np.argsort(c, kind="stable")
    for k, members in enumerate(np.split(order, np.cumsum(np.bincount(c, minlength=K))[:-1])):
        if exact:  # the same sequential float sum as scikit-learn, for identical ties
            sums = S[np.ix_(members, members)].sum(axis=0)
        else:
            sums = np.zeros(members.size)
            for r0, r1 in _row_blocks(members.size, members.size):
                sums += S[members[r0:r1]][:, members].sum(axis=0, dtype=np.float64)
        ex[k] = members[np.argmax(sums)]
    c = _argmax_over(S, ex)
    c[ex] = np.arange(K)
    centers, labels = np.unique(ex[c], return_inverse=True)
    return AffinityPropagationResult(centers, labels.astype(np.intp), n_iter, converged)


# ----------------------------------------------------------------------------------------------- dense kernels


def _update_responsibilities(
    S: np.ndarray, A: np.ndarray, R: np.ndarray, T: np.ndarray, rows: np.ndarray, keep: Any, gain: Any
) -> None:
    """Damped responsibility update, in place on rows of the matrices: `R = keep * R + gain * r_new` with
    `r_new(i,k) = s(i,k) - max_{k' != k} (a(i,k') + s(i,k'))`.

    Args:
        S (`np.ndarray`): Similarities (with preferences on the diagonal), the rows to update.
        A (`np.ndarray`): Availabilities, the same rows.
        R (`np.ndarray`): Responsibilities, the same rows; updated in place.
        T (`np.ndarray`): Scratch of the same shape; overwritten.
        rows (`np.ndarray`): `np.arange(len(S))`.
        keep (`float` or `np.float32`): The damping, weight of the old responsibilities.
        gain (`float` or `np.float32`): `1 - damping`, weight of the new ones.
    """
    np.add(A, S, out=T)
    best = T.argmax(axis=1)
    first = T[rows, best]
    T[rows, best] = -np.inf
    second = T.max(axis=1)
    np.subtract(S, first[:, None], out=T)
    T[rows, best] = S[rows, best] - second
    T *= gain
    R *= keep
    R += T


def _dense_exact(S: np.ndarray, damping: float, max_iter: int, convergence_iter: int) -> tuple[np.ndarray, int, bool]:
    """Message passing on full matrices, float operations in scikit-learn's order. S is noisy, with preferences."""
    n = S.shape[0]
    A, R, T = np.zeros_like(S), np.zeros_like(S), np.empty_like(S)
    rows = np.arange(n)
    stability = _Stability(n, convergence_iter)
    converged = False
    for it in range(max_iter):
        _update_responsibilities(S, A, R, T, rows, damping, 1 - damping)
        # availabilities: a(i,k) = min(0, r(k,k) + sum_{i' not in {i,k}} max(0, r(i',k))), a(k,k) without r(k,k)
        np.maximum(R, 0, out=T)
        T.flat[:: n + 1] = R.flat[:: n + 1]
        T -= T.sum(axis=0)  # T = -a_new before clipping
        diag = T.flat[:: n + 1].copy()
        np.maximum(T, 0, out=T)
        T.flat[:: n + 1] = diag
        T *= 1 - damping
        A *= damping
        A -= T
        E = (A.diagonal() + R.diagonal()) > 0
        if stability.converged(it, E):
            converged = True
            break
    return E, it + 1, converged


def _dense_fast(S: np.ndarray, damping: float, max_iter: int, convergence_iter: int) -> tuple[np.ndarray, int, bool]:
    """Same message passing in float32 on cache-sized row blocks, updated in place; returns the best decision."""
    n = S.shape[0]
    A, R = np.zeros_like(S), np.zeros_like(S)
    blocks = list(_row_blocks(n, n))
    buf = np.empty((blocks[0][1] - blocks[0][0], n), dtype=S.dtype)
    colsum, colsum32 = np.zeros(n), np.empty(n, dtype=S.dtype)
    keep, gain = np.float32(damping), np.float32(1 - damping)
    stability = _Stability(n, convergence_iter)
    E_best, converged = np.zeros(n, dtype=bool), False
    for it in range(max_iter):
        colsum[:] = 0
        for r0, r1 in blocks:
            Rb, T = R[r0:r1], buf[: r1 - r0]
            rows, diag = np.arange(r1 - r0), np.arange(r0, r1)
            _update_responsibilities(S[r0:r1], A[r0:r1], Rb, T, rows, keep, gain)
            np.maximum(Rb, 0, out=T)
            T[rows, diag] = Rb[rows, diag]
            colsum += T.sum(axis=0)
        colsum32[:] = colsum
        for r0, r1 in blocks:
            Ab, Rb, T = A[r0:r1], R[r0:r1], buf[: r1 - r0]
            rows, diag = np.arange(r1 - r0), np.arange(r0, r1)
            np.maximum(Rb, 0, out=T)
            T[rows, diag] = Rb[rows, diag]
            np.subtract(colsum32, T, out=T)  # a_new before clipping
            self_avail = T[rows, diag]
            np.minimum(T, 0, out=T)
            T[rows, diag] = self_avail
            T *= gain
            Ab *= keep
            Ab += T
        E = (A.diagonal() + R.diagonal()) > 0
        if E.any():
            E_best = E
        if stability.converged(it, E):
            converged = True
            break
    return E_best, it + 1, converged


def affinity_propagation(
    S: Any,
    *,
    preference: Any = None,
    damping: float = 0.5,
    max_iter: int = 200,
    convergence_iter: int = 15,
    mode: str = "exact",
    random_state: Any = 0,
) -> AffinityPropagationResult:
    """Cluster points by affinity propagation on a dense (possibly non-symmetric) similarity matrix.

    Each iteration updates responsibilities and availabilities with damping; a point is an exemplar when
    `a(k,k) + r(k,k) > 0`. The run stops once the set of exemplars has stayed unchanged for `convergence_iter`
    iterations (after at least `convergence_iter + 1` iterations), or after `max_iter` iterations.

    Args:
        S (`np.ndarray` of shape `(n, n)`): Similarities; `S[i, k]` is how well `k` would represent `i`. Finite.
        preference (`float` or `np.ndarray` of shape `(n,)`, *optional*): Placed on the diagonal of `S`; higher values
            give more clusters. Defaults to the median of all of `S`, diagonal included.
        damping (`float`, *optional*, defaults to `0.5`): Weight of the old message in each update, in [0.5, 1).
        max_iter (`int`, *optional*, defaults to `200`): Maximum number of iterations.
        convergence_iter (`int`, *optional*, defaults to `15`): Iterations without change that mean convergence.
        mode (`str`, *optional*, defaults to `"exact"`): `"exact"` reproduces scikit-learn bit for bit (float64, or
            float32 for float32 input, as scikit-learn does); `"fast"` uses float32 buffers updated in place on row
            blocks (about a third of the memory of `"exact"`), with noise scaled to float32.
        random_state (`int`, `np.random.RandomState` or `None`, *optional*, defaults to `0`): Seeds the tiny noise
            `(eps * S + 100 * tiny) * N(0, 1)` added to `S` to break ties, as scikit-learn does. `None` adds no noise
            (unlike scikit-learn, where `None` means numpy's global generator).

    Returns:
        `AffinityPropagationResult`: `(cluster_centers_indices, labels, n_iter, converged)`. Exemplars are refined to
        the point of each cluster with the highest total similarity from its members. If the run does not converge, a
        `ConvergenceWarning` is issued and the decision of the last iteration is used; if it has no exemplar, labels
        are all -1 and there are no centers (as in scikit-learn). In `"fast"` mode the last iteration that had
        exemplars is used instead. All-equal similarities and preferences give one cluster, or one per point if the
        preference is higher than the similarities, with a warning and `n_iter == 0`.

    Example:

    ```python
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [0.0, 0.1], [0.1, 0.0], [5.0, 5.0], [5.0, 5.1], [5.1, 5.1]])
    >>> S = -((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=-1)
    >>> result = affinity_propagation(S, preference=-1.0)
    >>> result.cluster_centers_indices.tolist(), result.labels.tolist()
    ([0, 4], [0, 0, 0, 1, 1, 1])
    ```
    """
    _check_params(damping, max_iter, convergence_iter)
    if mode not in ("exact", "fast"):
        raise ValueError(f'`mode` must be "exact" or "fast", got {mode!r}.')
    rng = _rng(random_state)
    S = _check_dense(S)
    n = S.shape[0]
    dtype = np.float32 if (mode == "fast" or S.dtype == np.float32) else np.float64
    S = np.array(S, dtype=dtype, order="C")  # a private copy, modified below
    pref = np.median(S) if preference is None else _check_preference(preference, n)
    if (pref.ndim == 0 or np.all(pref == pref.flat[0])) and _offdiag_all_equal(S):
        return _degenerate(pref, S.flat[n - 1], n)
    S.flat[:: n + 1] = pref
    info = np.finfo(dtype)
    _add_noise(S, rng, info.eps, info.tiny * 100)
    kernel = _dense_exact if mode == "exact" else _dense_fast
    E, n_iter, converged = kernel(S, damping, max_iter, convergence_iter)
    return _dense_labels(S, E, n_iter, converged, exact=mode == "exact")


class AffinityPropagation:
    """Affinity propagation on a precomputed similarity matrix, with a scikit-learn-like interface.

    Args:
        preference (`float` or `np.ndarray`, *optional*): See `affinity_propagation`; defaults to the median of `S`.
        damping (`float`, *optional*, defaults to `0.5`): Damping factor in [0.5, 1).
        max_iter (`int`, *optional*, defaults to `200`): Maximum number of iterations.
        convergence_iter (`int`, *optional*, defaults to `15`): Iterations without change that mean convergence.
        mode (`str`, *optional*, defaults to `"exact"`): `"exact"` (matches scikit-learn) or `"fast"` (float32).
        random_state (`int` or `None`, *optional*, defaults to `0`): Seed of the tie-breaking noise; `None` for none.

    After `fit`, the estimator has `labels_`, `cluster_centers_indices_`, `n_iter_` and `converged_`.
    """

    def __init__(
        self,
        *,
        preference: Any = None,
        damping: float = 0.5,
        max_iter: int = 200,
        convergence_iter: int = 15,
        mode: str = "exact",
        random_state: Any = 0,
    ):
        self.preference, self.damping, self.max_iter = preference, damping, max_iter
        self.convergence_iter, self.mode, self.random_state = convergence_iter, mode, random_state

    def fit(self, S: Any, y: Any = None) -> AffinityPropagation:
        """Cluster the points of the square similarity matrix `S`; `y` is ignored. Returns `self`."""
        names = ("preference", "damping", "max_iter", "convergence_iter", "mode", "random_state")
        result = affinity_propagation(S, **{name: getattr(self, name) for name in names})
        self.cluster_centers_indices_, self.labels_ = result.cluster_centers_indices, result.labels
        self.n_iter_, self.converged_ = result.n_iter, result.converged
        return self

    def fit_predict(self, S: Any, y: Any = None) -> np.ndarray:
        """Fit on `S` and return `labels_`."""
        return self.fit(S).labels_


# ----------------------------------------------------------------------------------------------- sparse


class _Graph(NamedTuple):
    """Edges sorted row-major; every row holds its self-edge."""

    rows: np.ndarray
    cols: np.ndarray
    starts: np.ndarray  # first edge of each row
    self_pos: np.ndarray  # position of each point's self-edge
    isolated: np.ndarray  # positions of the self-edges of points without other edges
    width: int  # number of edges of every row if all rows have as many (e.g. a kNN graph), else 0


def _build_graph(rows: np.ndarray, cols: np.ndarray, n: int) -> _Graph:
    counts = np.bincount(rows, minlength=n)
    self_pos = np.flatnonzero(rows == cols)
    width = int(counts[0]) if (counts == counts[0]).all() else 0
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return _Graph(rows, cols, starts, self_pos, self_pos[counts == 1], width)


def _row_first_max(g: _Graph, values: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the max of `values` and the position of its first occurrence (`out` is scratch)."""
    top = np.maximum.reduceat(values, g.starts)
    np.take(top, g.rows, out=out, mode="clip")
    hits = np.flatnonzero(values == out)
    first = hits[np.concatenate(([True], g.rows[hits[1:]] != g.rows[hits[:-1]]))]
    return top, first


class _Background:
    """Pairs without an edge at a finite similarity `value` instead of -inf, without storing them.

    For a non-edge `(i, k)` the responsibility `value - max(...)` is far below 0, so it adds nothing to column sums;
    its availability is then `min(0, r(k,k) + sum of positive r(., k))` whatever `i` is: one damped vector `A` over
    the points. A row's best non-edge is `value + max A[k]` over the points `k` it has no edge to, read off the
    global top `m` of `A` (`m` above every row's edge count, so one of them is always a non-edge).
    """

    def __init__(self, g: _Graph, value: float):
        n = g.starts.size
        self.g, self.value, self.A = g, value, np.zeros(n)
        self.m = min(n, int(np.bincount(g.rows, minlength=n).max()) + 1)
        self.slot = np.full(n, -1, dtype=np.intp)

    def best(self) -> np.ndarray:
        """Per row, the best `a(i,k) + s(i,k)` over the points `k` without an edge from `i` (-inf if none)."""
        g, n, m = self.g, self.g.starts.size, self.m
        if m >= n:  # some row may have an edge to every point
            top = np.argsort(-self.A, kind="stable")
        else:
            top = np.argpartition(-self.A, m - 1)[:m]
            top = top[np.argsort(-self.A[top], kind="stable")]
        self.slot[top] = np.arange(top.size)
        hit = self.slot[g.cols]
        mark = np.zeros((n, top.size + 1), dtype=bool)
        mark[g.rows[hit >= 0], hit[hit >= 0]] = True
        self.slot[top] = -1
        first = np.argmin(mark, axis=1)  # first top point the row has no edge to; top.size if none
        vals = np.concatenate((self.A[top], [-np.inf]))
        return self.value + vals[first]

    def update(self, colsum: np.ndarray, damping: float) -> None:
        self.A *= damping
        self.A += (1 - damping) * np.minimum(colsum, 0)


def _sparse_kernel(
    g: _Graph, s: np.ndarray, damping: float, max_iter: int, convergence_iter: int, background: float | None = None
) -> tuple[np.ndarray, int, bool]:
    n = g.starts.size
    A, R, T, U = np.zeros_like(s), np.zeros_like(s), np.empty_like(s), np.empty_like(s)
    bg = None if background is None else _Background(g, background)
    stability = _Stability(n, convergence_iter)
    E_best, converged = np.zeros(n, dtype=bool), False
    for it in range(max_iter):
        # the float operations of _dense_exact, in the same order, on the stored edges only
        np.add(A, s, out=T)
        if g.width:  # rows of equal length: 2-D views are faster than reduceat
            T2 = T.reshape(n, g.width)
            first = g.starts + T2.argmax(axis=1)
            top = T[first]
            T[first] = -np.inf
            second = T2.max(axis=1)
            if bg is not None:
                other = bg.best()
                top, second = np.maximum(top, other), np.maximum(second, other)
            np.subtract(s.reshape(n, g.width), top[:, None], out=T2)
        else:
            top, first = _row_first_max(g, T, U)  # U = top of each edge's row
            T[first] = -np.inf
            second = np.maximum.reduceat(T, g.starts)  # -inf for rows with only a self-edge: r(k,k) becomes +inf
            if bg is not None:
                other = bg.best()
                second = np.maximum(second, other)
                np.take(np.maximum(top, other), g.rows, out=U)
            np.subtract(s, U, out=T)
        T[first] = s[first] - second
        T *= 1 - damping
        R *= damping
        R += T
        np.maximum(R, 0, out=T)
        T[g.self_pos] = R[g.self_pos]
        colsum = np.bincount(g.cols, weights=T, minlength=n)  # sequential over rows, like np.sum(axis=0)
        np.take(colsum, g.cols, out=U, mode="clip")
        T -= U  # T = -a_new before clipping
        diag = T[g.self_pos]
        np.maximum(T, 0, out=T)
        T[g.self_pos] = diag
        if bg is None:
            T[g.isolated] = 0  # inf - inf: the availability of a point that can only choose itself is irrelevant
        else:
            bg.update(colsum, damping)
        T *= 1 - damping
        A *= damping
        A -= T
        E = (A[g.self_pos] + R[g.self_pos]) > 0
        if E.any():
            E_best = E
        if stability.converged(it, E):
            converged = True
            break
    return E_best, it + 1, converged


def _assign(g: _Graph, s: np.ndarray, is_exemplar: np.ndarray) -> np.ndarray:
    """Exemplar of each point: its most similar exemplar among its edges; exemplars are their own; -1 if none."""
    masked = np.where(is_exemplar[g.cols], s, -np.inf)
    top, first = _row_first_max(g, masked, np.empty_like(s))
    ex = np.where(top > -np.inf, g.cols[first], -1)
    ex[is_exemplar] = np.flatnonzero(is_exemplar)
    return ex


def _sparse_labels(g: _Graph, s: np.ndarray, E: np.ndarray, n_iter: int, converged: bool) -> AffinityPropagationResult:
    n = E.size
    if not E.any():
        return _no_exemplars(n, n_iter)
    if not converged:
        warnings.warn(_NOT_CONVERGED, ConvergenceWarning, stacklevel=3)
    ex = _assign(g, s, E)
    # medoid refinement: fewest missing in-cluster edges first (absent = -inf), then highest sum of similarities
    inside = (ex[g.rows] == ex[g.cols]) & (ex[g.rows] >= 0)
    sums = np.bincount(g.cols[inside], weights=s[inside], minlength=n)
    missing = np.bincount(ex[ex >= 0], minlength=n)[ex] - np.bincount(g.cols[inside], minlength=n)
    members = np.flatnonzero(ex >= 0)
    order = members[np.lexsort((members, -sums[members], missing[members], ex[members]))]
    leaders = order[np.concatenate(([True], ex[order[1:]] != ex[order[:-1]]))]
    is_exemplar = np.zeros(n, dtype=bool)
    is_exemplar[leaders] = True
    ex = _assign(g, s, is_exemplar)
    while (ex < 0).any():  # points without an edge to an exemplar join their most similar assigned neighbour
        known = np.where(ex[g.cols] >= 0, s, -np.inf)
        top, first = _row_first_max(g, known, np.empty_like(s))
        reach = (ex < 0) & (top > -np.inf)
        if not reach.any():
            break
        ex[reach] = ex[g.cols[first[reach]]]
    centers = np.flatnonzero(is_exemplar)
    labels = np.where(ex >= 0, np.searchsorted(centers, ex), -1)
    return AffinityPropagationResult(centers, labels.astype(np.intp), n_iter, converged)


def sparse_affinity_propagation(
    rows: Any,
    cols: Any,
    sims: Any,
    n: int,
    *,
    preference: Any = None,
    damping: float = 0.5,
    max_iter: int = 200,
    convergence_iter: int = 15,
    random_state: Any = 0,
    background: float | None = None,
) -> AffinityPropagationResult:
    """Affinity propagation on a similarity graph (e.g. a kNN graph), in memory linear in the number of edges.

    The edge `(rows[e], cols[e])` has similarity `sims[e]` (how well `cols[e]` would represent `rows[e]`); pairs
    without an edge have similarity -inf. The graph may be directed (non-symmetric). A self-edge carrying the
    preference is added for every point; self-edges given in the input only count towards the default preference.
    Messages are float64 vectors over the edges (rows reduced with `np.maximum.reduceat`, or
    2-D views when all rows have as many edges; columns summed with `np.bincount`).

    Args:
        rows (`np.ndarray` of int): Source point of each edge, in `[0, n)`.
        cols (`np.ndarray` of int): Candidate exemplar of each edge, in `[0, n)`. No duplicate `(row, col)` pair.
        sims (`np.ndarray` of float): Finite similarity of each edge.
        n (`int`): Number of points (at least 1).
        preference (`float` or `np.ndarray` of shape `(n,)`, *optional*): Defaults to the median of `sims`
            (given self-edges included, as the diagonal is in the dense mode).
        damping (`float`, *optional*, defaults to `0.5`): Damping factor in [0.5, 1).
        max_iter (`int`, *optional*, defaults to `200`): Maximum number of iterations.
        convergence_iter (`int`, *optional*, defaults to `15`): Iterations without change that mean convergence.
        random_state (`int`, `np.random.RandomState` or `None`, *optional*, defaults to `0`): Seeds the noise
            `(eps * s + 100 * tiny) * N(0, 1)` added to the edges (self-edges included) in row-major order, so that on
            a complete graph it is the same noise as in `affinity_propagation(..., mode="exact")`. `None`: no noise.
        background (`float` or `np.ndarray` of shape `(n,)`, *optional*): Similarity of the pairs without an edge
            (per row if an array) instead of -inf, without storing them: the same decisions as dense affinity
            propagation on the matrix filled with it (no noise on the filled pairs). A hard -inf makes a kNN graph
            frustrated (a point can only join exemplars among its neighbours); a finite background lets it reach any
            exemplar at that cost, which made 600- and 3,000-point 20-NN graphs of 32-dimensional blobs converge
            where -inf oscillated (not the 20,000- and 100,000-point ones). Costs one `n x (max degree + 1)` mask
            per iteration.

    Returns:
        `AffinityPropagationResult`: as for `affinity_propagation`. Exemplars are refined to the member with the
        fewest missing edges from its cluster, then the highest total similarity. Points with no edge to an exemplar
        take the cluster of their most similar assigned neighbour (repeatedly), else label -1. If the run does not
        converge, a `ConvergenceWarning` is issued and the last iteration that had exemplars is used.

    Raises:
        ValueError: Bad parameters, or a bad graph (see `hf_nuggets.algorithms.graph.check_graph`): indices out of
            range, non-finite similarities, a repeated edge, or isolated points (no edge to or from another point;
            on a kNN graph, the neighbour search missed them), each named with where it is.
    """
    _check_params(damping, max_iter, convergence_iter)
    rng = _rng(random_state)
    rows, cols, sims, n = check_graph(rows, cols, sims, n)
    if background is not None:
        background = _check_preference(background, n).astype(np.float64)  # same shape rule as a preference
    rows, cols = rows.astype(np.intp), cols.astype(np.intp)
    off = rows != cols
    if not off.any():  # a single point (a larger graph without edges between points is refused above)
        return AffinityPropagationResult(np.arange(n), np.arange(n), 0, True)
    pref = np.median(sims) if preference is None else _check_preference(preference, n)
    rows, cols, sims = rows[off], cols[off], sims[off]
    if np.all(pref == pref.flat[0]) and np.all(sims == sims[0]):
        return _degenerate(pref, sims[0], n)
    key = np.concatenate((rows * n + cols, np.arange(n) * (n + 1)))
    order = np.argsort(key, kind="stable")
    key = key[order]
    s = np.concatenate((sims, np.broadcast_to(pref, (n,)).astype(np.float64)))[order]
    del sims, off
    g = _build_graph(key // n, key % n, n)
    del key, order
    _add_noise(s[None, :], rng, np.finfo(np.float64).eps, np.finfo(np.float64).tiny * 100)
    E, n_iter, converged = _sparse_kernel(g, s, damping, max_iter, convergence_iter, background)
    return _sparse_labels(g, s, E, n_iter, converged)


# ----------------------------------------------------------------------------------------------- choosing k


def find_preference_for_k(
    S_or_edges: Any,
    k: int,
    *,
    damping: float = 0.5,
    max_iter: int = 200,
    convergence_iter: int = 15,
    mode: str = "exact",
    random_state: Any = 0,
    max_trials: int = 40,
) -> PreferenceSearchResult:
    """Find by bisection a (uniform) preference for which affinity propagation finds exactly `k` exemplars.

    The number of exemplars grows (nearly monotonically) with the preference; the search brackets `k` between
    `min(s) - span` and `max(s) + span` (widening the bracket if needed), then bisects. If no tried preference gives
    exactly `k`, the run with the number of exemplars closest to `k` is returned (fewer exemplars on ties).

    Args:
        S_or_edges (`np.ndarray` or `tuple`): A dense square similarity matrix, or a tuple `(rows, cols, sims, n)`
            for `sparse_affinity_propagation`.
        k (`int`): Wanted number of exemplars, in `[1, n]`.
        damping, max_iter, convergence_iter, mode, random_state: As for `affinity_propagation` (`mode` is ignored for
            edges).
        max_trials (`int`, *optional*, defaults to `40`): Maximum number of affinity propagation runs.

    Returns:
        `PreferenceSearchResult`: `(preference, result)`, the preference and its `AffinityPropagationResult`.

    Raises:
        ValueError: `k` is not in `[1, n]`; on edges, a bad graph (see `sparse_affinity_propagation`) or fewer `k`
            than the graph's connected components (each needs an exemplar), with the numbers.
    """
    common = {"damping": damping, "max_iter": max_iter, "convergence_iter": convergence_iter}
    if isinstance(S_or_edges, tuple):
        if len(S_or_edges) != 4:
            raise ValueError(f"`S_or_edges` must be a matrix or a tuple (rows, cols, sims, n), got {S_or_edges!r}.")
        values, n = np.asarray(S_or_edges[2], dtype=np.float64), S_or_edges[3]
        run = partial(sparse_affinity_propagation, *S_or_edges, random_state=random_state, **common)
    else:
        values = _check_dense(S_or_edges)
        n = values.shape[0]
        run = partial(affinity_propagation, values, mode=mode, random_state=random_state, **common)
    if not _is_int(n) or not _is_int(k) or not 1 <= k <= n:
        raise ValueError(f"`k` must be in [1, {n}], got {k!r}.")
    if isinstance(S_or_edges, tuple):
        check_graph(*S_or_edges)
        components = count_components(S_or_edges[0], S_or_edges[1], n)
        if components > k:
            raise ValueError(
                f"`k` ({k}) is fewer than the {components} connected components of the graph on {n} points: "
                "each component needs an exemplar of its own."
            )
    check_int("max_trials", max_trials, 2)
    if not values.size:
        raise ValueError("`S_or_edges` holds no similarity.")
    span = max(float(values.max() - values.min()), abs(float(values.max())), 1e-12)
    tried: list[tuple[float, AffinityPropagationResult]] = []

    def trial(p: float) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tried.append((p, run(preference=p)))
        return tried[-1][1].cluster_centers_indices.size

    lo, hi, step = float(values.min()) - span, float(values.max()) + span, span
    n_lo = trial(lo)
    while n_lo > k and len(tried) < max_trials // 2:  # widen downwards
        step *= 4
        lo -= step
        n_lo = trial(lo)
    n_hi, step = (trial(hi) if n_lo < k else n_lo), span
    while n_hi < k and len(tried) < max_trials // 2:  # widen upwards
        step *= 4
        hi += step
        n_hi = trial(hi)
    n_mid = n_lo if n_lo == k else n_hi
    while n_mid != k and len(tried) < max_trials and hi - lo > 1e-12 * span:
        # a count outside [n_lo, n_hi] (the count is not quite monotone) is retried off-centre before being trusted
        for frac in (0.5, 0.3, 0.7, 0.4, 0.6):
            mid = lo + (hi - lo) * frac
            n_mid = trial(mid)
            if n_mid == k or n_lo <= n_mid <= n_hi or len(tried) >= max_trials:
                break
        if n_mid < k:
            lo, n_lo = mid, n_mid
        elif n_mid > k:
            hi, n_hi = mid, n_mid
    p, result = min(
        tried, key=lambda t: (abs(t[1].cluster_centers_indices.size - k), t[1].cluster_centers_indices.size)
    )
    return PreferenceSearchResult(float(p), result)
