"""LSH and k-center benchmarks on clustered synthetic data: our implementations vs exact search, faiss, datasketch.

Prints plain `name: value` lines:

- SimHash LSH vs exact cosine search (N=50,000 x 384, clustered): recall@10, distance computations and their ratio,
  wall times; faiss `IndexFlatIP` (exact) and `IndexHNSWFlat` beside it when faiss is importable.
- MinHash LSH vs `datasketch.MinHashLSH` on texts with planted near-duplicates: recall and docs/s of each (datasketch
  part skipped when it is not importable).
- SimHash kNN graph (20,000 points, 20 neighbours, default parameters): time and recall against brute force.
- k-center greedy on 50,000 x 384 float32, k=1,000: wall time.

Times are `wall (cpu process time)` in seconds: on a shared machine, CPU time is less disturbed by other jobs.

    python benchmarks/algorithms_lsh.py
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from hf_nuggets.algorithms.kcenter import kcenter_greedy
from hf_nuggets.algorithms.lsh import SimHashLSH, knn_graph, s_curve, simhash_collision_probability
from hf_nuggets.algorithms.minhash import minhash_bands_for_recall, near_duplicates


class Timer:
    """Wall and CPU seconds of a block (the machine may be shared: CPU time is less disturbed by other jobs)."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:.3f} (cpu {self.cpu:.3f})"


def clustered_embeddings(n: int, dim: int = 384, *, n_topics: int = 100, n_clusters: int = 1000, seed: int = 0):
    """Gaussian clusters around topic directions, with per-point noise scales (not uniform noise)."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((n_topics, dim), dtype=np.float32)
    centers = topics[rng.integers(0, n_topics, n_clusters)]
    centers += 0.9 * rng.standard_normal((n_clusters, dim), dtype=np.float32)
    labels = rng.integers(0, n_clusters, n)
    scale = rng.uniform(0.4, 0.9, n).astype(np.float32)[:, None]
    return centers[labels] + scale * rng.standard_normal((n, dim), dtype=np.float32)


def planted_texts(n_docs: int, n_planted: int, *, seed: int = 0, edit_rate: float = 0.03):
    """Zipfian word documents, the last `n_planted` being edited copies of earlier ones. Returns (texts, pairs)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = np.array(["".join(rng.choice(letters, rng.integers(2, 10))) for _ in range(20_000)])
    p = 1.0 / np.arange(1, vocab.size + 1) ** 1.05
    p /= p.sum()
    base = n_docs - n_planted
    docs = [list(vocab[rng.choice(vocab.size, rng.integers(60, 160), p=p)]) for _ in range(base)]
    sources = rng.choice(base, n_planted, replace=False)
    for src in sources:
        words = list(docs[src])
        for _ in range(max(1, rng.binomial(len(words), edit_rate))):
            op, pos = rng.integers(3), rng.integers(len(words))
            if op == 0:
                words[pos] = vocab[rng.choice(vocab.size, p=p)]
            elif op == 1 and len(words) > 2:
                del words[pos]
            else:
                words.insert(pos, vocab[rng.choice(vocab.size, p=p)])
        docs.append(words)
    return [" ".join(d) for d in docs], np.stack([sources, np.arange(base, n_docs)], 1)


def char_shingles(text: str, n: int = 5) -> set[str]:
    return {text[i : i + n] for i in range(max(len(text) - n + 1, 1))}


