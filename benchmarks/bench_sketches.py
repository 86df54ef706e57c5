"""Benchmark `hf_nuggets.algorithms.sketches` against exact counting on a Zipf-like stream of n-gram hashes.

Run from the repository root: `python benchmarks/bench_sketches.py` (add `--help` for sizes). Optional: `datasketches`
(Apache DataSketches) for its HyperLogLog beside ours at the same register memory.

Data: `--items` draws (default 10 million) from a Zipf law with exponent `--zipf` over `--vocab` n-gram types (rank r
has probability proportional to 1 / r**s, like word n-grams in text), each type mapped to a random-looking 64-bit
hash; the stream is fed in batches of `--batch` hashes. Measured, single process, wall time:

- updates per second of each sketch and of exact counting (`collections.Counter`; numpy sort + merge of uniques),
- memory: sketch state in RAM and serialised, vs the exact counters (Python objects, or 16 bytes a distinct item),
- relative error of F0 (HyperLogLog) and F2 (AMS, fast AMS) against the exact values,
- AMS vs fast AMS at the same memory: relative F2 error over `--trials` seeds on the first `--trial-items` of the
  stream and on a flatter Zipf stream (exponent `--flat-zipf`) of the same length,
- F0 error of our HyperLogLog and of `datasketches` HLL_8 with the same 2**p one-byte registers over `--trials`
  independent sets of distinct items.

Figures are printed as `name: value` lines.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hf_nuggets.algorithms._hashing import mix64  # noqa: E402
from hf_nuggets.algorithms.sketches import AMSSketch, FastAMSSketch, HyperLogLog, hash_items  # noqa: E402


def zipf_hashes(n_items: int, vocab: int, s: float, seed: int) -> np.ndarray:
    """`n_items` hashes of types drawn with P(rank r) proportional to 1 / r**s over `vocab` types."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(1.0 / np.arange(1, vocab + 1, dtype=np.float64) ** s)
    cdf /= cdf[-1]
    ranks = np.searchsorted(cdf, rng.random(n_items), side="right").astype(np.uint64)
    return mix64(ranks, 0x9E3779B97F4A7C15)


def batches(stream: np.ndarray, size: int):
    for start in range(0, stream.size, size):
        yield stream[start : start + size]


def timed_updates(sketch, stream: np.ndarray, batch: int) -> float:
    start = time.perf_counter()
    for b in batches(stream, batch):
        sketch.update(b)
    return time.perf_counter() - start


def counter_bytes(counter: Counter) -> int:
    """Bytes of a Counter of ints: the hash table plus each key and each count that is not a cached small int."""
    return (
        sys.getsizeof(counter)
        + sum(sys.getsizeof(k) for k in counter)
        + sum(sys.getsizeof(v) for v in counter.values() if v > 256)
    )


