"""The command line as a new user meets it: input checked before any model loads, the same flags on every command,
output that shows the rows, quiet library progress bars, and one-line errors."""

from __future__ import annotations

import json

import pytest
from datasets import load_dataset

from hf_nuggets.cli import main


@pytest.fixture
def no_model_load(monkeypatch):
    """Fails the test if a command loads a model: the checks must come first."""
    import hf_nuggets.scoring.prospector as prospector_module
    import hf_nuggets.scoring.scorer as scorer_module

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(prospector_module, "load_prospector", refuse)
    monkeypatch.setattr(scorer_module, "load_prospector", refuse)
    monkeypatch.setattr("hf_nuggets.run.build.load_prospector", refuse, raising=False)


def one_error_line(capsys, command: str) -> str:
    """The single line a failed command printed on stderr."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"hf-nuggets {command}: error: "), lines[0]
    return lines[0]


def write_rows(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


PROMPTS = [
    {"prompt": "Name a primary colour.", "response": "Red is a primary colour."},
    {"prompt": "Add 2 and 3.", "response": "2 + 3 = 5."},
    {"prompt": "Describe a fox.", "response": "The quick brown fox jumps over the lazy dog."},
    {"prompt": "Translate hello into French.", "response": "Bonjour."},
]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.jsonl", b"", "empty.jsonl is empty: expected at least one row."),
        ("latin1.csv", b"instruction,output\ncaf\xe9,x\n", "latin1.csv, line 2: byte 0xe9 is not UTF-8"),
        ("header.csv", b"instruction,output\n", "header.csv has a header (instruction, output) but no data rows"),
        (
            "broken.jsonl",
            b'{"instruction": "a", "output": "b"}\n{"instruction": }\n',
            "broken.jsonl, line 2: not valid",
        ),
    ],
)
@pytest.mark.parametrize("command", ["score", "refine"])
def test_bad_data_file_fails_in_one_line_before_any_model(
    tmp_path, capsys, no_model_load, command, name, content, expected
):
    """An empty, non-UTF-8, header-only or broken file: exit 1, one line naming the file and line, no model."""
    path = tmp_path / name
    path.write_bytes(content)
    assert main([command, str(path), "--out", str(tmp_path / ("out" if command == "score" else "t.jsonl"))]) == 1
    line = one_error_line(capsys, command)
    assert str(path) in line and expected in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["score", "refine"])
def test_misspelled_column_is_named_with_the_flag_before_any_model(tmp_path, capsys, no_model_load, command):
    """A misspelled `--columns` name fails before the model loads, says the fix as a flag, writes no partial file."""
    data = write_rows(tmp_path / "data.jsonl", PROMPTS)
    out = tmp_path / ("out" if command == "score" else "t.jsonl")
    assert main([command, str(data), "--columns", "instruction=promt,output=response", "--out", str(out)]) == 1
    line = one_error_line(capsys, command)
    assert f"Column `promt` (given for `instruction` in `--columns`) is not in {data}" in line
    assert line.endswith("Map them with `--columns instruction=prompt,output=response`.")
    assert "columns={" not in line and not out.exists()


def test_eval_checks_its_baseline_file_first(tmp_path, capsys, no_model_load):
    """`eval` with an empty baseline file fails in one line naming it, before generating anything."""
    baseline = tmp_path / "baseline.json"
    baseline.write_text("")
    assert main(["eval", "--baseline", str(baseline), "--out", str(tmp_path / "eval")]) == 1
    assert f"{baseline} is empty" in one_error_line(capsys, "eval")


def test_score_mapped_columns_show_their_texts_and_every_file(tmp_path, tiny_model_dir, tasks, capsys):
    """`score --columns` on prompt/response rows: best and worst show the rows' texts, "Wrote" names the `selected.*`
    files too, and summary.json records the mapping read and a real model load time."""
    from hf_nuggets.scoring.prospector import clear_prospector_cache

    data = write_rows(tmp_path / "data.jsonl", PROMPTS)
    task_file = write_rows(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "out"
    clear_prospector_cache()  # the model is loaded by this run, and timed
    args = ["score", str(data), "--columns", "instruction=prompt,output=response", "--tasks", str(task_file)]
    assert main([*args, "--model", str(tiny_model_dir), "--device", "cpu", "--out", str(out), "--top", "50"]) == 0
    printed = capsys.readouterr().out
    listed = [line for line in printed.splitlines() if line.startswith("  row ")]
    assert len(listed) >= 4 and all(" -> " in line for line in listed)  # the best leave out flagged rows
    assert any("Describe a fox.  -> The quick brown fox" in line for line in listed)
    wrote = printed.strip().splitlines()[-1]
    for name in ("scored.parquet", "scored.jsonl", "selected.parquet", "selected.jsonl", "summary.json"):
        assert str(out / name) in wrote
    summary = json.loads((out / "summary.json").read_text())
    assert summary["columns"] == {"instruction": "prompt", "input": None, "output": "response"}
    assert summary["timings"]["load_s"] > 0


def test_score_chat_rows_show_their_turns(tmp_path, tiny_model_dir, tasks, capsys):
    """Chat rows (a `messages` column) show the user turn and the answer among the best and worst."""
    chats = [
        {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["response"]}]}
        for r in PROMPTS
    ]
    data = write_rows(tmp_path / "chat.jsonl", chats)
    task_file = write_rows(tmp_path / "tasks.jsonl", tasks)
    args = ["score", str(data), "--tasks", str(task_file), "--model", str(tiny_model_dir), "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  row ")]
    assert any("Add 2 and 3.  -> 2 + 3 = 5." in line for line in listed), listed
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["columns"] == {"messages": "messages"}


def test_sharded_score_shows_the_rows_and_every_file(tmp_path, tiny_model_dir, tasks, capsys):
    """A sharded run (`--shard_size`) prints the best and worst rows with their texts too, and every file."""
    data = write_rows(tmp_path / "data.jsonl", PROMPTS)
    task_file = write_rows(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "out"
    args = ["score", str(data), "--columns", "instruction=prompt,output=response", "--tasks", str(task_file)]
    args += ["--model", str(tiny_model_dir), "--device", "cpu", "--out", str(out), "--shard_size", "2", "--top", "50"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Scored 4 rows in 2 shards" in printed
    assert any(line.startswith("  row ") and "Add 2 and 3.  -> 2 + 3 = 5." in line for line in printed.splitlines())
    assert str(out / "selected.jsonl") in printed.strip().splitlines()[-1]


def test_library_progress_bars_only_with_verbose(tmp_path, capsys, no_model_load):
    """datasets' "Generating train split" bar is hidden unless `--verbose`, and its setting is restored after."""
    import datasets

    for verbose, shown in (([], False), (["--verbose"], True)):
        data = write_rows(tmp_path / f"data{len(verbose)}.jsonl", PROMPTS)  # a new file: datasets generates it
        assert main(["score", str(data), "--columns", "instruction=nope", "--out", str(tmp_path / "o"), *verbose]) == 1
        err = capsys.readouterr().err
        assert ("Generating train split" in err) is shown, err
        assert datasets.utils.logging.is_progress_bar_enabled()


