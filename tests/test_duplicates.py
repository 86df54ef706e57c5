"""Dedup before scoring: duplicates are scored once and share the score."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from hf_nuggets import GoldenScorer
from hf_nuggets.data.formatting import Example
from hf_nuggets.run.duplicates import duplicate_representatives
from hf_nuggets.run.sharded import prospect_sharded

TASKS = [
    {"instruction": "Add 2 and 2.", "input": "", "output": "4"},
    {"instruction": "Name a colour.", "input": "", "output": "Red is a colour."},
]

BASE = [
    {"instruction": "Name a primary colour please.", "input": "", "output": "Red is a primary colour of paint."},
    {"instruction": "Add two and three together.", "input": "Use integers.", "output": "Two plus three is five."},
    {"instruction": "Describe what a fox does.", "input": "", "output": "The quick brown fox jumps over the dog."},
    {"instruction": "Translate hello into French.", "input": "", "output": "Bonjour is hello in French."},
]


def planted() -> list[dict]:
    rows = list(BASE)
    rows.append(dict(BASE[0]))  # 4: exact duplicate of 0
    rows.append({**BASE[1], "instruction": "  Add two and three together. "})  # 5: same after stripping
    rows.append({**BASE[2], "output": "The quick brown fox jumps over the dog!"})  # 6: near duplicate of 2
    rows.append(dict(BASE[0]))  # 7: exact duplicate of 0 again
    return rows


def test_representatives_of_planted_duplicates():
    """Exact (after stripping) and near duplicates point at the first row of their group."""
    ds = Dataset.from_list(planted())
    rep, report = duplicate_representatives(ds, threshold=1.0)
    assert rep.tolist() == [0, 1, 2, 3, 0, 1, 6, 0]
    assert report["exact_duplicates"] == 3 and report["near_duplicates"] == 0 and report["rows_saved"] == 3
    rep, report = duplicate_representatives(ds, threshold=0.8)
    assert rep.tolist() == [0, 1, 2, 3, 0, 1, 2, 0]
    assert report["near_duplicates"] == 1 and report["rows_saved"] == 4 and report["rows_scored"] == 4
    with pytest.raises(ValueError, match="`threshold` must be in"):
        duplicate_representatives(ds, threshold=0)


def test_dedup_scores_once_and_shares(tiny_prospector, tmp_path):
    """With dedup, duplicates carry their representative's score, equal to scoring every row."""
    import torch

    torch.set_num_threads(1)
    rows = planted()
    full = GoldenScorer(tiny_prospector, TASKS).score_examples([Example(**r) for r in BASE])
    scored, summary = prospect_sharded(
        Dataset.from_list(rows), GoldenScorer(tiny_prospector, TASKS), tmp_path, shard_size=3,
        dedup_threshold=0.8, progress=False,
    )  # fmt: skip
    assert summary["dedup"]["rows_saved"] == 4 and summary["sharding"]["rows_scored_this_run"] == 4
    expected = np.asarray(full["nuggets_gain"])[[0, 1, 2, 3, 0, 1, 2, 0]]
    np.testing.assert_allclose(scored["nuggets_gain"], expected, atol=1e-6)
    assert scored["instruction"] == [r["instruction"] for r in rows] and len(scored) == 8
