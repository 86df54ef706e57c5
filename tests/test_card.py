"""Dataset cards: the rendered text, the YAML the Hub and `datasets` read, the histogram PNG, the diversity figures."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset, load_dataset
from huggingface_hub import DatasetCard

import hf_nuggets
from hf_nuggets.algorithms.redundancy import walk_lsh_params
from hf_nuggets.cli.publish import card_main
from hf_nuggets.publish import card as cards
from hf_nuggets.publish.card import build_dataset_card, card_template_path, markdown_cell, size_category
from hf_nuggets.publish.diversity import diversity_report, iter_row_fields
from hf_nuggets.publish.plots import DROPPED_COLOUR, KEPT_COLOUR, PNG_MARGINS, histogram_png

ROOT = Path(__file__).resolve().parent.parent
HUB_SIZE_CATEGORIES = {"n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B"}
HUB_SIZE_CATEGORIES |= {"1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T"}

ROWS = [
    ("Add 2 and 3.", "", "2 + 3 = 5.", 1.0, 0.5),
    ("Name a | pipe and <b>bold</b> text.", "", "Line one\nline two with `code` and *stars*.", 0.75, 0.25),
    ("Say nothing.", "", "", 0.0, -0.5),
    ("Translate the word.", "cat", "chat", 0.5, 0.0),
    ("Tie with a larger gain.", "", "Answer A.", 0.75, 0.3),
    ("List three colours.", "", "Red, green and blue.", 0.25, -0.1),
    ("Spell 'nugget' backwards.", "", "teggun", 0.5, 0.1),
    (
        "Write a haiku about gold.",
        "",
        "Deep in the river / a glint of patient yellow / the pan holds its breath",
        0.875,
        0.2,
    ),
    ("What is the capital of France?", "", "Paris.", 0.125, -0.3),
    ("Count to three.", "", "1, 2, 3.", 0.375, 0.05),
]
SUMMARY = {
    "hf_nuggets_version": "0.1.0",
    "created_at": "2025-01-02T03:04:05+00:00",
    "source": "tatsu-lab/alpaca",
    "rows_total": 12,
    "rows_scored": 10,
    "stopped_early": True,
    "max_seconds": 60,
    "num_tasks": 8,
    "task_set": "the first 8 tasks of the task set shipped with hf-nuggets",
    "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "model_revision": "12fd25f77366fa6b3b4b768ec3050bf629380bac",
    "device": "cpu",
    "template": "alpaca",
    "limits": {"max_demo_tokens": 512, "max_prompt_tokens": 256, "max_answer_tokens": 256},
    "truncation": {"demonstrations": 1, "task_prompts": 0, "task_answers": 2},
    "timings": {"load_s": 1.25, "zero_shot_s": 0.5, "scoring_s": 12.0, "pairs_per_s": 6.67},
}
DIVERSITY = {
    "n": 2,
    "full": {
        "n": 40,
        "f0": 36.2,
        "f0_bound": 0.6,
        "f0_relative_standard_error": 0.01625,
        "repeat_rate": 0.0275,
        "repeat_rate_bound": 0.006875,
        "effective_distinct": 36.36,
        "effective_distinct_bound": 12.12,
        "f2_epsilon": 0.25,
        "f2_delta": 0.0867,
    },
    "selected": {
        "n": 3,
        "f0": 3.0,
        "f0_bound": 0.05,
        "repeat_rate": 0.333333,
        "repeat_rate_bound": 0.083333,
        "effective_distinct": 3.0,
        "effective_distinct_bound": 1.0,
    },
}


EXPECTED_BODY = r"""
# alpaca-nuggets