def exact_numpy(stream: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct hashes and their counts: per batch np.unique, merged into the running sorted arrays."""
    keys, counts = np.zeros(0, np.uint64), np.zeros(0, np.int64)
    for b in batches(stream, batch):
        u, c = np.unique(b, return_counts=True)
        keys, inverse = np.unique(np.concatenate([keys, u]), return_inverse=True)
        counts = np.bincount(inverse, np.concatenate([counts, c]), minlength=keys.size).astype(np.int64)
    return keys, counts


def rel(estimate: float, exact: float) -> float:
    return estimate / exact - 1


def same_memory(label: str, short: np.ndarray, k: int, g: int, trials: int, batch: int) -> None:
    """F2 errors over `trials` seeds of AMS (k x g) and fast AMS shapes with the same k * g counters."""
    _, c = np.unique(short, return_counts=True)
    f2 = float((c.astype(np.float64) ** 2).sum())
    print(f"same_memory_{label}_distinct: {c.size}")
    print(f"same_memory_{label}_effective_distinct: {short.size**2 / f2:.1f}")
    shapes = [(AMSSketch, k, g), (FastAMSSketch, k, g)] + [(FastAMSSketch, (k * g) // d, d) for d in (5, 3)]
    for cls, cols, rows in shapes:
        errors, seconds = [], 0.0
        for seed in range(trials):
            sketch = cls.from_size(cols, rows, seed=seed)
            seconds += timed_updates(sketch, short, batch)
            errors.append(abs(rel(sketch.estimate(), f2)))
        name = f"same_memory_{label}_{cls.__name__}_{cols}x{rows}"
        print(f"{name}_median_abs_rel_error: {np.median(errors):.4f}")
        print(f"{name}_p90_abs_rel_error: {np.quantile(errors, 0.9):.4f}")
        print(f"{name}_rms_rel_error: {math.sqrt(np.mean(np.square(errors))):.4f}")
        print(f"{name}_updates_per_s: {short.size * trials / seconds:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--vocab", type=int, default=1 << 23)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=1_000_000)
    parser.add_argument("--epsilon", type=float, default=0.25)
    parser.add_argument("--delta", type=float, default=0.1)
    parser.add_argument("--precision", type=int, default=12)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--trial-items", type=int, default=100_000)
    parser.add_argument("--flat-zipf", type=float, default=0.6, help="exponent of the flatter same-memory stream")
    args = parser.parse_args()
    t_all = time.perf_counter()

    stream = zipf_hashes(args.items, args.vocab, args.zipf, seed=0)
    print(f"stream_items: {stream.size}")
    print(f"stream_zipf_exponent: {args.zipf}")
    print(f"stream_vocab: {args.vocab}")

    strings = [f"ngram {i} of a text" for i in range(200_000)]
    start = time.perf_counter()
    hash_items(strings)
    print(f"hash_items_strings_per_s: {len(strings) / (time.perf_counter() - start):.0f}")

    # ---- exact counting
    start = time.perf_counter()
    counter: Counter = Counter()
    for b in batches(stream, args.batch):
        counter.update(b.tolist())
    t_counter = time.perf_counter() - start
    exact_f0 = len(counter)
    exact_f2 = sum(v * v for v in counter.values())
    print(f"exact_counter_updates_per_s: {stream.size / t_counter:.0f}")
    print(f"exact_counter_bytes: {counter_bytes(counter)}")
    del counter
    start = time.perf_counter()
    keys, counts = exact_numpy(stream, args.batch)
    t_numpy = time.perf_counter() - start
    assert keys.size == exact_f0 and int((counts.astype(object) ** 2).sum()) == exact_f2
    print(f"exact_numpy_updates_per_s: {stream.size / t_numpy:.0f}")
    print(f"exact_numpy_bytes: {keys.nbytes + counts.nbytes}")
    print(f"exact_f0: {exact_f0}")
    print(f"exact_f2: {exact_f2}")
    print(f"exact_repeat_rate: {exact_f2 / stream.size**2:.6g}")
    print(f"exact_effective_distinct: {stream.size**2 / exact_f2:.1f}")

    # ---- sketches on the full stream
    hll = HyperLogLog(args.precision, seed=0)
    t = timed_updates(hll, stream, args.batch)
    print(f"hll_p{args.precision}_updates_per_s: {stream.size / t:.0f}")
    print(f"hll_p{args.precision}_bytes: {hll.nbytes}")
    print(f"hll_p{args.precision}_serialized_bytes: {len(hll.to_bytes())}")
    print(f"hll_p{args.precision}_f0_rel_error: {rel(hll.estimate(), exact_f0):+.4f}")
    print(f"hll_p{args.precision}_stated_rse: {hll.relative_standard_error:.4f}")
    for cls in (FastAMSSketch, AMSSketch):
        sketch = cls(args.epsilon, args.delta, seed=0)
        t = timed_updates(sketch, stream, args.batch)
        name = f"{cls.__name__}_{'x'.join(map(str, sketch.counters.shape[::-1]))}"
        print(f"{name}_updates_per_s: {stream.size / t:.0f}")
        print(f"{name}_bytes: {sketch.nbytes}")
        print(f"{name}_serialized_bytes: {len(sketch.to_bytes())}")
        print(f"{name}_f2_rel_error: {rel(sketch.estimate(), exact_f2):+.4f}")
        print(f"{name}_stated_epsilon_delta: ({sketch.epsilon:.3f}, {sketch.delta:.3f})")

    # ---- AMS vs fast AMS at the same memory (same number of int64 counters), over seeds
    k, g = AMSSketch(args.epsilon, args.delta).counters.shape[::-1]
    print(f"same_memory_counters: {k * g}")
    print(f"same_memory_stream_items: {args.trial_items}")
    flat = zipf_hashes(args.trial_items, args.vocab, args.flat_zipf, seed=1)
    for label, short in ((f"s{args.zipf}", stream[: args.trial_items]), (f"s{args.flat_zipf}", flat)):
        same_memory(label, short, k, g, args.trials, args.batch)

    # ---- our HyperLogLog beside datasketches HLL_8 (2**p one-byte registers each)
    try:
        import datasketches
    except ImportError:
        datasketches = None
        print("datasketches: not installed")
    n_distinct = 200_000
    ours, theirs, t_ours, t_theirs = [], [], 0.0, 0.0
    for trial in range(args.trials if datasketches is not None else 0):
        items = np.random.default_rng(1000 + trial).integers(0, 2**63, size=n_distinct, dtype=np.int64)
        hll = HyperLogLog(args.precision, seed=trial)
        start = time.perf_counter()
        hll.update(items)
        t_ours += time.perf_counter() - start
        ours.append(rel(hll.estimate(), n_distinct))
        values = items.tolist()
        ds = datasketches.hll_sketch(args.precision, datasketches.tgt_hll_type.HLL_8)
        start = time.perf_counter()
        for v in values:
            ds.update(v)
        t_theirs += time.perf_counter() - start
        theirs.append(rel(ds.get_estimate(), n_distinct))
    if ours:
        print(f"hll_compare_distinct_items: {n_distinct}")
        print(f"hll_compare_trials: {len(ours)}")
        print(f"ours_hll_p{args.precision}_rms_rel_error: {math.sqrt(np.mean(np.square(ours))):.4f}")
        print(f"ours_hll_p{args.precision}_mean_rel_error: {np.mean(ours):+.4f}")
        print(f"ours_hll_p{args.precision}_updates_per_s: {n_distinct * len(ours) / t_ours:.0f}")
        print(f"datasketches_hll8_lgk{args.precision}_rms_rel_error: {math.sqrt(np.mean(np.square(theirs))):.4f}")
        print(f"datasketches_hll8_lgk{args.precision}_mean_rel_error: {np.mean(theirs):+.4f}")
        print(f"datasketches_hll8_lgk{args.precision}_updates_per_s: {n_distinct * len(theirs) / t_theirs:.0f}")
        ds = datasketches.hll_sketch(args.precision, datasketches.tgt_hll_type.HLL_8)
        for v in stream.view(np.int64).tolist():
            ds.update(v)
        print(f"datasketches_hll8_lgk{args.precision}_serialized_bytes: {len(ds.serialize_compact())}")
        print(
            f"datasketches_hll8_lgk{args.precision}_f0_rel_error_full_stream: {rel(ds.get_estimate(), exact_f0):+.4f}"
        )
    print(f"total_seconds: {time.perf_counter() - t_all:.1f}")


if __name__ == "__main__":
    main()
