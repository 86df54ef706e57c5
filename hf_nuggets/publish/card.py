"""Dataset cards for golden-scored data: how it was made, what was kept, a score histogram, the diversity of the text.

Cards are rendered from the Jinja template shipped in `card_templates/` with `DatasetCard.from_template`: the
`{{ card_data }}` YAML the Hub reads (license, task categories, size category, tags, source datasets, `dataset_info`,
`configs`) on top of a Markdown body. The histogram image is written by
`hf_nuggets.publish.plots.write_histogram_png`; the diversity figures come from
`hf_nuggets.publish.diversity.diversity_report`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..data.formatting import resolve_columns
from ..gates import ALIGNMENT_COLUMN, COMPLETENESS_COLUMN, FLAGS_COLUMN, flag_counts, flag_line
from ..selection import GAIN_COLUMN, SCORE_COLUMN, Selection, check_percent, dataset_gated, rank_order, top_indices
from ..summary import describe_tasks, example_texts, histogram, score_quantiles
from .diversity import diversity_report

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "dataset_card.md"
TEMPLATE_PACKAGE = "hf_nuggets.card_templates"
HISTOGRAM_FILE = "score_histogram.png"
SCORED_CONFIG = "scored"
TAGS = ("hf-nuggets", "golden-score", "data-selection")
TASK_CATEGORIES = ("text-generation",)
SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B")
SIZE_CATEGORIES += ("1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T")
NOT_RECORDED = "not recorded"
_LOCAL_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".arrow", ".txt", ".tsv", ".gz", ".zst")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
COLUMN_MEANINGS = {
    SCORE_COLUMN: "Golden score in [0, 1]: the fraction of the tasks whose answer got more likely when this row was "
    "the one-shot demonstration.",
    GAIN_COLUMN: "Mean change of the tasks' answer log-likelihood (one-shot minus zero-shot); breaks score ties.",
    "nuggets_one_shot": "One-shot score of each task with this row as the demonstration.",
    ALIGNMENT_COLUMN: "Mean log-likelihood of the row's answer after its own prompt minus after the bare response cue "
    "(log of 1/IFD); at or below the gate's threshold the answer does not belong to its question.",
    COMPLETENESS_COLUMN: "Log-probability of the template's end of an answer right after the answer; low when the "
    "answer was cut off.",
    FLAGS_COLUMN: "The sanity gates the row fails (empty, placeholder, unaligned, unfinished), comma-separated; "
    "flagged rows are never selected.",
    "instruction": "The instruction (question or task).",
    "input": "Optional context for the instruction.",
    "output": "The answer.",
    "messages": "The conversation, as `{role, content}` messages.",
    "flaw": "For the hf-nuggets sample data: how the row was deliberately spoiled (empty for good rows).",
}


# ---------------------------------------------------------------------------------------------------------------------
# Template and configuration layout


def card_template_path(name: str = TEMPLATE_NAME) -> Path:
    """Where the card template `name` is: the package data of `hf_nuggets.card_templates`, and nowhere else.

    The templates live in the repository's top-level `card_templates/` folder, which `pyproject.toml` installs as
    the package `hf_nuggets.card_templates` (in a wheel and in an editable install alike), so one lookup finds them.

    Args:
        name (`str`, *optional*, defaults to `"dataset_card.md"`): The template's file name.

    Returns:
        `pathlib.Path`: The template file.

    Example:

    ```python
    >>> card_template_path().name
    'dataset_card.md'
    ```
    """
    try:
        candidate = resources.files(TEMPLATE_PACKAGE) / name
    except ModuleNotFoundError:
        candidate = None
    if candidate is None or not candidate.is_file():
        raise FileNotFoundError(
            f"Card template `{name}` is missing from the package (looked in `{TEMPLATE_PACKAGE}`). "
            "Reinstall hf-nuggets (`pip install --force-reinstall hf-nuggets`), or pass `template_path=`."
        )
    return Path(str(candidate))


def selection_config_name(top_percent: float) -> str:
    """Name of the configuration holding the top `top_percent`%: `top5`, `top2_5`, ...

    Example:

    ```python
    >>> selection_config_name(5), selection_config_name(2.5)
    ('top5', 'top2_5')
    ```
    """
    return f"top{check_percent(top_percent, 'top_percent'):g}".replace(".", "_")


def data_pattern(config_name: str) -> str:
    """The data files of a configuration inside the repo, as the `datasets` library lays them out."""
    return f"{config_name}/train-*"


def check_scored(scored: Any, top_percent: float | None) -> None:
    """Fail early, before anything is written or sent, on data that cannot be described or published."""
    if not hasattr(scored, "column_names") or not hasattr(scored, "__len__"):
        raise TypeError(f"`scored` must be a `datasets.Dataset`, got {type(scored).__name__}.")
    if top_percent is not None:
        check_percent(top_percent, "top_percent")
    if SCORE_COLUMN not in scored.column_names:
        what = f"selecting the top {top_percent:g}%" if top_percent is not None else "the dataset card"
        raise KeyError(
            f"Column `{SCORE_COLUMN}` not found, and {what} needs golden scores: score the dataset first "
            "(see `GoldenScorer`)."
        )
    if len(scored) == 0:
        raise ValueError("`scored` is empty: the selection would be empty and there is nothing to publish.")


def size_category(num_rows: int) -> str:
    """The Hub's size category for `num_rows` rows: `n<1K`, `1K<n<10K`, ..., `n>1T`."""
    return SIZE_CATEGORIES[min(max(len(str(max(int(num_rows), 1))) - 3, 0), len(SIZE_CATEGORIES) - 1)]


