"""Affinity-propagation exemplars for task-set refinement: dense on small pools, two stages over an LSH kNN graph on
large ones."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Pools of more rows than this (after the quality picks) are clustered in two stages over a kNN graph; smaller ones
#: by dense affinity propagation over all their cosine similarities. The rule: dense (no graph approximation) while
#: it costs at most twice the two stages. Measured by `benchmarks/algorithms_refine.py` (80 exemplars, MiniLM
#: embeddings of generated rows, shared 2-core CPU): 250 rows, dense 2.1 s vs two stages 1.5 s (1.4x); 500 rows,
#: 18.9 s vs 1.6 s (11.6x).
SPARSE_ABOVE = 250
#: Neighbours per point of the kNN graph (SimHash LSH, exact cosine re-ranking).
N_NEIGHBORS = 20
#: Stage-1 preferences tried in turn, as quantiles of the edge similarities, until stage 1 gives at least `k` local
#: exemplars: the smallest edge first (fewest local exemplars), then higher ones for pools only a few times `k`.
LOCAL_PREFERENCE_QUANTILES = (0.0, 0.5, 0.9, 1.0)


def _fill_lonely(vectors: np.ndarray, rows: np.ndarray, cols: np.ndarray, sims: np.ndarray, n_neighbors: int):
    """Exact neighbours for the points to which LSH gave none (so the graph has no isolated point)."""
    lonely = np.flatnonzero(np.bincount(rows, minlength=len(vectors)) == 0)
    if not lonely.size:
        return rows, cols, sims, 0
    S = vectors[lonely] @ vectors.T
    S[np.arange(lonely.size), lonely] = -np.inf
    kk = min(n_neighbors, len(vectors) - 1)
    top = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
    rows = np.concatenate((rows, np.repeat(lonely, kk)))
    cols = np.concatenate((cols, top.ravel()))
    sims = np.concatenate((sims, np.take_along_axis(S, top, axis=1).ravel().astype(sims.dtype)))
    return rows, cols, sims, int(lonely.size)


def affinity_exemplars(
    vectors: Any, k: int, *, seed: int = 0, sparse_above: int = SPARSE_ABOVE, n_neighbors: int = N_NEIGHBORS
) -> tuple[np.ndarray, np.ndarray, dict]:
    """`k` exemplars of unit vectors by affinity propagation on cosine similarity, and each vector's cluster.

    Up to `sparse_above` vectors: dense affinity propagation (exact mode) on all cosine similarities, the preference
    found by bisection (`find_preference_for_k`), with Frey & Dueck's defaults (damping 0.9, 100 stable iterations,
    at most 1000) as in the two stages. Above: the kNN graph of the vectors by SimHash LSH
    (`lsh.knn_graph`, exact similarities; points it left without a neighbour get their exact neighbours), then
    two-stage affinity propagation with `k` exemplars (`find_preference_for_k_two_stage`).

    Args:
        vectors (`np.ndarray` of shape `(n, dim)`): Unit-norm embeddings.
        k (`int`): Exemplars wanted, in `[1, n]`.
        seed (`int`, *optional*, defaults to `0`): Seed of the hashing and of affinity propagation's noise.
        sparse_above (`int`, *optional*, defaults to `SPARSE_ABOVE`): Largest `n` clustered densely.
        n_neighbors (`int`, *optional*, defaults to `N_NEIGHBORS`): Neighbours per point of the kNN graph.

    Returns:
        `tuple[np.ndarray, np.ndarray, dict]`: exemplar indices (sorted; fewer than `k` only when no preference
        gives exactly `k`), the cluster of each vector (an index into the exemplars), and how it ran: `path`
        (`"dense"` or `"two-stage"`), `converged`, and for the two stages `n_neighbors`, `edges`, `local_exemplars`,
        `local_converged`, `local_n_iter`, `filled_by_exact_search` (points LSH gave no neighbour).

    Example:

    ```python
    >>> X = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.14, 0.99]])
    >>> exemplars, labels, info = affinity_exemplars(X / np.linalg.norm(X, axis=1, keepdims=True), 2)
    >>> labels.tolist(), info["path"]
    ([0, 0, 1, 1], 'dense')
    ```
    """
    V = np.asarray(vectors, dtype=np.float32)
    n = len(V)
    if n <= sparse_above:
        from ..algorithms.affinity import find_preference_for_k
        from ..algorithms.two_stage_affinity import CONVERGENCE_ITER, LOCAL_DAMPING, MAX_ITER

        params = {"damping": LOCAL_DAMPING, "max_iter": MAX_ITER, "convergence_iter": CONVERGENCE_ITER}
        search = find_preference_for_k((V @ V.T).astype(np.float64), k, random_state=seed, **params)
        res = search.result
        return res.cluster_centers_indices, res.labels, {"path": "dense", "converged": bool(res.converged)}
    from ..algorithms.lsh import knn_graph
    from ..algorithms.two_stage_affinity import TooFewLocalExemplarsError, find_preference_for_k_two_stage

    nn = min(n_neighbors, n - 1)
    rows, cols, sims = knn_graph(V, n_neighbors=nn, seed=seed)
    rows, cols, sims, filled = _fill_lonely(V, rows, cols, sims, nn)
    V64 = V.astype(np.float64)
    for quantile in LOCAL_PREFERENCE_QUANTILES:
        try:
            res = find_preference_for_k_two_stage(
                rows, cols, sims, n, lambda a, b: V64[a] @ V64[b].T, k, random_state=seed, mode="exact",
                local_preference=float(np.quantile(sims, quantile)),
            )  # fmt: skip
            break
        except TooFewLocalExemplarsError:
            if quantile == LOCAL_PREFERENCE_QUANTILES[-1]:
                raise
    info = {
        "path": "two-stage",
        "converged": res.converged,
        "n_neighbors": nn,
        "edges": int(sims.size),
        "local_preference_quantile": quantile,
        "local_exemplars": int(res.local_exemplars.size),
        "local_converged": res.local_converged,
        "local_n_iter": res.local_n_iter,
        "filled_by_exact_search": filled,
    }
    logger.info("Two-stage affinity propagation: %s", info)
    return res.cluster_centers_indices, res.labels, info
