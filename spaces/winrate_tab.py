"""The AlpacaEval win-rate tab of the hf-nuggets Space: a model's win rate against a baseline, raw and
length-controlled, from annotations that hold preferences or from two output files judged here by the local judge.
`build_winrate_tab` lays it out and wires it."""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from hf_nuggets.evaluation.baseline import match_to_baseline
from prospectors import Prospectors
from rendering import UserError, clip, error_text, message_html, stat_cards
from visitor_data import MAX_DATA_MB, read_upload, workspace

logger = logging.getLogger("hf_nuggets.space")

MAX_PAIRS = 805
WIN_ANNOTATIONS = "Annotations file (with preferences)"
WIN_OUTPUTS = "Two output files, judged here"


class WinRate:
    """The Compute button: win rates from annotations, or from two output files judged by the local judge.

    Args:
        prospectors (`Prospectors`): The local judge is their default (the preloaded or the embedded prospector).
        max_upload_mb (`float`): Largest file.
        max_data_mb (`float`, *optional*, defaults to `100`): Megabytes an annotations file's rows may take once read.
    """

    def __init__(self, prospectors: Prospectors, *, max_upload_mb: float, max_data_mb: float = MAX_DATA_MB):
        self.prospectors, self.max_upload_mb, self.max_data_mb = prospectors, max_upload_mb, max_data_mb

    def winrate(
        self,
        mode: str,
        annotations: str | None,
        model_file: str | None,
        baseline_file: str | None,
        pairs: float,
        session: dict,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008 - tracks the judge's progress bar
    ):
        try:
            pairs = int(pairs or MAX_PAIRS)
            if mode == WIN_ANNOTATIONS:
                metrics, records, judge_name = self.from_annotations(annotations, pairs, session)
            else:
                metrics, records, judge_name = self.from_outputs(model_file, baseline_file, pairs)
        except Exception as err:  # noqa: BLE001 - every failure is a message
            if not isinstance(err, (UserError, ValueError, KeyError, TypeError)):
                logger.error("Win rate failed: %s: %s", type(err).__name__, err)
            return message_html("error", error_text(err)), gr.skip(), gr.skip(), gr.update(visible=False)
        return winrate_outputs(session, metrics, records, judge_name)

    def from_annotations(self, annotations: str | None, pairs: int, session: dict):
        from hf_nuggets.evaluation.winrate import compute_winrate

        dataset, _ = read_upload(
            annotations,
            what="annotations file",
            max_mb=self.max_upload_mb,
            max_rows=pairs,
            max_data_mb=self.max_data_mb,
        )
        records = dataset.to_list()
        missing = {"output_1", "output_2", "preference"} - set(records[0])
        if missing:
            raise UserError(
                "The annotations need `output_1` (baseline), `output_2` (model) and `preference` (in [1, 2]); "
                f"missing: {', '.join(sorted(missing))}."
            )
        records = records[:pairs]
        metrics = compute_winrate(
            [str(r["output_2"] or "") for r in records],
            [str(r["output_1"] or "") for r in records],
            [r["preference"] for r in records],
        )
        return metrics, records, "precomputed"

    def from_outputs(self, model_file: str | None, baseline_file: str | None, pairs: int):
        from hf_nuggets.evaluation.generation import read_outputs
        from hf_nuggets.evaluation.judges import LocalJudge
        from hf_nuggets.evaluation.winrate import alpaca_eval_winrate

        if not model_file or not baseline_file:
            raise UserError("Upload the model's outputs and the baseline's outputs (AlpacaEval JSON).")
        for file in (model_file, baseline_file):
            if Path(file).stat().st_size > self.max_upload_mb * 2**20:
                raise UserError(f"`{Path(file).name}` is over {self.max_upload_mb:g} MB.")
        try:
            model_rows, base_rows = read_outputs(model_file), read_outputs(baseline_file)
        except (ValueError, OSError) as err:
            raise UserError(error_text(err).replace(str(Path(model_file).parent), "…")) from err
        base_rows = base_rows[:pairs]
        outputs = match_to_baseline(model_rows, base_rows)
        judge = LocalJudge(self.prospectors.load(self.prospectors.default), use_cache=False, progress=True)
        metrics = alpaca_eval_winrate(
            [str(o) for o in outputs],
            [str(r["output"]) for r in base_rows],
            [r["instruction"] for r in base_rows],
            judge=judge,
            empty_outputs="skip",
            generator=str(model_rows[0].get("generator") or "model"),
            baseline=str(base_rows[0].get("generator") or "baseline"),
            return_annotations=True,
        )
        return metrics, metrics.pop("annotations"), f"local: {judge.prospector.name}"


