"""The scoring engine against the reference NUGGETS loop and a naive full-forward oracle."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch

from hf_nuggets.data.formatting import Example, examples_from_rows, messages_to_example
from hf_nuggets.scoring.engine import (
    EncodedTask,
    ScoringEngine,
    SegmentEncoder,
    TruncationLimits,
    cache_keyword,
    golden_from_scores,
    plan_batches,
)
from hf_nuggets.scoring.reference import reference_nuggets


def engine_scores(prospector, candidates, tasks, *, limits=None, max_batch_tokens=4096, template="alpaca"):
    encoder = SegmentEncoder(prospector.tokenizer, template, limits)
    encoded = [encoder.encode_task(t, j)[0] for j, t in enumerate(tasks)]
    engine = ScoringEngine(prospector.model, encoded, max_batch_tokens=max_batch_tokens)
    s_zero = engine.score([encoder.bos_id])
    s_one = np.stack([engine.score(encoder.encode_demo(c)[0]) for c in candidates])
    return s_zero, s_one


@torch.inference_mode()
def naive_scores(prospector, candidates, tasks, limits=None):
    """One full forward per (candidate, task) pair: no cache, no batching, no padding."""
    encoder = SegmentEncoder(prospector.tokenizer, "alpaca", limits)
    encoded = [encoder.encode_task(t)[0] for t in tasks]

    def one(prefix, task):
        ids = prefix + list(task.prompt_ids) + list(task.answer_ids)
        logp = prospector.model(torch.tensor([ids]), use_cache=False).logits[0].log_softmax(-1)
        start = len(prefix) + len(task.prompt_ids)
        return float(np.mean([logp[start - 1 + i, t].item() for i, t in enumerate(task.answer_ids)]))

    s_zero = np.array([one([encoder.bos_id], t) for t in encoded])
    s_one = np.array([[one(encoder.encode_demo(c)[0], t) for t in encoded] for c in candidates])
    return s_zero, s_one


@pytest.mark.parametrize("max_batch_tokens", [1, 64, 4096])
def test_engine_matches_reference(tiny_prospector, candidates, tasks, max_batch_tokens):
    """Engine scores equal the reference loop's within 1e-4, with identical gain indicators, for any batching."""
    cands, task_examples = examples_from_rows(candidates), examples_from_rows(tasks)
    z_ref, o_ref = reference_nuggets(tiny_prospector.model, tiny_prospector.tokenizer, cands, task_examples)
    z, o = engine_scores(tiny_prospector, cands, task_examples, max_batch_tokens=max_batch_tokens)
    np.testing.assert_allclose(z, z_ref, atol=1e-4)
    np.testing.assert_allclose(o, o_ref, atol=1e-4)
    np.testing.assert_array_equal(o > z, o_ref > z_ref)
    assert np.abs(o - z).max() > 1e-3, "the tiny model should give visible gains and losses"


def test_engine_matches_naive_full_forward(tiny_prospector, candidates, tasks):
    """A cached prefix gives the same scores as scoring each full sequence on its own."""
    cands, task_examples = examples_from_rows(candidates), examples_from_rows(tasks)
    z_naive, o_naive = naive_scores(tiny_prospector, cands, task_examples)
    z, o = engine_scores(tiny_prospector, cands, task_examples)
    np.testing.assert_allclose(z, z_naive, atol=1e-4)
    np.testing.assert_allclose(o, o_naive, atol=1e-4)


def test_engine_matches_reference_with_truncation(tiny_prospector, candidates, tasks):
    """Truncated demonstrations, prompts and answers are scored identically by engine and reference."""
    limits = TruncationLimits(max_demo_tokens=6, max_prompt_tokens=5, max_answer_tokens=3)
    cands, task_examples = examples_from_rows(candidates), examples_from_rows(tasks)
    z_ref, o_ref = reference_nuggets(
        tiny_prospector.model, tiny_prospector.tokenizer, cands, task_examples, limits=limits
    )
    z, o = engine_scores(tiny_prospector, cands, task_examples, limits=limits)
    np.testing.assert_allclose(z, z_ref, atol=1e-4)
    np.testing.assert_allclose(o, o_ref, atol=1e-4)


def test_engine_matches_reference_on_chat_rows(tiny_prospector, tasks):
    """Chat-format rows converted to examples score the same through engine and reference."""
    chats = [
        [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}],
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Add 1 and 1."},
            {"role": "assistant", "content": "2"},
        ],
    ]
    cands = [messages_to_example(m) for m in chats]
    task_examples = examples_from_rows(tasks)
    z_ref, o_ref = reference_nuggets(tiny_prospector.model, tiny_prospector.tokenizer, cands, task_examples)
    z, o = engine_scores(tiny_prospector, cands, task_examples)
    np.testing.assert_allclose(o, o_ref, atol=1e-4)
    np.testing.assert_allclose(z, z_ref, atol=1e-4)


