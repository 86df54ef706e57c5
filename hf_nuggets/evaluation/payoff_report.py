"""The evaluation half of a payoff run: the evaluation set and its baseline, the judge, the comparisons of the arms
with the baseline and with each other, and the report files (`payoff.md`, `payoff.png`) that `hf-nuggets card` reads.

Win rates come from `alpaca_eval_winrate`, the function the `evaluate` metric runs, on the judge's preferences; the
annotations of each comparison are written beside the report, so anyone can recompute its numbers.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .generation import read_json_records
from .judges import PairwiseJudge, Verdict
from .winrate import check_preferences

logger = logging.getLogger(__name__)

COMPARISONS_DIR = "comparisons"
TO_ANNOTATE_FILE = "to_annotate.json"
TABLE_FILE = "payoff.md"
PLOT_FILE = "payoff.png"
VERDICTS_DIR = "verdicts"
#: The skip reason of a pair the precomputed annotations do not cover.
NOT_ANNOTATED = "not annotated"
#: The numbers of a comparison kept in the report.
METRIC_KEYS = (
    "win_rate",
    "standard_error",
    "length_controlled_winrate",
    "lc_standard_error",
    "lc_variant",
    "discrete_win_rate",
    "n_wins",
    "n_wins_base",
    "n_draws",
    "n_total",
    "n_skipped",
    "avg_length",
)
_SHOWN_CHARS = 80


def _shorten(text: str, width: int = _SHOWN_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


# -- the evaluation set and its baseline ------------------------------------------------------------------------------
@dataclass
class Evaluation:
    """The evaluation instructions, the baseline's outputs for them (same order) and where both came from."""

    instructions: list[str]
    references: list[str]
    baseline_name: str
    source: str
    baseline_source: str
    difficulty: list[float] | None = None

    def record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "instructions": len(self.instructions),
            "baseline": self.baseline_name,
            "baseline_source": self.baseline_source,
            "instruction_difficulty": self.difficulty is not None,
        }


