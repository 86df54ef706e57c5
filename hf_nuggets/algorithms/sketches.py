"""F0/F2 sketches: AMS (Alon+ STOC 1996), fast AMS (Charikar+ 2002, Thorup+ 2004), HLL (Flajolet+ 2007, Ertl 2017).

For a stream of items x with (integer) counts f_x: F0 = number of distinct items, F2 = sum of f_x**2, n = sum of f_x.
Items are 64-bit hashes (`hash_items`, `iter_ngram_hashes`). Guarantees:

- `AMSSketch(epsilon, delta)`: g groups of k copies of Z = sum_x s(x) f_x, s a 4-wise independent +-1 hash.
  E[Z**2] = F2 and Var(Z**2) = 2 (F2**2 - F4) <= 2 F2**2, so by Chebyshev the mean of k copies is off by more than
  epsilon F2 with probability <= 2 / (k epsilon**2) = 1/4 for k = ceil(8 / epsilon**2). The median of g independent
  means is off only if >= g/2 means are; by the Chernoff bound that has probability <= exp(-g D(1/2 || 1/4)) =
  (3/4)**(g/2) <= delta for g = ceil(2 ln(1/delta) / ln(4/3)). Hence P(|estimate - F2| > epsilon F2) <= delta.
- `FastAMSSketch(epsilon, delta)`: d rows of w counters; x adds s_r(x) f_x to counter h_r(x) of row r. A row's sum
  of squares has mean F2 and variance 2 (F2**2 - F4) / w, so w = k and d = g give the same guarantee with the same
  memory (up to the 2**-32 bias of the buckets), at O(d) hash evaluations per distinct item of a batch instead of
  O(k g / 61).
- `HyperLogLog(precision)`: m = 2**precision one-byte registers; relative standard error about 1.04 / sqrt(m) (less
  for few items) at every cardinality (Ertl's estimator needs no bias tables), treating the mixed 64-bit hashes as
  uniform random.
- Merging sketches with equal parameters and seed gives exactly the state of one pass over the whole stream (integer
  counter sums, register maxima), whatever the sharding and order. Counters are exact int64 (no float rounding)
  while the total absolute count stays below 2**63.
- Inputs are validated: bad ones raise `ValueError` naming the argument and the value.

Signs and buckets come from degree-3 polynomials over GF(2**61 - 1) (`PolyHash4`, exact uint64 arithmetic). One
polynomial value uniform on [0, 2**61 - 1) has 61 nearly independent uniform bits (total-variation distance from
independent 2**-61), and 4-wise independence holds for each bit and jointly: so one polynomial gives 61 sign
functions, and the 61 copies' Z**2 are pairwise uncorrelated, which is all Chebyshev needs. Different groups (and
fast-AMS rows) use different, independently drawn polynomials, as the Chernoff step needs. Hashes are reduced mod p
first, so two distinct 64-bit hashes act as one item with probability about 2**-61.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from ._hashing import (
    PolyHash4,
    aggregate,
    as_counts,
    as_hashes,
    exact_bincount,
    float_weights,
    hash_items,
    iter_ngram_hashes,
    little_endian_bytes,
    mix64,
    word_ngrams,
)
from ._validation import check_int, check_prob

__all__ = [
    "AMSSketch",
    "FastAMSSketch",
    "HyperLogLog",
    "diversity_stats",
    "diversity_stats_from_sketches",
    "f2_sketch_size",
    "hash_items",
    "iter_ngram_hashes",
    "word_ngrams",
]

_CHUNK = 1 << 14  # distinct items hashed at once
_BITS = 61  # usable sign bits per polynomial value
_BYTE_OFFSETS = (np.arange(8, dtype=np.int64) * 256)[None, :]
_BIT_TABLE = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(np.int64)  # [byte value, bit]
_MAGIC = b"HFSK\x01"
_S29, _S32 = np.uint64(29), np.uint64(32)
_LOG43 = math.log(4 / 3)


def f2_sketch_size(epsilon: float = 0.25, delta: float = 0.1) -> tuple[int, int]:
    """Counters per group (AMS copies / fast-AMS width) and groups (rows) for an (epsilon, delta) F2 guarantee.

    Args:
        epsilon (`float`, *optional*, defaults to `0.25`):
            Relative error, in (0, 1): k = ceil(8 / epsilon**2) (Chebyshev, failure 1/4 per group).
        delta (`float`, *optional*, defaults to `0.1`):
            Failure probability, in (0, 1): g = ceil(2 ln(1/delta) / ln(4/3)) (Chernoff for the median).

    Returns:
        `tuple[int, int]`: `(k, g)`; the sketch holds k * g int64 counters.

    Example:

    ```python
    >>> f2_sketch_size(0.25, 0.1)
    (128, 17)
    ```
    """
    epsilon, delta = check_prob("epsilon", epsilon), check_prob("delta", delta)
    return math.ceil(8 / epsilon**2), max(1, math.ceil(2 * math.log(1 / delta) / _LOG43))


def _narrow(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "u" or a.size == 0:
        return a
    lo, hi = int(a.min()), int(a.max())
    for dt in (np.int8, np.int16, np.int32):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return a.astype(dt)
    return a


def _pack(header: dict, state: np.ndarray) -> bytes:
    state = _narrow(state)
    head = json.dumps({**header, "dtype": state.dtype.newbyteorder("<").str}, sort_keys=True).encode()
    body = zlib.compress(state.astype(state.dtype.newbyteorder("<")).tobytes(), 6)
    return _MAGIC + len(head).to_bytes(4, "little") + head + body


def _unpack(data: Any, kind: str) -> tuple[dict, np.ndarray]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"`data` must be bytes, got {type(data).__name__}.")
    if bytes(data[:5]) != _MAGIC:
        raise ValueError(f"`data` is not a serialized hf-nuggets sketch: {bytes(data[:16])!r}...")
    data = bytes(data)
    length = int.from_bytes(data[5:9], "little")
    try:
        header = json.loads(data[9 : 9 + length])
        state = np.frombuffer(zlib.decompress(data[9 + length :]), dtype=np.dtype(header["dtype"]))
    except (ValueError, KeyError, TypeError, zlib.error) as err:
        raise ValueError(f"`data` is a corrupt serialized sketch: {err}") from None
    if header.get("kind") != kind:
        raise ValueError(f"`data` holds a {header.get('kind')}, not a {kind}.")
    return header, state


class _F2Sketch:
    """Shared state of the F2 sketches: an int64 counter matrix, the seed, the count n, the shape names."""

    _shape_names: tuple[str, str]  # (rows, columns)

    def _setup(self, rows: int, cols: int, seed: int) -> None:
        names = self._shape_names
        self.seed = check_int("seed", seed, low=0)
        rows, cols = check_int(names[0], rows), check_int(names[1], cols, high=1 << 31)
        self.counters = np.zeros((rows, cols), dtype=np.int64)
        self.n = 0
        self.epsilon = math.sqrt(8 / cols)
        self.delta = 0.75 ** (rows / 2)
        self._init_hash(np.random.default_rng(self.seed))

    def _init_hash(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _update_chunk(self, items: np.ndarray, counts: np.ndarray) -> None:
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        """Bytes of counter state in memory."""
        return self.counters.nbytes

    def update(self, hashes: Any, counts: Any = None) -> None:
        """Adds a batch of hashed items, each once or with an integer count (negative counts delete).

        Args:
            hashes (`np.ndarray`):
                Integer hashes (any shape; signed values are taken modulo 2**64), e.g. from `hash_items`.
            counts (`np.ndarray`, *optional*):
                One integer count per hash; defaults to 1 each.
        """
        x = as_hashes(hashes)
        items, cnt = aggregate(x, None if counts is None else as_counts(counts, x.size))
        keep = cnt != 0
        items, cnt = items[keep], cnt[keep]
        self.n += int(cnt.sum())
        for start in range(0, items.size, _CHUNK):
            self._update_chunk(items[start : start + _CHUNK], cnt[start : start + _CHUNK])

    def error_bound(self) -> tuple[float, float]:
        """`(epsilon, delta)`: P(|estimate - F2| > epsilon * F2) <= delta."""
        return self.epsilon, self.delta

    def _check_mergeable(self, other: Any) -> None:
        if type(other) is not type(self):
            raise ValueError(f"`other` must be a {type(self).__name__}, got {type(other).__name__}.")
        pairs = [("seed", self.seed, other.seed)]
        pairs += list(zip(self._shape_names, self.counters.shape, other.counters.shape, strict=True))
        for name, mine, theirs in pairs:
            if mine != theirs:
                raise ValueError(f"Cannot merge sketches with different `{name}`: {mine} != {theirs}.")

    def merge(self, other: _F2Sketch) -> _F2Sketch:
        """Adds `other`'s stream to this sketch (in place; returns `self`); needs the same seed and shape."""
        self._check_mergeable(other)
        self.counters += other.counters
        self.n += other.n
        return self

    def copy(self) -> _F2Sketch:
        """An independent copy."""
        return type(self).from_bytes(self.to_bytes())

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and self.seed == other.seed
            and self.n == other.n
            and self.counters.shape == other.counters.shape
            and bool(np.array_equal(self.counters, other.counters))
        )

    __hash__ = None  # type: ignore[assignment]

    def to_bytes(self) -> bytes:
        """Serialises the sketch (zlib-compressed counters in the narrowest integer type that holds them)."""
        rows, cols = self.counters.shape
        header = {"kind": type(self).__name__, "seed": self.seed, "n": self.n, "rows": rows, "cols": cols}
        return _pack(header, self.counters)

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        """Rebuilds a sketch written by `to_bytes`."""
        header, state = _unpack(data, cls.__name__)
        sketch = cls.from_size(header["cols"], header["rows"], seed=header["seed"])
        if state.size != sketch.counters.size:
            raise ValueError(f"`data` holds {state.size} counters, expected {sketch.counters.size}.")
        sketch.counters[...] = state.reshape(sketch.counters.shape)
        sketch.n = int(header["n"])
        return sketch

    @classmethod
    def from_size(cls, cols: int, rows: int, *, seed: int = 0) -> Any:
        sketch = cls.__new__(cls)
        sketch._setup(rows, cols, seed)
        return sketch

    def __repr__(self) -> str:
        (rname, cname), (rows, cols) = self._shape_names, self.counters.shape
        return f"{type(self).__name__}({cname}={cols}, {rname}={rows}, seed={self.seed}, n={self.n})"


