"""What a visitor of the hf-nuggets Space brings: files, Hub datasets and column choices, read into `Dataset`s in
the visitor's own temporary folder, and checked before any model loads."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hf_nuggets import load_data
from hf_nuggets.data.formatting import examples_from_batch, resolve_columns
from hf_nuggets.data.loading import FILE_BUILDERS
from rendering import UserError, error_text

MAX_UPLOAD_MB = 20
MAX_ROWS = 5000
#: The column dropdowns' "no column".
NONE = "(none)"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


def is_hub_id(text: str) -> bool:
    """Whether `text` reads as a Hub repo id (`namespace/name`), and not as a path on this machine."""
    return bool(_HUB_ID.match(text)) and ".." not in text and not Path(text).expanduser().exists()


def workspace(session: dict) -> Path:
    if not session.get("root") or not Path(session["root"]).is_dir():
        session["root"] = tempfile.mkdtemp(prefix="hf-nuggets-space-")
    return Path(session["root"])


def drop_workspace(session: Any) -> None:
    root = session.get("root") if isinstance(session, dict) else None
    if root:
        shutil.rmtree(root, ignore_errors=True)


def read_upload(path: str | None, session: dict, *, what: str = "file", max_mb: float = MAX_UPLOAD_MB):
    """Read an uploaded JSON/JSONL/CSV/parquet file into a `Dataset`, cached in the session's folder only."""
    if not path:
        raise UserError(f"Choose a {what} first.")
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in FILE_BUILDERS:
        raise UserError(f"`{file.name}` is not a supported format: upload a {', '.join(sorted(FILE_BUILDERS))} file.")
    size_mb = file.stat().st_size / 2**20
    if size_mb > max_mb:
        raise UserError(f"`{file.name}` is {size_mb:.1f} MB; this Space takes files up to {max_mb:g} MB.")
    cache = workspace(session) / "hf-cache"
    try:
        dataset = load_data(str(file), cache_dir=str(cache))
    except Exception as err:  # noqa: BLE001 - any parsing error becomes a message
        cause: BaseException = err
        for _ in range(5):  # the innermost cause names the problem (e.g. the bad JSON line)
            if cause.__cause__ is None:
                break
            cause = cause.__cause__
        raise UserError(f"Could not read `{file.name}` as {suffix[1:].upper()}: {error_text(cause)}") from err
    if len(dataset) == 0:
        raise UserError(f"`{file.name}` has no rows.")
    return dataset


def load_hub_dataset(repo_id: str, config: str | None, split: str, *, max_rows: int, endpoint: str | None = None):
    """The first `max_rows` rows of a public Hub dataset, streamed (nothing is cached on disk)."""
    from datasets import Dataset
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    repo_id, split = (repo_id or "").strip(), (split or "train").strip()
    if not is_hub_id(repo_id):
        raise UserError(f"`{repo_id}` is not a Hub dataset id: write it as `namespace/name`, e.g. `tatsu-lab/alpaca`.")
    try:
        HfApi(endpoint=endpoint).dataset_info(repo_id, token=False)
    except GatedRepoError as err:
        raise UserError(f"The Hub dataset `{repo_id}` is gated: download it and upload the file instead.") from err
    except RepositoryNotFoundError as err:
        raise UserError(f"The Hub dataset `{repo_id}` does not exist (or is private).") from err
    except Exception as err:  # noqa: BLE001 - no network, DNS, timeouts
        raise UserError(
            f"The Hub cannot be reached from this Space to load `{repo_id}` ({error_text(err)}); upload a file "
            "instead."
        ) from err
    try:
        stream = load_data(repo_id, split=split, streaming=True, name=(config or "").strip() or None, token=False)
        features = stream.features
        rows = list(stream.take(max_rows))
    except Exception as err:  # noqa: BLE001
        raise UserError(f"Could not load split `{split}` of `{repo_id}`: {error_text(err)}") from err
    if not rows:
        raise UserError(f"Split `{split}` of `{repo_id}` has no rows.")
    return Dataset.from_list(rows, features=features) if features is not None else Dataset.from_list(rows)


def guess_columns(names: Sequence[str]) -> dict[str, str | None]:
    """Which columns hold the instruction, input and output (or the messages), as the library reads them."""
    try:
        mapping = resolve_columns(list(names))
        return {"messages": mapping["messages"]} if "messages" in mapping else dict(mapping)
    except (KeyError, ValueError):
        pass
    lower = {n.lower(): n for n in names}

    def pick(*candidates: str) -> str | None:
        return next((lower[c] for c in candidates if c in lower), None)

    instruction = pick("instruction", "prompt", "question", "query", "problem", "text")
    output = pick("output", "response", "answer", "completion", "chosen", "solution", "target")
    messages = pick("messages", "conversations", "conversation", "chat")
    if messages and not (instruction and output):
        return {"messages": messages}
    return {"instruction": instruction, "input": pick("input", "context"), "output": output}


def column_mapping(instruction: str | None, input_: str | None, output: str | None, messages: str | None) -> dict:
    def clean(value):
        return None if value in (None, "", NONE) else value

    if clean(messages):
        return {"messages": messages}
    if not clean(instruction) or not clean(output):
        raise UserError("Map the instruction and output columns (or a messages column) before prospecting.")
    return {"instruction": instruction, "input": clean(input_), "output": output}


def check_rows(dataset: Any, columns: Mapping[str, str | None], rows: int) -> dict:
    """Fail before loading any model when the rows to score cannot be read with the column mapping."""
    try:
        mapping = resolve_columns(dataset.column_names, columns)
    except (KeyError, ValueError) as err:
        raise UserError(error_text(err)) from err
    bad: list[tuple[int, str]] = []
    for start in range(0, rows, 500):
        stop = min(start + 500, rows)
        try:
            examples_from_batch(dataset[start:stop], mapping, list(range(start, stop)))
        except (TypeError, ValueError):
            for i in range(start, stop):
                try:
                    examples_from_batch(dataset[i : i + 1], mapping, [i])
                except (TypeError, ValueError) as err:
                    bad.append((i, str(err)))
    if bad:
        first = ", ".join(str(i) for i, _ in bad[:8]) + (" …" if len(bad) > 8 else "")
        raise UserError(
            f"{len(bad)} of the {rows} rows to score lack the mapped columns (rows {first}). First problem: "
            f"{bad[0][1]} Fix the data, map other columns, or score fewer rows."
        )
    return mapping
