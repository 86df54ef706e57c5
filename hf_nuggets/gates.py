"""Sanity gates: named rules that keep a row out of any top-n%, whatever its golden score.

A golden score measures how much a row helps the prospector as a demonstration, not whether its answer belongs to its
question or is finished. The gates catch what it misses, from the row's text and from two signals the scorer reads
in the same pass (`nuggets_alignment` and `nuggets_completeness`, see `GoldenScorer`):

- `empty`: the answer is blank after stripping;
- `placeholder`: the whole answer is one of `PLACEHOLDERS`, compared case-insensitively after stripping;
- `unaligned`: `nuggets_alignment` is at or below `alignment_threshold` (the instruction does not help predict the
  answer: the answer does not belong to its question);
- `unfinished`: `nuggets_completeness` is below `completeness_threshold` (the prospector does not expect the answer
  to end where it ends: it was cut off).

A row's gates are written to the `nuggets_flags` column as gate names joined by commas (`""` when none fire), so a
scored dataset keeps the diagnosis. Selection (`hf_nuggets.selection`) reads that column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

FLAGS_COLUMN = "nuggets_flags"
ALIGNMENT_COLUMN = "nuggets_alignment"
COMPLETENESS_COLUMN = "nuggets_completeness"

#: The gates, in the order flags are written.
GATE_NAMES = ("empty", "placeholder", "unaligned", "unfinished")

#: Whole answers that stand for "no answer" (compared lower-cased, after stripping): the Alpaca data's
#: `<nooutput>`, and the fillers that data exports and annotation tools write for a missing value.
PLACEHOLDERS = (
    "<nooutput>",
    "<no output>",
    "no output",
    "<noinput>",
    "n/a",
    "na",
    "none",
    "null",
    "nan",
    "-",
    "--",
    "...",
    "tbd",
    "todo",
    "[deleted]",
    "[removed]",
)

#: The grids the thresholds are chosen on: nats for `unaligned`, log-probabilities of powers of ten for `unfinished`.
ALIGNMENT_GRID = tuple(round(0.1 * i, 1) for i in range(-10, 11))
COMPLETENESS_GRID = tuple(math.log(10.0**-k) for k in range(1, 13))

#: The thresholds the rule (`calibrate_thresholds`) gives for the embedded SmolLM2-135M-Instruct with the NUGGETS
#: template: `nuggets_alignment` at or below 0.1 nats is `unaligned`, `nuggets_completeness` below log(1e-4) is
#: `unfinished`. `row_flags` uses them when given no settings; a scorer calibrates its own (see `GateSettings`).
ALIGNMENT_THRESHOLD = 0.1
COMPLETENESS_THRESHOLD = math.log(1e-4)


def calibrate_thresholds(intact_alignment: Sequence[float], intact_completeness: Sequence[float]) -> tuple:
    """The thresholds of `unaligned` and `unfinished` for a prospector, from its signals on intact answers.

    The rule: the loosest value of each grid that gates none of the intact answers; the strictest grid value when
    every value would gate one. The intact answers are the reference answers of the shipped task set (see
    `hf_nuggets.scoring.scorer.calibrated_gate_settings`), never the data being scored. 0 nats is IFD = 1, where
    Cherry-LLM and Superfiltering drop a pair; the prompt side of our alignment also carries the template's frame,
    which lifts any answer a little, so the rule may settle above 0.

    Args:
        intact_alignment (`list[float]`): `nuggets_alignment` of the intact answers.
        intact_completeness (`list[float]`): `nuggets_completeness` of the intact answers (NaN values are ignored).

    Returns:
        `tuple[float, float]`: `(alignment_threshold, completeness_threshold)`.

    Example:

    ```python
    >>> a, c = calibrate_thresholds([0.25, 0.9, 1.4], [-3.0, -8.5, -5.0])
    >>> a, round(math.exp(c), 12)
    (0.2, 0.0001)
    ```
    """
    alignment = np.asarray(intact_alignment, dtype=np.float64)
    completeness = np.asarray(intact_completeness, dtype=np.float64)
    alignment, completeness = alignment[~np.isnan(alignment)], completeness[~np.isnan(completeness)]
    low_a = alignment.min() if alignment.size else math.inf
    low_c = completeness.min() if completeness.size else math.inf
    a = max((t for t in ALIGNMENT_GRID if t < low_a), default=ALIGNMENT_GRID[0])
    c = max((t for t in COMPLETENESS_GRID if t <= low_c), default=COMPLETENESS_GRID[-1])
    return a, c


@dataclass(frozen=True)
class GateSettings:
    """Thresholds and the placeholder list the gates use.

    Args:
        alignment_threshold (`float` or `"auto"`, *optional*, defaults to `"auto"`): `unaligned` when
            `nuggets_alignment` is at or below it. `"auto"`: chosen by `calibrate_thresholds` for the prospector and
            template when the scorer starts.
        completeness_threshold (`float` or `"auto"`, *optional*, defaults to `"auto"`): `unfinished` when
            `nuggets_completeness` is below it; `"auto"` as above.
        placeholders (`tuple[str, ...]`, *optional*, defaults to `PLACEHOLDERS`): Whole answers that count as no
            answer, compared lower-cased after stripping.
    """

    alignment_threshold: float | str = "auto"
    completeness_threshold: float | str = "auto"
    placeholders: tuple[str, ...] = PLACEHOLDERS

    def __post_init__(self):
        for name in ("alignment_threshold", "completeness_threshold"):
            value = getattr(self, name)
            if value == "auto":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise ValueError(f"`{name}` must be a number or 'auto', got {value!r}.")
        object.__setattr__(self, "placeholders", tuple(p.strip().lower() for p in self.placeholders))

    @property
    def resolved(self) -> bool:
        """Whether both thresholds are numbers (no `"auto"` left)."""
        return "auto" not in (self.alignment_threshold, self.completeness_threshold)

    def resolve(self, alignment_threshold: float, completeness_threshold: float) -> GateSettings:
        """These settings with each `"auto"` threshold replaced by the given value."""
        auto_a, auto_c = self.alignment_threshold == "auto", self.completeness_threshold == "auto"
        return replace(
            self,
            alignment_threshold=alignment_threshold if auto_a else self.alignment_threshold,
            completeness_threshold=completeness_threshold if auto_c else self.completeness_threshold,
        )


def row_flags(
    output: str, alignment: float, completeness: float, settings: GateSettings | None = None
) -> tuple[str, ...]:
    """The gates a row fails, in `GATE_NAMES` order.

    A signal that is NaN (an empty answer has none; a completeness is unknown when the answer was cut by
    `max_answer_tokens`) fires no gate.

    Args:
        output (`str`): The row's answer.
        alignment (`float`): Its `nuggets_alignment`.
        completeness (`float`): Its `nuggets_completeness`.
        settings (`GateSettings`, *optional*): Thresholds (numbers) and placeholders; when omitted, the placeholders
            and the thresholds of the embedded default prospector (`ALIGNMENT_THRESHOLD`, `COMPLETENESS_THRESHOLD`).

    Returns:
        `tuple[str, ...]`: The names of the gates that fire.

    Example:

    ```python
    >>> row_flags("  N/A ", float("nan"), float("nan"))
    ('placeholder',)
    >>> row_flags("Paris is the capital of France.", -0.2, -12.0)
    ('unaligned', 'unfinished')
    >>> row_flags("Paris.", 0.8, -0.1)
    ()
    ```
    """
    settings = settings or GateSettings(ALIGNMENT_THRESHOLD, COMPLETENESS_THRESHOLD)
    if not settings.resolved:
        raise ValueError("`settings` has an 'auto' threshold left: resolve it first (`calibrated_gate_settings`).")
    text = output.strip()
    flags = []
    if not text:
        flags.append("empty")
    elif text.lower() in settings.placeholders:
        flags.append("placeholder")
    if alignment <= settings.alignment_threshold:  # False for NaN
        flags.append("unaligned")
    if completeness < settings.completeness_threshold:
        flags.append("unfinished")
    return tuple(flags)


def join_flags(flags: Iterable[str]) -> str:
    """The `nuggets_flags` value of a row: gate names joined by commas, `""` when none fire."""
    return ",".join(flags)


def split_flags(value: Any) -> tuple[str, ...]:
    """The gate names of a `nuggets_flags` value (a comma-joined string, or a list)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(name for name in value.split(",") if name)
    return tuple(value)


