"""The reference NUGGETS loop against the engine, in float32 and at the engine's default dtype, in one run.

For each it prints candidate-task pairs per second and its agreement with the float32 reference: the share of rows
whose golden score is equal, the overlap of the top 5% (ranked as `select_top` ranks), and the Spearman correlation
of `nuggets_gain`. With `--price_signals` it also prices the alignment and completeness signals (the same
candidates against 16 tasks with and without them). The last line is
`speedup: <engine at its default dtype pairs/s / reference pairs/s>`.

    python benchmarks/bench_scoring.py                          # embedded SmolLM2-135M-Instruct, 48 rows x 8 tasks
    python benchmarks/bench_scoring.py --candidates 96 --tasks 16 --candidates_per_forward 8
    python benchmarks/bench_scoring.py --model HuggingFaceTB/SmolLM2-360M-Instruct --device cuda
"""

from __future__ import annotations

import argparse
import inspect
import platform
import time

import numpy as np
import torch

from hf_nuggets import load_default_task_set, load_prospector, load_sample_dataset
from hf_nuggets.data.formatting import examples_from_rows
from hf_nuggets.scoring.engine import golden_from_scores
from hf_nuggets.scoring.prospector import auto_dtype, pick_device
from hf_nuggets.scoring.reference import reference_nuggets
from hf_nuggets.scoring.scorer import GoldenScorer
from hf_nuggets.selection import top_indices


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their average rank."""
    order = np.argsort(x, kind="stable")
    ranked = np.empty(len(x), dtype=np.float64)
    ranked[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        if tied.sum() > 1:
            ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson's on average ranks)."""
    return float(np.corrcoef(ranks(np.asarray(a)), ranks(np.asarray(b)))[0, 1])


def agreement(golden: np.ndarray, gain: np.ndarray, ref_golden: np.ndarray, ref_gain: np.ndarray) -> str:
    """Equal golden scores, top-5% overlap and gain Spearman against the reference, as one line."""
    top = set(top_indices(golden, gain, None, percent=5).tolist())
    ref_top = set(top_indices(ref_golden, ref_gain, None, percent=5).tolist())
    overlap = len(top & ref_top) / len(ref_top)
    return (
        f"equal golden scores {np.mean(golden == ref_golden):.1%}, top-5% overlap {overlap:.2f} "
        f"({len(ref_top)} rows), "
        f"gain Spearman {spearman(gain, ref_gain):.4f}"
    )


def time_engine(prospector, tasks, candidates, options: dict, repeats: int) -> tuple[float, dict]:
    """Best-of-`repeats` seconds of a full engine run (zero-shot scores included), and its last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        scorer = GoldenScorer(prospector, tasks, **options)
        scorer.zero_shot_scores  # noqa: B018 - part of the timed run
        result = scorer.score_examples(candidates)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="Prospector (default: the embedded SmolLM2-135M-Instruct).")
    parser.add_argument("--candidates", type=int, default=48, help="Rows of the shipped sample to score.")
    parser.add_argument("--tasks", type=int, default=8, help="Tasks of the shipped task set.")
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=1, help="Engine runs per dtype; the best is kept.")
    parser.add_argument(
        "--candidates_per_forward", type=int, default=None, help="Batch candidates in the engine (when supported)."
    )
    parser.add_argument("--price_signals", action="store_true", help="Also price the alignment/completeness signals.")
    args = parser.parse_args()

    device = pick_device(args.device)
    default_dtype, reason = auto_dtype(device)
    rows = load_sample_dataset().select(range(args.candidates)).to_list()
    tasks = load_default_task_set(args.tasks)
    candidates, task_examples = examples_from_rows(rows), examples_from_rows(tasks)
    pairs = len(candidates) * len(task_examples)
    fp32 = load_prospector(args.model, device=args.device, dtype="float32")
    print(f"machine: {platform.machine()} {torch.get_num_threads()} threads, device {device}")
    print(f"model: {fp32.name}; default dtype here: {str(default_dtype).replace('torch.', '')} ({reason})")
    print(f"workload: {len(candidates)} candidates x {len(task_examples)} tasks = {pairs} pairs")

    start = time.perf_counter()
    ref_zero, ref_one = reference_nuggets(fp32.model, fp32.tokenizer, candidates, task_examples)
    reference_s = time.perf_counter() - start
    ref_golden, ref_gain = golden_from_scores(ref_one, ref_zero)
    print(f"reference (float32): {reference_s:.2f} s, {pairs / reference_s:.2f} pairs/s")

    options = {}
    if args.candidates_per_forward is not None:
        if "candidates_per_forward" not in inspect.signature(GoldenScorer).parameters:
            raise SystemExit("This version of GoldenScorer has no `candidates_per_forward`.")
        options["candidates_per_forward"] = args.candidates_per_forward
    runs = [("float32", fp32)]
    if default_dtype != torch.float32:
        runs.append((str(default_dtype).replace("torch.", ""), load_prospector(args.model, device=args.device)))
    engine_s = {}
    for name, prospector in runs:
        seconds, result = time_engine(prospector, tasks, candidates, options, args.repeats)
        engine_s[name] = seconds
        line = agreement(result["golden_score"], result["nuggets_gain"], ref_golden, ref_gain)
        print(
            f"engine ({name}{', batched' if options else ''}): {seconds:.2f} s, {pairs / seconds:.2f} pairs/s; {line}"
        )
        if name == "float32":
            print(
                f"  max one-shot score difference from the reference: {np.abs(result['one_shot'] - ref_one).max():.2e}"
            )
    if args.price_signals:
        signal_cost(fp32, candidates, load_default_task_set(16))
    default_name = str(default_dtype).replace("torch.", "")
    print(f"speedup: {reference_s / engine_s[default_name]:.2f}")


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
