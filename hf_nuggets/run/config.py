"""Settings of a prospecting run: one dataclass, validated on creation, that also defines `hf-nuggets score`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..algorithms.redundancy import check_min_distance
from ..data.checks import parse_columns
from ..data.formatting import TEMPLATES
from ..gates import GateSettings, check_gates
from ..scoring.engine import TruncationLimits
from ..selection import check_percent


@dataclass
class ScoreConfig:
    """Settings of `hf-nuggets score` (and of `prospect` when built from the command line)."""

    out: str = field(default="nuggets-out", metadata={"help": "Output folder for scored data and summary.json."})
    tasks: str | None = field(
        default=None,
        metadata={
            "help": "Task set: a JSON/JSONL/CSV/parquet file, saved dataset or Hub id, or 'auto' to draw the tasks "
            "from the data itself (see auto_task_set; write ./auto for a file named auto). "
            "Default: the task set shipped with the package."
        },
    )
    num_tasks: int | None = field(
        default=None,
        metadata={"help": "Use only the first N tasks of the task set; with --tasks auto, draw N tasks (default 16)."},
    )
    task_sample_size: int = field(
        default=256, metadata={"help": "--tasks auto: rows drawn at random to choose the tasks from."}
    )
    task_seed: int = field(default=0, metadata={"help": "--tasks auto: seed of the sample."})
    model: str | None = field(
        default=None,
        metadata={
            "help": "Prospector: an embedded model's short name (smollm2-135m, gemma3-270m), Hub id, local folder "
            "or .gguf file. Default: the embedded SmolLM2-135M-Instruct."
        },
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision of the model."})
    gguf_file: str | None = field(default=None, metadata={"help": "GGUF file name inside --model."})
    top: float | None = field(default=None, metadata={"help": "Also write the top N percent as selected.*."})
    min_distance: float | None = field(
        default=None,
        metadata={
            "help": "Make the --top selection diverse: walking down the ranking, skip a row whose instruction and "
            "input lie closer than this cosine distance to a row already kept (DEITA's rule; embeddings by the "
            "embedded all-MiniLM-L6-v2, neighbours by SimHash LSH), until the top holds N percent of the rows. "
            "Suggested: 0.2 (the README says how it was chosen). Default: off."
        },
    )
    gates: str = field(
        default="all",
        metadata={
            "help": "Sanity gates that keep rows out of --top (and list them first among the worst): 'all', 'none', "
            "or names separated by commas among empty, placeholder, unaligned, unfinished."
        },
    )
    alignment_threshold: str = field(
        default="auto",
        metadata={
            "help": "Gate `unaligned`: nuggets_alignment at or below this (log of 1/IFD, in nats). 'auto': "
            "calibrated for the prospector on the shipped tasks (see the README)."
        },
    )
    completeness_threshold: str = field(
        default="auto",
        metadata={
            "help": "Gate `unfinished`: nuggets_completeness (log-probability of the answer's end) below this. "
            "'auto': calibrated like --alignment_threshold."
        },
    )
    limit: int | None = field(default=None, metadata={"help": "Score only the first N rows."})
    max_seconds: float | None = field(
        default=None, metadata={"help": "Time budget for scoring; the rows scored by then are kept."}
    )
    split: str = field(default="train", metadata={"help": "Split of a Hub dataset or DatasetDict."})
    columns: str | None = field(  # also a dict (the Python API and the Space); the command line gives a string
        default=None,
        metadata={
            "help": "Column mapping, e.g. 'instruction=question,input=,output=answer' or "
            "'messages=conversation'. An empty name means no such column."
        },
    )
    template: str = field(default="alpaca", metadata={"help": f"Prompt template: one of {', '.join(TEMPLATES)}."})
    max_demo_tokens: int = field(default=512, metadata={"help": "Token limit of a demonstration."})
    max_prompt_tokens: int = field(default=256, metadata={"help": "Token limit of a task prompt (keeps its end)."})
    max_answer_tokens: int = field(default=256, metadata={"help": "Token limit of a task answer."})
    batch_size: int = field(default=16, metadata={"help": "Rows per scoring call."})
    max_batch_tokens: int = field(default=4096, metadata={"help": "Padded tokens per forward pass."})
    candidates_per_forward: int = field(
        default=1,
        metadata={
            "help": "Candidates stacked in one forward pass (within --max_batch_tokens). More helps on GPUs; on a "
            "2-core CPU it measured slower, so the default is 1 (see the README's Speed section)."
        },
    )
    device: str | None = field(default=None, metadata={"help": "cuda, mps or cpu (default: the best available)."})
    dtype: str = field(
        default="auto",
        metadata={
            "help": "Model dtype: 'auto' (bfloat16 on CUDA and on CPUs that multiply bfloat16 natively, AVX512-BF16 "
            "or AMX; float32 elsewhere), or a torch dtype such as float32 or bfloat16."
        },
    )
    return_scores: bool = field(default=False, metadata={"help": "Also write the per-task one-shot scores."})
    num_processes: int = field(
        default=1,
        metadata={
            "help": "Score in N local processes (one per GPU when there are several); the same as "
            "`accelerate launch --num_processes N -m hf_nuggets score ...`. Implies sharded scoring."
        },
    )
    shard_size: int | None = field(
        default=None,
        metadata={
            "help": "Rows per checkpoint shard. Setting it (or --num_processes, --streaming, --early_stop, --dedup, "
            "or a distributed launcher) turns on sharded, resumable scoring into OUT/checkpoint (default 64 rows)."
        },
    )
    resume: bool = field(
        default=True,
        metadata={"help": "Sharded scoring: continue from OUT/checkpoint (--no_resume refuses an existing one)."},
    )
    timeout: float = field(
        default=600.0, metadata={"help": "Sharded scoring: seconds without progress before waiting fails."}
    )
    streaming: bool = field(
        default=False, metadata={"help": "Read the data as a stream (memory bounded by a shard, not the dataset)."}
    )
    early_stop: bool = field(
        default=False,
        metadata={
            "help": "Adaptive early stopping for the --top selection (one process; see hf_nuggets.scoring.early_stop)."
        },
    )
    early_stop_delta: float = field(default=0.05, metadata={"help": "Error level of early stopping's intervals."})
    early_stop_warmup: int = field(default=50, metadata={"help": "Rows scored in full before early stopping."})
    early_stop_chunk: int = field(default=4, metadata={"help": "Tasks evaluated between two early-stopping looks."})
    early_stop_looks: str = field(
        default="each",
        metadata={
            "help": "Error control over a row's looks: each (delta per look), union (delta / looks) or spending "
            "(O'Brien-Fleming-type alpha spending).",
            "choices": ["each", "union", "spending"],
        },
    )
    early_stop_tie_gain: bool = field(
        default=False, metadata={"help": "Settle rows tied with the threshold's golden score by their mean gain."}
    )
    early_stop_warmup_share: float = field(
        default=0.0, metadata={"help": "Warm-up as a share of the rows, in [0, 1) (at least --early_stop_warmup)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of early stopping's task orders."})
    dedup: bool = field(
        default=False, metadata={"help": "Score exact and near-duplicate candidates once; they share the score."}
    )
    dedup_threshold: float = field(
        default=0.9, metadata={"help": "Jaccard similarity (char 5-grams) from which rows count as near duplicates."}
    )

    def sharded(self) -> bool:
        """Whether this run uses sharded, resumable scoring (`hf_nuggets.run.sharded.prospect_sharded`)."""
        import os

        return bool(
            self.shard_size is not None
            or self.num_processes > 1
            or int(os.environ.get("WORLD_SIZE", 1)) > 1
            or self.streaming
            or self.early_stop
            or self.dedup
        )

    def selection_gates(self) -> str | tuple[str, ...] | None:
        """The `gates` argument of selection: `"all"`, a tuple of names, or `None` for `--gates none`."""
        if self.gates.strip().lower() == "none":
            return None
        return "all" if self.gates.strip().lower() == "all" else check_gates(self.gates)

    def gate_settings(self) -> GateSettings:
        """The thresholds of the gates."""
        values = {}
        for name in ("alignment_threshold", "completeness_threshold"):
            value = str(getattr(self, name)).strip().lower()
            try:
                values[name] = value if value == "auto" else float(value)
            except ValueError:
                raise ValueError(f"`--{name}` must be a number or 'auto', got {value!r}.") from None
        return GateSettings(**values)

    def __post_init__(self):
        try:
            self.selection_gates()
            self.gate_settings()
        except ValueError as err:
            raise ValueError(f"--gates/--alignment_threshold/--completeness_threshold: {err}") from None
        for name in ("num_processes", "shard_size", "early_stop_warmup", "early_stop_chunk"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value}.")
        if self.timeout <= 0:
            raise ValueError(f"`timeout` must be positive, got {self.timeout}.")
        if not 0 < self.early_stop_delta < 1:
            raise ValueError(f"`early_stop_delta` must be in (0, 1), got {self.early_stop_delta}.")
        if not 0 <= self.early_stop_warmup_share < 1:
            raise ValueError(f"`early_stop_warmup_share` must be in [0, 1), got {self.early_stop_warmup_share}.")
        if not 0 < self.dedup_threshold <= 1:
            raise ValueError(f"`dedup_threshold` must be in (0, 1], got {self.dedup_threshold}.")
        if self.early_stop and self.top is None:
            raise ValueError("`early_stop` needs `top` (it stops against the top-n% threshold).")
        if self.early_stop and self.num_processes > 1:
            raise ValueError(f"`early_stop` runs in one process, got `num_processes`={self.num_processes}.")
        if self.sharded() and self.max_seconds is not None:
            raise ValueError("`max_seconds` is for unsharded runs; a sharded run can be stopped and resumed instead.")
        if self.top is not None:
            check_percent(self.top, "top")
        if self.min_distance is not None:
            check_min_distance(self.min_distance)
            if self.top is None:
                raise ValueError("`min_distance` needs `top`: it makes the top selection diverse.")
            if self.streaming or self.early_stop:
                raise ValueError(
                    "`min_distance` needs every scored row in memory and the plain top-n% threshold is not its "
                    "threshold: it works with neither `streaming` nor `early_stop`."
                )
        for name in (
            "num_tasks",
            "limit",
            "batch_size",
            "max_batch_tokens",
            "candidates_per_forward",
            "task_sample_size",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value}.")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"`max_seconds` must be positive, got {self.max_seconds}.")
        if self.template not in TEMPLATES:
            raise ValueError(f"`template` must be one of {TEMPLATES}, got {self.template!r}.")
        self.column_mapping()  # validates the syntax
        self.limits()

    def auto_tasks(self) -> bool:
        """Whether the tasks are drawn from the data (`--tasks auto`)."""
        return self.tasks == "auto"

    def limits(self) -> TruncationLimits:
        return TruncationLimits(self.max_demo_tokens, self.max_prompt_tokens, self.max_answer_tokens)

    def column_mapping(self) -> dict[str, str | None] | None:
        """Parse `columns` ('key=name,key=name', or a dict) into a dict; an empty name maps to `None`."""
        return parse_columns(self.columns)
