"""MinHash LSH for Jaccard similarity of text shingles: Broder (SEQUENCES 1997); Indyk & Motwani (STOC 1998) banding.

Each text becomes a set of word or character n-gram shingles (64-bit ids). Its MinHash signature holds, for
`num_perm` hash functions `h(x) = (a*x + b) >> 32` (multiply-add-shift, strongly universal; Dietzfelbinger 1996)
over the shingle ids, the minimum over the set; two sets agree on one value with probability (about) their Jaccard
similarity. Bands of `r` values are hashed into `b` tables, so two texts of Jaccard `s` become candidates with
probability `1 - (1 - s**r)**b`.

Guarantees:

- Every reported pair and similarity is verified exactly: the Jaccard similarity of the two shingle sets (up to
  64-bit shingle-id collisions), never a MinHash estimate; pairs below the threshold are dropped.
- A pair of Jaccard `s >= threshold` is missed only when no band collides, probability `(1 - s**r)**b`; the default
  bands make that at most 5% at the threshold. Results are deterministic for a given `seed`.
- Hashing is vectorised over all texts at once (numpy uint64, wrap-around arithmetic), in bounded memory.
- Inputs are validated; bad ones raise `ValueError` naming the argument and the value.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ._buckets import Buckets, expand_ranges
from ._hashing import splitmix64
from ._validation import check_int
from .lsh import s_curve

__all__ = [
    "MinHashLSH",
    "MinHasher",
    "NearDuplicates",
    "dedup",
    "minhash_bands_for_recall",
    "near_duplicates",
    "shingle_jaccard",
]

_WORD_RE = re.compile(r"\w+")
_BATCH_SHINGLES = 1 << 15  # units (about shingles) hashed at once
_BLOCK_ELEMS = 1 << 18  # shingles x permutations per uint64 block (2 MiB, cache-sized)
_EMPTY = np.uint32(0xFFFFFFFF)  # signature value of a text without shingles


class NearDuplicates(NamedTuple):
    """Near-duplicate pairs and groups found by `near_duplicates`.

    Attributes:
        pairs (`np.ndarray` of shape `(n_pairs, 2)`, int64): Pairs `(i, j)`, `i < j`, of Jaccard >= threshold, sorted.
        jaccard (`np.ndarray` of shape `(n_pairs,)`, float64): Their exact Jaccard similarities.
        groups (`list[list[int]]`): Connected components of the pairs (two or more texts each), each sorted, ordered
            by their first index.
        n_candidates (`int`): Candidate pairs whose Jaccard similarity was computed.
    """

    pairs: np.ndarray
    jaccard: np.ndarray
    groups: list[list[int]]
    n_candidates: int


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(f"`texts` must be a sequence of strings, got {type(texts).__name__}.")
    if len(texts) == 0:
        raise ValueError("`texts` must not be empty, got 0 texts.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"`texts` must hold strings only, got {type(t).__name__} at position {i}.")
    return list(texts)


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or not 0 < threshold <= 1:
        raise ValueError(f"`threshold` must be in (0, 1], got {threshold!r}.")
    return float(threshold)


def minhash_bands_for_recall(threshold: float, num_perm: int = 128, *, recall: float = 0.95) -> tuple[int, int]:
    """Bands `b` and rows per band `r` (`b * r <= num_perm`) that find pairs at `threshold` with `recall`.

    Picks the largest `r` with `b = num_perm // r` such that the S-curve `1 - (1 - threshold**r)**b >= recall`: the
    most selective banding (fewest false candidates) reaching the target. If none does, `r = 1`, `b = num_perm`.

    Args:
        threshold (`float`): Jaccard similarity to find, in (0, 1].
        num_perm (`int`, *optional*, defaults to `128`): Length of the signatures.
        recall (`float`, *optional*, defaults to `0.95`): Target probability of becoming a candidate at `threshold`.

    Returns:
        `tuple[int, int]`: `(n_bands, rows_per_band)`.

    Example:

    ```python
    >>> minhash_bands_for_recall(0.8, 128)
    (18, 7)
    ```
    """
    threshold = _check_threshold(threshold)
    num_perm = check_int("num_perm", num_perm)
    if isinstance(recall, bool) or not isinstance(recall, (int, float)) or not 0 < recall < 1:
        raise ValueError(f"`recall` must be in (0, 1), got {recall!r}.")
    best = (num_perm, 1)
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if s_curve(threshold, r, b) >= recall:
            best = (b, r)
    return best


class MinHasher:
    """Shingles texts and computes their MinHash signatures, vectorised over all texts.

    Texts are lowercased (if `lowercase`) and their whitespace runs collapsed to one space; shingles are runs of
    `ngram` consecutive characters (`unit="char"`) or words (`unit="word"`, words being `\\w+` runs). A non-empty text
    shorter than `ngram` units is one shingle; an empty one has none.

    Args:
        num_perm (`int`, *optional*, defaults to `128`): Hash functions, i.e. signature length.
        ngram (`int`, *optional*, defaults to `5`): Units per shingle.
        unit (`str`, *optional*, defaults to `"char"`): `"char"` or `"word"`.
        lowercase (`bool`, *optional*, defaults to `True`): Lowercase texts before shingling.
        seed (`int`, *optional*, defaults to `0`): Seed of the hash functions (`np.random.default_rng(seed)`); the
            shingle ids themselves do not depend on it.

    Example:

    ```python
    >>> hasher = MinHasher(num_perm=64, ngram=3)
    >>> sig = hasher.signatures(["the cat sat on the mat", "the cat sat on the hat", "quantum chromodynamics"])
    >>> sig.shape, float((sig[0] == sig[1]).mean()) > 0.5, float((sig[0] == sig[2]).mean()) < 0.2
    ((3, 64), True, True)
    ```
    """

    def __init__(
        self, num_perm: int = 128, *, ngram: int = 5, unit: str = "char", lowercase: bool = True, seed: int = 0
    ):
        self.num_perm = check_int("num_perm", num_perm)
        self.ngram = check_int("ngram", ngram)
        if unit not in ("char", "word"):
            raise ValueError(f'`unit` must be "char" or "word", got {unit!r}.')
        self.unit, self.lowercase, self.seed = unit, bool(lowercase), seed
        rng = np.random.default_rng(seed)
        self._a = rng.integers(0, 2**64, self.num_perm, dtype=np.uint64, endpoint=False) | np.uint64(1)
        self._b = rng.integers(0, 2**64, self.num_perm, dtype=np.uint64, endpoint=False)
        # Fixed (seed-independent) odd multipliers combining the units of a shingle.
        self._mult = splitmix64(np.arange(1, self.ngram + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        self._mult |= np.uint64(1)

    # -- shingling -------------------------------------------------------------------------------------------

    def _units(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """All texts' units as one uint64 stream (each value + 1, so never 0) and the units per text."""
        norm = [" ".join((t.lower() if self.lowercase else t).split()) for t in texts]
        if self.unit == "char":
            lengths = np.fromiter((len(t) for t in norm), dtype=np.int64, count=len(norm))
            codes = np.frombuffer("".join(norm).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        else:
            words = [_WORD_RE.findall(t) for t in norm]
            lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
            vocab: dict[str, int] = {}
            codes = np.fromiter(
                (
                    vocab[w] if w in vocab else vocab.setdefault(w, zlib.crc32(w.encode("utf-8", "surrogatepass")))
                    for ws in words
                    for w in ws
                ),
                dtype=np.uint32,
                count=int(lengths.sum()),
            )
        return codes.astype(np.uint64) + np.uint64(1), lengths

    def _shingle_batches(self, texts: list[str]):
        """Yield `(first_text, ids, counts)`: uint64 shingle ids (with repeats) of a run of texts, count per text."""
        n = self.ngram
        i0 = 0
        while i0 < len(texts):
            # Take texts until about _BATCH_SHINGLES units (at least one text).
            i1, units = i0, 0
            while i1 < len(texts) and (i1 == i0 or units + len(texts[i1]) <= _BATCH_SHINGLES):
                units += len(texts[i1])
                i1 += 1
            tok, lengths = self._units(texts[i0:i1])
            counts = np.where(lengths >= n, lengths - n + 1, (lengths > 0).astype(np.int64))
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            pos = expand_ranges(starts, counts)
            end = np.repeat(starts + lengths, counts)
            ids = np.zeros(pos.size, dtype=np.uint64)
            for j in range(n):
                idx = pos + j
                valid = idx < end
                ids += np.where(valid, tok[np.minimum(idx, tok.size - 1)], np.uint64(0)) * self._mult[j]
            yield i0, splitmix64(ids), counts
            i0 = i1

    def shingles(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Sorted distinct shingle ids (uint64) of each text."""
        return self._shingle_sets(_check_texts(texts))

    def _shingle_sets(self, texts: list[str]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for _, ids, counts in self._shingle_batches(texts):
            out.extend(np.unique(part) for part in np.split(ids, np.cumsum(counts)[:-1]))
        return out

    # -- signatures ------------------------------------------------------------------------------------------

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """MinHash signatures, shape `(len(texts), num_perm)` (uint32); a text without shingles gets `2**32 - 1`s."""
        texts = _check_texts(texts)
        sig = np.full((len(texts), self.num_perm), _EMPTY, dtype=np.uint32)
        for i0, ids, counts in self._shingle_batches(texts):
            x = ids >> np.uint64(32)  # 32-bit keys for multiply-add-shift
            nonempty = np.flatnonzero(counts)
            if nonempty.size == 0:
                continue
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[nonempty]
            step = max(1, _BLOCK_ELEMS // max(x.size, 1))
            buf = np.empty(step * x.size, dtype=np.uint64)
            for p0 in range(0, self.num_perm, step):
                a, b = self._a[p0 : p0 + step, None], self._b[p0 : p0 + step, None]
                h = buf[: a.size * x.size].reshape(a.size, x.size)  # (perms, shingles): reduceat along rows
                np.multiply(a, x, out=h)
                np.add(h, b, out=h)
                np.right_shift(h, np.uint64(32), out=h)
                sig[i0 + nonempty, p0 : p0 + step] = np.minimum.reduceat(h, starts, axis=1).T
        return sig


def _pair_jaccard(sets: list[np.ndarray], pairs: np.ndarray) -> np.ndarray:
    """Exact Jaccard similarity of `sets[i]` and `sets[j]` for each row `(i, j)` of `pairs` (sorted unique arrays)."""
    if pairs.shape[0] == 0:
        return np.empty(0, dtype=np.float64)
    sizes = np.fromiter((s.size for s in sets), dtype=np.int64, count=len(sets))
    flat = np.concatenate(sets) if sets else np.empty(0, np.uint64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out = np.empty(pairs.shape[0], dtype=np.float64)
    step = max(1, (1 << 22) // max(int(sizes.mean() * 2), 1))
    for p0 in range(0, pairs.shape[0], step):
        i, j = pairs[p0 : p0 + step, 0], pairs[p0 : p0 + step, 1]
        na, nb = sizes[i], sizes[j]
        pid = np.repeat(np.arange(i.size), na + nb)
        vals = flat[expand_ranges(np.stack([offsets[i], offsets[j]], 1).ravel(), np.stack([na, nb], 1).ravel())]
        order = np.lexsort((vals, pid))
        v, p = vals[order], pid[order]
        same = (v[1:] == v[:-1]) & (p[1:] == p[:-1])  # sets are distinct, so a repeat is one in both sets
        inter = np.bincount(p[1:][same], minlength=i.size)
        union = na + nb - inter
        out[p0 : p0 + step] = np.where(union > 0, inter / np.maximum(union, 1), 1.0)  # two empty sets: identical
    return out


def shingle_jaccard(text_a: str, text_b: str, *, ngram: int = 5, unit: str = "char", lowercase: bool = True) -> float:
    """Exact Jaccard similarity of the shingle sets of two texts (1.0 for two texts without shingles).

    Args:
        text_a (`str`): First text.
        text_b (`str`): Second text.
        ngram (`int`, *optional*, defaults to `5`): Units per shingle.
        unit (`str`, *optional*, defaults to `"char"`): `"char"` or `"word"`.
        lowercase (`bool`, *optional*, defaults to `True`): Lowercase before shingling.

    Returns:
        `float`: `|A & B| / |A | B|`.

    Example:

    ```python
    >>> shingle_jaccard("a b c d", "a b c e", ngram=1, unit="word")
    0.6
    ```
    """
    sets = MinHasher(1, ngram=ngram, unit=unit, lowercase=lowercase).shingles([text_a, text_b])
    return float(_pair_jaccard(sets, np.array([[0, 1]]))[0])


def _band_keys(sig: np.ndarray, n_bands: int, rows: int) -> np.ndarray:
    """(n_bands, n) uint64 keys, one per band of `rows` signature values."""
    keys = np.zeros((n_bands, sig.shape[0]), dtype=np.uint64)
    mult = splitmix64(np.arange(1, rows + 1, dtype=np.uint64) * np.uint64(0xD6E8FEB86659FD93)) | np.uint64(1)
    for band in range(n_bands):
        block = sig[:, band * rows : (band + 1) * rows].astype(np.uint64)
        keys[band] = splitmix64(((block + np.uint64(1)) * mult).sum(axis=1))  # wraps modulo 2**64
    return keys


class MinHashLSH:
    """MinHash LSH index of texts for Jaccard similarity, with exact verification of the candidates.

    Args:
        threshold (`float`, *optional*, defaults to `0.8`): Jaccard similarity a match must reach, in (0, 1].
        num_perm (`int`, *optional*, defaults to `128`): Signature length.
        n_bands (`int`, *optional*): Bands `b`; with `rows_per_band`, defaults to `minhash_bands_for_recall(threshold,
            num_perm)`. `n_bands * rows_per_band` must not exceed `num_perm`.
        rows_per_band (`int`, *optional*): Signature values per band `r`.
        ngram (`int`, *optional*, defaults to `5`): Units per shingle.
        unit (`str`, *optional*, defaults to `"char"`): `"char"` or `"word"`.
        lowercase (`bool`, *optional*, defaults to `True`): Lowercase before shingling.
        seed (`int`, *optional*, defaults to `0`): Seed of the hash functions.

    The index keeps references to the added texts (to verify candidates) and one signature per text.

    Example:

    ```python
    >>> index = MinHashLSH(threshold=0.7, ngram=3)
    >>> index.add(["the cat sat on the mat", "a completely different sentence"])
    >>> [idx.tolist() for idx, _ in index.query(["the cat sat on the mat!", "nothing alike here"])]
    [[0], []]
    ```
    """

    def __init__(
        self,
        threshold: float = 0.8,
        *,
        num_perm: int = 128,
        n_bands: int | None = None,
        rows_per_band: int | None = None,
        ngram: int = 5,
        unit: str = "char",
        lowercase: bool = True,
        seed: int = 0,
    ):
        self.threshold = _check_threshold(threshold)
        self.hasher = MinHasher(num_perm, ngram=ngram, unit=unit, lowercase=lowercase, seed=seed)
        if (n_bands is None) != (rows_per_band is None):
            raise ValueError(
                f"`n_bands` and `rows_per_band` must be given together, got {n_bands!r}, {rows_per_band!r}."
            )
        if n_bands is None:
            n_bands, rows_per_band = minhash_bands_for_recall(self.threshold, num_perm)
        self.n_bands, self.rows_per_band = check_int("n_bands", n_bands), check_int("rows_per_band", rows_per_band)
        if self.n_bands * self.rows_per_band > num_perm:
            raise ValueError(
                f"`n_bands` * `rows_per_band` must be <= `num_perm`={num_perm}, got {n_bands} * {rows_per_band}."
            )
        self._texts: list[str] = []
        self._keys = np.empty((self.n_bands, 0), dtype=np.uint64)
        self._buckets: Buckets | None = None
        self.n_candidates = 0  # running total of verified candidate pairs

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, texts: Sequence[str]) -> None:
        """Index `texts`; they get the next indices, in order."""
        texts = _check_texts(texts)
        keys = _band_keys(self.hasher.signatures(texts), self.n_bands, self.rows_per_band)
        self._keys = np.concatenate([self._keys, keys], axis=1)
        self._texts.extend(texts)
        self._buckets = Buckets(self._keys)

    def query(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Indexed texts with Jaccard similarity >= `threshold` to each query, among its candidates.

        Args:
            texts (`Sequence[str]`): Queries.

        Returns:
            `list[tuple[np.ndarray, np.ndarray]]`: Per query, `(indices, jaccard)` sorted by decreasing similarity
            (ties by index).
        """
        texts = _check_texts(texts)
        if self._buckets is None:
            raise ValueError("The index is empty: call `add` before `query`.")
        keys = _band_keys(self.hasher.signatures(texts), self.n_bands, self.rows_per_band)
        n = len(self)
        found = [self._buckets.lookup(band, keys[band]) for band in range(self.n_bands)]
        flat = np.unique(np.concatenate([r * n + c for r, c in found]))
        rows, cand = np.divmod(flat, n)
        self.n_candidates += int(rows.size)
        uc = np.unique(cand)
        sets = self.hasher._shingle_sets(texts + [self._texts[c] for c in uc])
        jac = _pair_jaccard(sets, np.stack([rows, len(texts) + np.searchsorted(uc, cand)], 1))
        ok = jac >= self.threshold
        rows, cand, jac = rows[ok], cand[ok], jac[ok]
        order = np.lexsort((cand, -jac, rows))
        rows, cand, jac = rows[order], cand[order], jac[order]
        bounds = np.searchsorted(rows, np.arange(len(texts) + 1))
        return [(cand[bounds[q] : bounds[q + 1]], jac[bounds[q] : bounds[q + 1]]) for q in range(len(texts))]


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Smallest index of the connected component of each node (union by min label, pointer jumping)."""
    parent = np.arange(n)
    if pairs.size == 0:
        return parent
    i, j = pairs[:, 0], pairs[:, 1]
    while True:
        ri, rj = parent[i], parent[j]
        if np.array_equal(ri, rj):
            return parent
        np.minimum.at(parent, np.maximum(ri, rj), np.minimum(ri, rj))
        while True:
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt


def near_duplicates(
    texts: Sequence[str],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    n_bands: int | None = None,
    rows_per_band: int | None = None,
    ngram: int = 5,
    unit: str = "char",
    lowercase: bool = True,
    seed: int = 0,
) -> NearDuplicates:
    """Find pairs and groups of near-duplicate texts (exact shingle Jaccard >= `threshold`) with MinHash LSH.

    Texts with identical signatures are first collapsed onto the first of them (so large groups of exact duplicates
    cost linear, not quadratic, time): each is paired with that first text only. The remaining distinct signatures
    are banded; every pair sharing a band is a candidate, verified exactly.

    Args:
        texts (`Sequence[str]`): The texts.
        threshold (`float`, *optional*, defaults to `0.8`): Jaccard similarity a pair must reach, in (0, 1].
        num_perm (`int`, *optional*, defaults to `128`): Signature length.
        n_bands (`int`, *optional*): Bands; with `rows_per_band`, defaults to `minhash_bands_for_recall`.
        rows_per_band (`int`, *optional*): Signature values per band.
        ngram (`int`, *optional*, defaults to `5`): Units per shingle.
        unit (`str`, *optional*, defaults to `"char"`): `"char"` or `"word"`.
        lowercase (`bool`, *optional*, defaults to `True`): Lowercase before shingling.
        seed (`int`, *optional*, defaults to `0`): Seed of the hash functions.

    Returns:
        `NearDuplicates`: `(pairs, jaccard, groups, n_candidates)`.

    Example:

    ```python
    >>> texts = ["the cat sat on the mat", "The cat sat on the mat.", "dogs bark at night", "the cat sat on the mat"]
    >>> result = near_duplicates(texts, threshold=0.8)
    >>> result.pairs.tolist(), result.groups
    ([[0, 1], [0, 3]], [[0, 1, 3]])
    ```
    """
    texts = _check_texts(texts)
    index = MinHashLSH(
        threshold,
        num_perm=num_perm,
        n_bands=n_bands,
        rows_per_band=rows_per_band,
        ngram=ngram,
        unit=unit,
        lowercase=lowercase,
        seed=seed,
    )
    n = len(texts)
    sig = index.hasher.signatures(texts)
    # Collapse identical signatures onto their first text.
    full = _band_keys(sig, 1, index.hasher.num_perm)[0]
    _, first, inverse = np.unique(full, return_index=True, return_inverse=True)
    rep = first[inverse.ravel()]
    dup = np.flatnonzero(rep != np.arange(n))
    star = np.stack([rep[dup], dup], 1)
    reps = np.sort(first)
    keys = _band_keys(sig[reps], index.n_bands, index.rows_per_band)
    buckets = Buckets(keys)
    m = reps.size
    flat = []
    for band in range(index.n_bands):
        r, c = buckets.lookup(band, keys[band])
        keep = r < c
        flat.append(r[keep] * m + c[keep])
    flat = np.unique(np.concatenate(flat)) if flat else np.empty(0, np.int64)
    lsh_pairs = reps[np.stack(np.divmod(flat, m), 1)] if flat.size else np.empty((0, 2), np.int64)
    cand = np.concatenate([star, lsh_pairs]).astype(np.int64)
    involved = np.unique(cand)
    sets = index.hasher._shingle_sets([texts[i] for i in involved])
    jac = _pair_jaccard(sets, np.searchsorted(involved, cand))
    ok = jac >= index.threshold
    pairs, jac = cand[ok], jac[ok]
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs, jac = pairs[order], jac[order]
    root = _components(n, pairs)
    members = np.flatnonzero(np.bincount(root, minlength=n)[root] > 1)
    groups: dict[int, list[int]] = {}
    for i in members.tolist():
        groups.setdefault(int(root[i]), []).append(i)
    return NearDuplicates(pairs, jac, [groups[r] for r in sorted(groups)], int(cand.shape[0]))


def dedup(texts: Sequence[str], *, threshold: float = 0.8, **kwargs: Any) -> np.ndarray:
    """Indices of the texts to keep: all but the near-duplicates, keeping the first (lowest index) of each group.

    Args:
        texts (`Sequence[str]`): The texts.
        threshold (`float`, *optional*, defaults to `0.8`): Jaccard similarity that makes two texts duplicates.
        **kwargs: Passed to `near_duplicates` (`num_perm`, `ngram`, `unit`, ...).

    Returns:
        `np.ndarray` (int64): Sorted indices to keep.

    Example:

    ```python
    >>> dedup(["the cat sat on the mat", "dogs bark at night", "The cat sat on the mat."]).tolist()
    [0, 1]
    ```
    """
    result = near_duplicates(texts, threshold=threshold, **kwargs)
    drop = np.zeros(len(texts), dtype=bool)
    for group in result.groups:
        drop[group[1:]] = True
    return np.flatnonzero(~drop)