def is_hub_dataset_id(source: str | None) -> bool:
    """Whether `source` reads as a Hub dataset id (`name` or `namespace/name`) rather than a local file."""
    if not source or os.path.exists(source) or source.lower().endswith(_LOCAL_SUFFIXES):
        return False
    return bool(_HUB_ID.match(source)) and ".." not in source and "--" not in source


# ---------------------------------------------------------------------------------------------------------------------
# Card


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#])")
_LIMIT_NAMES = {"max_demo_tokens": "demonstration", "max_prompt_tokens": "task prompt", "max_answer_tokens": "answer"}
_QUANTILES = (("q0", "minimum"), ("q10", "10th percentile"), ("q25", "25th percentile"), ("q50", "median"))
_QUANTILES += (("q75", "75th percentile"), ("q90", "90th percentile"), ("q100", "maximum"), ("mean", "mean"))


def markdown_cell(text: Any, width: int = 100) -> str:
    """Text made safe for a Markdown table cell: one line, at most `width` characters, Markdown escaped.

    Example:

    ```python
    >>> markdown_cell("a | b\\n<c>")
    'a \\\\| b \\\\<c\\\\>'
    ```
    """
    text = " ".join(str(text if text is not None else "").split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    return _MD_SPECIAL.sub(r"\\\1", text)


def markdown_code(text: Any) -> str:
    """Text as an inline code span that is safe in a Markdown table cell (no backticks, pipes escaped)."""
    return "`" + " ".join(str(text).replace("`", "'").split()).replace("|", "\\|") + "`"


def public_name(value: Any) -> Any:
    """A model or data name fit to publish: a local path is cut to its file name (cards must not leak local paths).

    Example:

    ```python
    >>> public_name("/home/alice/models/tiny"), public_name("HuggingFaceTB/SmolLM2-135M-Instruct")
    ('tiny (a local path)', 'HuggingFaceTB/SmolLM2-135M-Instruct')
    ```
    """
    if not isinstance(value, str) or not value:
        return value
    local = value.startswith((".", "~")) or os.path.isabs(value) or value.count("/") > 1 or os.path.exists(value)
    return f"{Path(value).name} (a local path)" if local else value


def _source_text(source: str | None) -> str:
    """How the card names the source: a local path is cut to its file name, so the card leaks no local path."""
    if not source:
        return "an instruction dataset"
    if is_hub_dataset_id(source):
        return f"[{markdown_code(source)}](https://huggingface.co/datasets/{source})"
    return f"{markdown_code(Path(source).name)} (a local file)"


def _settings(summary: Mapping[str, Any], task_set: Any) -> dict[str, str]:
    """The "how it was made" values of the run summary, as Markdown ("not recorded" where missing)."""

    def code(key: str) -> str:
        return markdown_code(public_name(summary[key])) if summary.get(key) else NOT_RECORDED

    def listing(values: Mapping[str, Any] | None, names: Mapping[str, str]) -> str:
        items = (values or {}).items()
        return ", ".join(f"{names.get(k, k.replace('_', ' '))} {markdown_cell(v)}" for k, v in items) or NOT_RECORDED

    timings = summary.get("timings") or {}
    steps = (("load_s", "model load"), ("tasks_s", "task set"), ("zero_shot_s", "zero-shot"), ("scoring_s", "scoring"))
    timing = [f"{label} {timings[key]:.1f} s" for key, label in steps if timings.get(key) is not None]
    if timings.get("pairs_per_s") is not None:
        timing.append(f"{timings['pairs_per_s']:.1f} candidate-task pairs/s")
    task_set = task_set if task_set is not None else summary.get("task_set") or describe_tasks(summary.get("tasks"))
    if isinstance(task_set, Mapping):
        task_set = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in task_set.items() if v not in (None, ""))
    rows = summary.get("rows_scored")
    scored = f"{rows} of {summary.get('rows_total', '?')} rows of the source" if rows is not None else NOT_RECORDED
    if summary.get("stopped_early"):
        scored += f" (stopped at the {summary.get('max_seconds')} s time budget)"
    templates = {
        "alpaca": "`alpaca`: the NUGGETS prompt, `Instruction:` / `Input:` / `Response:`",
        "chat": "`chat`: the prospector tokenizer's chat template",
    }
    return {
        "model": code("model"),
        "model_revision": code("model_revision"),
        "template": templates.get(summary.get("template"), code("template")),
        "limits": listing(summary.get("limits"), _LIMIT_NAMES),
        "truncation": listing(summary.get("truncation"), {}),
        "num_tasks": f"{summary['num_tasks']} tasks" if summary.get("num_tasks") else "Task count not recorded",
        "task_set": markdown_cell(task_set, 1000) if task_set else "",
        "rows_scored": scored,
        "timings": ", ".join(timing) or NOT_RECORDED,
        "device": code("device"),
        "version": markdown_cell(f"hf-nuggets {summary['hf_nuggets_version']}")
        if summary.get("hf_nuggets_version")
        else NOT_RECORDED,
        "created_at": markdown_cell(summary.get("created_at") or NOT_RECORDED),
    }


