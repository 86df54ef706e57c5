"""Task-set refinement: quality picks, near-duplicate removal, k-center and affinity-propagation diversity."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from hf_nuggets.algorithms.kcenter import kcenter_greedy
from hf_nuggets.gates import GateSettings
from hf_nuggets.taskset.refine import refine_task_set

#: The tiny random model finds most answers unaligned; these tests are about quality and diversity, so they turn the
#: signal gates off (the text gates, empty and placeholder, stay). The gates have their own tests below.
NO_SIGNAL_GATES = GateSettings(alignment_threshold=-math.inf, completeness_threshold=-math.inf)


@pytest.fixture
def refine(tiny_prospector):
    """`refine_task_set` with the tiny prospector reading the gates' signals."""
    return functools.partial(refine_task_set, prospector=tiny_prospector, gate_settings=NO_SIGNAL_GATES)


TOPICS = ["cooking pasta", "planets of the solar system", "python lists", "french verbs", "tax forms", "tennis rules"]


WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


def pool_rows(n=60):
    """Rows with distinct wording (no near-duplicates), grouped in topics, with varied answer lengths."""
    rng = np.random.default_rng(0)
    return [
        {
            "instruction": f"{TOPICS[i % len(TOPICS)]}: " + " ".join(rng.choice(WORDS, size=8)),
            "input": "",
            "output": "a" * (1 + (i * 37) % 50),
        }
        for i in range(n)
    ]


def topic_embedder(texts):
    """Embeds by topic with a small per-text offset, so topics form tight clusters."""
    out = []
    for t in texts:
        v = np.array([1.0 if topic in t else 0.0 for topic in TOPICS]) + 0.01 * (hash(t) % 7)
        out.append(v / np.linalg.norm(v))
    return np.array(out)


def by_length(examples):
    return [len(e.output) for e in examples]


def test_quality_picks_come_first_and_are_the_best(refine):
    """The `top_quality` rows with the highest quality enter first, marked as quality picks."""
    rows = pool_rows()
    tasks = refine(rows, size=8, top_quality=3, quality=by_length, embedder=topic_embedder, progress=False)
    best = sorted(range(len(rows)), key=lambda i: (-len(rows[i]["output"]), i))[:3]
    assert list(tasks["instruction"][:3]) == [rows[i]["instruction"] for i in best]
    assert list(tasks["refine_reason"]) == ["quality"] * 3 + ["kcenter"] * 5
    assert list(tasks["quality_rank"][:3]) == [0, 1, 2]


def test_kcenter_selection_follows_farthest_point_order(refine):
    """The k-center picks are those of `kcenter_greedy` seeded with the quality picks, over the quality pool."""
    rows = pool_rows()
    tasks = refine(
        rows, size=6, top_quality=2, pool=30, quality=by_length, embedder=topic_embedder, dedup=False, progress=False
    )
    order = sorted(range(len(rows)), key=lambda i: (-len(rows[i]["output"]), i))[:30]
    vectors = topic_embedder([rows[i]["instruction"] for i in order])
    picks = kcenter_greedy(vectors, 6, seeds=[0, 1], metric="cosine")
    assert list(tasks["instruction"]) == [rows[order[p]]["instruction"] for p in picks]
    assert sum(tasks["cluster_size"]) == 30


def test_affinity_selector_returns_exemplars_of_clusters(refine):
    """Affinity propagation adds exactly the missing number of exemplars, one per topic cluster."""
    rows = pool_rows()
    tasks = refine(
        rows,
        size=6,
        top_quality=0,
        quality=by_length,
        embedder=topic_embedder,
        selector="affinity",
        dedup=False,
        progress=False,
    )
    assert len(tasks) == 6 and set(tasks["refine_reason"]) == {"affinity"}
    found = {next(t for t in TOPICS if t in text) for text in tasks["instruction"]}
    assert found == set(TOPICS)
    assert sum(tasks["cluster_size"]) == len(rows)


