"""Several candidates per forward pass (`ScoringEngine.score_candidates`) against one candidate at a time."""

from __future__ import annotations

import numpy as np
import pytest
from test_engine import SLIDING_DEMOS  # tests/ is on the path (pytest prepend import mode)

from hf_nuggets import GoldenScorer
from hf_nuggets.data.formatting import examples_from_rows
from hf_nuggets.scoring.engine import ScoringEngine, SegmentEncoder, golden_from_scores, plan_candidate_groups
from hf_nuggets.scoring.reference import reference_nuggets

#: Demonstrations of very different lengths: 14 tokens, 154 (several 32-token windows), and some in between.
MIXED_DEMOS = [
    {"instruction": "Hi", "input": "", "output": "Yo"},
    *SLIDING_DEMOS,
    {"instruction": "Add 2 and 3.", "input": "Use integers.", "output": "2 + 3 = 5."},
    {"instruction": "Describe a fox.", "input": "", "output": "The quick brown fox jumps over the lazy dog."},
    {"instruction": "  Translate into French.  ", "input": " Hello ", "output": " Bonjour "},
]

#: A budget that splits the demonstrations' own forward in two groups, keeps all five tasks in one bucket, runs the
#: 154-token demonstration alone (over budget: 5 x (154 + 40) slots) and stacks the others two by two.
SMALL_BUDGET = 800


class ForwardLog:
    """Records the shape of every forward `score_candidates` runs on an engine."""

    def __init__(self, engine: ScoringEngine, monkeypatch):
        self.prefix_forwards: list[tuple[int, int]] = []  # (candidates, padded length)
        self.task_forwards: list[tuple[int, int, int]] = []  # (candidates, rows, token slots per row)
        stacked, scored = engine._stacked_prefix_caches, engine._score_stacked

        def log_prefixes(prefixes, starts):
            self.prefix_forwards.append((len(prefixes), max(len(p) for p in prefixes)))
            return stacked(prefixes, starts)

        def log_tasks(kv, slots, first, last, longest, prep):
            size, width = prep["ids"].shape
            self.task_forwards.append((last - first, (last - first) * size, longest + width))
            return scored(kv, slots, first, last, longest, prep)

        monkeypatch.setattr(engine, "_stacked_prefix_caches", log_prefixes)
        monkeypatch.setattr(engine, "_score_stacked", log_tasks)


def _engine(prospector, tasks, max_batch_tokens):
    encoder = SegmentEncoder(prospector.tokenizer)
    encoded = [encoder.encode_task(t, j)[0] for j, t in enumerate(examples_from_rows(tasks))]
    demos = [encoder.encode_demo(c)[0] for c in examples_from_rows(MIXED_DEMOS)]
    return encoder, ScoringEngine(prospector.model, encoded, max_batch_tokens=max_batch_tokens), demos


@pytest.fixture(params=["llama", "gemma3", "mistral"])
def any_prospector(request, tiny_prospector, make_sliding_prospector):
    """The tiny Llama and the tiny sliding-window models (Gemma 3: sliding and full layers; Mistral: all sliding)."""
    return tiny_prospector if request.param == "llama" else make_sliding_prospector(request.param)


def test_demos_have_very_different_lengths(tiny_prospector):
    """The demonstrations range from a few tokens to several sliding windows."""
    _, _, demos = _engine(tiny_prospector, [{"instruction": "a", "input": "", "output": "b"}], 1)
    lengths = sorted(len(d) for d in demos)
    assert lengths[0] <= 16 and lengths[-1] >= 150


@pytest.mark.parametrize("max_batch_tokens", [SMALL_BUDGET, 100_000])
def test_batched_scores_equal_one_at_a_time(any_prospector, tasks, max_batch_tokens, monkeypatch):
    """Stacked candidates score as one candidate at a time within 1e-5 (float32), zero-shot prefix included."""
    encoder, engine, demos = _engine(any_prospector, tasks, max_batch_tokens)
    prefixes = [*demos, [encoder.bos_id]]
    single = np.stack([engine.score(p) for p in prefixes])
    log = ForwardLog(engine, monkeypatch)
    batched = engine.score_candidates(prefixes)
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-5)
    assert max(candidates for candidates, _, _ in log.task_forwards) > 1, "nothing was stacked"
    if max_batch_tokens == SMALL_BUDGET:
        assert len(log.prefix_forwards) > 1 and len(log.task_forwards) > len(engine.batches)
    else:
        assert len(log.prefix_forwards) == 1 and len(log.task_forwards) == len(engine.batches)


def test_batched_scores_equal_the_reference_loop(any_prospector, tasks):
    """Stacked one-shot scores equal the reference NUGGETS loop's, and so do the golden scores."""
    cands, task_examples = examples_from_rows(MIXED_DEMOS), examples_from_rows(tasks)
    z_ref, o_ref = reference_nuggets(any_prospector.model, any_prospector.tokenizer, cands, task_examples)
    encoder, engine, demos = _engine(any_prospector, tasks, SMALL_BUDGET)
    z, o = engine.score([encoder.bos_id]), engine.score_candidates(demos)
    np.testing.assert_allclose(o, o_ref, atol=1e-4)
    np.testing.assert_array_equal(golden_from_scores(o, z)[0], golden_from_scores(o_ref, z_ref)[0])