def test_refine_small_size_adapts_top_quality(tmp_path, tiny_model_dir, monkeypatch, capsys):
    """`refine --size 4` works with the default `--top_quality` (a fifth of a small size, at least 1); asking more
    than `--size` names the flag."""
    from test_refine import pool_rows, topic_embedder

    import hf_nuggets.taskset.embeddings as embeddings

    monkeypatch.setattr(embeddings, "load_embedder", lambda name=None, device=None: topic_embedder)
    data = write_rows(tmp_path / "pool.jsonl", [{**r, "score": float(i)} for i, r in enumerate(pool_rows())])
    out = tmp_path / "tasks.jsonl"
    args = ["--quality", "score", "--model", str(tiny_model_dir), "--out", str(out)]
    assert main(["refine", str(data), "--size", "4", *args]) == 0, capsys.readouterr().err
    reasons = [json.loads(line)["refine_reason"] for line in out.read_text().splitlines()]
    assert reasons == ["quality", "kcenter", "kcenter", "kcenter"]
    with pytest.raises(SystemExit):
        main(["refine", str(data), "--size", "4", "--top_quality", "20"])
    assert "`--top_quality` (20) cannot exceed `--size` (4)" in capsys.readouterr().err


def scored_folder(tmp_path, summary_columns=None):
    """An output folder of `score` whose rows have prompt/response columns."""
    from datasets import Dataset

    folder = tmp_path / "run"
    folder.mkdir(parents=True)
    rows = [{**r, "golden_score": i / 4, "nuggets_gain": 0.1 * i} for i, r in enumerate(PROMPTS * 2)]
    Dataset.from_list(rows).to_parquet(str(folder / "scored.parquet"))
    (folder / "summary.json").write_text(json.dumps({"model": "tiny", "num_tasks": 5, "columns": summary_columns}))
    return folder


