"""Tests of hf_nuggets.algorithms.affinity: parity with scikit-learn, fast and sparse modes, errors, k search."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hf_nuggets.algorithms.affinity import (
    AffinityPropagation,
    AffinityPropagationResult,
    ConvergenceWarning,
    affinity_propagation,
    find_preference_for_k,
    sparse_affinity_propagation,
)


def blobs(n: int, k: int, seed: int, dim: int = 4, spread: float = 1.0, scale: float = 6.0) -> tuple:
    """Points around `k` random centers, and the center of each point."""
    rng = np.random.RandomState(seed)
    centers = rng.randn(k, dim) * scale
    truth = rng.randint(k, size=n)
    return centers[truth] + rng.randn(n, dim) * spread, truth


def neg_sq_dist(X: np.ndarray) -> np.ndarray:
    return -((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=-1)


def full_graph(S: np.ndarray) -> tuple:
    rows, cols = np.nonzero(np.ones(S.shape, dtype=bool))
    return rows, cols, S[rows, cols], S.shape[0]


def sklearn_fit(S: np.ndarray, **kwargs):
    from sklearn.cluster import AffinityPropagation as SkAffinityPropagation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SkAffinityPropagation(affinity="precomputed", **kwargs).fit(S)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def same(a: AffinityPropagationResult, b: AffinityPropagationResult) -> bool:
    return (
        np.array_equal(a.labels, b.labels)
        and np.array_equal(a.cluster_centers_indices, b.cluster_centers_indices)
        and a.n_iter == b.n_iter
    )


# (n, kind, damping, max_iter, convergence_iter, preference): blobs/noise, converged and non-converged runs
PARITY_CASES = [
    (5, "blobs", 0.5, 200, 15, None),
    (6, "noise", 0.5, 200, 15, None),
    (12, "blobs", 0.7, 200, 15, None),
    (20, "noise", 0.9, 200, 15, None),
    (30, "blobs", 0.5, 200, 5, None),
    (40, "noise", 0.5, 10, 3, None),
    (50, "blobs", 0.9, 200, 15, "min"),
    (60, "blobs", 0.5, 17, 5, None),
    (75, "noise", 0.6, 200, 10, None),
    (80, "blobs", 0.95, 25, 15, None),
    (100, "blobs", 0.5, 200, 15, None),
    (100, "noise", 0.8, 200, 15, "array"),
    (120, "blobs", 0.7, 200, 15, "min"),
    (150, "noise", 0.5, 4, 2, None),
    (160, "blobs", 0.9, 30, 5, None),
    (200, "blobs", 0.5, 200, 15, None),
    (200, "noise", 0.9, 17, 5, None),
    (250, "blobs", 0.9, 200, 15, "array"),
    (300, "blobs", 0.75, 100, 15, None),
    (400, "noise", 0.9, 200, 15, "min"),
    (500, "blobs", 0.9, 200, 15, None),
    (1000, "blobs", 0.9, 200, 15, None),
]


@pytest.mark.parametrize(("seed", "case"), list(enumerate(PARITY_CASES)))
def test_exact_matches_sklearn(seed, case):
    """Exact mode gives scikit-learn's labels, exemplars and iteration count."""
    pytest.importorskip("sklearn")
    n, kind, damping, max_iter, convergence_iter, pref = case
    rng = np.random.RandomState(seed)
    X = blobs(n, 1 + seed % 6, seed)[0] if kind == "blobs" else rng.rand(n, 3)
    S = neg_sq_dist(X)
    preference = {None: None, "min": S.min(), "array": np.median(S) + rng.rand(n)}[pref]
    kwargs = dict(damping=damping, max_iter=max_iter, convergence_iter=convergence_iter, preference=preference)
    sk = sklearn_fit(S, random_state=seed, **kwargs)
    ours = quiet(AffinityPropagation(random_state=seed, **kwargs).fit, S)
    assert np.array_equal(ours.labels_, sk.labels_)
    assert np.array_equal(ours.cluster_centers_indices_, np.asarray(sk.cluster_centers_indices_))
    assert ours.n_iter_ == sk.n_iter_


