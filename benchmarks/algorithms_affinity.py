"""Benchmark `hf_nuggets.algorithms.affinity`: dense fast mode vs scikit-learn, and the sparse mode on a kNN graph.

Run from the repository root: `python benchmarks/algorithms_affinity.py` (add `--help` for sizes). Needs scikit-learn.

Data: Gaussian blobs in 32 dimensions; similarity = minus the squared Euclidean distance. Every measured run is a
fresh subprocess that loads its input from disk, then measures only the clustering call: wall time, peak RSS above
the RSS right after loading (the kernel's peak counter is reset through /proc/self/clear_refs), and in a second
subprocess the tracemalloc peak (numpy reports its buffers to tracemalloc). Figures are printed as `name: value`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hf_nuggets.algorithms.two_stage_affinity import CONVERGENCE_ITER, LOCAL_DAMPING, MAX_ITER  # noqa: E402


def blobs(n: int, dim: int, n_centers: int, seed: int, return_truth: bool = False):
    """`n` points around `n_centers` random centers (spread 6), unit Gaussian noise, float32 (and each point's
    center with `return_truth`)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(n_centers, dim))
    truth = rng.integers(n_centers, size=n)
    X = (centers[truth] + rng.normal(size=(n, dim))).astype(np.float32)
    return (X, truth) if return_truth else X


def neg_sq_dist(X: np.ndarray):
    """Similarity callable for two-stage AP: minus squared distances between points `a` and points `b`."""
    X = X.astype(np.float64)
    sq = (X**2).sum(axis=1)

    def similarity(a, b):
        return -np.maximum(sq[a][:, None] + sq[b][None, :] - 2 * X[a] @ X[b].T, 0)

    return similarity


