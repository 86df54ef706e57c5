"""Locality-sensitive hashing: SimHash index and kNN graph, parameter helpers, MinHash near-duplicate detection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hf_nuggets.algorithms.lsh import (
    SimHashLSH,
    knn_graph,
    lsh_params,
    lsh_params_for_recall,
    minhash_collision_probability,
    s_curve,
    simhash_collision_probability,
)
from hf_nuggets.algorithms.minhash import (
    MinHasher,
    MinHashLSH,
    dedup,
    minhash_bands_for_recall,
    near_duplicates,
    shingle_jaccard,
)


def unit(X):
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


def at_cosine(x, cos, rng):
    """A unit vector whose cosine similarity with `x` is exactly `cos`."""
    x = unit(x)
    u = rng.standard_normal(x.shape)
    u = unit(u - (u @ x) * x)
    return cos * x + math.sqrt(1 - cos**2) * u


@pytest.fixture(scope="module")
def points():
    return np.random.default_rng(0).standard_normal((3000, 48)).astype(np.float32)


@pytest.fixture(scope="module")
def index(points):
    idx = SimHashLSH(48, n_bits_per_table=14, n_tables=8, seed=1)
    idx.add(points)
    return idx


# ----------------------------------------------------------------------------------------------- collision probability


def test_simhash_collision_probability_values():
    """SimHash collides with probability 1 - theta/pi: 1/2 at cosine 0, 1 at cosine 1, 0 at cosine -1."""
    assert simhash_collision_probability(0.0) == 0.5
    assert simhash_collision_probability(1.0) == 1.0
    assert simhash_collision_probability(-1.0) == 0.0
    np.testing.assert_allclose(simhash_collision_probability(np.array([0.5])), [1 - 1 / 3])


def test_simhash_bits_agree_at_the_predicted_rate():
    """The fraction of agreeing hyperplane bits over many hyperplanes matches 1 - theta/pi."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(32)
    y = at_cosine(x, 0.7, rng)
    idx = SimHashLSH(32, n_bits_per_table=64, n_tables=64, seed=2)
    signs = (np.stack([x, y]).astype(np.float32) @ idx.hyperplanes) > 0
    assert abs((signs[0] == signs[1]).mean() - simhash_collision_probability(0.7)) < 0.03


def test_minhash_collision_probability_is_jaccard():
    """MinHash collides with probability equal to the Jaccard similarity."""
    assert minhash_collision_probability(0.3) == 0.3


def test_collision_probability_out_of_range_raises():
    """A cosine outside [-1, 1] or a Jaccard outside [0, 1] raises, naming the argument."""
    with pytest.raises(ValueError, match=r"`cosine` must be in \[-1, 1\], got 1.5"):
        simhash_collision_probability(1.5)
    with pytest.raises(ValueError, match=r"`jaccard` must be in \[0, 1\], got -0.1"):
        minhash_collision_probability(-0.1)


# ----------------------------------------------------------------------------------------------- parameter helpers


def test_s_curve_formula():
    """The S-curve is 1 - (1 - p^k)^l."""
    assert s_curve(0.8, 5, 20) == pytest.approx(1 - (1 - 0.8**5) ** 20)
    np.testing.assert_allclose(s_curve(np.array([0.0, 1.0]), 3, 4), [0.0, 1.0])


def test_lsh_params_indyk_motwani_formulas():
    """k = ceil(ln n / ln(1/p2)), l = ceil(n^rho), rho = ln(1/p1) / ln(1/p2)."""
    n, p1, p2 = 100_000, 0.85, 0.4
    k, l, rho = lsh_params(n, p1, p2)  # noqa: E741
    assert rho == pytest.approx(math.log(1 / p1) / math.log(1 / p2))
    assert k == math.ceil(math.log(n) / math.log(1 / p2)) == 13
    assert l == math.ceil(n**rho) == 8


def test_lsh_params_far_points_per_bucket_at_most_one():
    """With the chosen k, the expected number of far points sharing a bucket, n * p2^k, is at most 1."""
    for n, p2 in [(1000, 0.5), (50_000, 0.3), (10**6, 0.7)]:
        k, _, _ = lsh_params(n, 0.9, p2)
        assert n * p2**k <= 1.0 < n * p2 ** (k - 1)


def test_lsh_params_k_at_least_one():
    """A single point still gets k = 1 and l = 1."""
    assert lsh_params(1, 0.9, 0.5)[:2] == (1, 1)


