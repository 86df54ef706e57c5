"""`GoldenScorer` as a `datasets.map` transform."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from datasets import Dataset, load_from_disk
from datasets.fingerprint import Hasher

from hf_nuggets import GoldenScorer, golden_score
from hf_nuggets.data.formatting import examples_from_rows
from hf_nuggets.scoring.engine import golden_from_scores
from hf_nuggets.scoring.reference import reference_nuggets


def test_map_adds_scores_equal_to_reference(tiny_prospector, candidates, tasks):
    """`.map` adds golden_score and nuggets_gain equal to the reference loop's, leaving inputs untouched."""
    ds = Dataset.from_list(candidates)
    scored = ds.map(GoldenScorer(tiny_prospector, tasks), batched=True, batch_size=4)
    z, o = reference_nuggets(
        tiny_prospector.model, tiny_prospector.tokenizer, examples_from_rows(candidates), examples_from_rows(tasks)
    )
    golden, gain = golden_from_scores(o, z)
    assert scored["golden_score"] == golden.tolist()
    np.testing.assert_allclose(scored["nuggets_gain"], gain, atol=1e-4)
    assert scored.select_columns(ds.column_names).to_list() == ds.to_list()
    assert all(0.0 <= g <= 1.0 for g in scored["golden_score"])


@pytest.mark.parametrize("batch_size", [1, 2, 6])
def test_scores_do_not_depend_on_batch_size(tiny_prospector, candidates, tasks, batch_size):
    """Any `.map` batch size gives the same scores."""
    ds = Dataset.from_list(candidates)
    base = ds.map(GoldenScorer(tiny_prospector, tasks), batched=True, batch_size=3)
    other = ds.map(GoldenScorer(tiny_prospector, tasks, max_batch_tokens=16), batched=True, batch_size=batch_size)
    assert other["golden_score"] == base["golden_score"]
    np.testing.assert_allclose(other["nuggets_gain"], base["nuggets_gain"], atol=1e-5)


def test_second_identical_map_hits_the_cache(tiny_model_dir, candidates, tasks, tmp_path):
    """Two identical scorers fingerprint alike, so the second `.map` is read from the cache, not recomputed."""
    Dataset.from_list(candidates).save_to_disk(tmp_path / "ds")
    ds = load_from_disk(str(tmp_path / "ds"))
    first_scorer = GoldenScorer(str(tiny_model_dir), tasks, device="cpu")
    first = ds.map(first_scorer, batched=True)
    second_scorer = GoldenScorer(str(tiny_model_dir), tasks, device="cpu")
    second = ds.map(second_scorer, batched=True)
    assert Hasher.hash(first_scorer) == Hasher.hash(second_scorer)
    assert first_scorer.stats["candidates"] == len(candidates)
    assert second_scorer.stats["candidates"] == 0, "the second map must not call the scorer"
    assert first.cache_files == second.cache_files
    assert second["golden_score"] == first["golden_score"]


def test_fingerprint_changes_with_settings(tiny_model_dir, tasks):
    """A different task set or template gives a different fingerprint."""
    base = GoldenScorer(str(tiny_model_dir), tasks, device="cpu")
    assert Hasher.hash(base) != Hasher.hash(GoldenScorer(str(tiny_model_dir), tasks[:2], device="cpu"))
    assert Hasher.hash(base) != Hasher.hash(base.with_options(limits=base.limits.__class__(max_demo_tokens=8)))


def test_iterable_dataset_gives_the_same_scores(tiny_prospector, candidates, tasks):
    """Streaming (`IterableDataset`) rows are scored exactly like the in-memory ones."""
    ds = Dataset.from_list(candidates)
    scorer = GoldenScorer(tiny_prospector, tasks)
    eager = ds.map(scorer, batched=True, batch_size=4)
    lazy = list(ds.to_iterable_dataset().map(scorer, batched=True, batch_size=4))
    assert [row["golden_score"] for row in lazy] == eager["golden_score"]
    np.testing.assert_allclose([row["nuggets_gain"] for row in lazy], eager["nuggets_gain"], atol=1e-6)


