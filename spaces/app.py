"""hf-nuggets Space: prospect instruction data for its golden examples in the browser; AlpacaEval win rates.

The Space holds layout and wiring only: it calls the library as the `hf-nuggets` command line does (`load_data`,
`prospect_with_config`, `export_repo_folder`, `push_scored_dataset`, `alpaca_eval_winrate`). This file composes the
page; each tab is a module (`prospect_tab`, whose run is `prospect_run`, and `winrate_tab`), beside the helpers that
show things (`rendering`), read the visitor's data (`visitor_data`) and load prospectors (`prospectors`).
`build_demo()` returns the `gr.Blocks`; `python spaces/app.py` runs it locally (a Space runs `python app.py`; either
way this folder is on `sys.path`).

Every visitor's data lives in memory in their session (read within a size budget, see `visitor_data`), and their
results and files in a private temporary folder of their session, deleted when the session ends; a Hub token is only
ever a function argument (never stored, logged or put in a message), and `trust_remote_code` is never enabled.
"""

from __future__ import annotations

import html
import logging
import os

try:
    import gradio as gr
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("The Space needs gradio: pip install 'hf-nuggets[space]'") from err

from hf_nuggets.scoring.prospector import Prospector
from prospect_tab import build_prospect_tab
from prospectors import Prospectors, embedded_status, ensure_embedded_model
from rendering import NuggetsBlocks, message_html
from visitor_data import MAX_DATA_MB, MAX_ROWS, MAX_UPLOAD_MB, drop_workspace
from winrate_tab import build_winrate_tab

HERO = (
    '<div id="nug-hero"><h1>⛏️ hf-nuggets</h1><p>Find the <b>golden examples</b> of an instruction dataset. A small '
    "prospector LM reads each example as a one-shot demonstration before a set of tasks; its <b>golden score</b> is "
    "the share of tasks whose answers it makes more likely. Keep the top few percent and fine-tune on those "
    "(SuperNUGGETS).</p><div class='nug-pills'><span class='nug-pill'>① bring data</span><span class='nug-pill'>② "
    "prospect</span><span class='nug-pill'>③ see the scores</span><span class='nug-pill'>④ take it away</span></div>"
    "</div>"
)


def build_demo(
    *,
    prospector: Prospector | None = None,
    max_upload_mb: float = MAX_UPLOAD_MB,
    max_rows: int = MAX_ROWS,
    max_data_mb: float = MAX_DATA_MB,
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
        max_data_mb (`float`, *optional*, defaults to `100`): Megabytes the rows of an upload or a Hub dataset may
            take once read (a small compressed file can decode into far more).
        max_jobs (`int`, *optional*): Jobs (prospecting, judging) run at once; others wait in the queue. Defaults to
            `$NUGGETS_SPACE_MAX_JOBS` or 1 (a free Space has 2 vCPUs).
        batch_size (`int`, *optional*, defaults to `4`): Rows per scorer call; the page updates after each batch.
        hub_endpoint (`str`, *optional*): Hub endpoint for model checks and pushes (default: huggingface.co).

    Returns:
        `gr.Blocks`: The app; `build_demo().queue().launch()` serves it.
    """
    max_jobs = max_jobs or int(os.environ.get("NUGGETS_SPACE_MAX_JOBS", "1"))
    prospectors = Prospectors(prospector, hub_endpoint=hub_endpoint)
    oauth = bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))
    missing_model = embedded_status() if prospector is None else None
    with NuggetsBlocks(
        title="hf-nuggets: find the golden examples", analytics_enabled=False, max_upload_mb=max_upload_mb
    ) as demo:
        session = gr.State({}, delete_callback=drop_workspace)
        gr.HTML(HERO)
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
            build_prospect_tab(
                session,
                prospectors,
                max_upload_mb=max_upload_mb,
                max_rows=max_rows,
                max_jobs=max_jobs,
                batch_size=batch_size,
                max_data_mb=max_data_mb,
                hub_endpoint=hub_endpoint,
                oauth=oauth,
            )
            build_winrate_tab(
                session, prospectors, max_upload_mb=max_upload_mb, max_jobs=max_jobs, max_data_mb=max_data_mb
            )
    return demo


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ensure_embedded_model()
    build_demo().queue().launch()
