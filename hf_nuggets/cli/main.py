"""`hf-nuggets`: the entry point, which hands each command to its module."""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: hf-nuggets <command> [options]

commands:
  score DATA [--columns instruction=Q,output=A] [--tasks TASKS|auto] [--out DIR] [--model M] [--top 5]
             [--push_to_hub REPO_ID]                                  score a dataset by golden score
  demo [--out DIR] [--max_seconds S]                                  score the shipped sample with the defaults
  refine DATA [--size 100] [--columns ...] [--out tasks.jsonl]        build a refined task set
  card DIR [--out OUT] [--columns ...] [--overwrite]                  write the dataset card of a scored folder
  push DIR REPO_ID [--top 5] [--private] [--token T]                  publish a scored folder to the Hub
  eval --model M --baseline FILE [--judge local|openai] [--out DIR]   AlpacaEval win rate against a baseline
  payoff DATA --eval EVAL_SET [--model BASE] [--top 5] [--judge local]  fine-tune on the nuggets vs random rows, judge

DATA is a .jsonl, .json, .csv or .parquet file (UTF-8), a folder saved with save_to_disk, or a Hub dataset id, with
instruction/input/output columns or a messages column of chat turns; --columns maps other names. Every command
checks its input before loading a model, and hides the progress bars of datasets and transformers unless --verbose.

Run `hf-nuggets <command> --help` for the options of a command."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `hf-nuggets`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "refine":
        from .refine import refine_main

        return refine_main(rest)
    if command == "eval":
        from .evaluate import eval_main

        return eval_main(rest)
    if command == "payoff":
        from .payoff import payoff_main

        return payoff_main(rest)
    if command in ("card", "push"):
        from .publish import card_main, push_main

        return card_main(rest) if command == "card" else push_main(rest)
    if command not in ("score", "demo"):
        print(f"hf-nuggets: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    from .score import score_main

    return score_main(command, rest)


if __name__ == "__main__":
    sys.exit(main())