def test_exact_matches_sklearn_non_symmetric():
    """Exact mode matches scikit-learn on a non-symmetric similarity matrix."""
    pytest.importorskip("sklearn")
    rng = np.random.RandomState(3)
    S = neg_sq_dist(blobs(90, 4, 3)[0]) + rng.rand(90, 90) * 5
    sk = sklearn_fit(S, random_state=3)
    ours = quiet(affinity_propagation, S, random_state=3)
    assert np.array_equal(ours.labels, sk.labels_) and ours.n_iter == sk.n_iter_


def test_exact_matches_sklearn_float32_input():
    """Float32 input is computed in float32, as scikit-learn does."""
    pytest.importorskip("sklearn")
    S = neg_sq_dist(blobs(70, 3, 4)[0]).astype(np.float32)
    sk = sklearn_fit(S, random_state=4, damping=0.8)
    ours = quiet(affinity_propagation, S, random_state=4, damping=0.8)
    assert np.array_equal(ours.labels, sk.labels_) and ours.n_iter == sk.n_iter_


@pytest.mark.parametrize("preference", [10.0, -10.0])
def test_equal_similarities_match_sklearn(preference):
    """All-equal similarities give scikit-learn's arbitrary answer (one cluster, or one per point)."""
    pytest.importorskip("sklearn")
    S = np.zeros((6, 6))
    sk = sklearn_fit(S, preference=preference)
    with pytest.warns(UserWarning, match="mutually equal similarities"):
        ours = affinity_propagation(S, preference=preference)
    assert np.array_equal(ours.labels, sk.labels_) and ours.n_iter == 0
    assert np.array_equal(ours.cluster_centers_indices, sk.cluster_centers_indices_)


def test_single_point():
    """A single point is its own cluster."""
    with pytest.warns(UserWarning):
        result = affinity_propagation([[1.0]])
    assert result.labels.tolist() == [0] and result.cluster_centers_indices.tolist() == [0]


def test_input_not_modified():
    """The caller's similarity matrix is left untouched in both dense modes."""
    S = neg_sq_dist(blobs(40, 3, 5)[0])
    before = S.copy()
    for mode in ("exact", "fast"):
        quiet(affinity_propagation, S, mode=mode)
    assert np.array_equal(S, before)


def test_no_noise_is_deterministic_without_rng():
    """`random_state=None` adds no noise, so repeated runs agree."""
    S = neg_sq_dist(blobs(50, 3, 6)[0])
    assert same(affinity_propagation(S, random_state=None), affinity_propagation(S, random_state=None))


def test_estimator_attributes_and_fit_predict():
    """The estimator sets labels_, cluster_centers_indices_, n_iter_, converged_; fit_predict returns labels_."""
    X, truth = blobs(60, 3, 8, spread=0.3, scale=10)
    est = AffinityPropagation(preference=-50.0)
    labels = est.fit_predict(neg_sq_dist(X))
    assert labels is est.labels_ and est.converged_ and est.n_iter_ >= 16
    assert len(est.cluster_centers_indices_) == 3
    assert all(len(set(truth[labels == c])) == 1 for c in range(3))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fast_agrees_with_exact_on_clusters(seed):
    """Float32 fast mode finds the same clustering as exact mode on clustered data."""
    S = neg_sq_dist(blobs(300, 2 + seed, seed, dim=8)[0])
    exact = affinity_propagation(S, damping=0.9)
    fast = affinity_propagation(S, damping=0.9, mode="fast")
    assert exact.converged and fast.converged and same(exact, fast)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_full_graph_equals_dense(seed):
    """On a complete graph the sparse mode gives exactly the dense result (same noise, same operations)."""
    S = neg_sq_dist(blobs(80, 3, seed)[0]) + np.random.RandomState(seed).rand(80, 80)  # non-symmetric
    dense = quiet(affinity_propagation, S, random_state=seed, damping=0.7)
    sparse = quiet(sparse_affinity_propagation, *full_graph(S), random_state=seed, damping=0.7)
    assert same(dense, sparse) and dense.converged == sparse.converged


