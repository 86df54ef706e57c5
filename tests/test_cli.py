"""The `hf-nuggets` command line and the `prospect` job behind it."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset, load_dataset

from hf_nuggets import GoldenScorer, select_top
from hf_nuggets.cli import main
from hf_nuggets.gates import GATE_NAMES
from hf_nuggets.run.config import ScoreConfig
from hf_nuggets.run.loop import RunCallback, batch_fits
from hf_nuggets.run.prospecting import prospect


@pytest.fixture
def files(tmp_path, candidates, tasks):
    data, task_file = tmp_path / "data.jsonl", tmp_path / "tasks.jsonl"
    rows = candidates * 3
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    task_file.write_text("\n".join(json.dumps(t) for t in tasks) + "\n")
    return data, task_file, rows


def test_score_writes_data_summary_and_selection(files, tiny_model_dir, tmp_path):
    """`hf-nuggets score` writes the scored rows (parquet + JSONL), a summary and the top selection."""
    data, task_file, rows = files
    out = tmp_path / "out"
    code = main(
        [
            "score",
            str(data),
            "--tasks",
            str(task_file),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--top",
            "50",
            "--device",
            "cpu",
            "--batch_size",
            "4",
            "--quiet",
        ]
    )
    assert code == 0
    scored = load_dataset("parquet", data_files=str(out / "scored.parquet"), split="train")
    assert len(scored) == len(rows) and "golden_score" in scored.column_names
    assert [json.loads(line)["golden_score"] for line in open(out / "scored.jsonl")] == scored["golden_score"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_scored"] == len(rows) and summary["num_tasks"] == 5
    assert summary["model"] == str(tiny_model_dir) and summary["template"] == "alpaca"
    assert summary["limits"] == {"max_demo_tokens": 512, "max_prompt_tokens": 256, "max_answer_tokens": 256}
    flagged = sum(bool(f) for f in scored["nuggets_flags"])
    assert summary["gates"]["rows_flagged"] == flagged and summary["gates"]["applied"] == list(GATE_NAMES)
    assert summary["selection"]["rows_selected"] == min(9, len(rows) - flagged)  # top 50% of 18, never flagged
    assert summary["quantiles"]["q0"] <= summary["quantiles"]["q50"] <= summary["quantiles"]["q100"]
    selected = load_dataset("json", data_files=str(out / "selected.jsonl"), split="train")
    assert len(selected) == summary["selection"]["rows_selected"] and not any(selected["nuggets_flags"])
    ungated = sorted(
        (s for s, f in zip(scored["golden_score"], scored["nuggets_flags"], strict=True) if not f), reverse=True
    )
    assert min(selected["golden_score"]) >= ungated[len(selected) - 1]


def test_failure_keeps_rows_scored_before(tiny_prospector, candidates, tasks, tmp_path):
    """When a row fails, the rows scored before it are written and the error says where."""
    rows = candidates + [{"instruction": "", "input": "", "output": "x"}] + candidates
    scorer = GoldenScorer(tiny_prospector, tasks)
    with pytest.raises(RuntimeError, match="Scoring stopped at rows 4-7: Column `instruction` is empty at row 6"):
        prospect(Dataset.from_list(rows), scorer, tmp_path, batch_size=4, progress=False)
    partial = load_dataset("parquet", data_files=str(tmp_path / "scored.partial.parquet"), split="train")
    assert len(partial) == 4 and partial["instruction"] == [c["instruction"] for c in candidates[:4]]


def test_time_budget_keeps_what_was_scored(tiny_prospector, candidates, tasks, tmp_path):
    """A tiny time budget stops after the first batch and says so in the summary."""
    scorer = GoldenScorer(tiny_prospector, tasks)
    scored, summary = prospect(
        Dataset.from_list(candidates * 4), scorer, tmp_path, batch_size=2, max_seconds=1e-9, progress=False
    )
    assert len(scored) == 2 and summary["stopped_early"] and summary["rows_total"] == 24


def test_a_batch_starts_only_if_it_fits_the_budget():
    """The pace so far predicts the next batch: 10 rows in 30 s means 4 more rows end at 42 s."""
    assert batch_fits(30.0, 10, 4, 42.0) and not batch_fits(30.0, 10, 4, 41.9)
    assert batch_fits(0.0, 0, 16, 1e-9), "nothing scored yet: the first batch always runs"


def test_bad_arguments_exit_with_a_message(files, tiny_model_dir, tmp_path, capsys):
    """Bad flags and missing files exit non-zero with an error naming them."""
    data, task_file, _ = files
    with pytest.raises(SystemExit):
        main(["score", str(data), "--top", "0"])
    assert "`top` must be in (0, 100], got 0.0" in capsys.readouterr().err
    code = main(["score", str(tmp_path / "absent.jsonl"), "--model", str(tiny_model_dir), "--quiet"])
    assert code == 1 and "absent.jsonl" in capsys.readouterr().err
    code = main(
        [
            "score",
            str(data),
            "--tasks",
            str(task_file),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(tmp_path / "o"),
            "--columns",
            "instruction=question",
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Column `question` (given for `instruction` in `--columns`) is not in" in err
    assert err.strip().endswith("They have the usual names: leave out `--columns`.")
    assert main(["frobnicate"]) == 2


def test_column_mapping_syntax():
    """`--columns` parses key=name pairs, an empty name meaning no such column."""
    assert ScoreConfig(columns="instruction=q,input=,output=a").column_mapping() == {
        "instruction": "q",
        "input": None,
        "output": "a",
    }
    with pytest.raises(ValueError, match="`columns` must look like"):
        ScoreConfig(columns="question")


def test_unwritable_output_folder_is_refused(tiny_prospector, candidates, tasks, tmp_path):
    """An output folder that cannot be written fails before any scoring."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    scorer = GoldenScorer(tiny_prospector, tasks)
    with pytest.raises(PermissionError, match="`out_dir`=.* is not writable"):
        prospect(Dataset.from_list(candidates), scorer, blocker / "out", progress=False)
    assert scorer.stats["candidates"] == 0
    with pytest.raises(ValueError, match="The dataset is empty"):
        prospect(Dataset.from_list(candidates).select([]), scorer, tmp_path, progress=False)


