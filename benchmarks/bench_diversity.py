"""The diverse top (`select_top(..., min_distance=...)`): threshold, recall of the LSH walk vs exact search, and time.

1. Data: the shipped sample (300 rows, golden scores of `benchmarks/data/sample_scores.npz`) plus 60 planted
   paraphrases (`benchmarks/data/paraphrases.jsonl`: 30 rows x 2, written by hand), each with its original's
   input, output, score and gain, so each ranks right after its original: the case the rule is for.
2. Threshold: cosine distances (all-MiniLM-L6-v2 on instruction + input) of each paraphrase to its original, and of
   each sample row to its nearest other sample row. The stated rule for a suggested `min_distance`: the smallest
   multiple of 0.05 at or above the 90th percentile of the paraphrase distances; printed with the share of sample
   rows whose nearest neighbour lies closer (rows a walk over the whole sample could skip).
3. Recall: the LSH walk over the whole ranking (top 100%), for many hyperplane seeds; each row it visits is checked
   by brute force against the rows it had kept before that row. Recall = rows skipped / rows that had a kept row
   closer than the threshold. Also the rows skipped in the top 5/10/25/100%, and agreement with the exact walk.
4. Time: LSH walk vs exact walk (blocked matrix products), in the same run, on the sample and on clustered
   synthetic vectors (384 dims, a planted near copy for a tenth of the rows) at larger sizes, top 50%.

    python benchmarks/bench_diversity.py                    # sample + paraphrases, synthetic 10k and 40k rows
    python benchmarks/bench_diversity.py --sizes 10000 100000 --seeds 50
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from hf_nuggets import load_sample_dataset
from hf_nuggets.algorithms.redundancy import redundancy_walk, walk_recall
from hf_nuggets.selection import n_selected, rank_order
from hf_nuggets.taskset.embeddings import embed_texts
from hf_nuggets.taskset.refine import task_text

DATA = Path(__file__).resolve().parent / "data"


def machine() -> str:
    import torch

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load}, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads"
    )


def sample_with_paraphrases():
    """Texts, scores, gains, and the original of each planted paraphrase (`-1` for sample rows)."""
    from hf_nuggets import Example

    sample = load_sample_dataset()
    scores = np.load(DATA / "sample_scores.npz")
    planted = [json.loads(line) for line in (DATA / "paraphrases.jsonl").read_text().splitlines() if line]
    texts = [task_text(Example(r["instruction"].strip(), r["input"].strip(), "")) for r in sample]
    original = [-1] * len(texts)
    for p in planted:
        texts.append(task_text(Example(p["instruction"].strip(), sample[p["row"]]["input"].strip(), "")))
        original.append(p["row"])
    original = np.array(original)
    from_row = np.where(original >= 0, original, np.arange(len(original)))
    return texts, scores["golden_score"][from_row], scores["nuggets_gain"][from_row], original


def audit(X: np.ndarray, order: np.ndarray, result, min_distance: float, block: int = 2048) -> dict:
    """Brute-force truth for the LSH walk's decisions: did a row kept before each visited row lie closer?"""
    walk = order[: result.visited]  # the walk visits the ranking in order, without gaps
    kept_mask = np.isin(walk, result.kept)
    kept_rows = walk[kept_mask]
    kept_rank = np.cumsum(kept_mask) - kept_mask  # rows kept before each visited row
    threshold = np.float32(1 - min_distance)
    truth = np.zeros(walk.size, dtype=bool)
    for b0 in range(0, walk.size, block):
        rows = walk[b0 : b0 + block]
        upto = int(kept_rank[b0 : b0 + block].max())
        if upto == 0:
            continue
        S = X[rows] @ X[kept_rows[:upto]].T
        S[np.arange(S.shape[1])[None, :] >= kept_rank[b0 : b0 + block, None]] = -np.inf
        truth[b0 : b0 + block] = (S > threshold).any(axis=1)
    skipped = ~kept_mask
    assert not (skipped & ~truth).any(), "the LSH walk skipped a row with no kept row closer than the threshold"
    return {"needed": int(truth.sum()), "found": int(skipped.sum())}


