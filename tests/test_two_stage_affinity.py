"""Tests of hf_nuggets.algorithms.two_stage_affinity: known blobs, agreement with dense AP, impossible k."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hf_nuggets.algorithms.affinity import find_preference_for_k, sparse_affinity_propagation
from hf_nuggets.algorithms.two_stage_affinity import (
    find_preference_for_k_two_stage,
    two_stage_affinity_propagation,
)


def blobs(n: int, k: int, seed: int, dim: int = 8, spread: float = 1.0, scale: float = 6.0) -> tuple:
    """Points around `k` random centers, and the center of each point."""
    rng = np.random.RandomState(seed)
    centers = rng.randn(k, dim) * scale
    truth = rng.randint(k, size=n)
    return centers[truth] + rng.randn(n, dim) * spread, truth


def neg_sq(X: np.ndarray):
    """Similarity callable: minus squared distances between the points `a` and the points `b`."""

    def similarity(a, b):
        P, Q = X[a], X[b]
        return -np.maximum((P**2).sum(axis=1)[:, None] + (Q**2).sum(axis=1)[None, :] - 2 * P @ Q.T, 0)

    return similarity


def knn_edges(X: np.ndarray, k: int) -> tuple:
    """Exact k-nearest-neighbour graph (self excluded), similarity minus squared distance."""
    S = neg_sq(X)(np.arange(len(X)), np.arange(len(X)))
    np.fill_diagonal(S, -np.inf)
    cols = np.argsort(-S, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(len(X)), k)
    return rows, cols.ravel(), S[rows, cols.ravel()], len(X)


def ari(a, b) -> float:
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(a, b)


def test_two_stages_recover_well_separated_blobs():
    """On well-separated blobs with a 15-NN graph, asking for as many exemplars as blobs recovers the blobs."""
    pytest.importorskip("sklearn")
    X, truth = blobs(1500, 8, 0, spread=1.0, scale=8.0)
    result = find_preference_for_k_two_stage(*knn_edges(X, 15), neg_sq(X), 8)
    assert result.cluster_centers_indices.size == 8 and result.converged
    assert ari(truth, result.labels) >= 0.9


def test_sparse_alone_gives_many_local_exemplars():
    """The reason for two stages: on a kNN graph sparse AP alone finds far more exemplars than blobs."""
    X, _ = blobs(1500, 8, 0, spread=1.0, scale=8.0)
    rows, cols, sims, n = knn_edges(X, 15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = sparse_affinity_propagation(rows, cols, sims, n, preference=sims.min(), damping=0.9, max_iter=1000)
    assert alone.cluster_centers_indices.size > 3 * 8


@pytest.mark.parametrize("seed", [1, 3])
def test_two_stages_agree_with_dense_affinity_propagation(seed):
    """On overlapping blobs small enough for both, two stages and dense AP (scikit-learn, same k) reach ARI >= 0.8."""
    k = 6
    pytest.importorskip("sklearn")
    from sklearn.cluster import AffinityPropagation

    X, _ = blobs(800, 6, seed, spread=1.5, scale=5.0)
    S = neg_sq(X)(np.arange(len(X)), np.arange(len(X)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pref = find_preference_for_k(S, k, damping=0.9, max_iter=1000).preference
        dense = AffinityPropagation(affinity="precomputed", preference=pref, damping=0.9, max_iter=1000)
        dense.set_params(random_state=0).fit(S)
    assert len(dense.cluster_centers_indices_) == k
    two = find_preference_for_k_two_stage(*knn_edges(X, 20), neg_sq(X), k)
    assert two.cluster_centers_indices.size == k
    assert ari(dense.labels_, two.labels) >= 0.8


def test_points_take_the_final_exemplar_of_their_local_exemplar():
    """Each point's final cluster is that of its local exemplar; final exemplars are local exemplars."""
    X, _ = blobs(600, 5, 3)
    result = find_preference_for_k_two_stage(*knn_edges(X, 10), neg_sq(X), 5)
    assert np.isin(result.cluster_centers_indices, result.local_exemplars).all()
    assert np.array_equal(result.labels, result.labels[result.local_exemplars][result.local_labels])
    assert np.array_equal(result.labels[result.cluster_centers_indices], np.arange(5))


