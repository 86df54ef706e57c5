"""`hf-nuggets score DATA ...` and `hf-nuggets demo`: a prospecting run from the command line."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from ..run.config import ScoreConfig
from .common import TOKEN_HELP, VERBOSE_HELP, run_command

#: The exit code of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPTED_EXIT_CODE = 130


def _parser(with_data: bool):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(ScoreConfig, prog="hf-nuggets score" if with_data else "hf-nuggets demo")
    if with_data:
        parser.add_argument("data", help="JSON/JSONL/CSV/parquet file, saved dataset folder, or Hub dataset id.")
    parser.add_argument("--quiet", action="store_true", help="No progress bar and no summary printout.")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--token", default=None, help=TOKEN_HELP)
    parser.add_argument(
        "--push_to_hub",
        default=None,
        metavar="REPO_ID",
        help="At the end of the run, publish the scored rows and the top N%% (the run's --top, else 5) as this Hub "
        "dataset repo, as `hf-nuggets push OUT REPO_ID` would.",
    )
    return parser


def report(config: ScoreConfig, scored, summary: dict) -> None:
    """Print what a run did: the summary, the flaw report of the sample, and every file written."""
    from ..run.outputs import written_files
    from ..summary import flaw_report, format_summary

    files = written_files(summary, config.out)
    wrote = "Wrote " + ", ".join(files[:-1]) + f" and {files[-1]}"
    if config.sharded():
        shards = summary["sharding"]
        print(
            f"Scored {summary['rows_scored']} rows in {shards['shards']} shards over {shards['processes']} "
            f"process(es) ({shards['rows_scored_this_run']} rows this run)."
        )
        if config.streaming:  # a stream is never held in memory whole: no best and worst lists
            print(wrote)
            return
    print(format_summary(summary, scored.to_dict(), gates=config.selection_gates()))
    if "flaw" in scored.column_names:
        print("\n" + flaw_report(scored, gates=config.selection_gates()))
    print(f"\n{wrote}")


def interrupted_message(config: ScoreConfig, err: KeyboardInterrupt) -> str:
    """What Ctrl-C left behind, in one line: the partial files of `prospect`, or the checkpoint of a sharded run."""
    from ..run.checkpoint import CHECKPOINT_DIR
    from ..run.prospecting import RunInterrupted

    if isinstance(err, RunInterrupted):
        return str(err)
    checkpoint = os.path.join(config.out, CHECKPOINT_DIR)
    if config.sharded() and os.path.isdir(checkpoint):
        return f"The finished shards are kept in {checkpoint}: run the same command again to resume."
    return "No scored.partial.* was written."


def score_main(command: str, rest: Sequence[str]) -> int:
    """`hf-nuggets score DATA ...` (`command="score"`) or `hf-nuggets demo ...` (`command="demo"`).

    The data file and the column mapping are checked before the model loads (see `hf_nuggets.data.checks`).
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = _parser(with_data=command == "score")
    try:
        config, extra = parser.parse_args_into_dataclasses(args=rest)
    except ValueError as err:
        parser.error(str(err))
    if config.num_processes > 1 and "WORLD_SIZE" not in os.environ:
        from ..run.launch import launch_processes, strip_option

        return launch_processes([command, *strip_option(rest, "num_processes")], config.num_processes)

    def action() -> int:
        from ..data.checks import CLI, check_columns
        from ..data.loading import load_data, load_sample_dataset, sample_dataset_path
        from ..run.build import prospect_with_config

        if extra.push_to_hub is not None:  # a bad repo id or no token fails now, not after the scoring
            from ..publish.hub import check_repo_id, resolve_token

            check_repo_id(extra.push_to_hub)
            resolve_token(extra.token, caller=CLI)
        if command == "score":
            dataset, source = load_data(extra.data, split=config.split, streaming=config.streaming), extra.data
        else:
            if config.num_tasks is None:
                config.num_tasks = 8
            dataset, source = load_sample_dataset(), str(sample_dataset_path().name)
        if dataset.column_names:  # a stream of unknown columns is checked by the run
            check_columns(dataset.column_names, config.column_mapping(), source=source, caller=CLI)
        try:
            scored, summary = prospect_with_config(config, dataset, source=source, progress=not extra.quiet)
        except KeyboardInterrupt as err:
            print(f"hf-nuggets {command}: interrupted: {interrupted_message(config, err)}", file=sys.stderr)
            return INTERRUPTED_EXIT_CODE
        if summary is None:  # another process of a sharded run
            return 0
        if not extra.quiet:
            report(config, scored, summary)
        if extra.push_to_hub is not None:
            from ..publish.hub import push_scored_dataset, run_top_percent

            commit = push_scored_dataset(
                scored, extra.push_to_hub, top_percent=run_top_percent(summary), summary=summary, token=extra.token
            )
            print(f"Pushed to {commit.repo_url} ({commit.commit_url}).")
        return 0

    return run_command(command, action, verbose=extra.verbose, token=extra.token)