def test_sparse_full_graph_without_noise_equals_dense():
    """With `random_state=None` the sparse and dense float64 paths agree too."""
    S = neg_sq_dist(blobs(70, 4, 9)[0])
    dense = affinity_propagation(S, random_state=None, damping=0.8)
    assert same(dense, sparse_affinity_propagation(*full_graph(S), random_state=None, damping=0.8))


def test_sparse_generic_rows_match_equal_width_rows(monkeypatch):
    """The reduceat path for rows of unequal length gives the same result as the 2-D path for equal rows."""
    import hf_nuggets.algorithms.affinity as affinity

    S = neg_sq_dist(blobs(70, 3, 17)[0])
    expected = sparse_affinity_propagation(*full_graph(S), damping=0.8)
    build = affinity._build_graph
    monkeypatch.setattr(affinity, "_build_graph", lambda *args: build(*args)._replace(width=0))
    assert same(expected, sparse_affinity_propagation(*full_graph(S), damping=0.8))


def test_sparse_variable_degree_graph():
    """A graph whose points have different numbers of neighbours is clustered, every point labelled."""
    X, truth = blobs(300, 3, 18, spread=0.5, scale=10)
    S = neg_sq_dist(X)
    np.fill_diagonal(S, -np.inf)
    degree = np.random.RandomState(18).randint(3, 15, size=300)
    order = np.argsort(-S, axis=1)
    rows = np.repeat(np.arange(300), degree)
    cols = np.concatenate([order[i, : degree[i]] for i in range(300)])
    sims = S[rows, cols]
    result = quiet(sparse_affinity_propagation, rows, cols, sims, 300, preference=sims.min(), damping=0.9)
    assert (result.labels >= 0).all()
    assert all(len(set(truth[result.labels == c])) == 1 for c in range(len(result.cluster_centers_indices)))


def test_sparse_knn_graph_clusters_blobs():
    """On a 10-NN graph of separated blobs every cluster stays inside one blob and every point is labelled."""
    X, truth = blobs(600, 4, 11, dim=8, spread=0.5, scale=10)
    S = neg_sq_dist(X)
    np.fill_diagonal(S, -np.inf)
    cols = np.argsort(-S, axis=1)[:, :10]
    rows = np.repeat(np.arange(600), 10)
    sims = S[rows, cols.ravel()]
    result = quiet(sparse_affinity_propagation, rows, cols.ravel(), sims, 600, preference=sims.min(), damping=0.9)
    assert (result.labels >= 0).all() and 4 <= len(result.cluster_centers_indices) < 60
    assert all(len(set(truth[result.labels == c])) == 1 for c in range(len(result.cluster_centers_indices)))


@pytest.mark.parametrize("per_row", [False, True])
def test_sparse_background_equals_dense_filled_matrix(per_row):
    """With `background`, pairs without an edge count at that similarity: the result equals scikit-learn's on the dense
    matrix filled with it (our noise off; scikit-learn's tiny noise does not move these decisions)."""
    pytest.importorskip("sklearn")
    X, _ = blobs(150, 5, 19, dim=8)
    S = neg_sq_dist(X)
    np.fill_diagonal(S, -np.inf)
    cols = np.argsort(-S, axis=1)[:, :6].ravel()
    rows = np.repeat(np.arange(150), 6)
    sims = S[rows, cols]
    fill = np.linspace(-400.0, -200.0, 150) if per_row else -300.0
    dense = np.broadcast_to(np.asarray(fill, dtype=np.float64)[..., None] if per_row else fill, (150, 150)).copy()
    dense[rows, cols] = sims
    ours = sparse_affinity_propagation(
        rows, cols, sims, 150, preference=-120.0, damping=0.9, convergence_iter=30, random_state=None, background=fill
    )
    sk = sklearn_fit(dense, preference=-120.0, damping=0.9, convergence_iter=30, random_state=None)
    assert ours.converged and ours.n_iter == sk.n_iter_
    assert np.array_equal(ours.cluster_centers_indices, np.asarray(sk.cluster_centers_indices_))


