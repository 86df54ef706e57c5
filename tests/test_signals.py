"""The alignment and completeness signals against a direct full forward of the tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hf_nuggets import GoldenScorer, Prospector
from hf_nuggets.data.formatting import DEMO_SEPARATOR, examples_from_rows, render_prompt
from hf_nuggets.scoring.engine import RESPONSE_CUE, TruncationLimits

# A ChatML template (the embedded SmolLM2's format, without its default system prompt), for the tiny tokenizer.
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def chat_prospector(tiny_model_dir):
    """The tiny model with a tokenizer that knows ChatML (its special tokens added, the embeddings resized)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return Prospector(model.eval(), tokenizer, name="tiny-chat")


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@torch.inference_mode()
def token_log_probs(model, sequence):
    """log p(sequence[t] | sequence[:t]) for every t >= 1, from one full forward without cache or padding."""
    logp = model(torch.tensor([sequence])).logits[0].float().log_softmax(-1)
    return np.array([logp[t - 1, sequence[t]].item() for t in range(1, len(sequence))])


def direct_signals(prospector, example, *, template="alpaca", cue=RESPONSE_CUE, end_text=DEMO_SEPARATOR, limits=None):
    """The documented definition, computed directly: two full forwards, no engine."""
    limits = limits or TruncationLimits()
    tok, bos = prospector.tokenizer, prospector.tokenizer.bos_token_id
    answer = ids(tok, example.output)
    if not answer:
        return math.nan, math.nan
    prompt = ids(tok, render_prompt(example, template, tok))[-limits.max_prompt_tokens :]
    cut = len(answer) > limits.max_answer_tokens
    answer = answer[: limits.max_answer_tokens]
    end = ids(tok, end_text)[0]
    conditional = token_log_probs(prospector.model, [bos, *prompt, *answer, end])[len(prompt) :]
    bare = token_log_probs(prospector.model, [bos, *ids(tok, cue), *answer])[len(ids(tok, cue)) :]
    alignment = conditional[: len(answer)].mean() - bare.mean()
    return alignment, (math.nan if cut else conditional[len(answer)])


def scored(prospector, rows, tasks, **options):
    scorer = GoldenScorer(prospector, tasks, **options)
    out = scorer({k: [r[k] for r in rows] for k in rows[0]})
    return scorer, np.array(out["nuggets_alignment"]), np.array(out["nuggets_completeness"]), out["nuggets_flags"]


def test_signals_equal_a_direct_forward(tiny_prospector, candidates, tasks):
    """Alignment and completeness equal the definition computed with full forwards, within 1e-5."""
    scorer, alignment, completeness, _ = scored(tiny_prospector, candidates, tasks)
    expected = [direct_signals(tiny_prospector, e) for e in examples_from_rows(candidates)]
    np.testing.assert_allclose(alignment, [a for a, _ in expected], atol=1e-5)
    np.testing.assert_allclose(completeness, [c for _, c in expected], atol=1e-5)
    assert np.nanstd(alignment) > 1e-3, "the tiny model should give distinct alignments"
    assert scorer.stats["signals_from_demo_forward"] >= 4, "the demonstration's own forward should give the signals"


def test_signals_from_a_separate_forward_when_the_demo_differs(tiny_prospector, candidates, tasks):
    """A prompt cut to `max_prompt_tokens` no longer starts the demonstration: the separate forward agrees."""
    limits = TruncationLimits(max_prompt_tokens=6)
    scorer, alignment, completeness, _ = scored(tiny_prospector, candidates, tasks, limits=limits)
    expected = [direct_signals(tiny_prospector, e, limits=limits) for e in examples_from_rows(candidates)]
    np.testing.assert_allclose(alignment, [a for a, _ in expected], atol=1e-5)
    np.testing.assert_allclose(completeness, [c for _, c in expected], atol=1e-5)
    assert scorer.stats["signals_from_demo_forward"] == 0