def assert_same_columns(got, expected):
    """Equal column dicts, where NaN (no signal for an empty answer) equals NaN."""
    assert list(got) == list(expected)
    for name in expected:
        if name == "nuggets_flags":
            assert got[name] == expected[name]
        else:
            np.testing.assert_array_equal(np.array(got[name], float), np.array(expected[name], float))


def test_pickle_keeps_settings_and_drops_loaded_state(tiny_model_dir, candidates, tasks):
    """A pickled scorer carries its settings, not the model's computed state, and scores the same."""
    scorer = GoldenScorer(str(tiny_model_dir), tasks, device="cpu")
    batch = Dataset.from_list(candidates).to_dict()
    expected = scorer(batch)
    payload = pickle.dumps(scorer)
    assert len(payload) < 10_000, "the prospector must pickle as its load recipe"
    clone = pickle.loads(payload)
    assert clone._state is None
    assert_same_columns(clone(batch), expected)


def test_in_memory_prospector_pickles_its_weights(tiny_prospector, candidates, tasks):
    """A prospector built from objects in memory survives pickling with its weights."""
    from hf_nuggets import Prospector

    scorer = GoldenScorer(Prospector(tiny_prospector.model, tiny_prospector.tokenizer), tasks)
    batch = Dataset.from_list(candidates[:2]).to_dict()
    assert_same_columns(pickle.loads(pickle.dumps(scorer))(batch), scorer(batch))


def test_return_scores_adds_per_task_scores(tiny_prospector, candidates, tasks):
    """`return_scores=True` adds the one-shot score of every task; with `zero_shot_scores` they give the GS."""
    scorer = GoldenScorer(tiny_prospector, tasks, return_scores=True)
    scored = Dataset.from_list(candidates).map(scorer, batched=True)
    one_shot = np.array(scored["nuggets_one_shot"])
    assert one_shot.shape == (len(candidates), len(tasks))
    golden, _ = golden_from_scores(one_shot, scorer.zero_shot_scores)
    assert scored["golden_score"] == golden.tolist()


def test_column_mapping_and_missing_input_column(tiny_prospector, candidates, tasks):
    """Renamed columns are read through `columns`, and data without an input column works."""
    ds = Dataset.from_list(candidates)
    renamed = ds.rename_columns({"instruction": "question", "output": "answer"}).remove_columns("input")
    scorer = GoldenScorer(tiny_prospector, tasks, columns={"instruction": "question", "output": "answer"})
    plain = ds.map(lambda b: {"input": [""] * len(b["input"])}, batched=True).map(
        GoldenScorer(tiny_prospector, tasks), batched=True
    )
    assert renamed.map(scorer, batched=True)["golden_score"] == plain["golden_score"]


