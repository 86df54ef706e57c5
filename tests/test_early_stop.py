"""Adaptive early stopping: exact hypergeometric intervals and the stopping rule against exhaustive scoring."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from hf_nuggets import GoldenScorer
from hf_nuggets.data.formatting import Example
from hf_nuggets.run.sharded import prospect_sharded
from hf_nuggets.scoring.early_stop import EarlyStopping, gain_interval, gains_interval

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


def test_gain_interval_is_exact_when_all_seen_and_unbounded_without_a_stratum():
    """All tasks seen: the interval is the mean gain. Unseen gains possible but fewer than two seen: unbounded."""
    gains = np.array([0.4, -0.2, 0.1, -0.1, 0.3])
    low, high = gain_interval(gains, 5, 3, 3, 0.05)
    assert low == pytest.approx(gains.mean()) and high == pytest.approx(gains.mean())
    assert gain_interval(np.array([0.4, -0.2, -0.1]), 6, 1, 3, 0.05) == (-np.inf, np.inf)
    seen = np.array([0.4, 0.5, -0.2, -0.1])  # 2 of 6 tasks unseen, 0 to 2 of them gains (K in [2, 4])
    low, high = gain_interval(seen, 6, 2, 4, 0.05)
    assert low < seen.sum() / 6 and high > (seen.sum() + 2 * 0.45) / 6  # holds both extremes of the unseen tasks


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


@pytest.mark.parametrize(
    "settings",
    [
        {"delta": 0.2, "chunk": 2, "warmup": 8},
        {"delta": 0.4, "chunk": 2, "warmup": 4, "warmup_share": 0.2, "looks": "union", "tie_gain": True},
    ],
    ids=["counts", "options"],
)
def test_simulation_replays_the_live_decisions(tiny_prospector, tmp_path, settings):
    """`simulate` on the exhaustive one-shot matrix takes the same decisions as the live run."""
    data = rows(40)
    scorer = GoldenScorer(tiny_prospector, TASKS)
    exhaustive = scorer.score_examples([Example(**r) for r in data])
    live = EarlyStopping(**settings)
    scored, _ = prospect_sharded(
        Dataset.from_list(data), GoldenScorer(tiny_prospector, TASKS), tmp_path, top_percent=10, shard_size=40,
        early_stop=live, progress=False,
    )  # fmt: skip
    replay = EarlyStopping(**settings).simulate(exhaustive["one_shot"], scorer.zero_shot_scores, top_percent=10)
    assert replay["tasks"].tolist() == scored["nuggets_tasks_evaluated"]
    assert replay["golden"].tolist() == scored["golden_score"]
    assert replay["tasks"].sum() < 40 * len(TASKS)


def score_matrix(n: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A one-shot matrix `(n, m)` and zero-shot scores: row propensities ~ Beta(2, 3), gains of either sign."""
    rng = np.random.default_rng(seed)
    s_zero = rng.normal(-2.0, 0.5, m)
    wins = rng.random((n, m)) < rng.beta(2.0, 3.0, n)[:, None]
    gains = np.where(wins, rng.exponential(0.2, (n, m)), -rng.exponential(0.2, (n, m)))
    return s_zero[None, :] + gains, s_zero


def test_default_settings_keep_the_old_fingerprint():
    """Options at their original value stay out of `settings()` (older checkpoints resume); others go in."""
    assert EarlyStopping().settings() == {"delta": 0.05, "chunk": 4, "warmup": 50, "seed": 0}
    chosen = EarlyStopping(looks="union", tie_gain=True, warmup_share=0.1).settings()
    assert (chosen["looks"], chosen["tie_gain"], chosen["warmup_share"]) == ("union", True, 0.1)


def test_rejects_bad_options():
    """Bad new options name the parameter."""
    with pytest.raises(ValueError, match="`looks` must be one of"):
        EarlyStopping(looks="bonferroni")
    with pytest.raises(ValueError, match="`warmup_share` must be in"):
        EarlyStopping(warmup_share=1.0)


def test_union_bound_is_each_look_at_delta_over_the_looks():
    """With 16 tasks and chunks of 4 a row has 3 looks: `looks="union"` at `delta` decides as `"each"` at delta / 3."""
    one_shot, s_zero = score_matrix(200, 16)
    union = EarlyStopping(delta=0.3, chunk=4, warmup=20, looks="union").simulate(one_shot, s_zero, 10)
    each = EarlyStopping(delta=0.1, chunk=4, warmup=20).simulate(one_shot, s_zero, 10)
    for key in ("tasks", "golden", "gain"):
        np.testing.assert_array_equal(union[key], each[key])
    assert union["tasks"].sum() < one_shot.size


def test_alpha_spending_spends_delta_over_the_looks_increasingly():
    """The spending levels match O'Brien-Fleming's 2 (1 - Phi(z / sqrt(k / L))) increments and add up to `delta`."""
    from scipy.stats import norm

    early = EarlyStopping(delta=0.05, chunk=2, warmup=1000, looks="spending")
    early.simulate(*score_matrix(2, 16), 10)  # binds the task count, 16: 7 looks before the last chunk
    levels = [early.look_delta(t) for t in range(2, 16, 2)]
    spent = 2 * norm.sf(norm.isf(0.025) / np.sqrt(np.arange(1, 8) / 7))
    np.testing.assert_allclose(levels, np.diff(spent, prepend=0.0), rtol=1e-9)
    assert sum(levels) == pytest.approx(0.05)
    assert (np.diff(levels) > 0).all()