def test_sparse_point_without_out_edges_is_its_own_exemplar():
    """A point that others point to but that has no edge of its own can only choose itself: it is an exemplar."""
    rows, cols, sims = [0, 1, 1, 2, 3, 0], [1, 0, 2, 1, 3, 3], [-1.0, -1.0, -1.5, -1.2, 0.0, -9.0]
    result = quiet(sparse_affinity_propagation, rows, cols, sims, 4, preference=-2.0)
    assert 3 in result.cluster_centers_indices


def test_sparse_isolated_points_are_refused():
    """A point without any edge to or from another point is an error naming it (the neighbour search missed it)."""
    rows, cols, sims = [0, 1, 1, 2, 3], [1, 0, 2, 1, 3], [-1.0, -1.0, -1.5, -1.2, 0.0]
    with pytest.raises(ValueError, match=r"The graph has 1 isolated point .*, e.g. point 3\."):
        sparse_affinity_propagation(rows, cols, sims, 4, preference=-2.0)
    with pytest.raises(ValueError, match=r"3 isolated points .*, e.g. points 0, 1, 2\."):
        sparse_affinity_propagation([0], [0], [1.0], 3)


def test_sparse_single_point():
    """One point, no edges: it is its own exemplar."""
    result = sparse_affinity_propagation([], [], [], 1, preference=0.0)
    assert result.labels.tolist() == [0] and result.cluster_centers_indices.tolist() == [0]


def test_convergence_warning_keeps_last_decision():
    """Stopping at max_iter warns, and exact mode still labels with the last decision, like scikit-learn."""
    pytest.importorskip("sklearn")
    S = neg_sq_dist(blobs(100, 4, 12)[0])
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        result = affinity_propagation(S, max_iter=20, damping=0.5, convergence_iter=15)
    sk = sklearn_fit(S, max_iter=20, random_state=0)
    assert not result.converged and np.array_equal(result.labels, sk.labels_)


def test_convergence_warning_without_exemplars():
    """A run stopped before any exemplar appears warns and labels every point -1."""
    S = neg_sq_dist(blobs(100, 4, 13)[0])
    with pytest.warns(ConvergenceWarning, match="will not have any cluster centers"):
        result = affinity_propagation(S, max_iter=2, damping=0.99)
    assert (result.labels == -1).all() and result.cluster_centers_indices.size == 0


@pytest.mark.parametrize("mode", ["fast", "sparse"])
def test_convergence_warning_other_modes(mode):
    """Fast and sparse modes warn too when they stop at max_iter."""
    S = neg_sq_dist(blobs(60, 3, 14)[0])
    with pytest.warns(ConvergenceWarning):
        if mode == "fast":
            result = affinity_propagation(S, mode="fast", max_iter=12)
        else:
            result = sparse_affinity_propagation(*full_graph(S), max_iter=12)
    assert not result.converged and result.n_iter == 12


def test_find_preference_for_k_dense():
    """The preference search finds exactly k exemplars on a dense matrix."""
    S = neg_sq_dist(blobs(120, 5, 15, spread=0.8)[0])
    for k in (1, 3, 5, 8):
        found = find_preference_for_k(S, k, damping=0.9)
        assert found.result.cluster_centers_indices.size == k
        assert found.result.labels.max() == k - 1


def test_find_preference_for_k_sparse():
    """The preference search works on edges too."""
    S = neg_sq_dist(blobs(60, 4, 16)[0])
    found = find_preference_for_k(full_graph(S), 4, damping=0.9)
    assert found.result.cluster_centers_indices.size == 4


