"""`hf-nuggets eval`: generate a model's outputs, judge them against a baseline's, write annotations and win rates."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .common import TOKEN_HELP, VERBOSE_HELP, run_command

logger = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Settings of `hf-nuggets eval`."""

    baseline: str = field(
        metadata={"help": "The baseline's outputs: AlpacaEval JSON/JSONL of {instruction, output[, generator]}."}
    )
    out: str = field(default="eval-out", metadata={"help": "Output folder."})
    model: str | None = field(
        default=None,
        metadata={
            "help": "Model that generates the outputs (short name such as gemma3-270m, Hub id, folder or .gguf); "
            "the embedded model if omitted."
        },
    )
    model_outputs: str | None = field(
        default=None, metadata={"help": "Already generated outputs (AlpacaEval JSON/JSONL) instead of `--model`."}
    )
    name: str | None = field(default=None, metadata={"help": "The model's name in the annotations."})
    judge: str = field(default="local", metadata={"help": "Judge: local or openai."})
    judge_model: str | None = field(
        default=None,
        metadata={
            "help": "Judge model: for local, what load_prospector loads (embedded SmolLM2 by default); for "
            "openai, the model name (gpt-4o-mini by default)."
        },
    )
    base_url: str | None = field(
        default=None, metadata={"help": "OpenAI-compatible endpoint (default $OPENAI_BASE_URL or OpenAI's)."}
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY", metadata={"help": "Environment variable that holds the endpoint key."}
    )
    orders: str | None = field(
        default=None, metadata={"help": "both, random or fixed (default: both for local, random for openai)."}
    )
    requests_per_minute: float | None = field(default=None, metadata={"help": "Rate limit of the openai judge."})
    num_workers: int = field(default=4, metadata={"help": "Concurrent requests of the openai judge."})
    cache_dir: str | None = field(default=None, metadata={"help": "Folder of the verdict cache."})
    no_cache: bool = field(default=False, metadata={"help": "Do not read or write the verdict cache."})
    limit: int | None = field(default=None, metadata={"help": "Evaluate the first N instructions only."})
    batch_size: int = field(default=8, metadata={"help": "Batch size of generation and of the local judge."})
    max_new_tokens: int = field(default=512, metadata={"help": "Longest generated output, in tokens."})
    template: str = field(default="auto", metadata={"help": "Generation prompt: auto, chat or alpaca."})
    device: str | None = field(default=None, metadata={"help": "Device of the generating and local judge models."})
    empty_outputs: str = field(default="error", metadata={"help": "Empty outputs: error, skip or keep."})
    instruction_difficulty: str | None = field(
        default=None, metadata={"help": "JSON list of one difficulty per instruction, for the LC win rate."}
    )
    quiet: bool = field(default=False, metadata={"help": "No progress bars and no printout."})
    verbose: bool = field(default=False, metadata={"help": VERBOSE_HELP})
    token: str | None = field(default=None, metadata={"help": TOKEN_HELP})

    def __post_init__(self):
        if self.judge not in ("local", "openai"):
            raise ValueError(f"`judge` must be 'local' or 'openai', got {self.judge!r}.")
        if self.model is not None and self.model_outputs is not None:
            raise ValueError(
                "Pass `--model` (to generate outputs) or `--model_outputs` (already generated), not both."
            )
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"`limit` must be at least 1, got {self.limit}.")

    def judge_kwargs(self) -> dict:
        kwargs: dict = {"progress": not self.quiet, "use_cache": not self.no_cache, "cache_dir": self.cache_dir}
        if self.orders is not None:
            kwargs["orders"] = self.orders
        from ..evaluation.judges import judge_options

        kwargs.update(
            judge_options(
                self.judge,
                model=self.judge_model,
                batch_size=self.batch_size,
                device=self.device,
                base_url=self.base_url,
                api_key_env=self.api_key_env,
                num_workers=self.num_workers,
                requests_per_minute=self.requests_per_minute,
            )
        )
        return kwargs