def test_warmup_share_is_a_share_of_the_rows():
    """`warmup_share` 0.3 of 100 rows scores 30 rows in full: the same decisions as `warmup=30`."""
    one_shot, s_zero = score_matrix(100, 16)
    share = EarlyStopping(delta=0.2, chunk=2, warmup=5, warmup_share=0.3).simulate(one_shot, s_zero, 10)
    fixed = EarlyStopping(delta=0.2, chunk=2, warmup=30).simulate(one_shot, s_zero, 10)
    np.testing.assert_array_equal(share["tasks"], fixed["tasks"])
    assert (share["tasks"][:30] == 16).all() and (share["tasks"][30:] < 16).any()


def tied_matrix(n: int = 200, m: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Every row gains on exactly half the tasks (all tie on golden score 0.5): by a row's own size on its gains and
    by about 0.1 on its losses, so rows differ by their mean gain only."""
    rng = np.random.default_rng(0)
    size = rng.uniform(0.1, 2.0, n)
    wins = np.array([rng.permutation([True] * (m // 2) + [False] * (m // 2)) for _ in range(n)])
    noise = 1 + 0.05 * rng.standard_normal((n, m))
    s_zero = rng.normal(-2.0, 0.5, m)
    return s_zero[None, :] + np.where(wins, size[:, None], -0.1) * noise, s_zero


def test_gain_test_stops_tied_rows_that_counts_cannot_settle():
    """On rows tied on golden score with the cut, counts alone stop no row below; `tie_gain` stops many on gain."""
    one_shot, s_zero = tied_matrix()
    counts, gains = (EarlyStopping(delta=0.01, chunk=1, warmup=20, tie_gain=tie) for tie in (False, True))
    counts.simulate(one_shot, s_zero, 10)
    gains.simulate(one_shot, s_zero, 10)
    assert counts.report()["rows_stopped_below"] == 0
    assert gains.report()["rows_stopped_below"] > 50
    assert gains.report()["task_evaluations"] < counts.report()["task_evaluations"]


def test_gain_test_never_drops_a_row_of_the_exhaustive_top():
    """A row of the exhaustive top 10% (ranked by gain among ties) that the gain test stopped is still selected."""
    from hf_nuggets.scoring.engine import golden_from_scores
    from hf_nuggets.selection import top_indices

    one_shot, s_zero = tied_matrix()
    counts = EarlyStopping(delta=0.01, chunk=1, warmup=20).simulate(one_shot, s_zero, 10)
    gains = EarlyStopping(delta=0.01, chunk=1, warmup=20, tie_gain=True).simulate(one_shot, s_zero, 10)
    by_gain = np.flatnonzero((gains["tasks"] < 16) & (counts["tasks"] == 16))
    exact = top_indices(*golden_from_scores(one_shot, s_zero), percent=10)
    selected = top_indices(gains["golden"], gains["gain"], percent=10)
    assert len(by_gain) > 50
    assert set(by_gain.tolist()) & set(exact.tolist()) <= set(selected.tolist())
    assert set(by_gain.tolist()) & set(exact.tolist())  # some top rows were settled on gain, above the cut


def test_cli_options_reach_the_settings():
    """`hf-nuggets score` parses the early-stopping options into the fields `build` passes to `EarlyStopping`."""
    from hf_nuggets.cli.score import _parser

    config, _ = _parser(True).parse_args_into_dataclasses(
        ["data.jsonl", "--top", "5", "--early_stop", "--early_stop_looks", "union", "--early_stop_tie_gain",
         "--early_stop_warmup_share", "0.1"]
    )  # fmt: skip
    options = (config.early_stop_looks, config.early_stop_tie_gain, config.early_stop_warmup_share)
    assert options == ("union", True, 0.1)
    with pytest.raises(SystemExit):
        _parser(True).parse_args_into_dataclasses(["data.jsonl", "--early_stop_looks", "bonferroni"])


def test_cli_early_stop_options_reach_the_run(tiny_model_dir, tmp_path):
    """`hf-nuggets score --early_stop` with the options builds `EarlyStopping` with them (the summary's settings)."""
    import json

    from hf_nuggets.cli import main

    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(12)))
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in TASKS))
    args = ["score", str(tmp_path / "data.jsonl"), "--tasks", str(tmp_path / "tasks.jsonl"), "--model",
            str(tiny_model_dir), "--device", "cpu", "--quiet", "--out", str(tmp_path / "run"), "--top", "10",
            "--early_stop", "--early_stop_warmup", "4", "--early_stop_looks", "spending", "--early_stop_tie_gain",
            "--early_stop_warmup_share", "0.5"]  # fmt: skip
    assert main(args) == 0
    report = json.loads((tmp_path / "run" / "summary.json").read_text())["early_stop"]
    assert (report["looks"], report["tie_gain"], report["warmup_share"]) == ("spending", True, 0.5)
    assert report["rows"] == 12
