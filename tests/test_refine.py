"""Task-set refinement: quality picks, near-duplicate removal, k-center and affinity-propagation diversity."""

from __future__ import annotations

import numpy as np
import pytest

from hf_nuggets.algorithms.kcenter import kcenter_greedy
from hf_nuggets.refine import refine_task_set

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


def test_quality_picks_come_first_and_are_the_best():
    """The `top_quality` rows with the highest quality enter first, marked as quality picks."""
    rows = pool_rows()
    tasks = refine_task_set(rows, size=8, top_quality=3, quality=by_length, embedder=topic_embedder, progress=False)
    best = sorted(range(len(rows)), key=lambda i: (-len(rows[i]["output"]), i))[:3]
    assert list(tasks["instruction"][:3]) == [rows[i]["instruction"] for i in best]
    assert list(tasks["refine_reason"]) == ["quality"] * 3 + ["kcenter"] * 5
    assert list(tasks["quality_rank"][:3]) == [0, 1, 2]


def test_kcenter_selection_follows_farthest_point_order():
    """The k-center picks are those of `kcenter_greedy` seeded with the quality picks, over the quality pool."""
    rows = pool_rows()
    tasks = refine_task_set(
        rows, size=6, top_quality=2, pool=30, quality=by_length, embedder=topic_embedder, dedup=False, progress=False
    )
    order = sorted(range(len(rows)), key=lambda i: (-len(rows[i]["output"]), i))[:30]
    vectors = topic_embedder([rows[i]["instruction"] for i in order])
    picks = kcenter_greedy(vectors, 6, seeds=[0, 1], metric="cosine")
    assert list(tasks["instruction"]) == [rows[order[p]]["instruction"] for p in picks]
    assert sum(tasks["cluster_size"]) == 30


def test_affinity_selector_returns_exemplars_of_clusters():
    """Affinity propagation adds exactly the missing number of exemplars, one per topic cluster."""
    rows = pool_rows()
    tasks = refine_task_set(
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


def test_near_duplicates_never_both_enter():
    """Two phrasings of one task: only the better one can be chosen."""
    rows = pool_rows(12)
    rows.append({**rows[0], "instruction": rows[0]["instruction"] + "!", "output": "b" * 60})
    tasks = refine_task_set(rows, size=12, top_quality=1, quality=by_length, embedder=topic_embedder, progress=False)
    assert rows[0]["instruction"] not in tasks["instruction"]
    assert tasks["instruction"][0] == rows[-1]["instruction"]


def test_quality_from_a_column():
    """A column of precomputed scores can serve as the quality signal."""
    from datasets import Dataset

    rows = pool_rows(20)
    ds = Dataset.from_list([{**r, "reward": float(-i)} for i, r in enumerate(rows)])
    tasks = refine_task_set(ds, size=4, top_quality=4, quality="reward", embedder=topic_embedder, progress=False)
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
def test_bad_arguments_are_named(kwargs, error, match):
    """Invalid sizes, selectors and thresholds fail with the argument and its value."""
    args = {"size": 8, "top_quality": 2, "quality": by_length, "embedder": topic_embedder, "progress": False}
    with pytest.raises(error, match=match):
        refine_task_set(pool_rows(), **{**args, **kwargs})


def test_empty_dataset_is_refused():
    """An empty pool cannot be refined."""
    with pytest.raises(ValueError, match="`dataset` is empty"):
        refine_task_set([], size=1, top_quality=0, quality=by_length, embedder=topic_embedder)


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


def test_refine_command_writes_the_task_set(tmp_path, monkeypatch):
    """`hf-nuggets refine` writes the task set with its reasons; bad flags exit with the argument named."""
    import json

    import hf_nuggets.embeddings as embeddings
    from hf_nuggets.cli import main

    monkeypatch.setattr(embeddings, "load_embedder", lambda name=None, device=None: topic_embedder)
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({**r, "score": float(i)}) for i, r in enumerate(pool_rows())))
    out = tmp_path / "tasks.jsonl"
    assert (
        main(["refine", str(data), "--size", "6", "--top_quality", "2", "--quality", "score", "--out", str(out)]) == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and rows[0]["refine_reason"] == "quality" and rows[0]["quality_rank"] == 0
    assert main(["refine", str(data), "--size", "600", "--quality", "score", "--out", str(out)]) == 1
    with pytest.raises(SystemExit):
        main(["refine", str(data), "--out", str(tmp_path / "tasks.txt")])
