"""Pairing a model's outputs with a baseline's: the model's answer to each of the baseline's instructions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: How much of a missing instruction the error shows.
SHOWN_CHARS = 80


def _shorten(text: str, width: int = SHOWN_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def match_to_baseline(model_outputs: Sequence[Mapping[str, Any]], baseline: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The model's output for each of the baseline's instructions, in the baseline's order.

    Both sides are records in AlpacaEval's format (`{instruction, output[, generator]}`, as `read_outputs` reads
    them). Records are matched by their exact `instruction`; the model may answer more instructions than the baseline
    holds (those are left out), and when it answers one instruction twice, its last answer counts. Outputs are
    returned as they are in the records.

    Args:
        model_outputs (`list[dict]`): The model's records.
        baseline (`list[dict]`): The baseline's records; their order is the order of the result.

    Returns:
        `list`: The `output` of the model's record for each baseline record, one a baseline record.

    Raises:
        ValueError: The model's records lack some of the baseline's instructions (the error counts them and shows
            the first, shortened to 80 characters).

    Example:

    ```python
    >>> baseline = [{"instruction": "Add 2 and 2.", "output": "4"}, {"instruction": "Name a colour.", "output": "Red"}]
    >>> model = [{"instruction": "Name a colour.", "output": "Blue."}, {"instruction": "Add 2 and 2.", "output": "4."}]
    >>> match_to_baseline(model, baseline)
    ['4.', 'Blue.']
    >>> match_to_baseline(model[:1], baseline)
    Traceback (most recent call last):
    ...
    ValueError: The model's outputs lack 1 of the baseline's 2 instructions, e.g. 'Add 2 and 2.'.
    ```
    """
    by_instruction = {record["instruction"]: record for record in model_outputs}
    missing = [record["instruction"] for record in baseline if record["instruction"] not in by_instruction]
    if missing:
        raise ValueError(
            f"The model's outputs lack {len(missing)} of the baseline's {len(baseline)} instructions, e.g. "
            f"{_shorten(str(missing[0]))!r}."
        )
    return [by_instruction[record["instruction"]]["output"] for record in baseline]
