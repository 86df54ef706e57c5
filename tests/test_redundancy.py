"""The redundancy walk (DEITA's representation filter): exact walk, LSH walk, LSH parameters and lazy reading."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hf_nuggets.algorithms.lsh import SimHashLSH, s_curve, simhash_collision_probability
from hf_nuggets.algorithms.redundancy import redundancy_walk, walk_lsh_params, walk_recall


def unit(X):
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


def at_cosine(x, cos, rng):
    """A unit vector whose cosine similarity with the unit vector `x` is exactly `cos`."""
    u = rng.standard_normal(x.shape)
    u = unit(u - (u @ x) * x)
    return cos * x + math.sqrt(1 - cos**2) * u


def reference_walk(order, X, n_keep, min_distance):
    """DEITA's rule written plainly: keep a row unless a kept row is closer than `min_distance`."""
    X = unit(np.asarray(X, dtype=np.float64))
    kept, skipped, nearest = [], [], []
    for row in order:
        if len(kept) == n_keep:
            break
        sims = [float(X[k] @ X[row]) for k in kept]
        if sims and 1 - max(sims) < min_distance:
            skipped.append(row)
            nearest.append(kept[int(np.argmax(sims))])
        else:
            kept.append(row)
    return kept, skipped, nearest


@pytest.fixture(scope="module")
def clustered():
    """300 rows in 24 dims: 100 random centres, each with two near copies at cosine 0.97 and 0.9, in random order."""
    rng = np.random.default_rng(3)
    centres = unit(rng.standard_normal((100, 24)))
    rows = [c for c in centres]
    rows += [at_cosine(c, 0.97, rng) for c in centres] + [at_cosine(c, 0.9, rng) for c in centres]
    X = np.array(rows, dtype=np.float32)
    order = rng.permutation(len(X))
    return X, order


@pytest.mark.parametrize("min_distance", [0.05, 0.2, 0.6])
def test_exact_walk_matches_the_plain_reference(clustered, min_distance):
    """The blocked exact walk keeps, skips and names the same nearest kept rows as the plain loop."""
    X, order = clustered
    result = redundancy_walk(order, X, 150, min_distance, method="exact", block_size=7)
    kept, skipped, nearest = reference_walk(order, X, 150, min_distance)
    assert result.kept.tolist() == kept
    assert result.skipped.tolist() == skipped and result.nearest.tolist() == nearest
    assert result.visited == len(kept) + len(skipped) and result.params is None


@pytest.mark.parametrize("min_distance", [0.05, 0.2])
def test_lsh_walk_equals_the_exact_walk_when_its_recall_is_exact(clustered, min_distance):
    """With 4 bits and 64 tables a kept row at the threshold is missed with probability < 1e-12: same walk."""
    X, order = clustered
    assert 1 - walk_recall(min_distance, 4, 64) < 1e-12
    lsh = redundancy_walk(order, X, 200, min_distance, n_bits_per_table=4, n_tables=64)
    exact = redundancy_walk(order, X, 200, min_distance, method="exact")
    assert lsh.kept.tolist() == exact.kept.tolist() and lsh.skipped.tolist() == exact.skipped.tolist()
    assert lsh.n_distance_computations < exact.n_distance_computations


def test_lsh_walk_with_default_parameters_skips_only_true_neighbours(clustered):
    """A skipped row always has a kept row closer than the threshold (the candidates are checked exactly)."""
    X, order = clustered
    result = redundancy_walk(order, X, 300, 0.2)
    Xn = unit(X.astype(np.float64))
    assert all(1 - Xn[s] @ Xn[n] < 0.2 for s, n in zip(result.skipped, result.nearest, strict=True))
    assert set(result.nearest) <= set(result.kept)