def test_with_every_point_its_own_local_exemplar_stage_two_is_dense_affinity_propagation():
    """When stage 1 keeps every point (a preference above every similarity), stage 2 runs on the dense matrix
    itself: labels and exemplars equal scikit-learn's for the same preference."""
    pytest.importorskip("sklearn")
    from sklearn.cluster import AffinityPropagation

    X, _ = blobs(120, 4, 11, spread=1.5, scale=4.0)
    sim = neg_sq(X)
    rows, cols, sims, n = knn_edges(X, 8)
    ours = two_stage_affinity_propagation(
        rows, cols, sims, n, sim, preference=-60.0, local_preference=1.0, reassign=False, convergence_iter=15
    )
    assert ours.local_exemplars.size == n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = AffinityPropagation(affinity="precomputed", preference=-60.0, damping=0.9, random_state=0)
        sk.fit(sim(np.arange(n), np.arange(n)))
    assert np.array_equal(ours.labels, sk.labels_)
    assert np.array_equal(ours.cluster_centers_indices, sk.cluster_centers_indices_)


def test_k_more_than_points_is_refused():
    """A k above the number of points fails with both numbers."""
    X, _ = blobs(30, 2, 6)
    with pytest.raises(ValueError, match=r"`k` must be in \[1, 30\] \(the number of points\), got 31"):
        find_preference_for_k_two_stage(*knn_edges(X, 5), neg_sq(X), 31)


def test_k_more_than_local_exemplars_is_refused():
    """A k above what stage 1 gives fails with k, the local exemplars and the points."""
    X, _ = blobs(200, 2, 7, spread=0.3, scale=10)
    with pytest.raises(ValueError, match=r"`k` \(150\) is more than the \d+ local exemplars stage 1 found on 200"):
        find_preference_for_k_two_stage(*knn_edges(X, 10), neg_sq(X), 150)


def test_disconnected_graph_with_more_components_than_k_is_refused_by_the_sparse_search():
    """Sparse AP alone needs an exemplar per component: a smaller k fails with the numbers."""
    rows, cols, sims = [0, 1, 2, 3, 4, 5], [1, 0, 3, 2, 5, 4], [-1.0] * 6
    with pytest.raises(ValueError, match=r"`k` \(2\) is fewer than the 3 connected components of the graph on 6"):
        find_preference_for_k((np.array(rows), np.array(cols), np.array(sims), 6), 2)


def test_two_stages_join_components():
    """Stage 2 compares local exemplars directly, so components of the graph can share a final exemplar."""
    rng = np.random.RandomState(12)
    X = np.concatenate([rng.randn(15, 2) * 0.3, rng.randn(15, 2) * 0.3 + [3.0, 0.0], rng.randn(15, 2) * 0.3 + 40.0])
    rows, cols, sims, n = knn_edges(X, 4)
    same_group = rows // 15 == cols // 15
    rows, cols, sims = rows[same_group], cols[same_group], sims[same_group]  # three components
    with pytest.raises(ValueError, match="fewer than the 3 connected components"):
        find_preference_for_k((rows, cols, sims, n), 2)
    result = find_preference_for_k_two_stage(rows, cols, sims, n, neg_sq(X), 2)
    assert result.cluster_centers_indices.size == 2
    assert ari(np.repeat([0, 0, 1], 15), result.labels) == 1.0


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda r, c, s: (r, c, np.where(np.arange(s.size) == 7, np.nan, s)), r"`sims` must be finite, got nan at"),
        (lambda r, c, s: (np.append(r, r[0]), np.append(c, c[0]), np.append(s, s[0])), "must not repeat an edge"),
    ],
)
def test_bad_graphs_are_named(edit, match):
    """Non-finite weights and repeated edges are refused with where they are."""
    X, _ = blobs(40, 2, 8)
    rows, cols, sims, n = knn_edges(X, 3)
    with pytest.raises(ValueError, match=match):
        two_stage_affinity_propagation(*edit(rows, cols, sims), n, neg_sq(X))


def test_isolated_point_is_refused():
    """A point with no edge at all is named."""
    X, _ = blobs(10, 2, 9)
    rows, cols, sims, _ = knn_edges(X, 3)
    with pytest.raises(ValueError, match=r"1 isolated point .*e\.g\. point 10\."):
        two_stage_affinity_propagation(rows, cols, sims, 11, neg_sq(np.vstack([X, X[:1]])))


def test_bad_similarity_callable():
    """A similarity callable returning the wrong shape is named."""
    X, _ = blobs(40, 2, 10)
    with pytest.raises(ValueError, match=r"`similarity` must return a \(\d+, \d+\) matrix for those points"):
        two_stage_affinity_propagation(*knn_edges(X, 5), lambda a, b: np.zeros((2, 2)))
    with pytest.raises(TypeError, match="`similarity` must be a callable"):
        two_stage_affinity_propagation(*knn_edges(X, 5), None)
