"""The Gradio Space (`spaces/app.py`), driven through `gradio_client` against the launched app, on a tiny model."""

from __future__ import annotations

import html as html_module
import importlib
import json
import logging
import re
import threading
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

gr = pytest.importorskip("gradio", reason="the Space needs gradio: pip install 'hf-nuggets[space]'")
gradio_client = pytest.importorskip("gradio_client", reason="the Space tests need gradio_client")

from gradio_client import Client, handle_file  # noqa: E402

import prospect_run  # noqa: E402 - the Space's modules (spaces/ is on pytest's pythonpath)
import prospect_tab  # noqa: E402
import prospectors as space_prospectors  # noqa: E402
import rendering  # noqa: E402
import visitor_data  # noqa: E402
import winrate_tab  # noqa: E402
from hf_nuggets import GoldenScorer, load_default_task_set, load_sample_dataset  # noqa: E402
from hf_nuggets.data.formatting import examples_from_rows  # noqa: E402
from hf_nuggets.data.loading import sample_dataset_path  # noqa: E402

pytestmark = pytest.mark.usefixtures("prospector_cache_limits_restored")  # the Space bounds the library's cache

SPACE_DIR = Path(__file__).resolve().parent.parent / "spaces"
SAMPLE = str(sample_dataset_path())
UNREACHABLE_HUB = "http://127.0.0.1:9"  # the discard port: connections are refused at once
SECRET = "hf_space_test_secret_token_0123456789"


@pytest.fixture(scope="module")
def space():
    """`spaces/app.py`, imported as a Space runs it: from its folder, which pytest puts on `sys.path`."""
    return importlib.import_module("app")


@pytest.fixture(scope="module")
def url(space, tiny_prospector):
    """The Space on a local port, with the tiny prospector preloaded and a 1 MB upload limit."""
    demo = space.build_demo(prospector=tiny_prospector, max_upload_mb=1, max_jobs=2, hub_endpoint=UNREACHABLE_HUB)
    _, local_url, _ = demo.queue().launch(prevent_thread_lock=True, quiet=True)
    yield local_url
    demo.close()


def client(url: str) -> Client:
    """A new visitor (its own session)."""
    return Client(url, verbose=False, download_files=True)


def status_kind(html: str) -> str:
    return html.split('data-kind="', 1)[1].split('"', 1)[0]


def prospect(visitor: Client, *, rows: int, num_tasks: int = 4, task_mode: str | None = None, **kwargs):
    args = {
        "instruction": "instruction",
        "input_": "input",
        "output": "output",
        "messages": "(none)",
        "task_mode": task_mode or prospect_run.TASKS_SHIPPED,
        "task_file": None,
        "num_tasks": num_tasks,
        "rows": rows,
        "seconds": 300,
        "top_percent": 5,
        **kwargs,
    }
    return visitor.submit(**args, api_name="/prospect")


OUTPUT_NAMES = [
    "status",
    "histogram",
    "stats",
    "table",
    "tasks",
    "summary",
    "report",
    "parquet",
    "jsonl",
    "card",
    "zip",
]


def outputs(result) -> dict:
    """The /prospect outputs by name, the tables' values unwrapped from their updates (which make them visible)."""
    named = dict(zip(OUTPUT_NAMES, result, strict=True))
    return {k: value_of(v) if k in ("table", "tasks") else v for k, v in named.items()}


def value_of(update):
    """The value of a component's update (as `gradio_client` returns it), or the value itself."""
    return update.get("value") if isinstance(update, dict) and update.get("__type__") == "update" else update


def file_value(update) -> str:
    return update["value"] if isinstance(update, dict) else update


def histogram_counts(html: str) -> list[int]:
    return [int(part.split('"', 1)[0]) for part in html.split('data-count="')[1:]]


@pytest.fixture(scope="module")
def sample_run(url, tiny_prospector):
    """One visitor uploads the sample and prospects its first 40 rows against 4 tasks."""
    visitor = client(url)
    loaded = visitor.predict(handle_file(SAMPLE), api_name="/load_file")
    started = time.perf_counter()
    job = prospect(visitor, rows=40)
    raw = job.result(timeout=120)
    seconds = time.perf_counter() - started
    return {"visitor": visitor, "loaded": loaded, "result": outputs(raw), "raw": raw, "seconds": seconds}


# ---------------------------------------------------------------------------------------------------------------------
# Data


def test_upload_previews_rows_and_maps_columns(sample_run):
    """Uploading the sample shows its size, a preview and the instruction/input/output mapping."""
    status, preview, instruction, input_, output, messages, rows = sample_run["loaded"]
    assert status_kind(status) == "ok" and "300 rows" in status and "sample_alpaca.jsonl" in status
    assert preview["value"]["headers"] == ["instruction", "input", "output", "flaw"]
    assert len(preview["value"]["data"]) == 5
    assert (instruction["value"], input_["value"], output["value"], messages["value"]) == (
        "instruction",
        "input",
        "output",
        "(none)",
    )
    assert rows["maximum"] == 300


def test_sample_button_loads_the_shipped_sample(url):
    """The sample button loads the 300 shipped rows without an upload."""
    status, *_ = client(url).predict(api_name="/load_sample")
    assert status_kind(status) == "ok" and "300 rows" in status


def test_chat_data_maps_the_messages_column(url, tmp_path):
    """A file with a `messages` column is read as chat data."""
    path = tmp_path / "chat.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": "A."}]} for i in range(3)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    status, _, instruction, _, output, messages, _ = client(url).predict(handle_file(str(path)), api_name="/load_file")
    assert status_kind(status) == "ok" and "3 rows" in status
    assert messages["value"] == "messages" and instruction["value"] == "(none)" and output["value"] == "(none)"


# ---------------------------------------------------------------------------------------------------------------------
# Prospecting and its outputs


def test_prospect_scores_like_the_library(sample_run, tiny_prospector):
    """The scores the Space downloads are those of `GoldenScorer` on the same rows, tasks and model."""
    result = sample_run["result"]
    assert status_kind(result["status"]) == "ok" and "40 of 40 rows" in result["status"]
    from datasets import Dataset

    scored = Dataset.from_parquet(file_value(result["parquet"]))
    assert len(scored) == 40 and scored["instruction"] == load_sample_dataset()["instruction"][:40]
    oracle = GoldenScorer(tiny_prospector, load_default_task_set(4)).score_examples(
        examples_from_rows(load_sample_dataset().select(range(40)).to_list())
    )
    np.testing.assert_allclose(scored["golden_score"], oracle["golden_score"])
    np.testing.assert_allclose(scored["nuggets_gain"], oracle["nuggets_gain"], atol=1e-6)
    assert sample_run["seconds"] < 60