def test_eval_command_is_dispatched(capsys):
    assert main(["eval", "--help"]) == 0
    assert "--baseline" in capsys.readouterr().out


def test_unknown_gate_flag_lists_the_gates(capsys):
    """`--gates` with an unknown name stops before anything loads, naming the flag and the known gates."""
    with pytest.raises(SystemExit) as stop:
        main(["score", "data.jsonl", "--gates", "empty,emtpy"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--gates" in err and "['emtpy']" in err and "'empty', 'placeholder', 'unaligned', 'unfinished'" in err


def test_gates_none_selects_by_golden_score_alone(files, tiny_model_dir, tmp_path):
    """`--gates none` writes the top by golden score alone, flagged rows included; the summary says no gate applied."""
    data, task_file, rows = files
    common = ["score", str(data), "--tasks", str(task_file), "--model", str(tiny_model_dir), "--top", "50"]
    common += ["--device", "cpu", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "none"), "--gates", "none"]) == 0
    summary = json.loads((tmp_path / "none" / "summary.json").read_text())
    assert summary["gates"]["applied"] == [] and summary["selection"]["rows_selected"] == 9
    scored = load_dataset("parquet", data_files=str(tmp_path / "none" / "scored.parquet"), split="train")
    expected = select_top(scored, 50, gates=None)
    selected = load_dataset("json", data_files=str(tmp_path / "none" / "selected.jsonl"), split="train")
    assert selected["instruction"] == expected["instruction"]


def test_min_distance_flag_keeps_one_row_per_question(files, tiny_model_dir, tmp_path, capsys):
    """`--min_distance` (real MiniLM) keeps one row per distinct question; summary and printout count the skips."""
    data, task_file, rows = files  # every candidate three times
    out = tmp_path / "out"
    args = ["score", str(data), "--tasks", str(task_file), "--model", str(tiny_model_dir), "--out", str(out)]
    assert main([*args, "--top", "50", "--min_distance", "0.05", "--device", "cpu", "--batch_size", "6"]) == 0
    scored = load_dataset("parquet", data_files=str(out / "scored.parquet"), split="train")
    selected = load_dataset("json", data_files=str(out / "selected.jsonl"), split="train")
    ungated = [i for i, flags in enumerate(scored["nuggets_flags"]) if not flags]
    questions = {(scored["instruction"][i].strip(), scored["input"][i].strip()) for i in ungated}
    kept = [(row["instruction"].strip(), row["input"].strip()) for row in selected]
    assert len(kept) == len(set(kept)) and set(kept) == questions and len(questions) < 9
    record = json.loads((out / "summary.json").read_text())["selection"]
    assert record["min_distance"] == 0.05 and record["rows_selected"] == len(kept)
    assert record["rows_redundant"] == len(ungated) - len(kept)  # fewer questions than 9: the walk saw every row
    assert record["neighbours"]["method"] == "lsh" and "all-MiniLM-L6-v2" in record["neighbours"]["embeddings"]
    assert f"{record['rows_redundant']} rows skipped as redundant" in capsys.readouterr().out


