"""The score histogram and the payoff win rates as PNG images, drawn in numpy and encoded with `zlib` and `struct` (no
plotting library)."""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..summary import histogram

# A 3x5 pixel font, rows top to bottom, for the axis labels.
_GLYPHS = dict(
    zip(
        "0123456789. CDEGKLNOPRSTW",
        "111101101101111 010110010010111 111001111100111 111001111001111 101101111001001 111100111001111 "
        "111100111101111 111001001001001 111101111101111 111101111001111 000000000000010 000000000000000 "
        "111100100100111 110101101101110 111100111100111 111100101101111 101101110101101 100100100100111 "
        "101111111101101 111101101101111 111101111100100 110101110101101 111100111001111 111010010010010 "
        "101101111111101".split(),
        strict=True,
    )
)
# Letters and signs of the payoff chart's labels.
_GLYPHS.update(
    zip(
        "ABFHIMUV%-+",
        "010101111101101 110101110101110 111100110100100 101101111101101 111010010010111 101111101101101 "
        "101101101101111 101101101101010 101001010100101 000000111000000 000010111010000".split(),
        strict=True,
    )
)
KEPT_COLOUR = (212, 160, 23)
DROPPED_COLOUR = (190, 190, 190)
_AXIS_COLOUR = (60, 60, 60)
PNG_MARGINS = (56, 16, 20, 44)  # left, right, top, bottom


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(pixels: np.ndarray) -> bytes:
    """Encode an `(height, width, 3)` array of `uint8` RGB values as a PNG file (8-bit truecolour, no filter)."""
    height, width, _ = pixels.shape
    raw = np.zeros((height, 1 + 3 * width), dtype=np.uint8)
    raw[:, 1:] = pixels.reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(raw.tobytes(), 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _draw_text(pixels: np.ndarray, text: str, x: int, y: int, scale: int = 2) -> None:
    for i, char in enumerate(text.upper()):
        for j, bit in enumerate(_GLYPHS.get(char, _GLYPHS[" "])):
            if bit == "1":
                px, py = x + (i * 4 + j % 3) * scale, y + (j // 3) * scale
                pixels[py : py + scale, px : px + scale] = _AXIS_COLOUR


def histogram_png(
    scores: Sequence[float],
    kept_scores: Sequence[float] | None = None,
    *,
    bins: int = 10,
    width: int = 640,
    height: int = 320,
) -> bytes:
    """A PNG bar chart of golden scores over [0, 1]: kept rows in gold at the bottom of each bar, dropped in grey.

    The tallest bar fills the plot height; a bar of c rows is `round(plot_height * c / max_count)` pixels high.

    Args:
        scores (`list[float]`): Golden scores of all rows.
        kept_scores (`list[float]`, *optional*): Golden scores of the selected rows (a subset of `scores`).
        bins (`int`, *optional*, defaults to `10`): Equal bins over [0, 1], as `hf_nuggets.summary.histogram`.
        width (`int`, *optional*, defaults to `640`): Image width in pixels.
        height (`int`, *optional*, defaults to `320`): Image height in pixels.

    Returns:
        `bytes`: The PNG file.

    Example:

    ```python
    >>> histogram_png([0.1, 0.5, 0.9], [0.9])[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    ```
    """
    left, right, top, bottom = PNG_MARGINS
    if width < left + right + 3 * bins or height < top + bottom + 10:
        raise ValueError(f"`width` x `height` must leave room for {bins} bars, got {width}x{height}.")
    counts = [c for _, _, c in histogram(scores, bins=bins)]
    kept = [c for _, _, c in histogram(kept_scores, bins=bins)] if kept_scores is not None else [0] * bins
    plot_w, plot_h = width - left - right, height - top - bottom
    tallest = max(max(counts, default=0), 1)
    pixels = np.full((height, width, 3), 255, dtype=np.uint8)
    base = top + plot_h  # the x axis
    for i in range(bins):
        x0, x1 = left + round(i * plot_w / bins) + 1, left + round((i + 1) * plot_w / bins) - 1
        pixels[base - round(plot_h * counts[i] / tallest) : base, x0:x1] = DROPPED_COLOUR
        pixels[base - round(plot_h * kept[i] / tallest) : base, x0:x1] = KEPT_COLOUR
    pixels[top : base + 1, left - 1] = _AXIS_COLOUR
    pixels[base, left - 1 : left + plot_w] = _AXIS_COLOUR
    for tick in range(6):
        x = min(left + round(tick * plot_w / 5), width - 1)
        pixels[base : base + 5, x] = _AXIS_COLOUR
        _draw_text(pixels, f"{tick / 5:.1f}", max(0, x - 12), base + 8)
    _draw_text(pixels, "GOLDEN SCORE", left + plot_w // 2 - 48, base + 26)
    _draw_text(pixels, str(tallest), 4, top)
    _draw_text(pixels, "ROWS", 4, top + 16)
    _draw_text(pixels, "0", left - 14, base - 10)
    if kept_scores is not None:
        pixels[4:14, width - 150 : width - 140] = KEPT_COLOUR
        _draw_text(pixels, "KEPT", width - 134, 4)
        pixels[4:14, width - 86 : width - 76] = DROPPED_COLOUR
        _draw_text(pixels, "DROPPED", width - 70, 4)
    return encode_png(pixels)


def write_histogram_png(path: str | os.PathLike, scores: Sequence[float], kept_scores=None, **kwargs: Any) -> Path:
    """Write `histogram_png(scores, kept_scores, **kwargs)` to `path` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(histogram_png(scores, kept_scores, **kwargs))
    return path


def winrate_png(
    labels: Sequence[str],
    values: Sequence[float | None],
    errors: Sequence[float | None] | None = None,
    *,
    highlight: str = "top",
    width: int = 640,
    height: int = 320,
) -> bytes:
    """A PNG bar chart of win rates in percent (0 to 100), with error bars and a dashed line at 50.

    A bar of value v is `round(plot_height * v / 100)` pixels high; its error bar spans v ± its error (one standard
    error in the payoff report), clipped to [0, 100]. A missing value draws no bar.

    Args:
        labels (`list[str]`): One label per bar (arm names), written under it.
        values (`list[float]`): Win rates in percent; `None` for none.
        errors (`list[float]`, *optional*): Half-widths of the error bars; `None` for none.
        highlight (`str`, *optional*, defaults to `"top"`): The label whose bar is gold (the others are grey).
        width (`int`, *optional*, defaults to `640`): Image width in pixels.
        height (`int`, *optional*, defaults to `320`): Image height in pixels.

    Returns:
        `bytes`: The PNG file.

    Example:

    ```python
    >>> winrate_png(["top", "random"], [55.0, 48.5], [3.0, 2.9])[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    ```
    """
    if len(values) != len(labels) or (errors is not None and len(errors) != len(labels)):
        raise ValueError(f"`labels`, `values` and `errors` must have the same length, got {len(labels)} labels.")
    left, right, top, bottom = PNG_MARGINS
    n = max(len(labels), 1)
    if width < left + right + 12 * n or height < top + bottom + 20:
        raise ValueError(f"`width` x `height` must leave room for {n} bars, got {width}x{height}.")
    plot_w, plot_h = width - left - right, height - top - bottom
    base = top + plot_h
    pixels = np.full((height, width, 3), 255, dtype=np.uint8)

    def y_of(v: float) -> int:
        return base - round(plot_h * min(max(v, 0.0), 100.0) / 100)

    for x in range(left, left + plot_w, 8):  # the 50% line, dashed
        pixels[y_of(50), x : x + 4] = DROPPED_COLOUR
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x0, x1 = left + round(i * plot_w / n), left + round((i + 1) * plot_w / n)
        pad = (x1 - x0) // 5
        if value is not None and not math.isnan(value):
            colour = KEPT_COLOUR if label == highlight else DROPPED_COLOUR
            pixels[y_of(value) : base, x0 + pad : x1 - pad] = colour
            error = errors[i] if errors is not None else None
            if error is not None and not math.isnan(error):
                mid, lo, hi = (x0 + x1) // 2, y_of(value - error), y_of(value + error)
                pixels[hi : lo + 1, mid - 1 : mid + 1] = _AXIS_COLOUR
                pixels[hi, mid - 6 : mid + 6] = _AXIS_COLOUR
                pixels[lo, mid - 6 : mid + 6] = _AXIS_COLOUR
        text = label.upper()[: max(1, (x1 - x0) // 8)]
        _draw_text(pixels, text, max(0, (x0 + x1) // 2 - len(text) * 4), base + 8)
    pixels[top : base + 1, left - 1] = _AXIS_COLOUR
    pixels[base, left - 1 : left + plot_w] = _AXIS_COLOUR
    for tick in (0, 25, 50, 75, 100):
        y = y_of(tick)
        pixels[y, left - 5 : left - 1] = _AXIS_COLOUR
        _draw_text(pixels, str(tick), max(0, left - 10 - 8 * len(str(tick))), max(0, y - 4))
    _draw_text(pixels, "WIN RATE % VS BASELINE", left + plot_w // 2 - 88, base + 26)
    return encode_png(pixels)
