"""Selecting the top or bottom n% of a scored dataset."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

from hf_nuggets import select_top
from hf_nuggets.selection import n_selected, rank_order, top_selection


def scored(n=20):
    return Dataset.from_dict(
        {
            "id": list(range(n)),
            "golden_score": [(i * 7 % 5) / 4 for i in range(n)],
            "nuggets_gain": [i / 100 for i in range(n)],
        }
    )


def test_top_rows_are_the_best_by_score_then_gain():
    """The kept rows are exactly the highest golden scores, ties broken by the higher gain, best first."""
    ds = scored()
    best = select_top(ds, percent=25)
    expected = sorted(range(20), key=lambda i: (-ds["golden_score"][i], -ds["nuggets_gain"][i]))[:5]
    assert best["id"] == expected


def test_bottom_rows_are_the_worst_first():
    """`bottom=True` keeps the worst rows, worst first."""
    ds = scored()
    worst = select_top(ds, percent=25, bottom=True)
    expected = sorted(range(20), key=lambda i: (ds["golden_score"][i], ds["nuggets_gain"][i]))[:5]
    assert worst["id"] == expected


def test_remaining_ties_keep_row_order():
    """Rows equal in score and gain keep their original order."""
    assert rank_order([0.5, 0.5, 0.5], [0.0, 0.0, 0.0]).tolist() == [0, 1, 2]


def test_count_is_rounded_and_at_least_one():
    """5% of 52,002 rows is 2,600 rows; a tiny dataset still keeps one row."""
    assert n_selected(52_002, 5) == 2600
    assert n_selected(10, 1) == 1
    assert n_selected(10, 100) == 10


@pytest.mark.parametrize("percent", [0, -1, 100.5, "5", True])
def test_percent_out_of_range_is_refused(percent):
    """`percent` must be a number in (0, 100]."""
    with pytest.raises(ValueError, match="`percent` must be in \\(0, 100\\]"):
        select_top(scored(), percent=percent)


def test_unscored_or_empty_data_is_refused():
    """Selecting needs a `golden_score` column and at least one row."""
    with pytest.raises(KeyError, match="Column `golden_score` not found"):
        select_top(Dataset.from_dict({"a": [1]}), 5)
    with pytest.raises(ValueError, match="The dataset is empty"):
        select_top(Dataset.from_dict({"golden_score": []}), 5)
    with pytest.raises(TypeError, match="needs a `datasets.Dataset`"):
        select_top(Dataset.from_dict({"golden_score": [1.0]}).to_iterable_dataset(), 5)


# ----------------------------------------------------------------------------------------------- diverse selection


def topic_embedder(seen=None):
    """Texts `t<k> ...` embed near the k-th axis (a per-text tilt keeps them apart but within cosine distance 0.01)."""

    def embed(texts):
        if seen is not None:
            seen.extend(texts)
        out = np.zeros((len(texts), 17))
        for i, text in enumerate(texts):
            out[i, int(text.split()[0][1:])] = 1.0
            out[i, 16] = 0.1 * (sum(map(ord, text)) % 7) / 7
        return out

    return embed


def topical(topics, flags=None, inputs=None):
    """Rows best first: row i asks about topic `topics[i]` and scores 1 - i/100."""
    n = len(topics)
    columns = {
        "id": list(range(n)),
        "instruction": [f"t{t} question {i}" for i, t in enumerate(topics)],
        "input": inputs or [""] * n,
        "output": [f"answer {i}" for i in range(n)],
        "golden_score": [1 - i / 100 for i in range(n)],
        "nuggets_gain": [0.0] * n,
    }
    if flags is not None:
        columns["nuggets_flags"] = flags
    return Dataset.from_dict(columns)


def test_diverse_top_skips_redundant_rows_and_still_fills_the_count():
    """The walk skips rows near a better kept row and goes on down the ranking until the count is reached."""
    ds = topical([0, 0, 1, 0, 2, 1, 3, 4, 5, 6])
    chosen = top_selection(ds, 50, min_distance=0.1, embedder=topic_embedder())
    assert chosen.indices.tolist() == [0, 2, 4, 6, 7] and chosen.redundant == 3 and chosen.wanted == 5
    assert select_top(ds, 50, min_distance=0.1, embedder=topic_embedder())["id"] == [0, 2, 4, 6, 7]


def test_diverse_top_matches_the_exact_walk_over_the_ranking():
    """On random embeddings, the LSH selection equals DEITA's exact walk over rank_order (and the exact option)."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((40, 16))
    X = np.concatenate([base, base[rng.integers(0, 40, 40)] + 0.05 * rng.standard_normal((40, 16))])
    ds = scored(80).add_column("nuggets_embedding", X.tolist())
    order = rank_order(ds["golden_score"], ds["nuggets_gain"])
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    kept = []
    for row in order:
        if len(kept) == 30:
            break
        if not kept or 1 - max(Xn[k] @ Xn[row] for k in kept) >= 0.05:
            kept.append(int(row))
    lsh = top_selection(ds, 37.5, min_distance=0.05, lsh={"n_bits_per_table": 4, "n_tables": 64})
    assert lsh.indices.tolist() == kept
    assert top_selection(ds, 37.5, min_distance=0.05, lsh=False).indices.tolist() == kept