@pytest.mark.parametrize(("sparse_above", "path"), [(1000, "dense"), (20, "two-stage")])
def test_affinity_selector_path_depends_on_the_pool_size(refine, monkeypatch, sparse_above, path):
    """Up to `SPARSE_ABOVE` rows the affinity selector is dense; above, two stages over an LSH kNN graph. Both find
    one exemplar per topic, and the provenance and description say which path ran."""
    import hf_nuggets.taskset.exemplars as exemplars

    monkeypatch.setattr(exemplars, "SPARSE_ABOVE", sparse_above)
    rows = pool_rows(120)
    tasks, made = refine(
        rows,
        size=6,
        top_quality=0,
        quality=by_length,
        embedder=topic_embedder,
        selector="affinity",
        dedup=False,
        progress=False,
        return_provenance=True,
    )
    assert made["diversity"]["path"] == path and f"selector=affinity ({path})" in tasks.info.description
    assert {next(t for t in TOPICS if t in text) for text in tasks["instruction"]} == set(TOPICS)
    assert sum(tasks["cluster_size"]) == 120
    assert set(made["seconds"]) == {"gates", "quality", "near_duplicates", "embedding", "diversity"}


def test_near_duplicates_never_both_enter(refine):
    """Two phrasings of one task: only the better one can be chosen."""
    rows = pool_rows(12)
    rows.append({**rows[0], "instruction": rows[0]["instruction"] + "!", "output": "b" * 60})
    tasks = refine(rows, size=12, top_quality=1, quality=by_length, embedder=topic_embedder, progress=False)
    assert rows[0]["instruction"] not in tasks["instruction"]
    assert tasks["instruction"][0] == rows[-1]["instruction"]


def test_quality_from_a_column(refine):
    """A column of precomputed scores can serve as the quality signal."""
    from datasets import Dataset

    rows = pool_rows(20)
    ds = Dataset.from_list([{**r, "reward": float(-i)} for i, r in enumerate(rows)])
    tasks = refine(ds, size=4, top_quality=4, quality="reward", embedder=topic_embedder, progress=False)
    assert list(tasks["instruction"]) == [r["instruction"] for r in rows[:4]]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"size": 100}, ValueError, "`size` \\(100\\) is larger than the pool of 60 rows"),
        ({"size": 5, "top_quality": 6}, ValueError, "`top_quality` \\(6\\) cannot exceed `size` \\(5\\)"),
        ({"selector": "random"}, ValueError, "`selector` must be one of"),
        ({"size": 0}, ValueError, "`size` must be a positive integer, got 0"),
        ({"dedup_threshold": 1.5}, ValueError, "`dedup_threshold` must be in \\(0, 1\\]"),
        ({"pool": 5, "size": 8}, ValueError, "`pool` \\(5\\) must be at least `size` \\(8\\)"),
        ({"quality": 3}, TypeError, "`quality` must be 'judge'"),
    ],
)
def test_bad_arguments_are_named(refine, kwargs, error, match):
    """Invalid sizes, selectors and thresholds fail with the argument and its value."""
    args = {"size": 8, "top_quality": 2, "quality": by_length, "embedder": topic_embedder, "progress": False}
    with pytest.raises(error, match=match):
        refine(pool_rows(), **{**args, **kwargs})


def test_empty_dataset_is_refused(refine):
    """An empty pool cannot be refined."""
    with pytest.raises(ValueError, match="`dataset` is empty"):
        refine([], size=1, top_quality=0, quality=by_length, embedder=topic_embedder)


