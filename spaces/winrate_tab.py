"""The AlpacaEval win-rate tab of the hf-nuggets Space: a model's win rate against a baseline, raw and
length-controlled, from annotations that hold preferences or from two output files judged here by the local judge.
`build_winrate_tab` lays it out and wires it.

The local judge runs in a background thread, a batch of pairs at a time, under a time budget and the visitor's
Cancel (or a closed page): the pairs judged by then give the win rate, the others are counted as skipped."""

from __future__ import annotations

import json
import logging
import math
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from hf_nuggets.evaluation.baseline import match_to_baseline
from hf_nuggets.run.loop import batch_fits
from prospect_run import MAX_SECONDS, Job
from prospectors import Prospectors
from rendering import (
    TABLE_CLASS,
    UserError,
    cell_text,
    count_slider,
    duration,
    error_text,
    message_html,
    plural,
    stat_cards,
    stop_message,
)
from visitor_data import MAX_DATA_MB, MAX_ROWS, read_upload, workspace

logger = logging.getLogger("hf_nuggets.space")

MAX_PAIRS = 805
#: The upload boxes, as messages name them.
ANNOTATIONS_BOX, MODEL_BOX, BASELINE_BOX = "the Annotations box", "the Model outputs box", "the Baseline outputs box"
#: The fields of a file of outputs, in AlpacaEval's format.
OUTPUT_FIELDS = ("instruction", "output")
WIN_ANNOTATIONS = "Annotations file (with preferences)"
WIN_OUTPUTS = "Two output files, judged here"
#: Why the pairs left unjudged were skipped.
CANCELLED, OUT_OF_TIME = "cancelled by the visitor", "time budget spent"

_STOPS: dict[str, threading.Event] = {}  # a judging job's stop flag, by the visitor's session


class StoppableJudge:
    """A pairwise judge run a batch of pairs at a time, that stops when asked or out of time.

    Before each batch it stops when `stop` is set, or when the batch is not expected to end within `max_seconds`
    at the pace so far (`batch_fits`; the first batch always runs). The pairs left get no preference (NaN) and the
    reason (`CANCELLED` or `OUT_OF_TIME`), so `alpaca_eval_winrate` counts them as skipped.

    Args:
        judge (`PairwiseJudge`): The judge (the local one).
        stop (`threading.Event`): The visitor's stop flag.
        max_seconds (`float`): The time budget of the judging.
        batch_pairs (`int`): Pairs judged between two checks.
    """

    def __init__(self, judge: Any, stop: threading.Event, *, max_seconds: float, batch_pairs: int):
        self.judge, self.stop, self.max_seconds, self.batch_pairs = judge, stop, max_seconds, batch_pairs
        self.name = judge.name
        self.done, self.total, self.stopped = 0, 0, None

    def __call__(self, instructions: Sequence[str], predictions: Sequence[str], references: Sequence[str]):
        from hf_nuggets.evaluation.judges import JudgeResult

        self.total, started = len(instructions), time.perf_counter()
        result = JudgeResult(preferences=[], reasons=[], details=[])
        for start in range(0, self.total, self.batch_pairs):
            end = min(start + self.batch_pairs, self.total)
            if self.stop.is_set():
                self.stopped = CANCELLED
            elif not batch_fits(time.perf_counter() - started, start, end - start, self.max_seconds):
                self.stopped = OUT_OF_TIME
            if self.stopped:
                left = self.total - start
                result.preferences.extend([math.nan] * left)
                result.reasons.extend([self.stopped] * left)
                result.details.extend({} for _ in range(left))
                break
            part = self.judge(instructions[start:end], predictions[start:end], references[start:end])
            result.preferences.extend(part.preferences)
            result.reasons.extend(part.reasons)
            result.details.extend(part.details)
            self.done = end
        return result