The top 20% of [`tatsu-lab/alpaca`](https://huggingface.co/datasets/tatsu-lab/alpaca) by golden score: 2 of 10 instruction examples, chosen by a
small prospector language model as the ones that help it most when learnt as a single demonstration. The
`scored` configuration holds all 10 rows with their scores.

![Golden-score histogram: rows per score bin, kept rows in gold, dropped rows in grey](score_histogram.png)

## Load it

```python
from datasets import load_dataset

scored = load_dataset("user/alpaca-nuggets", "scored", split="train")  # every row with its golden score, in the source order
nuggets = load_dataset("user/alpaca-nuggets", "top20", split="train")  # the top 20% by golden score, best first
```

| Configuration | Rows | What it holds |
| --- | ---: | --- |
| `scored` | 10 | every row with its golden score, in the source order |
| `top20` (default) | 2 | the top 20% by golden score, best first |

Columns:

| Column | Type | Meaning |
| --- | --- | --- |
| `instruction` | `string` | The instruction (question or task). |
| `input` | `string` | Optional context for the instruction. |
| `output` | `string` | The answer. |
| `golden_score` | `float64` | Golden score in [0, 1]: the fraction of the tasks whose answer got more likely when this row was the one-shot demonstration. |
| `nuggets_gain` | `float64` | Mean change of the tasks' answer log-likelihood (one-shot minus zero-shot); breaks score ties. |

## How it was made

Every row was scored by its *golden score* with `hf-nuggets`, an implementation of NUGGETS [1] with the
SuperNUGGETS refinements [2]. A small language model, the *prospector*, reads a predefined set of m tasks, each an
instruction with its reference answer, and scores each answer by the mean log-likelihood of its tokens: once on its
own (zero-shot) and once with the candidate example placed before the task as a one-shot demonstration. The golden
score of a candidate is the fraction of the m tasks whose one-shot score is strictly higher than their zero-shot
score; `nuggets_gain`, the mean difference of the two scores, breaks ties. Examples that help the prospector on many
tasks when learnt as one demonstration are the "nuggets": in both papers, a larger model fine-tuned on the top few
percent of them did better than one fine-tuned on all the data.

| Setting | Value |
| --- | --- |
| Source data | [`tatsu-lab/alpaca`](https://huggingface.co/datasets/tatsu-lab/alpaca) |
| Prospector model | `HuggingFaceTB/SmolLM2-135M-Instruct` |
| Model revision | `12fd25f77366fa6b3b4b768ec3050bf629380bac` |
| Prompt template | `alpaca`: the NUGGETS prompt, `Instruction:` / `Input:` / `Response:` |
| Truncation limits (tokens) | demonstration 512, task prompt 256, answer 256 |
| Segments truncated | demonstrations 1, task prompts 0, task answers 2 |
| Task set | 8 tasks; the first 8 tasks of the task set shipped with hf-nuggets |
| Selection rule | Top 20% of the scored rows by golden score (2 of 10, rounded to the nearest row, at least one), ties broken by `nuggets_gain` and then by row order; the lowest golden score kept is 0.875 |
| Rows scored | 10 of 12 rows of the source (stopped at the 60 s time budget) |
| Timings | model load 1.2 s, zero-shot 0.5 s, scoring 12.0 s, 6.7 candidate-task pairs/s |
| Device | `cpu` |
| Scored with | hf-nuggets 0.1.0 |
| Scored on | 2025-01-02T03:04:05+00:00 |

## Results

Kept 2 of 10 rows (20.0%) and dropped 8.

| Golden score | All rows | Kept (`top20`) |
| --- | ---: | ---: |
| minimum | 0.000 | 0.875 |
| 10th percentile | 0.113 | 0.887 |
| 25th percentile | 0.281 | 0.906 |
| median | 0.500 | 0.938 |
| 75th percentile | 0.750 | 0.969 |
| 90th percentile | 0.887 | 0.988 |
| maximum | 1.000 | 1.000 |
| mean | 0.512 | 0.938 |

| Score bin | Rows | Kept | Dropped |
| --- | ---: | ---: | ---: |
| [0.0, 0.1) | 1 | 0 | 1 |
| [0.1, 0.2) | 1 | 0 | 1 |
| [0.2, 0.3) | 1 | 0 | 1 |
| [0.3, 0.4) | 1 | 0 | 1 |
| [0.4, 0.5) | 0 | 0 | 0 |
| [0.5, 0.6) | 2 | 0 | 2 |
| [0.6, 0.7) | 0 | 0 | 0 |
| [0.7, 0.8) | 2 | 0 | 2 |
| [0.8, 0.9) | 1 | 1 | 0 |
| [0.9, 1.0] | 1 | 1 | 0 |

### The 4 best examples

| Rank | Row | Golden score | Gain | Instruction | Output |
| ---: | ---: | ---: | ---: | --- | --- |
| 1 | 0 | 1.000 | +0.500 | Add 2 and 3. | 2 + 3 = 5. |
| 2 | 7 | 0.875 | +0.200 | Write a haiku about gold. | Deep in the river / a glint of patient yellow / the pan holds its breath |
| 3 | 4 | 0.750 | +0.300 | Tie with a larger gain. | Answer A. |
| 4 | 1 | 0.750 | +0.250 | Name a \| pipe and \<b\>bold\</b\> text. | Line one line two with \`code\` and \*stars\*. |

### The 4 worst examples

| Rank | Row | Golden score | Gain | Instruction | Output |
| ---: | ---: | ---: | ---: | --- | --- |
| 10 | 2 | 0.000 | -0.500 | Say nothing. |  |
| 9 | 8 | 0.125 | -0.300 | What is the capital of France? | Paris. |
| 8 | 5 | 0.250 | -0.100 | List three colours. | Red, green and blue. |
| 7 | 9 | 0.375 | +0.050 | Count to three. | 1, 2, 3. |

Rows are numbered as in the `scored` configuration (0-based); rank 1 is the best row.

## Diversity

Word 2-grams of each row's text, counted in one streaming pass over the data by sketches whose memory
does not grow with it. n is the number of 2-grams, F0 the number of distinct ones and F2 = Σ f² the
second frequency moment (f: how often each distinct n-gram occurs). The repeat rate F2 / n² is the chance that two
n-grams drawn at random are the same; the effective number of distinct n-grams n² / F2 is how many equally frequent
n-grams would give that repeat rate. Sets of different sizes compare by F0 / n and (n² / F2) / n: the closer to 1,
the fewer repeated n-grams.

| Data | 2-grams (n) | Distinct (F0) | Repeat rate F2 / n² | Effective distinct n² / F2 |
| --- | ---: | ---: | ---: | ---: |
| Full set (`scored`) | 40 | 36 ± 1 | 0.027500 ± 0.006875 | 36 ± 12 |
| Selection (`top20`) | 3 | 3 ± 0 | 0.333333 ± 0.083333 | 3 ± 1 |

Estimates ± their error bounds; the n-gram counts are exact. F0: HyperLogLog (Flajolet et al. 2007, with Ertl's 2017
estimator), ± one relative standard error (1.6%). F2: fast AMS sketch (Alon, Matias and Szegedy
1996; Charikar, Chen and Farach-Colton 2002): F2 and the repeat rate are within ±25% of the truth
and the effective number of distinct n-grams within ±33%, with probability at least
91% (one F2 estimate gives all three).

## Limitations

Golden scores measure how much an example helps one small prospector on one task set, with one prompt template and
the truncation limits above; another prospector or task set ranks the data differently. A high score is evidence of
usefulness as a demonstration, not a check of factual correctness, safety or licensing: review the selection before
training on it. The data keeps the license of its source: `cc-by-nc-4.0`.

## Citation

```bibtex
@inproceedings{li-etal-2024-one,
    title = "One-Shot Learning as Instruction Data Prospector for Large Language Models",
    author = "Li, Yunshui and Hui, Binyuan and Xia, Xiaobo and Yang, Jiaxi and Yang, Min and Zhang, Lei and Si, Shuzheng and Chen, Ling-Hao and Liu, Junhao and Liu, Tongliang and Huang, Fei and Li, Yongbin",
    booktitle = "Proceedings of the 62nd Annual Meeting of the Association for Computational Linguistics (Volume 1: Long Papers)",
    year = "2024",
    pages = "4586--4601",
    url = "https://aclanthology.org/2024.acl-long.252",
}

@article{ni2024small,
    title = {Small Language Model as Data Prospector for Large Language Model},
    author = {Ni, Shiwen and Wu, Haihong and Yang, Di and Qu, Qiang and Alinejad-Rokny, Hamid and Yang, Min},
    journal = {arXiv preprint arXiv:2412.09990},
    year = {2024},
}
```

1. Li et al., *One-Shot Learning as Instruction Data Prospector for Large Language Models*, ACL 2024.
2. Ni et al., *Small Language Model as Data Prospector for Large Language Model*, arXiv:2412.09990, 2024.

This card was generated by hf-nuggets @VERSION@."""  # noqa: E501


@pytest.fixture
def scored():
    """Ten scored rows with ties, an empty answer and Markdown-breaking text."""
    names = ["instruction", "input", "output", "golden_score", "nuggets_gain"]
    return Dataset.from_dict({name: [row[i] for row in ROWS] for i, name in enumerate(names)})


def build(scored, **kwargs):
    options = {"summary": SUMMARY, "top_percent": 20, "repo_id": "user/alpaca-nuggets", "license": "cc-by-nc-4.0"}
    return build_dataset_card(scored, **{**options, "examples": 4, "diversity": DIVERSITY, **kwargs})


def test_card_text_is_the_expected_text(scored):
    """The rendered card body is exactly the expected text (a misspelled variable would leave a hole)."""
    assert build(scored).text == EXPECTED_BODY.replace("@VERSION@", hf_nuggets.__version__)


def test_card_yaml_is_valid_dataset_card_metadata(scored):
    """The YAML parses as `DatasetCardData` with Hub values, and `datasets` reads its configs and dataset_info."""
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs

    data = DatasetCard(str(build(scored)), ignore_metadata_errors=False).data
    assert data.license == "cc-by-nc-4.0"
    assert data.task_categories == ["text-generation"]
    assert set(data.size_categories) <= HUB_SIZE_CATEGORIES
    assert data.tags == ["hf-nuggets", "golden-score", "data-selection"]
    assert data.source_datasets == ["tatsu-lab/alpaca"]
    configs = MetadataConfigs.from_dataset_card_data(data)
    assert list(configs) == ["scored", "top20"] and configs.get_default_config_name() == "top20"
    infos = DatasetInfosDict.from_dataset_card_data(data)
    assert infos["top20"].splits["train"].num_examples == 2 and infos["scored"].splits["train"].num_examples == 10
    assert infos["top20"].features == scored.features


def test_card_round_trips_through_datasetcard(scored):
    """Saving and loading the card with `huggingface_hub` gives the same text and metadata."""
    card = build(scored)
    again = DatasetCard(str(card))
    assert str(again) == str(card) and again.data.to_dict() == card.data.to_dict()


def test_card_without_selection_describes_the_scored_rows(scored):
    """With `top_percent=None` the card has one default `scored` configuration and drops nothing."""
    card = build(scored, top_percent=None)
    assert [c["config_name"] for c in card.data.configs] == ["scored"] and card.data.configs[0]["default"]
    assert "All 10 scored rows are published; none were dropped." in card.text
    assert "Selection rule | None: every scored row is published |" in card.text


def test_local_source_is_named_by_its_file_name_only(scored):
    """A local source path appears as its file name; the card holds no local path and no `source_datasets`."""
    card = build(scored, summary={**SUMMARY, "source": "/home/alice/private/alpaca_sample.jsonl"})
    assert "`alpaca_sample.jsonl` (a local file)" in card.text
    assert "/home/alice" not in str(card) and card.data.source_datasets is None


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        ({"source": "shipped", "count": 8}, "| Task set | 8 tasks; the task set shipped with hf-nuggets |"),
        ({"source": "/home/alice/tasks.jsonl", "count": 8}, "| Task set | 8 tasks; from tasks.jsonl (a local path) |"),
        (
            {
                "source": "auto",
                "count": 8,
                "provenance": {
                    "sample_size": 256,
                    "rows_available": 300,
                    "seed": 0,
                    "gated": {"rows": 40, "by_gate": {"empty": 10, "placeholder": 10, "unaligned": 20}},
                    "near_duplicates": 0,
                    "selector": "kcenter",
                    "rows": [4, 8, 15, 16, 23, 42, 108, 299],
                },
            },
            "| Task set | 8 tasks; drawn from the scored data itself (--tasks auto): a random sample of 256 of its "
            "300 rows (seed 0), less 40 rows stopped by the gates (empty 10, placeholder 10, unaligned 20) and 0 "
            "near-duplicates, chosen by quality, then kcenter diversity. The rows chosen as tasks stay among the "
            "scored candidates; each meets itself as one of the tasks, which can add 1/8 to its golden score and "
            "lifts its mean gain. Rows chosen: 4, 8, 15, 16, 23, 42, 108, 299. |",
        ),
    ],
)
def test_task_set_row_is_rendered_from_the_summary_tasks_record(scored, tasks, expected):
    """Without a `task_set` description, the card says where the tasks came from, from summary.json's `tasks`."""
    summary = {k: v for k, v in SUMMARY.items() if k != "task_set"}
    card = build(scored, summary={**summary, "tasks": tasks})
    assert expected in card.text.splitlines()
    assert "/home/alice" not in str(card)


def test_chat_rows_show_the_user_turn_and_the_answer():
    """For `messages` data, the examples show the last user turn and the answer, and diversity reads the turns."""
    chat = Dataset.from_list(
        [
            {
                "messages": [
                    {"role": "user", "content": f"Question {i}?"},
                    {"role": "assistant", "content": f"Answer {i}."},
                ],
                "golden_score": i / 4,
                "nuggets_gain": 0.0,
            }
            for i in range(5)
        ]
    )
    card = build_dataset_card(chat, top_percent=20, examples=1)
    assert "| 1 | 4 | 1.000 | +0.000 | Question 4? | Answer 4. |" in card.text
    assert "| Full set (`scored`) | 10 |" in card.text  # one bigram per turn, none across turns


MAPPED = {"instruction": "prompt", "output": "response"}


def _mapped_rows(n: int = 5) -> Dataset:
    """Scored rows whose texts sit in `prompt` and `response` columns; row i has golden score i / (n - 1)."""
    return Dataset.from_dict(
        {
            "prompt": [f"Prompt {i}?" for i in range(n)],
            "response": [f"Response {i}." for i in range(n)],
            "golden_score": [i / (n - 1) for i in range(n)],
            "nuggets_gain": [0.0] * n,
        }
    )


@pytest.mark.parametrize("given", ["argument", "summary"])
def test_card_of_mapped_columns_shows_the_best_and_worst_texts(given):
    """`prompt`/`response` rows mapped with `columns=` (or the mapping the run's summary recorded) show their texts
    among the best and worst examples."""
    kwargs = {"columns": MAPPED} if given == "argument" else {"summary": {"columns": MAPPED}}
    card = build_dataset_card(_mapped_rows(), top_percent=20, examples=1, diversity=False, **kwargs)
    assert "| 1 | 4 | 1.000 | +0.000 | Prompt 4? | Response 4. |" in card.text
    assert "| 5 | 0 | 0.000 | +0.000 | Prompt 0? | Response 0. |" in card.text


def test_card_of_mapped_columns_counts_their_diversity():
    """The diversity section reads the mapped text columns (without the mapping it finds no text column)."""
    card = build_dataset_card(_mapped_rows(), top_percent=20, summary={"columns": MAPPED})
    assert "| Full set (`scored`) | 10 |" in card.text  # one 2-gram in each prompt and each response


def test_card_of_a_mapped_chat_column_shows_the_last_user_turn_and_the_answer():
    """A chat column under another name (`columns={"messages": "conversation"}`), with a system prompt and an earlier
    exchange, shows the user turn the answer replies to, and the answer."""
    conversations = [
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"Earlier question {i}?"},
            {"role": "assistant", "content": f"Earlier answer {i}."},
            {"role": "user", "content": f"Question {i}?"},
            {"role": "assistant", "content": f"Answer {i}."},
        ]
        for i in range(5)
    ]
    chat = Dataset.from_dict({"conversation": conversations, "golden_score": [i / 4 for i in range(5)]})
    card = build_dataset_card(chat, top_percent=20, examples=1, diversity=False, columns={"messages": "conversation"})
    assert "| 1 | 4 | 1.000 |  | Question 4? | Answer 4. |" in card.text
    assert "| 5 | 0 | 0.000 |  | Question 0? | Answer 0. |" in card.text


def test_card_of_a_mapped_prospect_run_shows_the_examples(tiny_prospector, tasks, candidates, tmp_path):
    """A `prospect` run over `prompt`/`response` columns records its mapping in `summary.json`, and the card built
    from that summary, and the printed run report, show the texts of the best and worst rows."""
    from hf_nuggets import GoldenScorer
    from hf_nuggets.run.prospecting import prospect
    from hf_nuggets.summary import format_summary

    mapping = {**MAPPED, "input": "context"}
    data = Dataset.from_list(
        [{"prompt": c["instruction"], "context": c["input"], "response": c["output"]} for c in candidates[:3]]
    )
    scored, summary = prospect(data, GoldenScorer(tiny_prospector, tasks, columns=mapping), tmp_path / "run")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["columns"] == mapping
    card = build_dataset_card(scored, summary=summary, top_percent=None, examples=3, diversity=False, gates=None)
    report = format_summary(summary, scored.to_dict(), k=3, gates=None)  # every row among the best and the worst
    for text in (candidates[0]["instruction"], "Add 2 and 3.", "Red is a primary colour.", "2 + 3 = 5."):
        assert card.text.count(markdown_cell(text)) == 2  # once among the best, once among the worst
        assert report.count(text) == 2


@pytest.mark.parametrize("variable", ["{{ titel }}", "{{ settings.modle }}"])
def test_misspelled_template_variable_raises(scored, tmp_path, variable):
    """A template that uses a variable the card does not provide is an error, not a silent hole."""
    template = tmp_path / "card.md"
    template.write_text("---\n{{ card_data }}\n---\n# " + variable + "\n")
    with pytest.raises(ValueError, match="uses a variable the card does not provide: .*(titel|modle)"):
        build(scored, template_path=template)


def test_missing_template_raises(scored, monkeypatch, tmp_path):
    """A card template missing from the package is a clear error."""
    monkeypatch.setattr(cards, "TEMPLATE_PACKAGE", "hf_nuggets_no_such_templates")
    with pytest.raises(FileNotFoundError, match="Card template `dataset_card.md` is missing from the package"):
        build(scored)


def test_card_of_data_without_golden_score_raises(scored):
    """Data without `golden_score` cannot get a card."""
    with pytest.raises(KeyError, match="`golden_score` not found"):
        build(scored.remove_columns("golden_score"))


def test_template_is_found_from_the_source_tree():
    """The template the package finds is the repo's `card_templates/dataset_card.md`."""
    assert card_template_path().read_text() == (ROOT / "card_templates" / "dataset_card.md").read_text()


def test_wheel_ships_the_template(tmp_path):
    """A wheel built from a copy of the repo holds `hf_nuggets/card_templates/dataset_card.md`."""
    import shutil

    if "hf_nuggets.card_templates" not in (ROOT / "pyproject.toml").read_text():
        pytest.skip("pyproject.toml does not map `hf_nuggets.card_templates` to card_templates/ yet")
    source = tmp_path / "src"
    for name in ("hf_nuggets", "card_templates"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", str(source), "-w"]
    subprocess.run([*command, str(tmp_path / "dist")], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("hf_nuggets-*.whl")
    assert "hf_nuggets/card_templates/dataset_card.md" in zipfile.ZipFile(wheel).namelist()


def test_markdown_cell_keeps_tables_intact():
    """Pipes, newlines, HTML and Markdown marks are escaped, and long text is cut."""
    assert markdown_cell("a | b\n<i>*x*</i>") == r"a \| b \<i\>\*x\*\</i\>"
    assert markdown_cell("word " * 50, width=20) == "word word word word…"


@pytest.mark.parametrize(
    ("rows", "category"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (52_002, "10K<n<100K")]
)
def test_size_category_is_the_hub_value(rows, category):
    """Row counts map to the Hub's size categories."""
    assert size_category(rows) == category


def decode_png(data: bytes) -> np.ndarray:
    """A minimal PNG reader for 8-bit RGB images without filters: checks every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 2) and b"IEND" in chunks
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, 1 + 3 * width)
    assert not raw[:, 0].any()  # filter type 0 on every row
    return raw[:, 1:].reshape(height, width, 3)


def test_histogram_png_is_a_valid_png():
    """The histogram is a well-formed PNG of the requested size."""
    pixels = decode_png(histogram_png([0.1, 0.5, 0.9], width=300, height=200))
    assert pixels.shape == (200, 300, 3)


def test_histogram_png_bars_match_the_counts(scored):
    """Each bar is as tall as its count (tallest bar = plot height), the kept part in gold, the rest in grey."""
    scores = np.asarray(scored["golden_score"])
    kept = scores[[0, 7]]
    width, height, bins = 640, 320, 10
    pixels = decode_png(histogram_png(scores, kept, bins=bins, width=width, height=height))
    left, right, top, bottom = PNG_MARGINS
    plot_w, plot_h = width - left - right, height - top - bottom
    counts, _ = np.histogram(scores, bins=bins, range=(0, 1))
    kept_counts, _ = np.histogram(kept, bins=bins, range=(0, 1))
    for i in range(bins):
        column = pixels[top : top + plot_h, left + round((i + 0.5) * plot_w / bins)]
        gold = int((column == KEPT_COLOUR).all(axis=1).sum())
        grey = int((column == DROPPED_COLOUR).all(axis=1).sum())
        assert gold == round(plot_h * kept_counts[i] / counts.max()), i
        assert gold + grey == round(plot_h * counts[i] / counts.max()), i


@pytest.fixture(scope="module")
def sample():
    """The 300-row sample shipped with the package, with made-up scores."""
    rows = hf_nuggets.load_sample_dataset()
    return rows.add_column("golden_score", [(i * 37 % 9) / 8 for i in range(len(rows))])


def test_diversity_one_pass_equals_diversity_stats(sample):
    """The one-pass report of the full set and of the selection equals `diversity_stats` run on each alone."""
    from hf_nuggets.algorithms.sketches import diversity_stats

    selected = list(range(0, len(sample), 7))
    report = diversity_report(sample, selected, batch_size=64)
    fields = list(iter_row_fields(sample))
    for name, rows in (("full", fields), ("selected", [fields[i] for i in selected])):
        expected = diversity_stats([text for row in rows for text in row])
        assert {k: report[name][k] for k in expected} == expected


def test_diversity_estimates_are_within_their_bounds(sample):
    """F0, F2, the repeat rate and the effective number of distinct bigrams are within their bounds of exact counts."""
    stats = diversity_report(sample)["full"]
    texts = [text.split() for row in iter_row_fields(sample) for text in row]
    counts = Counter(bigram for words in texts for bigram in zip(words, words[1:], strict=False))
    n, f0, f2 = sum(counts.values()), len(counts), sum(c * c for c in counts.values())
    assert stats["n"] == n
    assert abs(stats["f0"] - f0) <= 3 * stats["f0_relative_standard_error"] * f0
    assert abs(stats["f2"] - f2) <= stats["f2_epsilon"] * f2
    assert abs(stats["repeat_rate"] - f2 / n**2) <= stats["repeat_rate_bound"] / (1 - stats["f2_epsilon"])
    assert abs(stats["effective_distinct"] - n**2 / f2) <= stats["effective_distinct_bound"]


def test_card_cli_writes_a_loadable_repo_folder(scored, tmp_path, capsys):
    """`hf-nuggets card DIR` writes README, histogram and data to DIR/hub, and the selection loads from there."""
    run = tmp_path / "run"
    run.mkdir()
    scored.to_parquet(str(run / "scored.parquet"))
    (run / "summary.json").write_text(json.dumps({**SUMMARY, "selection": {"top_percent": 20}}))
    assert card_main([str(run), "--repo_id", "user/alpaca-nuggets"]) == 0
    assert "user/alpaca-nuggets" in (run / "hub" / "README.md").read_text()
    assert decode_png((run / "hub" / "score_histogram.png").read_bytes()).shape == (320, 640, 3)
    top = load_dataset(str(run / "hub"), "top20", split="train")
    assert top["golden_score"] == [1.0, 0.875]
    assert "Wrote" in capsys.readouterr().out


def with_paraphrase(scored):
    """The rows with embeddings: row 7 (second best) restates row 0 (the best); every other row is apart."""
    X = np.eye(len(scored))
    X[7] = X[0] + 0.01
    return scored.add_column("nuggets_embedding", X.tolist())


def test_diverse_card_reports_the_rows_skipped_as_redundant(scored):
    """With `min_distance`, the card skips the paraphrase, says how many rows were skipped, and its YAML agrees."""
    card = build(with_paraphrase(scored), min_distance=0.1, diversity=False)
    assert "On the way down the ranking, 1 row\nwas skipped as redundant: it lay within" in card.text
    assert "within cosine distance 0.1 of a better kept row is skipped" in card.text
    bits, tables, _ = walk_lsh_params(0.1, 2)  # the walk keeps at most 2 rows
    assert f"SimHash LSH, {bits} bits x {tables} tables" in card.text and "nuggets\\_embedding" in card.text
    top = next(c for c in card.data.dataset_info if c["config_name"] == "top20")
    assert top["splits"][0]["num_examples"] == 2
    assert "| 1 | 0 | 1.000 |" in card.text  # the best row is kept
    plain = build(with_paraphrase(scored), diversity=False)
    assert "redundant" not in plain.text


def test_card_cli_publishes_the_runs_diverse_top(scored, tmp_path):
    """`hf-nuggets card` publishes the diverse top of a run made with `--min_distance`, and records the skips."""
    run = tmp_path / "run"
    run.mkdir()
    with_paraphrase(scored).to_parquet(str(run / "scored.parquet"))
    selection = {"top_percent": 20, "min_distance": 0.1, "rows_redundant": 1}
    (run / "summary.json").write_text(json.dumps({**SUMMARY, "selection": selection}))
    assert card_main([str(run), "--no_diversity"]) == 0
    top = load_dataset(str(run / "hub"), "top20", split="train")
    assert top["instruction"] == ["Add 2 and 3.", "Tie with a larger gain."]  # not the haiku, row 0's paraphrase
    public = json.loads((run / "hub" / "hf_nuggets_summary.json").read_text())["selection"]
    assert public["rows_redundant"] == 1 and public["min_distance"] == 0.1
    assert card_main([str(run), "--no_diversity", "--overwrite", "--min_distance", "0.0001"]) == 0
    assert load_dataset(str(run / "hub"), "top20", split="train")["instruction"][1] == "Write a haiku about gold."


def test_card_cli_refuses_to_overwrite_without_the_flag(scored, tmp_path, capsys):
    """A second `hf-nuggets card` into the same folder fails unless `--overwrite` is given."""
    run = tmp_path / "run"
    run.mkdir()
    scored.to_parquet(str(run / "scored.parquet"))
    assert card_main([str(run), "--no_diversity"]) == 0
    assert card_main([str(run), "--no_diversity"]) == 1
    assert "is not empty: pass `--overwrite` to replace the earlier export." in capsys.readouterr().err
    assert card_main([str(run), "--no_diversity", "--overwrite"]) == 0


def test_card_of_a_prospect_run_records_how_it_was_made(tiny_prospector, tasks, candidates, tmp_path):
    """A card built from a real `prospect` run fills every setting the run records, with no local path in it."""
    from hf_nuggets import GoldenScorer
    from hf_nuggets.run.prospecting import prospect

    scorer = GoldenScorer(tiny_prospector, tasks)
    data = Dataset.from_list(candidates * 2)
    scored, summary = prospect(data, scorer, tmp_path / "run", top_percent=25, source=str(tmp_path / "data.jsonl"))
    card = build_dataset_card(scored, summary=summary, top_percent=25, diversity=False)
    settings = dict(
        line.split(" | ")[:2] for line in card.text.splitlines() if line.startswith("| ") and " | " in line
    )
    unrecorded = {name.strip("| ") for name, value in settings.items() if value == "not recorded"}
    assert unrecorded <= {"Model revision"}  # a local folder has no Hub revision
    flagged = sum(bool(f) for f in scored["nuggets_flags"])
    kept = min(3, 12 - flagged)  # the top 25% of 12 rows, never a flagged row
    assert f"{len(tasks)} tasks" in card.text and f"Kept {kept} of 12 rows" in card.text
    assert f"Flagged {flagged} of 12 rows" in card.text
    worst = card.text.split("worst examples\n\n| Rank", 1)[1]
    assert "| Output | Flags |" in worst.splitlines()[0]
    first_row = [line for line in worst.splitlines() if line.startswith("| ")][1]  # after the rule
    flag_values = {f for f in scored["nuggets_flags"] if f}
    assert first_row.rstrip(" |").endswith(tuple(flag_values)) == bool(flagged)  # flagged rows come first
    assert str(tmp_path) not in str(card)