def test_lsh_params_for_recall_meets_target_with_largest_k():
    """The chosen (k, l) reaches the recall at p; k + 1 would need more than max_tables tables."""
    p = simhash_collision_probability(0.9)
    k, l, _ = lsh_params_for_recall(p, recall=0.9, max_tables=16)  # noqa: E741
    assert l <= 16 and s_curve(p, k, l) >= 0.9
    assert s_curve(p, k + 1, 16) < 0.9


def test_lsh_params_for_recall_falls_back_to_k_one():
    """When even one hash per table needs more than max_tables tables, k = 1 with the tables it needs."""
    k, l, _ = lsh_params_for_recall(0.1, recall=0.99, max_tables=5)  # noqa: E741
    assert k == 1 and l == math.ceil(math.log(0.01) / math.log(0.9))


def test_lsh_params_bad_probabilities_raise():
    """p1, p2 must lie in (0, 1) with p2 < p1; recall in (0, 1)."""
    with pytest.raises(ValueError, match=r"`p1` must be a number in \(0, 1\), got 1.0"):
        lsh_params(100, 1.0, 0.5)
    with pytest.raises(ValueError, match=r"`p2` must be smaller than `p1`=0.5, got 0.6"):
        lsh_params(100, 0.5, 0.6)
    with pytest.raises(ValueError, match=r"`recall` must be a number in \(0, 1\), got 1.2"):
        lsh_params_for_recall(0.5, recall=1.2)
    with pytest.raises(ValueError, match=r"`n` must be an integer >= 1, got 0"):
        lsh_params(0, 0.9, 0.5)


def test_s_curve_bad_k_or_l_raises():
    """k or l below 1 raises, naming the argument and the value."""
    with pytest.raises(ValueError, match=r"`k` must be an integer >= 1, got 0"):
        s_curve(0.5, 0, 3)
    with pytest.raises(ValueError, match=r"`l` must be an integer >= 1, got -2"):
        s_curve(0.5, 3, -2)


# ----------------------------------------------------------------------------------------------- SimHash index


def test_recall_on_planted_neighbours_matches_s_curve(points, index):
    """Queries at cosine 0.95 from an indexed point find it at least as often as the S-curve predicts (minus 0.06)."""
    rng = np.random.default_rng(3)
    targets = rng.choice(len(points), 600, replace=False)
    queries = np.stack([at_cosine(points[t], 0.95, rng) for t in targets])
    res = index.query(queries, k=1)
    found = (res.indices[:, 0] == targets).mean()
    predicted = s_curve(simhash_collision_probability(0.95), 14, 8)
    assert found >= predicted - 0.06


def test_multiprobe_raises_recall(points, index):
    """Probing neighbouring buckets finds at least as many planted neighbours, with more candidates."""
    rng = np.random.default_rng(4)
    targets = rng.choice(len(points), 300, replace=False)
    queries = np.stack([at_cosine(points[t], 0.9, rng) for t in targets])
    plain, probed = index.query(queries, k=1), index.query(queries, k=1, n_probes=3)
    assert (probed.indices[:, 0] == targets).mean() > (plain.indices[:, 0] == targets).mean()
    assert (probed.n_candidates >= plain.n_candidates).all()


def test_similarities_are_exact_and_sorted(points, index):
    """Returned similarities are the true cosines of the returned indices, in decreasing order."""
    Q = points[:50] + 0.3 * np.random.default_rng(5).standard_normal((50, 48)).astype(np.float32)
    res = index.query(Q, k=5)
    ok = res.indices >= 0
    true = np.einsum("ij,ikj->ik", unit(Q), unit(points)[np.where(ok, res.indices, 0)])
    np.testing.assert_allclose(res.similarities[ok], true[ok], atol=1e-5)
    assert all((np.diff(row[np.isfinite(row)]) <= 0).all() for row in res.similarities)
    assert (ok[:, :-1] >= ok[:, 1:]).all()  # padding only at the end


def test_results_are_best_among_candidates(points, index):
    """The top-k are the k most similar of the points sharing a bucket with the query (brute force on codes)."""
    Q = points[100:110] + 0.5 * np.random.default_rng(6).standard_normal((10, 48)).astype(np.float32)
    res = index.query(Q, k=3)
    qc, pc = index.hash(Q), index.hash(points)
    for i in range(10):
        cand = np.flatnonzero((pc == qc[:, i : i + 1]).any(axis=0))
        assert res.n_candidates[i] == cand.size
        sims = unit(points[cand]) @ unit(Q[i])
        np.testing.assert_array_equal(res.indices[i, : min(3, cand.size)], cand[np.argsort(-sims, kind="stable")][:3])