def test_find_preference_for_k_rejects_bad_k():
    """k outside [1, n] is rejected."""
    with pytest.raises(ValueError, match=r"`k` must be in \[1, 3\], got 4"):
        find_preference_for_k(np.zeros((3, 3)), 4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"damping": 0.4}, r"`damping` must be in \[0.5, 1\), got 0.4"),
        ({"damping": 1.0}, r"`damping` must be in \[0.5, 1\), got 1.0"),
        ({"max_iter": 0}, "`max_iter` must be an integer >= 1, got 0"),
        ({"convergence_iter": 0}, "`convergence_iter` must be an integer >= 1, got 0"),
        ({"mode": "slow"}, '`mode` must be "exact" or "fast", got \'slow\''),
        ({"preference": [1.0, 2.0]}, r"`preference` must be a finite number or an array of shape \(3,\)"),
        ({"preference": np.nan}, "`preference` must be a finite number"),
        ({"random_state": "seed"}, "`random_state` must be None, an int or a numpy random generator"),
    ],
)
def test_dense_bad_parameters(kwargs, match):
    """Bad parameters raise ValueError naming the argument and value."""
    with pytest.raises(ValueError, match=match):
        affinity_propagation(np.zeros((3, 3)), **kwargs)


@pytest.mark.parametrize(
    ("S", "match"),
    [
        (np.zeros((3, 4)), r"`S` must be a square similarity matrix, got shape \(3, 4\)"),
        (np.zeros(3), r"`S` must be a square similarity matrix, got shape \(3,\)"),
        (np.zeros((0, 0)), r"`S` must not be empty"),
        (np.array([[0.0, np.nan], [1.0, 0.0]]), r"`S` must be finite, got nan at \(0, 1\)"),
        (np.array([[0.0, 1.0], [np.inf, 0.0]]), r"`S` must be finite, got inf at \(1, 0\)"),
    ],
)
def test_dense_bad_matrix(S, match):
    """Non-square, empty or non-finite similarity matrices are rejected."""
    with pytest.raises(ValueError, match=match):
        affinity_propagation(S)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([0, 1], [1], [1.0, 2.0], 2), "`rows`, `cols` and `sims` must be 1-D of equal length, got 2, 1, 2"),
        (([0, 1], [1, 0], [1.0], 2), "`rows`, `cols` and `sims` must be 1-D of equal length, got 2, 2, 1"),
        (([0, 2], [1, 0], [1.0, 1.0], 2), r"`rows` must hold indices in \[0, 2\), got 2 at edge 1"),
        (([0, 1], [-1, 0], [1.0, 1.0], 2), r"`cols` must hold indices in \[0, 2\), got -1"),
        (([0.5], [1], [1.0], 2), "`rows` must be a 1-D integer array"),
        (([0, 1], [1, 0], [1.0, np.nan], 2), r"`sims` must be finite, got nan at edge 1 \(1 -> 0\)"),
        (([0, 1, 1], [1, 0, 2], [1.0, 1.0, np.inf], 3), r"got inf at edge 2 \(1 -> 2\); 1 non-finite in all"),
        (([0, 0], [1, 1], [1.0, 2.0], 2), r"must not repeat an edge, got \(0, 1\) twice"),
        (([], [], [], 2), "The graph has 2 isolated points"),
        (([], [], [], 0), "`n` must be an integer >= 1, got 0"),
    ],
)
def test_sparse_bad_input(args, match):
    """Malformed edge lists are rejected with the offending argument named."""
    with pytest.raises(ValueError, match=match):
        sparse_affinity_propagation(*args)


def test_sparse_bad_damping():
    """The sparse mode validates its parameters like the dense one."""
    with pytest.raises(ValueError, match=r"`damping` must be in \[0.5, 1\), got 1.5"):
        sparse_affinity_propagation([0], [1], [1.0], 2, damping=1.5)
