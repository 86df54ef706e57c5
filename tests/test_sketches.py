"""Streaming F0/F2 sketches: hashing, accuracy against exact counts, merging, serialisation, input validation."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hf_nuggets.algorithms import _hashing
from hf_nuggets.algorithms._hashing import MERSENNE_61, PolyHash4
from hf_nuggets.algorithms.sketches import (
    AMSSketch,
    FastAMSSketch,
    HyperLogLog,
    diversity_stats,
    f2_sketch_size,
    hash_items,
    iter_ngram_hashes,
    word_ngrams,
)

TEXTS = [
    "the cat sat on the mat",
    "the cat sat on the hat",
    "a dog sat on the mat",
    "the cat sat on the mat",
    "One more line with the cat",
]


def zipf_stream(size: int, seed: int, a: float = 1.3) -> np.ndarray:
    """A Zipf-distributed stream of 64-bit item ids (many repeats, a long tail)."""
    return np.random.default_rng(seed).zipf(a, size=size).astype(np.uint64)


def exact_moments(stream: np.ndarray, counts: np.ndarray | None = None) -> tuple[int, int]:
    """Exact F0 and F2 of a stream."""
    freq = Counter()
    for x, c in zip(stream.tolist(), counts.tolist() if counts is not None else itertools.repeat(1), strict=False):
        freq[x] += c
    return sum(1 for v in freq.values() if v), sum(v * v for v in freq.values())


# ------------------------------------------------------------------------------------------------ hashing


def test_hash_items_is_blake2b_little_endian():
    """Each string hashes to the first 8 bytes of its BLAKE2b digest read little-endian, as uint64."""
    expected = int.from_bytes(hashlib.blake2b("thé cat".encode(), digest_size=8).digest(), "little")
    hashes = hash_items(["thé cat", "thé cat".encode()])
    assert hashes.dtype == np.uint64 and hashes.tolist() == [expected, expected]


def test_hash_items_is_stable_across_processes():
    """A fresh interpreter with a different PYTHONHASHSEED computes the same hashes."""
    path = Path(_hashing.__file__)
    code = (
        f"import importlib.util as u; s = u.spec_from_file_location('h', {str(path)!r}); m = u.module_from_spec(s); "
        "s.loader.exec_module(m); print(m.hash_items(['a b', 'é ü']).tolist())"
    )
    env = {"PYTHONHASHSEED": "123", "PYTHONPATH": ":".join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == str(hash_items(["a b", "é ü"]).tolist())


def test_hash_items_refuses_a_single_string():
    """A bare string is refused instead of being hashed character by character."""
    with pytest.raises(ValueError, match="`items` must be an iterable of strings"):
        hash_items("the cat")


def test_hash_items_refuses_non_strings():
    """Items that are neither str nor bytes raise, naming the item."""
    with pytest.raises(ValueError, match="`items` must hold only str or bytes, got int: 3"):
        hash_items(["a", 3])


def test_word_ngrams_split_on_whitespace():
    """N-grams are consecutive whitespace-separated words joined by one space; short texts have none."""
    assert word_ngrams("The cat\tsat  on", 2) == ["The cat", "cat sat", "sat on"]
    assert word_ngrams("The cat", 3) == []
    assert word_ngrams("The Cat", 1, lowercase=True) == ["the", "cat"]


def test_word_ngrams_refuses_bad_n():
    """`n` below 1 raises, naming the value."""
    with pytest.raises(ValueError, match="`n` must be an integer >= 1, got 0"):
        word_ngrams("a b", 0)


def test_iter_ngram_hashes_concatenates_to_all_ngrams():
    """The streamed batches hold exactly the hashes of all n-grams of all texts, in order."""
    batches = list(iter_ngram_hashes(iter(TEXTS), n=2, batch_size=2))
    assert len(batches) == 3
    all_ngrams = [g for t in TEXTS for g in word_ngrams(t, 2)]
    assert np.concatenate(batches).tolist() == hash_items(all_ngrams).tolist()


def test_polynomial_hash_is_exact_modular_arithmetic():
    """The uint64 evaluation equals big-integer a0 + a1 x + a2 x^2 + a3 x^3 mod 2^61 - 1, edge values included."""
    rng = np.random.default_rng(0)
    poly = PolyHash4(3, rng)
    p = MERSENNE_61
    edges = np.array([0, 1, p - 1, p, p + 1, 2**64 - 1], dtype=np.uint64)
    x = np.concatenate([rng.integers(0, 2**64, 500, dtype=np.uint64), edges])
    powers = poly.powers(x)
    for j in range(3):
        a = [int(c) for c in poly.coefficients[j]]
        expected = [sum(a[k] * pow(int(v), k, p) for k in range(4)) % p for v in x.tolist()]
        assert poly(j, powers).tolist() == expected


def test_sign_hash_is_four_wise_independent_empirically():
    """Over 12200 sign functions, means of products of 1 to 4 signs of distinct items are near 0."""
    sketch = AMSSketch.from_size(610, 20, seed=3)
    signs = sketch.signs(np.array([1, 2, 3, 4], dtype=np.uint64)).reshape(-1, 4).astype(np.float64)
    tol = 4.5 / np.sqrt(signs.shape[0])
    for r in range(1, 5):
        for subset in itertools.combinations(range(4), r):
            assert abs(signs[:, list(subset)].prod(axis=1).mean()) < tol, subset


def test_ams_counters_are_signed_sums_of_counts():
    """Every AMS counter equals sum over items of sign * count exactly, negative counts included."""
    sketch = AMSSketch.from_size(100, 3, seed=1)
    items = np.arange(1, 301, dtype=np.uint64)
    counts = np.random.default_rng(0).integers(-5, 50, size=items.size)
    sketch.update(items, counts)
    expected = sketch.signs(items).astype(np.int64) @ counts
    np.testing.assert_array_equal(sketch.counters, expected)


def test_huge_counts_stay_exact():
    """Counts too large for exact float64 sums take the integer path and stay exact in both F2 sketches."""
    items = np.arange(1, 21, dtype=np.uint64)
    ams = AMSSketch.from_size(100, 3, seed=1)
    ams.update(items, np.full(items.size, 2**55))
    np.testing.assert_array_equal(ams.counters, ams.signs(items).astype(np.int64).sum(axis=2) * 2**55)
    small, huge = FastAMSSketch(seed=1), FastAMSSketch(seed=1)
    small.update(items)
    huge.update(items, np.full(items.size, 2**55))
    np.testing.assert_array_equal(huge.counters, small.counters * 2**55)


# ------------------------------------------------------------------------------------------------ accuracy


def test_f2_sketch_size_follows_chebyshev_and_chernoff():
    """k = ceil(8 / eps^2) and g = ceil(2 ln(1/delta) / ln(4/3)), and the sketch reports the achieved guarantee."""
    assert f2_sketch_size(0.25, 0.1) == (128, 17)
    assert f2_sketch_size(0.1, 0.05) == (800, 21)
    sketch = FastAMSSketch(0.25, 0.1)
    assert sketch.error_bound() == (0.25, pytest.approx(0.75**8.5))


@pytest.mark.parametrize("cls", [AMSSketch, FastAMSSketch])
def test_f2_within_epsilon_in_200_seeded_trials(cls):
    """At least a 1 - delta fraction of 200 seeded sketches estimate F2 within epsilon of the exact value."""
    stream = zipf_stream(20_000, seed=7)
    _, f2 = exact_moments(stream)
    errors = []
    for seed in range(200):
        sketch = cls(epsilon=0.5, delta=0.2, seed=seed)
        sketch.update(stream)
        errors.append(abs(sketch.estimate() / f2 - 1))
    assert np.mean(np.array(errors) <= sketch.epsilon) >= 1 - sketch.delta
    assert np.median(errors) < sketch.epsilon / 2  # the Chebyshev bound is loose


def test_hll_within_three_standard_errors_in_99_percent_of_200_trials():
    """At least 99% of 200 seeded HyperLogLogs estimate 5000 distinct items within 3 standard errors."""
    items = np.arange(5000, dtype=np.uint64).repeat(3)
    errors = []
    for seed in range(200):
        hll = HyperLogLog(8, seed=seed)
        hll.update(items)
        errors.append(abs(hll.estimate() / 5000 - 1))
    assert np.mean(np.array(errors) <= 3 * hll.relative_standard_error) >= 0.99


@pytest.mark.parametrize("n_distinct", [0, 1, 7, 300])
def test_hll_is_nearly_exact_for_few_items(n_distinct):
    """An empty sketch estimates 0, and a few distinct items are estimated within 0.5 of the truth."""
    hll = HyperLogLog(12, seed=0)
    hll.update(hash_items([f"item {i}" for i in range(n_distinct)] * 2))
    assert abs(hll.estimate() - n_distinct) <= 0.5 + 0.01 * n_distinct


def test_counts_equal_repeated_updates():
    """Updating with integer counts gives the same state as repeating each item that many times."""
    items = np.array([5, 9, 5, 11], dtype=np.uint64)
    counts = np.array([3, 1, 2, 4])
    a, b = FastAMSSketch(seed=2), FastAMSSketch(seed=2)
    a.update(items, counts)
    b.update(np.repeat(items, counts))
    assert a == b and a.n == 10


def test_deletions_cancel_insertions():
    """Negative counts delete: inserting then deleting the same items leaves zero counters and an estimate of 0."""
    sketch = AMSSketch.from_size(64, 5, seed=0)
    items = zipf_stream(1000, seed=1)
    sketch.update(items)
    sketch.update(items, counts=-1)
    assert not sketch.counters.any() and sketch.estimate() == 0.0 and sketch.n == 0


# ------------------------------------------------------------------------------------------------ merging


@pytest.mark.parametrize(
    "make", [lambda: AMSSketch(seed=4), lambda: FastAMSSketch(seed=4), lambda: HyperLogLog(seed=4)]
)
def test_merge_of_shards_equals_one_pass(make):
    """Sketching three shards separately and merging gives exactly the state of one pass over the stream."""
    stream = zipf_stream(30_000, seed=5)
    whole = make()
    whole.update(stream)
    shards = [make() for _ in range(3)]
    for shard, part in zip(shards, np.array_split(stream[::-1], 3), strict=True):
        shard.update(part)
    merged = shards[2].merge(shards[0]).merge(shards[1])
    assert merged == whole and merged.estimate() == whole.estimate()


@pytest.mark.parametrize("cls", [AMSSketch, FastAMSSketch, HyperLogLog])
def test_merge_refuses_a_different_seed(cls):
    """Sketches drawn with different seeds hash differently and refuse to merge."""
    with pytest.raises(ValueError, match="different `seed`: 0 != 1"):
        cls(seed=0).merge(cls(seed=1))


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (AMSSketch.from_size(64, 5), AMSSketch.from_size(32, 5), "different `copies`: 64 != 32"),
        (AMSSketch.from_size(64, 5), AMSSketch.from_size(64, 7), "different `groups`: 5 != 7"),
        (FastAMSSketch.from_size(64, 5), FastAMSSketch.from_size(128, 5), "different `width`: 64 != 128"),
        (FastAMSSketch.from_size(64, 5), FastAMSSketch.from_size(64, 3), "different `depth`: 5 != 3"),
        (HyperLogLog(10), HyperLogLog(12), "different `precision`: 10 != 12"),
        (AMSSketch.from_size(64, 5), FastAMSSketch.from_size(64, 5), "`other` must be a AMSSketch, got FastAMS"),
    ],
)
def test_merge_refuses_a_different_size(a, b, match):
    """Sketches of different sizes or kinds refuse to merge, naming the mismatch."""
    with pytest.raises(ValueError, match=match):
        a.merge(b)


# ------------------------------------------------------------------------------------------------ serialisation


@pytest.mark.parametrize(("cls", "max_kb"), [(AMSSketch, 10), (FastAMSSketch, 10), (HyperLogLog, 4.2)])
def test_serialisation_round_trip_is_exact_and_small(cls, max_kb):
    """`from_bytes(to_bytes())` restores the exact state, in a few KB for the default parameters."""
    sketch = cls(seed=9)
    sketch.update(zipf_stream(100_000, seed=2))
    data = sketch.to_bytes()
    restored = cls.from_bytes(data)
    assert restored == sketch and restored.estimate() == sketch.estimate()
    assert len(data) / 1024 < max_kb


def test_from_bytes_refuses_another_kind():
    """Bytes of one sketch kind do not load as another."""
    with pytest.raises(ValueError, match="`data` holds a HyperLogLog, not a AMSSketch"):
        AMSSketch.from_bytes(HyperLogLog().to_bytes())


def test_from_bytes_refuses_garbage():
    """Bytes that are not a serialised sketch raise."""
    with pytest.raises(ValueError, match="`data` is not a serialized hf-nuggets sketch"):
        HyperLogLog.from_bytes(b"not a sketch")


# ------------------------------------------------------------------------------------------------ diversity stats


def test_diversity_stats_match_exact_counts():
    """On a small text list: n is exact, F0 and F2 are within their bounds, derived figures are consistent."""
    stats = diversity_stats(TEXTS, n=2, seed=0)
    freq = Counter(g for t in TEXTS for g in word_ngrams(t, 2))
    n, f0, f2 = sum(freq.values()), len(freq), sum(v * v for v in freq.values())
    assert stats["ngram_order"] == 2 and stats["n"] == n
    assert abs(stats["f0"] / f0 - 1) <= 3 * stats["f0_relative_standard_error"]
    assert abs(stats["f2"] / f2 - 1) <= stats["f2_epsilon"]
    assert stats["repeat_rate"] == pytest.approx(stats["f2"] / n**2)
    assert stats["effective_distinct"] == pytest.approx(n**2 / stats["f2"])


def test_diversity_stats_of_no_text_is_zero():
    """No n-grams gives zero counts rather than a division error."""
    stats = diversity_stats(iter(["one"]), n=2)
    assert (stats["n"], stats["f0"], stats["f2"], stats["repeat_rate"], stats["effective_distinct"]) == (0, 0, 0, 0, 0)


# ------------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "0.1", True])
@pytest.mark.parametrize("name", ["epsilon", "delta"])
def test_bad_epsilon_or_delta_raises(name, value):
    """`epsilon` and `delta` outside (0, 1) raise, naming the argument and the value."""
    with pytest.raises(ValueError, match=rf"`{name}` must be a number in \(0, 1\), got {value!r}"):
        FastAMSSketch(**{name: value})


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: AMSSketch.from_size(0, 3), r"`copies` must be an integer in \[1, 2147483648\], got 0"),
        (lambda: AMSSketch.from_size(8, 0), "`groups` must be an integer >= 1, got 0"),
        (lambda: FastAMSSketch.from_size(2.5, 3), "`width` must be an integer in"),
        (lambda: HyperLogLog(3), r"`precision` must be an integer in \[4, 18\], got 3"),
        (lambda: HyperLogLog(seed=-1), "`seed` must be an integer >= 0, got -1"),
    ],
)
def test_bad_sizes_raise(build, match):
    """Sizes below 1 (or out of range) and negative seeds raise, naming the argument and the value."""
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("sketch", [AMSSketch(), FastAMSSketch(), HyperLogLog()])
def test_non_integer_hashes_raise(sketch):
    """Float or string arrays are refused as hashes, naming the dtype."""
    with pytest.raises(ValueError, match="`hashes` must be an array of integer hashes, got dtype float64"):
        sketch.update(np.array([1.5, 2.0]))


def test_bad_counts_raise():
    """Non-integer counts, or counts of another length, raise."""
    sketch = FastAMSSketch()
    with pytest.raises(ValueError, match="`counts` must be integers, got dtype float64"):
        sketch.update(np.array([1, 2]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"`counts` must have one entry per hash \(2\), got 3"):
        sketch.update(np.array([1, 2]), np.array([1, 2, 3]))
