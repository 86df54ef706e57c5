"""Tests of hf_nuggets.taskset.exemplars: the dense and two-stage paths of affinity exemplars agree."""

from __future__ import annotations

import numpy as np
import pytest

from hf_nuggets.taskset.exemplars import affinity_exemplars


def clustered_unit_vectors(n: int, k: int, seed: int, dim: int = 32, spread: float = 0.35) -> tuple:
    """Unit vectors around `k` random directions, and the direction of each."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    truth = rng.integers(k, size=n)
    X = centers[truth] + spread * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), truth


def test_two_stage_path_agrees_with_dense_path():
    """The LSH-graph two-stage path and the dense path give k exemplars and nearly the same clusters (ARI >= 0.8)."""
    pytest.importorskip("sklearn")
    from sklearn.metrics import adjusted_rand_score

    X, truth = clustered_unit_vectors(700, 12, 0)
    dense_centers, dense_labels, dense_info = affinity_exemplars(X, 12, sparse_above=10_000)
    two_centers, two_labels, two_info = affinity_exemplars(X, 12, sparse_above=0)
    assert dense_info["path"] == "dense" and two_info["path"] == "two-stage"
    assert dense_centers.size == two_centers.size == 12
    assert adjusted_rand_score(dense_labels, two_labels) >= 0.8
    assert adjusted_rand_score(truth, two_labels) >= 0.9
    assert two_info["local_converged"] and two_info["edges"] >= 700 * 20
    assert two_info["local_exemplars"] > 12


def test_points_lsh_leaves_alone_get_their_exact_neighbours():
    """A point to which LSH gave no neighbour gets its exact nearest neighbours, so the graph has no isolated point."""
    from hf_nuggets.taskset.exemplars import _fill_lonely

    X, _ = clustered_unit_vectors(50, 3, 1, dim=8)
    rows, cols = np.repeat(np.arange(49), 2), (np.arange(98) + 1) % 49  # point 49 has no edge
    sims = np.einsum("ij,ij->i", X[rows], X[cols])
    rows, cols, sims, filled = _fill_lonely(X, rows, cols, sims, 3)
    expected = np.argsort(-(X[:49] @ X[49]))[:3]
    assert filled == 1 and sorted(cols[rows == 49]) == sorted(expected)
    assert np.allclose(sims[rows == 49], X[cols[rows == 49]] @ X[49])