def test_chat_template_signals_use_the_assistant_header_and_end_of_turn(chat_prospector, candidates, tasks):
    """With the chat template, the cue is the assistant header and the end is `<|im_end|>`."""
    _, alignment, completeness, _ = scored(chat_prospector, candidates, tasks, template="chat")
    expected = [
        direct_signals(chat_prospector, e, template="chat", cue="<|im_start|>assistant\n", end_text="<|im_end|>")
        for e in examples_from_rows(candidates)
    ]
    np.testing.assert_allclose(alignment, [a for a, _ in expected], atol=1e-5)
    np.testing.assert_allclose(completeness, [c for _, c in expected], atol=1e-5)


def test_cut_answer_has_no_completeness_and_empty_answer_no_signals(tiny_prospector, candidates, tasks):
    """An answer cut by `max_answer_tokens` has a NaN completeness; an empty answer has NaN signals and is `empty`."""
    limits = TruncationLimits(max_answer_tokens=3)
    _, alignment, completeness, flags = scored(tiny_prospector, candidates, tasks, limits=limits)
    empty = [i for i, c in enumerate(candidates) if not c["output"].strip()]
    assert empty and all(math.isnan(alignment[i]) and math.isnan(completeness[i]) for i in empty)
    assert all(flags[i] == "empty" for i in empty)
    long_rows = [i for i, c in enumerate(candidates) if len(ids(tiny_prospector.tokenizer, c["output"].strip())) > 3]
    assert long_rows and all(math.isnan(completeness[i]) and not math.isnan(alignment[i]) for i in long_rows)


def test_signals_do_not_depend_on_the_batch(tiny_prospector, candidates, tasks):
    """Scoring rows one at a time gives the same signals as one batch (padding never leaks)."""
    _, alignment, completeness, _ = scored(tiny_prospector, candidates, tasks, max_batch_tokens=10_000)
    singles = [scored(tiny_prospector, [row], tasks, max_batch_tokens=1)[1:3] for row in candidates]
    np.testing.assert_allclose(alignment, [a[0] for a, _ in singles], atol=1e-5)
    np.testing.assert_allclose(completeness, [c[0] for _, c in singles], atol=1e-5)


def test_flag_examples_without_tasks_equals_the_scorer(tiny_prospector, candidates, tasks):
    """`flag_examples` gives the scorer's signals and flags without any task."""
    from hf_nuggets.scoring.scorer import flag_examples

    _, alignment, completeness, flags = scored(tiny_prospector, candidates, tasks)
    got = flag_examples(tiny_prospector, examples_from_rows(candidates))
    np.testing.assert_allclose(got["alignment"], alignment, atol=1e-6)
    np.testing.assert_allclose(got["completeness"], completeness, atol=1e-6)
    assert got["flags"] == flags


def test_auto_thresholds_follow_the_rule_on_the_shipped_tasks(tiny_prospector, tasks):
    """'auto' thresholds are the rule applied to the signals of the shipped tasks' intact answers; numbers stay."""
    from hf_nuggets import load_default_task_set
    from hf_nuggets.gates import GateSettings, calibrate_thresholds

    shipped = [direct_signals(tiny_prospector, t) for t in examples_from_rows(load_default_task_set())]
    expected = GateSettings(*calibrate_thresholds([a for a, _ in shipped], [c for _, c in shipped]))
    scorer = GoldenScorer(tiny_prospector, tasks)
    got = scorer.resolved_gate_settings
    assert got.alignment_threshold == expected.alignment_threshold
    assert got.completeness_threshold == pytest.approx(expected.completeness_threshold)
    fixed = GoldenScorer(tiny_prospector, tasks, gate_settings=GateSettings(completeness_threshold=-1.5))
    assert fixed.resolved_gate_settings.completeness_threshold == -1.5
    assert fixed.resolved_gate_settings.alignment_threshold == expected.alignment_threshold