def _examples(
    dataset: Any, indices: Sequence[int], ranks: Sequence[int], columns: Mapping[str, str | None] | None = None
) -> list[dict[str, Any]]:
    """The rows at `indices` as table cells: rank, row, score, gain, and the instruction and output snippets read
    through the column mapping `columns` (chat rows: the user turn and the answer; see `example_texts`)."""
    rows = dataset.select([int(i) for i in indices]).to_dict() if len(indices) else {}
    instructions, outputs = example_texts(rows, columns)
    out = []
    for j, (row, rank) in enumerate(zip(indices, ranks, strict=True)):
        instruction, output = instructions[j], outputs[j]
        gain = rows[GAIN_COLUMN][j] if GAIN_COLUMN in rows else None
        out.append(
            {
                "rank": rank,
                "row": int(row),
                "golden_score": f"{rows[SCORE_COLUMN][j]:.3f}",
                "gain": f"{gain:+.3f}" if gain is not None else "",
                "instruction": markdown_cell(instruction),
                "output": markdown_cell(output),
                "flags": markdown_cell((rows.get(FLAGS_COLUMN) or [""] * len(indices))[j]),
            }
        )
    return out


def _mapped_text_columns(names: Sequence[str], columns: Mapping[str, str | None] | None) -> list[str] | None:
    """The data's text columns under the column mapping `columns` (`None` without a mapping, or when it does not
    fit the data: the diversity section then finds the columns by their usual names)."""
    if not columns:
        return None
    try:
        mapping = resolve_columns(list(names), columns)
    except (KeyError, ValueError):
        return None
    if "messages" in mapping:
        return [mapping["messages"]]
    return [mapping[key] for key in ("instruction", "input", "output") if mapping.get(key)]