class WinRate:
    """The Compute button: win rates from annotations, or from two output files judged by the local judge.

    Args:
        prospectors (`Prospectors`): The local judge is their default (the preloaded or the embedded prospector).
        max_upload_mb (`float`): Largest file.
        max_data_mb (`float`, *optional*, defaults to `100`): Megabytes an annotations file's rows may take once read.
        max_seconds (`float`, *optional*, defaults to `600`): Time budget of the local judge.
    """

    def __init__(
        self,
        prospectors: Prospectors,
        *,
        max_upload_mb: float,
        max_data_mb: float = MAX_DATA_MB,
        max_seconds: float = MAX_SECONDS,
    ):
        self.prospectors, self.max_upload_mb, self.max_data_mb = prospectors, max_upload_mb, max_data_mb
        self.max_seconds = max_seconds

    def winrate(
        self,
        mode: str,
        annotations: str | None,
        model_file: str | None,
        baseline_file: str | None,
        pairs: float,
        session: dict,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 - how Gradio injects the progress bar
    ) -> Iterator[tuple]:
        pairs = int(pairs or MAX_PAIRS)
        if mode == WIN_ANNOTATIONS:
            try:
                metrics, records = self.from_annotations(annotations, pairs)
                yield winrate_outputs(session, metrics, records, "precomputed")
            except Exception as err:  # noqa: BLE001 - every failure is a message
                yield failed(err)
            return

        stop = threading.Event()
        key = request.session_hash if request else uuid.uuid4().hex
        _STOPS[key] = stop
        judging: dict[str, StoppableJudge] = {}
        job = Job(lambda: self.from_outputs(model_file, baseline_file, pairs, stop, judging))
        started = time.perf_counter()
        try:
            # Gradio can close this generator (a closed page, a cancel) only once it has yielded: yield first.
            yield message_html("info", "Loading the judge…", progress=0.0), gr.skip(), gr.skip(), gr.skip()
            job.thread.start()
            seen = None
            while job.thread.is_alive():
                job.thread.join(timeout=0.5)
                judge = judging.get("judge")
                now = (judge.done, judge.total) if judge is not None and judge.total else None
                if now is not None and now != seen:
                    seen = now
                    progress(now, desc="Judging pairs", unit="pairs")
                    text = f"Judged {now[0]} of {now[1]} pairs · {duration(time.perf_counter() - started)}"
                    if stop.is_set():
                        text += " · cancelling after this batch…"
                    yield message_html("info", text, progress=now[0] / now[1]), gr.skip(), gr.skip(), gr.skip()
        finally:
            stop.set()  # a closed page stops its job too
            _STOPS.pop(key, None)
        judge = judging.get("judge")
        if job.error is not None:
            if judge is not None and judge.stopped and judge.done == 0:
                reason = "Cancelled" if judge.stopped == CANCELLED else "The time budget ran out"
                yield message_html("warn", f"{reason} before any pair was judged."), gr.skip(), gr.skip(), gr.skip()
            else:
                yield failed(job.error)
            return
        metrics, records = job.result
        note = ""
        if judge.stopped == CANCELLED:
            note = f"Cancelled after {judge.done} of {judge.total} pairs; the win rate is over those."
        elif judge.stopped == OUT_OF_TIME:
            note = (
                f"The {self.max_seconds:g} s time budget ran out after {judge.done} of {judge.total} pairs; the win "
                "rate is over those."
            )
        try:
            yield winrate_outputs(session, metrics, records, f"local: {judge.judge.prospector.name}", note=note)
        except Exception as err:  # noqa: BLE001 - every failure is a message
            yield failed(err)

    def read_records(self, file: str | None, field: str, needs: Sequence[str], max_rows: int) -> list[dict]:
        """The records of an uploaded file (see `read_upload`), refused when they lack a field of `needs`."""
        dataset, _ = read_upload(
            file, field=field, max_mb=self.max_upload_mb, max_rows=max_rows, max_data_mb=self.max_data_mb
        )
        missing = [name for name in needs if name not in dataset.column_names]
        if missing:
            raise UserError(
                f"`{Path(file).name}` (in {field}) needs the fields {', '.join(f'`{n}`' for n in needs)}; it lacks "
                f"{', '.join(f'`{n}`' for n in missing)}."
            )
        return dataset.to_list()

    def read_annotations(self, annotations: str | None, max_rows: int = MAX_PAIRS) -> list[dict]:
        """The annotations uploaded: `output_1` (the baseline's), `output_2` (the model's) and `preference`."""
        return self.read_records(annotations, ANNOTATIONS_BOX, ("output_1", "output_2", "preference"), max_rows)

    def read_outputs(self, model_file: str | None, baseline_file: str | None) -> tuple[list[dict], list[dict]]:
        """The model's and the baseline's outputs uploaded (AlpacaEval's `instruction` and `output`)."""
        if not model_file or not baseline_file:
            raise UserError(f"Upload the model's outputs in {MODEL_BOX} and the baseline's in {BASELINE_BOX}.")
        return tuple(
            self.read_records(file, field, OUTPUT_FIELDS, MAX_ROWS)
            for file, field in ((model_file, MODEL_BOX), (baseline_file, BASELINE_BOX))
        )

    def count_pairs(self, mode: str, annotations: str | None, model_file: str | None, baseline_file: str | None):
        """The Pairs slider follows the files: as many pairs as the annotations, or as the baseline's outputs (the
        model's outputs are matched to them), all of them picked; a file that cannot be read is a message."""
        try:
            if mode == WIN_ANNOTATIONS and annotations:
                file, count = annotations, len(self.read_annotations(annotations))
            elif mode == WIN_OUTPUTS and baseline_file:
                file, count = (
                    baseline_file,
                    len(self.read_records(baseline_file, BASELINE_BOX, OUTPUT_FIELDS, MAX_PAIRS)),
                )
            else:
                return gr.skip(), count_slider(None, default=MAX_PAIRS, limit=MAX_PAIRS)
        except Exception as err:  # noqa: BLE001 - every failure is a message
            return failed(err)[0], count_slider(None, default=MAX_PAIRS, limit=MAX_PAIRS)
        text = f"`{Path(file).name}`: {plural(count, 'pair')}."
        return message_html("info", text), count_slider(count, default=count, limit=MAX_PAIRS)

    def from_annotations(self, annotations: str | None, pairs: int):
        from hf_nuggets.evaluation.winrate import compute_winrate

        records = self.read_annotations(annotations, pairs)
        metrics = compute_winrate(
            [str(r["output_2"] or "") for r in records],
            [str(r["output_1"] or "") for r in records],
            [r["preference"] for r in records],
        )
        return metrics, records

    def from_outputs(
        self,
        model_file: str | None,
        baseline_file: str | None,
        pairs: int,
        stop: threading.Event,
        judging: dict[str, StoppableJudge],
    ):
        """Judge the two output files with the local judge, under the time budget and `stop`; the judge at work is
        put in `judging["judge"]` for the page to follow."""
        from hf_nuggets.evaluation.judges import LocalJudge
        from hf_nuggets.evaluation.winrate import alpaca_eval_winrate

        model_rows, base_rows = self.read_outputs(model_file, baseline_file)
        base_rows = base_rows[:pairs]
        outputs = match_to_baseline(model_rows, base_rows)
        local = LocalJudge(self.prospectors.load(self.prospectors.default), use_cache=False, progress=False)
        # a batch of pairs is one forward pass of the judge: each pair is judged in both orders
        judge = StoppableJudge(local, stop, max_seconds=self.max_seconds, batch_pairs=max(1, local.batch_size // 2))
        judging["judge"] = judge
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
        return metrics, metrics.pop("annotations")


def failed(err: BaseException) -> tuple:
    """The tab's outputs after a failure: the message, and no result (the last one's stats, table and downloads are
    cleared, so nothing on the page looks like the result of the files that failed)."""
    if not isinstance(err, (UserError, ValueError, KeyError, TypeError)):
        logger.error("Win rate failed: %s: %s", type(err).__name__, err)
    return message_html("error", error_text(err)), "", gr.update(visible=False), gr.update(visible=False)


def cancel_winrate(request: gr.Request):
    """The Cancel button: the visitor's judging stops after the batch of pairs being judged."""
    return stop_message(
        _STOPS, request, idle="Nothing is being judged.", stopping="Cancelling: the pairs being judged finish first…"
    )


def winrate_outputs(
    session: dict, metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]], judge_name: str, note: str = ""
):
    """The status (a warning when `note` says the judging stopped early), the stat cards, the annotations table and
    the downloads (metrics.json, annotations.json)."""
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
    about = f"Judge: {judge_name}. Preferences in [1, 2]: 2 means the model's output won."
    if metrics.get("lc_note"):  # why the length-controlled win rate is n/a, as the library says it
        about += f" Length-controlled n/a: {metrics['lc_note']}"
    folder = Path(tempfile.mkdtemp(prefix="winrate-", dir=workspace(session)))
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
    (folder / "metrics.json").write_text(json.dumps(clean, indent=2) + "\n", encoding="utf-8")
    (folder / "annotations.json").write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    table = pd.DataFrame(
        [
            {
                "instruction": cell_text(r.get("instruction"), 100),
                "baseline (output_1)": cell_text(r.get("output_1"), 100),
                "model (output_2)": cell_text(r.get("output_2"), 100),
                "preference": r.get("preference"),
            }
            for r in records[:200]
        ]
    )
    files = [str(folder / "metrics.json"), str(folder / "annotations.json")]
    return (
        message_html("warn", note) if note else message_html("ok", "Win rate computed."),
        stat_cards(cards, about),
        gr.update(value=table, visible=True),
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
    max_seconds: float = MAX_SECONDS,
) -> None:
    """Lay out the win-rate tab inside the current `gr.Tabs`, and wire its events (see `build_demo`)."""
    handler = WinRate(prospectors, max_upload_mb=max_upload_mb, max_data_mb=max_data_mb, max_seconds=max_seconds)
    with gr.Tab("AlpacaEval win rate", id="winrate"):
        gr.Markdown(
            "AlpacaEval's win rate of a model against a baseline, raw and length-controlled: from annotations that "
            "already hold preferences, or from two output files judged here by the local judge (the prospector, "
            f"each pair in both orders, for up to {duration(max_seconds)}: the pairs judged by then, or by a "
            "Cancel, give the win rate)."
        )
        mode = gr.Radio([WIN_ANNOTATIONS, WIN_OUTPUTS], value=WIN_ANNOTATIONS, label="From")
        with gr.Row():
            annotations = gr.File(
                label="Annotations (JSON/JSONL: output_1, output_2, preference)",
                file_types=[".json", ".jsonl", ".csv", ".parquet"],
                type="filepath",
                height=110,
                elem_id="winrate-annotations",
            )
            model_file, baseline_file = outputs_file("Model"), outputs_file("Baseline")
        pairs = gr.Slider(1, MAX_PAIRS, value=MAX_PAIRS, step=1, label="Pairs (the first N)", elem_id="pairs")
        with gr.Row():
            compute_btn = gr.Button("Compute the win rate", variant="primary", scale=3)
            cancel_btn = gr.Button("Cancel", variant="stop", scale=1)
        status = gr.HTML(elem_id="winrate-status")
        stats = gr.HTML(elem_id="winrate-stats")
        table = gr.Dataframe(
            label="Annotations",
            interactive=False,
            wrap=True,
            max_height=360,
            visible=False,
            elem_id="winrate-table",
            elem_classes=TABLE_CLASS,
        )
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
    files_in = [mode, annotations, model_file, baseline_file]
    for i, box in enumerate((mode, annotations, model_file, baseline_file)):
        box.change(handler.count_pairs, files_in, [status, pairs], api_name="count_pairs" if i == 0 else False)
    compute_btn.click(
        handler.winrate,
        [mode, annotations, model_file, baseline_file, pairs, session],
        [status, stats, table, files],
        api_name="winrate",
        concurrency_limit=max_jobs,
        concurrency_id="heavy",
        show_progress="minimal",
    )
    cancel_btn.click(cancel_winrate, None, status, api_name="cancel_winrate", concurrency_limit=None, queue=False)