def test_card_takes_columns_and_leaves_no_partial_folder(tmp_path, capsys, monkeypatch):
    """`card` without a mapping for prompt/response rows names `--columns`, writes nothing; `--columns` works; a
    failure half-way leaves no DIR/hub behind, so the rerun needs no `--overwrite`."""
    import hf_nuggets.publish.hub as hub

    folder = scored_folder(tmp_path)
    capsys.readouterr()  # the test's own writing
    assert main(["card", str(folder), "--no_diversity"]) == 1
    line = one_error_line(capsys, "card")
    assert "Map them with `--columns instruction=prompt,output=response`" in line and "text_columns=" not in line
    assert not (folder / "hub").exists()

    def broken_card(*args, **kwargs):
        raise ValueError("the card template broke")

    real = hub.build_dataset_card
    monkeypatch.setattr(hub, "build_dataset_card", broken_card)
    args = ["card", str(folder), "--columns", "instruction=prompt,output=response", "--top", "50"]
    assert main(args) == 1
    assert "the card template broke" in one_error_line(capsys, "card")
    assert not (folder / "hub").exists() and [p.name for p in folder.iterdir() if p.name.startswith(".")] == []
    monkeypatch.setattr(hub, "build_dataset_card", real)
    assert main(args) == 0
    card = (folder / "hub" / "README.md").read_text()
    assert "Describe a fox." in card
    assert main(args) == 1 and "pass `--overwrite`" in one_error_line(capsys, "card")
    assert main([*args, "--overwrite"]) == 0
    recorded = scored_folder(tmp_path / "recorded", {"instruction": "prompt", "input": None, "output": "response"})
    assert main(["card", str(recorded), "--top", "50"]) == 0, "the mapping of summary.json was not used"
    assert len(load_dataset(str(recorded / "hub"), "top50", split="train")) == 4


def test_push_token_flag_and_network_failure_in_one_line(tmp_path, capsys, monkeypatch):
    """`push` names `--token` when there is none; with `--token` and an unreachable Hub it fails in one line."""
    import socket

    from huggingface_hub import constants

    folder = scored_folder(tmp_path, {"instruction": "prompt", "output": "response"})
    capsys.readouterr()  # the test's own writing
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    assert main(["push", str(folder), "user/data", "--no_diversity"]) == 1
    assert "pass `--token`" in one_error_line(capsys, "push")
    with socket.socket() as sock:  # a port nothing listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", closed)
    monkeypatch.setenv("HF_ENDPOINT", closed)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    token = "hf_notARealTokenForThisTest123"
    assert main(["push", str(folder), "user/data", "--no_diversity", "--token", token]) == 1
    line = one_error_line(capsys, "push")
    assert "Could not push to the dataset repo user/data (nothing was pushed): the Hub is not reachable" in line
    assert token not in line
