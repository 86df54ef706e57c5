"""`hf-nuggets payoff`: does training on the nuggets pay off? A thin layer over `run_payoff` (`hf_nuggets.train`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence


def payoff_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `hf-nuggets payoff DATA --eval EVAL_SET [--model BASE] [--top 5] [--judge local] ...`.

    Args:
        argv (`Sequence[str]`, *optional*): The arguments after `payoff`; `sys.argv[2:]` when omitted.

    Returns:
        `int`: The exit status (0 on success, 1 on an error, 2 on bad arguments, 130 on Ctrl-C).
    """
    from transformers import HfArgumentParser

    from ..train.payoff import PayoffConfig, run_payoff
    from .common import TOKEN_HELP, VERBOSE_HELP, run_command

    argv = list(sys.argv[2:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):  # DATA is positional
        argv = ["--data", argv[0], *argv[1:]]
    parser = HfArgumentParser(PayoffConfig, prog="hf-nuggets payoff")
    parser.add_argument("--token", default=None, help=TOKEN_HELP)
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    try:
        config, extra = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as err:
        print(f"hf-nuggets payoff: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # argparse: --help, or a missing or unknown argument (already printed)
        return int(exit_.code or 0)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def action() -> None:
        report = run_payoff(config)
        if not config.quiet:
            from ..evaluation.payoff_report import payoff_markdown
            from ..train.payoff import default_out

            print(payoff_markdown(report), end="")
            print(f"Wrote {config.out or default_out(config.data)}/payoff.json, payoff.md and payoff.png.")

    try:
        return run_command("payoff", action, verbose=extra.verbose, token=extra.token)
    except KeyboardInterrupt:
        print(
            "hf-nuggets payoff: interrupted; the finished arms are kept, rerun the command to resume.", file=sys.stderr
        )
        return 130