def test_min_distance_needs_top_and_a_valid_distance():
    """`--min_distance` without `--top`, out of (0, 2), or with `--streaming` is refused when the settings are made."""
    with pytest.raises(ValueError, match="`min_distance` needs `top`"):
        ScoreConfig(min_distance=0.1)
    with pytest.raises(ValueError, match="cosine distance in \\(0, 2\\)"):
        ScoreConfig(top=5, min_distance=2.0)
    with pytest.raises(ValueError, match="neither `streaming` nor `early_stop`"):
        ScoreConfig(top=5, min_distance=0.1, streaming=True)


# ---------------------------------------------------------------------------------------------------------------------
# --tasks auto: the tasks are drawn from the data being scored


def topic_embedder(texts):
    """A cheap stand-in for MiniLM: a few hashed letter counts per text."""
    import numpy as np

    vectors = np.array([[t.count(c) + 1.0 for c in "aeiost"] for t in texts])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def sample_file(tmp_path):
    """The first 60 rows of the shipped sample (the tiny model lets 7 of them through the gates)."""
    from hf_nuggets import load_sample_dataset

    path = tmp_path / "sample60.jsonl"
    load_sample_dataset().select(range(60)).to_json(str(path), lines=True)
    return path


def test_prospect_auto_tasks_are_recorded_in_summary_and_card(tiny_prospector, candidates, tmp_path):
    """`prospect(..., task_set="auto")` scores against tasks drawn from the data and records them: summary.json
    (source, count, provenance with the rows chosen) and the dataset card's task-set sentence."""
    import math

    from hf_nuggets import build_dataset_card
    from hf_nuggets.gates import GateSettings
    from hf_nuggets.publish.hub import load_prospect_output

    rows = [{**c, "instruction": f"{c['instruction']} ({i})"} for i, c in enumerate(candidates * 4)]
    data = Dataset.from_list(rows)
    loose = GateSettings(alignment_threshold=-math.inf, completeness_threshold=-math.inf)
    scorer = GoldenScorer(tiny_prospector, gate_settings=loose)
    options = {"num_tasks": 3, "sample_size": 20, "seed": 1, "quality": lambda ex: [len(e.output) for e in ex]}
    scored, summary = prospect(
        data,
        scorer,
        tmp_path / "run",
        task_set="auto",
        auto_options={**options, "embedder": topic_embedder},
        progress=False,
    )
    record = summary["tasks"]
    assert record["source"] == "auto" and record["count"] == 3 == summary["num_tasks"]
    made = record["provenance"]
    assert made["sample_size"] == 20 and made["seed"] == 1 and made["rows_available"] == 24 and len(made["rows"]) == 3
    assert made["gated"]["by_gate"]["empty"] >= 1  # the empty answers sampled never become tasks
    assert all(rows[r]["output"].strip() for r in made["rows"])
    assert len(scored) == 24 and summary["timings"]["tasks_s"] > 0
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["tasks"] == record

    scored_back, summary_back = load_prospect_output(tmp_path / "run")
    card = build_dataset_card(scored_back, summary=summary_back, top_percent=25, diversity=False)
    row = next(line for line in card.text.splitlines() if line.startswith("| Task set |"))
    gated = made["gated"]
    assert row.startswith(
        "| Task set | 3 tasks; drawn from the scored data itself (--tasks auto): a random sample of 20 of its 24 rows "
        f"(seed 1), less {gated['rows']} rows stopped by the gates (empty {gated['by_gate']['empty']})"
    )
    assert "each meets itself as one of the tasks, which can add 1/3 to its golden score and lifts its mean" in row
    assert "Rows chosen: " + ", ".join(str(r) for r in made["rows"]) + "." in row


