"""Greedy k-center (farthest-point) selection: same sequence as a brute-force reference, seeds, ties, errors."""

from __future__ import annotations

import numpy as np
import pytest

from hf_nuggets.algorithms.kcenter import kcenter_greedy


def reference_kcenter(X, k, seeds=(), metric="cosine"):
    """O(N^2) float64 farthest-point traversal from the full distance matrix; returns (indices, radius)."""
    X = np.asarray(X, dtype=np.float64)
    if metric == "cosine":
        Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        D = 1.0 - Xn @ Xn.T
    else:
        sq = (X**2).sum(axis=1)
        D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * X @ X.T, 0.0))
    chosen = list(seeds) or [0]
    min_d = D[chosen].min(axis=0)
    while len(chosen) < k:
        masked = min_d.copy()
        masked[chosen] = -1.0
        c = int(np.argmax(masked))
        chosen.append(c)
        min_d = np.minimum(min_d, D[c])
    min_d[chosen] = 0.0
    return np.array(chosen), float(min_d.max())


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(0)
    centers = 4.0 * rng.standard_normal((12, 16))
    return (centers[rng.integers(0, 12, 400)] + rng.standard_normal((400, 16))).astype(np.float32)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_matches_reference_without_seeds(clustered, metric):
    """Without seeds the selection starts at index 0 and follows the brute-force reference step by step."""
    ours = kcenter_greedy(clustered, 60, metric=metric)
    ref, _ = reference_kcenter(clustered, 60, metric=metric)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_matches_reference_with_seeds(clustered, metric):
    """Seeds come first, in the given order, and the rest follows the brute-force reference."""
    seeds = [17, 3, 250]
    ours = kcenter_greedy(clustered, 40, seeds=seeds, metric=metric)
    ref, _ = reference_kcenter(clustered, 40, seeds=seeds, metric=metric)
    assert ours[:3].tolist() == seeds
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_radius_matches_reference(clustered, metric):
    """The covering radius is the largest distance from a point to its nearest selected point."""
    _, radius = kcenter_greedy(clustered, 25, metric=metric, return_radius=True)
    _, ref = reference_kcenter(clustered, 25, metric=metric)
    assert radius == pytest.approx(ref, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_matches_reference_over_many_batches(metric):
    """A long run (several precomputed batches of centers, 70 seeds) still follows the reference exactly."""
    rng = np.random.default_rng(5)
    X = (3.0 * rng.standard_normal((30, 24)))[rng.integers(0, 30, 1500)] + rng.standard_normal((1500, 24))
    seeds = rng.choice(len(X), 70, replace=False).tolist()
    for kw in ({}, {"seeds": seeds}):
        ours = kcenter_greedy(X, 200, metric=metric, **kw)
        np.testing.assert_array_equal(ours, reference_kcenter(X, 200, metric=metric, **kw)[0])


def test_matches_reference_on_unclustered_data():
    """Gaussian noise (where the pruning bound rarely helps) also gives the reference sequence."""
    X = np.random.default_rng(1).standard_normal((300, 8))
    np.testing.assert_array_equal(
        kcenter_greedy(X, 50, metric="euclidean"), reference_kcenter(X, 50, metric="euclidean")[0]
    )


def test_small_chunk_size_gives_same_result(clustered):
    """Processing rows in small blocks changes nothing."""
    np.testing.assert_array_equal(kcenter_greedy(clustered, 30, chunk_size=7), kcenter_greedy(clustered, 30))


def test_radius_within_twice_optimal_on_separated_clusters():
    """With k equal to the number of tight, far-apart clusters, every cluster gets exactly one center."""
    rng = np.random.default_rng(2)
    centers = 100.0 * rng.standard_normal((5, 3))
    labels = np.repeat(np.arange(5), 20)
    X = centers[labels] + 0.1 * rng.standard_normal((100, 3))
    idx, radius = kcenter_greedy(X, 5, metric="euclidean", return_radius=True)
    assert sorted(labels[idx].tolist()) == [0, 1, 2, 3, 4]
    assert radius < 1.0


def test_duplicates_first_occurrence_then_lowest_indices():
    """Among duplicate points the lowest index is chosen; once all points are covered, lowest indices follow."""
    X = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 0.0], [5.0, 0.0], [0.0, 0.0]])
    assert kcenter_greedy(X, 4, metric="euclidean").tolist() == [0, 1, 2, 3]