def test_batched_own_log_probs_equal_the_prefix_forward(any_prospector, tasks):
    """The demonstrations' own log-probabilities from the stacked forward equal `prefix_cache_and_log_probs`."""
    _, engine, demos = _engine(any_prospector, tasks, SMALL_BUDGET)
    starts = [1 + k % 5 if k % 3 else None for k in range(len(demos))]
    _, own = engine.score_candidates_and_log_probs(demos, starts)
    for demo, start, values in zip(demos, starts, own, strict=True):
        expected = engine.prefix_cache_and_log_probs(demo, start)[1]
        if start is None:
            assert values is None and expected is None
        else:
            assert values.shape == (len(demo) - start,)
            np.testing.assert_allclose(values, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("max_candidates", [None, 1, 2])
def test_task_forwards_respect_the_token_budget(tiny_prospector, tasks, monkeypatch, max_candidates):
    """Every forward holds at most `max_batch_tokens` token slots and `max_candidates` candidates, unless alone."""
    _, engine, demos = _engine(tiny_prospector, tasks, SMALL_BUDGET)
    log = ForwardLog(engine, monkeypatch)
    engine.score_candidates(demos, max_candidates=max_candidates)
    for candidates, longest in log.prefix_forwards:
        assert candidates == 1 or candidates * longest <= SMALL_BUDGET
    assert sum(candidates for candidates, _ in log.prefix_forwards) == len(demos)
    for candidates, rows, slots in log.task_forwards:
        assert candidates == 1 or rows * slots <= SMALL_BUDGET
        assert max_candidates is None or candidates <= max_candidates
    assert any(rows * slots > SMALL_BUDGET for _, rows, slots in log.task_forwards), "no over-long candidate alone"
    assert max(candidates for candidates, _, _ in log.task_forwards) == (max_candidates or 2)


def test_plan_candidate_groups_sorts_longest_first_within_budget():
    """Groups are runs of the longest-first order, within budget and cap; a candidate too long alone stands alone."""
    lengths = [5, 50, 12, 7, 30, 400, 12]
    groups = plan_candidate_groups(lengths, rows_per_candidate=2, width=10, max_batch_tokens=200, max_candidates=3)
    assert [i for g in groups for i in g] == sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    assert groups[0] == [5] and groups[1] == [1]
    for group in groups:
        assert len(group) <= 3
        assert len(group) == 1 or len(group) * 2 * (lengths[group[0]] + 10) <= 200
    assert plan_candidate_groups([3, 3, 3], rows_per_candidate=1, width=0, max_batch_tokens=9) == [[0, 1, 2]]
    assert plan_candidate_groups([], rows_per_candidate=1, width=0, max_batch_tokens=9) == []


def test_score_candidates_checks_its_arguments(tiny_prospector, tasks):
    """Bad starts, an empty prefix or a bad cap are refused with what is wrong."""
    _, engine, demos = _engine(tiny_prospector, tasks, SMALL_BUDGET)
    with pytest.raises(ValueError, match=r"`score_from\[0\]` must be in \[1, "):
        engine.score_candidates_and_log_probs(demos[:1], [0])
    with pytest.raises(ValueError, match="2 entries for 1 prefixes"):
        engine.score_candidates_and_log_probs(demos[:1], [1, 1])
    with pytest.raises(ValueError, match="Prefix 0 is empty"):
        engine.score_candidates([[]])
    with pytest.raises(ValueError, match="`max_candidates` must be a positive integer"):
        engine.score_candidates(demos, max_candidates=0)
    assert engine.score_candidates([]).shape == (0, len(tasks))


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
def test_scorer_with_candidates_per_forward_matches_the_default(
    tiny_prospector, make_sliding_prospector, candidates, tasks, architecture
):
    """`candidates_per_forward` gives the default path's scores, signals, flags and counters (duplicates, empties)."""
    prospector = tiny_prospector if architecture == "llama" else make_sliding_prospector(architecture)
    rows = examples_from_rows([*candidates, *MIXED_DEMOS])
    default = GoldenScorer(prospector, tasks, max_batch_tokens=SMALL_BUDGET)
    stacked = GoldenScorer(prospector, tasks, max_batch_tokens=SMALL_BUDGET, candidates_per_forward=4)
    expected, result = default.score_examples(rows), stacked.score_examples(rows)
    for key in ("one_shot", "nuggets_gain", "alignment", "completeness"):
        np.testing.assert_allclose(result[key], expected[key], rtol=0, atol=1e-5)
    for key in ("golden_score", "demo_truncated", "flags"):
        assert np.array_equal(result[key], expected[key]), key
    assert stacked.stats == default.stats
    assert stacked.stats["duplicates_reused"] > 0 and stacked.stats["signals_from_demo_forward"] > 0


def test_candidates_per_forward_is_a_checked_setting(tiny_prospector, tasks):
    """The setting is validated, survives `with_options` and pickling, and changes the fingerprint."""
    import pickle

    from datasets.fingerprint import Hasher

    with pytest.raises(ValueError, match="`candidates_per_forward` must be a positive integer, got 0"):
        GoldenScorer(tiny_prospector, tasks, candidates_per_forward=0)
    scorer = GoldenScorer(tiny_prospector, tasks, candidates_per_forward=8)
    assert scorer.with_options(num_tasks=2).candidates_per_forward == 8
    assert pickle.loads(pickle.dumps(scorer)).candidates_per_forward == 8
    assert Hasher.hash(scorer) != Hasher.hash(scorer.with_options(candidates_per_forward=1))
    old = GoldenScorer.__new__(GoldenScorer)
    state = scorer.__getstate__()
    del state["candidates_per_forward"]
    old.__setstate__(state)
    assert old.candidates_per_forward == 1
