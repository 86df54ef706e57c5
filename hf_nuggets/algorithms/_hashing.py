"""Stable 64-bit item hashes, word n-grams, and exact hashing arithmetic for `hf_nuggets.algorithms.sketches`
(and the uint64 mixer of `hf_nuggets.algorithms.minhash`).

- `hash_items` maps strings to the first 8 bytes of their BLAKE2b digest (RFC 7693), read little-endian: the same
  values on every machine, process and run (unlike Python's salted `hash`).
- `PolyHash4` is the degree-3 polynomial family over the prime field of p = 2**61 - 1 (Carter & Wegman 1979, Wegman
  & Carter 1981): with uniform random coefficients, the values at any 4 distinct points of the field are independent
  and uniform on [0, p). Products are computed exactly in uint64 by splitting one factor at bit 31 and folding with
  2**61 = 1 (mod p); every intermediate stays below 2**64.
- `exact_bincount` sums integer weights per index exactly (float64 only while every sum is below 2**53).
- `mix64` (MurmurHash3's 64-bit finalizer of `x ^ key`, sketches) and `splitmix64` (SplitMix64's finalizer,
  minhash) are bijections of uint64 that spread structured inputs; they are different functions, each kept for the
  values already derived from it.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

__all__ = [
    "PolyHash4",
    "aggregate",
    "as_counts",
    "exact_bincount",
    "float_weights",
    "as_hashes",
    "hash_items",
    "iter_ngram_hashes",
    "little_endian_bytes",
    "mix64",
    "splitmix64",
    "word_ngrams",
]

MERSENNE_61 = (1 << 61) - 1
_P = np.uint64(MERSENNE_61)
_M30, _M31 = np.uint64((1 << 30) - 1), np.uint64((1 << 31) - 1)
_S1, _S27, _S30, _S31, _S33, _S61 = (np.uint64(s) for s in (1, 27, 30, 31, 33, 61))
_FMIX1, _FMIX2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_SPLITMIX1, _SPLITMIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def hash_items(items: Iterable[str | bytes]) -> np.ndarray:
    """Hashes strings (UTF-8) or bytes to stable 64-bit integers: the first 8 bytes of BLAKE2b, little-endian.

    Args:
        items (`Iterable[str | bytes]`):
            The items; a single `str` is refused (wrap it in a list).

    Returns:
        `np.ndarray`: One `uint64` per item, identical across machines, processes and runs.

    Example:

    ```python
    >>> hash_items(["the cat", "the cat", "a dog"]).tolist()
    [3042635075010022360, 3042635075010022360, 14364831733120369406]
    >>> hash_items([]).dtype
    dtype('uint64')
    ```
    """
    if isinstance(items, (str, bytes)):
        raise ValueError(f"`items` must be an iterable of strings, not a single {type(items).__name__}: {items!r:.60}")
    if not isinstance(items, (list, tuple)):
        items = list(items)  # iterated twice when not all strings
    blake = hashlib.blake2b
    try:  # fast path: all strings
        digests = b"".join([blake(s.encode("utf-8", "surrogatepass"), digest_size=8).digest() for s in items])
    except (AttributeError, TypeError):
        parts = []
        for s in items:
            if isinstance(s, str):
                s = s.encode("utf-8", "surrogatepass")
            elif not isinstance(s, (bytes, bytearray, memoryview)):
                raise ValueError(f"`items` must hold only str or bytes, got {type(s).__name__}: {s!r:.60}") from None
            parts.append(blake(bytes(s), digest_size=8).digest())
        digests = b"".join(parts)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def word_ngrams(text: str, n: int = 2, *, lowercase: bool = False) -> list[str]:
    """The word n-grams of a text: whitespace-split tokens, `n` consecutive ones joined by one space.

    Args:
        text (`str`):
            The text.
        n (`int`, *optional*, defaults to `2`):
            Words per n-gram (>= 1). A text with fewer than `n` words has none.
        lowercase (`bool`, *optional*, defaults to `False`):
            Lowercase the text first.

    Returns:
        `list[str]`: The n-grams in order, repeats included.

    Example:

    ```python
    >>> word_ngrams("the cat  sat on", 2)
    ['the cat', 'cat sat', 'sat on']
    ```
    """
    if not isinstance(text, str):
        raise ValueError(f"`text` must be a str, got {type(text).__name__}: {text!r:.60}")
    n = _check_n(n)
    tokens = (text.lower() if lowercase else text).split()
    if n == 1:
        return tokens
    return [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def iter_ngram_hashes(
    texts: Iterable[str], n: int = 2, *, batch_size: int = 1024, lowercase: bool = False
) -> Iterator[np.ndarray]:
    """Streams the hashed word n-grams of texts (e.g. a dataset column), one `uint64` array per batch of texts.

    Args:
        texts (`Iterable[str]`):
            The texts, read once, lazily (a list, a `datasets` column, a generator).
        n (`int`, *optional*, defaults to `2`):
            Words per n-gram.
        batch_size (`int`, *optional*, defaults to `1024`):
            Texts per yielded array.
        lowercase (`bool`, *optional*, defaults to `False`):
            Lowercase the texts first.

    Returns:
        `Iterator[np.ndarray]`: `hash_items` of the n-grams of each batch of texts, in order.

    Example:

    ```python
    >>> [len(h) for h in iter_ngram_hashes(["a b c", "d e", "f"], n=2, batch_size=2)]
    [3, 0]
    ```
    """
    n = _check_n(n)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an integer >= 1, got {batch_size!r}.")
    if isinstance(texts, (str, bytes)):
        raise ValueError(f"`texts` must be an iterable of strings, not a single string: {texts!r:.60}")
    batch: list[str] = []
    count = 0
    for text in texts:
        batch.extend(word_ngrams(text, n, lowercase=lowercase))
        count += 1
        if count == batch_size:
            yield hash_items(batch)
            batch, count = [], 0
    if count:
        yield hash_items(batch)


# `check_int` of `_validation` by hand: this module imports nothing from the package, so that it loads on its own
# (tests/test_sketches.py hashes in a fresh interpreter from this file alone).
def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"`n` must be an integer >= 1, got {n!r}.")
    return int(n)


def as_hashes(hashes: Any, name: str = "hashes") -> np.ndarray:
    """`hashes` as a flat `uint64` array (signed integers are reinterpreted modulo 2**64); `ValueError` otherwise."""
    arr = np.asarray(hashes)
    if arr.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must be an array of integer hashes, got dtype {arr.dtype} (e.g. {arr.flat[0]!r}).")
    return arr.reshape(-1).astype(np.uint64)


def as_counts(counts: Any, size: int) -> np.ndarray:
    """`counts` as a flat `int64` array of length `size` (negative counts are deletions); `ValueError` otherwise."""
    arr = np.asarray(counts)
    if arr.ndim == 0 and arr.dtype.kind in "iu":
        arr = np.full(size, arr.item())
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"`counts` must be integers, got dtype {arr.dtype} (e.g. {arr.flat[0]!r}).")
    if arr.size != size:
        raise ValueError(f"`counts` must have one entry per hash ({size}), got {arr.size}.")
    return arr.reshape(-1).astype(np.int64)


def aggregate(hashes: np.ndarray, counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct hashes (sorted) and the summed count of each (1 per occurrence when `counts` is None); exact."""
    if counts is None:
        order = None
        s = np.sort(hashes)
    else:
        order = np.argsort(hashes, kind="stable")
        s = hashes[order]
    if s.size == 0:
        return s, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    if order is None:
        return s[starts], np.diff(np.append(starts, s.size)).astype(np.int64)
    return s[starts], np.add.reduceat(counts[order], starts).astype(np.int64)