@pytest.mark.slow
def test_refine_the_shipped_sample_with_the_embedded_models():
    """On part of the shipped sample with planted duplicates, the embedded judge and MiniLM give a task set in which
    no two rows are near-duplicates, quality picks first in quality order."""
    from datasets import concatenate_datasets

    from hf_nuggets import load_sample_dataset
    from hf_nuggets.algorithms.minhash import near_duplicates

    def texts_of(rows):
        return [i + ("\n" + x if x else "") for i, x in zip(rows["instruction"], rows["input"], strict=True)]

    # 48 rows keep the embedded judge's share of the suite under a minute on 2 cores; the copies ask the same
    # tasks with other answers, and with a trailing full stop added to the instruction.
    sample = load_sample_dataset().select(range(48)).remove_columns("flaw")
    copies = sample.select(range(8)).map(
        lambda row, i: {"instruction": row["instruction"] + ("." if i % 2 else ""), "output": "See above."},
        with_indices=True,
    )
    data = concatenate_datasets([sample, copies])
    assert near_duplicates(texts_of(data), threshold=0.7).pairs.shape[0] >= 8  # the planted pairs are found

    tasks = refine_task_set(data, size=16, top_quality=4, pool=40, progress=False)
    assert len(tasks) == 16 and len(set(tasks["instruction"])) == 16
    assert list(tasks["refine_reason"]) == ["quality"] * 4 + ["kcenter"] * 12
    assert near_duplicates(texts_of(tasks), threshold=0.7).pairs.size == 0
    assert all(tasks["quality_score"][i] >= tasks["quality_score"][i + 1] for i in range(3))


@pytest.mark.slow
@pytest.mark.parametrize("selector", ["kcenter", "affinity"])
def test_refined_tasks_from_the_first_sample_rows_carry_no_flaw(selector):
    """The new user's run (issue 17): 4 tasks from the first 16 sample rows, which hold a `<nooutput>` row and answers
    to other questions (one about penguins), with the embedded models: the gates keep every flawed row out."""
    from hf_nuggets import load_sample_dataset

    data = load_sample_dataset().select(range(16))
    flawed = {i for i, flaw in enumerate(data["flaw"]) if flaw}
    assert {9, 15} <= flawed  # the <nooutput> row and the penguins row
    tasks, made = refine_task_set(
        data.remove_columns("flaw"), size=4, top_quality=1, selector=selector, progress=False, return_provenance=True
    )
    assert len(tasks) == 4 and not flawed & set(made["rows"])
    assert made["gated"]["by_gate"]["placeholder"] >= 1 and made["gated"]["by_gate"]["unaligned"] >= 2