def test_chat_messages_column_is_detected(tiny_prospector, tasks):
    """A `messages` column (TRL conversational format) is scored like the equivalent Alpaca rows."""
    chat = Dataset.from_list(
        [{"messages": [{"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "5"}]}]
    )
    alpaca = Dataset.from_list([{"instruction": "Add 2 and 3.", "input": "", "output": "5"}])
    scorer = GoldenScorer(tiny_prospector, tasks)
    assert chat.map(scorer, batched=True)["nuggets_gain"] == alpaca.map(scorer, batched=True)["nuggets_gain"]


def test_duplicates_are_scored_once(tiny_prospector, candidates, tasks):
    """Identical demonstrations in a batch reuse the first one's scores."""
    scorer = GoldenScorer(tiny_prospector, tasks)
    scored = Dataset.from_list(candidates).map(scorer, batched=True)
    assert scorer.stats["duplicates_reused"] == 1
    assert scored["nuggets_gain"][0] == scored["nuggets_gain"][4]


def test_missing_column_error_names_it(tiny_prospector, tasks):
    """Data without the output column fails with the column's name and the columns it has."""
    ds = Dataset.from_list([{"instruction": "Hi", "response": "Hello"}])
    with pytest.raises(KeyError, match="Column `output` \\(for `output`\\) not found"):
        ds.map(GoldenScorer(tiny_prospector, tasks), batched=True)


def test_non_string_value_error_names_row_and_column(tiny_prospector, tasks):
    """A number in a text column fails naming the column and the row."""
    batch = {"instruction": ["a", "b"], "output": ["ok", 2]}
    with pytest.raises(TypeError, match="Column `output` must hold strings, got int at row 11"):
        GoldenScorer(tiny_prospector, tasks)(batch, indices=[10, 11])


def test_empty_instruction_error_names_row(tiny_prospector, tasks):
    """An empty instruction fails naming its row (given by `with_indices=True`)."""
    ds = Dataset.from_list(
        [{"instruction": "Hi", "input": "", "output": "Hello"}, {"instruction": " ", "input": "", "output": "x"}]
    )
    with pytest.raises(ValueError, match="Column `instruction` is empty at row 1"):
        ds.map(GoldenScorer(tiny_prospector, tasks), batched=True, with_indices=True)


def test_bad_task_sets_are_refused(tiny_prospector):
    """An empty task set and a task with an empty answer are refused when the scorer is built."""
    with pytest.raises(ValueError, match="`task_set` is empty"):
        GoldenScorer(tiny_prospector, [])
    with pytest.raises(ValueError, match="task 1 in `task_set` is empty"):
        GoldenScorer(tiny_prospector, [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": " "}])


def test_auto_task_set_needs_the_data(tiny_prospector):
    """`task_set="auto"` is refused by the scorer, which never sees the data, with the function to use instead."""
    with pytest.raises(ValueError, match=r"^`task_set='auto'` draws the tasks .* `hf_nuggets.auto_task_set\(dataset"):
        GoldenScorer(tiny_prospector, "auto")


def test_task_source_is_kept(tiny_model_dir, tasks, tmp_path):
    """The scorer knows where its tasks came from (shipped, a file, in memory), through pickling and options."""
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in tasks))
    assert GoldenScorer(str(tiny_model_dir)).task_source == "shipped"
    from_file = GoldenScorer(str(tiny_model_dir), str(path))
    assert from_file.task_source == str(path) and pickle.loads(pickle.dumps(from_file)).task_source == str(path)
    assert from_file.with_options(template="chat").task_source == str(path)
    assert from_file.with_options(task_set=tasks).task_source == "given"


def test_bad_arguments_are_refused(tiny_prospector, tasks):
    """Invalid settings fail fast with the argument's name."""
    with pytest.raises(ValueError, match="`template` must be one of"):
        GoldenScorer(tiny_prospector, tasks, template="llama")
    with pytest.raises(ValueError, match="`num_tasks` must be a positive integer, got 0"):
        GoldenScorer(tiny_prospector, tasks, num_tasks=0)
    with pytest.raises(TypeError, match="`prospector` must be a `Prospector`"):
        GoldenScorer(object(), tasks)
    with pytest.raises(TypeError, match="batched=True"):
        GoldenScorer(tiny_prospector, tasks)(["not", "a", "batch"])


def test_golden_score_literal_is_lazy_and_configurable(tiny_prospector, tasks):
    """`golden_score` loads nothing on import; `with_options` returns a configured copy."""
    assert golden_score._state is None and golden_score.prospector is None
    configured = golden_score.with_options(task_set=tasks, model=tiny_prospector)
    assert configured.prospector is tiny_prospector and len(configured.tasks) == len(tasks)
    assert golden_score.prospector is None
    with pytest.raises(TypeError, match="Unknown option"):
        golden_score.with_options(colour="red")
