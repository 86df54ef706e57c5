"""What the hf-nuggets Space shows: its theme and CSS, status messages and errors, stat cards, the histogram and
the tables. Rendering only: the numbers are the library's."""

from __future__ import annotations

import html
import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Any

import gradio as gr

from hf_nuggets.data.formatting import examples_from_batch
from hf_nuggets.gates import FLAGS_COLUMN, gated_mask
from hf_nuggets.selection import GAIN_COLUMN, SCORE_COLUMN, rank_order
from hf_nuggets.summary import histogram
from hf_nuggets.utils.secrets import redact

#: The views of the results table.
SHOW_ENDS = "Best and worst 10"
SHOW_ALL = "All scored rows"
#: Characters of a text shown in a table cell.
TABLE_TEXT = 160
#: The class of every table, whose cells keep their line breaks (see `CSS`).
TABLE_CLASS = "nug-table"

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
.nug-table .cell-wrap span.text { white-space: pre-wrap; }  /* a cell keeps its line breaks (code stays code) */
footer { opacity: .8; }
"""


class UserError(Exception):
    """A problem the visitor can fix; its message is shown as it is."""


# ---------------------------------------------------------------------------------------------------------------------
# Messages, cards, histogram and tables


def message_html(kind: str, text: str, *, raw: bool = False, progress: float | None = None) -> str:
    body = text if raw else html.escape(text)
    bar = ""
    if progress is not None:
        bar = f'<div class="nug-progress"><div style="width:{max(0.0, min(progress, 1.0)) * 100:.1f}%"></div></div>'
    return f'<div class="nug-msg nug-{kind}" data-kind="{kind}">{body}{bar}</div>'


def stop_message(stops: Mapping[str, Any], request: Any, *, idle: str, stopping: str) -> str:
    """A Cancel button: set the visitor's stop flag in `stops` (by session) and say so, or say `idle`."""
    stop = stops.get(request.session_hash) if request else None
    if stop is None:
        return message_html("info", idle)
    stop.set()
    return message_html("warn", stopping)


def clip(text: Any, width: int = TABLE_TEXT) -> str:
    """`text` on one line (every run of white space made one space), cut to `width` characters: for messages."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def cell_text(text: Any, width: int = TABLE_TEXT) -> str:
    """`text` for a table cell, cut to `width` characters: its line breaks and indentation are kept (code stays
    code), trailing spaces and runs of blank lines are not."""
    text = "" if text is None else str(text)
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def plural(count: int, noun: str) -> str:
    """`count` and `noun`, with an s unless `count` is 1: "1 row", "8 rows"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def count_slider(count: int | None, *, default: int, limit: int) -> dict:
    """The update of a slider that picks the first N of `count` items (rows, pairs), to `default` at most.

    Gradio refuses a slider whose minimum is not below its maximum, so one item gives a fixed slider from 0 to 1 at 1;
    `None` (nothing loaded) sets it back to 1 to `limit`.
    """
    if count is None:
        return gr.update(minimum=1, maximum=limit, value=min(default, limit), interactive=True)
    if count <= 1:
        return gr.update(minimum=0, maximum=1, value=1, interactive=False)
    return gr.update(minimum=1, maximum=count, value=min(default, count), interactive=True)


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def error_text(err: BaseException, secret: str | None = None) -> str:
    text = str(err).strip() or type(err).__name__
    if not isinstance(err, (UserError, ValueError, KeyError, TypeError, FileNotFoundError)):
        text = f"{type(err).__name__}: {text}"
    if isinstance(err, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]
    text = redact(text, secret)
    return clip(text, 600)


def stat_cards(cards: Sequence[tuple[str, str, str]], note: str = "") -> str:
    """Cards of `(label, value, key)` in a grid (`data-stat` is the key), and a note under them when given."""
    body = "".join(
        f'<div class="nug-stat" data-stat="{key}"><div class="k">{html.escape(label)}</div>'
        f'<div class="v">{html.escape(value)}</div></div>'
        for label, value, key in cards
    )
    extra = f'<div class="nug-note">{html.escape(note)}</div>' if note else ""
    return f'<div class="nug-stats">{body}</div>{extra}'


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
    return stat_cards(cards, note)


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
            "instruction": cell_text(example.instruction),
            "answer": cell_text(example.output) or "(empty)",
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
    return pd.DataFrame([{k: cell_text(t.get(k), 120) for k in keep if k in t} for t in tasks])


def preview_frame(dataset: Any, n: int = 5):
    import pandas as pd

    rows = dataset.select(range(min(n, len(dataset)))).to_list()
    return pd.DataFrame([{k: cell_text(v, 48) for k, v in row.items()} for row in rows])


class NuggetsBlocks(gr.Blocks):
    """`gr.Blocks` whose `launch()` defaults to the Space's theme, CSS and upload limit, and keeps no run history.

    Gradio 6 takes the theme and CSS in `launch()` (Gradio 5 in the constructor); the run history would keep the
    inputs (a typed token among them) in the visitor's browser, so it is off. Served files leave Gradio's cache after
    an hour.

    Args:
        max_upload_mb (`float`): Largest upload, in MB (Gradio's own limit, set at launch).
    """

    def __init__(self, *args: Any, max_upload_mb: float, **kwargs: Any):
        kwargs.setdefault("delete_cache", (1800, 3600))
        if "theme" not in inspect.signature(gr.Blocks.launch).parameters:  # Gradio 5
            kwargs.setdefault("theme", THEME)
            kwargs.setdefault("css", CSS)
        super().__init__(*args, **kwargs)
        self.nuggets_max_upload_mb = max_upload_mb

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