def test_gates_apply_before_the_diverse_walk():
    """A gated row is never kept and never makes a row redundant: its paraphrase below it is kept."""
    ds = topical([0, 0, 1, 2, 3], flags=["empty", "", "", "", ""])
    chosen = top_selection(ds, 60, min_distance=0.1, embedder=topic_embedder())
    assert chosen.indices.tolist() == [1, 2, 3] and chosen.redundant == 0 and chosen.gated == 1


def test_too_few_distinct_rows_give_a_smaller_top_with_a_warning(caplog):
    """When gates and redundancy leave fewer rows than asked for, the top holds what is left, and says so."""
    ds = topical([0, 0, 1, 1, 0, 1])
    with caplog.at_level("WARNING"):
        best = select_top(ds, 50, min_distance=0.1, embedder=topic_embedder())
    assert best["id"] == [0, 2] and "fewer than the 3 asked for" in caplog.text


def test_rows_are_embedded_by_instruction_and_input_and_only_as_far_as_the_walk_goes():
    """The embedder sees each visited row's instruction and input, and no row below the walk's last block."""
    topics = list(range(16)) * 10
    seen = []
    ds = topical(topics, inputs=["" if i % 2 else f"context {i}" for i in range(160)])
    top_selection(ds, 5, min_distance=0.1, embedder=topic_embedder(seen))
    assert seen[:2] == ["t0 question 0\ncontext 0", "t1 question 1"] and len(seen) == 64


def test_embeddings_column_array_and_embedder_agree():
    """Embeddings from the `nuggets_embedding` column, from an array, or computed, give the same selection."""
    ds = topical([0, 0, 1, 0, 2, 1, 3, 4, 5, 6])
    vectors = topic_embedder()([f"t{t} question {i}" for i, t in enumerate([0, 0, 1, 0, 2, 1, 3, 4, 5, 6])])
    with_column = ds.add_column("nuggets_embedding", vectors.tolist())
    a = top_selection(with_column, 50, min_distance=0.1).indices.tolist()
    b = top_selection(ds, 50, min_distance=0.1, embeddings=vectors).indices.tolist()
    c = top_selection(ds, 50, min_distance=0.1, embedder=topic_embedder()).indices.tolist()
    assert a == b == c == [0, 2, 4, 6, 7]


def test_plain_top_is_unchanged_without_min_distance():
    """`min_distance=None` (the default) selects exactly the plain top, and records nothing about redundancy."""
    ds = topical([0, 0, 1, 0, 2, 1, 3, 4, 5, 6])
    chosen = top_selection(ds, 50)
    assert chosen.indices.tolist() == [0, 1, 2, 3, 4] and chosen.redundant == 0 and chosen.neighbours is None


def test_diverse_selection_arguments_are_checked():
    """Bad thresholds, a bottom selection, unknown LSH settings and misshapen embeddings raise."""
    ds = topical([0, 1, 2, 3])
    with pytest.raises(ValueError, match="`min_distance` must be a cosine distance"):
        select_top(ds, 50, min_distance=0)
    with pytest.raises(ValueError, match="cannot be combined with `bottom=True`"):
        select_top(ds, 50, min_distance=0.1, bottom=True)
    with pytest.raises(ValueError, match="Unknown LSH setting"):
        select_top(ds, 50, min_distance=0.1, lsh={"tables": 3})
    with pytest.raises(ValueError, match="one vector per row"):
        select_top(ds, 50, min_distance=0.1, embeddings=np.ones((3, 2)))
    with pytest.raises(KeyError, match="`vectors`"):
        select_top(ds, 50, min_distance=0.1, embeddings="vectors")
