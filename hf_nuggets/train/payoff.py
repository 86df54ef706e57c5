"""Does it pay off? Fine-tune copies of one base model on the nuggets and on control arms, then judge their answers.

`run_payoff` puts the package's parts together: the golden scores (`GoldenScorer` through `prospect`, or a scored
folder), the one ranking function (`hf_nuggets.selection`), TRL's `SFTTrainer`, batched generation for the evaluation
instructions, the pairwise judges and AlpacaEval's win rates. Guarantees, which `tests/test_payoff.py` checks:

- every arm trains a fresh copy of the same base model with the same `SFTConfig`; the top, random and bottom arms hold
  the same number of rows, so they take the same number of optimizer steps; the `all` arm runs the same epochs over
  all rows (the same steps per row, so more steps);
- the random arm's rows are `random_rows(n_rows, n_top, seed)`, reproducible from the seed recorded in the report;
- an arm whose answers are written is never trained again by a rerun with the same settings: the run resumes arm by
  arm, and the judges' verdict cache (in the report folder) keeps every verdict already paid for.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..evaluation.generation import GENERATION_TEMPLATES, resolve_generation_template
from ..gates import check_gates
from ..selection import check_percent, gated_rows, top_indices

logger = logging.getLogger(__name__)

#: The arms a run may train, in the order they are trained and shown.
ARMS = ("top", "random", "all", "bottom")
JUDGES = ("local", "openai", "precomputed")
PAYOFF_TEMPLATES = GENERATION_TEMPLATES  # the arms train in the prompt they are then asked in
#: Files of the report folder.
REPORT_FILE = "payoff.json"
ARMS_DIR = "arms"
ARM_FILE = "arm.json"  # an arm's done marker: written last, after its rows, model and outputs
ROWS_FILE = "rows.json"
OUTPUTS_FILE = "outputs.json"
SCORED_DIR = "scored"
SCORING_FILE = "scoring.json"
#: `SFTConfig` arguments a run sets itself: the step count follows the rows, and each arm has its own folder.
RESERVED_TRAINING_ARGS = ("max_steps", "output_dir")


@dataclass
class PayoffConfig:
    """Settings of a payoff run (`run_payoff`, `hf-nuggets payoff`). Training arguments keep `TrainingArguments`'
    names and go to every arm alike."""

    data: str = field(
        metadata={
            "help": "Training data: a file, saved folder or Hub id (scored here), or an `hf-nuggets score` output "
            "folder (its golden scores are used)."
        }
    )
    eval_set: str = field(
        metadata={
            "aliases": ["--eval"],
            "help": "Evaluation instructions: a file, folder or Hub id with an `instruction` column (e.g. "
            "AlpacaEval's 805, `tatsu-lab/alpaca_eval`, which needs a network).",
        }
    )
    model: str | None = field(
        default=None,
        metadata={
            "help": "Base model to fine-tune (short name, Hub id, folder, .gguf); the embedded model if omitted."
        },
    )
    top_percent: float = field(default=5, metadata={"aliases": ["--top"], "help": "Percentage of rows per arm."})
    arms: str = field(
        default="top,random", metadata={"help": "Arms to train, comma-separated, among top, random, all, bottom."}
    )
    baseline: str | None = field(
        default=None,
        metadata={
            "help": "Baseline outputs (AlpacaEval JSON/JSONL of {instruction, output}) for the same instructions; "
            "default: the evaluation set's `output` column."
        },
    )
    judge: str = field(default="local", metadata={"help": "Judge: local, openai or precomputed."})
    judge_model: str | None = field(
        default=None, metadata={"help": "Local judge model (embedded SmolLM2 by default) or the openai model name."}
    )
    annotations: str | None = field(
        default=None,
        metadata={
            "help": "For --judge precomputed: AlpacaEval annotations (instruction, output_1, output_2, preference); "
            "pairs without one are written to to_annotate.json."
        },
    )
    orders: str | None = field(default=None, metadata={"help": "Judge orders: both, random or fixed."})
    base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible endpoint of the openai judge."})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "Variable holding the endpoint key."})
    requests_per_minute: float | None = field(default=None, metadata={"help": "Rate limit of the openai judge."})
    num_workers: int = field(default=4, metadata={"help": "Concurrent requests of the openai judge."})
    cache_dir: str | None = field(default=None, metadata={"help": "Verdict cache folder (default: OUT/verdicts)."})
    prospector: str | None = field(default=None, metadata={"help": "Prospector that scores DATA (embedded default)."})
    tasks: str | None = field(default=None, metadata={"help": "Task set file, or `auto`; the shipped set if omitted."})
    num_tasks: int | None = field(default=None, metadata={"help": "Use the first N tasks (N drawn with `auto`)."})
    gates: str = field(default="all", metadata={"help": "Gates that keep rows out of the top: all, none or names."})
    template: str = field(
        default="auto",
        metadata={"help": "Training and generation prompt: auto (chat if the tokenizer has one), chat or alpaca."},
    )
    learning_rate: float = field(default=2e-5, metadata={"help": "Peak learning rate."})
    num_train_epochs: float = field(default=3, metadata={"help": "Epochs over each arm's rows."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Rows per device and step."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per optimizer step."})
    max_length: int = field(default=512, metadata={"help": "Longest training sequence, in tokens."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule."})
    warmup_steps: float = field(
        default=0.0,
        metadata={
            "help": "Warm-up steps, or a ratio of the steps below 1 (rounded up: with few steps, 0.03 makes the "
            "first step's learning rate 0)."
        },
    )
    weight_decay: float = field(default=0.0, metadata={"help": "Weight decay."})
    seed: int = field(default=42, metadata={"help": "Seed of training and of the random arm's rows."})
    bf16: bool = field(default=False, metadata={"help": "Train in bfloat16 mixed precision (GPU)."})
    max_new_tokens: int = field(default=512, metadata={"help": "Longest generated answer, in tokens."})
    generation_batch_size: int = field(default=8, metadata={"help": "Prompts per generate call."})
    eval_limit: int | None = field(default=None, metadata={"help": "Use the first N evaluation instructions."})
    instruction_difficulty: str | None = field(
        default=None, metadata={"help": "JSON list of one difficulty per instruction, for the LC win rate."}
    )
    empty_outputs: str = field(default="skip", metadata={"help": "Empty answers: skip (counted), keep or error."})
    out: str | None = field(
        default=None, metadata={"help": "Report folder (default: DATA/payoff for a scored folder, else payoff-out)."}
    )
    device: str | None = field(default=None, metadata={"help": "Device of scoring, training and generation."})
    save_models: bool = field(default=True, metadata={"help": "Keep each arm's fine-tuned model in the report."})
    quiet: bool = field(default=False, metadata={"help": "No progress bars."})

    def __post_init__(self):
        self.top_percent = check_percent(self.top_percent, "top_percent")
        self.arm_names()  # validates
        check_gates(None if self.gates == "none" else self.gates)
        if self.judge not in JUDGES:
            raise ValueError(f"`judge` must be one of {JUDGES}, got {self.judge!r}.")
        if self.template not in PAYOFF_TEMPLATES:
            raise ValueError(f"`template` must be one of {PAYOFF_TEMPLATES}, got {self.template!r}.")
        if self.annotations is not None and self.judge != "precomputed":
            raise ValueError(f"`annotations` are read by `judge='precomputed'` only, got judge={self.judge!r}.")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "max_new_tokens"):
            _check_positive_int(getattr(self, name), name)
        _check_positive_int(self.generation_batch_size, "generation_batch_size")
        if self.eval_limit is not None:
            _check_positive_int(self.eval_limit, "eval_limit")
        if not self.num_train_epochs > 0:
            raise ValueError(f"`num_train_epochs` must be positive, got {self.num_train_epochs!r}.")
        from ..evaluation.winrate import EMPTY_OUTPUT_POLICIES

        if self.empty_outputs not in EMPTY_OUTPUT_POLICIES:
            raise ValueError(f"`empty_outputs` must be one of {EMPTY_OUTPUT_POLICIES}, got {self.empty_outputs!r}.")

    def arm_names(self) -> list[str]:
        """The arms to train, in `ARMS` order."""
        names = [name.strip() for name in str(self.arms).split(",") if name.strip()]
        unknown = [name for name in names if name not in ARMS]
        if unknown or not names:
            raise ValueError(f"`arms` must name some of {ARMS} (comma-separated), got {self.arms!r}.")
        return [name for name in ARMS if name in names]

    @property
    def rows_per_batch(self) -> int:
        """Rows per optimizer step on one device."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps

    def training_arguments(self) -> dict[str, Any]:
        """The `SFTConfig` arguments every arm gets (besides its `output_dir`)."""
        return {
            "learning_rate": self.learning_rate,
            "num_train_epochs": self.num_train_epochs,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "max_length": self.max_length,
            "lr_scheduler_type": self.lr_scheduler_type,
            "warmup_steps": self.warmup_steps,
            "weight_decay": self.weight_decay,
            "seed": self.seed,
            "data_seed": self.seed,
            "bf16": self.bf16,
        }


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return value