def float_weights(weights: np.ndarray) -> np.ndarray | None:
    """`weights` as float64 when every partial sum of them is exact in float64 (below 2**53), else None."""
    if weights.size == 0 or float(np.abs(weights).max()) * weights.size < 2.0**53:
        return weights.astype(np.float64)
    return None


def exact_bincount(idx: np.ndarray, weights: np.ndarray, size: int, weights_f: np.ndarray | None) -> np.ndarray:
    """Exact int64 sums of `weights` per index: a float64 bincount when `weights_f` is given, else `np.add.at`."""
    if weights_f is not None:
        return np.bincount(idx, weights_f, minlength=size).astype(np.int64)
    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, idx, weights)
    return out


def _xorshift_multiply(z: np.ndarray, s1: Any, m1: Any, s2: Any, m2: Any, s3: Any) -> np.ndarray:
    """`z ^= z >> s1; z *= m1; z ^= z >> s2; z *= m2; z ^= z >> s3` in place (wrapping): both finalizers' form."""
    z ^= z >> s1
    z *= m1
    z ^= z >> s2
    z *= m2
    z ^= z >> s3
    return z


def mix64(x: np.ndarray, key: int) -> np.ndarray:
    """A bijection of uint64: `x ^ key` through the MurmurHash3 64-bit finalizer (spreads structured inputs)."""
    return _xorshift_multiply(x ^ np.uint64(key), _S33, _FMIX1, _S33, _FMIX2, _S33)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """A bijection of uint64, in place: the splitmix64 finalizer (Steele et al. 2014; Stafford's "Mix13").

    Unlike `mix64` it takes no key and overwrites `z`; the two give different values, and each is kept for the
    values already derived from it (MinHash shingle ids and band keys use this one).

    Args:
        z (`np.ndarray`, uint64): The values; overwritten with the result.

    Returns:
        `np.ndarray`: `z`.

    Example:

    ```python
    >>> splitmix64(np.array([0, 1], dtype=np.uint64)).tolist()
    [0, 6238072747940578789]
    ```
    """
    return _xorshift_multiply(z, _S30, _SPLITMIX1, _S27, _SPLITMIX2, _S31)