def test_skip_count_is_exact_and_the_walk_goes_past_skipped_rows():
    """Each centre followed by its two copies: keeping m centres skips exactly the 2(m-1) copies before the last."""
    rng = np.random.default_rng(0)
    m = 40
    centres = np.eye(64)[:m]  # orthogonal: never redundant with one another
    X = np.concatenate([np.stack([c, at_cosine(c, 0.99, rng), at_cosine(c, 0.98, rng)]) for c in centres])
    for method in ("exact", "lsh"):
        result = redundancy_walk(np.arange(len(X)), X, m, 0.1, method=method)
        assert result.kept.tolist() == list(range(0, 3 * m, 3))
        assert len(result.skipped) == 2 * (m - 1) and result.visited == 3 * m - 2


def test_too_few_distinct_rows_keep_fewer_rows():
    """When the ranking runs out, the walk returns the rows it kept, fewer than asked for."""
    X = np.array([[1.0, 0.0], [1.0, 0.001], [0.0, 1.0], [0.001, 1.0]])
    result = redundancy_walk(np.arange(4), X, 3, 0.1)
    assert result.kept.tolist() == [0, 2] and result.skipped.tolist() == [1, 3] and result.visited == 4


def test_only_the_visited_rows_are_read():
    """A callable is asked for the rows the walk needs, in blocks along the ranking, and no others."""
    rng = np.random.default_rng(1)
    X = unit(rng.standard_normal((1000, 32))).astype(np.float32)
    X[11] = X[10]  # one duplicate among the first rows
    asked = []

    def read(rows):
        asked.extend(rows.tolist())
        return X[rows]

    result = redundancy_walk(np.arange(1000), read, 100, 0.1)
    assert len(result.kept) == 100 and result.skipped.tolist() == [11]
    assert asked == list(range(len(asked))) and len(asked) == 100 + 64  # one block of 100, then one of 64


@pytest.mark.parametrize("n", [18, 2600, 100_000])
def test_default_lsh_parameters_follow_the_stated_rule(n):
    """k = ceil(log2 n) bits unless that needs over 32 tables (then the most bits that do not); the fewest tables that
    reach recall 0.95 at the threshold."""
    for d in (0.02, 0.05, 0.1, 0.2, 0.5):
        k, l, _ = walk_lsh_params(d, n)  # noqa: E741
        p = simhash_collision_probability(1 - d)
        assert s_curve(p, k, l) >= 0.95 and l <= 32 and k <= math.ceil(math.log2(n))
        assert l == 1 or s_curve(p, k, l - 1) < 0.95
        if k < math.ceil(math.log2(n)):
            assert math.ceil(math.log1p(-0.95) / math.log1p(-(p ** (k + 1)))) > 32


def test_measured_recall_at_the_threshold_matches_the_formula():
    """Pairs exactly at the threshold share a bucket in at least one table as often as the S-curve says."""
    rng = np.random.default_rng(5)
    d = 0.1
    k, l, _ = walk_lsh_params(d, 2600)  # noqa: E741
    x = unit(rng.standard_normal((2000, 48)))
    y = np.stack([at_cosine(v, 1 - d, rng) for v in x])
    index = SimHashLSH(48, n_bits_per_table=k, n_tables=l, seed=9)
    found = (index.hash(x.astype(np.float32)) == index.hash(y.astype(np.float32))).any(axis=0).mean()
    expected = walk_recall(d, k, l)
    sigma = math.sqrt(expected * (1 - expected) / 2000)
    assert abs(found - expected) < 4 * sigma and found > 0.93


@pytest.mark.parametrize("value", [0, -0.1, 2, 2.5, True, "0.1"])
def test_min_distance_out_of_range_is_refused(value):
    """`min_distance` is a cosine distance in (0, 2)."""
    with pytest.raises(ValueError, match="`min_distance` must be a cosine distance in \\(0, 2\\)"):
        redundancy_walk([0], np.ones((1, 2)), 1, value)


def test_bad_method_and_vector_counts_are_refused():
    """An unknown method, and a callable giving the wrong number of vectors, raise."""
    with pytest.raises(ValueError, match="`method` must be 'lsh' or 'exact'"):
        redundancy_walk([0], np.ones((1, 2)), 1, 0.1, method="brute")
    with pytest.raises(ValueError, match="gave 1 vectors for 2 rows"):
        redundancy_walk([0, 1], lambda rows: np.ones((1, 2)), 2, 0.1)
