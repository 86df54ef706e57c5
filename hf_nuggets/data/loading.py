"""Loading data: files, saved datasets, Hub datasets, and the sample data shipped with the package."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from ..utils.network import HubUnreachableError, is_network_error, unreachable_message
from .checks import FILE_BUILDERS, InputError, check_data_file


def _data_file(name: str) -> Path:
    return Path(str(resources.files("hf_nuggets") / "data" / name))


def sample_dataset_path() -> Path:
    """Path of the sample instruction data shipped with the package (JSONL, 300 rows, 40 of them flawed)."""
    return _data_file("sample_alpaca.jsonl")


def default_task_set_path() -> Path:
    """Path of the default predefined task set shipped with the package (JSONL, 16 tasks)."""
    return _data_file("default_tasks.jsonl")


def load_default_task_set(num_tasks: int | None = None) -> list[dict[str, str]]:
    """The default predefined task set: `instruction`/`input`/`output` dicts, the most diverse first.

    Args:
        num_tasks (`int`, *optional*): Keep only the first `num_tasks` tasks.

    Returns:
        `list[dict]`: The tasks.

    Example:

    ```python
    >>> tasks = load_default_task_set(8)
    >>> len(tasks), sorted(tasks[0])
    (8, ['input', 'instruction', 'output'])
    ```
    """
    with open(default_task_set_path(), encoding="utf-8") as handle:
        tasks = [json.loads(line) for line in handle if line.strip()]
    return tasks[:num_tasks] if num_tasks is not None else tasks


def load_sample_dataset():
    """The sample instruction dataset shipped with the package, as a `datasets.Dataset`.

    Its `flaw` column marks the deliberately bad rows (`empty_output`, `nooutput`, `wrong_answer`,
    `truncated`); it is `None` for good rows.
    """
    from datasets import load_dataset

    return load_dataset("json", data_files=str(sample_dataset_path()), split="train")


def load_data(path_or_id: str | os.PathLike, *, split: str = "train", streaming: bool = False, **kwargs: Any):
    """Load data from a JSON/JSONL/CSV/parquet file, a folder saved with `save_to_disk`, or a Hub dataset id.

    Args:
        path_or_id (`str`): A file, a saved dataset folder, a folder of data files, or a Hub dataset id.
        split (`str`, *optional*, defaults to `"train"`): The split to take from a `DatasetDict` or the Hub.
        streaming (`bool`, *optional*, defaults to `False`): Return an `IterableDataset` (files and Hub only).
        **kwargs: Passed to `datasets.load_dataset` (e.g. `name`, `revision`, `token`).

    Returns:
        `datasets.Dataset` (or `IterableDataset` when streaming).
    """
    from datasets import DatasetDict, load_dataset, load_from_disk

    file = check_data_file(path_or_id)
    path = Path(os.path.expanduser(str(path_or_id)))
    if file is not None:
        try:
            return load_dataset(
                FILE_BUILDERS[file.suffix.lower()], data_files=str(file), split="train", streaming=streaming, **kwargs
            )
        except (ValueError, TypeError, OSError) as err:  # datasets' own errors (DatasetGenerationError, ArrowInvalid)
            reason = " ".join(str(err.__cause__ or err).split())
            raise InputError(f"{file} could not be read as {file.suffix.lower()[1:]}: {reason}") from err
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            loaded = load_from_disk(str(path))
            if isinstance(loaded, DatasetDict):
                if split not in loaded:
                    raise KeyError(f"`split` {split!r} not in the saved dataset; it has {sorted(loaded)}.")
                loaded = loaded[split]
            return loaded.to_iterable_dataset() if streaming else loaded
        return load_dataset(str(path), split=split, streaming=streaming, **kwargs)
    try:
        return load_dataset(str(path_or_id), split=split, streaming=streaming, **kwargs)
    except Exception as err:
        if is_network_error(err):
            raise HubUnreachableError(unreachable_message(err, f"load the Hub dataset {path_or_id}")) from err
        if not isinstance(err, FileNotFoundError):
            raise
        raise FileNotFoundError(
            f"Data {str(path_or_id)!r} is neither a local file or folder nor a reachable Hub dataset ({err})."
        ) from err