def test_histogram_counts_every_row_no_gate_flagged(sample_run):
    """The histogram has one bar per score k/4 over the rows no gate flagged; flagged rows are counted apart."""
    from datasets import Dataset

    result = sample_run["result"]
    scored = Dataset.from_parquet(file_value(result["parquet"]))
    scores = [s for s, f in zip(scored["golden_score"], scored["nuggets_flags"], strict=True) if not f]
    counts = histogram_counts(result["histogram"])
    assert len(counts) == 5 and sum(counts) == len(scores)
    assert counts == [sum(round(s * 4) == k for s in scores) for k in range(5)]
    kept = [int(part.split('"', 1)[0]) for part in result["histogram"].split('data-kept="')[1:]]
    assert kept[0] == sum(kept[1:]) == min(2, len(scores))  # the whole top 5% of 40 rows, then per bin
    flagged = 40 - len(scores)
    assert (
        f"{flagged} row{'s' if flagged != 1 else ''}" in result["stats"] and "Flagged by the gates" in result["stats"]
    )


def test_table_ranks_best_and_worst_rows(sample_run):
    """The table holds the 10 best and 10 worst rows: unflagged rows by golden score, flagged rows last."""
    table = sample_run["result"]["table"]
    headers, data = table["headers"], table["data"]
    assert headers == ["rank", "row", "golden score", "gain", "instruction", "answer", "flags", "flaw"]
    assert len(data) == 20 and [r[0] for r in data] == list(range(1, 11)) + list(range(31, 41))
    flagged = [bool(r[6]) for r in data]
    assert flagged == sorted(flagged), "a flagged row ranks above an unflagged one"
    for group in (False, True):
        scores = [r[2] for r, f in zip(data, flagged, strict=True) if f == group]
        assert scores == sorted(scores, reverse=True)
    all_rows, _ = sample_run["visitor"].predict("All scored rows", api_name="/show_rows")
    assert len(all_rows["data"]) == 40


def test_summary_and_task_set_are_shown(sample_run):
    """The run summary and the task set used are shown; no server path is in the summary."""
    result = sample_run["result"]
    summary = result["summary"]
    assert summary["rows_scored"] == 40 and summary["num_tasks"] == 4 and summary["source"] == "sample_alpaca.jsonl"
    assert "files" not in summary
    assert [row[0] for row in result["tasks"]["data"]] == [t["instruction"] for t in load_default_task_set(4)]
    assert "Scored 40 of 40 rows against 4 tasks" in result["report"]
    assert "Rows marked as flawed" in result["stats"]


def test_downloads_hold_the_scored_data_and_the_card(sample_run):
    """JSONL, parquet, the rendered card and the Hub-ready folder download with the same rows."""
    result = sample_run["result"]
    lines = Path(file_value(result["jsonl"])).read_text().splitlines()
    assert len(lines) == 40 and "golden_score" in json.loads(lines[0])
    card = Path(file_value(result["card"])).read_text()
    assert card.startswith("---") and "hf-nuggets" in card and "top5" in card and "golden" in card.lower()
    with zipfile.ZipFile(file_value(result["zip"])) as archive:
        names = archive.namelist()
    assert "README.md" in names and "score_histogram.png" in names
    assert any(n.startswith("scored/") and n.endswith(".parquet") for n in names)


def test_uploaded_task_set_is_used(url, tmp_path):
    """An uploaded task file becomes the task set."""
    tasks = [{"instruction": f"Say {w}.", "input": "", "output": w} for w in ("yes", "no", "maybe")]
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks))
    visitor = client(url)
    visitor.predict(api_name="/load_sample")
    job = prospect(
        visitor, rows=8, num_tasks=3, task_mode=prospect_run.TASKS_UPLOADED, task_file=handle_file(str(path))
    )
    result = outputs(job.result(timeout=120))
    assert status_kind(result["status"]) == "ok"
    assert [r[0] for r in result["tasks"]["data"]] == ["Say yes.", "Say no.", "Say maybe."]


def test_refined_task_set_comes_from_the_data(url):
    """'Refined from my data' builds the task set from the rows with `refine_task_set` (gates first); too few rows
    is a message, not a crash (the library's own too-small error is tested in test_cli and test_refine)."""
    visitor = client(url)
    visitor.predict(api_name="/load_sample")
    result = outputs(prospect(visitor, rows=3, num_tasks=4, task_mode=prospect_run.TASKS_REFINED).result(timeout=180))
    status = result["status"]
    assert status_kind(status) == "error" and "Refining 4 tasks needs at least 4 rows; 3 are" in status
    result = outputs(prospect(visitor, rows=60, num_tasks=4, task_mode=prospect_run.TASKS_REFINED).result(timeout=180))
    assert status_kind(result["status"]) == "ok", result["status"]
    sample = set(load_sample_dataset()["instruction"][:60])
    assert len(result["tasks"]["data"]) == 4 and "refine_reason" in result["tasks"]["headers"]
    assert all(row[0] in sample or row[0].endswith("…") for row in result["tasks"]["data"])


# ---------------------------------------------------------------------------------------------------------------------
# Bad input and abuse


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.txt", "hello", "is not a data file hf-nuggets reads"),
        ("broken.json", '{"instruction": "a", ', "`broken.json`, line 1: not valid JSON"),
        ("empty.jsonl", "", "`empty.jsonl`"),
    ],
)
def test_bad_upload_gives_a_clear_message(url, tmp_path, name, content, expected):
    """Unknown formats and unreadable files give a message, never a stack trace."""
    path = tmp_path / name
    path.write_text(content)
    try:
        status = client(url).predict(handle_file(str(path)), api_name="/load_file")[0]
    except Exception as err:  # Gradio itself refuses a file type the upload box does not accept
        status = str(err)
        assert "Invalid file type" in status or expected in status
    else:
        assert status_kind(status) == "error" and expected in status
    assert "Traceback" not in status and str(tmp_path) not in status


