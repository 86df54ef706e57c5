"""One candidate per forward vs several (`candidates_per_forward`): pairs per second and how far the scores move.

For each task count and each setting it times `GoldenScorer.score_examples` over the same candidates (the zero-shot
scores and the gate calibration are computed before timing), best of `--repeats`, and compares the scores with the
first setting's run (one candidate at a time by default). The settings are timed in rounds, so a busy
machine slows them alike.

    python benchmarks/bench_candidates.py    # embedded SmolLM2-135M-Instruct, 24 rows x 8 and x 16 tasks
    python benchmarks/bench_candidates.py --dtype bfloat16 --settings 4096:1 16384:8
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from hf_nuggets import load_default_task_set, load_prospector, load_sample_dataset
from hf_nuggets.data.formatting import examples_from_rows
from hf_nuggets.scoring.scorer import GoldenScorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="Prospector (default: the embedded SmolLM2-135M-Instruct).")
    parser.add_argument("--candidates", type=int, default=24, help="Rows of the shipped sample to score.")
    parser.add_argument("--tasks", type=int, nargs="+", default=[8, 16], help="Task counts of the shipped task set.")
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["4096:1", "4096:24", "16384:24", "65536:24"],
        help="`max_batch_tokens:candidates_per_forward` pairs; the first is the baseline of the score differences.",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    prospector = load_prospector(args.model, device=args.device, dtype=args.dtype)
    candidates = examples_from_rows(load_sample_dataset().select(range(args.candidates)).to_list())
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, {torch.get_num_threads()} threads, load {load}")
    print(f"model: {prospector.name} ({prospector.model.dtype}) on {prospector.device}")
    for num_tasks in args.tasks:
        tasks = load_default_task_set(num_tasks)
        pairs = len(candidates) * num_tasks
        print(f"\n{len(candidates)} candidates x {num_tasks} tasks = {pairs} pairs")
        settings = [tuple(int(part) for part in setting.split(":")) for setting in args.settings]
        scorers = [GoldenScorer(prospector, tasks, max_batch_tokens=b, candidates_per_forward=k) for b, k in settings]
        for scorer in scorers:
            scorer.zero_shot_scores  # noqa: B018 - computed (with the gate calibration) before timing
        best, results = [float("inf")] * len(scorers), [None] * len(scorers)
        # Rounds over every setting, best of `repeats`: a busy shared machine then slows them all alike.
        for _ in range(args.repeats):
            for k, scorer in enumerate(scorers):
                start = time.perf_counter()
                results[k] = scorer.score_examples(candidates)
                best[k] = min(best[k], time.perf_counter() - start)
        baseline = results[0]
        for (budget, per_forward), seconds, result in zip(settings, best, results, strict=True):
            diff = np.abs(result["one_shot"] - baseline["one_shot"]).max()
            same = bool(np.array_equal(result["golden_score"], baseline["golden_score"]))
            print(
                f"max_batch_tokens {budget:>6} candidates_per_forward {per_forward:>3}: {seconds:7.2f} s "
                f"{pairs / seconds:7.2f} pairs/s  max diff {diff:.1e}  golden equal {same}"
            )
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"\nload at the end: {load}")


if __name__ == "__main__":
    main()