def flags_to_bits(flags: Sequence[Any]) -> np.ndarray:
    """`nuggets_flags` values as one byte a row (bit i for `GATE_NAMES[i]`), for numeric checkpoint files.

    Example:

    ```python
    >>> bits_to_flags(flags_to_bits(["", "empty", "unaligned,unfinished"]))
    ['', 'empty', 'unaligned,unfinished']
    ```
    """
    bit = {name: 1 << i for i, name in enumerate(GATE_NAMES)}
    return np.array([sum(bit[name] for name in split_flags(value)) for value in flags], dtype=np.uint8)


def bits_to_flags(bits: Any) -> list[str]:
    """The `nuggets_flags` values of bytes written by `flags_to_bits`."""
    return [join_flags(name for i, name in enumerate(GATE_NAMES) if int(b) >> i & 1) for b in np.asarray(bits)]


def check_gates(gates: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Validate a `gates` argument: `None` (no gates), `"all"`, or a list of gate names.

    Example:

    ```python
    >>> check_gates("all")
    ('empty', 'placeholder', 'unaligned', 'unfinished')
    >>> check_gates(["empty"])
    ('empty',)
    ```
    """
    if gates is None:
        return None
    if isinstance(gates, str):
        gates = GATE_NAMES if gates == "all" else [name.strip() for name in gates.split(",") if name.strip()]
    names = tuple(gates)
    unknown = [name for name in names if name not in GATE_NAMES]
    if unknown:
        raise ValueError(f"Unknown gate(s) {unknown} in `gates`; the gates are {list(GATE_NAMES)} (or 'all').")
    return tuple(name for name in GATE_NAMES if name in names)


def gated_mask(flags: Sequence[Any], gates: str | Sequence[str] | None = "all") -> np.ndarray:
    """Which rows the chosen `gates` keep out of a selection, from a `nuggets_flags` column.

    Args:
        flags (`list`): The `nuggets_flags` values.
        gates (`str` or `list[str]`, *optional*, defaults to `"all"`): The gates to apply; `None` for none.

    Returns:
        `np.ndarray`: A boolean mask, `True` for a gated row.

    Example:

    ```python
    >>> gated_mask(["", "empty", "unaligned,unfinished"], ["unfinished"]).tolist()
    [False, False, True]
    ```
    """
    names = check_gates(gates)
    if not names:
        return np.zeros(len(flags), dtype=bool)
    chosen = set(names)
    return np.array([bool(chosen.intersection(split_flags(value))) for value in flags], dtype=bool)


def flag_counts(flags: Sequence[Any], gates: str | Sequence[str] | None = "all") -> dict[str, int]:
    """How many rows each chosen gate flags (a row can count under several gates), in `GATE_NAMES` order.

    Example:

    ```python
    >>> flag_counts(["", "empty", "unaligned,unfinished", "unaligned"])
    {'empty': 1, 'placeholder': 0, 'unaligned': 2, 'unfinished': 1}
    ```
    """
    names = check_gates(gates) or ()
    counts = dict.fromkeys(names, 0)
    for value in flags:
        for name in split_flags(value):
            if name in counts:
                counts[name] += 1
    return counts


def flag_line(flags: Sequence[Any], gates: str | Sequence[str] | None = "all") -> str:
    """One line for people: how many rows were flagged, and by which gate.

    Example:

    ```python
    >>> flag_line(["", "empty", "unaligned,unfinished", "placeholder"])
    'Flagged 3 of 4 rows: empty 1, placeholder 1, unaligned 1, unfinished 1'
    ```
    """
    mask = gated_mask(flags, gates)
    counts = flag_counts(flags, gates)
    parts = ", ".join(f"{name} {count}" for name, count in counts.items() if count)
    if not mask.any():
        return f"Flagged 0 of {len(flags)} rows."
    return f"Flagged {int(mask.sum())} of {len(flags)} rows: {parts}"