def test_upload_over_the_size_limit_is_refused(url, tmp_path):
    """A file over the stated limit (1 MB here) is refused before it is read."""
    path = tmp_path / "big.jsonl"
    row = json.dumps({"instruction": "x" * 1000, "input": "", "output": "y"})
    path.write_text("\n".join([row] * 1200))
    with pytest.raises(Exception, match="(?i)size|large|exceed"):
        client(url).predict(handle_file(str(path)), api_name="/load_file")


def test_size_limit_is_checked_by_the_app_too(tmp_path):
    """Without Gradio's own limit (another launcher), the app still refuses a file over its limit."""
    path = tmp_path / "big.jsonl"
    path.write_text("x" * 3 * 2**20)
    with pytest.raises(rendering.UserError, match="up to 2 MB"):
        visitor_data.read_upload(str(path), max_mb=2)


def test_rows_without_the_mapped_columns_are_named(url, tmp_path):
    """Rows that lack the mapped columns stop the run before any model loads, naming the rows."""
    path = tmp_path / "holes.csv"
    path.write_text("question,answer\nWhat is 2+2?,4\n,5\nName a colour.,Red\n,\n")
    visitor = client(url)
    status = visitor.predict(handle_file(str(path)), api_name="/load_file")[0]
    assert status_kind(status) == "ok"
    result = outputs(
        prospect(visitor, rows=4, instruction="question", input_="(none)", output="answer").result(timeout=60)
    )
    assert status_kind(result["status"]) == "error"
    assert "2 of the 4 rows" in result["status"] and "rows 1, 3" in result["status"]


def test_unmapped_columns_ask_for_a_mapping(url):
    """Prospecting without an output column asks for the mapping."""
    visitor = client(url)
    visitor.predict(api_name="/load_sample")
    result = outputs(prospect(visitor, rows=4, output="(none)").result(timeout=60))
    assert status_kind(result["status"]) == "error" and "Map the instruction and output" in result["status"]


def test_prospect_without_data_asks_for_data(url):
    """Prospecting before any data is loaded says what to do."""
    job = prospect(client(url), rows=4, instruction="(none)", input_="(none)", output="(none)")
    result = outputs(job.result(timeout=60))
    assert status_kind(result["status"]) == "error" and "Bring data first" in result["status"]


def test_missing_hub_dataset_gives_a_clear_message(url):
    """A Hub id that does not exist (or a Hub out of reach) is a message, fast."""
    started = time.perf_counter()
    status = client(url).predict("no-such-user-xyz/no-such-dataset", "", "train", api_name="/load_hub")[0]
    assert status_kind(status) == "error" and "no-such-user-xyz/no-such-dataset" in status
    assert "does not exist" in status or "cannot be reached" in status
    assert time.perf_counter() - started < 30


def test_hub_dataset_id_must_be_an_id(url):
    """A path or anything but `namespace/name` is refused as a Hub dataset id."""
    status = client(url).predict("/etc/passwd", "", "train", api_name="/load_hub")[0]
    assert status_kind(status) == "error" and "not a Hub dataset id" in status


def test_prospector_must_be_a_hub_id_and_never_runs_remote_code(url, monkeypatch):
    """Local paths are refused as prospectors, and Hub models load without `trust_remote_code`."""
    visitor = client(url)
    visitor.predict(api_name="/load_sample")
    result = outputs(prospect(visitor, rows=4, model_choice="/etc").result(timeout=60))
    assert status_kind(result["status"]) == "error" and "not a Hub model id" in result["status"]

    calls = []

    def fake_load(*args, **kwargs):
        calls.append(kwargs)
        raise OSError("no network in this test")

    monkeypatch.setattr(space_prospectors, "check_hub_model", lambda *a, **k: None)
    monkeypatch.setattr(space_prospectors, "load_prospector", fake_load)
    result = outputs(prospect(visitor, rows=4, model_choice="someone/some-model").result(timeout=60))
    assert status_kind(result["status"]) == "error" and "Could not load `someone/some-model`" in result["status"]
    assert calls and not any(c.get("trust_remote_code") for c in calls)
    assert not any("trust_remote_code=True" in path.read_text() for path in SPACE_DIR.glob("*.py"))


def test_cancel_stops_midway_and_keeps_the_scored_rows(url):
    """Cancel stops a run after the batch in progress; the rows scored so far are shown and downloadable."""
    visitor = client(url)
    visitor.predict(api_name="/load_sample")
    job = prospect(visitor, rows=300, num_tasks=16)
    # The page reports progress every 0.5 s, so the count it shows can jump past 8: wait for any count of 8 or more.
    scored = re.compile(r"Scored (\d+) of")
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline and not any(
        int(m.group(1)) >= 8 for o in job.outputs() if (m := scored.search(str(o[0])))
    ):
        time.sleep(0.05)
    cancelled = visitor.predict(api_name="/cancel")
    assert "Cancelling" in cancelled
    result = outputs(job.result(timeout=120))
    assert status_kind(result["status"]) == "warn" and "Cancelled after" in result["status"]
    done = int(result["status"].split("Cancelled after ", 1)[1].split(" ", 1)[0])
    assert 8 <= done < 300
    from datasets import Dataset

    assert len(Dataset.from_parquet(file_value(result["parquet"]))) == done
    assert sum(histogram_counts(result["histogram"])) == done