def _diversity_rows(report: Mapping[str, Any], selected_config: str | None) -> dict[str, Any]:
    """The diversity table: one row per set, each estimate with its error bound."""

    def cell(stats: Mapping[str, Any], key: str, digits: int) -> str:
        value, bound = stats[key], stats.get(f"{key}_bound")
        text = f"{value:,.{digits}f}"
        return text + (f" ± {bound:,.{digits}f}" if bound is not None else "")

    rows = []
    for key, name in (("full", f"Full set (`{SCORED_CONFIG}`)"), ("selected", f"Selection (`{selected_config}`)")):
        if stats := report.get(key):
            cells = [f"{int(stats['n']):,}", cell(stats, "f0", 0), cell(stats, "repeat_rate", 6)]
            rows.append({"name": name, "cells": cells + [cell(stats, "effective_distinct", 0)]})
    full = report.get("full", {})
    eps, delta = full.get("f2_epsilon"), full.get("f2_delta")
    return {
        "n": report.get("n", 2),
        "rows": rows,
        "f0_error": f"{full['f0_relative_standard_error']:.1%}" if "f0_relative_standard_error" in full else "",
        "f2_error": f"{eps:.0%}" if eps is not None else "",
        "effective_error": f"{eps / (1 - eps):.0%}" if eps is not None else "",
        "confidence": f"{int((1 - delta) * 100)}%" if delta is not None else "",
    }


def _redundancy(selection: Selection | None) -> dict[str, Any] | None:
    """What the card says about a diverse top: its threshold, the rows skipped as redundant, how neighbours were found
    (`None` for a plain top)."""
    if selection is None or selection.min_distance is None:
        return None
    neighbours = selection.neighbours or {}
    if neighbours.get("method") == "lsh":
        how = (
            f"near rows found by SimHash LSH, {neighbours['n_bits_per_table']} bits x {neighbours['n_tables']} "
            f"tables, which finds a kept row at the threshold with probability "
            f"{neighbours['recall_at_threshold']:.3g} and closer rows more often"
        )
    else:
        how = "near rows found by exact search"
    return {
        "min_distance": f"{selection.min_distance:g}",
        "rows": selection.redundant,
        "embeddings": markdown_cell(neighbours.get("embeddings", NOT_RECORDED)),
        "how": how,
    }