def winrate_outputs(session: dict, metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]], judge_name: str):
    """The status, the stat cards, the annotations table and the downloads (metrics.json, annotations.json)."""
    import pandas as pd

    def number(key, fmt="{:.2f}"):
        value = metrics.get(key)
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)

    cards = [
        ("Win rate", f"{number('win_rate')} ± {number('standard_error')}", "win_rate"),
        ("Length-controlled", number("length_controlled_winrate"), "lc"),
        ("Wins · losses · draws", f"{metrics['n_wins']} · {metrics['n_wins_base']} · {metrics['n_draws']}", "n"),
        ("Pairs judged · skipped", f"{metrics['n_total']} · {metrics.get('n_skipped', 0)}", "pairs"),
    ]
    note = f"Judge: {judge_name}. Preferences in [1, 2]: 2 means the model's output won."
    folder = Path(tempfile.mkdtemp(prefix="winrate-", dir=workspace(session)))
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
    (folder / "metrics.json").write_text(json.dumps(clean, indent=2) + "\n", encoding="utf-8")
    (folder / "annotations.json").write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    table = pd.DataFrame(
        [
            {
                "instruction": clip(r.get("instruction"), 100),
                "baseline (output_1)": clip(r.get("output_1"), 100),
                "model (output_2)": clip(r.get("output_2"), 100),
                "preference": r.get("preference"),
            }
            for r in records[:200]
        ]
    )
    files = [str(folder / "metrics.json"), str(folder / "annotations.json")]
    return (
        message_html("ok", "Win rate computed."),
        stat_cards(cards, note),
        table,
        gr.update(value=files, visible=True),
    )


def outputs_file(whose: str) -> gr.File:
    """An upload box for outputs in AlpacaEval's format, hidden until the visitor picks "two output files"."""
    return gr.File(
        label=f"{whose} outputs (AlpacaEval JSON: instruction, output)",
        file_types=[".json", ".jsonl"],
        type="filepath",
        visible=False,
        height=110,
    )


def build_winrate_tab(
    session: gr.State,
    prospectors: Prospectors,
    *,
    max_upload_mb: float,
    max_jobs: int,
    max_data_mb: float = MAX_DATA_MB,
) -> None:
    """Lay out the win-rate tab inside the current `gr.Tabs`, and wire its events (see `build_demo`)."""
    handler = WinRate(prospectors, max_upload_mb=max_upload_mb, max_data_mb=max_data_mb)
    with gr.Tab("AlpacaEval win rate", id="winrate"):
        gr.Markdown(
            "AlpacaEval's win rate of a model against a baseline, raw and length-controlled: from annotations that "
            "already hold preferences, or from two output files judged here by the local judge (the prospector, "
            "each pair in both orders)."
        )
        mode = gr.Radio([WIN_ANNOTATIONS, WIN_OUTPUTS], value=WIN_ANNOTATIONS, label="From")
        with gr.Row():
            annotations = gr.File(
                label="Annotations (JSON/JSONL: output_1, output_2, preference)",
                file_types=[".json", ".jsonl", ".csv", ".parquet"],
                type="filepath",
                height=110,
            )
            model_file, baseline_file = outputs_file("Model"), outputs_file("Baseline")
        pairs = gr.Slider(1, MAX_PAIRS, value=MAX_PAIRS, step=1, label="Pairs (the first N)")
        with gr.Row():
            compute_btn = gr.Button("Compute the win rate", variant="primary", scale=3)
            cancel_btn = gr.Button("Cancel", variant="stop", scale=1)
        status = gr.HTML()
        stats = gr.HTML()
        table = gr.Dataframe(label="Annotations", interactive=False, wrap=True, max_height=360)
        files = gr.File(label="Downloads", file_count="multiple", visible=False, interactive=False)

    mode.change(
        lambda m: (
            gr.update(visible=m == WIN_ANNOTATIONS),
            gr.update(visible=m == WIN_OUTPUTS),
            gr.update(visible=m == WIN_OUTPUTS),
        ),
        mode,
        [annotations, model_file, baseline_file],
        api_name=False,
    )
    event = compute_btn.click(
        handler.winrate,
        [mode, annotations, model_file, baseline_file, pairs, session],
        [status, stats, table, files],
        api_name="winrate",
        concurrency_limit=max_jobs,
        concurrency_id="heavy",
    )
    cancel_btn.click(None, None, None, cancels=[event], api_name=False)