def test_two_visitors_at_once_see_only_their_own_data(url, tmp_path):
    """Two visitors prospecting at the same time each get their own rows and files."""
    mine = tmp_path / "mine.jsonl"
    mine.write_text(
        "\n".join(json.dumps({"instruction": f"Private question {i}?", "output": "Yes."}) for i in range(6))
    )
    alice, bob = client(url), client(url)
    alice.predict(api_name="/load_sample")
    bob.predict(handle_file(str(mine)), api_name="/load_file")
    results = {}

    def run(name, visitor, rows):
        results[name] = outputs(
            prospect(visitor, rows=rows, input_="(none)" if name == "bob" else "input").result(180)
        )

    threads = [threading.Thread(target=run, args=a) for a in (("alice", alice, 24), ("bob", bob, 6))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    alice_rows = [r[4] for r in results["alice"]["table"]["data"]]
    bob_rows = [r[4] for r in results["bob"]["table"]["data"]]
    assert len(alice_rows) == 20 and len(bob_rows) == 6
    assert all(r.startswith("Private question") for r in bob_rows)
    assert not any(r.startswith("Private question") for r in alice_rows)
    assert file_value(results["alice"]["parquet"]) != file_value(results["bob"]["parquet"])
    # Bob's session result is not Alice's: his row view only shows his rows.
    assert len(bob.predict("All scored rows", api_name="/show_rows")[0]["data"]) == 6


def test_push_needs_the_visitors_own_token(sample_run, monkeypatch):
    """Without a typed token (or OAuth login) nothing is pushed, even when the Space has an HF_TOKEN secret."""
    monkeypatch.setenv("HF_TOKEN", "hf_the_space_owners_token")
    status, token = sample_run["visitor"].predict("someone/nuggets", True, "", api_name="/push")
    assert status_kind(status) == "error" and "Paste a Hugging Face token" in status and token == ""


def test_push_failure_never_shows_or_logs_the_token(sample_run, caplog):
    """A failed push says why without the token, and the token field is cleared."""
    caplog.set_level(logging.DEBUG)
    status, token = sample_run["visitor"].predict("someone/nuggets", True, SECRET, api_name="/push")
    assert status_kind(status) == "error" and "someone/nuggets" in status
    assert SECRET not in status and token == ""
    assert SECRET not in caplog.text


def test_push_checks_the_repo_id(sample_run):
    """A repo id that is not `namespace/name` is a message."""
    status, _ = sample_run["visitor"].predict("not a repo", True, SECRET, api_name="/push")
    assert status_kind(status) == "error" and "namespace/name" in status and SECRET not in status


# ---------------------------------------------------------------------------------------------------------------------
# A new visitor's first steps: every failure is one line in the status box, and the page takes the next upload


def load_file(visitor: Client, path) -> dict:
    """Upload `path` as a visitor does; the data loader's outputs by name."""
    names = ["status", "preview", "instruction", "input", "output", "messages", "rows"]
    return dict(zip(names, visitor.predict(handle_file(str(path)), api_name="/load_file"), strict=True))


def message_text(html: str) -> str:
    """The text of a status message, its tags dropped and its entities unescaped."""
    return html_module.unescape(re.sub(r"<[^>]+>", "", html))


def component_props(url: str) -> list[dict]:
    """The page's components as a new visitor's browser gets them: `component` (their kind), label, elem_id,
    value, visible..."""
    return [{**c.get("props", {}), "component": c.get("type")} for c in client(url).config["components"]]


LATIN1_ROWS = [("Name a colour.", "Red."), ("Say coffee in French.", "Café.")]


def latin1_file(folder: Path, name: str) -> tuple[Path, int]:
    """A file of `LATIN1_ROWS` saved as Latin-1 (the é of its second record is not UTF-8), and the line of that é."""
    records = [{"instruction": i, "output": o} for i, o in LATIN1_ROWS]
    if name.endswith(".csv"):
        text, line = "instruction,output\n" + "".join(f"{i},{o}\n" for i, o in LATIN1_ROWS), 3
    elif name.endswith(".jsonl"):
        text, line = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), 2
    else:
        text, line = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n]\n", 3
    path = folder / name
    path.write_bytes(text.encode("latin-1"))
    return path, line


@pytest.mark.parametrize("name", ["latin1.jsonl", "latin1.json", "latin1.csv"])
def test_non_utf8_upload_is_one_line_and_the_next_upload_loads(url, tmp_path, name):
    """A Latin-1 file is a one-line message naming the file and the line of its first byte that is not UTF-8; the
    page goes back to "no data" (valid updates, no error badges) and the next upload loads."""
    path, line = latin1_file(tmp_path, name)
    visitor = client(url)
    failed = load_file(visitor, path)
    text = message_text(failed["status"])
    assert status_kind(failed["status"]) == "error", text
    assert f"`{name}`, line {line}: byte 0xe9 is not UTF-8" in text and "\n" not in text
    assert failed["preview"]["visible"] is False
    assert [failed[k]["value"] for k in ("instruction", "input", "output", "messages")] == ["(none)"] * 4
    assert failed["rows"]["minimum"] < failed["rows"]["maximum"]
    loaded = load_file(visitor, SAMPLE)
    assert status_kind(loaded["status"]) == "ok" and "300 rows" in loaded["status"]
    assert loaded["preview"]["visible"] is True and loaded["instruction"]["value"] == "instruction"


def test_one_row_file_loads_and_prospects(url, tmp_path):
    """A file of one row loads (the rows slider is fixed at 1, from 0: Gradio refuses a minimum equal to the maximum)
    and its row is scored."""
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"instruction": "Name a colour.", "output": "Red."}) + "\n")
    visitor = client(url)
    loaded = load_file(visitor, path)
    assert status_kind(loaded["status"]) == "ok" and "1 row," in message_text(loaded["status"])
    rows = loaded["rows"]
    assert rows["minimum"] < rows["maximum"] == rows["value"] == 1
    result = outputs(prospect(visitor, rows=1, input_="(none)").result(timeout=120))
    assert status_kind(result["status"]) == "ok" and "1 of 1 rows scored" in result["status"], result["status"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "`upload.jsonl` is empty: expected at least one row."),
        ("{}\n{}\n", "`upload.jsonl` has no fields: its records are empty"),
        ('{"instruction": "a", "output": "b"}\nnull\n', "`upload.jsonl`, line 2: a JSON null, expected"),
        ('{"instruction": "a", "output": "b"}\n{"instruction": 3}\n', "line 2: a number in `instruction`"),
    ],
)
def test_empty_or_fieldless_upload_is_named(url, tmp_path, content, expected):
    """An empty file, a file of empty records, a record that is not an object (a `null` line crashed Arrow's JSON
    reader, and the Space with it) and a field that changes type are one-line messages naming the file and line."""
    path = tmp_path / "upload.jsonl"
    path.write_text(content)
    failed = load_file(client(url), path)
    assert status_kind(failed["status"]) == "error" and expected in message_text(failed["status"]), failed["status"]


def test_empty_output_file_is_named(url, tmp_path):
    """An empty file in a win-rate upload box is named, with the box, before any judge loads."""
    model_file, _ = judged_outputs(tmp_path, 3)
    empty = tmp_path / "empty.json"
    empty.write_text("")
    status, *_ = client(url).predict(
        winrate_tab.WIN_OUTPUTS, None, model_file, handle_file(str(empty)), 805, api_name="/winrate"
    )
    assert status_kind(status) == "error", status
    assert "`empty.json` is empty: expected at least one row." in message_text(status), status


