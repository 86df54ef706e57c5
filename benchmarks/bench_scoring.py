"""Engine vs the reference NUGGETS loop: same model, same data, one run.

Prints candidate-task pairs per second for each, their ratio, and how far the scores differ. It also prices the
alignment and completeness signals: the same candidates scored against 16 tasks with and without them (goal: under
15% extra). The last line is `speedup: <engine pairs/s divided by reference pairs/s>`.

    python benchmarks/bench_scoring.py                      # embedded SmolLM2-135M-Instruct, 24 rows x 8 tasks
    python benchmarks/bench_scoring.py --candidates 64 --tasks 16 --model HuggingFaceTB/SmolLM2-360M-Instruct
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from hf_nuggets import load_default_task_set, load_prospector, load_sample_dataset
from hf_nuggets.data.formatting import examples_from_rows
from hf_nuggets.scoring.engine import golden_from_scores
from hf_nuggets.scoring.reference import reference_nuggets
from hf_nuggets.scoring.scorer import GoldenScorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="Prospector (default: the embedded SmolLM2-135M-Instruct).")
    parser.add_argument("--candidates", type=int, default=24, help="Rows of the shipped sample to score.")
    parser.add_argument("--tasks", type=int, default=8, help="Tasks of the shipped task set.")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--signal_tasks", type=int, default=16, help="Tasks of the run that prices the signals.")
    args = parser.parse_args()

    prospector = load_prospector(args.model, device=args.device, dtype=args.dtype)
    rows = load_sample_dataset().select(range(args.candidates)).to_list()
    tasks = load_default_task_set(args.tasks)
    candidates, task_examples = examples_from_rows(rows), examples_from_rows(tasks)
    pairs = len(candidates) * len(task_examples)
    print(f"machine: {platform.machine()} {torch.get_num_threads()} threads, device {prospector.device}")
    print(f"model: {prospector.name} ({prospector.model.dtype})")
    print(f"workload: {len(candidates)} candidates x {len(task_examples)} tasks = {pairs} pairs")

    start = time.perf_counter()
    scorer = GoldenScorer(prospector, tasks)
    s_zero = scorer.zero_shot_scores
    result = scorer.score_examples(candidates)
    engine_s = time.perf_counter() - start

    start = time.perf_counter()
    ref_zero, ref_one = reference_nuggets(prospector.model, prospector.tokenizer, candidates, task_examples)
    reference_s = time.perf_counter() - start

    ref_golden, _ = golden_from_scores(ref_one, ref_zero)
    diff = max(np.abs(result["one_shot"] - ref_one).max(), np.abs(s_zero - ref_zero).max())
    agree = float(np.mean((result["one_shot"] > s_zero) == (ref_one > ref_zero)))
    print(f"engine: {engine_s:.2f} s, {pairs / engine_s:.2f} pairs/s")
    print(f"reference: {reference_s:.2f} s, {pairs / reference_s:.2f} pairs/s")
    print(f"max score difference: {diff:.2e}")
    print(f"indicator agreement: {agree:.4f}")
    print(f"golden scores equal: {bool(np.array_equal(result['golden_score'], ref_golden))}")
    print(f"signals from the demonstration's own forward: {scorer.stats['signals_from_demo_forward']} of {len(rows)}")
    signal_cost(prospector, candidates, load_default_task_set(args.signal_tasks))
    print(f"speedup: {reference_s / engine_s:.2f}")


def signal_cost(prospector, candidates, tasks, repeats: int = 2) -> None:
    """Time one scoring pass over `candidates` with and without the signals (zero-shot excluded), best of `repeats`."""
    times = {}
    for signals in (False, True):
        scorer = GoldenScorer(prospector, tasks, signals=signals)
        scorer.zero_shot_scores  # noqa: B018 - computed before timing
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            result = scorer.score_examples(candidates)
            best = min(best, time.perf_counter() - start)
        times[signals] = best
        if signals:
            flagged = sum(bool(f) for f in result["flags"])
    extra = times[True] / times[False] - 1
    print(
        f"signals: {len(candidates)} rows x {len(tasks)} tasks in {times[False]:.2f} s without, {times[True]:.2f} s "
        f"with alignment and completeness: {extra:+.1%} ({flagged} rows flagged)"
    )


if __name__ == "__main__":
    main()
