"""Publishing scored data to the Hugging Face Hub: a dataset repo with a `scored` and a `top<p>` configuration, the
score histogram and a generated card, all in one commit.

`export_repo_folder` writes the repo's files to a local folder (offline: `load_dataset(folder, "top5")` works on it);
`push_scored_dataset` exports to a temporary folder, merges the card's YAML with the one already on the Hub (the
`dataset_info` and `configs` the `datasets` library writes survive) and commits everything with one `create_commit`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from .._version import __version__
from ..data.checks import PYTHON, Caller
from ..run.outputs import SCORED_STEM
from ..run.outputs import SUMMARY_FILE as RUN_SUMMARY_FILE
from ..selection import SCORE_COLUMN, Selection, dataset_gated, top_selection
from ..utils.network import HubUnreachableError, is_network_error, unreachable_message
from ..utils.secrets import redact
from .card import (
    HISTOGRAM_FILE,
    SCORED_CONFIG,
    build_dataset_card,
    card_template_path,
    check_scored,
    data_pattern,
    is_hub_dataset_id,
    public_name,
    selection_config_name,
)
from .plots import write_histogram_png

logger = logging.getLogger(__name__)

SUMMARY_FILE = "hf_nuggets_summary.json"
CARD_FILE = "README.md"
_LIST_KEYS = ("tags", "task_categories", "task_ids", "language", "source_datasets")
_REPO_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")


class HubPushError(RuntimeError):
    """A push to the Hub failed; the message says what, if anything, this push left on the Hub."""


# ---------------------------------------------------------------------------------------------------------------------
# Checks


def check_repo_id(repo_id: Any) -> str:
    """Validate a dataset repo id of the form `namespace/name`.

    Example:

    ```python
    >>> check_repo_id("user/alpaca-nuggets")
    'user/alpaca-nuggets'
    ```
    """
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    ok = len(parts) == 2 and all(_REPO_NAME.match(p) and len(p) <= 96 for p in parts)
    if not ok or ".." in repo_id or "--" in repo_id or repo_id.endswith((".", "-", ".git")):
        raise ValueError(f"`repo_id` must be `namespace/name` (e.g. `user/alpaca-nuggets`), got {repo_id!r}.")
    return repo_id


def run_top_percent(summary: Mapping[str, Any], top: float | None = None) -> float:
    """The selection to publish with a run: `top`, else the run's own `top_percent`, else 5.

    Example:

    ```python
    >>> run_top_percent({"selection": {"top_percent": 10}}), run_top_percent({}), run_top_percent({}, 2.5)
    (10, 5, 2.5)
    ```
    """
    if top is not None:
        return top
    return (summary.get("selection") or {}).get("top_percent") or 5


def resolve_token(token: str | None = None, *, caller: Caller = PYTHON) -> str:
    """The token to push with: `token`, else `HF_TOKEN`, else the login cache (`hf auth login`).

    The token is never logged nor put in a message.

    Args:
        token (`str`, *optional*): The token given.
        caller (`Caller`, *optional*, defaults to `PYTHON`): How the message names the argument (`--token` on the
            command line).
    """
    from huggingface_hub import get_token
    from huggingface_hub.errors import LocalTokenNotFoundError

    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise ValueError("`token` must be a non-empty string, or `None` to use `HF_TOKEN` or the login cache.")
    token = token or get_token()
    if not token:
        raise LocalTokenNotFoundError(
            f"No Hugging Face token found: pass {caller.name('token')}, set the `HF_TOKEN` environment variable, or "
            "log in with `hf auth login`. Nothing was pushed."
        )
    return token


# ---------------------------------------------------------------------------------------------------------------------
# Export


def _write_shards(dataset: Any, folder: Path, config: str, max_shard_size: int) -> tuple[list[str], int]:
    from datasets import Dataset

    nbytes = int(dataset.with_format("arrow")[:].nbytes)
    num_shards = max(1, -(-nbytes // max_shard_size)) if len(dataset) else 1
    num_shards = min(num_shards, max(1, len(dataset)))
    paths, size = [], 0
    for i in range(num_shards):
        shard: Dataset = dataset.shard(num_shards, i, contiguous=True)
        rel = f"{config}/train-{i:05d}-of-{num_shards:05d}.parquet"
        (folder / config).mkdir(parents=True, exist_ok=True)
        shard.to_parquet(str(folder / rel))
        paths.append(rel)
        size += (folder / rel).stat().st_size
    return paths, size


#: Keys whose values are local paths wherever they sit in a run summary (`files`, `selection.files`,
#: `sharding.checkpoint`): they are never published.
_LOCAL_PATH_KEYS = frozenset({"files", "checkpoint"})
_LOCAL_FOLDER = "<local folder>"


def _run_folders(summary: Mapping[str, Any]) -> list[str]:
    """The local folders a summary names: its run folder (the parent of its files) and its checkpoint folder."""
    paths = list(dict(summary.get("files") or {}).values())
    paths += list(dict(dict(summary.get("selection") or {}).get("files") or {}).values())
    checkpoint = dict(summary.get("sharding") or {}).get("checkpoint")
    folders = {str(Path(p).parent) for p in paths if isinstance(p, str)}
    if isinstance(checkpoint, str):
        folders |= {checkpoint, str(Path(checkpoint).parent)}
    return sorted(folders - {"", "."}, key=len, reverse=True)


def _is_local_path(text: str, folders: Sequence[str]) -> bool:
    """Whether `text` is a local path: absolute (POSIX or Windows), under the home folder (`~`), or in `folders`."""
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or text.startswith("~"):
        return True
    return any(text == folder or text.startswith((folder + "/", folder + os.sep)) for folder in folders)


def _without_local_paths(value: Any, folders: Sequence[str], hidden: Sequence[str]) -> Any:
    """`value` with every local path taken out, at any depth.

    The values of `_LOCAL_PATH_KEYS` are dropped; a string that is a local path becomes its file name with
    `(a local path)`; the `hidden` folders (absolute: the run folder, the home folder) are masked inside other text.
    """
    if isinstance(value, Mapping):
        return {
            key: _without_local_paths(item, folders, hidden)
            for key, item in value.items()
            if key not in _LOCAL_PATH_KEYS
        }
    if isinstance(value, (list, tuple)):
        return [_without_local_paths(item, folders, hidden) for item in value]
    if not isinstance(value, str):
        return value
    if _is_local_path(value, folders):
        windows = PureWindowsPath(value)
        name = windows.name if windows.is_absolute() and not PurePosixPath(value).is_absolute() else Path(value).name
        return f"{name} (a local path)"
    for folder in hidden:
        value = value.replace(folder, _LOCAL_FOLDER)
    return value


def _public_summary(
    summary: Mapping[str, Any], top_percent: float | None, rows: int, kept: int, chosen: Selection | None = None
) -> dict[str, Any]:
    """The run summary without local paths (at any depth), with the selection of this export."""
    folders = _run_folders(summary)
    home = os.path.expanduser("~")
    hidden = [f for f in folders if os.path.isabs(f)] + ([home] if os.path.isabs(home) and home != os.sep else [])
    out = {k: v for k, v in summary.items() if k not in _LOCAL_PATH_KEYS}
    if "model" in out:
        out["model"] = public_name(out["model"])
    source = out.get("source")
    if source and not is_hub_dataset_id(source):
        out["source"] = Path(source).name
    tasks = dict(out.get("tasks") or {})
    if tasks.get("source") not in (None, "auto", "shipped", "given") and not is_hub_dataset_id(tasks["source"]):
        out["tasks"] = {**tasks, "source": Path(tasks["source"]).name}
    selection = {k: v for k, v in dict(out.get("selection") or {}).items() if k not in _LOCAL_PATH_KEYS}
    if top_percent is not None:
        selection.update(
            {"top_percent": top_percent, "rows_selected": kept, "config": selection_config_name(top_percent)}
        )
        if chosen is not None:
            selection.update({"min_distance": chosen.min_distance, "rows_redundant": chosen.redundant})
            selection.pop("neighbours", None)
            if chosen.neighbours is not None:
                selection["neighbours"] = chosen.neighbours
    out["selection"] = selection or None
    out["rows_published"] = rows
    return _without_local_paths(out, folders, sorted(hidden, key=len, reverse=True))


def export_repo_folder(
    scored: Any,
    folder: str | os.PathLike,
    *,
    top_percent: float | None = 5,
    summary: Mapping[str, Any] | None = None,
    max_shard_size: int | str = "500MB",
    overwrite: bool = False,
    **card_kwargs: Any,
) -> dict[str, Any]:
    """Write the files of a Hub dataset repo for scored data to `folder`: data per configuration, card, histogram.

    The folder receives `scored/train-*.parquet` (every row), `top<p>/train-*.parquet` (the top `top_percent`%,
    best first), `score_histogram.png`, `hf_nuggets_summary.json` (the run summary without local paths) and
    `README.md` (see `build_dataset_card`). `load_dataset(folder, "top5")` loads the selection, offline.

    Args:
        scored (`datasets.Dataset`): Rows with a `golden_score` column.
        folder (`str`): Output folder; created if missing, and must be empty unless `overwrite`.
        top_percent (`float`, *optional*, defaults to `5`): Also publish the top `top_percent`% (as `select_top`);
            `None` for the scored rows only.
        summary (`dict`, *optional*): The run summary (`summary.json` of `prospect`), for the card.
        max_shard_size (`int` or `str`, *optional*, defaults to `"500MB"`): Largest parquet shard (in memory size).
        overwrite (`bool`, *optional*, defaults to `False`): Replace a folder written by an earlier export.
        card_kwargs: Passed to `build_dataset_card` (`repo_id`, `license`, `pretty_name`, `diversity`, `gates`,
            `min_distance`, ...); `gates`, `min_distance` and `embedder` also choose the published selection.

    Returns:
        `dict`: `folder`, `files` (paths relative to the folder), `configs` (name to rows), `card` (the
        `DatasetCard`).

    Example:

    ```python
    >>> import tempfile
    >>> from datasets import Dataset, load_dataset
    >>> ds = Dataset.from_dict({"instruction": ["a", "b", "c", "d"], "output": ["w", "x", "y", "z"],
    ...                         "golden_score": [0.25, 1.0, 0.5, 0.75], "nuggets_gain": [0.0, 0.1, 0.2, 0.3]})
    >>> folder = tempfile.mkdtemp()
    >>> result = export_repo_folder(ds, folder, top_percent=50, diversity=False)
    >>> list(load_dataset(folder, "top50", split="train")["golden_score"])
    [1.0, 0.75]
    ```
    """
    from datasets.utils.py_utils import convert_file_size_to_int

    check_scored(scored, top_percent)
    if card_kwargs.get("template_path") is None:
        card_template_path()  # a missing template fails before anything is written
    shard_bytes = convert_file_size_to_int(max_shard_size)
    if shard_bytes <= 0:
        raise ValueError(f"`max_shard_size` must be positive, got {max_shard_size!r}.")
    out = Path(folder)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"`folder`={str(out)!r} is not empty: pass `overwrite=True` to replace an export.")
        if not (out / SUMMARY_FILE).is_file():
            raise FileExistsError(
                f"`folder`={str(out)!r} was not written by `export_repo_folder` (no {SUMMARY_FILE}): not replacing it."
            )
    # Everything is written to a folder beside `folder`, renamed into place at the end: a failure leaves no
    # partial export behind (nor takes an earlier one away).
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # as a folder made with mkdir (mkdtemp makes it private to its owner)
    try:
        result = _write_repo_files(scored, staging, top_percent, dict(summary or {}), shard_bytes, card_kwargs)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result["folder"] = out
    logger.info("Wrote the dataset repo files to %s: %s", out, ", ".join(result["files"]))
    return result


def _write_repo_files(
    scored: Any,
    out: Path,
    top_percent: float | None,
    summary: dict[str, Any],
    shard_bytes: int,
    card_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Write the repo files of `export_repo_folder` into the empty folder `out`."""
    files, sizes, configs = [], {}, {SCORED_CONFIG: len(scored)}
    paths, sizes[SCORED_CONFIG] = _write_shards(scored, out, SCORED_CONFIG, shard_bytes)
    files += paths
    kept_scores = chosen = None
    if top_percent is not None:
        name = selection_config_name(top_percent)
        chosen = top_selection(
            scored,
            top_percent,
            gates=card_kwargs.get("gates", "all"),
            min_distance=card_kwargs.get("min_distance"),
            embedder=card_kwargs.get("embedder"),
            columns=card_kwargs.get("columns") if card_kwargs.get("columns") is not None else summary.get("columns"),
        )
        card_kwargs["selection"] = chosen
        selected = scored.select(chosen.indices.tolist())
        configs[name] = len(selected)
        paths, sizes[name] = _write_shards(selected.flatten_indices(), out, name, shard_bytes)
        files += paths
        kept_scores = selected[SCORE_COLUMN]
    gated = dataset_gated(scored, card_kwargs.get("gates", "all"))
    scores = np.asarray(scored[SCORE_COLUMN], dtype=np.float64)
    scores = scores if gated is None else scores[~gated]
    write_histogram_png(out / HISTOGRAM_FILE, scores, kept_scores)  # flagged rows are counted apart, in the card
    files.append(HISTOGRAM_FILE)
    kept = configs[selection_config_name(top_percent)] if top_percent is not None else 0
    public = _public_summary(summary, top_percent, len(scored), kept, chosen)
    (out / SUMMARY_FILE).write_text(json.dumps(public, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    files.append(SUMMARY_FILE)
    card = build_dataset_card(
        scored,
        summary=summary,
        top_percent=top_percent,
        download_sizes=sizes,
        histogram_image=HISTOGRAM_FILE,
        **card_kwargs,
    )
    card.save(out / CARD_FILE)
    files.append(CARD_FILE)
    return {"folder": out, "files": files, "configs": configs, "card": card}


# ---------------------------------------------------------------------------------------------------------------------
# Merging our card metadata with the metadata already on the Hub


def _by_config(entries: Any) -> dict[str, dict]:
    if isinstance(entries, Mapping):
        entries = [entries]
    return {str(e.get("config_name", "default")): dict(e) for e in entries or [] if isinstance(e, Mapping)}


def merge_card_metadata(existing: Mapping[str, Any] | None, ours: Mapping[str, Any]) -> dict[str, Any]:
    """Merge our card's YAML into the YAML already on the Hub, so that both survive.

    `dataset_info` and `configs` are merged by configuration name (ours replace configurations of the same name;
    others, e.g. a `default` one written by `Dataset.push_to_hub`, are kept). Our configuration is the default only
    if no other kept configuration already is. List fields (tags, task categories, ...) are united; other fields
    take our value when we have one.

    Args:
        existing (`dict`, *optional*): The YAML on the Hub, as a dict (`DatasetCard.data.to_dict()`).
        ours (`dict`): Our card's YAML.

    Returns:
        `dict`: The merged YAML.

    Example:

    ```python
    >>> remote = {"configs": [{"config_name": "default", "data_files": "data/*"}], "tags": ["x"]}
    >>> ours = {"configs": [{"config_name": "top5", "data_files": "top5/*", "default": True}], "tags": ["hf-nuggets"]}
    >>> merged = merge_card_metadata(remote, ours)
    >>> [c["config_name"] for c in merged["configs"]], [c.get("default") for c in merged["configs"]], merged["tags"]
    (['default', 'top5'], [None, None], ['x', 'hf-nuggets'])
    ```
    """
    merged = dict(existing or {})
    for key, value in ours.items():
        if key in ("dataset_info", "configs") or value is None:
            continue
        if key in _LIST_KEYS and isinstance(merged.get(key), (list, str)):
            old = [merged[key]] if isinstance(merged[key], str) else list(merged[key])
            new = [value] if isinstance(value, str) else list(value)
            merged[key] = old + [v for v in new if v not in old]
        else:
            merged[key] = value
    infos = _by_config(merged.get("dataset_info"))
    infos.update(_by_config(ours.get("dataset_info")))
    if infos:
        entries = [{"config_name": name, **infos[name]} for name in sorted(infos)]
        if len(entries) == 1 and entries[0].get("config_name") == "default":
            entries[0].pop("config_name")
        merged["dataset_info"] = entries[0] if len(entries) == 1 else entries
    theirs = {k: v for k, v in _by_config(merged.get("configs")).items() if k not in _by_config(ours.get("configs"))}
    mine = _by_config(ours.get("configs"))
    if any(c.get("default") or name == "default" for name, c in theirs.items()):
        for config in mine.values():
            config.pop("default", None)
    configs = {**theirs, **mine}
    if configs:
        merged["configs"] = [configs[name] for name in sorted(configs)]
    return merged


# ---------------------------------------------------------------------------------------------------------------------
# Push


def _source_license(api: Any, source: str | None) -> str | None:
    """The license of a Hub source dataset, if it can be read (best effort: `None` on any failure)."""
    if not is_hub_dataset_id(source):
        return None
    try:
        info = api.dataset_info(source)
    except Exception as err:  # network, permissions, missing repo: the license stays unknown
        logger.info("Could not read the license of the source dataset %s: %s", source, type(err).__name__)
        return None
    card_data = getattr(info, "card_data", None)
    value = card_data.get("license") if card_data is not None else None
    return value if isinstance(value, str) else None


def _remote_state(api: Any, repo_id: str, revision: str | None, workdir: Path) -> tuple[Any, str | None]:
    """The repo's current commit and README text (`None` when it has none)."""
    from huggingface_hub.errors import EntryNotFoundError

    info = api.repo_info(repo_id, repo_type="dataset", revision=revision, files_metadata=False)
    names = {s.rfilename for s in info.siblings or []}
    if CARD_FILE not in names:
        return info, None
    try:
        path = api.hf_hub_download(
            repo_id, CARD_FILE, repo_type="dataset", revision=info.sha, local_dir=workdir / "remote"
        )
    except EntryNotFoundError:
        return info, None
    return info, Path(path).read_text(encoding="utf-8")


def _operations(folder: Path, files: Sequence[str], remote_files: Sequence[str], configs: Sequence[str], card: str):
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    ops = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(folder / f)) for f in files if f != CARD_FILE]
    ops.append(CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card.encode("utf-8")))
    stale = [
        f
        for f in remote_files
        if f not in files and any(f.startswith(data_pattern(c).removesuffix("*")) for c in configs)
    ]
    ops += [CommitOperationDelete(path_in_repo=f) for f in stale]
    return ops, stale


