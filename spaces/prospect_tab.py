"""The Prospect tab of the hf-nuggets Space: ① bring data, ② prospect, ③ see the scores, ④ take it away (downloads and
a push to the Hub with the visitor's own token). `build_prospect_tab` lays it out and wires it; the run itself is in
`prospect_run`."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from hf_nuggets import load_sample_dataset, push_scored_dataset
from hf_nuggets.data.loading import FILE_BUILDERS, sample_dataset_path
from hf_nuggets.publish.hub import HubPushError
from prospect_run import (
    DEFAULT_ROWS,
    DEFAULT_SECONDS,
    DEFAULT_TASKS,
    MAX_SECONDS,
    TASKS_REFINED,
    TASKS_SHIPPED,
    TASKS_UPLOADED,
    RunHandler,
    cancel,
    default_run_hint,
)
from prospectors import Prospectors
from rendering import (
    SHOW_ALL,
    SHOW_ENDS,
    TABLE_CLASS,
    UserError,
    count_slider,
    error_text,
    message_html,
    plural,
    preview_frame,
    results_table,
)
from visitor_data import MAX_DATA_MB, NONE, guess_columns, load_hub_dataset, read_upload

logger = logging.getLogger("hf_nuggets.space")

# ---------------------------------------------------------------------------------------------------------------------
# ① Bring data: the outputs are the session, the status, the preview, the 4 column dropdowns and the rows slider


class DataLoader:
    """The data buttons: an upload, the shipped sample, or a public Hub dataset, kept in the visitor's session.

    Args:
        max_upload_mb (`float`): Largest upload.
        max_rows (`int`): Rows kept (rows past them are never read).
        max_data_mb (`float`, *optional*, defaults to `100`): Megabytes the rows kept may take once read.
        hub_endpoint (`str`, *optional*): Hub endpoint (default: huggingface.co).
    """

    def __init__(
        self,
        *,
        max_upload_mb: float,
        max_rows: int,
        max_data_mb: float = MAX_DATA_MB,
        hub_endpoint: str | None = None,
    ):
        self.max_upload_mb, self.max_rows, self.max_data_mb = max_upload_mb, max_rows, max_data_mb
        self.hub_endpoint = hub_endpoint

    def upload(self, file: str | None, session: dict):
        if not file:
            return (session, gr.skip(), gr.skip(), *(gr.skip(),) * 4, gr.skip())

        def read():
            dataset, more = read_upload(
                file,
                field="the data upload box",
                max_mb=self.max_upload_mb,
                max_rows=self.max_rows,
                max_data_mb=self.max_data_mb,
            )
            return dataset, Path(file).name, "file", more

        return self.load(session, read)

    def sample(self, session: dict):
        return self.load(session, lambda: (load_sample_dataset(), sample_dataset_path().name, "sample", False))

    def hub(self, repo_id: str, config: str, split: str, session: dict):
        def read():
            dataset, more = load_hub_dataset(
                repo_id,
                config,
                split,
                max_rows=self.max_rows,
                max_data_mb=self.max_data_mb,
                endpoint=self.hub_endpoint,
            )
            return dataset, repo_id.strip(), "hub", more

        return self.load(session, read)

    def load(self, session: dict, read: Callable[[], tuple[Any, str, str, bool]]):
        """Read data with `read` (which returns the dataset, its source, its kind and whether rows were left out)
        and show it; any failure is a one-line message, and the page is reset to "no data"."""
        try:
            return self.loaded(session, *read())
        except Exception as err:  # noqa: BLE001 - every failure is a message, never an error badge
            return self.failed(session, err)

    def loaded(self, session: dict, dataset: Any, source: str, kind: str, more: bool = False):
        note = ""
        if len(dataset) > self.max_rows:
            note = f" Only the first {self.max_rows} of its {len(dataset)} rows are kept."
            dataset = dataset.select(range(self.max_rows))
        elif more:
            note = f" Only the first {self.max_rows} rows are kept."
        guess = guess_columns(dataset.column_names)
        choices = [NONE, *dataset.column_names]
        if "messages" in guess:
            mapping_note = f"Reading the chat column `{guess['messages']}`."
        elif guess.get("instruction") and guess.get("output"):
            mapping_note = "Columns mapped below; change them if needed."
        else:
            mapping_note = "Pick the instruction and output columns in the dropdowns below."
        status = message_html(
            "ok",
            f"<b>{html.escape(source)}</b>: {plural(len(dataset), 'row')}, columns "
            f"{', '.join(f'<code>{html.escape(c)}</code>' for c in dataset.column_names)}.{html.escape(note)} "
            f"{html.escape(mapping_note)}",
            raw=True,
        )
        preview = gr.update(value=preview_frame(dataset), visible=True)
        session["data"] = {"dataset": dataset, "source": source, "kind": kind}
        session["result"] = None
        return (
            session,
            status,
            preview,
            *(
                gr.update(choices=choices, value=guess.get(k) or NONE)
                for k in ("instruction", "input", "output", "messages")
            ),
            count_slider(len(dataset), default=DEFAULT_ROWS, limit=self.max_rows),
        )

    def failed(self, session: dict, err: BaseException):
        """The page after data failed to load: the message, and no data (the columns and rows reset)."""
        if isinstance(err, UserError):
            logger.info("Data not loaded: %s", err)
        else:
            logger.exception("Data not loaded")
        session.pop("data", None)
        return (
            session,
            message_html("error", error_text(err)),
            gr.update(value=None, visible=False),
            *(gr.update(choices=[NONE], value=NONE) for _ in range(4)),
            count_slider(None, default=DEFAULT_ROWS, limit=self.max_rows),
        )


# ---------------------------------------------------------------------------------------------------------------------
# ③ The row view and ④ the push


def show_rows(session: dict, show: str):
    """The results table in the view asked for (the best and worst rows, or all of them), and the run's status line
    (left as it is, or the message of a failure)."""
    result = session.get("result")
    if not result or not result.get("parquet"):
        return gr.skip(), gr.skip()
    try:
        from datasets import Dataset

        scored = Dataset.from_parquet(result["parquet"], cache_dir=str(Path(result["dir"]) / "hf-cache"))
        return results_table(scored.to_dict(), result["mapping"], show), gr.skip()
    except Exception as err:  # noqa: BLE001 - every failure is a message
        logger.exception("Rows not shown")
        return gr.skip(), message_html("error", f"Could not show the rows: {error_text(err)}")


class HubPush:
    """The Push button: the last result to a dataset repo, with the visitor's own token (never stored or logged).

    Args:
        hub_endpoint (`str`, *optional*): Hub endpoint (default: huggingface.co).
        oauth (`bool`, *optional*, defaults to `False`): Whether the Space offers "Sign in with Hugging Face".
    """

    def __init__(self, *, hub_endpoint: str | None = None, oauth: bool = False):
        self.hub_endpoint, self.oauth = hub_endpoint, oauth

    def push(self, session: dict, repo_id: str, private: bool, token: str, oauth_token: gr.OAuthToken | None = None):
        typed = (token or "").strip()
        secret = typed or (oauth_token.token if oauth_token is not None else "")
        result = session.get("result")
        try:
            if not result:
                raise UserError("Prospect first: there is nothing to push yet.")
            if not secret:
                raise UserError(
                    "Paste a Hugging Face token with write access (hf.co/settings/tokens)"
                    + (" or sign in with Hugging Face" if self.oauth else "")
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
                endpoint=self.hub_endpoint,
            )
        except Exception as err:  # noqa: BLE001 - every failure is a message, with the token redacted
            text = error_text(err, secret)
            if not isinstance(err, (UserError, HubPushError, ValueError)):
                text = f"Pushing to `{repo_id}` failed: {text}. Nothing was pushed."
            logger.info("Push failed: %s", text)
            return message_html("error", text), ""
        url = html.escape(getattr(commit, "repo_url", None) or f"https://huggingface.co/datasets/{repo_id}")
        return message_html("ok", f'Pushed to <a href="{url}" target="_blank">{url}</a>.', raw=True), ""


# ---------------------------------------------------------------------------------------------------------------------
# Layout and wiring


def build_prospect_tab(
    session: gr.State,
    prospectors: Prospectors,
    *,
    max_upload_mb: float,
    max_rows: int,
    max_jobs: int,
    batch_size: int,
    max_data_mb: float = MAX_DATA_MB,
    hub_endpoint: str | None = None,
    oauth: bool = False,
) -> None:
    """Lay out the Prospect tab inside the current `gr.Tabs`, and wire its events (see `build_demo`)."""
    data = DataLoader(
        max_upload_mb=max_upload_mb, max_rows=max_rows, max_data_mb=max_data_mb, hub_endpoint=hub_endpoint
    )
    runs = RunHandler(prospectors, max_upload_mb=max_upload_mb, max_data_mb=max_data_mb, batch_size=batch_size)
    pushes = HubPush(hub_endpoint=hub_endpoint, oauth=oauth)
    with gr.Tab("Prospect", id="prospect"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=6, elem_classes="nug-step"):
                gr.Markdown("### ① Bring data")
                upload = gr.File(
                    label=f"Upload JSON, JSONL, CSV or parquet (max {max_upload_mb:g} MB, first {max_rows} rows)",
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
                    elem_classes=["nug-preview", TABLE_CLASS],
                )
                with gr.Row():
                    col_instruction = gr.Dropdown([NONE], value=NONE, label="instruction", min_width=120)
                    col_input = gr.Dropdown([NONE], value=NONE, label="input", min_width=120)
                    col_output = gr.Dropdown([NONE], value=NONE, label="output", min_width=120)
                    col_messages = gr.Dropdown([NONE], value=NONE, label="or messages", min_width=120)
            with gr.Column(scale=5, elem_classes="nug-step"):
                gr.Markdown("### ② Prospect")
                model = gr.Dropdown(
                    prospectors.choices,
                    value=prospectors.default,
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
                    rows = gr.Slider(
                        1, max_rows, value=min(DEFAULT_ROWS, max_rows), step=1, label="Rows to score", elem_id="rows"
                    )
                with gr.Row():
                    seconds = gr.Slider(
                        10, MAX_SECONDS, value=DEFAULT_SECONDS, step=10, label="Time budget (s)", elem_id="seconds"
                    )
                    top = gr.Slider(1, 50, value=5, step=1, label="Keep the top %")
                with gr.Row():
                    run_btn = gr.Button("⛏️ Prospect", variant="primary", elem_id="run", scale=3)
                    cancel_btn = gr.Button("Cancel", variant="stop", visible=False, elem_id="cancel", scale=1)
                run_status = gr.HTML(message_html("info", default_run_hint()), elem_id="run-status")
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
                visible=False,  # until there are rows to show
                elem_id="results-table",
                elem_classes=TABLE_CLASS,
                column_widths=["6%", "5%", "8%", "7%", "33%", "31%", "10%"],
            )
            with gr.Accordion("Task set used", open=False):
                tasks_table = gr.Dataframe(
                    interactive=False,
                    wrap=True,
                    max_height=300,
                    visible=False,
                    elem_id="tasks-table",
                    elem_classes=TABLE_CLASS,
                )
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
                    "Publishes a dataset repo with a `scored` and a `top<p>` configuration, the card and the "
                    "histogram, in one commit. Your token is used for this push only: it is not stored, logged or "
                    "shown."
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

    data_outputs = [session, data_status, preview, col_instruction, col_input, col_output, col_messages, rows]
    upload.upload(data.upload, [upload, session], data_outputs, api_name="load_file", concurrency_limit=8)
    sample_btn.click(data.sample, [session], data_outputs, api_name="load_sample", concurrency_limit=8)
    hub_btn.click(data.hub, [hub_id, hub_config, hub_split, session], data_outputs, api_name="load_hub")
    task_mode.change(lambda m: gr.update(visible=m == TASKS_UPLOADED), task_mode, task_file, api_name=False)
    run_btn.click(
        runs.run,
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
    show.change(show_rows, [session, show], [table, run_status], api_name="show_rows")
    push_btn.click(pushes.push, [session, repo_id, private, token], [push_status, token], api_name="push")