class AMSSketch(_F2Sketch):
    """The AMS F2 sketch: the median over `groups` of the mean over `copies` of Z**2, Z = sum_x s(x) f_x.

    Args:
        epsilon (`float`, *optional*, defaults to `0.25`):
            Relative error of the guarantee, in (0, 1); sets `copies = ceil(8 / epsilon**2)`.
        delta (`float`, *optional*, defaults to `0.1`):
            Failure probability, in (0, 1); sets `groups = ceil(2 ln(1/delta) / ln(4/3))`.
        seed (`int`, *optional*, defaults to `0`):
            Seed of `np.random.default_rng` drawing the sign polynomials; merging needs equal seeds.

    `epsilon`, `delta` attributes hold the guarantee the sizes achieve (at least as good as asked); `from_size`
    builds a sketch from `copies` and `groups` directly. Each update costs ceil(copies / 61) * groups polynomial
    evaluations per distinct item of the batch.

    Example:

    ```python
    >>> sketch = AMSSketch(epsilon=0.25, delta=0.1, seed=0)
    >>> sketch.update(np.arange(1000) % 10)  # 10 items, 100 times each: F2 = 10 * 100**2
    >>> sketch.copies, sketch.groups, abs(sketch.estimate() / 100_000 - 1) <= sketch.epsilon
    (128, 17, True)
    ```
    """

    _shape_names = ("groups", "copies")

    def __init__(self, epsilon: float = 0.25, delta: float = 0.1, *, seed: int = 0):
        copies, groups = f2_sketch_size(epsilon, delta)
        self._setup(groups, copies, seed)

    @classmethod
    def from_size(cls, copies: int, groups: int, *, seed: int = 0) -> AMSSketch:
        """An AMS sketch with `copies` counters per group and `groups` groups (epsilon = sqrt(8 / copies))."""
        return super().from_size(copies, groups, seed=seed)

    @property
    def groups(self) -> int:
        """Number of groups (medians are taken over them)."""
        return self.counters.shape[0]

    @property
    def copies(self) -> int:
        """Counters per group (means are taken over them)."""
        return self.counters.shape[1]

    def _init_hash(self, rng: np.random.Generator) -> None:
        self._per_group = -(-self.copies // _BITS)
        self._hash = PolyHash4(self.groups * self._per_group, rng)

    def _bit_sums(self, items: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """For each polynomial j and bit b: the sum of counts of the items whose h_j value has bit b set."""
        powers = self._hash.powers(items)
        weights = np.repeat(counts, 8)
        weights_f = float_weights(weights)
        sums = np.empty((self._hash.coefficients.shape[0], 64), dtype=np.int64)
        for j in range(sums.shape[0]):
            idx = (little_endian_bytes(self._hash(j, powers)) + _BYTE_OFFSETS).ravel()
            sums[j] = (exact_bincount(idx, weights, 2048, weights_f).reshape(8, 256) @ _BIT_TABLE).ravel()
        return sums[:, :_BITS].reshape(self.groups, self._per_group * _BITS)[:, : self.copies]

    def _update_chunk(self, items: np.ndarray, counts: np.ndarray) -> None:
        # s = 1 - 2 * bit, so sum_x s(x) f_x = sum_x f_x - 2 * (sum of f_x over items with the bit set)
        self.counters += int(counts.sum()) - 2 * self._bit_sums(items, counts)

    def signs(self, hashes: Any) -> np.ndarray:
        """The +-1 sign of each hash in each copy, shape `(groups, copies, len(hashes))` (for inspection)."""
        x = as_hashes(hashes)
        powers = self._hash.powers(x)
        bits = [
            np.unpackbits(little_endian_bytes(self._hash(j, powers)), axis=1, bitorder="little")[:, :_BITS]
            for j in range(self._hash.coefficients.shape[0])
        ]
        stacked = np.stack(bits).reshape(self.groups, self._per_group, x.size, _BITS).transpose(0, 1, 3, 2)
        return (1 - 2 * stacked.reshape(self.groups, -1, x.size)[:, : self.copies].astype(np.int8)).astype(np.int8)

    def estimate(self) -> float:
        """The F2 estimate: median over groups of the mean of the squared counters."""
        z = self.counters.astype(np.float64)
        return float(np.median((z * z).mean(axis=1)))


class FastAMSSketch(_F2Sketch):
    """The fast AMS (CountSketch-style) F2 sketch: per row, one bucket and one sign per item; median of row sums of
    squared counters.

    Args:
        epsilon (`float`, *optional*, defaults to `0.25`):
            Relative error of the guarantee, in (0, 1); sets `width = ceil(8 / epsilon**2)`.
        delta (`float`, *optional*, defaults to `0.1`):
            Failure probability, in (0, 1); sets `depth = ceil(2 ln(1/delta) / ln(4/3))`.
        seed (`int`, *optional*, defaults to `0`):
            Seed of `np.random.default_rng` drawing the row polynomials; merging needs equal seeds.

    Row r evaluates one 4-wise independent polynomial value v: the sign is bit 0, the bucket is
    `((v >> 29) * width) >> 32` (bits 29-60; bucket probabilities within width / 2**32 of uniform).

    Example:

    ```python
    >>> sketch = FastAMSSketch(seed=0)
    >>> sketch.update(np.arange(1000) % 10)
    >>> sketch.width, sketch.depth, abs(sketch.estimate() / 100_000 - 1) <= sketch.epsilon
    (128, 17, True)
    ```
    """

    _shape_names = ("depth", "width")

    def __init__(self, epsilon: float = 0.25, delta: float = 0.1, *, seed: int = 0):
        width, depth = f2_sketch_size(epsilon, delta)
        self._setup(depth, width, seed)

    @classmethod
    def from_size(cls, width: int, depth: int, *, seed: int = 0) -> FastAMSSketch:
        """A fast AMS sketch with `depth` rows of `width` counters (epsilon = sqrt(8 / width))."""
        return super().from_size(width, depth, seed=seed)

    @property
    def depth(self) -> int:
        """Number of rows (medians are taken over them)."""
        return self.counters.shape[0]

    @property
    def width(self) -> int:
        """Counters per row."""
        return self.counters.shape[1]

    def _init_hash(self, rng: np.random.Generator) -> None:
        self._hash = PolyHash4(self.depth, rng)

    def _update_chunk(self, items: np.ndarray, counts: np.ndarray) -> None:
        powers = self._hash.powers(items)
        depth, width = self.counters.shape
        idx = np.empty((depth, items.size), dtype=np.int64)
        weights = np.empty((depth, items.size), dtype=np.int64)
        w = np.uint64(width)
        for r in range(depth):
            v = self._hash(r, powers)
            idx[r] = (((v >> _S29) * w) >> _S32).astype(np.int64) + r * width
            weights[r] = np.where((v & np.uint64(1)).astype(bool), -counts, counts)
        weights = weights.ravel()
        sums = exact_bincount(idx.ravel(), weights, depth * width, float_weights(weights))
        self.counters += sums.reshape(depth, width)

    def estimate(self) -> float:
        """The F2 estimate: median over rows of the sum of squared counters."""
        z = self.counters.astype(np.float64)
        return float(np.median((z * z).sum(axis=1)))


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        z_old, z = z, z + x * y
        y += y
        if z == z_old:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        y *= 0.5
        z_old, z = z, z - (1.0 - x) ** 2 * y
        if z == z_old:
            return z / 3.0


class HyperLogLog:
    """HyperLogLog distinct counter (F0) with Ertl's improved estimator; relative standard error 1.04 / sqrt(m).

    Args:
        precision (`int`, *optional*, defaults to `12`):
            Index bits p in [4, 18]: m = 2**p one-byte registers (4 KiB and 1.6% standard error for 12).
        seed (`int`, *optional*, defaults to `0`):
            Seed of `np.random.default_rng` drawing the 64-bit key mixed into every hash; merging needs equal seeds.

    Each hash x is mixed (`x ^ key`, MurmurHash3 finalizer, a bijection of 64-bit values); its top p bits pick a
    register, which keeps the maximum of (leading zeros of the other 64 - p bits) + 1.

    Example:

    ```python
    >>> hll = HyperLogLog(precision=12, seed=0)
    >>> hll.update(np.arange(50_000) % 20_000)  # 20000 distinct
    >>> abs(hll.estimate() / 20_000 - 1) <= 3 * hll.relative_standard_error
    True
    ```
    """

    def __init__(self, precision: int = 12, *, seed: int = 0):
        self.precision = check_int("precision", precision, low=4, high=18)
        self.seed = check_int("seed", seed, low=0)
        self.registers = np.zeros(1 << self.precision, dtype=np.uint8)
        self.n = 0
        self.relative_standard_error = 1.04 / math.sqrt(1 << self.precision)
        self._key = int(np.random.default_rng(self.seed).integers(0, 1 << 64, dtype=np.uint64))

    @property
    def nbytes(self) -> int:
        """Bytes of register state in memory."""
        return self.registers.nbytes

    def update(self, hashes: Any) -> None:
        """Adds a batch of hashed items (integer array of any shape; repeats count once).

        Args:
            hashes (`np.ndarray`):
                Integer hashes, e.g. from `hash_items`.
        """
        h = mix64(as_hashes(hashes), self._key)
        p = self.precision
        q = 64 - p
        rest = h << np.uint64(p)
        hi = (rest >> np.uint64(32)).astype(np.float64)
        lo = (rest & np.uint64(0xFFFFFFFF)).astype(np.float64)
        bit_length = np.where(hi > 0, 32 + np.frexp(hi)[1], np.frexp(lo)[1])
        rank = np.minimum(65 - bit_length, q + 1).astype(np.uint8)
        np.maximum.at(self.registers, (h >> np.uint64(q)).astype(np.intp), rank)
        self.n += h.size

    def estimate(self) -> float:
        """The F0 estimate (Ertl 2017, improved estimator: nearly unbiased from 0 distinct items upwards)."""
        m, q = self.registers.size, 64 - self.precision
        c = [float(v) for v in np.bincount(self.registers, minlength=q + 2)]
        z = m * _tau(1.0 - c[q + 1] / m)
        for k in range(q, 0, -1):
            z = 0.5 * (z + c[k])
        z += m * _sigma(c[0] / m)
        if math.isinf(z):  # every register empty
            return 0.0
        return m * m / (2 * math.log(2) * z) if z > 0 else math.inf

    def error_bound(self) -> float:
        """The relative standard error 1.04 / sqrt(m) of `estimate()`."""
        return self.relative_standard_error

    def merge(self, other: HyperLogLog) -> HyperLogLog:
        """Adds `other`'s stream (register-wise maximum, in place; returns `self`); needs equal seed and precision."""
        if type(other) is not type(self):
            raise ValueError(f"`other` must be a {type(self).__name__}, got {type(other).__name__}.")
        for name in ("seed", "precision"):
            if getattr(self, name) != getattr(other, name):
                raise ValueError(
                    f"Cannot merge sketches with different `{name}`: {getattr(self, name)} != {getattr(other, name)}."
                )
        np.maximum(self.registers, other.registers, out=self.registers)
        self.n += other.n
        return self

    def copy(self) -> HyperLogLog:
        """An independent copy."""
        return HyperLogLog.from_bytes(self.to_bytes())

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and (self.seed, self.precision, self.n) == (other.seed, other.precision, other.n)
            and bool(np.array_equal(self.registers, other.registers))
        )

    __hash__ = None  # type: ignore[assignment]

    def to_bytes(self) -> bytes:
        """Serialises the sketch (zlib-compressed registers)."""
        return _pack(
            {"kind": "HyperLogLog", "seed": self.seed, "n": self.n, "precision": self.precision}, self.registers
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> HyperLogLog:
        """Rebuilds a sketch written by `to_bytes`."""
        header, state = _unpack(data, cls.__name__)
        sketch = cls(header["precision"], seed=header["seed"])
        if state.size != sketch.registers.size or state.dtype != np.uint8:
            raise ValueError(f"`data` holds {state.size} {state.dtype} registers, expected {sketch.registers.size}.")
        sketch.registers[:] = state
        sketch.n = int(header["n"])
        return sketch

    def __repr__(self) -> str:
        return f"HyperLogLog(precision={self.precision}, seed={self.seed}, n={self.n})"


def diversity_stats(
    texts: Iterable[str],
    *,
    n: int = 2,
    epsilon: float = 0.25,
    delta: float = 0.1,
    precision: int = 12,
    seed: int = 0,
    lowercase: bool = False,
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Distinct word n-grams (F0) and repeat figures from F2, in one streaming pass over `texts`.

    Args:
        texts (`Iterable[str]`):
            The texts, e.g. a dataset column; read once.
        n (`int`, *optional*, defaults to `2`):
            Words per n-gram.
        epsilon (`float`, *optional*, defaults to `0.25`):
            F2 relative error bound (fast AMS sketch, `f2_sketch_size`).
        delta (`float`, *optional*, defaults to `0.1`):
            F2 failure probability.
        precision (`int`, *optional*, defaults to `12`):
            HyperLogLog precision for F0.
        seed (`int`, *optional*, defaults to `0`):
            Seed of both sketches.
        lowercase (`bool`, *optional*, defaults to `False`):
            Lowercase the texts first.
        batch_size (`int`, *optional*, defaults to `1024`):
            Texts hashed per batch.

    Returns:
        `dict`: `ngram_order`; `n` (total n-grams, exact); `f0` and `f0_relative_standard_error`; `f2`,
        `f2_epsilon`, `f2_delta` (P(|f2 - F2| > f2_epsilon F2) <= f2_delta); `repeat_rate` = F2 / n**2 (the chance
        that two n-gram positions drawn at random hold the same n-gram; same relative error as f2) and
        `effective_distinct` = n**2 / F2 (relative error at most epsilon / (1 - epsilon)). The estimates are clipped
        to what is possible (1 <= F0 <= n, n <= F2 <= n**2), which never moves them away from the truth.

    Example:

    ```python
    >>> stats = diversity_stats(["the cat sat", "the cat ran", "a dog sat"], n=2)
    >>> stats["n"], round(stats["f0"]), round(stats["f2"])
    (6, 5, 8)
    ```
    """
    f0 = HyperLogLog(precision, seed=seed)
    f2 = FastAMSSketch(epsilon, delta, seed=seed)
    for hashes in iter_ngram_hashes(texts, n, batch_size=batch_size, lowercase=lowercase):
        f0.update(hashes)
        f2.update(hashes)
    return diversity_stats_from_sketches(f0, f2, n=n)


def diversity_stats_from_sketches(f0: HyperLogLog, f2: _F2Sketch, *, n: int) -> dict[str, Any]:
    """The statistics of `diversity_stats` from the two sketches of a stream of n-gram hashes.

    Args:
        f0 (`HyperLogLog`): The sketch of the distinct n-grams.
        f2 (`FastAMSSketch` or `AMSSketch`): The F2 sketch of the same stream; its count `n` is the number of n-grams.
        n (`int`): Words per n-gram (reported as `ngram_order`).

    Returns:
        `dict`: What `diversity_stats` returns, the estimates clipped to what is possible.

    Example:

    ```python
    >>> f0, f2 = HyperLogLog(seed=0), FastAMSSketch(seed=0)
    >>> for sketch in (f0, f2):
    ...     sketch.update(hash_items(["the cat", "the cat", "a dog"]))
    >>> stats = diversity_stats_from_sketches(f0, f2, n=2)
    >>> stats["n"], round(stats["f0"]), round(stats["f2"])
    (3, 2, 5)
    ```
    """
    total = f2.n
    f0_est = min(max(f0.estimate(), 1.0), float(total)) if total else 0.0
    f2_est = min(max(f2.estimate(), float(total)), float(total) ** 2) if total else 0.0
    return {
        "ngram_order": n,
        "n": total,
        "f0": f0_est,
        "f0_relative_standard_error": f0.relative_standard_error,
        "f2": f2_est,
        "f2_epsilon": f2.epsilon,
        "f2_delta": f2.delta,
        "repeat_rate": f2_est / total**2 if total else 0.0,
        "effective_distinct": total**2 / f2_est if total else 0.0,
    }
