"""Two-stage affinity propagation for large sparse graphs: Frey & Dueck (Science 2007) applied twice.

On a kNN graph a point can only choose an exemplar among its own neighbours, so sparse affinity propagation finds
many *local* exemplars whatever the preference (at least about one per `n_neighbors + 1` points). To reach `k`
exemplars at scale:

1. sparse affinity propagation on the (symmetrised) graph gives local exemplars, each with its members;
2. dense affinity propagation over the local clusters picks the final exemplars among the local exemplars: the
   similarity of local cluster `a` to local exemplar `b` is the sum of its members' similarities to `b`, so the
   objective is dense affinity propagation's own when every local cluster moves whole;
3. every point takes the final exemplar of its local exemplar; then, as dense affinity propagation ends, each final
   exemplar moves to the best-placed local exemplar of its cluster and each point joins its most similar final
   exemplar (`reassign`).

Guarantees: memory is linear in the number of edges for stage 1 plus `L x L` matrices for stage 2 (`L` local
exemplars; the `n x L` member similarities are summed in blocks); the final exemplars are points of the data, and
every point gets a label. `find_preference_for_k_two_stage` runs stage 1 once (it does not depend on `k`) and
bisects the stage-2 preference. Bad graphs (isolated points, repeated edges, non-finite similarities) and impossible
`k` raise `ValueError` with the numbers.

Known limit (measured on 20-NN graphs of 32-dimensional Gaussian blobs): stage 1 often ends at `max_iter` without
converging. A few hub points (in-degree 2-5 times the mean) and a neighbouring candidate take turns as exemplar, in
anti-phase with a period of about 150 iterations at damping 0.9 (9 points of 20,000; 136 of 100,000). It is not a
tie (noise on or off gives the same run), nor the graph's asymmetry (the union with the reverse graph gives the same
decisions), and damping 0.5 to 0.97 does not remove it; absent pairs at a finite `background` removed it on 600 and
3,000 points but not on 20,000. Stage 1 then keeps its last decision (`local_converged` is `False`); the two stages
still matched scikit-learn's dense clustering (ARI 1.0 on 5,000 points, 20 blobs).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ._validation import check_int
from .affinity import (
    AffinityPropagationResult,
    affinity_propagation,
    find_preference_for_k,
    sparse_affinity_propagation,
)
from .graph import check_graph, symmetrize_graph

__all__ = [
    "TooFewLocalExemplarsError",
    "TwoStageResult",
    "find_preference_for_k_two_stage",
    "two_stage_affinity_propagation",
]

#: Frey & Dueck's own defaults (`apcluster.m`: `dampfact` 0.9, `convits` 100, `maxits` 1000), not scikit-learn's
#: (0.5, 15, 200): with damping 0.9 the messages move by a tenth of their update per iteration, so a 15-iteration
#: window can call a cold start "converged" before any exemplar has emerged (seen on 5 points: one cluster).
LOCAL_DAMPING = 0.9
CONVERGENCE_ITER = 100
MAX_ITER = 1000


class TooFewLocalExemplarsError(ValueError):
    """Stage 1 found fewer local exemplars than the `k` asked for (a higher `local_preference` gives more)."""


class TwoStageResult(NamedTuple):
    """The outcome of two-stage affinity propagation.

    Attributes:
        cluster_centers_indices (`np.ndarray`): Sorted indices (into the points) of the final exemplars.
        labels (`np.ndarray`): Cluster of each point, an index into `cluster_centers_indices`.
        n_iter (`int`): Iterations of the stage-2 run.
        converged (`bool`): Whether both stages converged.
        local_exemplars (`np.ndarray`): Sorted indices of the stage-1 (local) exemplars.
        local_labels (`np.ndarray`): Local cluster of each point, an index into `local_exemplars`.
        local_n_iter (`int`): Iterations of the stage-1 run.
        local_converged (`bool`): Whether stage 1 converged.
        preference (`float`): The stage-2 preference used.
    """

    cluster_centers_indices: np.ndarray
    labels: np.ndarray
    n_iter: int
    converged: bool
    local_exemplars: np.ndarray
    local_labels: np.ndarray
    local_n_iter: int
    local_converged: bool
    preference: float


class _Local(NamedTuple):
    exemplars: np.ndarray
    labels: np.ndarray
    result: AffinityPropagationResult


def _local_stage(
    rows: Any, cols: Any, sims: Any, n: int, local_preference: Any, symmetrize: bool, params: dict
) -> _Local:
    g = check_graph(rows, cols, sims, n)
    if symmetrize:
        g = symmetrize_graph(*g)
    off = g.rows != g.cols
    if local_preference is None:
        local_preference = float(g.sims[off].min())
    result = sparse_affinity_propagation(g.rows, g.cols, g.sims, n, preference=local_preference, **params)
    labels = result.labels.copy()
    exemplars = result.cluster_centers_indices
    lost = np.flatnonzero(labels < 0)
    if lost.size:  # a component without an exemplar (a run that did not converge): its points stand for themselves
        exemplars = np.concatenate((exemplars, lost))
        labels[lost] = np.arange(result.cluster_centers_indices.size, exemplars.size)
        order = np.argsort(exemplars, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        exemplars, labels = exemplars[order], rank[labels]
    return _Local(exemplars, labels, result)


def _exemplar_matrix(similarity: Callable, local: _Local, aggregate: bool) -> np.ndarray:
    """Stage-2 similarities of local cluster `a` to local exemplar `b`, less those to its own exemplar (a row shift,
    which affinity propagation ignores, that puts a uniform preference on the diagonal).

    With `aggregate`, the sum over the members `x` of `a` of `s(x, b)`: exactly what dense affinity propagation's
    objective counts when the members of `a` all join `b` (computed in blocks of points, `n x L` calls in all).
    Without, `m_a * s(a, b)`: the members counted at their exemplar's place (`L x L` calls).
    """
    ex = local.exemplars
    L = ex.size
    if aggregate:
        from scipy.sparse import csr_matrix

        n = local.labels.size
        S = np.zeros((L, L))
        step = max(1, (1 << 22) // L)
        for p0 in range(0, n, step):
            block = np.arange(p0, min(p0 + step, n))
            part = _checked(similarity, block, ex)
            members = csr_matrix((np.ones(block.size), (local.labels[block], np.arange(block.size))), (L, block.size))
            S += members @ part
    else:
        S = _checked(similarity, ex, ex) * np.bincount(local.labels, minlength=L)[:, None]
    return S


def _checked(similarity: Callable, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    S = np.asarray(similarity(a, b), dtype=np.float64)
    if S.shape != (a.size, b.size):
        raise ValueError(f"`similarity` must return a ({a.size}, {b.size}) matrix for those points, got {S.shape}.")
    if not np.isfinite(S).all():
        i, j = np.argwhere(~np.isfinite(S))[0]
        raise ValueError(f"`similarity` must be finite, got {S[i, j]} between points {a[i]} and {b[j]}.")
    return S


def _combine(
    local: _Local,
    final: AffinityPropagationResult,
    preference: float,
    raw: np.ndarray,
    similarity: Callable,
    reassign: bool,
) -> TwoStageResult:
    """Final exemplars and labels: each local cluster joins its stage-2 exemplar; with `reassign`, as dense affinity
    propagation ends, each final exemplar moves to the local exemplar of its cluster with the highest total
    similarity from the cluster's members, then each point joins its most similar final exemplar."""
    picked = final.cluster_centers_indices
    labels = final.labels[local.labels]
    if reassign and picked.size:
        for c in range(picked.size):
            inside = np.flatnonzero(final.labels == c)
            picked[c] = inside[np.argmax(raw[np.ix_(inside, inside)].sum(axis=0))]
        centers = local.exemplars[picked]
        n = labels.size
        step = max(1, (1 << 22) // centers.size)
        for p0 in range(0, n, step):
            block = np.arange(p0, min(p0 + step, n))
            labels[block] = _checked(similarity, block, centers).argmax(axis=1)
        labels[centers] = np.arange(centers.size)
        order = np.argsort(centers, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        picked, labels = picked[order], rank[labels]
    return TwoStageResult(
        local.exemplars[picked],
        labels.astype(np.intp),
        final.n_iter,
        bool(final.converged and local.result.converged),
        local.exemplars,
        local.labels.astype(np.intp),
        local.result.n_iter,
        bool(local.result.converged),
        float(preference),
    )


def _check_similarity(similarity: Any) -> None:
    if not callable(similarity):
        raise TypeError(f"`similarity` must be a callable mapping point indices to a matrix, got {type(similarity)}.")


def two_stage_affinity_propagation(
    rows: Any,
    cols: Any,
    sims: Any,
    n: int,
    similarity: Callable[[np.ndarray, np.ndarray], Any],
    *,
    preference: float | None = None,
    local_preference: float | None = None,
    symmetrize: bool = True,
    aggregate: bool = True,
    reassign: bool = True,
    damping: float = LOCAL_DAMPING,
    max_iter: int = MAX_ITER,
    convergence_iter: int = CONVERGENCE_ITER,
    mode: str = "exact",
    random_state: Any = 0,
) -> TwoStageResult:
    """Cluster a large similarity graph: sparse affinity propagation for local exemplars, then dense affinity
    propagation over the local exemplars.

    Args:
        rows, cols, sims, n: The graph, e.g. a kNN graph (see `hf_nuggets.algorithms.graph.check_graph`): no isolated
            point, no repeated edge, finite similarities.
        similarity (`Callable[[np.ndarray, np.ndarray], np.ndarray]`): Given two index arrays `a` and `b`, the
            `(len(a), len(b))` similarities of those points, on the scale of `sims` (e.g.
            `lambda a, b: X[a] @ X[b].T` for cosine on unit vectors).
        preference (`float`, *optional*): Stage-2 preference; with `aggregate`, on the scale of dense affinity
            propagation's preference (the same objective). Defaults to the median of the stage-2 similarities. Use
            `find_preference_for_k_two_stage` to ask for a number of exemplars.
        local_preference (`float`, *optional*): Stage-1 preference; defaults to the smallest edge similarity, which
            gives the fewest local exemplars the graph allows.
        symmetrize (`bool`, *optional*, defaults to `True`): Run stage 1 on the union of the graph and its reverse.
        aggregate (`bool`, *optional*, defaults to `True`): Stage-2 similarity of a local cluster to a local
            exemplar is the sum over the cluster's members (dense AP's objective when the cluster moves whole; `n x L`
            similarities); `False`: the number of members times the similarity of the two exemplars (`L x L`).
        reassign (`bool`, *optional*, defaults to `True`): End as dense affinity propagation does: move each final
            exemplar to the local exemplar of its cluster with the highest total similarity from the cluster, then
            let every point join its most similar final exemplar (`n x k` similarities). `False`: every point keeps
            the final exemplar of its local exemplar.
        damping (`float`, *optional*, defaults to `0.9`): Damping of both stages.
        max_iter (`int`, *optional*, defaults to `1000`): Iteration cap of each stage.
        convergence_iter (`int`, *optional*, defaults to `100`): Iterations without change that mean convergence.
        mode (`str`, *optional*, defaults to `"exact"`): Stage-2 mode of `affinity_propagation`.
        random_state (`int` or `None`, *optional*, defaults to `0`): Seed of the tie-breaking noise of both stages.

    Returns:
        `TwoStageResult`: final exemplars and labels, with the local stage's exemplars and labels.

    Example:

    ```python
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> rows, cols = np.array([0, 1, 1, 2, 3, 4, 4, 5]), np.array([1, 0, 2, 1, 4, 3, 5, 4])
    >>> sims = -((X[rows] - X[cols]) ** 2).sum(axis=1)
    >>> neg_sq = lambda a, b: -((X[a][:, None] - X[b][None]) ** 2).sum(axis=-1)
    >>> result = two_stage_affinity_propagation(rows, cols, sims, 6, neg_sq)
    >>> result.labels.tolist()
    [0, 0, 0, 1, 1, 1]
    ```
    """
    _check_similarity(similarity)
    params = {"damping": damping, "max_iter": max_iter, "convergence_iter": convergence_iter}
    local = _local_stage(rows, cols, sims, n, local_preference, symmetrize, {**params, "random_state": random_state})
    raw = _exemplar_matrix(similarity, local, aggregate)
    S = raw - raw.diagonal()[:, None]
    if preference is None:
        preference = float(np.median(S))
    if local.exemplars.size == 1:
        final = AffinityPropagationResult(np.array([0]), np.array([0]), 0, True)
    else:
        final = affinity_propagation(S, preference=preference, mode=mode, random_state=random_state, **params)
    return _combine(local, final, preference, raw, similarity, reassign)


def find_preference_for_k_two_stage(
    rows: Any,
    cols: Any,
    sims: Any,
    n: int,
    similarity: Callable[[np.ndarray, np.ndarray], Any],
    k: int,
    *,
    local_preference: float | None = None,
    symmetrize: bool = True,
    aggregate: bool = True,
    reassign: bool = True,
    damping: float = LOCAL_DAMPING,
    max_iter: int = MAX_ITER,
    convergence_iter: int = CONVERGENCE_ITER,
    mode: str = "exact",
    random_state: Any = 0,
    max_trials: int = 40,
) -> TwoStageResult:
    """Two-stage affinity propagation with `k` exemplars: stage 1 once, then a bisection over the stage-2
    preference (`find_preference_for_k` on the stage-2 similarities of the local clusters).

    Args:
        rows, cols, sims, n, similarity: As for `two_stage_affinity_propagation`.
        k (`int`): Wanted number of exemplars, at most the number of local exemplars stage 1 finds.
        local_preference, symmetrize, aggregate, reassign, damping, max_iter, convergence_iter, mode,
            random_state: As for `two_stage_affinity_propagation`.
        max_trials (`int`, *optional*, defaults to `40`): Maximum number of stage-2 runs.

    Returns:
        `TwoStageResult`: the run whose number of exemplars is closest to `k` (exactly `k` when the bisection finds
        it), with its `preference`.

    Raises:
        ValueError: `k` is not in `[1, n]`, or stage 1 found fewer than `k` local exemplars (raise
            `local_preference`); the message gives the numbers.
    """
    _check_similarity(similarity)
    n = check_int("n", n)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"`k` must be in [1, {n}] (the number of points), got {k!r}.")
    params = {"damping": damping, "max_iter": max_iter, "convergence_iter": convergence_iter}
    local = _local_stage(rows, cols, sims, n, local_preference, symmetrize, {**params, "random_state": random_state})
    L = local.exemplars.size
    if k > L:
        raise TooFewLocalExemplarsError(
            f"`k` ({k}) is more than the {L} local exemplars stage 1 found on {n} points; "
            f"raise `local_preference` (it was {local_preference if local_preference is not None else 'the minimum'})."
        )
    raw = _exemplar_matrix(similarity, local, aggregate)
    if L == 1:
        one = AffinityPropagationResult(np.array([0]), np.array([0]), 0, True)
        return _combine(local, one, 0.0, raw, similarity, reassign)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = find_preference_for_k(
            raw - raw.diagonal()[:, None], k, mode=mode, random_state=random_state, max_trials=max_trials, **params
        )
    return _combine(local, found.result, found.preference, raw, similarity, reassign)