def test_refine_command_writes_the_task_set(tmp_path, monkeypatch, capsys, tiny_model_dir):
    """`hf-nuggets refine` writes the task set with its reasons; bad flags exit with the argument named."""
    import json

    import hf_nuggets.taskset.embeddings as embeddings
    from hf_nuggets.cli import main

    monkeypatch.setattr(embeddings, "load_embedder", lambda name=None, device=None: topic_embedder)
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({**r, "score": float(i)}) for i, r in enumerate(pool_rows())))
    out = tmp_path / "tasks.jsonl"
    args = ["--quality", "score", "--model", str(tiny_model_dir), "--out", str(out)]
    assert main(["refine", str(data), "--size", "3", "--top_quality", "1", *args]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["refine_reason"] == "quality" and rows[0]["quality_rank"] == 0
    assert main(["refine", str(data), "--size", "600", *args]) == 1
    assert "`size` (600) is larger than the pool of 60 rows." in capsys.readouterr().err
    assert main(["refine", str(data), "--size", "50", *args]) == 1  # the tiny model's answers are mostly unaligned
    assert "`size` (50) is larger than the pool of" in (err := capsys.readouterr().err) and "after the gates" in err
    with pytest.raises(SystemExit):
        main(["refine", str(data), "--out", str(tmp_path / "tasks.txt")])


# ---------------------------------------------------------------------------------------------------------------------
# Gates first: no gated row ever becomes a task


def bad_rows():
    """An empty answer and two placeholders, which a quality function that likes them would pick first."""
    return [
        {"instruction": "cooking pasta: say nothing at all", "input": "", "output": "   "},
        {"instruction": "tennis rules: give no output", "input": "", "output": "<nooutput>"},
        {"instruction": "tax forms: fill in later", "input": "", "output": "N/A"},
    ]


def likes_bad_rows(examples):
    """Quality that ranks placeholder and empty answers best: only the gates keep them out."""
    return [1000.0 if len(e.output) < 12 else len(e.output) for e in examples]


def test_empty_and_placeholder_rows_never_become_tasks(refine):
    """Empty and placeholder rows are gated before quality: they never enter, even when quality ranks them first."""
    rows = pool_rows(20) + bad_rows()
    tasks, made = refine(
        rows,
        size=20,
        top_quality=5,
        quality=likes_bad_rows,
        embedder=topic_embedder,
        return_provenance=True,
        progress=False,
    )
    assert sorted(tasks["row"]) == list(range(20))  # every row that passes, and no other
    assert made["gated"] == {"rows": 3, "by_gate": {"empty": 1, "placeholder": 2, "unaligned": 0, "unfinished": 0}}
    assert made["rows_in"] == 23 and made["rows"] == list(tasks["row"])
    assert "gates dropped 3 of 23 rows (empty 1, placeholder 2)" in tasks.info.description


def test_unaligned_rows_never_become_tasks(tiny_prospector):
    """With an alignment threshold that gates a known row (the best by quality), it is not chosen; no returned task
    carries a flag under the same settings."""
    from hf_nuggets.data.formatting import examples_from_rows
    from hf_nuggets.scoring.scorer import flag_examples

    rows = pool_rows(30)
    alignment = flag_examples(tiny_prospector, examples_from_rows(rows))["alignment"]
    best = max(range(30), key=lambda i: (len(rows[i]["output"]), -i))
    settings = GateSettings(alignment_threshold=float(alignment[best]), completeness_threshold=-math.inf)
    tasks, made = refine_task_set(
        rows,
        size=3,
        top_quality=1,
        quality=by_length,
        embedder=topic_embedder,
        prospector=tiny_prospector,
        gate_settings=settings,
        return_provenance=True,
        progress=False,
    )
    assert best not in tasks["row"] and made["gated"]["by_gate"]["unaligned"] >= 1
    flags = flag_examples(tiny_prospector, examples_from_rows(tasks.to_list()), gate_settings=settings)["flags"]
    assert flags == [""] * 3


def test_default_gates_hold_for_every_task(tiny_prospector):
    """Under the default gate settings, every task of a refined set passes every gate."""
    from hf_nuggets.data.formatting import examples_from_rows
    from hf_nuggets.scoring.scorer import flag_examples

    rows = pool_rows(60) + bad_rows()
    tasks, made = refine_task_set(
        rows,
        size=3,
        top_quality=1,
        quality=likes_bad_rows,
        embedder=topic_embedder,
        prospector=tiny_prospector,
        return_provenance=True,
        progress=False,
    )
    assert made["gated"]["rows"] >= 3
    assert flag_examples(tiny_prospector, examples_from_rows(tasks.to_list()))["flags"] == [""] * 3


# ---------------------------------------------------------------------------------------------------------------------
# auto_task_set: tasks drawn from the data being scored


def test_auto_task_set_is_reproducible_from_the_seed(tiny_prospector):
    """The same seed gives the same tasks; the tasks are rows of the data, named by their row numbers."""
    from datasets import Dataset

    from hf_nuggets.taskset.refine import auto_task_set

    data = Dataset.from_list(pool_rows(60) + bad_rows())
    args = {
        "num_tasks": 4,
        "sample_size": 30,
        "prospector": tiny_prospector,
        "quality": likes_bad_rows,
        "embedder": topic_embedder,
        "gate_settings": NO_SIGNAL_GATES,
        "progress": False,
    }
    first, made = auto_task_set(data, seed=3, **args)
    again, _ = auto_task_set(data, seed=3, **args)
    other, made_other = auto_task_set(data, seed=4, **args)
    assert first.to_list() == again.to_list() and made["rows"] != made_other["rows"]
    assert made["rows"] == list(first["row"]) and made["source"] == "auto" and made["tasks_stay_candidates"]
    assert [data[r]["instruction"] for r in made["rows"]] == list(first["instruction"])
    assert made["sample_size"] == 30 and made["rows_available"] == 63 and made["seed"] == 3
    assert list(first["refine_reason"]) == ["quality"] + ["kcenter"] * 3  # num_tasks // 5 quality picks, at least 1


def test_auto_task_set_provenance_says_why_each_task_was_chosen(tiny_prospector):
    """The provenance lists each task's `refine_reason` in task order, so a summary alone tells the picks apart."""
    from hf_nuggets.taskset.refine import auto_task_set

    tasks, made = auto_task_set(
        pool_rows(60),
        num_tasks=5,
        sample_size=40,
        prospector=tiny_prospector,
        quality=by_length,
        embedder=topic_embedder,
        gate_settings=NO_SIGNAL_GATES,
        progress=False,
    )
    assert made["reasons"] == list(tasks["refine_reason"]) == ["quality", "kcenter", "kcenter", "kcenter", "kcenter"]


def test_auto_task_set_refuses_too_little_data_before_the_model_runs(tiny_prospector):
    """Fewer rows than tasks fails with both sizes named, before any forward pass."""
    from hf_nuggets.taskset.refine import TaskPoolTooSmallError, auto_task_set

    calls = []
    hook = tiny_prospector.model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(TaskPoolTooSmallError, match=r"`num_tasks` \(16\) is larger than the pool of 5 rows in "):
            auto_task_set(pool_rows(5), prospector=tiny_prospector, progress=False)
    finally:
        hook.remove()
    assert calls == []


def test_auto_task_set_names_the_sizes_left_after_the_gates(tiny_prospector):
    """When the gates leave too few rows, the error gives the rows left, the tasks wanted and where the rest went."""
    from hf_nuggets.taskset.refine import auto_task_set

    rows = pool_rows(3) + bad_rows() * 3
    with pytest.raises(
        ValueError,
        match=r"`num_tasks` \(4\) is larger than the pool of 3 rows left after the gates "
        r"\(12 rows, 9 gated: empty 3, placeholder 6\), in a sample of 12 of the data's 12 rows\.",
    ):
        auto_task_set(rows, num_tasks=4, prospector=tiny_prospector, gate_settings=NO_SIGNAL_GATES, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_tasks": 0}, "`num_tasks` must be a positive integer, got 0"),
        ({"sample_size": 2, "num_tasks": 4}, r"`sample_size` \(2\) must be at least `num_tasks` \(4\)"),
    ],
)
def test_auto_task_set_bad_arguments_are_named(kwargs, match):
    """Bad sizes fail with the argument and its value."""
    from hf_nuggets.taskset.refine import auto_task_set

    with pytest.raises(ValueError, match=match):
        auto_task_set(pool_rows(), **kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# Stopping a run while its tasks are built


def test_cancel_while_the_tasks_are_refined_ends_the_run_within_one_quality_call(tiny_prospector, tmp_path):
    """A run that draws its tasks from the data (`task_set="auto"`) and is cancelled while the quality function runs
    ends within that call: no further call, no row scored."""
    import threading
    import time

    from datasets import Dataset

    from hf_nuggets import GoldenScorer, prospect
    from hf_nuggets.run.loop import CancelCallback, RunCancelled

    stop = threading.Event()
    seen: list[int] = []

    def slow_quality(examples):
        seen.append(len(examples))
        time.sleep(0.2)
        stop.set()  # the visitor presses Cancel while this call runs
        return [len(e.output) for e in examples]

    data = Dataset.from_list(pool_rows(200))
    with pytest.raises(RunCancelled):
        prospect(
            data,
            GoldenScorer(tiny_prospector, gate_settings=NO_SIGNAL_GATES),
            tmp_path / "run",
            task_set="auto",
            auto_options={"num_tasks": 4, "sample_size": 200, "quality": slow_quality, "embedder": topic_embedder},
            callbacks=[CancelCallback(stop)],
            progress=False,
        )
    assert len(seen) == 1, f"the quality function was called again after the cancel: {seen}"
    assert seen[0] < 200, "the quality function was handed every row at once, so a cancel could not stop it"
    assert not (tmp_path / "run" / "scored.partial.parquet").exists()
