"""`run_payoff` and `hf-nuggets payoff` with tiny random models: equal steps, the random arm's seed, the report against
the win-rate metric and AlpacaEval, resuming arm by arm, kept verdicts, bad input, the report files and the card."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import import_alpaca_eval
from datasets import Dataset
from transformers import TrainerCallback

from hf_nuggets.evaluation.judges import PairwiseJudge
from hf_nuggets.evaluation.winrate import alpaca_eval_winrate
from hf_nuggets.train.payoff import ARM_FILE, ARMS_DIR, ROWS_FILE, PayoffConfig, random_rows, run_payoff

N_ROWS, TOP_PERCENT, BATCH, N_KEPT = 16, 25, 2, 4  # 25% of 16 rows is 4 rows: 2 steps of 2 rows per epoch
N_EVAL = 6


# -- helpers ----------------------------------------------------------------------------------------------------------
def training_rows(scored: bool = True) -> list[dict]:
    """Alpaca rows with an `id`; with tied golden scores, gains and one flagged row when `scored`."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(N_ROWS):
        row = {"id": f"row-{i}", "instruction": f"Add {i} and 2.", "input": "", "output": f"{i} + 2 = {i + 2}."}
        if scored:
            row["golden_score"] = float(rng.integers(0, 5)) / 4
            row["nuggets_gain"] = float(rng.normal())
            row["nuggets_flags"] = "unaligned" if i == 3 else ""
        rows.append(row)
    if scored:
        rows[3]["golden_score"] = 1.0  # the best score, but gated: never in the top
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def eval_rows() -> list[dict]:
    return [
        {
            "instruction": f"Name {k} primary colours.",
            "output": "Red, blue and yellow." * (k % 3 + 1),
            "generator": "ref",
        }
        for k in range(1, N_EVAL + 1)
    ]


@pytest.fixture
def files(tmp_path):
    """The training data (scored), its unscored copy, and the evaluation set with reference outputs."""
    return types.SimpleNamespace(
        data=write_jsonl(tmp_path / "train.jsonl", training_rows()),
        raw=write_jsonl(tmp_path / "raw.jsonl", training_rows(scored=False)),
        eval=write_jsonl(tmp_path / "eval.jsonl", eval_rows()),
    )


def make_config(files, tiny_model_dir, out: Path, **overrides) -> PayoffConfig:
    options = dict(
        data=str(files.data),
        eval_set=str(files.eval),
        model=str(tiny_model_dir),
        top_percent=TOP_PERCENT,
        arms="top,random",
        judge="local",
        judge_model=str(tiny_model_dir),
        learning_rate=1e-3,
        num_train_epochs=1,
        per_device_train_batch_size=BATCH,
        max_length=64,
        max_new_tokens=4,
        generation_batch_size=4,
        out=str(out),
        device="cpu",
        save_models=False,
        quiet=True,
        seed=0,
    )
    return PayoffConfig(**{**options, **overrides})


class ScriptedJudge(PairwiseJudge):
    """A judge whose verdict on an ordered pair is a hash of it; it can fail after a number of verdicts."""

    name = "scripted"

    def __init__(self, fail_after: int | None = None, **kwargs):
        super().__init__(progress=False, **kwargs)
        self.fail_after, self.asked = fail_after, 0

    def _score(self, items, on_result):
        for j, (instruction, output_1, output_2) in enumerate(items):
            if self.fail_after is not None and self.asked >= self.fail_after:
                raise RuntimeError("the judge went down")
            self.asked += 1
            digest = hashlib.sha256(f"{instruction}\0{output_1}\0{output_2}".encode()).digest()
            on_result(j, (digest[0] / 255, None, None))


class TrainedArms(TrainerCallback):
    """Records each arm trained (its folder name) and its optimizer steps at the end of training."""

    def __init__(self):
        self.steps: dict[str, int] = {}

    def on_train_end(self, args, state, control, **kwargs):
        self.steps[Path(args.output_dir).parent.name] = state.global_step


class StopBefore(TrainerCallback):
    """Interrupts the run when the named arm starts training, as Ctrl-C would."""

    def __init__(self, arm: str):
        self.arm = arm

    def on_train_begin(self, args, state, control, **kwargs):
        if Path(args.output_dir).parent.name == self.arm:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, tiny_model_dir):
    """One run of all four arms with the scripted judge: the report, its folder and the trained steps."""
    folder = tmp_path_factory.mktemp("payoff")
    files = types.SimpleNamespace(
        data=write_jsonl(folder / "train.jsonl", training_rows()), eval=write_jsonl(folder / "eval.jsonl", eval_rows())
    )
    out = folder / "report"
    trained = TrainedArms()
    config = make_config(files, tiny_model_dir, out, arms="top,random,all,bottom")
    report = run_payoff(config, judge=ScriptedJudge(cache_dir=out / "verdicts"), callbacks=[trained])
    return types.SimpleNamespace(report=report, out=out, trained=trained, files=files)