@pytest.mark.parametrize("name", ["excel.csv", "notepad.jsonl"])
def test_byte_order_mark_is_not_part_of_the_first_column(url, tmp_path, name):
    """A UTF-8 file saved with a byte-order mark (Excel's "CSV UTF-8", Notepad) maps its columns as without it."""
    path = tmp_path / name
    rows = [("Name a colour.", "Red."), ("Add 2 and 2.", "4")]  # two rows: one row was another bug
    if name.endswith(".csv"):
        text = "instruction,output\n" + "".join(f"{i},{o}\n" for i, o in rows)
    else:
        text = "".join(json.dumps({"instruction": i, "output": o}) + "\n" for i, o in rows)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    loaded = load_file(client(url), path)
    assert status_kind(loaded["status"]) == "ok" and loaded["instruction"]["value"] == "instruction", loaded["status"]


@pytest.mark.parametrize("name", ["latin1.jsonl", "latin1.json", "latin1.csv", "broken.jsonl"])
def test_space_and_cli_name_the_same_line_and_cause(tmp_path, capsys, name):
    """An upload and the command line report a file's problem with the same line and cause, from the library's
    checks: only the file's name (no server path in the Space) and the fix differ."""
    from hf_nuggets.cli import main

    if name == "broken.jsonl":
        path = tmp_path / name
        path.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": }\n')
    else:
        path, _ = latin1_file(tmp_path, name)
    with pytest.raises(rendering.UserError) as space:
        visitor_data.read_upload(str(path))
    assert main(["score", str(path), "--out", str(tmp_path / "out")]) == 1
    cli = capsys.readouterr().err.strip().removeprefix("hf-nuggets score: error: ")
    space_text = str(space.value)
    assert space_text.startswith(f"`{name}`, line ") and str(tmp_path) not in space_text
    assert cli.startswith(f"{path}, line ")
    assert space_text.split(", ", 1)[1].split(" (re-save")[0] == cli.split(", ", 1)[1].split(" (re-save")[0]
    if name.startswith("latin1"):  # the fix, in each caller's terms
        assert "byte 0xe9 is not UTF-8" in cli and "upload it again" in space_text and "iconv" in cli
    else:
        assert "line 2: not valid JSON" in cli


def test_unexpected_failure_while_loading_is_a_message(url, tmp_path, monkeypatch):
    """An error the loader does not expect (here in the preview) is a one-line message too: the page goes back to
    "no data", prospecting asks for data, and the next upload loads."""

    def broken_preview(dataset, n=5):
        raise RuntimeError("the preview broke\nin two lines")

    visitor = client(url)
    assert status_kind(visitor.predict(api_name="/load_sample")[0]) == "ok"
    monkeypatch.setattr(prospect_tab, "preview_frame", broken_preview)
    failed = load_file(visitor, SAMPLE)
    assert status_kind(failed["status"]) == "error"
    assert message_text(failed["status"]) == "RuntimeError: the preview broke in two lines"
    assert failed["preview"]["visible"] is False and failed["output"]["value"] == "(none)"
    unmapped = {"instruction": "(none)", "input_": "(none)", "output": "(none)"}  # the dropdowns' only choice now
    result = outputs(prospect(visitor, rows=4, **unmapped).result(timeout=60))
    assert status_kind(result["status"]) == "error" and "Bring data first" in result["status"]
    monkeypatch.undo()
    assert status_kind(load_file(visitor, SAMPLE)["status"]) == "ok"


def test_default_rows_fit_the_default_time_budget(url):
    """The default run fits its time budget by the rule spaces/README.md states: at the measured pace of the embedded
    prospector on 2 vCPUs, the default rows against the default tasks take at most half the default budget; an
    upload keeps that default (it does not jump to every row of the file)."""
    sliders = {p.get("label"): p["value"] for p in component_props(url) if p["component"] == "slider"}
    rows, tasks, seconds = sliders["Rows to score"], sliders["Tasks"], sliders["Time budget (s)"]
    readme = (SPACE_DIR / "README.md").read_text()
    pace = float(re.search(r"([\d.]+) [\w-]+ pairs (?:a|per) second", readme).group(1))  # the measured pace
    assert rows * tasks / pace <= seconds / 2, f"{rows} rows x {tasks} tasks at {pace} pairs/s in a {seconds} s budget"
    loaded = load_file(client(url), SAMPLE)
    assert loaded["rows"]["maximum"] == 300 and loaded["rows"]["value"] == rows


def test_tables_are_hidden_until_they_have_rows(url, sample_run):
    """No empty table (Gradio's "1 2 3" placeholder) shows before there are rows: every table starts hidden, and a
    run's results come with their tables made visible."""
    frames = [p for p in component_props(url) if p["component"] == "dataframe"]
    shown = [p.get("elem_id") or p.get("label") for p in frames if p["visible"]]
    assert len(frames) == 4 and not shown, f"tables shown before any run: {shown}"
    result = dict(zip(OUTPUT_NAMES, sample_run["raw"], strict=True))
    assert result["table"]["visible"] is True and result["tasks"]["visible"] is True


