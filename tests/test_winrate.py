"""Win rates against the `alpaca-eval` package (the oracle), the `evaluate` metric, generation, `hf-nuggets eval`."""

from __future__ import annotations

import doctest
import importlib.metadata
import importlib.util
import json
import math
import os
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
from conftest import import_alpaca_eval

from hf_nuggets.evaluation.winrate import (
    GLM_VARIANTS,
    alpaca_eval_winrate,
    check_preferences,
    compute_winrate,
    head_to_head,
    length_controlled_winrate,
    winrate_metric_path,
)

H2H_KEYS = ("win_rate", "standard_error", "n_wins", "n_wins_base", "n_draws", "n_total", "discrete_win_rate")


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """`alpaca_eval.metrics` and `alpaca_eval.main`, offline: the Hub download of `df_gamed.csv` reads a local file."""
    metrics = import_alpaca_eval("alpaca_eval.metrics")
    from alpaca_eval import main
    from alpaca_eval.metrics import glm_winrate

    folder = tmp_path_factory.mktemp("alpaca-eval-hub")
    original = glm_winrate.hf_hub_download
    glm_winrate.hf_hub_download = lambda **kwargs: str(folder / kwargs["filename"])
    yield types.SimpleNamespace(metrics=metrics, main=main, glm=glm_winrate, folder=folder)
    glm_winrate.hf_hub_download = original