def alpaca_eval_metrics():
    """`alpaca_eval.metrics`, the oracle (see `conftest.import_alpaca_eval`)."""
    return import_alpaca_eval("alpaca_eval.metrics")


# -- the arms ---------------------------------------------------------------------------------------------------------
def test_every_arm_trains_the_same_steps_per_row(full_run):
    """Top, random and bottom hold the same rows and take the same optimizer steps; `all` the same steps per row."""
    arms = {arm["name"]: arm for arm in full_run.report["arms"]}
    assert [arm["rows"] for arm in arms.values()] == [N_KEPT, N_KEPT, N_ROWS, N_KEPT]
    per_epoch = math.ceil(N_KEPT / BATCH)
    assert full_run.trained.steps == {
        "top": per_epoch,
        "random": per_epoch,
        "all": N_ROWS // BATCH,
        "bottom": per_epoch,
    }
    assert {name: arm["optimizer_steps"] for name, arm in arms.items()} == full_run.trained.steps
    assert len({arm["optimizer_steps"] / arm["rows"] for arm in arms.values()}) == 1


def test_random_arm_is_reproducible_from_its_seed(full_run):
    """The random arm's rows are `random_rows` of the seed the report records; another seed gives other rows."""
    seed = full_run.report["data"]["seed"]
    recorded = json.loads((full_run.out / ARMS_DIR / "random" / ROWS_FILE).read_text())
    assert recorded["seed"] == seed
    assert recorded["positions"] == random_rows(N_ROWS, N_KEPT, seed)
    assert random_rows(N_ROWS, N_KEPT, seed + 1) != recorded["positions"]


def test_top_arm_is_what_filter_for_training_keeps(full_run):
    """The top arm's rows are the rows `filter_for_training` keeps (the gated row is never among them)."""
    from hf_nuggets.train.callback import filter_for_training

    kept = filter_for_training(Dataset.from_list(training_rows()), top_percent=TOP_PERCENT)
    positions = json.loads((full_run.out / ARMS_DIR / "top" / ROWS_FILE).read_text())["positions"]
    assert [f"row-{p}" for p in positions] == list(kept["id"]) and 3 not in positions
    bottom = json.loads((full_run.out / ARMS_DIR / "bottom" / ROWS_FILE).read_text())["positions"]
    assert 3 in bottom and not set(bottom) & set(positions)


def test_report_numbers_equal_the_metric_on_the_same_annotations(full_run):
    """Each comparison's numbers equal the win-rate metric's and AlpacaEval's on its written annotations."""
    metrics = alpaca_eval_metrics()
    report = full_run.report
    entries = [(arm["name"], "baseline", arm["vs_baseline"]) for arm in report["arms"]]
    entries += [(e["arm"], e["versus"], e) for e in report["head_to_head"]]
    assert len(entries) == 4 + 6
    outputs = {
        arm["name"]: [o["output"] for o in json.loads((full_run.out / arm["outputs_file"]).read_text())]
        for arm in report["arms"]
    }
    fitted = 0
    for arm, versus, numbers in entries:
        annotations = json.loads((full_run.out / numbers["annotations_file"]).read_text())
        assert [a["output_2"] for a in annotations] == outputs[arm]
        if versus != "baseline":
            assert [a["output_1"] for a in annotations] == outputs[versus]
        prefs = [a["preference"] for a in annotations]
        ours = alpaca_eval_winrate(
            [a["output_2"] for a in annotations], [a["output_1"] for a in annotations], preferences=prefs
        )
        theirs = metrics.get_winrate([{"preference": math.nan if p is None else p} for p in prefs])
        for key in ("win_rate", "standard_error", "n_wins", "n_wins_base", "n_draws", "n_total", "discrete_win_rate"):
            assert numbers[key] == pytest.approx(ours[key], abs=1e-9), (arm, versus, key)
            assert numbers[key] == pytest.approx(float(theirs[key]), abs=1e-9), (arm, versus, key)
        lc = ours["length_controlled_winrate"]
        if math.isnan(lc):  # too few pairs, or no spread of length differences: NaN, written as null
            assert numbers["length_controlled_winrate"] is None
        else:
            fitted += 1
            assert numbers["length_controlled_winrate"] == pytest.approx(lc, abs=1e-9)
            assert numbers["lc_standard_error"] == pytest.approx(ours["lc_standard_error"], abs=1e-9)
    assert fitted >= 4  # the baseline's answers differ in length, so each arm against it has an LC win rate


