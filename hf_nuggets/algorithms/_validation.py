"""Argument checks shared by `hf_nuggets.algorithms`: each raises `ValueError` naming the argument and the value."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_int", "check_prob", "check_vectors"]


def check_int(name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    """`value` as an `int` if it is an integer (not a `bool`) in `[low, high]`.

    Args:
        name (`str`): The argument's name, for the message.
        value (`Any`): The value to check: a Python or NumPy integer.
        low (`int`, *optional*, defaults to `1`): Smallest value allowed.
        high (`int`, *optional*): Largest value allowed; no upper bound when omitted (or `0`).

    Returns:
        `int`: The value.

    Example:

    ```python
    >>> check_int("k", 3), check_int("bits", 64, 1, 64)
    (3, 64)
    >>> check_int("k", 0)
    Traceback (most recent call last):
    ...
    ValueError: `k` must be an integer >= 1, got 0.
    ```
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (high and value > high):
        bound = f"in [{low}, {high}]" if high else f">= {low}"
        raise ValueError(f"`{name}` must be an integer {bound}, got {value!r}.")
    return int(value)


def check_prob(name: str, value: Any, *, closed_low: bool = False, closed_high: bool = False) -> float:
    """`value` as a `float` if it is a real number (not a `bool`) in the interval from 0 to 1.

    Args:
        name (`str`): The argument's name, for the message.
        value (`Any`): The value to check: a Python or NumPy integer or float.
        closed_low (`bool`, *optional*, defaults to `False`): Allow 0.
        closed_high (`bool`, *optional*, defaults to `False`): Allow 1.

    Returns:
        `float`: The value.

    Example:

    ```python
    >>> check_prob("p", 0.5), check_prob("p", 1, closed_high=True)
    (0.5, 1.0)
    >>> check_prob("p", 1.0)
    Traceback (most recent call last):
    ...
    ValueError: `p` must be a number in (0, 1), got 1.0.
    ```
    """
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    ok = ok and (0 <= value if closed_low else 0 < value) and (value <= 1 if closed_high else value < 1)
    if not ok:
        interval = ("[" if closed_low else "(") + "0, 1" + ("]" if closed_high else ")")
        raise ValueError(f"`{name}` must be a number in {interval}, got {value!r}.")
    return float(value)


def check_vectors(name: str, vectors: Any, dim: int | None = None, *, shape: str = "(n, dim)") -> np.ndarray:
    """`vectors` as a C-contiguous float32 matrix: two-dimensional, not empty, real and finite.

    Args:
        name (`str`): The argument's name, for the messages.
        vectors (`Any`): An array-like of shape `(n, dim)`; with `dim` given, one vector of shape `(dim,)` is read
            as one row.
        dim (`int`, *optional*): The dimension the rows must have; any when omitted.
        shape (`str`, *optional*, defaults to `"(n, dim)"`): How the expected shape is written in the message about
            a wrong number of dimensions.

    Returns:
        `np.ndarray`: The float32 matrix (the input itself when it already is one).

    Example:

    ```python
    >>> check_vectors("X", [[1, 2], [3, 4]]).dtype
    dtype('float32')
    >>> check_vectors("X", [1.0, 2.0], dim=2).shape
    (1, 2)
    >>> check_vectors("X", [1.0, 2.0], shape="(n_points, dim)")
    Traceback (most recent call last):
    ...
    ValueError: `X` must be a 2-D array of shape (n_points, dim), got shape (2,).
    ```
    """
    arr = np.asarray(vectors)
    if arr.ndim == 1 and dim is not None and arr.size == dim:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array of shape {shape}, got shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"`{name}` must have dimension {dim}, got shape {arr.shape}.")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"`{name}` must hold real numbers, got dtype {arr.dtype}.")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise ValueError(f"`{name}` must be finite, got a NaN or infinite value in row {int(np.flatnonzero(bad)[0])}.")
    return arr