def test_k_equal_to_n_selects_everything_with_zero_radius():
    """k = N selects every point once, and the covering radius is 0."""
    X = np.random.default_rng(3).standard_normal((20, 4))
    idx, radius = kcenter_greedy(X, 20, return_radius=True)
    assert sorted(idx.tolist()) == list(range(20)) and radius == 0.0


def test_returns_int64_indices_without_radius(clustered):
    """The default return value is the int64 index array alone."""
    idx = kcenter_greedy(clustered, 5)
    assert isinstance(idx, np.ndarray) and idx.dtype == np.int64 and idx.shape == (5,)


def test_does_not_modify_input(clustered):
    """The input array is left untouched."""
    X = clustered.copy()
    kcenter_greedy(X, 10, metric="euclidean")
    np.testing.assert_array_equal(X, clustered)


def test_k_larger_than_n_raises():
    """k above the number of points raises, naming `k`."""
    with pytest.raises(ValueError, match=r"`k` must be an integer in \[1, n_points=3\], got 4"):
        kcenter_greedy(np.eye(3), 4)


def test_k_below_one_raises():
    """k = 0 raises, naming `k`."""
    with pytest.raises(ValueError, match=r"`k` .* got 0"):
        kcenter_greedy(np.eye(3), 0)


def test_seed_out_of_range_raises():
    """A seed outside [0, n) raises, naming `seeds` and the value."""
    with pytest.raises(ValueError, match=r"`seeds` must be indices in \[0, 3\), got 5"):
        kcenter_greedy(np.eye(3), 2, seeds=[0, 5])


def test_negative_seed_raises():
    """A negative seed raises, naming `seeds`."""
    with pytest.raises(ValueError, match=r"`seeds` .* got -1"):
        kcenter_greedy(np.eye(3), 2, seeds=[-1])


def test_repeated_seed_raises():
    """A seed given twice raises, naming `seeds`."""
    with pytest.raises(ValueError, match=r"`seeds` must not repeat an index"):
        kcenter_greedy(np.eye(3), 3, seeds=[1, 1])


def test_more_seeds_than_k_raises():
    """More seeds than k raises, naming both."""
    with pytest.raises(ValueError, match=r"`seeds` holds 3 indices, more than `k`=2"):
        kcenter_greedy(np.eye(3), 2, seeds=[0, 1, 2])


def test_unknown_metric_raises():
    """An unknown metric raises, naming `metric`."""
    with pytest.raises(ValueError, match=r"`metric` must be .* got 'manhattan'"):
        kcenter_greedy(np.eye(3), 2, metric="manhattan")


def test_nan_raises():
    """A NaN in the input raises, naming `X` and the row."""
    X = np.eye(3)
    X[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"`X` must be finite, .* row 1"):
        kcenter_greedy(X, 2)


def test_empty_raises():
    """An empty input raises, naming `X`."""
    with pytest.raises(ValueError, match=r"`X` must not be empty"):
        kcenter_greedy(np.empty((0, 4)), 1)


def test_wrong_ndim_raises():
    """A 1-D input raises, naming `X` and the shape."""
    with pytest.raises(ValueError, match=r"`X` must be a 2-D array .* got shape \(4,\)"):
        kcenter_greedy(np.ones(4), 1)


def test_zero_row_with_cosine_raises():
    """An all-zero row has no direction: it raises with metric='cosine', naming `X` and the row."""
    X = np.array([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match=r"`X` must not hold all-zero rows .* row 1"):
        kcenter_greedy(X, 1)


def test_zero_row_allowed_with_euclidean():
    """The zero vector is an ordinary point under the Euclidean metric."""
    X = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    assert kcenter_greedy(X, 2, metric="euclidean").tolist() == [0, 1]


def test_bad_chunk_size_raises():
    """chunk_size below 1 raises, naming `chunk_size`."""
    with pytest.raises(ValueError, match=r"`chunk_size` must be an integer >= 1, got 0"):
        kcenter_greedy(np.eye(3), 2, chunk_size=0)