def test_counts_distance_computations(points, index):
    """The running total of distance computations grows by the sum of the per-query candidate counts."""
    before = index.n_distance_computations
    res = index.query(points[:20], k=2)
    assert index.n_distance_computations - before == res.n_candidates.sum() > 0
    assert res.n_candidates.max() < len(points)


def test_pads_when_fewer_candidates_than_k():
    """Rows with fewer than k candidates are padded with -1 and -inf."""
    idx = SimHashLSH(8, n_bits_per_table=32, n_tables=1, seed=0)
    X = np.random.default_rng(7).standard_normal((20, 8))
    idx.add(X)
    res = idx.query(X[:1], k=30)
    assert res.indices[0, 0] == 0 and (res.indices[0, 1:] == -1).all() and np.isneginf(res.similarities[0, 1:]).all()


def test_add_appends_and_query_accepts_one_vector():
    """A second `add` continues the numbering; a single 1-D query is accepted."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((40, 16))
    idx = SimHashLSH(16, n_bits_per_table=4, n_tables=4)
    idx.add(X[:25])
    idx.add(X[25:])
    assert len(idx) == 40
    assert idx.query(X[33], k=1).indices.tolist() == [[33]]


def test_same_seed_same_results(points):
    """The same seed gives the same hyperplanes and results; another seed different hyperplanes."""
    a, b = SimHashLSH(48, seed=3), SimHashLSH(48, seed=3)
    np.testing.assert_array_equal(a.hyperplanes, b.hyperplanes)
    assert not np.array_equal(a.hyperplanes, SimHashLSH(48, seed=4).hyperplanes)


def test_bits_per_table_out_of_range_raises():
    """k (bits per table) below 1 or above 64 raises, naming it and the value."""
    with pytest.raises(ValueError, match=r"`n_bits_per_table` must be an integer in \[1, 64\], got 0"):
        SimHashLSH(8, n_bits_per_table=0)
    with pytest.raises(ValueError, match=r"`n_bits_per_table` must be an integer in \[1, 64\], got 65"):
        SimHashLSH(8, n_bits_per_table=65)


def test_tables_below_one_raises():
    """l (tables) below 1 raises, naming it and the value."""
    with pytest.raises(ValueError, match=r"`n_tables` must be an integer >= 1, got 0"):
        SimHashLSH(8, n_tables=0)


def test_mismatched_dimension_raises(index):
    """Vectors of another dimension raise, naming the argument and the shape."""
    with pytest.raises(ValueError, match=r"`vectors` must have dimension 48, got shape \(2, 7\)"):
        index.query(np.ones((2, 7)))
    with pytest.raises(ValueError, match=r"`vectors` must have dimension 48"):
        SimHashLSH(48).add(np.ones((3, 5)))


def test_nan_vector_raises(index):
    """A NaN vector raises, naming the argument and the row."""
    Q = np.ones((3, 48))
    Q[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"`vectors` must be finite, got a NaN or infinite value in row 2"):
        index.query(Q)


def test_empty_input_raises():
    """Empty vectors raise, naming the argument."""
    with pytest.raises(ValueError, match=r"`vectors` must not be empty, got shape \(0, 8\)"):
        SimHashLSH(8).add(np.empty((0, 8)))


def test_query_before_add_raises():
    """Querying an empty index raises."""
    with pytest.raises(ValueError, match=r"index is empty"):
        SimHashLSH(8).query(np.ones((1, 8)))


def test_bad_k_and_probes_raise(index):
    """k below 1 or more probes than bits raise, naming the argument."""
    with pytest.raises(ValueError, match=r"`k` must be an integer >= 1, got 0"):
        index.query(np.ones((1, 48)), k=0)
    with pytest.raises(ValueError, match=r"`n_probes` must be an integer in \[0, 14\], got 15"):
        index.query(np.ones((1, 48)), n_probes=15)


# ----------------------------------------------------------------------------------------------- kNN graph


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(9)
    centers = rng.standard_normal((20, 32))
    return (centers[rng.integers(0, 20, 800)] + 0.6 * rng.standard_normal((800, 32))).astype(np.float32)


def test_knn_graph_agrees_with_brute_force(clustered):
    """At least 90% of the edges are true 10-nearest neighbours, with their exact cosine similarities."""
    rows, cols, sims = knn_graph(clustered, n_neighbors=10)
    Xn = unit(clustered.astype(np.float64))
    S = Xn @ Xn.T
    np.fill_diagonal(S, -np.inf)
    true = np.argsort(-S, axis=1)[:, :10]
    hits = sum(c in set(true[r]) for r, c in zip(rows.tolist(), cols.tolist(), strict=True))
    assert hits / (10 * len(clustered)) >= 0.9
    np.testing.assert_allclose(sims, S[rows, cols], atol=1e-5)


def test_knn_graph_has_no_self_loops_and_sorted_rows(clustered):
    """No edge joins a point to itself; edges come by row, then by decreasing similarity."""
    rows, cols, sims = knn_graph(clustered, n_neighbors=5)
    assert (rows != cols).all() and (np.diff(rows) >= 0).all()
    same = np.diff(rows) == 0
    assert (np.diff(sims)[same] <= 0).all()


def test_knn_graph_sparse_matches_edges(clustered):
    """`return_sparse=True` holds the same edges as the edge arrays."""
    rows, cols, sims = knn_graph(clustered[:200], n_neighbors=4)
    M = knn_graph(clustered[:200], n_neighbors=4, return_sparse=True)
    assert M.shape == (200, 200) and M.nnz == rows.size
    np.testing.assert_allclose(np.asarray(M[rows, cols]).ravel(), sims)


def test_knn_graph_bad_input_raises():
    """NaN embeddings, empty embeddings and n_neighbors below 1 raise, naming the argument."""
    X = np.ones((5, 3))
    X[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"`embeddings` must be finite, .* row 4"):
        knn_graph(X)
    with pytest.raises(ValueError, match=r"`embeddings` must not be empty"):
        knn_graph(np.empty((0, 3)))
    with pytest.raises(ValueError, match=r"`n_neighbors` must be an integer >= 1, got 0"):
        knn_graph(np.ones((5, 3)), n_neighbors=0)


# ----------------------------------------------------------------------------------------------- MinHash


def make_corpus(n_docs, n_planted, seed=0):
    """Random-word documents, the last `n_planted` being copies of earlier ones with two word substitutions."""
    rng = np.random.default_rng(seed)
    vocab = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(3, 9))) for _ in range(3000)]
    docs = [list(rng.choice(vocab, rng.integers(60, 100))) for _ in range(n_docs - n_planted)]
    sources = rng.choice(len(docs), n_planted, replace=False)
    for s in sources:
        words = list(docs[s])
        for pos in rng.choice(len(words), 2, replace=False):
            words[pos] = str(rng.choice(vocab))
        docs.append(words)
    return [" ".join(d) for d in docs], sources


def test_minhash_bands_for_recall():
    """The banding reaches the recall at the threshold, and one more row per band would not."""
    b, r = minhash_bands_for_recall(0.8, 128, recall=0.95)
    assert (b, r) == (18, 7) and s_curve(0.8, r, b) >= 0.95 > s_curve(0.8, r + 1, 128 // (r + 1))


def test_shingle_jaccard_exact():
    """Jaccard of word and character shingle sets is computed exactly."""
    assert shingle_jaccard("a b c d", "a b c e", ngram=1, unit="word") == pytest.approx(3 / 5)
    assert shingle_jaccard("abcd", "abce", ngram=2) == pytest.approx(2 / 4)
    assert shingle_jaccard("Hello  World", "hello world") == 1.0


def test_signature_agreement_estimates_jaccard():
    """The fraction of equal MinHash values estimates the Jaccard similarity."""
    a = " ".join(f"w{i}" for i in range(200))
    b = " ".join(f"w{i}" for i in range(50, 250))  # word Jaccard 150 / 250
    sig = MinHasher(1024, ngram=1, unit="word", seed=3).signatures([a, b])
    assert abs((sig[0] == sig[1]).mean() - 0.6) < 0.05


def test_near_duplicates_finds_planted_and_not_unrelated():
    """Every planted edited copy is paired with its source, and no unrelated documents are."""
    texts, sources = make_corpus(400, 40)
    result = near_duplicates(texts, threshold=0.7)
    found = set(map(tuple, result.pairs.tolist()))
    planted = {(int(s), 360 + i) for i, s in enumerate(sources)}
    assert planted <= found
    assert found == planted  # random documents share no 5-gram sets anywhere near 0.7


def test_near_duplicate_similarities_are_exact():
    """Reported similarities are the exact shingle Jaccard values, all at or above the threshold."""
    texts, _ = make_corpus(120, 15, seed=1)
    result = near_duplicates(texts, threshold=0.6)
    exact = [shingle_jaccard(texts[i], texts[j]) for i, j in result.pairs.tolist()]
    np.testing.assert_allclose(result.jaccard, exact)
    assert (result.jaccard >= 0.6).all()


def test_groups_and_dedup_keep_first():
    """Exact and near copies form one group; dedup keeps the lowest index of each group and every singleton."""
    base = "the quick brown fox jumps over the lazy dog near the river bank today"
    texts = ["unrelated text about cooking pasta", base, base, "another unrelated note", base + "!", base.upper()]
    result = near_duplicates(texts, threshold=0.8)
    assert result.groups == [[1, 2, 4, 5]]
    assert dedup(texts, threshold=0.8).tolist() == [0, 1, 3]


def test_empty_texts_are_duplicates_of_each_other():
    """Two texts without shingles have Jaccard 1 (identical empty sets) and nothing in common with others."""
    result = near_duplicates(["", "some words here", "   "], threshold=0.9)
    assert result.pairs.tolist() == [[0, 2]] and result.jaccard.tolist() == [1.0]


def test_no_duplicates_gives_empty_result():
    """Unrelated texts (or a single text) give no pairs, no groups, and every index kept."""
    result = near_duplicates(["alpha beta gamma delta", "completely other words here"])
    assert result.pairs.shape == (0, 2) and result.groups == [] and result.n_candidates == 0
    assert dedup(["just one text"]).tolist() == [0]


def test_word_shingles():
    """Word n-gram shingles find reordered-punctuation copies."""
    texts = ["one two three four five six seven eight", "One, two, three, four, five, six, seven, eight.", "x y z"]
    assert near_duplicates(texts, unit="word", ngram=2, threshold=0.9).pairs.tolist() == [[0, 1]]


def test_minhash_lsh_index_query():
    """The index returns matching texts with exact Jaccard, best first, and nothing for unrelated queries."""
    texts, sources = make_corpus(200, 0, seed=2)
    index = MinHashLSH(threshold=0.8)
    index.add(texts)
    edited = texts[7].replace(texts[7].split()[3], "zzzz", 1)
    (idx, jac), (none_idx, _) = index.query([edited, "nothing like the corpus at all"])
    assert idx.tolist() == [7] and jac[0] == pytest.approx(shingle_jaccard(edited, texts[7]))
    assert none_idx.size == 0 and index.n_candidates >= 1


def test_minhash_deterministic_by_seed():
    """The same seed gives the same signatures."""
    texts = ["alpha beta gamma", "delta epsilon"]
    np.testing.assert_array_equal(MinHasher(seed=5).signatures(texts), MinHasher(seed=5).signatures(texts))


def test_threshold_out_of_range_raises():
    """A threshold outside (0, 1] raises, naming `threshold` and the value."""
    with pytest.raises(ValueError, match=r"`threshold` must be in \(0, 1\], got 0"):
        near_duplicates(["a", "b"], threshold=0)
    with pytest.raises(ValueError, match=r"`threshold` must be in \(0, 1\], got 1.5"):
        MinHashLSH(threshold=1.5)


def test_bad_texts_raise():
    """Empty input, a bare string or a non-string item raise, naming `texts`."""
    with pytest.raises(ValueError, match=r"`texts` must not be empty"):
        near_duplicates([])
    with pytest.raises(ValueError, match=r"`texts` must be a sequence of strings, got str"):
        dedup("abc")
    with pytest.raises(ValueError, match=r"`texts` must hold strings only, got int at position 1"):
        MinHasher().signatures(["a", 3])


def test_bad_hasher_arguments_raise():
    """A bad unit, n-gram size or signature length raises, naming the argument."""
    with pytest.raises(ValueError, match=r"`unit` must be \"char\" or \"word\", got 'byte'"):
        MinHasher(unit="byte")
    with pytest.raises(ValueError, match=r"`ngram` must be an integer >= 1, got 0"):
        MinHasher(ngram=0)
    with pytest.raises(ValueError, match=r"`num_perm` must be an integer >= 1, got 0"):
        MinHasher(num_perm=0)


def test_bad_banding_raises():
    """Bands without rows, or more band rows than signature values, raise, naming the arguments."""
    with pytest.raises(ValueError, match=r"`n_bands` and `rows_per_band` must be given together"):
        MinHashLSH(n_bands=4)
    with pytest.raises(ValueError, match=r"`n_bands` \* `rows_per_band` must be <= `num_perm`=64, got 10 \* 8"):
        MinHashLSH(num_perm=64, n_bands=10, rows_per_band=8)


def test_minhash_query_before_add_raises():
    """Querying an empty MinHash index raises."""
    with pytest.raises(ValueError, match=r"index is empty"):
        MinHashLSH().query(["text"])
