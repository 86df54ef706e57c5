"""Input checks before any model loads: one line naming the file, the line or row, and what to change."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from hf_nuggets import GoldenScorer, load_data
from hf_nuggets.data.checks import CLI, PYTHON, Caller, InputError, check_columns, check_data_file, parse_columns
from hf_nuggets.run.prospecting import prospect


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.jsonl", b"", r"empty.jsonl is empty: expected at least one row\."),
        ("blank.jsonl", b"\n  \n", r"blank.jsonl holds only blank lines"),
        ("latin1.csv", b"instruction,output\ncaf\xe9,x\n", r"latin1.csv, line 2: byte 0xe9 is not UTF-8"),
        ("header.csv", b"instruction,output\n", r"header.csv has a header \(instruction, output\) but no data rows"),
        (
            "broken.jsonl",
            b'{"a": 1}\n{"a": 2}\n{"a": 3,, }\n',
            r"broken.jsonl, line 3: not valid JSON \(.* 9\)",
        ),
        ("scalar.jsonl", b'{"a": 1}\n[1, 2]\n', r"scalar.jsonl, line 2: a JSON list, expected one JSON object"),
        ("list.json", b'[{"a": 1},\n 2]', r"list.json, line 2: a JSON number, expected a JSON object"),
        ("null.jsonl", b'{"a": 1}\nnull\n', r"null.jsonl, line 2: a JSON null, expected one JSON object per line"),
        ("types.jsonl", b'{"a": "x"}\n{"a": 3}\n', r"types.jsonl, line 2: a number in `a`, where the records before"),
        ("fieldless.jsonl", b"{}\n{}\n", r"fieldless.jsonl has no fields: its records are empty"),
        ("packed.jsonl", b"\x1f\x8b\x08\x00rest", r"packed.jsonl is a gzip file: expected a plain .jsonl file"),
        ("data.txt", b"hello", r"data.txt is not a data file hf-nuggets reads: .* got '.txt'"),
    ],
)
def test_bad_data_files_fail_in_one_line_naming_file_and_line(tmp_path, name, content, expected):
    """Each broken file gives one `InputError` line with the file, the line or row, and what was expected."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=expected) as caught:
        load_data(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_good_files_pass_and_missing_files_stay_file_not_found(tmp_path):
    """Valid JSONL, JSON and CSV (a UTF-8 BOM, non-ASCII text) pass; a missing file is also a FileNotFoundError."""
    rows = [{"instruction": "Café ?", "output": "Oui."}, {"instruction": "b", "output": "c"}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "a.csv").write_bytes("\ufeffinstruction,output\nCafé ?,Oui.\n".encode())
    for name in ("a.jsonl", "a.json", "a.csv"):
        assert check_data_file(tmp_path / name) == tmp_path / name
        assert load_data(tmp_path / name)[0]["output"] == "Oui."
    (tmp_path / "one.json").write_text(json.dumps(rows[0], indent=2), encoding="utf-8")  # one object, several lines
    assert check_data_file(tmp_path / "one.json") == tmp_path / "one.json"
    with pytest.raises(FileNotFoundError, match="missing.jsonl does not exist"):
        load_data(tmp_path / "missing.jsonl")


def test_column_messages_speak_the_callers_language():
    """A missing column suggests the mapping as a CLI flag, a Python keyword, or a form field."""
    names = ["prompt", "response"]
    with pytest.raises(InputError) as cli:
        check_columns(names, {"instruction": "promt", "output": "response"}, source="d.csv", caller=CLI)
    assert str(cli.value) == (
        "Column `promt` (given for `instruction` in `--columns`) is not in d.csv; its columns are prompt, response. "
        "Map them with `--columns instruction=prompt,output=response`."
    )
    with pytest.raises(InputError, match=r"Map them with `columns=\{'instruction': 'prompt', 'output': 'response'\}`"):
        check_columns(names, source="d.csv", caller=PYTHON)
    form = Caller("fields", {"columns": "Column mapping"})
    with pytest.raises(InputError, match="instruction=prompt,output=response in the Column mapping field"):
        check_columns(names, caller=form)
    with pytest.raises(
        InputError, match=r"Column `conv` \(given for `messages` in `--columns`\) .* `--columns messages=COLUMN`\.$"
    ):
        check_columns(["turns"], {"messages": "conv"}, caller=CLI)
    with pytest.raises(
        InputError, match=r"has no column `instruction` .* `--columns instruction=COLUMN,output=COLUMN`"
    ):
        check_columns(["a", "b"], caller=CLI)
    with pytest.raises(InputError, match=r"Unknown key\(s\) answer in `--columns`"):
        check_columns(names, {"answer": "response"}, caller=CLI)
    assert check_columns(["messages"]) == {"messages": "messages"}
    assert parse_columns("instruction=q,input=,output=a") == {"instruction": "q", "input": None, "output": "a"}


def test_prospect_checks_the_columns_before_the_model_loads(tmp_path, tasks):
    """A misspelled mapping fails in `prospect` before the model loads, and leaves no 0-row `scored.partial.*`."""
    scorer = GoldenScorer(str(tmp_path / "no-model-here"), tasks, columns={"instruction": "promt", "output": "answer"})
    data = Dataset.from_list([{"prompt": "Add 2 and 2.", "answer": "4"}])
    with pytest.raises(InputError, match=r"Map them with `columns=\{'instruction': 'prompt', 'output': 'answer'\}`"):
        prospect(data, scorer, tmp_path / "out", progress=False)
    assert not list((tmp_path / "out").glob("scored.partial.*"))