def _digest(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# -- the arms' rows ---------------------------------------------------------------------------------------------------
def random_rows(n_rows: int, n_kept: int, seed: int) -> list[int]:
    """The random arm: `n_kept` of `n_rows` row positions drawn without replacement, in dataset order.

    Example:

    ```python
    >>> random_rows(10, 3, seed=0) == random_rows(10, 3, seed=0)
    True
    >>> len(set(random_rows(10, 3, seed=1)))
    3
    ```
    """
    chosen = np.random.default_rng(seed).choice(n_rows, size=n_kept, replace=False)
    return sorted(int(i) for i in chosen)


def arm_rows(
    scores: Sequence[float],
    gains: Sequence[float] | None = None,
    flags: Sequence[str] | None = None,
    *,
    top_percent: float,
    arms: Sequence[str] = ("top", "random"),
    seed: int = 42,
    rows_per_batch: int = 1,
    gates: str | Sequence[str] | None = "all",
) -> dict[str, list[int]]:
    """The row positions of each arm, in dataset order.

    `top` is the top `top_percent`% by golden score through the package's one ranking function (gated rows never
    in it), as `filter_for_training` keeps it; `random` draws as many rows from all rows with `random_rows(seed)`;
    `bottom` takes as many rows from the bottom (gated rows first); `all` is every row.

    Args:
        scores (`list[float]`): Golden scores.
        gains (`list[float]`, *optional*): Mean gains (the tie-breaker).
        flags (`list[str]`, *optional*): The `nuggets_flags` column.
        top_percent (`float`): Percentage of rows, in (0, 100].
        arms (`list[str]`, *optional*): Names from `ARMS`.
        seed (`int`, *optional*, defaults to `42`): Seed of the random arm.
        rows_per_batch (`int`, *optional*, defaults to `1`): Rows of one optimizer step; an arm must fill one.
        gates (`str` or `list[str]`, *optional*, defaults to `"all"`): Gates that keep rows out of the top.

    Returns:
        `dict[str, list[int]]`: Row positions per arm.

    Raises:
        `ValueError`: A score is missing, the top n% rounds to no row, the gates leave none, or it holds fewer rows
            than one batch.
    """
    scores = np.asarray([math.nan if s is None else s for s in scores], dtype=np.float64)
    n_rows = len(scores)
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise ValueError(
            f"{bad.size} missing or non-finite golden score(s) (first at row {int(bad[0])}): score every row first."
        )
    top_percent = check_percent(top_percent, "top_percent")
    if math.floor(n_rows * top_percent / 100 + 0.5) < 1:
        raise ValueError(
            f"`top_percent`={top_percent:g} of {n_rows} rows keeps no row: raise `top_percent` above "
            f"{50 / max(n_rows, 1):.3g}."
        )
    gains_ = None if gains is None else np.nan_to_num(np.asarray(gains, dtype=np.float64), nan=-np.inf)
    gated = gated_rows(None if flags is None else list(flags), gates)
    top = top_indices(scores, gains_, gated, percent=top_percent)
    n_kept = len(top)
    if n_kept == 0:
        raise ValueError(f"The gates flag all {n_rows} rows: no row is left for the top arm (see `nuggets_flags`).")
    if n_kept < rows_per_batch:
        raise ValueError(
            f"The top {top_percent:g}% of {n_rows} rows is {n_kept} row(s), fewer than one batch of {rows_per_batch} "
            "(`per_device_train_batch_size` x `gradient_accumulation_steps`): raise `top_percent` or lower the batch."
        )
    rows: dict[str, list[int]] = {}
    for arm in arms:
        if arm == "top":
            rows[arm] = sorted(int(i) for i in top)
        elif arm == "random":
            rows[arm] = random_rows(n_rows, n_kept, seed)
        elif arm == "bottom":
            rows[arm] = sorted(int(i) for i in top_indices(scores, gains_, gated, percent=100, bottom=True)[:n_kept])
        elif arm == "all":
            rows[arm] = list(range(n_rows))
        else:
            raise ValueError(f"Unknown arm {arm!r}; arms are {ARMS}.")
    return rows


# -- training rows and one arm's training -----------------------------------------------------------------------------
def _bos_text(tokenizer: Any) -> str:
    """The start token as text when the tokenizer does not add it itself (generation starts with it too)."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None or tokenizer("x")["input_ids"][:1] == [start]:
        return ""
    return tokenizer.convert_ids_to_tokens(start)


def sft_rows(dataset: Any, tokenizer: Any, template: str, columns: Mapping[str, str | None] | None = None) -> Any:
    """TRL prompt-completion rows (the loss falls on the answers only), in the prompt generation uses.

    `alpaca`: the NUGGETS prompt after the start token, then the answer; `chat`: one user turn (the instruction,
    then the input after a blank line) and one assistant turn, which `SFTTrainer` renders with the chat template.
    """
    from datasets import Dataset

    from ..data.formatting import examples_from_batch, render_prompt, resolve_columns

    mapping = resolve_columns(dataset.column_names, columns)
    examples = examples_from_batch(dataset.to_dict(), mapping, list(range(len(dataset))))
    if template == "chat":
        records = [
            {
                "prompt": [{"role": "user", "content": e.instruction + (f"\n\n{e.input}" if e.input else "")}],
                "completion": [{"role": "assistant", "content": e.output}],
            }
            for e in examples
        ]
    else:
        start = _bos_text(tokenizer)
        records = [{"prompt": start + render_prompt(e), "completion": e.output} for e in examples]
    return Dataset.from_list(records)


def train_arm(
    model: Any,
    tokenizer: Any,
    rows: Any,
    output_dir: str | Path,
    training_arguments: Mapping[str, Any],
    *,
    callbacks: Sequence[Any] = (),
    use_cpu: bool = False,
    progress: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune `model` on `rows` (from `sft_rows`) with TRL's `SFTTrainer`; resumes from a checkpoint in
    `output_dir` when the arguments save some.

    Returns:
        `tuple`: The trained model (eval mode) and `{optimizer_steps, train_loss, train_runtime_s, epochs}`.
    """
    from transformers import PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig, SFTTrainer

    options = {"save_strategy": "no", "report_to": "none", "logging_steps": 1, "use_cpu": use_cpu}
    options.update(disable_tqdm=not progress, **training_arguments)
    args = SFTConfig(output_dir=str(output_dir), **options)
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=rows, processing_class=tokenizer, callbacks=list(callbacks)
    )
    if not progress:  # no progress bar, and no log lines on stdout either
        trainer.remove_callback(PrinterCallback)
    last = get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None
    result = trainer.train(resume_from_checkpoint=last)
    stats = {
        "optimizer_steps": int(trainer.state.global_step),
        "epochs": float(trainer.state.epoch or 0.0),
        "train_loss": float(result.training_loss),
        "train_runtime_s": float(result.metrics.get("train_runtime", 0.0)),
    }
    return trainer.model.eval(), stats


