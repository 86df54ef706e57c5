"""Locality-sensitive hashing for cosine similarity: Indyk & Motwani (STOC 1998); SimHash: Charikar (STOC 2002).

A family of `k` hashes concatenated per table (band) and `l` tables finds a point whose single-hash collision
probability with the query is `p` with probability `1 - (1 - p**k)**l` (the S-curve). For random-hyperplane
SimHash `p = 1 - theta / pi`, `theta` the angle between the vectors (Charikar 2002); for MinHash (see
`hf_nuggets.algorithms.minhash`) `p` is the Jaccard similarity (Broder 1997).

Guarantees:

- Every returned neighbour is re-ranked exactly: the similarities are true cosine similarities (float32) of the
  candidates, and `n_candidates` counts exactly the distance computations made (each distinct query-candidate pair
  once). A neighbour is missed only when it shares no bucket with the query, which happens with probability
  `(1 - p**k)**l` (less with `n_probes > 0`); results are deterministic for a given `seed`.
- Memory: the normalised float32 vectors, `l` sorted code arrays and permutations (O(l N)), and per query block a
  boolean mark matrix of at most 2**25 entries; never an N x N matrix.
- Inputs are validated; bad ones raise `ValueError` naming the argument and the value.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ._buckets import Buckets
from ._validation import check_int, check_prob, check_vectors

__all__ = [
    "LSHParams",
    "LSHQueryResult",
    "SimHashLSH",
    "knn_graph",
    "lsh_params",
    "lsh_params_for_recall",
    "minhash_collision_probability",
    "s_curve",
    "simhash_collision_probability",
]

_MARK_ELEMS = 1 << 25  # query rows x index size per block of queries (bool mark matrix, 32 MiB)
_PAIR_BLOCK = 1 << 12  # query-candidate pairs whose vectors are gathered at once for re-ranking


class LSHParams(NamedTuple):
    """Hashes per table `k`, number of tables `l`, and the exponent `rho = ln(1/p1) / ln(1/p2)` (nan if unused)."""

    k: int
    l: int  # noqa: E741 - the standard name in the LSH literature
    rho: float


class LSHQueryResult(NamedTuple):
    """Neighbours found for a batch of queries.

    Attributes:
        indices (`np.ndarray` of shape `(n_queries, k)`, int64): Neighbour indices, most similar first; `-1` pads rows
            with fewer than `k` candidates.
        similarities (`np.ndarray` of shape `(n_queries, k)`, float32): Exact cosine similarities; `-inf` where padded.
        n_candidates (`np.ndarray` of shape `(n_queries,)`, int64): Distance computations made for each query.
    """

    indices: np.ndarray
    similarities: np.ndarray
    n_candidates: np.ndarray


# ----------------------------------------------------------------------------------------------- helpers


def _normalize(X: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    norms[norms == 0] = 1.0  # zero vectors stay zero: cosine similarity 0 to everything
    return X / norms[:, None]


# ----------------------------------------------------------------------------------------------- parameter choice


def simhash_collision_probability(cosine: Any) -> Any:
    """Probability that one random-hyperplane bit agrees on two vectors: `1 - arccos(cosine) / pi` (Charikar 2002).

    Args:
        cosine (`float` or `np.ndarray`): Cosine similarity, in [-1, 1].

    Returns:
        `float` or `np.ndarray`: The collision probability, in [0, 1].

    Example:

    ```python
    >>> simhash_collision_probability(0.0), simhash_collision_probability(1.0)
    (0.5, 1.0)
    ```
    """
    c = np.asarray(cosine, dtype=np.float64)
    if not np.all((c >= -1) & (c <= 1)):
        raise ValueError(f"`cosine` must be in [-1, 1], got {cosine!r}.")
    p = 1.0 - np.arccos(c) / np.pi
    return float(p) if p.ndim == 0 else p


def minhash_collision_probability(jaccard: Any) -> Any:
    """Probability that one MinHash value agrees on two sets: their Jaccard similarity (Broder 1997).

    Args:
        jaccard (`float` or `np.ndarray`): Jaccard similarity, in [0, 1].

    Returns:
        `float` or `np.ndarray`: The collision probability (the Jaccard similarity itself).

    Example:

    ```python
    >>> minhash_collision_probability(0.8)
    0.8
    ```
    """
    j = np.asarray(jaccard, dtype=np.float64)
    if not np.all((j >= 0) & (j <= 1)):
        raise ValueError(f"`jaccard` must be in [0, 1], got {jaccard!r}.")
    return float(j) if j.ndim == 0 else j


def s_curve(p: Any, k: int, l: int) -> Any:  # noqa: E741
    """Probability that two points share at least one of `l` buckets of `k` hashes each: `1 - (1 - p**k)**l`.

    Args:
        p (`float` or `np.ndarray`): Single-hash collision probability, in [0, 1].
        k (`int`): Hashes per table (band), >= 1.
        l (`int`): Number of tables (bands), >= 1.

    Returns:
        `float` or `np.ndarray`: The probability of becoming a candidate.

    Example:

    ```python
    >>> round(s_curve(0.8, 5, 20), 4)
    0.9996
    ```
    """
    k, l = check_int("k", k), check_int("l", l)  # noqa: E741
    pp = np.asarray(p, dtype=np.float64)
    if not np.all((pp >= 0) & (pp <= 1)):
        raise ValueError(f"`p` must be in [0, 1], got {p!r}.")
    out = -np.expm1(l * np.log1p(-(pp**k))) if np.all(pp**k < 1) else 1.0 - (1.0 - pp**k) ** l
    return float(out) if np.ndim(out) == 0 else out


def lsh_params(n: int, p1: float, p2: float) -> LSHParams:
    """Indyk-Motwani choice of `k` and `l` for `n` points from the collision probabilities at the two radii.

    With `p1` the collision probability of one hash at the near radius r1 and `p2 < p1` at the far radius r2,
    `k = ceil(ln n / ln(1/p2))` makes the expected number of far points per bucket at most 1, and `l = ceil(n**rho)`,
    `rho = ln(1/p1) / ln(1/p2)`, tables find a near point with constant probability (at least `1 - 1/e`), for a query
    cost of O(n**rho) (Indyk & Motwani 1998). `k` is at least 1.

    Args:
        n (`int`): Number of indexed points, >= 1.
        p1 (`float`): Collision probability at the near radius, in (0, 1).
        p2 (`float`): Collision probability at the far radius, in (0, p1).

    Returns:
        `LSHParams`: `(k, l, rho)`.

    Example:

    ```python
    >>> k, l, rho = lsh_params(10_000, p1=0.9, p2=0.5)
    >>> k, l, round(rho, 3)
    (14, 5, 0.152)
    ```
    """
    n = check_int("n", n)
    p1, p2 = check_prob("p1", p1), check_prob("p2", p2)
    if p2 >= p1:
        raise ValueError(f"`p2` must be smaller than `p1`={p1}, got {p2!r}.")
    rho = math.log(1 / p1) / math.log(1 / p2)
    k = max(1, math.ceil(math.log(n) / math.log(1 / p2)))
    l = max(1, math.ceil(n**rho))  # noqa: E741
    return LSHParams(k, l, rho)


def lsh_params_for_recall(p: float, *, recall: float = 0.95, max_tables: int = 32, max_k: int = 64) -> LSHParams:
    """The most selective `(k, l)` that still finds a point of single-hash collision probability `p` with `recall`.

    For each `k`, the fewest tables reaching the target is `l(k) = ceil(ln(1 - recall) / ln(1 - p**k))` (from the
    S-curve `1 - (1 - p**k)**l >= recall`); the answer is the largest `k <= max_k` with `l(k) <= max_tables`, which
    keeps the fewest far points as candidates for that table budget. Points more similar than `p` are found with
    probability at least `recall`.

    Args:
        p (`float`): Collision probability at the similarity threshold (e.g. `simhash_collision_probability(0.9)`),
            in (0, 1).
        recall (`float`, *optional*, defaults to `0.95`): Target probability of finding such a point, in (0, 1).
        max_tables (`int`, *optional*, defaults to `32`): Largest number of tables `l` allowed.
        max_k (`int`, *optional*, defaults to `64`): Largest number of hashes per table.

    Returns:
        `LSHParams`: `(k, l, rho)` with `rho` nan. If even `k=1` needs more than `max_tables` tables, `k=1` with the
        tables it needs.

    Example:

    ```python
    >>> params = lsh_params_for_recall(0.9, recall=0.95, max_tables=20)
    >>> params.k, params.l, round(s_curve(0.9, params.k, params.l), 3)
    (18, 19, 0.954)
    ```
    """
    p = check_prob("p", p)
    recall = check_prob("recall", recall)
    max_tables, max_k = check_int("max_tables", max_tables), check_int("max_k", max_k)
    best = None
    for k in range(1, max_k + 1):
        if p**k == 0:  # underflow: no finite number of tables
            break
        l = max(1, math.ceil(math.log1p(-recall) / math.log1p(-(p**k))))  # noqa: E741
        if best is None or l <= max_tables:
            best = (k, l)
        if l > max_tables:
            break
    return LSHParams(best[0], best[1], float("nan"))


# ----------------------------------------------------------------------------------------------- bucket codes


def _pack_bits(bits: np.ndarray) -> np.ndarray:
    """(..., k) booleans, k <= 64 -> (...) uint64 codes (bit j of the code is bits[..., j])."""
    packed = np.packbits(bits, axis=-1, bitorder="little")
    code = np.zeros(bits.shape[:-1], dtype=np.uint64)
    for b in range(packed.shape[-1]):
        code |= packed[..., b].astype(np.uint64) << np.uint64(8 * b)
    return code


# ----------------------------------------------------------------------------------------------- SimHash


class SimHashLSH:
    """Random-hyperplane LSH index for cosine similarity, with exact re-ranking of the candidates.

    Each of `n_tables` tables hashes a vector to the signs of `n_bits_per_table` random Gaussian projections
    (Charikar 2002), packed into one integer; a query's candidates are the indexed vectors sharing its bucket in at
    least one table (plus, with `n_probes`, neighbouring buckets). Two vectors at angle `theta` share a table's bucket
    with probability `(1 - theta/pi)**n_bits_per_table`.

    Args:
        dim (`int`): Dimension of the vectors.
        n_bits_per_table (`int`, *optional*, defaults to `16`): Hyperplanes (bits) per table, `k`, in [1, 64].
        n_tables (`int`, *optional*, defaults to `16`): Number of tables, `l`.
        seed (`int`, *optional*, defaults to `0`): Seed of the hyperplanes (`np.random.default_rng(seed)`).

    Example:

    ```python
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((1000, 32)).astype(np.float32)
    >>> index = SimHashLSH(32, n_bits_per_table=8, n_tables=8, seed=0)
    >>> index.add(X)
    >>> result = index.query(X[:3] + 0.01, k=2)
    >>> result.indices[:, 0].tolist(), bool((result.n_candidates < 1000).all())
    ([0, 1, 2], True)
    ```
    """

    def __init__(self, dim: int, *, n_bits_per_table: int = 16, n_tables: int = 16, seed: int = 0):
        self.dim = check_int("dim", dim)
        self.n_bits_per_table = check_int("n_bits_per_table", n_bits_per_table, 1, 64)
        self.n_tables = check_int("n_tables", n_tables)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.hyperplanes = rng.standard_normal((self.dim, self.n_tables * self.n_bits_per_table), dtype=np.float32)
        self._vectors = np.empty((0, self.dim), dtype=np.float32)
        self._codes = np.empty((self.n_tables, 0), dtype=np.uint64)
        self._buckets: Buckets | None = None
        self.n_distance_computations = 0  # running total over all queries

    def __len__(self) -> int:
        return self._vectors.shape[0]

    def _project(self, X: np.ndarray) -> np.ndarray:
        return (X @ self.hyperplanes).reshape(X.shape[0], self.n_tables, self.n_bits_per_table)

    def hash(self, vectors: Any) -> np.ndarray:
        """Bucket codes of `vectors`, shape `(n_tables, n)` (uint64)."""
        X = check_vectors("vectors", vectors, self.dim)
        codes = np.empty((self.n_tables, X.shape[0]), dtype=np.uint64)
        step = max(1, (1 << 22) // self.hyperplanes.shape[1])
        for r0 in range(0, X.shape[0], step):
            codes[:, r0 : r0 + step] = _pack_bits(self._project(X[r0 : r0 + step]) > 0).T
        return codes

    def add(self, vectors: Any) -> None:
        """Index `vectors` (shape `(n, dim)`); they get the next indices, in order."""
        X = check_vectors("vectors", vectors, self.dim)
        self._codes = np.concatenate([self._codes, self.hash(X)], axis=1)
        self._vectors = np.concatenate([self._vectors, _normalize(X)]) if len(self) else _normalize(X)
        self._buckets = Buckets(self._codes)

    def _probe_codes(self, P: np.ndarray, n_probes: int) -> list[np.ndarray]:
        """Codes to look up, each (n_tables, m): the bucket itself, then one per flipped least-confident bit."""
        codes = _pack_bits(P > 0).T
        out = [codes]
        if n_probes:
            bits = np.argsort(np.abs(P), axis=-1)[..., :n_probes].astype(np.uint64)  # (m, l, n_probes)
            for j in range(n_probes):
                out.append(codes ^ (np.uint64(1) << bits[..., j].T))
        return out

    def query(self, vectors: Any, k: int = 10, *, n_probes: int = 0) -> LSHQueryResult:
        """The `k` most cosine-similar indexed vectors to each query, among its LSH candidates.

        Args:
            vectors (`np.ndarray` of shape `(n_queries, dim)` or `(dim,)`): Queries.
            k (`int`, *optional*, defaults to `10`): Neighbours per query.
            n_probes (`int`, *optional*, defaults to `0`): Extra buckets probed per table: those one bit away from the
                query's, flipping the bits whose projections are closest to zero (query-directed multi-probe LSH,
                Lv et al. 2007). Raises recall at the cost of more candidates; at most `n_bits_per_table`.

        Returns:
            `LSHQueryResult`: `(indices, similarities, n_candidates)`, rows sorted by decreasing exact similarity.
        """
        return self._search(check_vectors("vectors", vectors, self.dim), k, n_probes, None)

    def _search(self, Q: np.ndarray, k: int, n_probes: int, self_ids: np.ndarray | None) -> LSHQueryResult:
        k = check_int("k", k)
        n_probes = check_int("n_probes", n_probes, 0, self.n_bits_per_table)
        if self._buckets is None:
            raise ValueError("The index is empty: call `add` before `query`.")
        n, m = len(self), Q.shape[0]
        Qn = _normalize(Q)
        indices = np.full((m, k), -1, dtype=np.int64)
        sims = np.full((m, k), -np.inf, dtype=np.float32)
        n_cand = np.zeros(m, dtype=np.int64)
        step = max(1, _MARK_ELEMS // n)
        mark = np.zeros(min(step, m) * n, dtype=bool)  # flat (query row, index) marks of one block of queries
        Xg = np.empty((_PAIR_BLOCK, self.dim), dtype=np.float32)
        Qg = np.empty_like(Xg)
        for q0 in range(0, m, step):
            q1 = min(q0 + step, m)
            for codes in self._probe_codes(self._project(Q[q0:q1]), n_probes):
                for t in range(self.n_tables):
                    rows, cand = self._buckets.lookup(t, codes[t])
                    mark[rows * n + cand] = True
            if self_ids is not None:
                mark[np.arange(q1 - q0) * n + self_ids[q0:q1]] = False
            flat = np.flatnonzero(mark[: (q1 - q0) * n])  # distinct pairs, sorted by query row then index
            mark[flat] = False
            rows, cand = np.divmod(flat, n)
            s = np.empty(rows.size, dtype=np.float32)
            for p0 in range(0, rows.size, _PAIR_BLOCK):
                c = cand[p0 : p0 + _PAIR_BLOCK]
                xg = np.take(self._vectors, c, axis=0, out=Xg[: c.size])
                qg = np.take(Qn, q0 + rows[p0 : p0 + _PAIR_BLOCK], axis=0, out=Qg[: c.size])
                np.einsum("ij,ij->i", xg, qg, out=s[p0 : p0 + _PAIR_BLOCK])
            counts = np.bincount(rows, minlength=q1 - q0)
            n_cand[q0:q1] = counts
            self._top_k(rows, cand, s, counts, k, indices[q0:q1], sims[q0:q1])
        self.n_distance_computations += int(n_cand.sum())
        return LSHQueryResult(indices, sims, n_cand)

    @staticmethod
    def _top_k(rows, cand, s, counts, k, out_idx, out_sim) -> None:
        """Per query row, the `k` most similar candidates, best first (equal similarities: lowest index first)."""
        if rows.size == 0:
            return
        width = int(counts.max())
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        col = np.arange(rows.size) - starts[rows]
        S = np.full((counts.size, width), -np.inf, dtype=np.float32)
        C = np.full((counts.size, width), -1, dtype=np.int64)
        S[rows, col], C[rows, col] = s, cand
        kk = min(k, width)
        if kk < width:
            part = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
            S, C = np.take_along_axis(S, part, axis=1), np.take_along_axis(C, part, axis=1)
        order = _rowwise_order(S, C)
        out_sim[:, :kk] = np.take_along_axis(S, order, axis=1)
        out_idx[:, :kk] = np.where(np.isfinite(out_sim[:, :kk]), np.take_along_axis(C, order, axis=1), -1)


def _rowwise_order(S: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Per row, the column order by decreasing `S`, ties by increasing `C` (padding `-1` with `-inf` goes last)."""
    Cs = np.where(C < 0, np.iinfo(np.int64).max, C)
    order = np.argsort(Cs, axis=1, kind="stable")
    order2 = np.argsort(-np.take_along_axis(S, order, axis=1), axis=1, kind="stable")
    return np.take_along_axis(order, order2, axis=1)