def bench_simhash(n: int = 50_000, n_queries: int = 1_000, dim: int = 384, k: int = 10) -> None:
    X = clustered_embeddings(n + n_queries, dim)
    Q, X = X[:n_queries], X[n_queries:]
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)

    with Timer() as exact:
        S = Qn @ Xn.T
        true = np.argpartition(-S, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(S, true, axis=1).min(axis=1)
    del S
    print(f"simhash.data: {n} x {dim} float32, 100 topics, 1000 clusters, {n_queries} held-out queries")
    print(f"simhash.true_10th_neighbour_cosine_median: {np.median(kth):.3f}")

    # Parameters from a small sweep on this data: 14 bits x 32 tables, probing 2 extra buckets per table.
    bits, tables, n_probes = 14, 32, 2
    predicted = s_curve(simhash_collision_probability(float(np.median(kth))), bits, tables)
    print(f"simhash.params: k={bits} bits/table, l={tables} tables, n_probes={n_probes}")
    print(f"simhash.s_curve_at_median_10th_cosine_without_probes: {predicted:.3f}")
    with Timer() as build:
        index = SimHashLSH(dim, n_bits_per_table=bits, n_tables=tables, seed=0)
        index.add(X)
    with Timer() as query:
        res = index.query(Q, k, n_probes=n_probes)
    recall = np.mean([np.intersect1d(a, b).size / k for a, b in zip(res.indices, true, strict=True)])
    per_query = res.n_candidates.mean()
    print(f"simhash.recall_at_10: {recall:.4f}")
    print(f"simhash.distance_computations_per_query: {per_query:.0f} (exact: {n})")
    print(f"simhash.distance_computation_ratio: {n / per_query:.1f}x fewer")
    print(f"simhash.build_s: {build}")
    print(f"simhash.query_s: {query} ({n_queries} queries)")
    print(f"exact_numpy.query_s: {exact} ({n_queries} queries, one BLAS matrix product + argpartition)")

    try:
        import faiss
    except ImportError:
        print("faiss: not installed, skipped")
        return
    flat = faiss.IndexFlatIP(dim)
    flat.add(Xn)
    with Timer() as flat_query:
        flat.search(Qn, k)
    print(f"faiss.flat_ip.query_s: {flat_query} (exact)")
    with Timer() as hnsw_build:
        hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efSearch = 64
        hnsw.add(Xn)
    with Timer() as hnsw_query:
        _, found = hnsw.search(Qn, k)
    recall = np.mean([np.intersect1d(a, b).size / k for a, b in zip(found, true, strict=True)])
    print(f"faiss.hnsw.build_s: {hnsw_build}")
    print(f"faiss.hnsw.query_s: {hnsw_query} (M=32, efSearch=64)")
    print(f"faiss.hnsw.recall_at_10: {recall:.4f}")


def bench_knn_graph(n: int = 20_000, dim: int = 384, n_neighbors: int = 20, n_check: int = 500) -> None:
    X = clustered_embeddings(n, dim, seed=2)
    with Timer() as build:
        rows, cols, _ = knn_graph(X, n_neighbors=n_neighbors)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    check = np.random.default_rng(0).choice(n, n_check, replace=False)
    S = Xn[check] @ Xn.T
    S[np.arange(n_check), check] = -np.inf
    true = np.argpartition(-S, n_neighbors - 1, axis=1)[:, :n_neighbors]
    lo, hi = np.searchsorted(rows, check), np.searchsorted(rows, check, side="right")
    recall = np.mean([np.intersect1d(cols[a:b], t).size / n_neighbors for a, b, t in zip(lo, hi, true, strict=True)])
    print(f"knn_graph.s: {build} (n={n}, n_neighbors={n_neighbors}, defaults)")
    print(f"knn_graph.recall_at_{n_neighbors}: {recall:.4f} ({n_check} points checked by brute force)")


def bench_minhash(n_docs: int = 10_000, n_planted: int = 1_000, threshold: float = 0.8, num_perm: int = 128) -> None:
    texts, planted = planted_texts(n_docs, n_planted)
    truth = np.array([_jaccard(char_shingles(texts[i]), char_shingles(texts[j])) for i, j in planted])
    positives = planted[truth >= threshold]
    print(f"minhash.data: {n_docs} docs (mean {np.mean([len(t) for t in texts]):.0f} chars), {n_planted} planted")
    print(f"minhash.planted_pairs_with_jaccard_ge_{threshold}: {len(positives)} (char 5-gram shingles)")

    def recall_of(pairs: set[tuple[int, int]]) -> float:
        return float(np.mean([(int(i), int(j)) in pairs for i, j in positives]))

    bands = minhash_bands_for_recall(threshold, num_perm)
    with Timer() as ours_t:
        ours = near_duplicates(texts, threshold=threshold, num_perm=num_perm)
    print(f"minhash.ours.bands: b={bands[0]} r={bands[1]}")
    print(f"minhash.ours.recall: {recall_of(set(map(tuple, ours.pairs.tolist()))):.4f}")
    print(f"minhash.ours.candidates_verified: {ours.n_candidates}")
    print(f"minhash.ours.s: {ours_t}")
    print(f"minhash.ours.docs_per_s: {n_docs / ours_t.wall:.0f} (cpu-time based {n_docs / ours_t.cpu:.0f})")

    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        print("datasketch: not installed, skipped")
        return
    with Timer() as ds_t:
        hashes = MinHash.bulk([[s.encode() for s in char_shingles(t)] for t in texts], num_perm=num_perm)
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        with lsh.insertion_session() as session:
            for i, m in enumerate(hashes):
                session.insert(i, m)
        found = set()
        for i, m in enumerate(hashes):
            found.update((min(i, j), max(i, j)) for j in lsh.query(m) if j != i)
    print(f"minhash.datasketch.bands: b={lsh.b} r={lsh.r}")
    print(f"minhash.datasketch.recall: {recall_of(found):.4f} (unverified candidates)")
    print(f"minhash.datasketch.candidates: {len(found)}")
    print(f"minhash.datasketch.s: {ds_t} (shingling + MinHash.bulk + insert + query)")
    print(f"minhash.datasketch.docs_per_s: {n_docs / ds_t.wall:.0f} (cpu-time based {n_docs / ds_t.cpu:.0f})")
    same = near_duplicates(texts, threshold=threshold, num_perm=num_perm, n_bands=lsh.b, rows_per_band=lsh.r)
    print(f"minhash.ours_with_datasketch_bands.recall: {recall_of(set(map(tuple, same.pairs.tolist()))):.4f}")


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def bench_kcenter(n: int = 50_000, dim: int = 384, k: int = 1_000) -> None:
    X = clustered_embeddings(n, dim, seed=1)
    for metric in ("cosine", "euclidean"):
        with Timer() as t:
            _, radius = kcenter_greedy(X, k, metric=metric, return_radius=True)
        print(f"kcenter.{metric}.s: {t} (n={n}, dim={dim}, k={k}, radius {radius:.4f})")


def main() -> None:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, load average {load}")
    bench_simhash()
    bench_knn_graph()
    bench_minhash()
    bench_kcenter()


if __name__ == "__main__":
    main()
