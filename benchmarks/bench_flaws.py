"""Where the shipped sample's deliberately flawed rows rank by golden score.

Scores the 40 flawed rows of the sample (empty output, `<nooutput>`, an answer to another question, a truncated
answer) and the first 40 good rows against the shipped task set, and prints, per configuration, the fraction of
flawed rows in the bottom half and the mean golden score of each kind of row. Chance is 0.5.

    python benchmarks/bench_flaws.py                               # alpaca template, first 8 tasks
    python benchmarks/bench_flaws.py --tasks 16 --template chat
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hf_nuggets import GoldenScorer, load_prospector, load_sample_dataset
from hf_nuggets.selection import rank_order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--template", default="alpaca")
    parser.add_argument("--good", type=int, default=40, help="How many good rows to score beside the flawed ones.")
    args = parser.parse_args()

    sample = load_sample_dataset()
    bad = [i for i, f in enumerate(sample["flaw"]) if f]
    good = [i for i, f in enumerate(sample["flaw"]) if not f][: args.good]
    subset = sample.select(sorted(bad + good))
    scorer = GoldenScorer(load_prospector(args.model), num_tasks=args.tasks, template=args.template)
    start = time.perf_counter()
    result = scorer(subset.to_dict())
    elapsed = time.perf_counter() - start
    golden, gain = np.array(result["golden_score"]), np.array(result["nuggets_gain"])
    rank = np.empty(len(golden), dtype=int)
    rank[rank_order(golden, gain)] = np.arange(len(golden))
    kinds = np.array([f or "good" for f in subset["flaw"]])
    flawed = kinds != "good"
    print(f"config: template={args.template}, tasks={args.tasks}, rows={len(subset)} ({flawed.sum()} flawed)")
    print(f"scoring time: {elapsed:.1f} s")
    for kind in sorted(set(kinds)):
        m = kinds == kind
        print(
            f"{kind}: mean golden score {golden[m].mean():.3f}, in bottom half {np.mean(rank[m] >= len(rank) / 2):.3f}"
        )
    print(f"flawed rows in the bottom half: {np.mean(rank[flawed] >= len(rank) / 2):.3f}")


if __name__ == "__main__":
    main()