# -- the run ----------------------------------------------------------------------------------------------------------
def default_out(data: str) -> Path:
    """`DATA/payoff` when DATA is an `hf-nuggets score` output folder, else `payoff-out`."""
    from ..run.outputs import SCORED_STEM

    folder = Path(data).expanduser()
    return folder / "payoff" if (folder / f"{SCORED_STEM}.parquet").is_file() else Path("payoff-out")


def _load_scored(config: PayoffConfig, out: Path, prospector: Any, task_set: Any) -> tuple[Any, dict[str, Any]]:
    """The training rows with golden scores: from a scored folder, a `golden_score` column, or scored here once
    (into `OUT/scored`, reused by a rerun with the same data and scoring settings)."""
    from ..data.loading import load_data
    from ..publish.hub import load_prospect_output
    from ..run.outputs import SCORED_STEM
    from ..run.prospecting import prospect
    from ..scoring.prospector import Prospector
    from ..scoring.scorer import GoldenScorer
    from ..selection import SCORE_COLUMN
    from ..utils.files import atomic_write_json

    folder = Path(config.data).expanduser()
    if (folder / f"{SCORED_STEM}.parquet").is_file():
        scored, _ = load_prospect_output(folder)
        return scored, {"source": config.data, "scored_by": "the scored folder"}
    dataset = load_data(config.data)
    if SCORE_COLUMN in dataset.column_names:
        return dataset, {"source": config.data, "scored_by": f"its `{SCORE_COLUMN}` column"}
    name = prospector.name if isinstance(prospector, Prospector) else (config.prospector or "embedded")
    tasks = task_set if task_set is not None else config.tasks
    settings = {
        "data": _digest(dataset.to_list()),
        "prospector": name,
        "tasks": tasks if isinstance(tasks, (str, type(None))) else _digest(list(tasks)),
        "num_tasks": config.num_tasks,
        "gates": config.gates,
    }
    marker = out / SCORED_DIR / SCORING_FILE
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")).get("settings") == settings:
        scored, _ = load_prospect_output(out / SCORED_DIR)
        logger.info("Reusing the golden scores in %s (same data and scoring settings).", out / SCORED_DIR)
        return scored, {"source": config.data, "scored_by": name, "reused": True}
    auto = tasks == "auto"
    scorer = GoldenScorer(
        prospector if prospector is not None else config.prospector,
        None if auto or isinstance(tasks, str) else tasks,
        num_tasks=None if auto else config.num_tasks,
        device=config.device,
    )
    scored, _ = prospect(
        dataset,
        scorer,
        out / SCORED_DIR,
        task_set=tasks if isinstance(tasks, str) else None,
        auto_options={"num_tasks": config.num_tasks} if auto and config.num_tasks else None,
        source=config.data,
        progress=not config.quiet,
        gates=None if config.gates == "none" else config.gates,
    )
    atomic_write_json(marker, {"settings": settings})
    return scored, {"source": config.data, "scored_by": name}