def test_score_tasks_auto_on_the_command_line(sample_file, tiny_model_dir, tmp_path, monkeypatch):
    """`hf-nuggets score DATA --tasks auto` draws the tasks from DATA and writes them into summary.json."""
    import hf_nuggets.taskset.embeddings as embeddings

    monkeypatch.setattr(embeddings, "load_embedder", lambda name=None, device=None: topic_embedder)
    out = tmp_path / "out"
    args = ["--model", str(tiny_model_dir), "--device", "cpu", "--out", str(out), "--quiet"]
    assert main(["score", str(sample_file), "--tasks", "auto", "--num_tasks", "3", "--task_seed", "2", *args]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"]["source"] == "auto" and summary["num_tasks"] == 3
    made = summary["tasks"]["provenance"]
    assert made["seed"] == 2 and made["sample_size"] == 60 and made["quality"].startswith("judge: ")
    assert summary["rows_scored"] == 60
    # The sample is the whole file, so the rows the gates kept out of the tasks are the rows the scorer flagged.
    scored = load_dataset("parquet", data_files=str(out / "scored.parquet"), split="train")
    assert made["gated"]["rows"] == sum(bool(f) for f in scored["nuggets_flags"])
    assert not any(scored[r]["nuggets_flags"] for r in made["rows"])


def test_score_tasks_auto_on_too_little_data_fails_before_scoring(
    sample_file, tiny_model_dir, tmp_path, capsys, monkeypatch
):
    """`--tasks auto` asking more tasks than the rows left after the gates fails with one line naming both sizes,
    before any row is scored or written."""
    calls = []
    original = GoldenScorer.score_examples
    monkeypatch.setattr(GoldenScorer, "score_examples", lambda self, ex: calls.append(1) or original(self, ex))
    out = tmp_path / "out"
    args = ["--model", str(tiny_model_dir), "--device", "cpu", "--out", str(out), "--quiet"]
    # An alignment threshold no answer clears gates every row that has an answer.
    assert main(["score", str(sample_file), "--tasks", "auto", "--alignment_threshold", "1000", *args]) == 1
    err = capsys.readouterr().err.splitlines()[-1]  # the lines before it are progress bars
    assert err.startswith(
        "hf-nuggets score: error: `num_tasks` (16) is larger than the pool of 0 rows left after the gates (60 rows, "
        "60 gated: empty 2, placeholder 2, unaligned 58)"
    )
    assert err.endswith("in a sample of 60 of the data's 60 rows.")
    assert main(["score", str(sample_file), "--tasks", "auto", "--limit", "10", *args]) == 1
    assert "`num_tasks` (16) is larger than the pool of 10 rows in the data." in capsys.readouterr().err
    assert calls == [] and not (out / "scored.parquet").exists() and not (out / "summary.json").exists()


# ---------------------------------------------------------------------------------------------------------------------
# Ctrl-C: the rows scored before are kept, as for any failure


class InterruptAtBatch(RunCallback):
    """Presses Ctrl-C (raises `KeyboardInterrupt`) just before batch number `at` (counted from 1) is scored."""

    def __init__(self, at: int):
        self.at, self.seen = at, 0

    def on_batch_begin(self, state, control):
        self.seen += 1
        if self.seen == self.at:
            raise KeyboardInterrupt


def test_ctrl_c_in_prospect_saves_the_rows_done_and_stays_a_keyboard_interrupt(
    tiny_prospector, candidates, tasks, tmp_path
):
    """`KeyboardInterrupt` during scoring writes `scored.partial.*` with the batches done, then propagates as a
    `KeyboardInterrupt` (not a `RuntimeError`) whose message names the partial files."""
    scorer = GoldenScorer(tiny_prospector, tasks)
    rows = candidates * 2
    with pytest.raises(KeyboardInterrupt) as caught:
        prospect(
            Dataset.from_list(rows), scorer, tmp_path, batch_size=4, progress=False, callbacks=[InterruptAtBatch(3)]
        )
    partial = load_dataset("parquet", data_files=str(tmp_path / "scored.partial.parquet"), split="train")
    assert partial["instruction"] == [r["instruction"] for r in rows[:8]] and "golden_score" in partial.column_names
    lines = (tmp_path / "scored.partial.jsonl").read_text().splitlines()
    assert [json.loads(line)["instruction"] for line in lines] == partial["instruction"]
    assert str(tmp_path / "scored.partial.parquet") in str(caught.value)
    assert not (tmp_path / "scored.parquet").exists() and not (tmp_path / "summary.json").exists()


def interrupt_the_second_batch(monkeypatch) -> None:
    """Make `GoldenScorer.score_examples` raise `KeyboardInterrupt` on its second call, as Ctrl-C would."""
    real = GoldenScorer.score_examples
    calls = []

    def score_then_interrupt(self, examples):
        calls.append(len(examples))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, examples)

    monkeypatch.setattr(GoldenScorer, "score_examples", score_then_interrupt)


