"""Hash tables as sorted arrays, shared by SimHash LSH (`lsh`) and MinHash LSH (`minhash`): a point's bucket in a
table is found by binary search over that table's sorted codes, and all members of the buckets of a batch of queries
come back as two flat arrays, without a Python loop over queries or buckets."""

from __future__ import annotations

import numpy as np

__all__ = ["Buckets", "expand_ranges"]


def expand_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of `arange(s, s + c)` over the pairs `(s, c)`, without a Python loop.

    Args:
        starts (`np.ndarray`): First value of each range (integers).
        counts (`np.ndarray`): Length of each range (non-negative integers, as many as `starts`).

    Returns:
        `np.ndarray`: The int64 values of all ranges, in order.

    Example:

    ```python
    >>> expand_ranges(np.array([5, 0, 10]), np.array([2, 0, 3])).tolist()
    [5, 6, 10, 11, 12]
    ```
    """
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    nz = counts > 0
    starts, counts = starts[nz].astype(np.int64), counts[nz].astype(np.int64)
    out = np.ones(total, dtype=np.int64)
    out[0] = starts[0]
    ends = np.cumsum(counts)[:-1]
    out[ends] = starts[1:] - (starts[:-1] + counts[:-1] - 1)
    return np.cumsum(out)


class Buckets:
    """`l` hash tables: per table the sorted codes and the permutation that sorts them.

    Args:
        codes (`np.ndarray` of shape `(l, n)`, uint64): The code of each of `n` points in each of `l` tables.

    Example:

    ```python
    >>> buckets = Buckets(np.array([[7, 3, 7, 1]], dtype=np.uint64))
    >>> rows, points = buckets.lookup(0, np.array([7, 2], dtype=np.uint64))
    >>> rows.tolist(), points.tolist()
    ([0, 0], [0, 2])
    ```
    """

    def __init__(self, codes: np.ndarray):
        self.order = np.argsort(codes, axis=1, kind="stable")
        self.sorted = np.take_along_axis(codes, self.order, axis=1)

    def lookup(self, table: int, query_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(query row, point index)` for every point sharing the bucket of each query code in `table`.

        Args:
            table (`int`): The table.
            query_codes (`np.ndarray`, uint64): One code per query.

        Returns:
            `tuple[np.ndarray, np.ndarray]`: Two int64 arrays of equal length: the query's position in `query_codes`
            and the point, grouped by query in order, points of a bucket in increasing index.
        """
        keys = self.sorted[table]
        lo = np.searchsorted(keys, query_codes, side="left")
        counts = np.searchsorted(keys, query_codes, side="right") - lo
        rows = np.repeat(np.arange(query_codes.size, dtype=np.int64), counts)
        return rows, self.order[table][expand_ranges(lo, counts)]