def _json_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def run_eval(config: EvalConfig) -> dict:
    """Generate (or read) the model's outputs, judge them against the baseline's, and write the results.

    Writes `model_outputs.json` (AlpacaEval format), `annotations.json` (instruction, output_1, output_2,
    generator_1, generator_2, annotator, preference) and `metrics.json` into `config.out`.

    Args:
        config (`EvalConfig`): The settings.

    Returns:
        `dict`: The metrics, with the settings and timings.
    """
    from ..data.checks import check_data_file
    from ..evaluation.baseline import match_to_baseline
    from ..evaluation.generation import generate_outputs, read_outputs
    from ..evaluation.judges import get_judge
    from ..evaluation.winrate import alpaca_eval_winrate
    from ..utils.files import atomic_write_json

    started = time.perf_counter()
    for path in (config.baseline, config.model_outputs):
        if path is not None:
            check_data_file(path)  # before any model loads: a missing, empty, non-UTF-8 or broken file
    baseline = read_outputs(config.baseline)[: config.limit]
    instructions = [r["instruction"] for r in baseline]
    baseline_name = str(baseline[0].get("generator", Path(config.baseline).stem)) if baseline else "baseline"
    if config.model_outputs is not None:
        records = read_outputs(config.model_outputs)
        predictions = match_to_baseline(records, baseline)
        name = config.name or str(records[0].get("generator", Path(config.model_outputs).stem))
    else:
        predictions = generate_outputs(
            config.model,
            instructions,
            batch_size=config.batch_size,
            max_new_tokens=config.max_new_tokens,
            template=config.template,
            progress=not config.quiet,
            device=config.device,
        )
        name = config.name or (config.model or "embedded-SmolLM2-135M-Instruct")
    out = Path(config.out)
    atomic_write_json(
        out / "model_outputs.json",
        [{"instruction": i, "output": o, "generator": name} for i, o in zip(instructions, predictions, strict=True)],
    )
    generated = time.perf_counter()
    difficulty = None
    if config.instruction_difficulty:
        difficulty = json.loads(Path(config.instruction_difficulty).read_text())[: len(instructions)]
    judge = get_judge(config.judge, **config.judge_kwargs())
    result = alpaca_eval_winrate(
        predictions,
        [r["output"] for r in baseline],
        instructions,
        judge=judge,
        instruction_difficulty=difficulty,
        empty_outputs=config.empty_outputs,
        generator=name,
        baseline=baseline_name,
        return_annotations=True,
    )
    annotations = result.pop("annotations")
    atomic_write_json(out / "annotations.json", annotations)
    metrics = {k: _json_safe(v) for k, v in result.items()}
    metrics.update(
        generator=name,
        baseline=baseline_name,
        judge=config.judge,
        judge_settings=judge.fingerprint(),
        seconds={"generation": generated - started, "judging": time.perf_counter() - generated},
    )
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def eval_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `hf-nuggets eval`.

    Args:
        argv (`Sequence[str]`, *optional*): The arguments after `eval`; `sys.argv[2:]` when omitted.

    Returns:
        `int`: The exit status (0 on success, 1 on an error, 2 on bad arguments).
    """
    from transformers import HfArgumentParser

    argv = list(sys.argv[2:] if argv is None else argv)
    parser = HfArgumentParser(EvalConfig, prog="hf-nuggets eval")
    try:
        (config,) = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as err:
        print(f"hf-nuggets eval: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # argparse: --help, or a missing or unknown argument (already printed)
        return int(exit_.code or 0)

    def action() -> None:
        metrics = run_eval(config)
        if not config.quiet:
            lc = metrics.get("length_controlled_winrate")
            print(
                f"{metrics['generator']} vs {metrics['baseline']} ({config.judge} judge): "
                f"win rate {metrics['win_rate']:.2f} +- {metrics['standard_error'] or 0:.2f}, "
                f"LC win rate {'n/a' if lc is None else f'{lc:.2f}'}, {metrics['n_total']} pairs "
                f"({metrics['n_wins']} wins, {metrics['n_wins_base']} losses, {metrics['n_draws']} draws, "
                f"{metrics['n_skipped']} skipped), avg length {metrics['avg_length']}\n"
                f"Wrote {config.out}/model_outputs.json, {config.out}/annotations.json and {config.out}/metrics.json"
            )

    return run_command("eval", action, verbose=config.verbose, token=config.token)