def align_baseline(instructions: Sequence[str], baseline: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The baseline's output for each evaluation instruction, in the evaluation set's order.

    The baseline must answer exactly the evaluation instructions (each as many times as it occurs).

    Raises:
        `ValueError`: The instructions differ; the error counts the evaluation instructions without a baseline
            output and the baseline outputs for other instructions, and shows one.

    Example:

    ```python
    >>> align_baseline(["b", "a"], [{"instruction": "a", "output": "1"}, {"instruction": "b", "output": "2"}])
    ['2', '1']
    ```
    """
    wanted = Counter(instructions)
    given = Counter(record["instruction"] for record in baseline)
    missing, extra = wanted - given, given - wanted
    if missing or extra:
        n_missing, n_extra = sum(missing.values()), sum(extra.values())
        example = next(iter(missing or extra))
        raise ValueError(
            f"The baseline does not match the evaluation set: {n_missing + n_extra} mismatches ({n_missing} of the "
            f"{len(instructions)} evaluation instructions have no baseline output, {n_extra} of the {len(baseline)} "
            f"baseline outputs answer other instructions), e.g. {_shorten(example)!r}."
        )
    queues: dict[str, list] = defaultdict(list)
    for record in baseline:
        queues[record["instruction"]].append(record["output"])
    return [queues[instruction].pop(0) for instruction in instructions]


def load_evaluation(config: Any) -> Evaluation:
    """Read the evaluation set (`config.eval_set`, first `config.eval_limit` rows), its baseline (`config.baseline`,
    else its `output` column) and the instruction difficulties, checking them against each other."""
    from .generation import load_alpaca_eval, read_outputs

    dataset = load_alpaca_eval(config.eval_set)  # an error when it has no `instruction` column
    limit = config.eval_limit
    instructions = list(dataset["instruction"])[:limit]
    if not instructions:
        raise ValueError(f"The evaluation set {config.eval_set!r} has no rows: there is nothing to answer.")
    blank = [i for i, text in enumerate(instructions) if not isinstance(text, str) or not text.strip()]
    if blank:
        raise ValueError(
            f"The evaluation set {config.eval_set!r} has {len(blank)} empty instruction(s) (first at row {blank[0]}): "
            "every row needs an instruction."
        )
    if config.baseline is not None:
        records = read_outputs(config.baseline)
        records = records[:limit] if limit is not None else records
        references = align_baseline(instructions, records)
        name = str(records[0].get("generator") or Path(config.baseline).stem)
        baseline_source = str(config.baseline)
    elif "output" in dataset.column_names:
        references = list(dataset["output"])[:limit]
        generators = dataset["generator"] if "generator" in dataset.column_names else None
        name = str(generators[0]) if generators and generators[0] else "reference"
        baseline_source = f"the `output` column of {config.eval_set}"
    else:
        raise ValueError(
            f"No baseline: the evaluation set {config.eval_set!r} has no `output` column; pass `baseline` (AlpacaEval "
            "outputs of another model for the same instructions)."
        )
    difficulty = None
    if config.instruction_difficulty:
        values = json.loads(Path(config.instruction_difficulty).read_text(encoding="utf-8"))
        if not isinstance(values, list) or len(values) < len(instructions):
            raise ValueError(
                f"`instruction_difficulty` must be a JSON list of at least {len(instructions)} numbers (one per "
                "instruction)."
            )
        difficulty = [float(v) for v in values[: len(instructions)]]
    return Evaluation(
        instructions, [str(r) for r in references], name, str(config.eval_set), baseline_source, difficulty
    )


# -- judges -----------------------------------------------------------------------------------------------------------
def read_annotations(path: str | os.PathLike) -> list[dict]:
    """AlpacaEval annotations (a JSON list or JSONL of `{instruction, output_1, output_2, preference}`)."""
    records = read_json_records(path, "`annotations`")
    return records if isinstance(records, list) else [records]


class AnnotationsJudge(PairwiseJudge):
    """The `precomputed` judge of a payoff run: it reads each pair's preference from AlpacaEval annotations.

    A pair is found by its instruction and its two outputs, in either order (an annotation of the pair the other way
    round gives `3 - preference`). `missing` lists the pairs no annotation covers.

    Args:
        annotations (`list[dict]`): Records with `instruction`, `output_1`, `output_2` and `preference` (in [1, 2],
            2: `output_2` wins; 0 or 1.5: a draw; `None`: no verdict).
    """

    name = "precomputed"

    def __init__(self, annotations: Sequence[Mapping[str, Any]] = (), **kwargs: Any):
        kwargs.setdefault("orders", "fixed")
        super().__init__(use_cache=False, **kwargs)
        self._table: dict[tuple[str, str, str], float] = {}
        for i, record in enumerate(annotations):
            if not isinstance(record, Mapping) or not {"instruction", "output_1", "output_2"} <= set(record):
                raise ValueError(
                    f"`annotations` record {i} needs `instruction`, `output_1`, `output_2`, `preference`."
                )
            (preference,) = check_preferences([record.get("preference")], name=f"annotations[{i}].preference")
            if not math.isnan(preference):
                self._table[(record["instruction"], record["output_1"], record["output_2"])] = preference - 1.0

    def fingerprint(self) -> dict:
        return {"judge": self.name, "annotations": len(self._table)}

    def _lookup(self, instruction: str, output_1: str, output_2: str) -> float | None:
        if (instruction, output_1, output_2) in self._table:
            return self._table[(instruction, output_1, output_2)]
        if (instruction, output_2, output_1) in self._table:
            return 1.0 - self._table[(instruction, output_2, output_1)]
        return None

    def _score(self, items: list[tuple[str, str, str]], on_result: Callable[[int, Verdict], None]) -> None:
        for j, item in enumerate(items):
            p = self._lookup(*item)
            on_result(j, (p, None, None) if p is not None else (None, NOT_ANNOTATED, None))

    def missing(self, instructions: Sequence[str], predictions: Sequence[str], references: Sequence[str]) -> list:
        """The `(instruction, reference, prediction)` pairs no annotation covers (identical outputs need none)."""
        return [
            (i, r, p)
            for i, p, r in zip(instructions, predictions, references, strict=True)
            if p != r and self._lookup(i, r, p) is None
        ]


def make_judge(config: Any, out: Path) -> PairwiseJudge:
    """The judge a `PayoffConfig` names; the verdict cache of `local` and `openai` lives in `OUT/verdicts` unless
    `cache_dir` says otherwise, so a rerun after a failure pays only for the pairs not judged yet."""
    from .judges import get_judge, judge_options

    kwargs: dict[str, Any] = {"progress": not config.quiet}
    if config.orders is not None:
        kwargs["orders"] = config.orders
    if config.judge == "precomputed":
        return AnnotationsJudge(read_annotations(config.annotations) if config.annotations else [], **kwargs)
    kwargs["cache_dir"] = config.cache_dir or str(out / VERDICTS_DIR)
    kwargs.update(
        judge_options(
            config.judge,
            model=config.judge_model,
            batch_size=config.generation_batch_size,
            device=config.device,
            base_url=config.base_url,
            api_key_env=config.api_key_env,
            num_workers=config.num_workers,
            requests_per_minute=config.requests_per_minute,
        )
    )
    return get_judge(config.judge, **kwargs)


def judge_record(judge: Any) -> dict[str, Any]:
    """What the report says of the judge: its name and settings (never a secret)."""
    from ..utils.secrets import redact_url

    settings = judge.fingerprint() if hasattr(judge, "fingerprint") else {}
    if isinstance(settings.get("base_url"), str):
        settings = {**settings, "base_url": redact_url(settings["base_url"])}
    return {"name": getattr(judge, "name", type(judge).__name__), "settings": settings}


def public_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The run settings for the report, with any key carried in `base_url` masked."""
    from ..utils.secrets import redact_url

    settings = dict(settings)
    if settings.get("base_url"):
        settings["base_url"] = redact_url(settings["base_url"])
    return settings


# -- comparisons ------------------------------------------------------------------------------------------------------
def comparison_pairs(arms: Sequence[str]) -> list[tuple[str, str]]:
    """Each arm against the baseline, then each pair of arms (in arm order).

    Example:

    ```python
    >>> comparison_pairs(["top", "random"])
    [('top', 'baseline'), ('random', 'baseline'), ('top', 'random')]
    ```
    """
    arms = list(arms)
    return [(arm, "baseline") for arm in arms] + [(a, b) for i, a in enumerate(arms) for b in arms[i + 1 :]]


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def judge_all(
    judge: Any, evaluation: Evaluation, outputs: Mapping[str, Sequence[str]], config: Any, out: Path
) -> dict[tuple[str, str], dict[str, Any]]:
    """Judge every comparison of `comparison_pairs` and compute its win rates; write its annotations to
    `OUT/comparisons/<arm>_vs_<other>.json`.

    With the precomputed judge, the pairs its annotations lack (over all comparisons) are written to
    `OUT/to_annotate.json` and reported in one error before anything is computed.
    """
    from ..utils.files import atomic_write_json
    from .winrate import alpaca_eval_winrate

    pairs = comparison_pairs(list(outputs))

    def sides(a: str, b: str) -> tuple[list[str], list[str], str]:
        if b == "baseline":
            return list(outputs[a]), list(evaluation.references), evaluation.baseline_name
        return list(outputs[a]), list(outputs[b]), b

    if isinstance(judge, AnnotationsJudge):
        lacking, seen = [], set()
        for a, b in pairs:
            predictions, references, other = sides(a, b)
            keep = [
                k
                for k in range(len(predictions))
                if config.empty_outputs != "skip" or (predictions[k].strip() and references[k].strip())
            ]
            for instruction, reference, prediction in judge.missing(
                [evaluation.instructions[k] for k in keep],
                [predictions[k] for k in keep],
                [references[k] for k in keep],
            ):
                if (instruction, reference, prediction) in seen or (instruction, prediction, reference) in seen:
                    continue  # one annotation serves every comparison of the same two answers, in either order
                seen.add((instruction, reference, prediction))
                lacking.append(
                    {
                        "instruction": instruction,
                        "output_1": reference,
                        "output_2": prediction,
                        "generator_1": other,
                        "generator_2": a,
                    }
                )
        if lacking:
            path = atomic_write_json(out / TO_ANNOTATE_FILE, lacking)
            raise ValueError(
                f"The precomputed annotations lack {len(lacking)} pair(s) of the {len(pairs)} comparisons; they are "
                f"in {path}. Add a `preference` to each (in [1, 2], 2: `output_2` wins) and pass the file as "
                "`annotations` (the finished arms are not trained again)."
            )

    results: dict[tuple[str, str], dict[str, Any]] = {}
    for a, b in pairs:
        predictions, references, other = sides(a, b)
        name = f"{a}_vs_{b}.json"
        try:
            result = alpaca_eval_winrate(
                predictions,
                references,
                evaluation.instructions,
                judge=judge,
                instruction_difficulty=evaluation.difficulty,
                empty_outputs=config.empty_outputs,
                generator=a,
                baseline=other,
                return_annotations=True,
            )
        except ValueError as err:
            if not str(err).startswith("No pair has a preference"):
                raise
            logger.warning("%s vs %s: %s", a, b, err)
            results[(a, b)] = {"n_total": 0, "n_skipped": len(predictions), "note": str(err)}
            continue
        atomic_write_json(out / COMPARISONS_DIR / name, result.pop("annotations"))
        metrics = {key: _json_safe(result.get(key)) for key in METRIC_KEYS if key in result}
        results[(a, b)] = {**metrics, "annotations_file": f"{COMPARISONS_DIR}/{name}"}
    return results


# -- report files -----------------------------------------------------------------------------------------------------
def arm_label(arm: Mapping[str, Any] | str, report: Mapping[str, Any]) -> str:
    """A readable name of an arm: `top 5% by golden score`, `random 5% (seed 42)`, `all rows`, `bottom 5%`."""
    name = arm if isinstance(arm, str) else arm["name"]
    data = report.get("data", {})
    percent = f"{data.get('top_percent', 0):g}%"
    return {
        "top": f"top {percent} by golden score",
        "random": f"random {percent} (seed {data.get('seed')})",
        "all": "all rows",
        "bottom": f"bottom {percent} by golden score",
    }.get(name, name)


def _cell(metrics: Mapping[str, Any], value: str, error: str) -> str:
    if metrics.get(value) is None:
        return "n/a"
    se = metrics.get(error)
    return f"{metrics[value]:.1f}" + (f" ± {se:.1f}" if se is not None else "")


def _escape(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def payoff_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: one sentence on how it was made, a table per arm against the baseline, and the
    head-to-head table. `payoff.md` holds it; the dataset card shows it under "Does it pay off?"."""
    from ..publish.card import public_name

    training, evaluation = report.get("training", {}), report.get("evaluation", {})
    baseline = _escape(evaluation.get("baseline", "the baseline"))
    judge = _escape((report.get("judge") or {}).get("name", "?"))
    base, source = _escape(public_name(report.get("base_model"))), _escape(public_name(evaluation.get("source")))
    epochs, rate = training.get("num_train_epochs", math.nan), training.get("learning_rate", math.nan)
    batch, accumulation = training.get("per_device_train_batch_size"), training.get("gradient_accumulation_steps", 1)
    lines = [
        f"Copies of `{base}` were fine-tuned with TRL's `SFTTrainer` on each arm, with the same settings ({epochs:g} "
        f"epochs, learning rate {rate:g}, {batch} rows per batch x {accumulation} accumulation, seed "
        f"{training.get('seed')}). Each answered {evaluation.get('instructions', '?')} instructions of `{source}`, "
        f"and the `{judge}` judge compared the answers with `{baseline}`'s and with each other's. Win rates in "
        "percent ± one standard error; LC is AlpacaEval 2.0's length-controlled win rate (n/a with fewer than 5 "
        "judged pairs). A difference within about two standard errors can be noise.",
        "",
        f"| Arm | Rows | Optimizer steps | Win rate vs `{baseline}` | LC win rate | Judged pairs |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for arm in report.get("arms", []):
        metrics = arm.get("vs_baseline", {})
        lines.append(
            f"| {_escape(arm_label(arm, report))} | {arm.get('rows')} | {arm.get('optimizer_steps')} | "
            f"{_cell(metrics, 'win_rate', 'standard_error')} | "
            f"{_cell(metrics, 'length_controlled_winrate', 'lc_standard_error')} | {metrics.get('n_total')} |"
        )
    head = report.get("head_to_head", [])
    if head:
        lines += [
            "",
            "| Head to head | Win rate of the first | LC win rate | Judged pairs |",
            "| --- | ---: | ---: | ---: |",
        ]
        for entry in head:
            lines.append(
                f"| {_escape(entry['arm'])} vs {_escape(entry['versus'])} | "
                f"{_cell(entry, 'win_rate', 'standard_error')} | "
                f"{_cell(entry, 'length_controlled_winrate', 'lc_standard_error')} | {entry.get('n_total')} |"
            )
    return "\n".join(lines) + "\n"


def write_report_files(out: Path, report: Mapping[str, Any]) -> None:
    """Write `payoff.md` and `payoff.png` (each arm's win rate against the baseline, ± one standard error)."""
    from ..publish.plots import winrate_png
    from ..utils.files import atomic_write_bytes, atomic_write_text

    atomic_write_text(out / TABLE_FILE, payoff_markdown(report))
    arms = report.get("arms", [])
    values = [arm.get("vs_baseline", {}).get("win_rate") for arm in arms]
    errors = [arm.get("vs_baseline", {}).get("standard_error") for arm in arms]
    png = winrate_png([arm["name"] for arm in arms], values, errors)
    atomic_write_bytes(out / PLOT_FILE, png)


def find_payoff_report(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The payoff report that belongs to an `hf-nuggets score` output folder, or `None`.

    It is `FOLDER/payoff/payoff.json` (where `hf-nuggets payoff FOLDER` writes by default), or, for the folder
    `OUT/scored` that a payoff run scored its data into, `OUT/payoff.json`.
    """
    from ..train.payoff import REPORT_FILE, SCORED_DIR

    folder = Path(folder)
    candidates = [folder / "payoff" / REPORT_FILE]
    if folder.name == SCORED_DIR:
        candidates.append(folder.parent / REPORT_FILE)
    for path in candidates:
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                logger.warning("Ignoring the unreadable payoff report %s (%s).", path, err)
    return None
