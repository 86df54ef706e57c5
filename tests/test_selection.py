"""Selecting the top or bottom n% of a scored dataset."""

from __future__ import annotations

import pytest
from datasets import Dataset

from hf_nuggets import select_top
from hf_nuggets.selection import n_selected, rank_order


def scored(n=20):
    return Dataset.from_dict(
        {
            "id": list(range(n)),
            "golden_score": [(i * 7 % 5) / 4 for i in range(n)],
            "nuggets_gain": [i / 100 for i in range(n)],
        }
    )


def test_top_rows_are_the_best_by_score_then_gain():
    """The kept rows are exactly the highest golden scores, ties broken by the higher gain, best first."""
    ds = scored()
    best = select_top(ds, percent=25)
    expected = sorted(range(20), key=lambda i: (-ds["golden_score"][i], -ds["nuggets_gain"][i]))[:5]
    assert best["id"] == expected


def test_bottom_rows_are_the_worst_first():
    """`bottom=True` keeps the worst rows, worst first."""
    ds = scored()
    worst = select_top(ds, percent=25, bottom=True)
    expected = sorted(range(20), key=lambda i: (ds["golden_score"][i], ds["nuggets_gain"][i]))[:5]
    assert worst["id"] == expected


def test_remaining_ties_keep_row_order():
    """Rows equal in score and gain keep their original order."""
    assert rank_order([0.5, 0.5, 0.5], [0.0, 0.0, 0.0]).tolist() == [0, 1, 2]


def test_count_is_rounded_and_at_least_one():
    """5% of 52,002 rows is 2,600 rows; a tiny dataset still keeps one row."""
    assert n_selected(52_002, 5) == 2600
    assert n_selected(10, 1) == 1
    assert n_selected(10, 100) == 10


@pytest.mark.parametrize("percent", [0, -1, 100.5, "5", True])
def test_percent_out_of_range_is_refused(percent):
    """`percent` must be a number in (0, 100]."""
    with pytest.raises(ValueError, match="`percent` must be in \\(0, 100\\]"):
        select_top(scored(), percent=percent)


def test_unscored_or_empty_data_is_refused():
    """Selecting needs a `golden_score` column and at least one row."""
    with pytest.raises(KeyError, match="Column `golden_score` not found"):
        select_top(Dataset.from_dict({"a": [1]}), 5)
    with pytest.raises(ValueError, match="The dataset is empty"):
        select_top(Dataset.from_dict({"golden_score": []}), 5)
    with pytest.raises(TypeError, match="needs a `datasets.Dataset`"):
        select_top(Dataset.from_dict({"golden_score": [1.0]}).to_iterable_dataset(), 5)