def push_scored_dataset(
    scored: Any,
    repo_id: str,
    *,
    top_percent: float | None = 5,
    private: bool | None = None,
    token: str | None = None,
    summary: Mapping[str, Any] | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
    max_shard_size: int | str = "500MB",
    endpoint: str | None = None,
    **card_kwargs: Any,
):
    """Publish golden-scored data as a Hub dataset repo: data, histogram and card, in one commit.

    The repo gets a `scored` configuration (every row with its score) and, with `top_percent`, a `top<p>` one (the
    selection, the default), so `load_dataset(repo_id, "top5")` works; a card rendered from `card_templates/`
    (see `build_dataset_card`) and the score histogram. The card's YAML is merged with the YAML already on the Hub:
    the `dataset_info` and `configs` that `datasets` writes and ours both survive a later push by either.

    Everything is checked and written locally first; then the repo is created if needed and all files go in one
    `create_commit` (against the commit the card was merged with), so a failure leaves no half-pushed data. Data
    shards of our configurations left from an earlier push are deleted in the same commit.

    Args:
        scored (`datasets.Dataset`): Rows with a `golden_score` column.
        repo_id (`str`): The dataset repo, `namespace/name`.
        top_percent (`float`, *optional*, defaults to `5`): Also publish the top `top_percent`%; `None` for the
            scored rows only.
        private (`bool`, *optional*): Make a new repo private (`None`: the Hub's default). An existing repo keeps
            its visibility (a warning says so when it differs).
        token (`str`, *optional*): Hub token; defaults to `HF_TOKEN`, then the login cache. Never logged.
        summary (`dict`, *optional*): The run summary (`summary.json` of `prospect`), for the card.
        commit_message (`str`, *optional*): Commit title (default: what was pushed).
        revision (`str`, *optional*): Branch to push to (default `main`).
        max_shard_size (`int` or `str`, *optional*, defaults to `"500MB"`): Largest parquet shard.
        endpoint (`str`, *optional*): Hub endpoint (default: `HF_ENDPOINT`, else huggingface.co).
        card_kwargs: Passed to `build_dataset_card` (`license`, `language`, `pretty_name`, `tags`, `diversity`,
            ...). Without `license`, the license of a Hub source dataset is passed through when it can be read.

    Returns:
        `huggingface_hub.CommitInfo`: The commit (its `commit_url`, `oid`, `repo_url`).

    Example:

    ```python
    >>> push_scored_dataset(scored, "user/alpaca-nuggets", top_percent=5, private=True)  # doctest: +SKIP
    ```
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    check_repo_id(repo_id)
    check_scored(scored, top_percent)
    if card_kwargs.get("template_path") is None:
        card_template_path()
    token = resolve_token(token)
    api = HfApi(endpoint=endpoint, token=token, library_name="hf-nuggets", library_version=__version__)
    summary = dict(summary or {})
    if card_kwargs.get("license") is None:
        card_kwargs["license"] = _source_license(api, card_kwargs.get("source") or summary.get("source"))

    created = False
    with tempfile.TemporaryDirectory(prefix="hf-nuggets-push-") as tmp:
        workdir = Path(tmp)
        export = export_repo_folder(
            scored,
            workdir / "repo",
            top_percent=top_percent,
            summary=summary,
            max_shard_size=max_shard_size,
            repo_id=repo_id,
            **card_kwargs,
        )
        card, configs = export["card"], list(export["configs"])
        kept = export["configs"].get(configs[-1]) if top_percent is not None else None
        message = commit_message or (
            f"Upload {len(scored)} golden-scored rows"
            + (f" and the top {top_percent:g}% ({kept} rows)" if top_percent is not None else "")
            + " with hf-nuggets"
        )
        description = (
            f"Configurations: {', '.join(f'{c} ({n} rows)' for c, n in export['configs'].items())}. "
            f"Prospector: {public_name(summary.get('model')) or 'not recorded'}; "
            f"tasks: {summary.get('num_tasks') or 'not recorded'}; "
            f"hf-nuggets {__version__}."
        )
        try:
            try:
                api.repo_info(repo_id, repo_type="dataset", files_metadata=False)
            except RepositoryNotFoundError:
                api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
                created = True
            if revision is not None:
                api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
            for attempt in range(3):
                info, remote_card = _remote_state(api, repo_id, revision, workdir / f"attempt{attempt}")
                if private is not None and info.private is not None and bool(info.private) != private and not created:
                    logger.warning(
                        "The repo %s already exists and is %s; `private=%s` does not change it.",
                        repo_id,
                        "private" if info.private else "public",
                        private,
                    )
                merged = dict(card.data.to_dict())
                if remote_card is not None:
                    from huggingface_hub import DatasetCard

                    remote = DatasetCard(remote_card, ignore_metadata_errors=True).data.to_dict()
                    merged = merge_card_metadata(remote, merged)
                final = _card_with_metadata(card, merged)
                remote_files = [s.rfilename for s in info.siblings or []]
                ops, stale = _operations(export["folder"], export["files"], remote_files, configs, final)
                try:
                    commit = api.create_commit(
                        repo_id,
                        ops,
                        commit_message=message,
                        commit_description=description,
                        repo_type="dataset",
                        revision=revision,
                        parent_commit=info.sha,
                    )
                except HfHubHTTPError as err:
                    if err.response is not None and err.response.status_code == 412 and attempt < 2:
                        logger.info("The repo %s moved while pushing; merging the card again.", repo_id)
                        continue
                    raise
                break
        except Exception as err:
            if is_network_error(err):
                what = f"push to the dataset repo {repo_id} (nothing was pushed)"
                raise HubUnreachableError(redact(unreachable_message(err, what), token)) from None
            if not isinstance(err, (HfHubHTTPError, OSError, ValueError, RuntimeError)):
                raise
            on_hub = (
                f"The repo {repo_id} was created by this push and is empty; "
                if created
                else f"The repo {repo_id} is unchanged; "
            )
            text = redact(f"{type(err).__name__}: {err}", token)
            raise HubPushError(
                f"Pushing to the dataset repo {repo_id} failed: {text} {on_hub}nothing from this push is on the Hub "
                "(the data and the card go in one commit, which was not made)."
            ) from (None if token in str(err) else err)
    logger.info(
        "Pushed %s to %s (commit %s)%s.",
        ", ".join(export["files"]),
        repo_id,
        commit.oid,
        f", deleting stale shards {', '.join(stale)}" if stale else "",
    )
    return commit


def _card_with_metadata(card: Any, metadata: Mapping[str, Any]) -> str:
    from huggingface_hub import DatasetCard, DatasetCardData

    out = DatasetCard(str(card))
    out.data = DatasetCardData(**metadata, ignore_metadata_errors=True)
    return str(out)


def load_prospect_output(folder: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """Read an output folder of `prospect` / `hf-nuggets score`: `scored.parquet` and `summary.json`.

    Args:
        folder (`str`): The folder.

    Returns:
        `tuple[datasets.Dataset, dict]`: The scored rows and the summary (empty if `summary.json` is missing). When
        a payoff report belongs to the folder (see `hf_nuggets.evaluation.payoff_report.find_payoff_report`), the
        summary holds it under `payoff`, and the dataset card shows it.
    """
    from datasets import Dataset

    from ..evaluation.payoff_report import find_payoff_report

    folder = Path(folder)
    data = folder / f"{SCORED_STEM}.parquet"
    if not data.is_file():
        raise FileNotFoundError(
            f"No {data.name} in {str(folder)!r}: score the data first with `hf-nuggets score DATA --out {folder}`."
        )
    summary_path = folder / RUN_SUMMARY_FILE
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    else:
        logger.warning("No %s in %s: the card will say how the data was made only in part.", RUN_SUMMARY_FILE, folder)
    payoff = find_payoff_report(folder)
    if payoff is not None:
        summary["payoff"] = payoff
    return Dataset.from_parquet(str(data)), summary
