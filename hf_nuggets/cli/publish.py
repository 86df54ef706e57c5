"""`hf-nuggets push` and `hf-nuggets card`: publish the output folder of `hf-nuggets score`, or write its card locally.

Both read DIR, an output folder of `prospect` (`scored.parquet` and `summary.json`), and call the library
(`push_scored_dataset`, `export_repo_folder`); no logic lives only here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import TOKEN_HELP, VERBOSE_HELP, run_command


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir", metavar="DIR", help="Output folder of `hf-nuggets score` (scored.parquet, summary.json)."
    )
    parser.add_argument(
        "--top",
        type=float,
        default=None,
        help="Also publish the top N percent (default: the run's --top, else 5).",
    )
    parser.add_argument("--no_selection", action="store_true", help="Publish the scored rows only.")
    parser.add_argument(
        "--min_distance",
        type=float,
        default=None,
        help="Make the top diverse: skip rows within this cosine distance of a better kept row (default: the run's "
        "--min_distance, else off; see `hf-nuggets score --help`).",
    )
    parser.add_argument("--license", default=None, help="License id of the source data, e.g. cc-by-nc-4.0.")
    parser.add_argument("--language", default=None, nargs="*", help="Language code(s) of the data, e.g. en.")
    parser.add_argument("--pretty_name", default=None, help="Title of the card.")
    parser.add_argument("--task_set", default=None, help="How the task set was chosen and refined, for the card.")
    parser.add_argument("--examples", type=int, default=5, help="Best and worst examples shown in the card.")
    parser.add_argument("--no_diversity", action="store_true", help="Leave the diversity section out of the card.")
    parser.add_argument(
        "--columns",
        default=None,
        help="Column mapping of the scored rows, as for `hf-nuggets score` (e.g. instruction=prompt,output=response); "
        "default: the mapping the run recorded in summary.json.",
    )
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)


def _load(args: argparse.Namespace) -> tuple[Any, dict[str, Any], dict[str, str | None] | None]:
    """The scored rows, the summary, and the column mapping (`--columns`, else the run's), checked against the rows
    before anything is written."""
    from ..data.checks import CLI, check_columns, parse_columns
    from ..publish.hub import load_prospect_output

    scored, summary = load_prospect_output(args.dir)
    columns = parse_columns(args.columns) if args.columns else summary.get("columns")
    source = str(Path(args.dir) / "scored.parquet")
    check_columns(scored.column_names, columns, source=source, caller=CLI)
    return scored, summary, columns


def _top(args: argparse.Namespace, summary: dict[str, Any]) -> float | None:
    from ..publish.hub import run_top_percent

    return None if args.no_selection else run_top_percent(summary, args.top)


def _card_kwargs(
    args: argparse.Namespace, summary: dict[str, Any], columns: dict[str, str | None] | None
) -> dict[str, Any]:
    run_distance = (summary.get("selection") or {}).get("min_distance")
    return {
        "columns": columns,
        "min_distance": args.min_distance if args.min_distance is not None else run_distance,
        "license": args.license,
        "language": args.language or None,
        "pretty_name": args.pretty_name,
        "task_set_description": args.task_set,
        "examples": args.examples,
        "diversity": not args.no_diversity,
    }


def _run(command: str, argv: Sequence[str], parser: argparse.ArgumentParser, action) -> int:
    args = parser.parse_args(list(argv))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_command(command, lambda: action(args), verbose=args.verbose, token=getattr(args, "token", None))


def push_main(argv: Sequence[str] | None = None) -> int:
    """`hf-nuggets push DIR user/name [--top 5] [--private]`: publish scored data as a Hub dataset repo.

    The token comes from `HF_TOKEN` or the login cache (`hf auth login`); it is never printed.

    Returns:
        `int`: The exit status (0 on success, 1 on an error, 2 on bad arguments).
    """
    parser = argparse.ArgumentParser(
        prog="hf-nuggets push",
        description="Publish the scored rows and the top N% as a Hub dataset repo with a generated card.",
    )
    _common(parser)
    parser.add_argument("repo_id", metavar="REPO_ID", help="The dataset repo, namespace/name.")
    parser.add_argument("--private", action="store_true", help="Create the repo as private.")
    parser.add_argument("--revision", default=None, help="Branch to push to (default: main).")
    parser.add_argument("--commit_message", default=None, help="Commit title.")
    parser.add_argument("--token", default=None, help=TOKEN_HELP)

    def action(args: argparse.Namespace) -> None:
        from ..data.checks import CLI
        from ..publish.hub import check_repo_id, push_scored_dataset, resolve_token

        check_repo_id(args.repo_id)
        token = resolve_token(args.token, caller=CLI)
        scored, summary, columns = _load(args)
        commit = push_scored_dataset(
            scored,
            args.repo_id,
            top_percent=_top(args, summary),
            private=True if args.private else None,
            token=token,
            summary=summary,
            revision=args.revision,
            commit_message=args.commit_message,
            **_card_kwargs(args, summary, columns),
        )
        print(f"Pushed to {commit.repo_url} ({commit.commit_url}).")

    return _run("push", sys.argv[1:] if argv is None else argv, parser, action)


def card_main(argv: Sequence[str] | None = None) -> int:
    """`hf-nuggets card DIR [--out OUT]`: write the dataset card, histogram and repo files locally.

    OUT (default `DIR/hub`) receives what `push` would commit: `README.md`, `score_histogram.png`, the data of each
    configuration and `hf_nuggets_summary.json`; `load_dataset(OUT, "top5")` loads the selection.

    Returns:
        `int`: The exit status (0 on success, 1 on an error, 2 on bad arguments).
    """
    parser = argparse.ArgumentParser(
        prog="hf-nuggets card", description="Write the dataset card and the repo files of a scored run locally."
    )
    _common(parser)
    parser.add_argument("--out", default=None, help="Folder for the card and repo files (default: DIR/hub).")
    parser.add_argument("--repo_id", default=None, help="The repo the card will live in (for its loading example).")
    parser.add_argument("--overwrite", action="store_true", help="Replace an earlier export in OUT.")

    def action(args: argparse.Namespace) -> None:
        from ..publish.hub import check_repo_id, export_repo_folder

        if args.repo_id is not None:
            check_repo_id(args.repo_id)
        scored, summary, columns = _load(args)
        out = Path(args.out) if args.out else Path(args.dir) / "hub"
        if out.exists() and any(out.iterdir()) and not args.overwrite:
            raise FileExistsError(f"{out} is not empty: pass `--overwrite` to replace the earlier export.")
        result = export_repo_folder(
            scored,
            out,
            top_percent=_top(args, summary),
            summary=summary,
            overwrite=args.overwrite,
            repo_id=args.repo_id,
            **_card_kwargs(args, summary, columns),
        )
        rows = ", ".join(f"{name} ({n} rows)" for name, n in result["configs"].items())
        print(f"Wrote {out / 'README.md'} and the repo files ({rows}) to {out}.")

    return _run("card", sys.argv[1:] if argv is None else argv, parser, action)