def test_segments_are_tokenized_separately_with_one_bos(tiny_prospector):
    """A demonstration starts with exactly one BOS and is the tokenization of its own text."""
    tok = tiny_prospector.tokenizer
    encoder = SegmentEncoder(tok)
    ids, cut = encoder.encode_demo(Example("Add 2 and 3.", "", "5"))
    text = "Instruction:\nAdd 2 and 3.\nResponse:\n5\n\n"
    assert ids == [tok.bos_token_id, *tok(text, add_special_tokens=False)["input_ids"]]
    assert not cut
    task, _, _ = encoder.encode_task(Example("Add 2 and 3.", "", "5"))
    assert list(task.answer_ids) == tok("5", add_special_tokens=False)["input_ids"]
    assert tok.bos_token_id not in task.prompt_ids


def test_truncation_keeps_prompt_end_and_answer_start(tiny_prospector):
    """Prompts keep their last tokens, answers and demonstrations their first, and each cut is reported."""
    tok = tiny_prospector.tokenizer
    encoder = SegmentEncoder(tok, limits=TruncationLimits(max_demo_tokens=4, max_prompt_tokens=3, max_answer_tokens=2))
    example = Example("Translate into French.", "Where is the station?", "Où est la gare ?")
    task, prompt_cut, answer_cut = encoder.encode_task(example)
    prompt = tok(
        "Instruction:\nTranslate into French.\nInput:\nWhere is the station?\nResponse:\n", add_special_tokens=False
    )["input_ids"]
    assert list(task.prompt_ids) == prompt[-3:] and prompt_cut
    assert list(task.answer_ids) == tok("Où est la gare ?", add_special_tokens=False)["input_ids"][:2] and answer_cut
    demo, demo_cut = encoder.encode_demo(example)
    assert len(demo) == 5 and demo_cut


def test_empty_task_answer_is_refused(tiny_prospector):
    """A task without an answer cannot be scored and the error names it."""
    encoder = SegmentEncoder(tiny_prospector.tokenizer)
    with pytest.raises(ValueError, match="task 3 is empty"):
        encoder.encode_task(Example("Say something.", "", ""), 3)


def test_limits_must_be_positive():
    """Truncation limits below 1 are refused with the field's name."""
    with pytest.raises(ValueError, match="`max_answer_tokens` must be a positive integer, got 0"):
        TruncationLimits(max_answer_tokens=0)


def test_plan_batches_buckets_by_length_within_budget():
    """Tasks are sorted longest first and no batch exceeds the token budget or the size cap."""
    tasks = [EncodedTask(tuple(range(n)), (1,)) for n in (3, 10, 5, 9, 4)]
    batches = plan_batches(tasks, max_batch_tokens=24, max_batch_size=2)
    assert sorted(j for b in batches for j in b) == list(range(5))
    assert batches[0][0] == 1
    for batch in batches:
        longest = max(len(tasks[j].prompt_ids) + 1 for j in batch)
        assert len(batch) <= 2 and (len(batch) == 1 or len(batch) * longest <= 24)


def test_golden_score_counts_strict_gains_only():
    """A tie with the zero-shot score is no gain; the gain is the mean difference."""
    s_zero = np.array([-1.0, -2.0, -3.0, -4.0])
    s_one = np.array([[-0.5, -2.0, -3.5, -1.0]])
    golden, gain = golden_from_scores(s_one, s_zero)
    assert golden.tolist() == [0.5]
    assert gain.tolist() == [pytest.approx((0.5 + 0.0 - 0.5 + 3.0) / 4)]


def test_engine_refuses_empty_task_list(tiny_prospector):
    """An engine needs at least one task."""
    with pytest.raises(ValueError, match="`task_set` is empty"):
        ScoringEngine(tiny_prospector.model, [])