def test_code_answers_keep_their_newlines(url, tmp_path):
    """Code keeps its line breaks and indentation in the preview and in the results table."""
    code = "def square(x):\n    return x * x"
    path = tmp_path / "code.jsonl"
    rows = [{"instruction": "Write a Python function that squares a number.", "output": code}]
    rows.append({"instruction": "Name a colour.", "output": "Red."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    visitor = client(url)
    loaded = load_file(visitor, path)
    assert loaded["preview"]["value"]["data"][0][1] == code
    result = outputs(prospect(visitor, rows=2, input_="(none)").result(timeout=120))
    assert status_kind(result["status"]) == "ok", result["status"]
    assert code in [row[5] for row in result["table"]["data"]]


# ---------------------------------------------------------------------------------------------------------------------
# AlpacaEval win rate tab


def test_winrate_from_annotations_matches_the_library(url, tmp_path):
    """Win rates from uploaded annotations are those of `compute_winrate`."""
    from hf_nuggets.evaluation.winrate import compute_winrate

    rng = np.random.default_rng(0)
    records = [
        {
            "instruction": f"I{i}",
            "output_1": "b" * int(rng.integers(1, 60)),
            "output_2": "m" * int(rng.integers(1, 60)),
            "preference": float(rng.choice([1.0, 1.5, 2.0, 1.25])),
        }
        for i in range(30)
    ]
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(records))
    status, stats, table, files = client(url).predict(
        winrate_tab.WIN_ANNOTATIONS, handle_file(str(path)), None, None, 805, api_name="/winrate"
    )
    assert status_kind(status) == "ok"
    expected = compute_winrate(
        [r["output_2"] for r in records], [r["output_1"] for r in records], [r["preference"] for r in records]
    )
    assert f"{expected['win_rate']:.2f}" in stats and f"{expected['length_controlled_winrate']:.2f}" in stats
    metrics = json.loads(Path(next(f for f in files["value"] if f.endswith("metrics.json"))).read_text())
    assert metrics["win_rate"] == pytest.approx(expected["win_rate"])
    assert len(value_of(table)["data"]) == 30


def test_winrate_from_two_output_files_with_the_local_judge(url, tmp_path, tiny_prospector):
    """Two output files are judged by the local judge, as `alpaca_eval_winrate` does."""
    from hf_nuggets.evaluation.judges import LocalJudge
    from hf_nuggets.evaluation.winrate import alpaca_eval_winrate

    instructions = [f"Name thing {i}." for i in range(6)]
    model = [{"instruction": s, "output": f"Thing {i} is red.", "generator": "m"} for i, s in enumerate(instructions)]
    base = [{"instruction": s, "output": f"It is {i}.", "generator": "b"} for i, s in enumerate(instructions)]
    (tmp_path / "model.json").write_text(json.dumps(model))
    (tmp_path / "base.json").write_text(json.dumps(base))
    model_file, base_file = handle_file(str(tmp_path / "model.json")), handle_file(str(tmp_path / "base.json"))
    status, stats, table, _ = client(url).predict(
        winrate_tab.WIN_OUTPUTS, None, model_file, base_file, 805, api_name="/winrate"
    )
    assert status_kind(status) == "ok", status
    expected = alpaca_eval_winrate(
        [m["output"] for m in model],
        [b["output"] for b in base],
        instructions,
        judge=LocalJudge(tiny_prospector, use_cache=False, progress=False),
        return_annotations=True,
    )
    assert f"{expected['win_rate']:.2f}" in stats
    assert [r[3] for r in value_of(table)["data"]] == pytest.approx([a["preference"] for a in expected["annotations"]])


def test_winrate_bad_annotations_give_a_clear_message(url, tmp_path):
    """Annotations without preferences are a message naming what is missing."""
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps([{"instruction": "a", "output_1": "x", "output_2": "y"}]))
    status, *_ = client(url).predict(
        winrate_tab.WIN_ANNOTATIONS, handle_file(str(path)), None, None, 805, api_name="/winrate"
    )
    assert status_kind(status) == "error" and "preference" in status


def annotations_file(folder: Path, n: int) -> Path:
    """An annotations file of `n` pairs with preferences."""
    path = folder / f"annotations-{n}.json"
    records = [
        {"instruction": f"I{i}", "output_1": "b" * (i + 1), "output_2": "m" * (2 * i + 3), "preference": 1.0 + i % 2}
        for i in range(n)
    ]
    path.write_text(json.dumps(records))
    return path


def test_pairs_slider_follows_the_files(url, tmp_path):
    """The Pairs slider goes up to the pairs of the file uploaded, all picked: the annotations, or the baseline's
    outputs; a one-pair file gives a valid (fixed) slider."""
    visitor = client(url)
    for n in (8, 1):
        status, pairs = visitor.predict(
            winrate_tab.WIN_ANNOTATIONS, handle_file(str(annotations_file(tmp_path, n))), None, None,
            api_name="/count_pairs",
        )  # fmt: skip
        assert f"{n} pair" in status and pairs["maximum"] == pairs["value"] == n and pairs["minimum"] < n
    model_file, base_file = judged_outputs(tmp_path, 6)
    status, pairs = visitor.predict(winrate_tab.WIN_OUTPUTS, None, model_file, base_file, api_name="/count_pairs")
    assert "`base.json`: 6 pairs" in status and pairs["maximum"] == pairs["value"] == 6


def test_length_controlled_na_says_why(url, tmp_path):
    """With too few pairs for the length-controlled fit, its card says n/a and the page says why."""
    _, stats, _, _ = client(url).predict(
        winrate_tab.WIN_ANNOTATIONS, handle_file(str(annotations_file(tmp_path, 3))), None, None, 3,
        api_name="/winrate",
    )  # fmt: skip
    assert re.search(r'data-stat="lc"><div class="k">Length-controlled</div><div class="v">n/a<', stats)
    assert "needs at least 5 pairs with a preference" in stats and "only 3 pair(s) have a preference" in stats


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (winrate_tab.WIN_ANNOTATIONS, "Upload a file in the Annotations box first."),
        (winrate_tab.WIN_OUTPUTS, "in the Model outputs box and the baseline's in the Baseline outputs box"),
    ],
)
def test_winrate_without_files_names_the_boxes(url, mode, expected):
    """Computing without the files names the boxes to fill, in plain English."""
    status, *_ = client(url).predict(mode, None, None, None, 805, api_name="/winrate")
    assert status_kind(status) == "error" and expected in message_text(status) and "a annotations" not in status


# ---------------------------------------------------------------------------------------------------------------------
# Limits: the models a visitor can load, the memory their data takes, the time their jobs run


def test_hub_model_of_unknown_size_is_refused(monkeypatch):
    """A Hub model whose size the Hub does not report (no safetensors weights, e.g. `.bin` only) is refused before
    anything is downloaded: the Space cannot check that it fits."""
    import huggingface_hub

    asked = []

    def model_info(self, repo_id, **kwargs):
        asked.append(repo_id)
        return SimpleNamespace(id=repo_id, safetensors=None, siblings=[SimpleNamespace(rfilename="pytorch_model.bin")])

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    with pytest.raises(rendering.UserError, match=r"^`someone/bin-only` does not report its size on the Hub") as err:
        space_prospectors.check_hub_model("someone/bin-only")
    assert asked == ["someone/bin-only"]
    assert "1.6B parameters" in str(err.value) and "safetensors" in str(err.value)