def knn_graph(X: np.ndarray, k: int, chunk: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (self excluded) by chunked brute force; similarity = -squared distance.

    Per chunk of rows, the k-th smallest distance to a random sample of columns bounds the true k-th smallest
    distance from above, so only the (few) columns under that bound need sorting: the result is exact.
    """
    n = X.shape[0]
    sq = (X.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    sample = np.random.default_rng(seed).choice(n, size=min(n, max(16 * k + 1, n // 8)), replace=False)
    rows, cols, sims = (np.empty(n * k, dtype=dt) for dt in (np.int64, np.int64, np.float64))
    Xt = np.ascontiguousarray(X.T)
    buf, below = np.empty((chunk, n), dtype=np.float32), np.empty((chunk, n), dtype=bool)
    for r0 in range(0, n, chunk):
        r1 = min(r0 + chunk, n)
        d = np.matmul(X[r0:r1], Xt, out=buf[: r1 - r0])
        d *= -2
        d += sq[r0:r1, None]
        d += sq[None, :]
        d[np.arange(r1 - r0), np.arange(r0, r1)] = np.inf
        bound = np.partition(d[:, sample], k - 1, axis=1)[:, k - 1]
        r, c = np.nonzero(np.less_equal(d, bound[:, None], out=below[: r1 - r0]))
        dist = d[r, c]
        order = np.lexsort((c, dist, r))
        r, c, dist = r[order], c[order], dist[order]
        first = np.searchsorted(r, np.arange(r1 - r0))
        keep = (first[:, None] + np.arange(k)).ravel()
        rows[r0 * k : r1 * k] = r0 + r[keep]
        cols[r0 * k : r1 * k] = c[keep]
        sims[r0 * k : r1 * k] = -np.maximum(dist[keep], 0)
    return rows, cols, sims


# ------------------------------------------------------------------------------------------------ subprocess side


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise KeyError(field)


def rss_mark() -> int:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS and return that RSS, in KiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS:")


def peak_rss_mib(mark: int) -> float:
    """Peak RSS since `rss_mark()` returned `mark`, above it, in MiB."""
    return (_status_kib("VmHWM:") - mark) / 1024


def _worker(method: str, inp: str, out: str, trace: bool, params: dict) -> None:
    sys.path.insert(0, str(REPO))
    import tracemalloc

    from hf_nuggets.algorithms.affinity import affinity_propagation, sparse_affinity_propagation
    from hf_nuggets.algorithms.two_stage_affinity import find_preference_for_k_two_stage

    data = np.load(inp)
    arrays = {key: data[key] for key in data.files}
    warnings.simplefilter("ignore")
    if method == "sklearn":
        from sklearn.cluster import AffinityPropagation
        from sklearn.exceptions import ConvergenceWarning

        def call():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est = AffinityPropagation(affinity="precomputed", random_state=0, **params).fit(arrays["S"])
            converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
            return est.labels_, np.asarray(est.cluster_centers_indices_), est.n_iter_, converged
    elif method == "fast":

        def call():
            r = affinity_propagation(arrays["S"], mode="fast", random_state=0, **params)
            return r.labels, r.cluster_centers_indices, r.n_iter, r.converged
    elif method == "sparse":

        def call():
            r = sparse_affinity_propagation(
                arrays["rows"], arrays["cols"], arrays["sims"], int(arrays["n"]), random_state=0, **params
            )
            return r.labels, r.cluster_centers_indices, r.n_iter, r.converged
    elif method == "local":  # stage 1 of the two stages: F&D's defaults, the smallest edge as preference

        def call():
            r = sparse_affinity_propagation(
                arrays["rows"], arrays["cols"], arrays["sims"], int(arrays["n"]), random_state=0,
                preference=float(arrays["sims"].min()), **params,
            )  # fmt: skip
            return r.labels, r.cluster_centers_indices, r.n_iter, r.converged
    else:  # two stages, asking for k exemplars

        def call():
            r = find_preference_for_k_two_stage(
                arrays["rows"], arrays["cols"], arrays["sims"], int(arrays["n"]), neg_sq_dist(arrays["X"]),
                int(arrays["k"]), random_state=0,
            )  # fmt: skip
            return r.labels, r.cluster_centers_indices, r.local_n_iter, r.local_converged

    base = rss_mark()
    if trace:
        tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    labels, centers, n_iter, converged = call()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    result = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rss_peak_mib": peak_rss_mib(base),
        "n_iter": int(n_iter),
    }
    if trace:
        result["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    result.update(converged=bool(converged), n_clusters=int(len(centers)))
    np.save(out + ".labels.npy", labels)
    Path(out).write_text(json.dumps(result))


def _measure(method: str, inp: str, params: dict, workdir: str) -> dict:
    """Run `method` twice in fresh subprocesses: timing + RSS, then tracemalloc."""
    results = []
    for trace in (False, True):
        out = os.path.join(workdir, f"{method}-{int(trace)}.json")
        cmd = [sys.executable, __file__, "--worker", method, inp, out, str(int(trace)), json.dumps(params)]
        subprocess.run(cmd, check=True)
        results.append(json.loads(Path(out).read_text()))
    result = results[0]
    result["tracemalloc_peak_mib"] = results[1]["tracemalloc_peak_mib"]
    result["labels"] = np.load(os.path.join(workdir, f"{method}-0.json.labels.npy"))
    return result


def _report(prefix: str, r: dict) -> None:
    print(f"{prefix}_seconds: {r['seconds']:.2f}")
    print(f"{prefix}_cpu_seconds: {r['cpu_seconds']:.2f}")
    print(f"{prefix}_peak_rss_mib: {r['rss_peak_mib']:.1f}")
    print(f"{prefix}_peak_tracemalloc_mib: {r['tracemalloc_peak_mib']:.1f}")
    print(f"{prefix}_n_iter: {r['n_iter']}")
    print(f"{prefix}_converged: {r['converged']}")
    print(f"{prefix}_n_clusters: {r['n_clusters']}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1", json.loads(sys.argv[6]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-dense", type=int, default=5000)
    parser.add_argument("--n-sparse", type=int, default=100_000)
    parser.add_argument("--knn", type=int, default=20)
    parser.add_argument("--damping", type=float, default=0.9)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--graph-cache", default="", help="Load (or save) the N-point kNN graph from this .npz.")
    parser.add_argument("--skip-dense", action="store_true", help="Only the sparse section.")
    args = parser.parse_args()
    params = {"damping": args.damping, "max_iter": args.max_iter, "convergence_iter": 15}
    print(f"damping: {args.damping}")
    print(f"load_average_1min_at_start: {os.getloadavg()[0]:.2f}")
    print(f"max_iter: {args.max_iter}")
    with tempfile.TemporaryDirectory() as workdir:
        if not args.skip_dense:
            _dense_section(args, params, workdir)
        _sparse_section(args, params, workdir)
        print(f"load_average_1min_at_end: {os.getloadavg()[0]:.2f}")


def _dense_section(args, params: dict, workdir: str) -> None:
    """Dense fast mode vs scikit-learn at N=--n-dense, and two stages on the same points."""
    # dense: fast mode vs scikit-learn
    X, truth = blobs(args.n_dense, 32, 20, seed=0, return_truth=True)
    X32, X = X, X.astype(np.float64)
    sq = (X**2).sum(axis=1)
    S = -np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0)
    dense_in = os.path.join(workdir, "dense.npz")
    np.savez(dense_in, S=S)
    del S, X
    print(f"dense_n: {args.n_dense}")
    sk = _measure("sklearn", dense_in, params, workdir)
    fast = _measure("fast", dense_in, params, workdir)
    _report("dense_sklearn", sk)
    _report("dense_fast", fast)
    print(f"dense_speedup_sklearn_over_fast: {sk['seconds'] / fast['seconds']:.2f}")
    print(f"dense_cpu_speedup_sklearn_over_fast: {sk['cpu_seconds'] / fast['cpu_seconds']:.2f}")
    print(f"dense_peak_rss_ratio_fast_over_sklearn: {fast['rss_peak_mib'] / sk['rss_peak_mib']:.3f}")
    ratio = fast["tracemalloc_peak_mib"] / sk["tracemalloc_peak_mib"]
    print(f"dense_peak_tracemalloc_ratio_fast_over_sklearn: {ratio:.3f}")
    if sk["converged"] and fast["converged"]:
        from sklearn.metrics import adjusted_rand_score

        print(f"dense_labels_identical: {bool(np.array_equal(sk['labels'], fast['labels']))}")
        print(f"dense_adjusted_rand_index: {adjusted_rand_score(sk['labels'], fast['labels']):.6f}")
    else:
        print("dense_labels_identical: n/a (not both converged)")

    # two stages on the same points (20-NN graph), asking for scikit-learn's number of exemplars
    from sklearn.metrics import adjusted_rand_score

    rows, cols, sims = knn_graph(X32, args.knn)
    two_in = os.path.join(workdir, "two.npz")
    np.savez(two_in, rows=rows, cols=cols, sims=sims, n=np.int64(args.n_dense), X=X32, k=sk["n_clusters"])
    two = _measure("two_stage", two_in, {}, workdir)
    _report("dense_two_stage", two)
    print(f"dense_two_stage_adjusted_rand_index_vs_sklearn: {adjusted_rand_score(sk['labels'], two['labels']):.4f}")
    print(f"dense_two_stage_adjusted_rand_index_vs_truth: {adjusted_rand_score(truth, two['labels']):.4f}")
    print(f"dense_sklearn_adjusted_rand_index_vs_truth: {adjusted_rand_score(truth, sk['labels']):.4f}")


def _sparse_section(args, params: dict, workdir: str) -> None:
    """Sparse AP on the --n-sparse kNN graph: the issue's run, then stage 1 of the two stages."""
    # sparse: kNN graph
    X = blobs(args.n_sparse, 32, 100, seed=1)
    t0 = time.perf_counter()
    if args.graph_cache and os.path.exists(args.graph_cache):
        cached = np.load(args.graph_cache)
        rows, cols, sims = cached["rows"], cached["cols"], cached["sims"]
        print("sparse_knn_graph: cached")
    else:
        rows, cols, sims = knn_graph(X, args.knn)
        if args.graph_cache:
            np.savez(args.graph_cache, rows=rows, cols=cols, sims=sims)
    print(f"sparse_n: {args.n_sparse}")
    print(f"sparse_edges: {sims.size}")
    print(f"sparse_knn_build_seconds: {time.perf_counter() - t0:.2f}")
    sparse_in = os.path.join(workdir, "sparse.npz")
    np.savez(sparse_in, rows=rows, cols=cols, sims=sims, n=np.int64(args.n_sparse))
    del rows, cols, sims, X
    print("# the issue's run: median-of-edges preference, --damping, --max-iter")
    _report("sparse", _measure("sparse", sparse_in, params, workdir))
    print("# stage 1 of the two stages: smallest edge as preference, damping 0.9, convits 100, maxits 1000")
    local = {"damping": LOCAL_DAMPING, "max_iter": MAX_ITER, "convergence_iter": CONVERGENCE_ITER}
    _report("sparse_local", _measure("local", sparse_in, local, workdir))


if __name__ == "__main__":
    main()