def card_context(
    scored: Any,
    *,
    summary: Mapping[str, Any] | None = None,
    top_percent: float | None = 5,
    repo_id: str | None = None,
    pretty_name: str | None = None,
    source: str | None = None,
    license: str | None = None,
    task_set_description: str | None = None,
    examples: int = 5,
    diversity: bool | Mapping[str, Any] = True,
    histogram_image: str | None = HISTOGRAM_FILE,
    text_columns: Sequence[str] | None = None,
    gates: str | Sequence[str] | None = "all",
    columns: Mapping[str, str | None] | None = None,
    selection: Selection | None = None,
) -> dict[str, Any]:
    """The variables the card template is rendered with (see `build_dataset_card` for the arguments)."""
    check_scored(scored, top_percent)
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 0:
        raise ValueError(f"`examples` must be a non-negative integer, got {examples!r}.")
    summary = dict(summary or {})
    mapping = columns if columns is not None else summary.get("columns")
    if text_columns is None:
        text_columns = _mapped_text_columns(scored.column_names, mapping)
    total = len(scored)
    scores = np.asarray(scored[SCORE_COLUMN], dtype=np.float64)
    gains = np.asarray(scored[GAIN_COLUMN], dtype=np.float64) if GAIN_COLUMN in scored.column_names else None
    gated = dataset_gated(scored, gates)
    ungated = np.flatnonzero(~gated) if gated is not None else np.arange(total)
    order = rank_order(scores, gains, gated)
    if top_percent is None:
        chosen = order
    elif selection is not None:
        chosen = selection.indices
    else:
        chosen = top_indices(scores, gains, gated, percent=top_percent)
    kept = len(chosen)
    selected_config = selection_config_name(top_percent) if top_percent is not None else None
    configs = [{"name": SCORED_CONFIG, "variable": "scored", "rows": total, "default": selected_config is None}]
    configs[0]["description"] = "every row with its golden score, in the source order"
    if selected_config:
        description = f"the top {top_percent:g}% by golden score, best first"
        if redundancy := _redundancy(selection):
            description += f", no two rows within cosine distance {redundancy['min_distance']}"
        configs.append(
            {"name": selected_config, "variable": "nuggets", "rows": kept, "default": True, "description": description}
        )
    features = scored.features
    columns = [
        {
            "name": markdown_code(name),
            "dtype": markdown_code(getattr(features[name], "dtype", type(features[name]).__name__)),
            "description": COLUMN_MEANINGS.get(name, ""),
        }
        for name in scored.column_names
    ]
    quantiles = [score_quantiles(scores)] + ([score_quantiles(scores[chosen])] if selected_config else [])
    bins = [  # the rows no gate flags: flagged rows are counted apart
        {"range": f"[{lo:.1f}, {hi:.1f}{']' if hi == 1 else ')'}", "rows": c, "kept": k, "dropped": c - k}
        for (lo, hi, c), (_, _, k) in zip(histogram(scores[ungated]), histogram(scores[chosen]), strict=True)
    ]
    flagged = None
    if gated is not None:
        flags = scored[FLAGS_COLUMN]
        counts = flag_counts(flags, gates)
        flagged = {"rows": int(gated.sum()), "line": flag_line(flags, gates), "gates": ", ".join(counts)}
    k_best = min(examples, total)
    report = diversity if isinstance(diversity, Mapping) else None
    if diversity is True:
        report = diversity_report(scored, chosen if selected_config else None, text_columns=text_columns)
    return {
        "title": markdown_cell(pretty_name or (repo_id.split("/")[-1] if repo_id else "Golden-scored data"), 200),
        "repo_id": repo_id or "<namespace>/<name>",
        "source": _source_text(source if source is not None else summary.get("source")),
        "top_percent": f"{top_percent:g}" if top_percent is not None else None,
        "total": total,
        "kept": kept,
        "dropped": total - kept,
        "kept_share": f"{kept / total:.1%}",
        "threshold": f"{scores[chosen[-1]]:.3f}" if kept else "none",
        "flagged": flagged,
        "redundancy": _redundancy(selection) if selected_config else None,
        "scored_config": SCORED_CONFIG,
        "selected_config": selected_config,
        "histogram_image": histogram_image,
        "configs": configs,
        "columns": columns,
        "settings": _settings(summary, task_set_description),
        "quantile_columns": ["All rows"] + ([f"Kept (`{selected_config}`)"] if selected_config else []),
        "quantiles": [
            {"name": name, "cells": [f"{q[key]:.3f}" if q else "none kept" for q in quantiles]}
            for key, name in _QUANTILES
        ],
        "histogram": bins,
        "best": _examples(scored, order[:k_best], range(1, k_best + 1), mapping),
        "worst": _examples(scored, order[::-1][:k_best], range(total, total - k_best, -1), mapping),
        "diversity": _diversity_rows(report, selected_config) if report else None,
        "license": markdown_code(license) if license else None,
        "card_version": __version__,
    }


def _arrow_nbytes(dataset: Any, indices: Sequence[int] | None = None) -> int:
    table = dataset.with_format("arrow")[[int(i) for i in indices] if indices is not None else slice(None)]
    return int(table.nbytes)