def sample_section(seeds: int) -> None:
    texts, golden, gain, original = sample_with_paraphrases()
    t0 = time.perf_counter()
    X = embed_texts(texts)
    embed_s = time.perf_counter() - t0
    n = len(texts)
    print(
        f"rows: {n} (300 sample rows + {int((original >= 0).sum())} planted paraphrases); embedded in {embed_s:.1f} s"
    )

    para = np.flatnonzero(original >= 0)
    d_para = 1 - np.einsum("ij,ij->i", X[para], X[original[para]])
    base = X[:300] @ X[:300].T
    np.fill_diagonal(base, -np.inf)
    d_nn = 1 - base.max(axis=1)
    qs = (0.1, 0.5, 0.9, 1.0)
    print("paraphrase -> original distance: " + ", ".join(f"q{q * 100:g} {np.quantile(d_para, q):.3f}" for q in qs))
    print(
        "sample row -> nearest sample row: "
        + ", ".join(f"q{q * 100:g} {np.quantile(d_nn, q):.3f}" for q in (0.0, 0.01, 0.05, 0.1, 0.5))
    )
    suggested = math.ceil(np.quantile(d_para, 0.9) / 0.05 - 1e-9) * 0.05
    print(
        f"suggested min_distance (rule: 90th percentile of paraphrase distances, up to a multiple of 0.05): "
        f"{suggested:.2f}; paraphrases below it: {(d_para < suggested).mean():.1%}; sample rows with a nearest "
        f"neighbour below it: {(d_nn < suggested).mean():.1%}"
    )

    order = rank_order(golden, gain)
    for d in sorted({0.1, round(suggested, 2), 0.2}):
        print(f"\nmin_distance {d:g}")
        for percent in (5, 10, 25, 100):
            want = n_selected(n, percent)
            exact = redundancy_walk(order, X, want, d, method="exact")
            lsh = redundancy_walk(order, X, want, d)
            planted = int((original[exact.skipped] >= 0).sum())
            print(
                f"  top {percent:>3}% ({want} rows): exact walk skips {exact.skipped.size} ({planted} planted "
                f"paraphrases), LSH walk ({lsh.params.k} bits x {lsh.params.l} tables, S-curve at the threshold "
                f"{walk_recall(d, lsh.params.k, lsh.params.l):.3f}) skips {lsh.skipped.size}; same rows kept: "
                f"{np.intersect1d(exact.kept, lsh.kept).size}/{exact.kept.size}"
            )
        needed = found = same = 0
        t_lsh = t_exact = 0.0
        for seed in range(seeds):
            t = time.perf_counter()
            lsh = redundancy_walk(order, X, n, d, seed=seed)
            t_lsh += time.perf_counter() - t
            got = audit(X, order, lsh, d)
            needed, found = needed + got["needed"], found + got["found"]
            t = time.perf_counter()
            exact = redundancy_walk(order, X, n, d, method="exact")
            t_exact += time.perf_counter() - t
            same += int(np.array_equal(lsh.kept, exact.kept))
        print(
            f"  whole ranking, {seeds} seeds: recall {found}/{needed} = {found / max(needed, 1):.3f} (rows skipped / "
            f"rows with a kept row closer, by brute force); walk identical to the exact one for {same}/{seeds} seeds; "
            f"time per walk LSH {t_lsh / seeds * 1e3:.1f} ms, exact {t_exact / seeds * 1e3:.1f} ms"
        )


def synthetic(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Clustered unit vectors: a cluster per 50 rows (members at cosine distance ~0.45), and for a tenth of the rows a
    near copy of another row, at cosine distances spread from 0.003 to 0.15 (across the threshold)."""
    centres = rng.standard_normal((max(1, n // 50), dim)).astype(np.float32)
    X = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, dim)).astype(np.float32)
    rows = rng.permutation(n)
    copies, sources = rows[: n // 10], rows[n // 10 : 2 * (n // 10)]
    scale = rng.uniform(0.1, 0.8, (copies.size, 1)).astype(np.float32)  # cosine distances from 0.003 to 0.15
    X[copies] = X[sources] + scale * rng.standard_normal((copies.size, dim)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def scale_section(sizes: list[int], min_distance: float, rounds: int) -> None:
    rng = np.random.default_rng(0)
    print(
        f"min_distance {min_distance:g}, top 50%, 384 dims, rows in random rank order; LSH and exact walks "
        f"interleaved, {rounds} round(s), best time of each"
    )
    for n in sizes:
        X = synthetic(n, 384, rng)
        order = rng.permutation(n)
        want = n_selected(n, 50)
        times = {"lsh": [], "exact": []}
        for _ in range(rounds):
            for method in times:
                t = time.perf_counter()
                result = redundancy_walk(order, X, want, min_distance, method=method)
                times[method].append(time.perf_counter() - t)
                if method == "lsh":
                    lsh = result
                else:
                    exact = result
        t_lsh, t_exact = min(times["lsh"]), min(times["exact"])
        got = audit(X, order, lsh, min_distance)
        lsh_per_row = lsh.n_distance_computations / max(lsh.visited, 1)
        exact_per_row = exact.n_distance_computations / max(exact.visited, 1)
        recall = got["found"] / max(got["needed"], 1)
        print(
            f"  n={n}: LSH ({lsh.params.k} bits x {lsh.params.l} tables) {t_lsh:.2f} s ({lsh_per_row:.0f} "
            f"similarities per row), exact {t_exact:.2f} s ({exact_per_row:.0f} per row), "
            f"speed-up x{t_exact / t_lsh:.1f}; rows skipped LSH {lsh.skipped.size}, exact {exact.skipped.size}; "
            f"recall {got['found']}/{got['needed']} = {recall:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=50, help="LSH seeds for the recall on the sample.")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 40_000], help="Synthetic sizes.")
    parser.add_argument("--min_distance", type=float, default=0.1, help="Threshold of the synthetic runs.")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved timing rounds of the synthetic runs.")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print("== sample + planted paraphrases (all-MiniLM-L6-v2 on instruction + input) ==")
    sample_section(args.seeds)
    if args.sizes:
        print("\n== synthetic scale ==")
        scale_section(args.sizes, args.min_distance, args.rounds)


if __name__ == "__main__":
    main()