# ----------------------------------------------------------------------------------------------- kNN graph


def knn_graph(
    embeddings: Any,
    *,
    n_neighbors: int = 20,
    n_bits_per_table: int | None = None,
    n_tables: int = 32,
    n_probes: int = 3,
    seed: int = 0,
    return_sparse: bool = False,
) -> Any:
    """Approximate k-nearest-neighbour graph under cosine similarity, with SimHash LSH and exact similarities.

    Every point is indexed and queried; each point gets edges to its `n_neighbors` most similar other points among
    its candidates (fewer when it has fewer candidates). Self-loops are never included.

    Args:
        embeddings (`np.ndarray` of shape `(n, dim)`): Vectors, e.g. sentence embeddings; finite.
        n_neighbors (`int`, *optional*, defaults to `20`): Out-edges per point.
        n_bits_per_table (`int`, *optional*): Bits per table; defaults to `clip(round(log2(n)), 4, 20)` (about one
            uniformly spread point per bucket; clustered data fills fewer, larger buckets). Fewer bits find more
            neighbours at the cost of more candidates.
        n_tables (`int`, *optional*, defaults to `32`): Number of tables.
        n_probes (`int`, *optional*, defaults to `3`): Extra buckets per table (see `SimHashLSH.query`); clipped to
            `n_bits_per_table`.
        seed (`int`, *optional*, defaults to `0`): Seed of the hyperplanes.
        return_sparse (`bool`, *optional*, defaults to `False`): Return a `scipy.sparse.csr_matrix` of shape `(n, n)`
            instead of edge arrays.

    Returns:
        `tuple[np.ndarray, np.ndarray, np.ndarray]`: `(rows, cols, sims)` edge arrays (int64, int64, float32), sorted
        by row then decreasing similarity; or the sparse matrix with `sims` at `(rows, cols)` if `return_sparse`.

    Example:

    ```python
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> rows, cols, sims = knn_graph(X, n_neighbors=1, n_tables=8)
    >>> rows.tolist(), cols.tolist()
    ([0, 1, 2, 3], [1, 0, 3, 2])
    ```
    """
    X = check_vectors("embeddings", embeddings)
    n_neighbors = check_int("n_neighbors", n_neighbors)
    n = X.shape[0]
    if n_bits_per_table is None:
        n_bits_per_table = int(np.clip(round(math.log2(max(n, 2))), 4, 20))
    index = SimHashLSH(X.shape[1], n_bits_per_table=n_bits_per_table, n_tables=n_tables, seed=seed)
    index.add(X)
    n_probes = check_int("n_probes", n_probes, 0)
    res = index._search(X, n_neighbors, min(n_probes, index.n_bits_per_table), np.arange(n))
    keep = res.indices >= 0
    rows = np.repeat(np.arange(n, dtype=np.int64), keep.sum(axis=1))
    cols, sims = res.indices[keep], res.similarities[keep]
    if not return_sparse:
        return rows, cols, sims
    from scipy.sparse import csr_matrix

    return csr_matrix((sims, (rows, cols)), shape=(n, n))