def card_metadata(
    scored: Any,
    *,
    top_percent: float | None = 5,
    license: str | None = None,
    language: str | Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    source: str | None = None,
    pretty_name: str | None = None,
    download_sizes: Mapping[str, int] | None = None,
    gates: str | Sequence[str] | None = "all",
    selection: Selection | None = None,
) -> Any:
    """The card's YAML: license, task categories, size category, tags, source datasets, `dataset_info`, `configs`.

    `dataset_info` is written by the `datasets` library's own `DatasetInfosDict.to_dataset_card_data`, so a later
    `push_to_hub` reads and merges it.

    Returns:
        `huggingface_hub.DatasetCardData`: The metadata.
    """
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    check_scored(scored, top_percent)
    parts = {SCORED_CONFIG: None}
    if top_percent is not None:
        scores = np.asarray(scored[SCORE_COLUMN], dtype=np.float64)
        gains = np.asarray(scored[GAIN_COLUMN], dtype=np.float64) if GAIN_COLUMN in scored.column_names else None
        gated = dataset_gated(scored, gates)
        parts[selection_config_name(top_percent)] = (
            selection.indices if selection is not None else top_indices(scores, gains, gated, percent=top_percent)
        )
    infos, configs = DatasetInfosDict(), []
    for name, indices in parts.items():
        nbytes = _arrow_nbytes(scored, indices)
        splits = SplitDict()
        splits.add(SplitInfo(name="train", num_bytes=nbytes, num_examples=len(scored if indices is None else indices)))
        download = (download_sizes or {}).get(name)
        infos[name] = DatasetInfo(features=scored.features, splits=splits, download_size=download, dataset_size=nbytes)
        configs.append({"config_name": name, "data_files": [{"split": "train", "path": data_pattern(name)}]})
    configs[-1]["default"] = True  # the selection, else the scored rows
    holder = DatasetCardData()
    infos.to_dataset_card_data(holder)
    dataset_info = holder["dataset_info"] if isinstance(holder["dataset_info"], list) else [holder["dataset_info"]]
    for entry in dataset_info:
        entry.setdefault("config_name", SCORED_CONFIG)
        if entry.get("download_size") is None:
            entry.pop("download_size", None)
    languages = [language] if isinstance(language, str) else list(language) if language else None
    return DatasetCardData(
        license=license,
        language=languages,
        task_categories=list(TASK_CATEGORIES),
        size_categories=[size_category(len(scored))],
        tags=list(TAGS) + [t for t in (tags or ()) if t not in TAGS],
        source_datasets=[source] if is_hub_dataset_id(source) else None,
        pretty_name=pretty_name,
        dataset_info=dataset_info,
        configs=configs,
    )


