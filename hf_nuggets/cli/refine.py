"""`hf-nuggets refine DATA ...`: write a refined task set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..data.checks import parse_columns
from ..data.formatting import TEMPLATES
from .common import TOKEN_HELP, VERBOSE_HELP, run_command


@dataclass
class RefineConfig:
    """Settings of `hf-nuggets refine` (see `refine_task_set`)."""

    out: str = field(default="tasks.jsonl", metadata={"help": "Where to write the task set (.jsonl or .parquet)."})
    size: int = field(default=100, metadata={"help": "Number of tasks."})
    top_quality: int | None = field(
        default=None,
        metadata={
            "help": "Best-quality rows that enter directly, at most --size. Default: 20 (the paper's 20 of 100), or a "
            "fifth of --size when --size is under 100."
        },
    )
    pool: int = field(default=10_000, metadata={"help": "Best-quality rows the diversity selection draws from."})
    quality: str = field(
        default="judge", metadata={"help": "'judge' (the prospector, --model), a score column, or a reward model id."}
    )
    selector: str = field(default="kcenter", metadata={"help": "kcenter (the paper) or affinity."})
    dedup: bool = field(default=True, metadata={"help": "Remove near-duplicates (MinHash LSH) before selecting."})
    dedup_threshold: float = field(default=0.7, metadata={"help": "Jaccard similarity counted as a duplicate."})
    embedder: str | None = field(default=None, metadata={"help": "Sentence encoder (default: all-MiniLM-L6-v2)."})
    split: str = field(default="train", metadata={"help": "Split of a Hub dataset or DatasetDict."})
    seed: int = field(default=0, metadata={"help": "Seed for hashing and affinity propagation."})
    model: str | None = field(
        default=None,
        metadata={
            "help": "Prospector that reads the gates' signals (and judges): Hub id, local folder or .gguf file. "
            "Default: the embedded SmolLM2-135M-Instruct."
        },
    )
    template: str = field(default="alpaca", metadata={"help": f"Prompt template: one of {', '.join(TEMPLATES)}."})
    columns: str | None = field(
        default=None,
        metadata={
            "help": "Column mapping, as for `hf-nuggets score`: e.g. 'instruction=prompt,output=response' or "
            "'messages=conversation'. An empty name means no such column."
        },
    )
    token: str | None = field(default=None, metadata={"help": TOKEN_HELP})
    verbose: bool = field(default=False, metadata={"help": VERBOSE_HELP})

    def __post_init__(self):
        if not self.out.endswith((".jsonl", ".parquet")):
            raise ValueError(f"`out` must end with .jsonl or .parquet, got {self.out!r}.")
        if self.template not in TEMPLATES:
            raise ValueError(f"`template` must be one of {TEMPLATES}, got {self.template!r}.")
        if self.top_quality is not None and self.top_quality > self.size:
            raise ValueError(
                f"`--top_quality` ({self.top_quality}) cannot exceed `--size` ({self.size}): lower `--top_quality`, "
                "or leave it out (a fifth of a --size under 100)."
            )
        parse_columns(self.columns)  # validates the syntax


def refine_main(argv: Sequence[str]) -> int:
    """`hf-nuggets refine DATA ...`: write a refined task set."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(RefineConfig, prog="hf-nuggets refine")
    parser.add_argument("data", help="JSON/JSONL/CSV/parquet file, saved dataset folder, or Hub dataset id.")
    try:
        config, extra = parser.parse_args_into_dataclasses(args=list(argv))
    except ValueError as err:
        parser.error(str(err))

    def action() -> None:
        from ..data.checks import CLI, check_columns
        from ..data.loading import load_data
        from ..taskset.refine import refine_task_set

        dataset = load_data(extra.data, split=config.split)
        columns = parse_columns(config.columns)
        check_columns(dataset.column_names, columns, source=extra.data, caller=CLI)
        tasks = refine_task_set(
            dataset,
            size=config.size,
            top_quality=config.top_quality,
            pool=config.pool,
            quality=config.quality,
            selector=config.selector,
            dedup=config.dedup,
            dedup_threshold=config.dedup_threshold,
            embedder=config.embedder,
            columns=columns,
            seed=config.seed,
            prospector=config.model,
            template=config.template,
        )
        if config.out.endswith(".parquet"):
            tasks.to_parquet(config.out)
        else:
            tasks.to_json(config.out, lines=True, force_ascii=False)
        print(f"Wrote {len(tasks)} tasks to {config.out} ({tasks.info.description})")

    return run_command("refine", action, verbose=config.verbose, token=config.token)
