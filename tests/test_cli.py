"""The `hf-nuggets` command line and the `prospect` job behind it."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset, load_dataset

from hf_nuggets import GoldenScorer, select_top
from hf_nuggets.cli import main
from hf_nuggets.config import ScoreConfig
from hf_nuggets.gates import GATE_NAMES
from hf_nuggets.pipeline import batch_fits, prospect


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
    assert code == 1 and "Column `question` (for `instruction`) not found" in capsys.readouterr().err
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