def test_hub_models_loaded_stay_within_the_bound(tiny_prospector, tmp_path, monkeypatch):
    """Visitors picking one Hub model after another leave only the last one loaded (besides the preloaded or
    embedded prospector): the models before it, once scored with, are freed."""
    import gc
    import weakref

    from conftest import build_tiny_model

    from hf_nuggets.data.formatting import examples_from_rows
    from hf_nuggets.scoring import prospector as prospector_module
    from hf_nuggets.scoring.scorer import flag_examples

    folders = {}
    for seed, repo_id in enumerate(("fake/model-a", "fake/model-b", "fake/model-c"), start=1):
        folders[repo_id] = tmp_path / repo_id.split("/")[1]
        build_tiny_model(len(tiny_prospector.tokenizer), seed=seed).save_pretrained(folders[repo_id])
        tiny_prospector.tokenizer.save_pretrained(folders[repo_id])
    real_load = space_prospectors.load_prospector
    monkeypatch.setattr(prospector_module, "_LOADED", {})
    monkeypatch.setattr(space_prospectors, "check_hub_model", lambda *a, **k: None)
    monkeypatch.setattr(space_prospectors, "load_prospector", lambda name, **kw: real_load(str(folders[name]), **kw))

    prospectors = space_prospectors.Prospectors(tiny_prospector)
    rows = examples_from_rows([{"instruction": "Name a colour.", "output": "Red."}])
    alive = []
    for repo_id in folders:
        model = prospectors.load(repo_id)
        flag_examples(model, rows)  # what a run does with it (the gates calibrate on it)
        alive.append(weakref.ref(model.model))
        del model
    gc.collect()
    assert [ref() is not None for ref in alive] == [False, False, True]
    assert prospectors.load(prospectors.default) is tiny_prospector


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


def test_upload_is_bounded_by_its_size_in_memory(tmp_path):
    """A 0.7 KB zstd parquet of 1,000 identical 100 KB strings (100 MB once decoded) is refused by a 1 MB budget of
    decoded data, read a slice at a time: the message names the budget and nothing lands in the visitor's folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bomb.parquet"
    table = pa.table({"instruction": ["x" * 100_000] * 1000, "output": ["y"] * 1000})
    pq.write_table(table, path, compression="zstd")
    assert path.stat().st_size < 2_000
    session = {}
    loader = prospect_tab.DataLoader(max_upload_mb=20, max_rows=5000, max_data_mb=1)
    status = loader.upload(str(path), session)[1]
    assert status_kind(status) == "error", status
    assert "`bomb.parquet` holds more than 1 MB of data once read" in status and "up to 1 MB" in status
    assert "data" not in session
    assert folder_bytes(visitor_data.workspace(session)) < 2**20


def test_rows_past_the_row_limit_are_never_read(tmp_path):
    """The row limit stops the reading: a file whose rows past the limit are broken loads its first rows."""
    path = tmp_path / "long.jsonl"
    good = [json.dumps({"instruction": f"Question {i}?", "output": "Yes."}) for i in range(10)]
    path.write_text("\n".join(good + ['{"instruction": "cut off', "not json at all"]) + "\n")
    _, status, *_, rows = prospect_tab.DataLoader(max_upload_mb=20, max_rows=6).upload(str(path), {})
    assert status_kind(status) == "ok", status
    assert "6 rows" in status and "Only the first 6 rows are kept" in status and rows["maximum"] == 6


def test_hub_dataset_stream_is_bounded_in_memory(monkeypatch):
    """A Hub dataset is streamed under the same budget of decoded data: the stream stops once over it."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", lambda self, repo_id, **kwargs: SimpleNamespace())
    pulled = []

    class Stream:
        features = None

        def __iter__(self):
            for i in range(5000):
                pulled.append(i)
                yield {"instruction": "x" * 100_000, "output": f"answer {i}"}

    monkeypatch.setattr(visitor_data, "load_data", lambda *args, **kwargs: Stream())
    with pytest.raises(rendering.UserError, match=r"holds more than 1 MB of data once read") as err:
        visitor_data.load_hub_dataset("someone/huge-rows", "", "train", max_rows=5000, max_data_mb=1)
    assert "`someone/huge-rows`" in str(err.value) and "up to 1 MB" in str(err.value)
    assert len(pulled) <= 11  # 100 KB rows: the 11th goes over 1 MB


def test_compressed_file_under_a_data_name_is_not_decompressed(tmp_path):
    """A gzip file named `.jsonl` (10 MB of rows in 20 KB) is refused as the gzip file it is: nothing is
    decompressed by its contents."""
    import gzip

    path = tmp_path / "rows.jsonl"
    row = json.dumps({"instruction": "x" * 1000, "output": "y"}) + "\n"
    with gzip.open(path, "wt") as handle:
        handle.write(row * 10_000)
    assert path.stat().st_size < 100_000
    session = {}
    status = prospect_tab.DataLoader(max_upload_mb=1, max_rows=5000).upload(str(path), session)[1]
    assert status_kind(status) == "error" and "`rows.jsonl` is a gzip file" in status, status
    assert folder_bytes(visitor_data.workspace(session)) < 2**20


HUGE_INSTRUCTION = "Summarise this text. " + "lorem ipsum dolor sit amet " * 40_000  # about 1 MB


def test_quality_judge_prompt_of_a_huge_instruction_fits_its_token_cap(tiny_prospector):
    """The quality judge of "Refined from my data" reads a 1 MB instruction as a prompt within its token cap that
    still holds its whole frame: the opening, the response and the question."""
    from hf_nuggets.data.formatting import Example
    from hf_nuggets.taskset.quality import JUDGE_QUESTION, prospector_quality_scores

    prompts = []

    def record(module, args, kwargs):
        prompts.extend(kwargs["input_ids"].tolist())

    hook = tiny_prospector.model.get_decoder().register_forward_pre_hook(record, with_kwargs=True)
    try:
        example = Example(instruction=HUGE_INSTRUCTION, input="", output="It is about lorem ipsum.")
        started = time.perf_counter()
        prospector_quality_scores([example], tiny_prospector, max_tokens=512)
    finally:
        hook.remove()
    assert len(prompts) == 1 and len(prompts[0]) <= 512
    text = tiny_prospector.tokenizer.decode(prompts[0])
    assert "Here is an instruction and a response.\n\nInstruction: Summarise this text." in text
    assert "[...]" in text and "Response: It is about lorem ipsum." in text and JUDGE_QUESTION in text
    assert time.perf_counter() - started < 10


