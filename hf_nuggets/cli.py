"""The `hf-nuggets` command line: a thin layer of argument parsing over the library."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from .config import ScoreConfig

USAGE = """usage: hf-nuggets <command> [options]

commands:
  score DATA [--tasks TASKS|auto] [--out DIR] [--model M] [--top 5]   score a dataset by golden score
  demo [--out DIR] [--max_seconds S]                                  score the shipped sample with the defaults
  refine DATA [--size 100] [--out tasks.jsonl] [--selector kcenter]    build a refined task set
  card DIR [--out OUT]                                                write the dataset card of a scored folder
  push DIR REPO_ID [--top 5] [--private]                              publish a scored folder to the Hub
  eval --model M --baseline FILE [--judge local|openai] [--out DIR]   AlpacaEval win rate against a baseline

Run `hf-nuggets <command> --help` for the options of a command."""


def _parser(with_data: bool):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(ScoreConfig, prog="hf-nuggets score" if with_data else "hf-nuggets demo")
    if with_data:
        parser.add_argument("data", help="JSON/JSONL/CSV/parquet file, saved dataset folder, or Hub dataset id.")
    parser.add_argument("--quiet", action="store_true", help="No progress bar and no summary printout.")
    return parser


def _run(config: ScoreConfig, dataset, source: str, quiet: bool) -> dict:
    from .pipeline import prospect
    from .prospector import load_prospector
    from .scorer import GoldenScorer
    from .summary import flaw_report, format_summary

    device = config.device
    if device is None and config.sharded():
        import torch

        if torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", 1)) > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
    prospector = load_prospector(
        config.model, revision=config.revision, gguf_file=config.gguf_file, device=device, dtype=config.dtype
    )
    auto = config.auto_tasks()
    task_set, auto_options = None, None
    if auto:
        task_set = "auto"
        auto_options = {"sample_size": config.task_sample_size, "seed": config.task_seed}
        if config.num_tasks is not None:
            auto_options["num_tasks"] = config.num_tasks
    scorer = GoldenScorer(
        prospector,
        None if auto else config.tasks,
        num_tasks=None if auto else config.num_tasks,
        columns=config.column_mapping(),
        template=config.template,
        limits=config.limits(),
        return_scores=config.return_scores,
        max_batch_tokens=config.max_batch_tokens,
        gate_settings=config.gate_settings(),
    )
    if config.sharded():
        from .scale import prospect_sharded

        early = None
        if config.early_stop:
            from .early_stop import EarlyStopping

            early = EarlyStopping(
                delta=config.early_stop_delta,
                chunk=config.early_stop_chunk,
                warmup=config.early_stop_warmup,
                seed=config.seed,
            )
        scored, summary = prospect_sharded(
            dataset,
            scorer,
            config.out,
            task_set=task_set,
            auto_options=auto_options,
            top_percent=config.top,
            limit=config.limit,
            shard_size=config.shard_size or 64,
            resume=config.resume,
            timeout=config.timeout,
            dedup_threshold=config.dedup_threshold if config.dedup else None,
            early_stop=early,
            source=source,
            progress=not quiet,
            gates=config.selection_gates(),
        )
        if summary is not None and not quiet:
            shards = summary["sharding"]
            print(
                f"Scored {summary['rows_scored']} rows in {shards['shards']} shards over {shards['processes']} "
                f"process(es) ({shards['rows_scored_this_run']} rows this run). Wrote {summary['files']['parquet']}, "
                f"{summary['files']['jsonl']} and {config.out}/summary.json"
            )
        return summary or {}
    scored, summary = prospect(
        dataset,
        scorer,
        config.out,
        task_set=task_set,
        auto_options=auto_options,
        top_percent=config.top,
        limit=config.limit,
        max_seconds=config.max_seconds,
        batch_size=config.batch_size,
        source=source,
        progress=not quiet,
        gates=config.selection_gates(),
    )
    if not quiet:
        print(format_summary(summary, scored.to_dict(), gates=config.selection_gates()))
        if "flaw" in scored.column_names:
            print("\n" + flaw_report(scored, gates=config.selection_gates()))
        print(f"\nWrote {summary['files']['parquet']}, {summary['files']['jsonl']} and {config.out}/summary.json")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `hf-nuggets`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "refine":
        return refine_main(rest)
    if command == "eval":
        from .eval_cli import eval_main

        return eval_main(rest)
    if command in ("card", "push"):
        from .hub_cli import card_main, push_main

        return card_main(rest) if command == "card" else push_main(rest)
    if command not in ("score", "demo"):
        print(f"hf-nuggets: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = _parser(with_data=command == "score")
    try:
        config, extra = parser.parse_args_into_dataclasses(args=rest)
    except ValueError as err:
        parser.error(str(err))
    if config.num_processes > 1 and "WORLD_SIZE" not in os.environ:
        from .scale import launch_processes, strip_option

        return launch_processes([command, *strip_option(rest, "num_processes")], config.num_processes)
    from .data import load_data, load_sample_dataset, sample_dataset_path

    try:
        if command == "score":
            dataset, source = load_data(extra.data, split=config.split, streaming=config.streaming), extra.data
        else:
            if config.num_tasks is None:
                config.num_tasks = 8
            dataset, source = load_sample_dataset(), str(sample_dataset_path().name)
        _run(config, dataset, source, extra.quiet)
    except (
        ValueError,
        KeyError,
        TypeError,
        FileNotFoundError,
        PermissionError,
        ImportError,
        OSError,
        RuntimeError,
    ) as err:
        print(f"hf-nuggets {command}: error: {err}", file=sys.stderr)
        return 1
    return 0


def refine_main(argv: Sequence[str]) -> int:
    """`hf-nuggets refine DATA ...`: write a refined task set."""
    from transformers import HfArgumentParser

    from .config import RefineConfig

    parser = HfArgumentParser(RefineConfig, prog="hf-nuggets refine")
    parser.add_argument("data", help="JSON/JSONL/CSV/parquet file, saved dataset folder, or Hub dataset id.")
    try:
        config, extra = parser.parse_args_into_dataclasses(args=list(argv))
    except ValueError as err:
        parser.error(str(err))
    from .data import load_data
    from .refine import refine_task_set

    try:
        tasks = refine_task_set(
            load_data(extra.data, split=config.split),
            size=config.size,
            top_quality=config.top_quality,
            pool=config.pool,
            quality=config.quality,
            selector=config.selector,
            dedup=config.dedup,
            dedup_threshold=config.dedup_threshold,
            embedder=config.embedder,
            seed=config.seed,
            prospector=config.model,
            template=config.template,
        )
    except (ValueError, KeyError, TypeError, FileNotFoundError, ImportError, OSError) as err:
        print(f"hf-nuggets refine: error: {err}", file=sys.stderr)
        return 1
    if config.out.endswith(".parquet"):
        tasks.to_parquet(config.out)
    else:
        tasks.to_json(config.out, lines=True, force_ascii=False)
    print(f"Wrote {len(tasks)} tasks to {config.out} ({tasks.info.description})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