def _canon(r: np.ndarray) -> np.ndarray:
    """Any uint64 modulo p = 2**61 - 1, in [0, p): one fold leaves < 2**61 + 8, then p itself maps to 0."""
    r = (r & _P) + (r >> _S61)  # < 2**61 + 3
    return (r + ((r + _S1) >> _S61)) & _P


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x & _M31, x >> _S31


def _mulmod_fold(x_lo: np.ndarray, x_hi: np.ndarray, a_lo: Any, a_hi2: Any) -> np.ndarray:
    """`x * a mod p`, folded once to below 2**61 + 4, for x = x_hi * 2**31 + x_lo, a = (a_hi2 / 2) * 2**31 + a_lo.

    x, a < 2**61: x_hi * a_hi2 < 2**61 (2**62 = 2 mod p), mid < 2**62 (mid * 2**31 = (mid >> 30) + (mid mod 2**30)
    * 2**31 mod p), x_lo * a_lo < 2**62; their sum < 2**63 + 2**32.
    """
    mid = x_hi * a_lo
    mid += x_lo * (a_hi2 >> _S1)
    r = x_hi * a_hi2
    r += x_lo * a_lo
    r += mid >> _S30
    mid &= _M30
    mid <<= _S31
    r += mid
    out = r & _P
    r >>= _S61
    out += r
    return out


class PolyHash4:
    """`m` independent degree-3 polynomials over GF(2**61 - 1): `h_j(x) = a0 + a1 x + a2 x**2 + a3 x**3 mod p`.

    Inputs are 64-bit values, first reduced mod p (two values collide only when congruent mod p). The coefficients
    are drawn uniformly from [0, p) with `rng`; each `h_j` is then 4-wise independent and uniform on [0, p).
    """

    def __init__(self, m: int, rng: np.random.Generator):
        self.coefficients = rng.integers(0, MERSENNE_61, size=(m, 4), dtype=np.uint64)
        lo, hi = _split(self.coefficients)
        self._lo, self._hi2 = lo, hi << _S1

    def powers(self, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Split x, x**2, x**3 in the field (once per batch; shared by all polynomials)."""
        x1 = _canon((x & _P) + (x >> _S61))
        lo, hi = _split(x1)
        x2 = _canon(_mulmod_fold(lo, hi, lo, hi << _S1))
        lo2, hi2 = _split(x2)
        x3 = _canon(_mulmod_fold(lo2, hi2, lo, hi << _S1))
        return [(lo, hi), (lo2, hi2), _split(x3)]

    def __call__(self, j: int, powers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """`h_j` at the prepared points, in [0, p)."""
        lo, hi2 = self._lo[j], self._hi2[j]
        acc = _mulmod_fold(*powers[0], lo[1], hi2[1])
        acc += _mulmod_fold(*powers[1], lo[2], hi2[2])
        acc += _mulmod_fold(*powers[2], lo[3], hi2[3])
        acc += self.coefficients[j, 0]
        return _canon(acc)


def little_endian_bytes(v: np.ndarray) -> np.ndarray:
    """The 8 bytes of each uint64, least significant first, as a `(len(v), 8)` uint8 array on any platform."""
    if sys.byteorder == "big":
        v = v.byteswap()
    return v.view(np.uint8).reshape(-1, 8)