def _oracle_lc(oracle, prefs, predictions, references, difficulty, gamed, variant, tol=None):
    """AlpacaEval's GLM on our annotations; `tol` overrides its liblinear tolerance (1e-4 by default)."""
    import pandas as pd

    n = len(prefs)
    gamed_df = pd.DataFrame({"model": "gamed", "index": np.arange(len(gamed["preference"])) % n, **gamed})
    gamed_df["not_gamed_baseline"] = False
    gamed_df.to_csv(oracle.folder / "df_gamed.csv", index=False)
    info = dict(oracle.glm.GLM_INFO[variant])
    if tol is not None:
        info["kwargs"] = {"n_splits": 5, "tol": tol, "max_iter": 100_000}
    annotations = pd.DataFrame(
        {"preference": prefs, "output_1": references, "output_2": predictions, "generator_1": "b", "generator_2": "m"}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return oracle.glm.get_length_controlled_winrate(
            annotations, glm_name=variant, save_weights_dir=None, glm_info=info
        )


def _lc_case(seed: int, n: int):
    """Preferences that depend on the length difference and the difficulty, with a few skips, and gamed rows."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(size=n)
    len_ref, len_model = rng.integers(1, 1500, n), rng.integers(1, 1500, n)
    std_delta = (len_ref - len_model) / np.std(len_ref - len_model)
    a, b, c = rng.normal(size=3)
    truth = 1 / (1 + np.exp(-(c - 2 * a * np.tanh(std_delta) - b * difficulty)))
    prefs = 1 + np.clip(truth + rng.normal(scale=0.2, size=n), 0, 1)
    prefs[rng.random(n) < 0.05] = np.nan
    gamed = {
        "instruction_difficulty": np.tile(difficulty, 2),
        "preference": rng.random(2 * n),
        "std_delta_len": rng.normal(size=2 * n),
    }
    return prefs, ["m" * int(k) for k in len_model], ["r" * int(k) for k in len_ref], difficulty, gamed


def _random_preferences(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prefs = 1 + rng.random(n)
    special = rng.random(n)
    prefs[special < 0.1] = 1.0
    prefs[(special >= 0.1) & (special < 0.2)] = 2.0
    prefs[(special >= 0.2) & (special < 0.25)] = 1.5
    prefs[(special >= 0.25) & (special < 0.3)] = 0.0
    prefs[(special >= 0.3) & (special < 0.33)] = np.nan
    return prefs


def _assert_h2h_equal(ours: dict, theirs: dict):
    for key in H2H_KEYS:
        a, b = float(ours[key]), float(theirs[key])
        assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9, (key, a, b)


@pytest.mark.parametrize("seed,n", [(0, 5), (1, 17), (2, 100), (3, 805), (4, 2000)])
def test_head_to_head_matches_alpaca_eval_on_random_sets(oracle, seed, n):
    """Random preferences (continuous, wins, losses, draws as 1.5 and 0, skips) give AlpacaEval's numbers."""
    prefs = _random_preferences(seed, n)
    theirs = oracle.metrics.get_winrate([{"preference": p} for p in prefs])
    _assert_h2h_equal(head_to_head(prefs), theirs)


ADVERSARIAL = {
    "all draws": [1.5] * 7,
    "all legacy draws": [0] * 4 + [1.5],
    "all wins": [2] * 9,
    "all losses": [1] * 3,
    "single pair": [1.75],
    "ties at the rounding point": [1.5, 1.5 + 1e-12, 1.5 - 1e-12, 1.5000001, 1.4999999],
    "integers and floats": [1, 2, 0, 1.0, 2.0, 1.25],
    "mostly skipped": [math.nan] * 6 + [1.9, 1.1],
    "bounds": [1.0, 2.0, 1.0 + 1e-15, 2.0 - 1e-15],
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_head_to_head_matches_alpaca_eval_on_adversarial_sets(oracle, name):
    """Edge cases (draws, legacy 0, near-1.5 values, one pair, skips, bounds) give AlpacaEval's numbers."""
    prefs = ADVERSARIAL[name]
    theirs = oracle.metrics.get_winrate([{"preference": p} for p in prefs])
    _assert_h2h_equal(head_to_head(prefs), theirs)


@pytest.mark.parametrize("variant", sorted(GLM_VARIANTS))
@pytest.mark.parametrize("seed,n", [(0, 20), (1, 60), (2, 200), (3, 805)])
def test_length_controlled_matches_alpaca_eval_glm(oracle, variant, seed, n):
    """The LC win rate equals AlpacaEval's GLM solved to tight tolerance (same folds, grid of C, loss, weights)."""
    prefs, predictions, references, difficulty, gamed = _lc_case(seed, n)
    theirs = _oracle_lc(oracle, prefs, predictions, references, difficulty, gamed, variant, tol=1e-12)
    ours = length_controlled_winrate(
        prefs, predictions, references, instruction_difficulty=difficulty, variant=variant, gamed_annotations=gamed
    )
    assert ours["length_controlled_winrate"] == pytest.approx(theirs["length_controlled_winrate"], abs=1e-6)
    assert ours["lc_standard_error"] == pytest.approx(theirs["lc_standard_error"], abs=1e-6)


@pytest.mark.parametrize("variant", sorted(GLM_VARIANTS))
def test_length_controlled_close_to_alpaca_eval_default_solver(oracle, variant):
    """With AlpacaEval's own solver tolerance (liblinear, 1e-4) the LC win rates agree to 0.02 points."""
    prefs, predictions, references, difficulty, gamed = _lc_case(11, 805)
    theirs = _oracle_lc(oracle, prefs, predictions, references, difficulty, gamed, variant)
    ours = length_controlled_winrate(
        prefs, predictions, references, instruction_difficulty=difficulty, variant=variant, gamed_annotations=gamed
    )
    assert abs(ours["length_controlled_winrate"] - theirs["length_controlled_winrate"]) < 0.02


def test_leaderboard_row_matches_alpaca_eval_evaluate(oracle):
    """`alpaca_eval.main.evaluate` with our preferences gives our whole row, `avg_length` and LC included."""
    prefs, predictions, references, _, _ = _lc_case(5, 150)
    predictions[3] = ""  # AlpacaEval counts an empty output as length 0

    class Annotator:
        def __init__(self, **kwargs):
            pass

        def annotate_head2head(self, outputs_1, outputs_2, **kwargs):
            return [
                {
                    "instruction": i,
                    "output_1": o1,
                    "output_2": o2,
                    "generator_1": "b",
                    "generator_2": "m",
                    "annotator": "x",
                    "preference": p,
                }
                for i, o1, o2, p in zip(
                    outputs_2["instruction"], outputs_1["output"], outputs_2["output"], prefs, strict=True
                )
            ]

    instructions = [f"instruction {i}" for i in range(len(prefs))]
    model = [{"instruction": i, "output": o, "generator": "m"} for i, o in zip(instructions, predictions, strict=True)]
    base = [{"instruction": i, "output": o, "generator": "b"} for i, o in zip(instructions, references, strict=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        board, _ = oracle.main.evaluate(
            model_outputs=model,
            reference_outputs=base,
            Annotator=Annotator,
            output_path=None,
            precomputed_leaderboard=None,
            is_return_instead_of_print=True,
            metric_kwargs={"glm_name": "length_controlled_minimal", "save_weights_dir": None},
        )
    theirs = board.loc["m"].to_dict()
    ours = compute_winrate(predictions, references, prefs)
    _assert_h2h_equal(ours, theirs)
    assert ours["avg_length"] == theirs["avg_length"]
    assert abs(ours["length_controlled_winrate"] - theirs["length_controlled_winrate"]) < 0.02


def test_preferences_outside_range_raise():
    """A preference outside [1, 2] other than 0 is an error that names the value and its index."""
    with pytest.raises(ValueError, match=r"`preferences` must be in \[1, 2\].*got 2.5 at index 1 \(and 1 more\)"):
        check_preferences([1.5, 2.5, -1])


def test_non_numeric_preferences_raise():
    """A string preference is an error, not a silent skip."""
    with pytest.raises(ValueError, match=r"`preferences` must hold numbers, got '2'"):
        check_preferences([1, "2"])


def test_all_skipped_raises():
    """No pair with a preference is an error, never a win rate of zero."""
    with pytest.raises(ValueError, match="No pair has a preference: all 3 pairs were skipped"):
        head_to_head([None, math.nan, None])


def test_skips_are_counted():
    """NaN/None preferences are left out and counted in `n_skipped`."""
    out = head_to_head([2, None, 1, math.nan])
    assert (out["n_total"], out["n_skipped"], out["win_rate"]) == (2, 2, 50.0)


def test_lengths_must_match():
    """Predictions and references of different lengths are an error."""
    with pytest.raises(ValueError, match=r"`predictions` and `references` must have the same length, got 2 and 1"):
        alpaca_eval_winrate(["a", "b"], ["c"], preferences=[1, 2])


def test_preferences_length_must_match():
    """One preference per pair."""
    with pytest.raises(ValueError, match=r"`preferences` must have one value per prediction \(2\), got 3"):
        alpaca_eval_winrate(["a", "b"], ["c", "d"], preferences=[1, 2, 1])


def test_empty_outputs_raise_by_default():
    """An empty or blank output is an error that names its rows."""
    with pytest.raises(ValueError, match=r"2 pair\(s\) have an empty output \(rows \[0, 2\]\)"):
        alpaca_eval_winrate(["", "b", "c"], ["a", "b", "  "], preferences=[2, 1, 2], length_controlled=False)


def test_empty_outputs_skip_is_counted():
    """`empty_outputs='skip'` leaves those pairs out and reports them."""
    out = alpaca_eval_winrate(
        ["", "b", "c"],
        ["a", "b", "d"],
        preferences=[2, 1, 2],
        empty_outputs="skip",
        length_controlled=False,
        return_annotations=True,
    )
    assert (out["n_total"], out["n_skipped"]) == (2, 1)
    assert out["annotations"][0]["skip_reason"] == "empty output"


def test_precomputed_needs_preferences():
    """The precomputed judge without preferences is an error."""
    with pytest.raises(ValueError, match="`judge='precomputed'` needs `preferences`"):
        alpaca_eval_winrate(["a"], ["b"])


def test_judge_needs_instructions():
    """The local and openai judges need the instructions."""
    with pytest.raises(ValueError, match="The 'local' judge needs `instructions`"):
        alpaca_eval_winrate(["a"], ["b"], judge="local")


def test_unknown_judge_raises():
    """An unknown judge name is an error listing the choices."""
    with pytest.raises(ValueError, match="`judge` must be 'precomputed', 'local' or 'openai', got 'gpt'"):
        alpaca_eval_winrate(["a"], ["b"], ["i"], judge="gpt")


@pytest.mark.parametrize(
    ("preferences", "predictions", "why"),
    [
        ([2, 1, 2], ["a", "bb", "ccc"], "only 3 pair(s) have a preference"),
        ([2, 1, 2, 1, 2, 1], ["aa"] * 6, "every pair has the same length difference"),
    ],
)
def test_lc_nan_says_why(preferences, predictions, why):
    """A length-controlled win rate that cannot be fitted is NaN with `lc_note` saying why, in `compute_winrate`
    too (the Space shows it)."""
    references = ["b"] * len(preferences)
    lc = length_controlled_winrate(preferences, predictions, references)
    assert math.isnan(lc["length_controlled_winrate"]) and why in lc["lc_note"]
    assert compute_winrate(predictions, references, preferences)["lc_note"] == lc["lc_note"]
    assert "lc_note" not in compute_winrate(["a", "bb", "c", "dddd", "ee"], ["b"] * 5, [2, 1, 2, 1, 1.5])


def test_lc_variant_needs_difficulty():
    """A GLM with instruction difficulty needs it."""
    with pytest.raises(ValueError, match="'length_controlled_noreg' needs `instruction_difficulty`"):
        length_controlled_winrate([2] * 5, ["a"] * 5, ["b"] * 5, variant="length_controlled_noreg")


def test_lc_v1_needs_gamed_annotations():
    """The regularised GLM needs AlpacaEval's gamed annotations."""
    with pytest.raises(ValueError, match="pass `gamed_annotations`"):
        length_controlled_winrate(
            [2] * 5, ["a"] * 5, ["b"] * 5, instruction_difficulty=[0] * 5, variant="length_controlled_v1"
        )


def test_lc_is_nan_with_few_pairs(caplog):
    """With fewer than 5 judged pairs the LC win rate is NaN and a warning says why."""
    out = compute_winrate(["a", "bb", "ccc"], ["x", "y", "z"], [2, 1, 1.5])
    assert math.isnan(out["length_controlled_winrate"]) and "at least 5 pairs" in caplog.text


def test_metric_folder_ships_its_files():
    """The metric folder holds the module, the card, the app and the requirements."""
    names = set(os.listdir(winrate_metric_path()))
    assert {"alpaca_eval_winrate.py", "README.md", "app.py", "requirements.txt"} <= names


def test_metric_loads_offline_and_matches_library(tmp_path):
    """`evaluate.load(path)` works with the Hub offline and gives the library's numbers."""
    prefs, predictions, references, _, _ = _lc_case(2, 40)
    script = (
        "import json, sys, evaluate\n"
        "from hf_nuggets.evaluation.winrate import winrate_metric_path\n"
        "args = json.load(open(sys.argv[1]))\n"
        "out = evaluate.load(winrate_metric_path()).compute(**args)\n"
        "print(json.dumps(out))\n"
    )
    args = {
        "predictions": predictions,
        "references": references,
        "preferences": [None if math.isnan(p) else p for p in prefs],
    }
    (tmp_path / "args.json").write_text(json.dumps(args))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "args.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    metric = json.loads(done.stdout.strip().splitlines()[-1])
    ours = compute_winrate(predictions, references, prefs)
    for key in (*H2H_KEYS, "avg_length", "length_controlled_winrate", "n_skipped"):
        assert metric[key] == pytest.approx(ours[key], abs=1e-12), key


def test_metric_rejects_mismatched_lengths():
    """The metric refuses predictions and references of different lengths."""
    import evaluate

    with pytest.raises(ValueError, match=r"Mismatch in the number of predictions \(2\) and references \(1\)"):
        evaluate.load(winrate_metric_path()).compute(predictions=["a", "b"], references=["c"], preferences=[1, 2])


def test_metric_docstring_examples():
    """The `>>>` examples of the metric module (its `_KWARGS_DESCRIPTION`) pass."""
    path = os.path.join(winrate_metric_path(), "alpaca_eval_winrate.py")
    spec = importlib.util.spec_from_file_location("alpaca_eval_winrate_doctest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    test = parser.get_doctest(module._KWARGS_DESCRIPTION, vars(module), "alpaca_eval_winrate", path, 0)
    assert len(test.examples) >= 6
    runner.run(test)
    assert runner.failures == 0


def test_generation_batched_equals_one_by_one(tiny_prospector):
    """Batched greedy generation gives the outputs of one-by-one generation, in input order."""
    from hf_nuggets.evaluation.generation import generate_outputs

    instructions = ["Name a primary colour.", "Add 2 and 3, then explain the result.", "Hi"]
    batched = generate_outputs(tiny_prospector, instructions, max_new_tokens=6, batch_size=3, progress=False)
    single = [generate_outputs(tiny_prospector, [i], max_new_tokens=6, progress=False)[0] for i in instructions]
    assert batched == single


def test_generation_rejects_empty_instruction(tiny_prospector):
    """An empty instruction is an error."""
    from hf_nuggets.evaluation.generation import generate_outputs

    with pytest.raises(ValueError, match="`instructions` must be non-empty strings, got '' at index 1"):
        generate_outputs(tiny_prospector, ["a", ""], progress=False)


def test_load_alpaca_eval_reads_a_local_set(tmp_path):
    """Any dataset with an `instruction` column is an evaluation set."""
    from hf_nuggets.evaluation.generation import load_alpaca_eval

    path = tmp_path / "eval.jsonl"
    path.write_text('{"instruction": "Say hi.", "output": "Hi!"}\n{"instruction": "Add 1 and 1.", "output": "2"}\n')
    assert load_alpaca_eval(str(path))["instruction"] == ["Say hi.", "Add 1 and 1."]


def test_load_alpaca_eval_needs_instruction_column(tmp_path):
    """A dataset without an `instruction` column is an error."""
    from hf_nuggets.evaluation.generation import load_alpaca_eval

    path = tmp_path / "eval.jsonl"
    path.write_text('{"prompt": "Say hi."}\n')
    with pytest.raises(ValueError, match=r"needs an `instruction` column; it has \['prompt'\]"):
        load_alpaca_eval(str(path))


def test_eval_cli_writes_annotations_and_metrics(tmp_path, tiny_model_dir):
    """`hf-nuggets eval` generates, judges with the local judge, and writes AlpacaEval annotations and metrics."""
    from hf_nuggets.cli.evaluate import eval_main

    baseline = [
        {"instruction": f"Add {i} and 2.", "output": f"It is {i + 2}." * (i % 3 + 1), "generator": "ref"}
        for i in range(6)
    ]
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))
    argv = [
        "--model",
        str(tiny_model_dir),
        "--baseline",
        str(tmp_path / "baseline.json"),
        "--judge",
        "local",
        "--judge_model",
        str(tiny_model_dir),
        "--out",
        str(tmp_path / "out"),
        "--max_new_tokens",
        "6",
        "--cache_dir",
        str(tmp_path / "cache"),
        "--empty_outputs",
        "skip",
        "--quiet",
    ]
    assert eval_main(argv) == 0
    annotations = json.loads((tmp_path / "out" / "annotations.json").read_text())
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    fields = {"instruction", "output_1", "output_2", "generator_1", "generator_2", "preference"}
    assert len(annotations) == 6 and all(fields <= set(a) for a in annotations)
    assert annotations[0]["generator_1"] == "ref" and annotations[0]["output_1"] == baseline[0]["output"]
    assert metrics["n_total"] + metrics["n_skipped"] == 6 and 0 <= metrics["win_rate"] <= 100


def test_eval_cli_reports_a_missing_baseline(tmp_path, capsys):
    """A missing baseline file is a clear error and exit status 1."""
    from hf_nuggets.cli.evaluate import eval_main

    assert eval_main(["--baseline", str(tmp_path / "nope.json"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.json does not exist" in err
