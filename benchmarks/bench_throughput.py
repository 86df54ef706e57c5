"""Engine throughput at scale, and the time it projects for an Alpaca-size run (52,002 rows x 100 tasks).

Tasks and candidates are drawn from the shipped sample (its first `--tasks` rows are the tasks, the next
`--candidates` rows the candidates; the sample is repeated when more are asked for), so a 100-task run needs no
other data. It prints pairs per second after a warm-up, and the projected time of `--target_rows` x
`--target_tasks` pairs at that rate.

    python benchmarks/bench_throughput.py --device cuda --tasks 100 --candidates 512 --max_batch_tokens 65536
    python benchmarks/bench_throughput.py --tasks 16 --candidates 32            # a CPU check
"""

from __future__ import annotations

import argparse
import inspect
import time

import torch

from hf_nuggets import GoldenScorer, load_prospector, load_sample_dataset
from hf_nuggets.data.formatting import examples_from_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="Prospector (default: the embedded SmolLM2-135M-Instruct).")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=16, help="Candidates scored before timing.")
    parser.add_argument("--max_batch_tokens", type=int, default=4096)
    parser.add_argument("--candidates_per_forward", type=int, default=None)
    parser.add_argument("--target_rows", type=int, default=52_002)
    parser.add_argument("--target_tasks", type=int, default=100)
    args = parser.parse_args()

    rows = [row for row in load_sample_dataset().to_list() if row["output"].strip()]  # a task needs an answer
    need = args.tasks + args.candidates + args.warmup
    rows = (rows * (need // len(rows) + 1))[:need]
    tasks = rows[: args.tasks]
    warmup = examples_from_rows(rows[args.tasks : args.tasks + args.warmup])
    candidates = examples_from_rows(rows[args.tasks + args.warmup :])
    prospector = load_prospector(args.model, device=args.device, dtype=args.dtype)
    options = {"max_batch_tokens": args.max_batch_tokens}
    if args.candidates_per_forward is not None:
        if "candidates_per_forward" not in inspect.signature(GoldenScorer).parameters:
            raise SystemExit("This version of GoldenScorer has no `candidates_per_forward`.")
        options["candidates_per_forward"] = args.candidates_per_forward
    scorer = GoldenScorer(prospector, tasks, **options)
    scorer.zero_shot_scores  # noqa: B018 - set-up (task encoding, zero-shot scores, gate calibration) not timed
    scorer.score_examples(warmup)
    sync = torch.cuda.synchronize if prospector.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    scorer.score_examples(candidates)
    sync()
    seconds = time.perf_counter() - start
    pairs = len(candidates) * len(scorer.tasks)
    rate = pairs / seconds
    projected = args.target_rows * args.target_tasks / rate
    name = (
        torch.cuda.get_device_name() if prospector.device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    )
    print(f"device: {name}; model {prospector.name} in {str(prospector.model.dtype).replace('torch.', '')}")
    print(f"options: {options}")
    print(f"workload: {len(candidates)} candidates x {len(scorer.tasks)} tasks = {pairs} pairs in {seconds:.2f} s")
    print(f"throughput: {rate:.1f} pairs/s")
    print(
        f"projected: {args.target_rows} x {args.target_tasks} pairs in {projected / 60:.1f} min "
        f"({projected / 3600:.2f} h) at this rate"
    )


if __name__ == "__main__":
    main()
