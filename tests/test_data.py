"""Loading data files, saved datasets and the shipped sample."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset, DatasetDict

from hf_nuggets import load_data, load_default_task_set, load_sample_dataset

ROWS = [{"instruction": "a", "input": "", "output": "b"}, {"instruction": "c", "input": "d", "output": "e"}]


@pytest.mark.parametrize("suffix", ["jsonl", "json", "csv", "parquet"])
def test_load_data_files(tmp_path, suffix):
    """JSON, JSONL, CSV and parquet files load into the same rows."""
    path = tmp_path / f"data.{suffix}"
    ds = Dataset.from_list(ROWS)
    if suffix == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in ROWS))
    elif suffix == "json":
        path.write_text(json.dumps(ROWS))
    elif suffix == "csv":
        ds.to_csv(str(path), index=False)
    else:
        ds.to_parquet(str(path))
    loaded = load_data(path)
    assert [{k: (v or "") for k, v in r.items()} for r in loaded.to_list()] == ROWS


def test_load_saved_dataset_and_split(tmp_path):
    """A folder from `save_to_disk` loads, and a DatasetDict gives the requested split."""
    DatasetDict({"train": Dataset.from_list(ROWS), "test": Dataset.from_list(ROWS[:1])}).save_to_disk(tmp_path / "d")
    assert len(load_data(tmp_path / "d", split="test")) == 1
    with pytest.raises(KeyError, match="`split` 'dev' not in the saved dataset"):
        load_data(tmp_path / "d", split="dev")


def test_load_data_errors_name_the_path(tmp_path):
    """Missing files and unknown formats are named."""
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        load_data(tmp_path / "missing.jsonl")
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(ValueError, match="data.txt is not a data file hf-nuggets reads: .* got '.txt'"):
        load_data(tmp_path / "data.txt")


def test_sample_dataset_holds_good_and_flawed_rows():
    """The shipped sample has 300 rows, 40 of them marked with one of four flaws."""
    ds = load_sample_dataset()
    assert len(ds) == 300
    flaws = [f for f in ds["flaw"] if f]
    assert len(flaws) == 40
    assert set(flaws) == {"empty_output", "nooutput", "wrong_answer", "truncated"}
    assert all(o == "" for o, f in zip(ds["output"], ds["flaw"], strict=True) if f == "empty_output")
    assert all(o == "<nooutput>" for o, f in zip(ds["output"], ds["flaw"], strict=True) if f == "nooutput")


def test_default_task_set_is_complete():
    """The default task set has 16 tasks, each with an instruction and an answer."""
    tasks = load_default_task_set()
    assert len(tasks) == 16
    assert all(t["instruction"].strip() and t["output"].strip() for t in tasks)
    assert load_default_task_set(8) == tasks[:8]