# -- resuming and judges ----------------------------------------------------------------------------------------------
def test_an_interrupted_run_resumes_arm_by_arm(files, tiny_model_dir, tmp_path):
    """Ctrl-C while the second arm trains keeps the first; the rerun trains only the second, and reuses the first's
    answers as they were."""
    out = tmp_path / "report"
    config = make_config(files, tiny_model_dir, out)
    with pytest.raises(KeyboardInterrupt):
        run_payoff(config, judge=ScriptedJudge(use_cache=False), callbacks=[StopBefore("random")])
    assert (out / ARMS_DIR / "top" / ARM_FILE).is_file() and not (out / ARMS_DIR / "random" / ARM_FILE).exists()
    top_outputs = (out / ARMS_DIR / "top" / "outputs.json").read_text()

    trained = TrainedArms()
    report = run_payoff(config, judge=ScriptedJudge(use_cache=False), callbacks=[trained])
    assert list(trained.steps) == ["random"]
    assert [arm["resumed"] for arm in report["arms"]] == [True, False]
    assert (out / ARMS_DIR / "top" / "outputs.json").read_text() == top_outputs
    assert report["arms"][0]["optimizer_steps"] == report["arms"][1]["optimizer_steps"] == N_KEPT // BATCH


class StopAtStep(TrainerCallback):
    """Interrupts training at the end of the given optimizer step (before that step is saved)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


class FirstStep(TrainerCallback):
    """Records the optimizer step each arm's training starts from."""

    def __init__(self):
        self.start: dict[str, int] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.start[Path(args.output_dir).parent.name] = state.global_step


def test_an_arm_interrupted_mid_training_resumes_from_its_checkpoint(files, tiny_model_dir, tmp_path):
    """With checkpoints saved every step, an arm stopped in step 2 resumes at step 1 and ends at the same step."""
    out = tmp_path / "report"
    config = make_config(files, tiny_model_dir, out, arms="top")
    overrides = {"save_strategy": "steps", "save_steps": 1}
    with pytest.raises(KeyboardInterrupt):
        run_payoff(
            config, judge=ScriptedJudge(use_cache=False), callbacks=[StopAtStep(2)], training_overrides=overrides
        )
    assert (out / ARMS_DIR / "top" / "trainer" / "checkpoint-1").is_dir()
    first = FirstStep()
    report = run_payoff(config, judge=ScriptedJudge(use_cache=False), callbacks=[first], training_overrides=overrides)
    assert first.start == {"top": 1}
    assert report["arms"][0]["optimizer_steps"] == N_KEPT // BATCH


def test_changed_settings_train_the_arm_again(files, tiny_model_dir, tmp_path):
    """A rerun with another learning rate does not reuse the arms trained with the old one."""
    out = tmp_path / "report"
    run_payoff(make_config(files, tiny_model_dir, out, arms="top"), judge=ScriptedJudge(use_cache=False))
    trained = TrainedArms()
    config = make_config(files, tiny_model_dir, out, arms="top", learning_rate=5e-4)
    report = run_payoff(config, judge=ScriptedJudge(use_cache=False), callbacks=[trained])
    assert list(trained.steps) == ["top"] and report["arms"][0]["resumed"] is False


def test_a_judge_that_fails_part_way_keeps_its_verdicts(files, tiny_model_dir, tmp_path):
    """Verdicts given before the judge failed are cached in the report folder; the rerun asks only for the rest and
    trains nothing."""
    out = tmp_path / "report"
    config = make_config(files, tiny_model_dir, out)
    with pytest.raises(RuntimeError, match="the judge went down"):
        run_payoff(config, judge=ScriptedJudge(fail_after=5, cache_dir=out / "verdicts"))
    (cache,) = (out / "verdicts").glob("scripted-*.json")
    assert len(json.loads(cache.read_text())) == 5

    judge, trained = ScriptedJudge(cache_dir=out / "verdicts"), TrainedArms()
    report = run_payoff(config, judge=judge, callbacks=[trained])
    comparisons = [a["vs_baseline"] for a in report["arms"]] + report["head_to_head"]
    ordered = {  # the judge sees each pair in both orders; identical or empty outputs are not asked
        pair
        for e in comparisons
        for a in json.loads((out / e["annotations_file"]).read_text())
        if a["output_1"] != a["output_2"] and a["output_1"].strip() and a["output_2"].strip()
        for pair in (
            (a["instruction"], a["output_1"], a["output_2"]),
            (a["instruction"], a["output_2"], a["output_1"]),
        )
    }
    assert trained.steps == {}
    assert judge.asked == len(ordered) - 5  # every distinct verdict once, less the 5 paid for


