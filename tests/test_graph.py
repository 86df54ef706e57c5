"""Tests of hf_nuggets.algorithms.graph: validation, symmetrisation, connected components."""

from __future__ import annotations

import numpy as np
import pytest

from hf_nuggets.algorithms.graph import check_graph, count_components, symmetrize_graph


def test_symmetrize_adds_missing_reverse_edges_only():
    """Each edge gets its reverse where missing; given pairs keep their own (non-symmetric) values."""
    g = symmetrize_graph([0, 1, 2, 0], [1, 0, 0, 0], [0.5, 0.4, 0.3, 9.0], 3)
    edges = {(int(r), int(c)): float(s) for r, c, s in zip(g.rows, g.cols, g.sims, strict=True)}
    assert edges == {(0, 1): 0.5, (1, 0): 0.4, (2, 0): 0.3, (0, 2): 0.3}


def test_symmetrize_matches_dense_union():
    """On a random kNN graph the result is the union of the adjacency matrix and its transpose."""
    rng = np.random.default_rng(0)
    n, k = 50, 4
    S = rng.random((n, n))
    S = S + S.T
    np.fill_diagonal(S, -np.inf)
    cols = np.argsort(-S, axis=1)[:, :k].ravel()
    rows = np.repeat(np.arange(n), k)
    g = symmetrize_graph(rows, cols, S[rows, cols], n)
    adjacency = np.zeros((n, n), dtype=bool)
    adjacency[rows, cols] = True
    adjacency |= adjacency.T
    assert np.array_equal(np.argwhere(adjacency), np.column_stack((g.rows, g.cols)))
    assert np.array_equal(g.sims, S[g.rows, g.cols])


def test_count_components_is_weak_connectivity():
    """Two chains and an isolated point are three weak components, whatever the edge directions."""
    assert count_components([0, 2, 3], [1, 1, 4], 6) == 3
    assert count_components([0, 1, 2], [1, 2, 0], 3) == 1


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([0, 1], [1, 0], [0.5, np.nan], 2), r"`sims` must be finite, got nan at edge 1 \(1 -> 0\)"),
        (([0, 1, 0], [1, 0, 1], [0.5, 0.5, 0.1], 2), r"must not repeat an edge, got \(0, 1\) twice"),
        (([0, 1], [1, 0], [0.5, 0.5], 4), r"2 isolated points .*e\.g\. points 2, 3\."),
        (([0, 1], [1, 5], [0.5, 0.5], 4), r"`cols` must hold indices in \[0, 4\), got 5 at edge 1"),
        (([0, 1], [1, 0], ["a", "b"], 2), "`sims` must hold real numbers"),
    ],
)
def test_check_graph_names_the_problem(args, match):
    """Non-finite weights, repeated edges, isolated points and bad indices are named with where they are."""
    with pytest.raises(ValueError, match=match):
        check_graph(*args)


def test_check_graph_allows_isolated_on_request():
    """`allow_isolated=True` accepts points without edges."""
    g = check_graph([0], [1], [0.5], 3, allow_isolated=True)
    assert g.n == 3 and g.rows.dtype == np.int64 and g.sims.dtype == np.float64
