"""Adaptive early stopping: exact hypergeometric intervals and the stopping rule against exhaustive scoring."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from hf_nuggets import GoldenScorer
from hf_nuggets.data.formatting import Example
from hf_nuggets.run.sharded import prospect_sharded
from hf_nuggets.scoring.early_stop import EarlyStopping, gains_interval

TASKS = [
    {"instruction": "Add 2 and 2.", "input": "", "output": "4"},
    {"instruction": "Name a colour.", "input": "", "output": "Red is a colour."},
    {"instruction": "What boils at 100 degrees?", "input": "", "output": "Water boils at 100 degrees Celsius."},
    {"instruction": "Translate into French.", "input": "Where is the station?", "output": "Où est la gare ?"},
    {"instruction": "Write a function.", "input": "It squares x.", "output": "def square(x):\n    return x * x"},
    {"instruction": "Describe a fox.", "input": "", "output": "The quick brown fox jumps over the lazy dog."},
    {"instruction": "Add 2 and 3.", "input": "Use integers.", "output": "2 + 3 = 5."},
    {"instruction": "Name a primary colour.", "input": "", "output": "Red is a primary colour."},
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_gains_interval_matches_scipy_hypergeometric():
    """The interval holds exactly the totals K whose two tails at the observation are both >= delta / 2."""
    from scipy.stats import hypergeom

    for m, t, s, delta in [(16, 4, 1, 0.05), (16, 8, 6, 0.1), (30, 12, 0, 0.05), (30, 29, 20, 0.2), (10, 10, 3, 0.05)]:
        plausible = [
            k
            for k in range(s, s + m - t + 1)
            if hypergeom.cdf(s, m, k, t) >= delta / 2 and hypergeom.sf(s - 1, m, k, t) >= delta / 2
        ]
        assert gains_interval(m, t, s, delta) == (plausible[0], plausible[-1])


def test_rejects_bad_settings():
    """Bad settings name the parameter."""
    with pytest.raises(ValueError, match="`delta` must be in"):
        EarlyStopping(delta=1.5)
    with pytest.raises(ValueError, match="`chunk` must be a positive integer"):
        EarlyStopping(chunk=0)


def rows(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    words = "red blue add two three fox dog water boils station french square return".split()
    return [
        {"instruction": " ".join(rng.choice(words, 4)), "input": "", "output": " ".join(rng.choice(words, 6))}
        for _ in range(n)
    ]


def test_stopping_saves_evaluations_and_keeps_full_rows_exact(tiny_prospector, tmp_path):
    """Rows evaluated in full get the exhaustive score; stopped rows evaluate fewer tasks and are reported."""
    data = rows(60)
    exhaustive = GoldenScorer(tiny_prospector, TASKS).score_examples([Example(**r) for r in data])
    early = EarlyStopping(delta=0.2, chunk=2, warmup=10, seed=1)
    scored, summary = prospect_sharded(
        Dataset.from_list(data), GoldenScorer(tiny_prospector, TASKS), tmp_path, top_percent=10, shard_size=20,
        early_stop=early, progress=False,
    )  # fmt: skip
    tasks = np.array(scored["nuggets_tasks_evaluated"])
    golden = np.array(scored["golden_score"])
    full = tasks == len(TASKS)
    assert full[:10].all()  # warm-up rows are exhaustive
    np.testing.assert_array_equal(golden[full], exhaustive["golden_score"][full])
    report = summary["early_stop"]
    assert report["task_evaluations"] == tasks.sum() < 60 * len(TASKS)
    assert report["rows_stopped_below"] + report["rows_stopped_above"] == int((~full).sum()) > 0
    assert report["evaluated_fraction"] == pytest.approx(tasks.sum() / (60 * len(TASKS)), abs=1e-4)


def test_no_stopping_during_warmup_equals_exhaustive(tiny_prospector, tmp_path):
    """With a warm-up longer than the data every task is evaluated and the scores are the exhaustive ones."""
    data = rows(12)
    exhaustive = GoldenScorer(tiny_prospector, TASKS).score_examples([Example(**r) for r in data])
    scored, _ = prospect_sharded(
        Dataset.from_list(data), GoldenScorer(tiny_prospector, TASKS), tmp_path, top_percent=10, shard_size=5,
        early_stop=EarlyStopping(warmup=100), progress=False,
    )  # fmt: skip
    assert scored["nuggets_tasks_evaluated"] == [len(TASKS)] * 12
    assert scored["golden_score"] == exhaustive["golden_score"].tolist()
    np.testing.assert_allclose(scored["nuggets_gain"], exhaustive["nuggets_gain"], atol=1e-6)


def test_simulation_replays_the_live_decisions(tiny_prospector, tmp_path):
    """`simulate` on the exhaustive one-shot matrix takes the same decisions as the live run."""
    data = rows(40)
    scorer = GoldenScorer(tiny_prospector, TASKS)
    exhaustive = scorer.score_examples([Example(**r) for r in data])
    live = EarlyStopping(delta=0.2, chunk=2, warmup=8)
    scored, _ = prospect_sharded(
        Dataset.from_list(data), GoldenScorer(tiny_prospector, TASKS), tmp_path, top_percent=10, shard_size=40,
        early_stop=live, progress=False,
    )  # fmt: skip
    replay = EarlyStopping(delta=0.2, chunk=2, warmup=8).simulate(
        exhaustive["one_shot"], scorer.zero_shot_scores, top_percent=10
    )
    assert replay["tasks"].tolist() == scored["nuggets_tasks_evaluated"]
    assert replay["golden"].tolist() == scored["golden_score"]
    assert replay["tasks"].sum() < 40 * len(TASKS)
