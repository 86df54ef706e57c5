"""Does training on the nuggets pay off? A CPU-sized run of `run_payoff` on the shipped sample data.

The shipped sample (300 rows, 40 of them deliberately flawed) is split in two: the first `--rows` rows are the
training data, scored by the embedded prospector (SmolLM2-135M-Instruct) against `--num_tasks` tasks of the shipped
task set; `--eval_rows` unflawed rows from the end of the sample are the evaluation instructions, and their reference
answers are the baseline. Copies of the same embedded model are fine-tuned on the top `--top_percent`% and on a
random sample of as many rows (and the bottom, with `--arms top,random,bottom`), answer the evaluation instructions,
and the embedded model judges the answers (`--judge local`).

    python examples/payoff_on_sample.py --out payoff-sample [--rows 48] [--eval_rows 16] [--top_percent 25]

At this size the figures test the plumbing, not the method: see the README's "Does it pay off?".
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hf_nuggets import PayoffConfig, load_sample_dataset, run_payoff
from hf_nuggets.evaluation.payoff_report import payoff_markdown


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="payoff-sample", help="report folder (the split data is written there too)")
    parser.add_argument("--rows", type=int, default=48, help="training rows: the first N rows of the sample")
    parser.add_argument("--eval_rows", type=int, default=16, help="evaluation rows: unflawed rows from the end")
    parser.add_argument("--top_percent", type=float, default=25, help="percentage of rows per arm")
    parser.add_argument("--arms", default="top,random", help="arms, among top, random, all, bottom")
    parser.add_argument("--num_tasks", type=int, default=4, help="tasks of the shipped task set to score against")
    parser.add_argument("--epochs", type=float, default=2, help="epochs over each arm's rows")
    parser.add_argument("--learning_rate", type=float, default=1e-4, help="peak learning rate")
    parser.add_argument("--batch_size", type=int, default=4, help="rows per optimizer step")
    parser.add_argument("--max_new_tokens", type=int, default=64, help="longest generated answer")
    parser.add_argument("--seed", type=int, default=0, help="seed of training and of the random arm")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sample = load_sample_dataset()
    train = sample.select(range(args.rows)).remove_columns("flaw")
    held_out = [r for r in sample.select(range(args.rows, len(sample))) if r["flaw"] is None][-args.eval_rows :]
    train.to_json(str(out / "train.jsonl"))
    with open(out / "eval.jsonl", "w", encoding="utf-8") as handle:
        for row in held_out:
            instruction = row["instruction"] + (f"\n\n{row['input']}" if row["input"] else "")
            handle.write(
                json.dumps({"instruction": instruction, "output": row["output"], "generator": "sample"}) + "\n"
            )

    config = PayoffConfig(
        data=str(out / "train.jsonl"),
        eval_set=str(out / "eval.jsonl"),
        model=None,  # the embedded SmolLM2-135M-Instruct, dequantized from its GGUF file to a float32 torch model
        prospector=None,  # the same model scores the rows
        num_tasks=args.num_tasks,
        top_percent=args.top_percent,
        arms=args.arms,
        judge="local",  # the same model judges: a plumbing check, not a trustworthy judge
        num_train_epochs=args.epochs,
        learning_rate=args.learning_rate,
        per_device_train_batch_size=args.batch_size,
        max_length=256,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        device="cpu",
        save_models=False,
        out=str(out),
    )
    report = run_payoff(config)
    print(payoff_markdown(report))
    print(f"{time.perf_counter() - started:.0f} s in all; report in {out}/payoff.json")
    return report


if __name__ == "__main__":
    main()