def test_precomputed_annotations_round_trip(files, tiny_model_dir, tmp_path):
    """With no annotations the run writes the pairs to annotate; with them, the report gives AlpacaEval's numbers on
    those preferences, without training again."""
    metrics = alpaca_eval_metrics()
    out = tmp_path / "report"
    config = make_config(files, tiny_model_dir, out, judge="precomputed", judge_model=None)
    with pytest.raises(ValueError, match=r"The precomputed annotations lack \d+ pair\(s\) of the 3 comparisons"):
        run_payoff(config)
    pending = json.loads((out / "to_annotate.json").read_text())
    rng = np.random.default_rng(7)
    for record in pending:
        record["preference"] = float(rng.choice([1.0, 1.5, 2.0, 1.0 + rng.random()]))
    (tmp_path / "annotated.json").write_text(json.dumps(pending))

    trained = TrainedArms()
    config = make_config(
        files, tiny_model_dir, out, judge="precomputed", judge_model=None, annotations=str(tmp_path / "annotated.json")
    )
    report = run_payoff(config, callbacks=[trained])
    assert trained.steps == {}
    table = {(r["instruction"], r["output_1"], r["output_2"]): r["preference"] for r in pending}
    assert len(table) == len(pending)  # each pair of answers is asked once
    for arm in report["arms"]:
        outputs = [o["output"] for o in json.loads((out / arm["outputs_file"]).read_text())]
        prefs = []
        for ref, output in zip(eval_rows(), outputs, strict=True):
            key = (ref["instruction"], ref["output"], output)
            if output == ref["output"]:
                prefs.append(1.5)
            elif output.strip():
                prefs.append(table[key] if key in table else 3 - table[(key[0], output, ref["output"])])
        theirs = metrics.get_winrate([{"preference": p} for p in prefs])
        assert arm["vs_baseline"]["n_total"] == len(prefs)
        assert arm["vs_baseline"]["win_rate"] == pytest.approx(float(theirs["win_rate"]), abs=1e-9)
        assert arm["vs_baseline"]["standard_error"] == pytest.approx(float(theirs["standard_error"]), abs=1e-9)


# -- bad input --------------------------------------------------------------------------------------------------------
def test_an_evaluation_set_without_instructions_is_an_error(files, tiny_model_dir, tmp_path):
    """No `instruction` column: an error before any training."""
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "Say hi.", "output": "Hi."}])
    config = make_config(files, tiny_model_dir, tmp_path / "report", eval_set=str(bad))
    with pytest.raises(ValueError, match=r"needs an `instruction` column; it has \['prompt', 'output'\]"):
        run_payoff(config, judge=ScriptedJudge(use_cache=False))
    assert not (tmp_path / "report" / ARMS_DIR).exists()


def test_a_baseline_for_other_instructions_is_an_error_that_counts_them(files, tiny_model_dir, tmp_path):
    """One instruction swapped for another: two mismatches, counted on each side."""
    baseline = [{"instruction": r["instruction"], "output": r["output"]} for r in eval_rows()]
    baseline[2]["instruction"] = "Something else."
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))
    config = make_config(files, tiny_model_dir, tmp_path / "report", baseline=str(tmp_path / "baseline.json"))
    match = (
        r"2 mismatches \(1 of the 6 evaluation instructions have no baseline output, 1 of the 6 baseline outputs "
        r"answer other instructions\), e.g. 'Name 3 primary colours.'"
    )
    with pytest.raises(ValueError, match=match):
        run_payoff(config, judge=ScriptedJudge(use_cache=False))


def test_a_top_smaller_than_one_batch_is_an_error(files, tiny_model_dir, tmp_path):
    """4 rows cannot fill a batch of 8."""
    config = make_config(files, tiny_model_dir, tmp_path / "report", per_device_train_batch_size=8)
    with pytest.raises(ValueError, match=r"The top 25% of 16 rows is 4 row\(s\), fewer than one batch of 8"):
        run_payoff(config, judge=ScriptedJudge(use_cache=False))


def test_missing_scores_are_an_error(files, tiny_model_dir, tmp_path):
    """A `golden_score` column with a missing score is an error that counts them, not a silent ranking."""
    rows = training_rows()
    rows[5]["golden_score"] = None
    config = make_config(files, tiny_model_dir, tmp_path / "report", data=str(write_jsonl(tmp_path / "d.jsonl", rows)))
    with pytest.raises(ValueError, match=r"1 missing or non-finite golden score\(s\) \(first at row 5\)"):
        run_payoff(config, judge=ScriptedJudge(use_cache=False))


