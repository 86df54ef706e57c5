"""Fine-tune a small model with TRL's `SFTTrainer` on the nuggets of the shipped sample data only.

`GoldenFilterCallback.attach(trainer)` scores the trainer's rows with the embedded prospector (SmolLM2-135M-Instruct)
against a few tasks of the shipped task set, keeps the top `--top_percent`% and replaces `trainer.train_dataset`
with them, so the step count and learning-rate schedule follow the kept rows. The trainee is a copy of the same
SmolLM2-135M. The defaults (32 rows, 4 tasks, 2 optimizer steps) cost about 4 minutes of CPU time, two thirds of it
scoring; use `--rows`/`--num_tasks` to trade time for a larger sample.

    pip install trl                # besides hf-nuggets and the embedded model (see the README)
    python examples/sft_with_nuggets.py [--rows 32] [--top_percent 25] [--num_tasks 4] [--output_dir sft-nuggets-out]

`--prospector` and `--model` take any model folder or Hub id instead of the embedded model.
"""

from __future__ import annotations

import argparse
import copy
import time

from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_nuggets import load_default_task_set, load_prospector, load_sample_dataset
from hf_nuggets.data.formatting import Example, render_prompt
from hf_nuggets.train.callback import GoldenFilterCallback


def as_text(row: dict) -> str:
    """The training text of a row: the NUGGETS prompt followed by the answer (SFTTrainer appends EOS)."""
    example = Example(row["instruction"], row["input"] or "", row["output"] or "")
    return render_prompt(example) + example.output


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32, help="rows of the sample data to train on (300 at most)")
    parser.add_argument("--top_percent", type=float, default=25, help="percentage of rows to keep")
    parser.add_argument("--num_tasks", type=int, default=4, help="tasks of the shipped task set to score against")
    parser.add_argument("--epochs", type=float, default=1, help="training epochs over the kept rows")
    parser.add_argument("--output_dir", default="sft-nuggets-out", help="trainer output and the kept-rows record")
    parser.add_argument("--prospector", default=None, help="prospector model (default: the embedded SmolLM2-135M)")
    parser.add_argument("--model", default=None, help="model to fine-tune (default: a copy of the prospector)")
    parser.add_argument(
        "--gates", default="all", help="gates that keep rows out: all, none, or names (empty,placeholder,...)"
    )
    args = parser.parse_args(argv)

    from trl import SFTConfig, SFTTrainer

    start = time.perf_counter()
    data = load_sample_dataset().select(range(min(args.rows, 300)))
    tasks = load_default_task_set(args.num_tasks)
    prospector = load_prospector(args.prospector, device="cpu")
    if args.model is None:
        model, tokenizer = copy.deepcopy(prospector.model), prospector.tokenizer
    else:
        model, tokenizer = AutoModelForCausalLM.from_pretrained(args.model), AutoTokenizer.from_pretrained(args.model)
    n_flawed = sum(flaw is not None for flaw in data["flaw"])
    print(f"Prospector: {prospector.name}, {len(tasks)} tasks; data: {len(data)} sample rows, {n_flawed} flawed")

    config = SFTConfig(
        output_dir=args.output_dir,
        per_device_train_batch_size=4,
        num_train_epochs=args.epochs,
        learning_rate=5e-5,
        max_length=128,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,  # prints each log dict on its own line
        seed=0,
    )
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=data, processing_class=tokenizer, formatting_func=as_text
    )
    # The one line: filters trainer.train_dataset now, before train() builds its dataloader and schedule.
    gates = None if args.gates == "none" else args.gates
    callback = GoldenFilterCallback(top_percent=args.top_percent, prospector=prospector, task_set=tasks, gates=gates)
    callback.attach(trainer)

    record, kept = callback.record, trainer.train_dataset
    kept_flawed = sum(flaw is not None for flaw in kept["flaw"])
    print(
        f"Kept {record['rows_kept']} of {record['rows_total']} rows (top {args.top_percent:g}%, golden score >= "
        f"{record['score_threshold']:.3g}); record: {args.output_dir}/nuggets_kept_rows.json"
    )
    print(f"Rows flagged by the gates (never kept): {record['rows_gated']}")
    print(f"Flawed rows kept: {kept_flawed} of {record['rows_kept']} (of {n_flawed} flawed rows in the data)")
    for row in kept.select(range(min(3, len(kept)))):
        print(f"  kept: {row['instruction'][:60]!r} -> {row['output'][:50]!r}")

    result = trainer.train()
    print(
        f"Trained {result.global_step} optimizer steps on {len(kept)} rows "
        f"(batch 4, {args.epochs:g} epoch(s)); final train loss {result.training_loss:.3f}; "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    return {"record": record, "global_step": result.global_step}


if __name__ == "__main__":
    main()