def _read_done(folder: Path, settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """An arm's done marker when it was made with exactly these settings and its outputs are there; else `None`."""
    path = folder / ARM_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("Ignoring the unreadable arm record %s; the arm is trained again.", path)
        return None
    if record.get("settings") != json.loads(json.dumps(settings, default=str)):
        changed = sorted(
            k
            for k in set(settings) | set(record.get("settings") or {})
            if (record.get("settings") or {}).get(k) != settings.get(k)
        )
        logger.warning(
            "Arm %s in %s was made with other settings (%s): training it again.", folder.name, folder, changed
        )
        return None
    if not (folder / OUTPUTS_FILE).is_file():
        return None
    return record


def run_payoff(
    config: PayoffConfig,
    *,
    prospector: Any = None,
    task_set: Any = None,
    judge: Any = None,
    callbacks: Sequence[Any] = (),
    training_overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune the base model on each arm, generate its answers to the evaluation instructions, judge them against
    the baseline and against each other, and write the report folder.

    The report folder (`config.out`) holds `payoff.json` (win rates with standard errors, length-controlled where
    the metric can fit it, per arm and head to head, with the settings and seeds), `payoff.md` (the table `hf-nuggets
    card` includes), `payoff.png` (win rates with error bars), and per arm `arms/<arm>/` with `rows.json` (row
    positions), `outputs.json` (AlpacaEval format), `model/` and the done marker `arm.json`. A rerun with the same
    settings skips the finished arms.

    Args:
        config (`PayoffConfig`): The settings.
        prospector (`Prospector` or `str`, *optional*): The prospector that scores unscored data (default:
            `config.prospector`, else the embedded model).
        task_set (`list[dict]` or `datasets.Dataset`, *optional*): The tasks (default: `config.tasks`).
        judge (`PairwiseJudge`, *optional*): A judge object instead of `config.judge`.
        callbacks (`list[TrainerCallback]`, *optional*): Added to every arm's trainer.
        training_overrides (`dict`, *optional*): More `SFTConfig` arguments, the same for every arm (not
            `max_steps`: the steps follow the rows and epochs).

    Returns:
        `dict`: The report (`payoff.json`).

    Example:

    ```python
    from hf_nuggets import PayoffConfig, run_payoff

    report = run_payoff(PayoffConfig(data="alpaca.jsonl", eval_set="eval.jsonl", model="HuggingFaceTB/SmolLM2-135M",
                                     top_percent=5, arms="top,random,all"))
    print(report["arms"][0]["vs_baseline"]["win_rate"])
    ```
    """
    from ..evaluation import payoff_report as reporting
    from ..scoring.prospector import load_prospector
    from ..selection import GAIN_COLUMN, SCORE_COLUMN
    from ..utils.files import atomic_write_json, check_writable, folder_lock

    overrides = dict(training_overrides or {})
    reserved = [name for name in RESERVED_TRAINING_ARGS if name in overrides]
    if reserved:
        raise ValueError(
            f"`training_overrides` may not set {reserved}: every arm trains `num_train_epochs` over its rows, so arms "
            "of equal rows take equal steps."
        )
    out = check_writable(config.out if config.out is not None else default_out(config.data), "out")
    started = time.perf_counter()
    timings: dict[str, Any] = {}
    with folder_lock(out, "out"):
        # Bad input fails before any training: the evaluation set, the baseline, the annotations, the arms' rows.
        evaluation = reporting.load_evaluation(config)
        judge_obj = judge if judge is not None else reporting.make_judge(config, out)
        t0 = time.perf_counter()
        scored, data_record = _load_scored(config, out, prospector, task_set)
        timings["scoring_s"] = time.perf_counter() - t0
        columns = scored.column_names
        flags = scored["nuggets_flags"] if "nuggets_flags" in columns else None
        gates = None if config.gates == "none" else config.gates
        arms = config.arm_names()
        rows = arm_rows(
            scored[SCORE_COLUMN],
            scored[GAIN_COLUMN] if GAIN_COLUMN in columns else None,
            flags,
            top_percent=config.top_percent,
            arms=arms,
            seed=config.seed,
            rows_per_batch=config.rows_per_batch,
            gates=gates,
        )
        n_kept = next((len(positions) for arm, positions in rows.items() if arm != "all"), len(scored))
        training = {**config.training_arguments(), **overrides}
        base = None
        arm_records = []
        for arm in arms:
            folder = out / ARMS_DIR / arm
            settings = {
                "arm": arm,
                "positions": _digest(rows[arm]),
                "n_rows": len(rows[arm]),
                "rows": _digest(scored.select(rows[arm]).to_list()),  # what the arm trains on, scores included
                "model": config.model,
                "training": training,
                "template": config.template,
                "generation": {"max_new_tokens": config.max_new_tokens},
                "eval": _digest(evaluation.instructions),
            }
            record = _read_done(folder, settings)
            if record is not None:
                logger.info("Arm %s is done (%s): not trained again.", arm, folder / ARM_FILE)
                record["resumed"] = True
            else:
                if base is None:
                    base = load_prospector(config.model, device=config.device, dtype="float32")
                record = _run_arm(
                    arm, rows[arm], scored, base, config, training, settings, folder, callbacks, evaluation
                )
                record["resumed"] = False
            arm_records.append(record)
        timings["arms_s"] = {r["name"]: r["timings"] for r in arm_records}
        base_name = arm_records[0].get("base_model")
        del base
        gc.collect()

        t1 = time.perf_counter()
        outputs = {
            r["name"]: [
                o["output"] for o in json.loads((out / ARMS_DIR / r["name"] / OUTPUTS_FILE).read_text("utf-8"))
            ]
            for r in arm_records
        }
        comparisons = reporting.judge_all(judge_obj, evaluation, outputs, config, out)
        timings["judging_s"] = time.perf_counter() - t1
        timings["total_s"] = time.perf_counter() - started
        report = {
            "hf_nuggets_version": __version__,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "settings": reporting.public_settings(asdict(config)),
            "base_model": base_name,
            "data": {
                **data_record,
                "rows": len(scored),
                "rows_gated": 0 if flags is None else int(sum(bool(f) for f in flags)),
                "top_percent": config.top_percent,
                "rows_per_arm": n_kept,
                "seed": config.seed,
            },
            "training": {**training, "trainer": "trl.SFTTrainer", "format": "prompt-completion (loss on answers)"},
            "evaluation": evaluation.record(),
            "judge": reporting.judge_record(judge_obj),
            "arms": [
                {
                    **{k: v for k, v in r.items() if k != "settings"},
                    "vs_baseline": comparisons[(r["name"], "baseline")],
                }
                for r in arm_records
            ],
            "head_to_head": [
                {"arm": a, "versus": b, **metrics} for (a, b), metrics in comparisons.items() if b != "baseline"
            ],
            "timings": timings,
        }
        atomic_write_json(out / REPORT_FILE, report)
        reporting.write_report_files(out, report)
    return report


def _run_arm(
    arm: str,
    positions: list[int],
    scored: Any,
    base: Any,
    config: PayoffConfig,
    training: Mapping[str, Any],
    settings: Mapping[str, Any],
    folder: Path,
    callbacks: Sequence[Any],
    evaluation: Any,
) -> dict[str, Any]:
    """Train one arm from a fresh copy of the base model, generate its answers, and write its files (marker last)."""
    from ..evaluation.generation import generate_outputs
    from ..scoring.prospector import Prospector
    from ..utils.files import atomic_write_json

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        folder / ROWS_FILE, {"arm": arm, "seed": config.seed if arm == "random" else None, "positions": positions}
    )
    tokenizer = base.tokenizer
    template = resolve_generation_template(config.template, tokenizer)
    rows = sft_rows(scored.select(positions), tokenizer, template)
    logger.info("Arm %s: training a copy of %s on %d rows.", arm, base.name, len(rows))
    t0 = time.perf_counter()
    model = copy.deepcopy(base.model).train()
    use_cpu = str(config.device or base.device).startswith("cpu")
    model, stats = train_arm(
        model,
        tokenizer,
        rows,
        folder / "trainer",
        training,
        callbacks=callbacks,
        use_cpu=use_cpu,
        progress=not config.quiet,
    )
    t1 = time.perf_counter()
    answers = generate_outputs(
        Prospector(model=model, tokenizer=tokenizer, name=f"{base.name} + SFT on {arm}"),
        evaluation.instructions,
        batch_size=config.generation_batch_size,
        max_new_tokens=config.max_new_tokens,
        template=template,
        progress=not config.quiet,
    )
    t2 = time.perf_counter()
    if config.save_models:
        model.save_pretrained(folder / "model")
        tokenizer.save_pretrained(folder / "model")
    atomic_write_json(
        folder / OUTPUTS_FILE,
        [
            {"instruction": i, "output": o, "generator": arm}
            for i, o in zip(evaluation.instructions, answers, strict=True)
        ],
    )
    record = {
        "name": arm,
        "rows": len(positions),
        "seed": config.seed,
        "base_model": base.name,
        "template": template,
        **stats,
        "timings": {"training_s": t1 - t0, "generation_s": t2 - t1},
        "rows_file": f"{ARMS_DIR}/{arm}/{ROWS_FILE}",
        "outputs_file": f"{ARMS_DIR}/{arm}/{OUTPUTS_FILE}",
        "model_dir": f"{ARMS_DIR}/{arm}/model" if config.save_models else None,
        "settings": settings,
    }
    atomic_write_json(folder / ARM_FILE, record)
    del model
    gc.collect()
    return record