def test_config_refuses_unknown_arms_gates_and_max_steps(files, tiny_model_dir, tmp_path):
    """Unknown arm or gate names, and a `max_steps` that would break equal steps per row, are errors."""
    with pytest.raises(ValueError, match=r"`arms` must name some of"):
        make_config(files, tiny_model_dir, tmp_path, arms="top,best")
    with pytest.raises(ValueError, match=r"Unknown gate\(s\) \['nope'\]"):
        make_config(files, tiny_model_dir, tmp_path, gates="empty,nope")
    config = make_config(files, tiny_model_dir, tmp_path / "report")
    with pytest.raises(ValueError, match=r"may not set \['max_steps'\]"):
        run_payoff(config, judge=ScriptedJudge(use_cache=False), training_overrides={"max_steps": 3})


# -- report files, card and command line ------------------------------------------------------------------------------
def test_report_files_hold_the_table_and_the_plot(full_run):
    """`payoff.md` has one row per arm with its win rate ± standard error; `payoff.png` is a PNG image."""
    table = (full_run.out / "payoff.md").read_text()
    top = full_run.report["arms"][0]["vs_baseline"]
    assert f"| top 25% by golden score | {N_KEPT} | 2 | {top['win_rate']:.1f} ± {top['standard_error']:.1f} |" in table
    assert "| random 25% (seed 0) |" in table and "| top vs random |" in table
    assert (full_run.out / "payoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_card_shows_the_payoff_of_a_scored_folder(full_run, tmp_path, monkeypatch):
    """`hf-nuggets card DIR` includes "Does it pay off?" when DIR/payoff/payoff.json exists, and not otherwise."""
    from hf_nuggets.cli.publish import card_main
    from hf_nuggets.publish import card as card_module

    # This checkout's template (an editable install elsewhere, e.g. a git worktree, maps the package data there).
    template = Path(__file__).resolve().parents[1] / "card_templates" / "dataset_card.md"
    monkeypatch.setattr(card_module, "card_template_path", lambda name="dataset_card.md": template)

    scored = tmp_path / "scored-run"
    scored.mkdir()
    Dataset.from_list(training_rows()).to_parquet(str(scored / "scored.parquet"))
    assert card_main([str(scored), "--out", str(tmp_path / "hub0"), "--no_diversity"]) == 0
    assert "Does it pay off?" not in (tmp_path / "hub0" / "README.md").read_text()
    (scored / "payoff").mkdir()
    shutil.copy(full_run.out / "payoff.json", scored / "payoff" / "payoff.json")
    assert card_main([str(scored), "--out", str(tmp_path / "hub1"), "--no_diversity"]) == 0
    card = (tmp_path / "hub1" / "README.md").read_text()
    assert "## Does it pay off?" in card and "| top vs random |" in card
    assert str(full_run.files.eval) not in card  # local paths are cut to their names


def test_cli_scores_trains_and_judges(files, tiny_model_dir, tmp_path, tasks, capsys):
    """`hf-nuggets payoff DATA ...` on unscored data scores it, trains both arms and judges with the local judge."""
    from hf_nuggets.cli.main import main

    tasks_file = write_jsonl(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "report"
    argv = ["payoff", str(files.raw), "--eval", str(files.eval), "--model", str(tiny_model_dir), "--top", "25"]
    argv += ["--prospector", str(tiny_model_dir), "--tasks", str(tasks_file), "--num_tasks", "3"]
    argv += ["--judge", "local", "--judge_model", str(tiny_model_dir), "--num_train_epochs", "1"]
    argv += ["--per_device_train_batch_size", "2", "--max_new_tokens", "4", "--max_length", "64", "--device", "cpu"]
    argv += ["--seed", "0", "--out", str(out), "--save_models", "false"]
    assert main(argv) == 0, capsys.readouterr().err
    report = json.loads((out / "payoff.json").read_text())
    assert (out / "scored" / "scored.parquet").is_file() and report["data"]["rows"] == N_ROWS
    assert [a["name"] for a in report["arms"]] == ["top", "random"] and report["judge"]["name"] == "local"
    assert "| top 25% by golden score |" in capsys.readouterr().out


def test_cli_reports_bad_input(files, tmp_path, capsys):
    """A bad evaluation set is exit status 1 with the error on stderr."""
    from hf_nuggets.cli.main import main

    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "Say hi."}])
    assert main(["payoff", str(files.data), "--eval", str(bad), "--out", str(tmp_path / "r")]) == 1
    assert "needs an `instruction` column" in capsys.readouterr().err
