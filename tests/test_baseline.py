"""`match_to_baseline`: the model's output for each baseline instruction (`hf-nuggets eval` and the Space)."""

from __future__ import annotations

import pytest

from hf_nuggets.evaluation.baseline import match_to_baseline

BASELINE = [
    {"instruction": "Add 2 and 2.", "output": "It is 4.", "generator": "base"},
    {"instruction": "Name a colour.", "output": "Red.", "generator": "base"},
    {"instruction": "Say hi.", "output": "Hi.", "generator": "base"},
]


def test_outputs_follow_the_baseline_order():
    """The model's records in another order come back in the baseline's order."""
    model = [
        {"instruction": "Say hi.", "output": "Hello!"},
        {"instruction": "Add 2 and 2.", "output": "4"},
        {"instruction": "Name a colour.", "output": "Blue"},
    ]
    assert match_to_baseline(model, BASELINE) == ["4", "Blue", "Hello!"]


def test_instructions_the_baseline_lacks_are_left_out():
    """Extra model records do not appear in the result."""
    model = [
        {"instruction": "Add 2 and 2.", "output": "4"},
        {"instruction": "Unrelated.", "output": "x"},
        {"instruction": "Name a colour.", "output": "Blue"},
        {"instruction": "Say hi.", "output": "Hello!"},
    ]
    assert match_to_baseline(model, BASELINE) == ["4", "Blue", "Hello!"]


def test_the_last_answer_to_a_repeated_instruction_counts():
    """A model that answers an instruction twice is matched by its last answer."""
    model = [
        {"instruction": "Say hi.", "output": "first"},
        {"instruction": "Say hi.", "output": "second"},
    ]
    assert match_to_baseline(model, BASELINE[2:]) == ["second"]


def test_outputs_are_returned_as_they_are():
    """Outputs are not converted: a number or `None` stays one."""
    model = [{"instruction": "Add 2 and 2.", "output": 4}, {"instruction": "Name a colour.", "output": None}]
    assert match_to_baseline(model, BASELINE[:2]) == [4, None]


def test_an_empty_baseline_matches_nothing():
    """No baseline records give no outputs, whatever the model holds."""
    assert match_to_baseline([{"instruction": "Say hi.", "output": "Hi."}], []) == []


def test_missing_instructions_are_counted_and_the_first_named():
    """A baseline instruction the model did not answer is an error with the count and the first one missing."""
    model = [{"instruction": "Name a colour.", "output": "Blue"}]
    with pytest.raises(
        ValueError, match=r"^The model's outputs lack 2 of the baseline's 3 instructions, e\.g\. 'Add 2 and 2\.'\.$"
    ):
        match_to_baseline(model, BASELINE)


def test_a_long_missing_instruction_is_shortened():
    """The missing instruction in the error keeps its first 79 characters (white space folded) and an ellipsis."""
    long = "Explain  why\n" + "a" * 100
    with pytest.raises(ValueError, match="e\\.g\\. 'Explain why " + "a" * 67 + "…'\\.$"):
        match_to_baseline([], [{"instruction": long, "output": "x"}])