def test_local_judge_prompt_of_a_huge_instruction_fits_its_token_cap(tiny_prospector):
    """The local win-rate judge cuts a 1 MB instruction as it cuts the outputs: the prompt stays within the short
    prompt's length plus `max_output_tokens` (and the cut mark), and still ends with the question."""
    from hf_nuggets.evaluation.judges import LocalJudge

    judge = LocalJudge(tiny_prospector, use_cache=False, progress=False, max_output_tokens=64)
    short = judge.build_prompt("Summarise this text.", "Answer one.", "Answer two.")
    huge = judge.build_prompt(HUGE_INSTRUCTION, "Answer one.", "Answer two.")
    assert len(huge) <= len(short) + 64 + 8
    assert huge[-40:] == short[-40:]
    assert "[...]" in tiny_prospector.tokenizer.decode(huge)


@pytest.fixture
def slow_model(tiny_prospector):
    """The tiny prospector made slow (0.25 s a forward pass of its decoder, which every use of it runs: the gates,
    the quality judge, scoring, the local judge), counting its forward passes."""
    forwards: list[float] = []

    def slow(module, args):
        forwards.append(time.perf_counter())
        time.sleep(0.25)

    hook = tiny_prospector.model.get_decoder().register_forward_pre_hook(slow)
    yield forwards
    hook.remove()


def test_refining_the_tasks_honours_the_time_budget(url, slow_model):
    """The "Refined from my data" task set is built within the run's time budget: out of time, the run stops
    there, says so, and scores nothing."""
    visitor = client(url)
    visitor.predict(api_name="/load_sample")
    started = time.perf_counter()
    job = prospect(visitor, rows=300, num_tasks=4, task_mode=prospect_run.TASKS_REFINED, seconds=10)
    result = outputs(job.result(timeout=300))
    elapsed = time.perf_counter() - started
    assert status_kind(result["status"]) == "error", result["status"]
    assert "The 10 s time budget ran out while refining the tasks" in result["status"]
    assert elapsed < 20, f"the run took {elapsed:.0f} s on a 10 s budget"


def judged_outputs(tmp_path, n: int):
    """Two AlpacaEval output files of `n` pairs, for the win-rate tab."""
    instructions = [f"Name thing {i}." for i in range(n)]
    model = [{"instruction": s, "output": f"Thing {i} is red.", "generator": "m"} for i, s in enumerate(instructions)]
    base = [{"instruction": s, "output": f"It is {i}.", "generator": "b"} for i, s in enumerate(instructions)]
    (tmp_path / "model.json").write_text(json.dumps(model))
    (tmp_path / "base.json").write_text(json.dumps(base))
    return handle_file(str(tmp_path / "model.json")), handle_file(str(tmp_path / "base.json"))


def test_closing_the_winrate_job_stops_the_judge(url, tmp_path, slow_model):
    """A win-rate job cancelled by its page (closed, or Gradio's cancel) stops judging: Gradio closes the job's
    generator within a few seconds, and the judge stops at its next batch."""
    model_file, base_file = judged_outputs(tmp_path, 120)  # 30 forward passes of 0.25 s
    job = client(url).submit(winrate_tab.WIN_OUTPUTS, None, model_file, base_file, 805, api_name="/winrate")
    deadline = time.perf_counter() + 60
    while not slow_model and time.perf_counter() < deadline:
        time.sleep(0.05)
    job.cancel()
    cancelled = time.perf_counter()
    time.sleep(6)
    late = [t for t in slow_model if t > cancelled + 4]
    assert not late, f"{len(late)} forward passes more than 4 s after the cancel"
    assert len(slow_model) < 30


def test_winrate_cancel_button_keeps_the_pairs_judged(url, tmp_path, slow_model):
    """The Cancel button of the win-rate tab stops the judge within one batch; the pairs judged by then give the
    win rate, the others are counted as skipped."""
    model_file, base_file = judged_outputs(tmp_path, 40)
    visitor = client(url)
    job = visitor.submit(winrate_tab.WIN_OUTPUTS, None, model_file, base_file, 805, api_name="/winrate")
    deadline = time.perf_counter() + 60
    while len(slow_model) < 2 and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert "Cancelling" in visitor.predict(api_name="/cancel_winrate")
    status, stats, table, files = job.result(timeout=60)
    assert status_kind(status) == "warn" and "Cancelled after" in status, status
    judged = int(status.split("Cancelled after ", 1)[1].split(" ", 1)[0])
    assert 0 < judged < 40 and f"{judged} · {40 - judged}" in stats
    assert len(slow_model) <= judged // 4 + 1  # one forward pass a batch of 4 pairs (8 prompts)


def test_winrate_judging_honours_the_time_budget(tiny_prospector, tmp_path, slow_model):
    """The local judge stops before a batch that would end past the time budget; the pairs judged by then give the
    win rate and the message says the budget ran out."""
    model_file, base_file = (str(Path(f["path"])) for f in judged_outputs(tmp_path, 40))
    handler = winrate_tab.WinRate(space_prospectors.Prospectors(tiny_prospector), max_upload_mb=20, max_seconds=2)
    request = SimpleNamespace(session_hash="budget-visitor")
    started = time.perf_counter()
    *_, last = handler.winrate(
        winrate_tab.WIN_OUTPUTS, None, model_file, base_file, 805, {}, request, progress=lambda *a, **k: None
    )
    status, stats = last[0], last[1]
    assert time.perf_counter() - started < 6
    assert status_kind(status) == "warn" and "The 2 s time budget ran out after" in status, status
    judged = int(status.split("ran out after ", 1)[1].split(" ", 1)[0])
    assert 0 < judged < 40 and f"{judged} · {40 - judged}" in stats


def test_hub_models_load_without_the_spaces_own_token(monkeypatch):
    """A visitor's Hub model is checked and downloaded anonymously: a token the Space holds (an `HF_TOKEN` secret)
    never goes with it, so only public models load."""
    monkeypatch.setenv("HF_TOKEN", "hf_the_space_owners_token")
    checked, loaded = [], []

    def model_info(self, repo_id, **kwargs):
        checked.append(kwargs)
        return SimpleNamespace(id=repo_id, safetensors=SimpleNamespace(total=135_000_000))

    def fake_load(name, **kwargs):
        loaded.append(kwargs)
        raise OSError("no network in this test")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(space_prospectors, "load_prospector", fake_load)
    with pytest.raises(rendering.UserError, match="Could not load `someone/public-model`"):
        space_prospectors.Prospectors().load("someone/public-model")
    assert [c.get("token") for c in checked] == [False] and [c.get("token") for c in loaded] == [False]