def test_ctrl_c_in_score_exits_130_and_says_where_the_rows_are(files, tiny_model_dir, tmp_path, monkeypatch, capsys):
    """Ctrl-C while `hf-nuggets score` scores (no `--shard_size`): exit code 130, the rows of the batches done in
    `scored.partial.*`, and one line on stderr naming the partial file."""
    data, task_file, rows = files
    interrupt_the_second_batch(monkeypatch)
    out = tmp_path / "out"
    args = ["score", str(data), "--tasks", str(task_file), "--model", str(tiny_model_dir), "--out", str(out)]
    try:
        code = main([*args, "--batch_size", "4", "--device", "cpu", "--quiet"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped `main` instead of ending the command with exit code 130")
    assert code == 130
    partial = load_dataset("parquet", data_files=str(out / "scored.partial.parquet"), split="train")
    assert partial["instruction"] == [r["instruction"] for r in rows[:4]]
    ours = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hf-nuggets score:")]
    assert len(ours) == 1 and "interrupted" in ours[0] and str(out / "scored.partial.parquet") in ours[0]


def test_ctrl_c_in_a_sharded_score_exits_130_and_names_the_checkpoint(
    files, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """Ctrl-C in `hf-nuggets score --shard_size N`: exit code 130 and one line saying the finished shards are kept."""
    data, task_file, _ = files
    interrupt_the_second_batch(monkeypatch)
    out = tmp_path / "out"
    args = ["score", str(data), "--tasks", str(task_file), "--model", str(tiny_model_dir), "--out", str(out)]
    try:
        code = main([*args, "--shard_size", "4", "--device", "cpu", "--quiet"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped `main` instead of ending the command with exit code 130")
    assert code == 130
    ours = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hf-nuggets score:")]
    assert len(ours) == 1 and "interrupted" in ours[0] and str(out / "checkpoint") in ours[0]
    assert (out / "checkpoint" / "shard-000000.npz").is_file()


# ---------------------------------------------------------------------------------------------------------------------
# One run at a time in an output folder, and no stale files left from an earlier run


def dead_pid() -> int:
    """The id of a process that has ended (and was reaped): nothing runs under it now."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_lock(folder, pid: int, host: str | None = None) -> None:
    import socket

    folder.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "host": host or socket.gethostname(), "started": "2024-01-01T00:00:00+00:00"}
    (folder / ".hf-nuggets.lock").write_text(json.dumps(record))


class StartAnotherRun(RunCallback):
    """Starts a second `prospect` on the same folder while the first is scoring, and keeps what happens to it."""

    def __init__(self, make_run):
        self.make_run, self.error = make_run, None

    def on_phase(self, state, phase):
        if phase == "scoring":
            try:
                self.make_run()
            except Exception as err:  # noqa: BLE001 - the test reads it
                self.error = err


def test_second_run_on_a_busy_folder_is_refused(tiny_prospector, candidates, tasks, tmp_path):
    """While a run holds its output folder, another run there is refused, naming the folder and the holder's PID;
    the first run ends normally and frees the folder."""
    import os

    scorer = GoldenScorer(tiny_prospector, tasks)
    dataset = Dataset.from_list(candidates)
    second = StartAnotherRun(lambda: prospect(dataset, scorer, tmp_path, progress=False))
    scored, _ = prospect(dataset, scorer, tmp_path, batch_size=3, progress=False, callbacks=[second])
    assert second.error is not None, "the second run was let into a folder in use"
    message = str(second.error)
    assert str(tmp_path) in message and f"process {os.getpid()}" in message and "\n" not in message
    assert len(scored) == len(candidates) and not (tmp_path / ".hf-nuggets.lock").exists()


def test_lock_of_a_live_process_is_refused_and_of_a_dead_one_taken_over(
    files, tiny_model_dir, tiny_prospector, candidates, tasks, tmp_path, capsys
):
    """A lock left by a process that still runs refuses the run (the CLI says so in one line, exit 1); one left by
    a process that ended on this host is stale: the run takes it over and frees the folder at the end."""
    import subprocess
    import sys

    scorer = GoldenScorer(tiny_prospector, tasks)
    dataset = Dataset.from_list(candidates)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / "live"
        write_lock(live, sleeper.pid)
        with pytest.raises(RuntimeError, match=rf"{live}.* in use .*process {sleeper.pid}"):
            prospect(dataset, scorer, live, progress=False)
        data, task_file, _ = files
        args = ["score", str(data), "--tasks", str(task_file), "--model", str(tiny_model_dir), "--out", str(live)]
        assert main([*args, "--device", "cpu", "--quiet"]) == 1
        ours = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hf-nuggets score:")]
        assert len(ours) == 1 and str(live) in ours[0] and f"process {sleeper.pid}" in ours[0]
        assert sorted(p.name for p in live.iterdir()) == [".hf-nuggets.lock"]
    finally:
        sleeper.kill()
        sleeper.wait()
    write_lock(tmp_path / "dead", dead_pid())
    scored, _ = prospect(dataset, scorer, tmp_path / "dead", progress=False)
    assert len(scored) == len(candidates) and (tmp_path / "dead" / "scored.parquet").is_file()
    assert not (tmp_path / "dead" / ".hf-nuggets.lock").exists()


def test_lock_is_freed_after_a_failure_and_after_ctrl_c(tiny_prospector, candidates, tasks, tmp_path):
    """A run that fails or is interrupted frees its folder: the next run there goes ahead."""
    scorer = GoldenScorer(tiny_prospector, tasks)
    bad = Dataset.from_list(candidates + [{"instruction": "", "input": "", "output": "x"}])
    with pytest.raises(RuntimeError, match="Scoring stopped"):
        prospect(bad, scorer, tmp_path, batch_size=4, progress=False)
    assert not (tmp_path / ".hf-nuggets.lock").exists()
    good = Dataset.from_list(candidates)
    with pytest.raises(KeyboardInterrupt):
        prospect(good, scorer, tmp_path, batch_size=4, progress=False, callbacks=[InterruptAtBatch(2)])
    assert not (tmp_path / ".hf-nuggets.lock").exists()


def test_rerun_without_top_removes_the_old_selection(tiny_prospector, candidates, tasks, tmp_path):
    """A run without `top_percent` in a folder that holds the `selected.*` of an earlier run removes them (they
    belong to other scores); its summary names no selection; an old `scored.partial.*` goes too."""
    scorer = GoldenScorer(tiny_prospector, tasks)
    dataset = Dataset.from_list(candidates)
    prospect(dataset, scorer, tmp_path, top_percent=50, progress=False)
    assert (tmp_path / "selected.parquet").is_file() and (tmp_path / "selected.jsonl").is_file()
    (tmp_path / "scored.partial.parquet").write_text("left by a failed run")
    (tmp_path / "scored.partial.jsonl").write_text("left by a failed run")
    _, summary = prospect(dataset, scorer, tmp_path, progress=False)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["scored.jsonl", "scored.parquet", "summary.json"], left
    assert "selection" not in summary and "selection" not in json.loads((tmp_path / "summary.json").read_text())


def test_candidates_per_forward_flag_scores_as_one_at_a_time(files, tiny_model_dir, tmp_path):
    """`--candidates_per_forward` stacks candidates in a forward pass: in float32 the scores equal those of one
    candidate at a time, and the summary records the setting."""
    data, task_file, rows = files
    runs = {}
    for k in (1, 3):
        out = tmp_path / f"out{k}"
        args = ["score", str(data), "--tasks", str(task_file), "--model", str(tiny_model_dir), "--out", str(out)]
        args += ["--device", "cpu", "--dtype", "float32", "--batch_size", "6", "--quiet"]
        assert main([*args, "--candidates_per_forward", str(k), "--return_scores"]) == 0
        runs[k] = load_dataset("parquet", data_files=str(out / "scored.parquet"), split="train")
        assert json.loads((out / "summary.json").read_text())["candidates_per_forward"] == k
    assert runs[3]["golden_score"] == runs[1]["golden_score"]
    assert runs[3]["nuggets_gain"] == pytest.approx(runs[1]["nuggets_gain"], abs=1e-5)


def test_candidates_per_forward_must_be_positive(files, capsys):
    with pytest.raises(SystemExit):
        main(["score", str(files[0]), "--candidates_per_forward", "0"])
    assert "`candidates_per_forward` must be a positive integer, got 0" in capsys.readouterr().err