def build_dataset_card(
    scored: Any,
    *,
    summary: Mapping[str, Any] | None = None,
    top_percent: float | None = 5,
    repo_id: str | None = None,
    pretty_name: str | None = None,
    source: str | None = None,
    license: str | None = None,
    language: str | Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    task_set_description: str | None = None,
    examples: int = 5,
    diversity: bool | Mapping[str, Any] = True,
    text_columns: Sequence[str] | None = None,
    histogram_image: str | None = HISTOGRAM_FILE,
    download_sizes: Mapping[str, int] | None = None,
    template_path: str | os.PathLike | None = None,
    gates: str | Sequence[str] | None = "all",
    columns: Mapping[str, str | None] | None = None,
    min_distance: float | None = None,
    embedder: Any = None,
    selection: Selection | None = None,
):
    """Build the dataset card of golden-scored data (and of its top `top_percent`%), offline.

    The card is rendered from the package's `card_templates/dataset_card.md` with `DatasetCard.from_template`. Its
    YAML has the license, task categories, size category, tags, source datasets, `dataset_info` and `configs` (a
    `scored` configuration with every row and a `top<p>` one with the selection, the default); its text says how
    the data was made (method and citations, prospector, template, truncation limits, task set, selection rule,
    timings, library version), what was kept, the score quantiles and histogram, the best and worst examples, and the
    diversity of the full set and the selection.

    Args:
        scored (`datasets.Dataset`): Rows with a `golden_score` column (and `nuggets_gain`), as `GoldenScorer` or
            `prospect` give them.
        summary (`dict`, *optional*): The run summary (`summary.json` of `prospect`): model, revision, template,
            limits, truncation, task count, timings, version, source, column mapping. Missing items read "not
            recorded".
        top_percent (`float`, *optional*, defaults to `5`): Describe the selection of the top `top_percent`% (as
            `select_top`); `None` to describe the scored rows only.
        repo_id (`str`, *optional*): The Hub repo, used in the loading example and the title.
        pretty_name (`str`, *optional*): Title of the card and `pretty_name` in its YAML.
        source (`str`, *optional*): Where the data came from (default: the summary's `source`); a Hub dataset id
            goes into `source_datasets`, a local path is shown by its file name only.
        license (`str`, *optional*): License id of the source data (e.g. `"cc-by-nc-4.0"`), passed through.
        language (`str` or `list[str]`, *optional*): Language code(s) of the data.
        tags (`list[str]`, *optional*): Tags added to `hf-nuggets`, `golden-score`, `data-selection`.
        task_set_description (`str`, *optional*): How the task set was chosen and refined (default: the summary's
            `task_set`, else a sentence made from its `tasks` record, see `hf_nuggets.summary.describe_tasks`).
        examples (`int`, *optional*, defaults to `5`): How many best and worst examples to show.
        diversity (`bool` or `dict`, *optional*, defaults to `True`): Add the diversity section, computed with
            `hf_nuggets.publish.diversity.diversity_report`; a dict is used as that report; `False` leaves the
            section out.
        text_columns (`list[str]`, *optional*): Columns whose text the diversity section counts (default: the
            mapped text columns, else `instruction`, `input`, `output` or `messages`).
        histogram_image (`str`, *optional*, defaults to `"score_histogram.png"`): Path of the histogram image in
            the repo (write it with `hf_nuggets.publish.plots.write_histogram_png`); `None` to show no image.
        download_sizes (`dict[str, int]`, *optional*): Bytes of each configuration's parquet files, for
            `dataset_info`.
        template_path (`str`, *optional*): Another Jinja template (default: `card_template_path()`).
        gates (`str` or `list[str]`, *optional*, defaults to `"all"`): The gates whose flagged rows are kept out of
            the selection and counted apart (see `select_top`); `None` to rank by golden score alone.
        columns (`dict`, *optional*): How the rows' texts are read, as `GoldenScorer`'s `columns` (e.g.
            `{"instruction": "prompt", "output": "response"}`, or `{"messages": "conversation"}`); default: the
            summary's `columns`, else the usual names. The best and worst examples show the mapped texts (the
            user turn and the answer of chat rows).
        min_distance (`float`, *optional*): Describe a diverse top (see `select_top`): rows within this cosine
            distance of a better kept row are skipped, and the card says how many.
        embedder (*optional*): The embedder of the diverse top (see `select_top`); the embedded all-MiniLM-L6-v2
            when omitted.
        selection (`Selection`, *optional*): The top already chosen by `top_selection` with these `top_percent`,
            `gates` and `min_distance` (the Hub export passes the one it publishes), instead of choosing it again.

    Returns:
        `huggingface_hub.DatasetCard`: The card; `card.save("README.md")` writes it.

    Example:

    ```python
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"instruction": ["a", "b"], "output": ["x", "y"], "golden_score": [0.2, 0.9],
    ...                         "nuggets_gain": [0.0, 0.1]})
    >>> card = build_dataset_card(ds, top_percent=50, diversity=False)
    >>> card.data.configs[1]["config_name"], card.data.tags[:2]
    ('top50', ['hf-nuggets', 'golden-score'])
    ```
    """
    import jinja2
    from huggingface_hub import DatasetCard

    path = Path(template_path) if template_path is not None else card_template_path()
    if not path.is_file():
        raise FileNotFoundError(f"Card template `template_path`={str(path)!r} does not exist.")
    if selection is None and top_percent is not None and min_distance is not None:
        from ..selection import top_selection

        check_scored(scored, top_percent)
        mapping = columns if columns is not None else (summary or {}).get("columns")
        selection = top_selection(
            scored, top_percent, gates=gates, min_distance=min_distance, embedder=embedder, columns=mapping
        )
    context = card_context(
        scored,
        summary=summary,
        top_percent=top_percent,
        repo_id=repo_id,
        pretty_name=pretty_name,
        source=source,
        license=license,
        task_set_description=task_set_description,
        examples=examples,
        diversity=diversity,
        histogram_image=histogram_image,
        text_columns=text_columns,
        gates=gates,
        columns=columns,
        selection=selection,
    )
    metadata = card_metadata(
        scored,
        top_percent=top_percent,
        license=license,
        language=language,
        tags=tags,
        source=source if source is not None else (summary or {}).get("source"),
        pretty_name=pretty_name,
        download_sizes=download_sizes,
        gates=gates,
        selection=selection,
    )
    template = path.read_text(encoding="utf-8")
    try:  # a misspelled variable renders as nothing in Jinja: render strictly once to catch it
        jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(
            card_data=metadata.to_yaml(), **context
        )
    except jinja2.UndefinedError as err:
        raise ValueError(f"Card template {str(path)!r} uses a variable the card does not provide: {err}.") from err
    return DatasetCard.from_template(metadata, template_path=str(path), **context)
