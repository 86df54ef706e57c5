"""hf-nuggets Space: prospect instruction data for its golden examples in the browser; AlpacaEval win rates.

The Space holds layout and wiring only: it calls the library as the `hf-nuggets` command line does (`load_data`,
`GoldenScorer`, `prospect`, `refine_task_set`, `export_repo_folder`, `push_scored_dataset`, `alpaca_eval_winrate`).
`build_demo()` returns the `gr.Blocks`; `python spaces/app.py` runs it locally.

Every visitor's data, results and files live in a private temporary folder of their session, deleted when the session
ends; a Hub token is only ever a function argument (never stored, logged or put in a message), and
`trust_remote_code` is never enabled.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

try:
    import gradio as gr
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("The Space needs gradio: pip install 'hf-nuggets[space]'") from err

from hf_nuggets import (
    GoldenScorer,
    export_repo_folder,
    load_default_task_set,
    load_prospector,
    load_sample_dataset,
    push_scored_dataset,
    refine_task_set,
)
from hf_nuggets.data.loading import FILE_BUILDERS, sample_dataset_path
from hf_nuggets.publish.hub import HubPushError
from hf_nuggets.run.prospecting import prospect
from hf_nuggets.scoring.prospector import Prospector
from hf_nuggets.selection import GAIN_COLUMN, SCORE_COLUMN, dataset_gated, n_selected, top_indices
from hf_nuggets.summary import flaw_report, format_summary

# The Space's helper module sits next to this file (run as `python spaces/app.py` or imported by the tests).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from nuggets_space import (  # noqa: E402
    DEFAULT_SECONDS,
    DEFAULT_TASKS,
    EMBEDDED_CHOICE,
    HUB_CHOICES,
    MAX_PAIRS,
    MAX_ROWS,
    MAX_SECONDS,
    MAX_UPLOAD_MB,
    NONE,
    SHOW_ALL,
    SHOW_ENDS,
    TASKS_REFINED,
    TASKS_SHIPPED,
    TASKS_UPLOADED,
    WIN_ANNOTATIONS,
    WIN_OUTPUTS,
    Job,
    JobCancelled,
    NuggetsBlocks,
    ObservedScorer,
    UserError,
    check_hub_model,
    check_rows,
    clip,
    column_mapping,
    drop_workspace,
    duration,
    embedded_status,
    ensure_embedded_model,
    error_text,
    guess_columns,
    histogram_html,
    load_hub_dataset,
    message_html,
    preview_frame,
    read_upload,
    results_table,
    stats_html,
    tasks_frame,
    workspace,
)

logger = logging.getLogger("hf_nuggets.space")

_STOPS: dict[str, threading.Event] = {}  # a running job's stop flag, by the visitor's session
_LOAD_LOCK = threading.Lock()

# ---------------------------------------------------------------------------------------------------------------------
# The app


def build_demo(
    *,
    prospector: Prospector | None = None,
    max_upload_mb: float = MAX_UPLOAD_MB,
    max_rows: int = MAX_ROWS,
    max_jobs: int | None = None,
    batch_size: int = 4,
    hub_endpoint: str | None = None,
) -> gr.Blocks:
    """Build the Space.

    Args:
        prospector (`Prospector`, *optional*): A loaded prospector offered first and used by default (tests pass a
            tiny model); the embedded SmolLM2-135M-Instruct when omitted.
        max_upload_mb (`float`, *optional*, defaults to `20`): Largest upload, stated in the UI.
        max_rows (`int`, *optional*, defaults to `5000`): Rows kept from an upload or a Hub dataset.
        max_jobs (`int`, *optional*): Jobs (prospecting, judging) run at once; others wait in the queue. Defaults to
            `$NUGGETS_SPACE_MAX_JOBS` or 1 (a free Space has 2 vCPUs).
        batch_size (`int`, *optional*, defaults to `4`): Rows per scorer call; the page updates after each batch.
        hub_endpoint (`str`, *optional*): Hub endpoint for model checks and pushes (default: huggingface.co).

    Returns:
        `gr.Blocks`: The app; `build_demo().queue().launch()` serves it.
    """
    max_jobs = max_jobs or int(os.environ.get("NUGGETS_SPACE_MAX_JOBS", "1"))
    injected = f"{Path(str(prospector.name)).name} (preloaded)" if prospector is not None else None
    model_choices = ([injected] if injected else []) + [EMBEDDED_CHOICE, *HUB_CHOICES]
    oauth = bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))

    def get_prospector(choice: str) -> Prospector:
        choice = (choice or "").strip()
        if injected and choice == injected:
            return prospector
        if choice in ("", EMBEDDED_CHOICE):
            missing = embedded_status()
            if missing:
                raise UserError(
                    f"The embedded prospector is not installed here. Run `{missing}` (no dependencies: the "
                    "package only carries the GGUF file), then restart the app; or pick a Hub model."
                )
            with _LOAD_LOCK:
                return load_prospector()
        check_hub_model(choice, hub_endpoint)
        with _LOAD_LOCK:
            try:
                return load_prospector(choice)  # trust_remote_code stays False
            except Exception as err:  # noqa: BLE001
                raise UserError(f"Could not load `{choice}`: {error_text(err)}") from err

    # -- data ----------------------------------------------------------------------------------------------------
    def data_loaded(session: dict, dataset: Any, source: str, kind: str):
        note = ""
        if len(dataset) > max_rows:
            note = f" Only the first {max_rows} of its {len(dataset)} rows are kept."
            dataset = dataset.select(range(max_rows))
        session["data"] = {"dataset": dataset, "source": source, "kind": kind}
        session["result"] = None
        guess = guess_columns(dataset.column_names)
        choices = [NONE, *dataset.column_names]

        def dropdown(key: str):
            return gr.update(choices=choices, value=guess.get(key) or NONE)

        if "messages" in guess:
            mapping_note = f"Reading the chat column `{guess['messages']}`."
        elif guess.get("instruction") and guess.get("output"):
            mapping_note = "Columns mapped below; change them if needed."
        else:
            mapping_note = "Map the instruction and output columns below."
        status = message_html(
            "ok",
            f"<b>{html.escape(source)}</b>: {len(dataset)} rows, columns "
            f"{', '.join(f'<code>{html.escape(c)}</code>' for c in dataset.column_names)}.{html.escape(note)} "
            f"{html.escape(mapping_note)}",
            raw=True,
        )
        rows = gr.update(maximum=len(dataset), value=len(dataset))
        return (
            session,
            status,
            gr.update(value=preview_frame(dataset), visible=True),
            *(dropdown(k) for k in ("instruction", "input", "output", "messages")),
            rows,
        )

    def data_failed(session: dict, err: BaseException):
        logger.info("Data not loaded: %s", err)
        return (session, message_html("error", error_text(err)), gr.skip(), *(gr.skip(),) * 4, gr.skip())

    def on_upload(file: str | None, session: dict):
        if not file:
            return (session, gr.skip(), gr.skip(), *(gr.skip(),) * 4, gr.skip())
        try:
            dataset = read_upload(file, session, max_mb=max_upload_mb)
        except UserError as err:
            return data_failed(session, err)
        return data_loaded(session, dataset, Path(file).name, "file")

    def on_sample(session: dict):
        return data_loaded(session, load_sample_dataset(), sample_dataset_path().name, "sample")

    def on_hub(repo_id: str, config: str, split: str, session: dict):
        try:
            dataset = load_hub_dataset(repo_id, config, split, max_rows=max_rows, endpoint=hub_endpoint)
        except UserError as err:
            return data_failed(session, err)
        return data_loaded(session, dataset, repo_id.strip(), "hub")

    # -- prospecting ---------------------------------------------------------------------------------------------
    def partial_view(job: Job, top_percent: float):
        scores, _ = job.snapshot()
        if not scores or not job.tasks:
            return gr.skip()
        return histogram_html(scores, n_selected(len(scores), top_percent), len(job.tasks))

    def run(
        session: dict,
        instruction: str,
        input_: str,
        output: str,
        messages: str,
        model_choice: str,
        task_mode: str,
        task_file: str | None,
        num_tasks: float,
        rows: float,
        seconds: float,
        top_percent: float,
        show: str,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 - how Gradio injects the progress bar
    ):
        # outputs: session, status, run button, cancel button, results group, histogram, stats, table, tasks,
        # summary, report, 4 downloads
        skip = gr.skip()

        def out(status=skip, *, running=None, results=skip, hist=skip, stats=skip, table=skip, tasks=skip,
                summary=skip, report=skip, downloads=(skip,) * 4):  # fmt: skip
            buttons = (skip, skip)
            if running is not None:
                buttons = (gr.update(interactive=not running), gr.update(visible=running))
            return (session, status, *buttons, results, hist, stats, table, tasks, summary, report, *downloads)

        hidden_downloads = tuple(gr.update(visible=False, value=None) for _ in range(4))
        data = session.get("data")
        try:
            if not data:
                raise UserError("Bring data first: upload a file, use the sample, or load a Hub dataset.")
            dataset, source = data["dataset"], data["source"]
            columns = column_mapping(instruction, input_, output, messages)
            rows = max(1, min(int(rows or len(dataset)), len(dataset)))
            num_tasks = int(num_tasks or DEFAULT_TASKS)
            seconds = float(min(max(seconds or DEFAULT_SECONDS, 5), MAX_SECONDS))
            top_percent = float(top_percent or 5)
            mapping = check_rows(dataset, columns, rows)
            task_rows = None
            if task_mode == TASKS_UPLOADED:
                task_rows = read_upload(task_file, session, what="task file", max_mb=max_upload_mb)
                GoldenScorer(None, task_rows, num_tasks=num_tasks)  # validates the columns, loads nothing
            elif task_mode == TASKS_REFINED and rows < num_tasks:
                raise UserError(f"Refining {num_tasks} tasks needs at least {num_tasks} rows; {rows} are selected.")
        except (UserError, ValueError, KeyError, TypeError) as err:
            yield out(message_html("error", error_text(err)), running=False)
            return

        root = workspace(session)
        out_dir = Path(tempfile.mkdtemp(prefix="run-", dir=root))
        stop = threading.Event()
        _STOPS[request.session_hash if request else uuid.uuid4().hex] = stop

        def work(job: Job):
            job.phase = "Loading the prospector…"
            model = get_prospector(model_choice)
            if stop.is_set():
                raise JobCancelled("cancelled by the visitor")
            subset = dataset.select(range(rows))
            if task_mode == TASKS_REFINED:
                job.phase = f"Refining {num_tasks} tasks from your data (gates, quality judge, then diversity)…"
                refined = refine_task_set(
                    subset,
                    size=num_tasks,
                    top_quality=max(1, num_tasks // 5),
                    pool=rows,
                    quality="judge",  # the chosen prospector judges
                    columns=columns,
                    progress=False,
                    prospector=model,
                )
                tasks = refined.to_list()
            elif task_mode == TASKS_UPLOADED:
                tasks = task_rows.select(range(min(num_tasks, len(task_rows)))).to_list()
            else:
                tasks = load_default_task_set(num_tasks)
            job.tasks = tasks
            scorer = GoldenScorer(model, tasks, num_tasks=num_tasks, columns=columns)
            job.phase = "Computing the zero-shot scores of the tasks…"
            scorer.zero_shot_scores  # noqa: B018 - computed once here, so the phase shows
            job.phase = "Scoring"
            scored, summary = prospect(
                dataset,
                ObservedScorer(scorer, stop, job.on_batch),
                out_dir,
                top_percent=top_percent,
                limit=rows,
                max_seconds=seconds,
                batch_size=batch_size,
                source=source,
                progress=False,
            )
            job.phase = "Writing the dataset card…"
            export = export_repo_folder(scored, out_dir / "hub", top_percent=top_percent, summary=summary)
            archive = shutil.make_archive(str(out_dir / "hub-repo"), "zip", root_dir=out_dir / "hub")
            return scored, summary, export, archive

        job = Job(work, stop)
        started = time.perf_counter()
        job.thread.start()
        yield out(
            message_html("info", "Starting…", progress=0.0),
            running=True,
            results=gr.update(visible=False),
            downloads=hidden_downloads,
        )
        seen, phase = -1, None
        try:
            while job.thread.is_alive():
                job.thread.join(timeout=0.5)
                scores, _ = job.snapshot()
                if len(scores) == seen and job.phase == phase:
                    continue
                seen, phase = len(scores), job.phase
                elapsed = duration(time.perf_counter() - started)
                if job.phase == "Scoring" or scores:
                    progress((len(scores), rows), desc="Scoring rows", unit="rows")
                    text = f"Scored {len(scores)} of {rows} rows against {len(job.tasks or [])} tasks · {elapsed}"
                    if stop.is_set():
                        text += " · cancelling after this batch…"
                    yield out(
                        message_html("info", text, progress=len(scores) / rows),
                        results=gr.update(visible=bool(scores)),
                        hist=partial_view(job, top_percent),
                        tasks=tasks_frame(job.tasks) if job.tasks else skip,
                    )
                else:
                    progress(None, desc=job.phase)
                    yield out(message_html("info", f"{job.phase} · {elapsed}", progress=0.0))
        finally:
            stop.set()  # a closed page stops its job too
            if request is not None:
                _STOPS.pop(request.session_hash, None)

        if job.error is not None:
            yield from finish_failed(session, job, out_dir, out, mapping, len(job.tasks or []), top_percent, show)
            return
        scored, summary, export, archive = job.result
        num_tasks = summary["num_tasks"]
        files = summary.get("files", {})
        rows_scored = scored.to_dict()
        gated = dataset_gated(scored)
        kept = len(top_indices(scored[SCORE_COLUMN], scored[GAIN_COLUMN], gated, percent=top_percent))
        threshold = (summary.get("selection") or {}).get("threshold")
        note = flaw_report(scored) if "flaw" in scored.column_names else ""
        ungated_scores = [s for i, s in enumerate(rows_scored[SCORE_COLUMN]) if gated is None or not gated[i]]
        public_summary = {k: v for k, v in summary.items() if k not in ("files", "source")}
        public_summary["source"] = source
        session["result"] = {
            "dir": str(out_dir),
            "parquet": files.get("parquet"),
            "summary": summary,
            "source": source,
            "mapping": mapping,
            "top_percent": top_percent,
        }
        done = (
            f"Done: {summary['rows_scored']} of {summary['rows_total']} rows scored against {num_tasks} tasks in "
            f"{duration(time.perf_counter() - started)}."
        )
        kind = "ok"
        if summary.get("stopped_early"):
            kind, done = "warn", done + f" The {seconds:g} s budget ran out; raise it to score the other rows."
        yield out(
            message_html(kind, done),
            running=False,
            results=gr.update(visible=True),
            hist=histogram_html(ungated_scores, kept, num_tasks),
            stats=stats_html(summary, kept, top_percent, threshold, note),
            table=results_table(rows_scored, mapping, show),
            tasks=tasks_frame(job.tasks or []),
            summary=public_summary,
            report=format_summary(summary, rows_scored),
            downloads=(
                gr.update(value=files.get("parquet"), visible=True),
                gr.update(value=files.get("jsonl"), visible=True),
                gr.update(value=str(Path(export["folder"]) / "README.md"), visible=True),
                gr.update(value=archive, visible=True),
            ),
        )

    def finish_failed(session, job, out_dir, out, mapping, num_tasks, top_percent, show):
        err = job.error
        cancelled = isinstance(err, JobCancelled) or isinstance(getattr(err, "__cause__", None), JobCancelled)
        partial = out_dir / "scored.partial.parquet"
        if cancelled and partial.is_file():
            from datasets import Dataset

            scored = Dataset.from_parquet(str(partial), cache_dir=str(out_dir / "hf-cache"))
            rows_scored = scored.to_dict()
            session["result"] = None
            yield out(
                message_html(
                    "warn",
                    f"Cancelled after {len(scored)} rows. The rows scored so far are shown below and can be "
                    "downloaded; run again to score them all.",
                ),
                running=False,
                results=gr.update(visible=True),
                hist=histogram_html(rows_scored[SCORE_COLUMN], n_selected(len(scored), top_percent), num_tasks),
                stats="",
                table=results_table(rows_scored, mapping, show),
                tasks=tasks_frame(job.tasks or []),
                summary={"cancelled": True, "rows_scored": len(scored)},
                report="",
                downloads=(
                    gr.update(value=str(partial), visible=True),
                    gr.update(value=str(out_dir / "scored.partial.jsonl"), visible=True),
                    gr.update(value=None, visible=False),
                    gr.update(value=None, visible=False),
                ),
            )
            return
        if cancelled:
            yield out(message_html("warn", "Cancelled before any row was scored."), running=False)
            return
        if not isinstance(err, (UserError, ImportError)):
            logger.error("Prospecting failed: %s: %s", type(err).__name__, err)
        yield out(message_html("error", error_text(err)), running=False)

    def cancel(request: gr.Request):
        stop = _STOPS.get(request.session_hash) if request else None
        if stop is None:
            return message_html("info", "Nothing is running.")
        stop.set()
        return message_html("warn", "Cancelling: the batch being scored finishes first…")

    def show_rows(session: dict, show: str):
        result = session.get("result")
        if not result or not result.get("parquet"):
            return gr.skip()
        from datasets import Dataset

        scored = Dataset.from_parquet(result["parquet"], cache_dir=str(Path(result["dir"]) / "hf-cache"))
        return results_table(scored.to_dict(), result["mapping"], show)

    # -- push ----------------------------------------------------------------------------------------------------
    def push(session: dict, repo_id: str, private: bool, token: str, oauth_token: gr.OAuthToken | None = None):
        typed = (token or "").strip()
        secret = typed or (oauth_token.token if oauth_token is not None else "")
        result = session.get("result")
        try:
            if not result:
                raise UserError("Prospect first: there is nothing to push yet.")
            if not secret:
                raise UserError(
                    "Paste a Hugging Face token with write access (hf.co/settings/tokens)"
                    + (" or sign in with Hugging Face" if oauth else "")
                    + ". It is used for this push only and never stored."
                )
            from datasets import Dataset

            scored = Dataset.from_parquet(result["parquet"], cache_dir=str(Path(result["dir"]) / "hf-cache"))
            commit = push_scored_dataset(
                scored,
                (repo_id or "").strip(),
                top_percent=result["top_percent"],
                private=bool(private),
                token=secret,
                summary=result["summary"],
                source=result["source"],
                endpoint=hub_endpoint,
            )
        except Exception as err:  # noqa: BLE001 - every failure is a message, with the token redacted
            text = error_text(err, secret)
            if not isinstance(err, (UserError, HubPushError, ValueError)):
                text = f"Pushing to `{repo_id}` failed: {text}. Nothing was pushed."
            logger.info("Push failed: %s", text)
            return message_html("error", text), ""
        url = html.escape(getattr(commit, "repo_url", None) or f"https://huggingface.co/datasets/{repo_id}")
        return message_html("ok", f'Pushed to <a href="{url}" target="_blank">{url}</a>.', raw=True), ""

    # -- win rate ------------------------------------------------------------------------------------------------
    def winrate(
        mode: str,
        annotations: str | None,
        model_file: str | None,
        baseline_file: str | None,
        pairs: float,
        session: dict,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008 - tracks the judge's progress bar
    ):
        from hf_nuggets.evaluation.winrate import alpaca_eval_winrate, compute_winrate

        try:
            pairs = int(pairs or MAX_PAIRS)
            if mode == WIN_ANNOTATIONS:
                records = read_upload(annotations, session, what="annotations file", max_mb=max_upload_mb).to_list()
                missing = {"output_1", "output_2", "preference"} - set(records[0])
                if missing:
                    raise UserError(
                        f"The annotations need `output_1` (baseline), `output_2` (model) and `preference` (in "
                        f"[1, 2]); missing: {', '.join(sorted(missing))}."
                    )
                records = records[:pairs]
                metrics = compute_winrate(
                    [str(r["output_2"] or "") for r in records],
                    [str(r["output_1"] or "") for r in records],
                    [r["preference"] for r in records],
                )
                judge_name = "precomputed"
            else:
                from hf_nuggets.evaluation.generation import read_outputs
                from hf_nuggets.evaluation.judges import LocalJudge

                if not model_file or not baseline_file:
                    raise UserError("Upload the model's outputs and the baseline's outputs (AlpacaEval JSON).")
                for file in (model_file, baseline_file):
                    if Path(file).stat().st_size > max_upload_mb * 2**20:
                        raise UserError(f"`{Path(file).name}` is over {max_upload_mb:g} MB.")
                try:
                    model_rows, base_rows = read_outputs(model_file), read_outputs(baseline_file)
                except (ValueError, OSError) as err:
                    raise UserError(error_text(err).replace(str(Path(model_file).parent), "…")) from err
                base_rows = base_rows[:pairs]
                by_instruction = {r["instruction"]: r for r in model_rows}
                lacking = [r["instruction"] for r in base_rows if r["instruction"] not in by_instruction]
                if lacking:
                    raise UserError(
                        f"The model's outputs lack {len(lacking)} of the baseline's instructions, e.g. "
                        f"{clip(lacking[0], 80)!r}."
                    )
                instructions = [r["instruction"] for r in base_rows]
                judge = LocalJudge(get_prospector(EMBEDDED_CHOICE if prospector is None else injected),
                                   use_cache=False, progress=True)  # fmt: skip
                metrics = alpaca_eval_winrate(
                    [str(by_instruction[i]["output"]) for i in instructions],
                    [str(r["output"]) for r in base_rows],
                    instructions,
                    judge=judge,
                    empty_outputs="skip",
                    generator=str(model_rows[0].get("generator") or "model"),
                    baseline=str(base_rows[0].get("generator") or "baseline"),
                    return_annotations=True,
                )
                records = metrics.pop("annotations")
                judge_name = f"local: {judge.prospector.name}"
        except Exception as err:  # noqa: BLE001 - every failure is a message
            if not isinstance(err, (UserError, ValueError, KeyError, TypeError)):
                logger.error("Win rate failed: %s: %s", type(err).__name__, err)
            return message_html("error", error_text(err)), gr.skip(), gr.skip(), gr.update(visible=False)
        return winrate_outputs(session, metrics, records, judge_name)

    def winrate_outputs(session, metrics, records, judge_name):
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
        body = "".join(
            f'<div class="nug-stat" data-stat="{key}"><div class="k">{html.escape(k)}</div>'
            f'<div class="v">{html.escape(v)}</div></div>'
            for k, v, key in cards
        )
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
        html_out = f'<div class="nug-stats">{body}</div><div class="nug-note">{html.escape(note)}</div>'
        files = [str(folder / "metrics.json"), str(folder / "annotations.json")]
        return message_html("ok", "Win rate computed."), html_out, table, gr.update(value=files, visible=True)

    # -- layout --------------------------------------------------------------------------------------------------
    missing_model = embedded_status() if prospector is None else None
    with NuggetsBlocks(title="hf-nuggets: find the golden examples", analytics_enabled=False) as demo:
        demo.nuggets_max_upload_mb = max_upload_mb
        session = gr.State({}, delete_callback=drop_workspace)
        gr.HTML(
            '<div id="nug-hero"><h1>⛏️ hf-nuggets</h1><p>Find the <b>golden examples</b> of an instruction dataset. '
            "A small prospector LM reads each example as a one-shot demonstration before a set of tasks; its "
            "<b>golden score</b> is the share of tasks whose answers it makes more likely. Keep the top few percent "
            "and fine-tune on those (SuperNUGGETS).</p><div class='nug-pills'>"
            "<span class='nug-pill'>① bring data</span><span class='nug-pill'>② prospect</span>"
            "<span class='nug-pill'>③ see the scores</span><span class='nug-pill'>④ take it away</span></div></div>"
        )
        if missing_model:
            gr.HTML(
                message_html(
                    "warn",
                    "The embedded prospector is not installed here: run <code>"
                    f"{html.escape(missing_model)}</code> and restart, or pick a Hub model.",
                    raw=True,
                )
            )
        with gr.Tabs():
            with gr.Tab("Prospect", id="prospect"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=6, elem_classes="nug-step"):
                        gr.Markdown("### ① Bring data")
                        upload = gr.File(
                            label=f"Upload JSON, JSONL, CSV or parquet (max {max_upload_mb:g} MB, first "
                            f"{max_rows} rows)",
                            file_types=sorted(FILE_BUILDERS),
                            type="filepath",
                            height=120,
                            elem_id="data-upload",
                        )
                        with gr.Row():
                            sample_btn = gr.Button("Use the sample data (300 rows, 40 flawed)", size="sm")
                        with gr.Accordion("…or load a public Hub dataset", open=False):
                            with gr.Row():
                                hub_id = gr.Textbox(label="Dataset id", placeholder="tatsu-lab/alpaca", scale=3)
                                hub_config = gr.Textbox(label="Config", placeholder="(default)", scale=1)
                                hub_split = gr.Textbox(label="Split", value="train", scale=1)
                            hub_btn = gr.Button("Load from the Hub", size="sm")
                        data_status = gr.HTML(message_html("info", "No data yet."), elem_id="data-status")
                        preview = gr.Dataframe(
                            label="First rows",
                            visible=False,
                            interactive=False,
                            max_height=220,
                            wrap=True,
                            elem_classes="nug-preview",
                        )
                        with gr.Row():
                            col_instruction = gr.Dropdown([NONE], value=NONE, label="instruction", min_width=120)
                            col_input = gr.Dropdown([NONE], value=NONE, label="input", min_width=120)
                            col_output = gr.Dropdown([NONE], value=NONE, label="output", min_width=120)
                            col_messages = gr.Dropdown([NONE], value=NONE, label="or messages", min_width=120)
                    with gr.Column(scale=5, elem_classes="nug-step"):
                        gr.Markdown("### ② Prospect")
                        model = gr.Dropdown(
                            model_choices,
                            value=model_choices[0],
                            allow_custom_value=True,
                            label="Prospector",
                            info="The embedded model runs offline; a Hub id (up to 1.6B parameters) needs a network.",
                        )
                        task_mode = gr.Radio(
                            [TASKS_SHIPPED, TASKS_REFINED, TASKS_UPLOADED], value=TASKS_SHIPPED, label="Task set"
                        )
                        task_file = gr.File(
                            label="Task set file (instruction, input, output)",
                            file_types=sorted(FILE_BUILDERS),
                            type="filepath",
                            visible=False,
                            height=100,
                        )
                        with gr.Row():
                            num_tasks = gr.Slider(
                                1, 32, value=DEFAULT_TASKS, step=1, label="Tasks", info="The shipped set has 16."
                            )
                            rows = gr.Slider(1, max_rows, value=300, step=1, label="Rows to score", elem_id="rows")
                        with gr.Row():
                            seconds = gr.Slider(
                                10, MAX_SECONDS, value=DEFAULT_SECONDS, step=10, label="Time budget (s)"
                            )
                            top = gr.Slider(1, 50, value=5, step=1, label="Keep the top %")
                        with gr.Row():
                            run_btn = gr.Button("⛏️ Prospect", variant="primary", elem_id="run", scale=3)
                            cancel_btn = gr.Button("Cancel", variant="stop", visible=False, elem_id="cancel", scale=1)
                        idle = "The sample with 8 tasks takes 1 to 3 minutes on a free 2-vCPU Space."
                        run_status = gr.HTML(message_html("info", idle), elem_id="run-status")
                with gr.Column(visible=False, elem_classes="nug-step") as results:
                    gr.Markdown("### ③ See the scores")
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=6):
                            hist = gr.HTML(elem_id="histogram")
                        with gr.Column(scale=5):
                            stats = gr.HTML(elem_id="stats")
                    show = gr.Radio([SHOW_ENDS, SHOW_ALL], value=SHOW_ENDS, show_label=False, container=False)
                    table = gr.Dataframe(
                        label="Rows ranked by golden score (click a header to sort)",
                        interactive=False,
                        wrap=True,
                        max_height=460,
                        elem_id="results-table",
                        column_widths=["6%", "5%", "8%", "7%", "33%", "31%", "10%"],
                    )
                    with gr.Accordion("Task set used", open=False):
                        tasks_table = gr.Dataframe(interactive=False, wrap=True, max_height=300)
                    with gr.Accordion("Run summary", open=False):
                        report = gr.Code(label="As the command line prints it", language=None, interactive=False)
                        summary_json = gr.JSON(label="summary.json")
                    gr.Markdown("### ④ Take it away")
                    with gr.Row():
                        dl_parquet = gr.DownloadButton("scored.parquet", visible=False, elem_id="dl-parquet")
                        dl_jsonl = gr.DownloadButton("scored.jsonl", visible=False, elem_id="dl-jsonl")
                        dl_card = gr.DownloadButton("Dataset card (README.md)", visible=False, elem_id="dl-card")
                        dl_zip = gr.DownloadButton("Hub-ready folder (.zip)", visible=False, elem_id="dl-zip")
                    with gr.Accordion("Push to the Hub with your own token", open=False):
                        gr.Markdown(
                            "Publishes a dataset repo with a `scored` and a `top<p>` configuration, the card and "
                            "the histogram, in one commit. Your token is used for this push only: it is not "
                            "stored, logged or shown."
                        )
                        with gr.Row():
                            repo_id = gr.Textbox(label="Dataset repo", placeholder="your-name/alpaca-nuggets", scale=3)
                            private = gr.Checkbox(value=True, label="Private", scale=1)
                        with gr.Row():
                            token = gr.Textbox(
                                label="Hugging Face token (write)", type="password", placeholder="hf_…", scale=3
                            )
                            if oauth:
                                gr.LoginButton(scale=1)
                        push_btn = gr.Button("Push", variant="secondary")
                        push_status = gr.HTML()
            with gr.Tab("AlpacaEval win rate", id="winrate"):
                gr.Markdown(
                    "AlpacaEval's win rate of a model against a baseline, raw and length-controlled: from "
                    "annotations that already hold preferences, or from two output files judged here by the local "
                    "judge (the prospector, each pair in both orders)."
                )
                win_mode = gr.Radio([WIN_ANNOTATIONS, WIN_OUTPUTS], value=WIN_ANNOTATIONS, label="From")
                with gr.Row():
                    win_annotations = gr.File(
                        label="Annotations (JSON/JSONL: output_1, output_2, preference)",
                        file_types=[".json", ".jsonl", ".csv", ".parquet"],
                        type="filepath",
                        height=110,
                    )
                    win_model = gr.File(
                        label="Model outputs (AlpacaEval JSON: instruction, output)",
                        file_types=[".json", ".jsonl"],
                        type="filepath",
                        visible=False,
                        height=110,
                    )
                    win_baseline = gr.File(
                        label="Baseline outputs (AlpacaEval JSON: instruction, output)",
                        file_types=[".json", ".jsonl"],
                        type="filepath",
                        visible=False,
                        height=110,
                    )
                win_pairs = gr.Slider(1, MAX_PAIRS, value=MAX_PAIRS, step=1, label="Pairs (the first N)")
                with gr.Row():
                    win_btn = gr.Button("Compute the win rate", variant="primary", scale=3)
                    win_cancel = gr.Button("Cancel", variant="stop", scale=1)
                win_status = gr.HTML()
                win_stats = gr.HTML()
                win_table = gr.Dataframe(label="Annotations", interactive=False, wrap=True, max_height=360)
                win_files = gr.File(label="Downloads", file_count="multiple", visible=False, interactive=False)

        # -- wiring --------------------------------------------------------------------------------------------
        data_outputs = [session, data_status, preview, col_instruction, col_input, col_output, col_messages, rows]
        upload.upload(on_upload, [upload, session], data_outputs, api_name="load_file", concurrency_limit=8)
        sample_btn.click(on_sample, [session], data_outputs, api_name="load_sample", concurrency_limit=8)
        hub_btn.click(on_hub, [hub_id, hub_config, hub_split, session], data_outputs, api_name="load_hub")
        task_mode.change(lambda m: gr.update(visible=m == TASKS_UPLOADED), task_mode, task_file, api_name=False)
        run_event = run_btn.click(
            run,
            [session, col_instruction, col_input, col_output, col_messages, model, task_mode, task_file, num_tasks]
            + [rows, seconds, top, show],
            [session, run_status, run_btn, cancel_btn, results, hist, stats, table, tasks_table, summary_json]
            + [report, dl_parquet, dl_jsonl, dl_card, dl_zip],
            api_name="prospect",
            concurrency_limit=max_jobs,
            concurrency_id="heavy",
            show_progress="minimal",
        )
        cancel_btn.click(cancel, None, run_status, api_name="cancel", concurrency_limit=None, queue=False)
        show.change(show_rows, [session, show], table, api_name="show_rows")
        push_btn.click(push, [session, repo_id, private, token], [push_status, token], api_name="push")
        win_mode.change(
            lambda m: (
                gr.update(visible=m == WIN_ANNOTATIONS),
                gr.update(visible=m == WIN_OUTPUTS),
                gr.update(visible=m == WIN_OUTPUTS),
            ),
            win_mode,
            [win_annotations, win_model, win_baseline],
            api_name=False,
        )
        win_event = win_btn.click(
            winrate,
            [win_mode, win_annotations, win_model, win_baseline, win_pairs, session],
            [win_status, win_stats, win_table, win_files],
            api_name="winrate",
            concurrency_limit=max_jobs,
            concurrency_id="heavy",
        )
        win_cancel.click(None, None, None, cancels=[win_event], api_name=False)
        del run_event
    return demo


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ensure_embedded_model()
    build_demo().queue().launch()