def test_cache_is_passed_by_the_name_the_model_declares(tiny_prospector, candidates, tasks):
    """No `past_key_values` deprecation warning from engine or reference, and the old name still works elsewhere."""
    cands, task_examples = examples_from_rows(candidates)[:1], examples_from_rows(tasks)[:2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine_scores(tiny_prospector, cands, task_examples)
        reference_nuggets(tiny_prospector.model, tiny_prospector.tokenizer, cands, task_examples)
    assert not [w for w in caught if "past_key_values" in str(w.message)]

    class OldStyle(torch.nn.Module):
        def forward(self, input_ids, past_key_values=None, use_cache=None):
            return input_ids

    assert cache_keyword(OldStyle()) == "past_key_values"
    declared = inspect.signature(tiny_prospector.model.get_decoder().forward).parameters
    assert cache_keyword(tiny_prospector.model.get_decoder()) == (
        "cache" if "cache" in declared else "past_key_values"
    )


#: Demonstrations for the sliding-window models: one shorter than their 32-token window, one of 340 characters that
#: is several windows long. Every task (13 to 40 tokens) then ends past the window after either.
SLIDING_DEMOS = [
    {"instruction": "Name a primary colour.", "input": "", "output": "Red is a primary colour."},
    {
        "instruction": "Describe a fox.",
        "input": "",
        "output": (
            "The quick brown fox jumps over the lazy dog. Water boils at 100 degrees Celsius. Red is a primary "
            "colour. Où est la gare ? The quick brown fox jumps over the lazy dog again and again, then it rests. "
            "def square(x): return x * x. Add 2 and 3 to get 5. Translate into French: where is the station? "
            "Water boils at 100 degrees Celsius at sea level."
        ),
    },
]


def test_sliding_demos_straddle_the_window(sliding_prospector):
    """One sliding-window demonstration is shorter than the window and the other is several windows long."""
    window = sliding_prospector.model.config.sliding_window
    encoder = SegmentEncoder(sliding_prospector.tokenizer)
    lengths = [len(encoder.encode_demo(c)[0]) for c in examples_from_rows(SLIDING_DEMOS)]
    assert lengths[0] < window < 3 * window < lengths[1]
    assert len(SLIDING_DEMOS[1]["output"]) >= 340


def test_sliding_window_engine_matches_naive_full_forward(sliding_prospector, tasks):
    """With a sliding window shorter than the sequences, cached-prefix scores equal full forwards without a cache."""
    cands, task_examples = examples_from_rows(SLIDING_DEMOS), examples_from_rows(tasks)
    z_naive, o_naive = naive_scores(sliding_prospector, cands, task_examples)
    z, o = engine_scores(sliding_prospector, cands, task_examples, max_batch_tokens=64)
    np.testing.assert_allclose(z, z_naive, atol=1e-4)
    np.testing.assert_allclose(o, o_naive, atol=1e-4)


def test_sliding_window_reference_matches_naive_full_forward(sliding_prospector, tasks):
    """The reference loop's cached prefix also gives full-forward scores on sliding-window models."""
    cands, task_examples = examples_from_rows(SLIDING_DEMOS), examples_from_rows(tasks)
    z_naive, o_naive = naive_scores(sliding_prospector, cands, task_examples)
    z_ref, o_ref = reference_nuggets(sliding_prospector.model, sliding_prospector.tokenizer, cands, task_examples)
    np.testing.assert_allclose(z_ref, z_naive, atol=1e-4)
    np.testing.assert_allclose(o_ref, o_naive, atol=1e-4)


def test_sliding_window_engine_matches_reference(sliding_prospector, tasks):
    """Engine and reference loop agree on sliding-window models, gain indicators included."""
    cands, task_examples = examples_from_rows(SLIDING_DEMOS), examples_from_rows(tasks)
    z_ref, o_ref = reference_nuggets(sliding_prospector.model, sliding_prospector.tokenizer, cands, task_examples)
    z, o = engine_scores(sliding_prospector, cands, task_examples)
    np.testing.assert_allclose(z, z_ref, atol=1e-4)
    np.testing.assert_allclose(o, o_ref, atol=1e-4)
    np.testing.assert_array_equal(o > z, o_ref > z_ref)


@pytest.mark.parametrize("architecture", ["gemma3", "mistral"])
def test_tiny_sliding_window_changes_the_scores(make_sliding_prospector, architecture, tasks):
    """The tiny models' window matters: with a window of 4096 the same weights score the long demo differently."""
    cands, task_examples = examples_from_rows(SLIDING_DEMOS[1:]), examples_from_rows(tasks)
    windowed, unbounded = (
        naive_scores(make_sliding_prospector(architecture, window), cands, task_examples)[1] for window in (32, 4096)
    )
    assert np.abs(windowed - unbounded).min() > 1e-3


def test_half_precision_models_project_to_the_vocabulary_in_float32(tiny_model_dir):
    """A bfloat16 model's answer log-probabilities come from a float32 projection of its hidden states."""
    from hf_nuggets import load_prospector
    from hf_nuggets.scoring.engine import TokenLogProbs

    prospector = load_prospector(str(tiny_model_dir), device="cpu", dtype="bfloat16")
    engine = TokenLogProbs(prospector.model)
    hidden = torch.randn(5, prospector.model.config.hidden_size).to(torch.bfloat16)
    targets = torch.tensor([1, 2, 3, 4, 5])
    exact = (hidden.double() @ engine.head.weight.double().T).log_softmax(-1)[torch.arange(5), targets]
    rounded = engine.head(hidden).float().log_softmax(-1)[torch.arange(5), targets]
    ours = engine._log_probs(hidden, targets)
    assert torch.allclose(ours.double(), exact, atol=1e-5)
    assert (ours.double() - exact).abs().max() < (rounded.double() - exact).abs().max()
