"""What a visitor of the hf-nuggets Space brings: files, Hub datasets and column choices, read into in-memory
`Dataset`s and checked before any model loads.

A file is bounded twice: by its size on disk (`MAX_UPLOAD_MB`), and by the size of its rows once read
(`MAX_DATA_MB`), since a few compressed bytes can decode into gigabytes. Files and Hub streams are read a few rows
at a time: the reading stops after `MAX_ROWS` rows, and is refused as soon as the rows read take more than the
budget. Nothing of it is written to disk. What is wrong with a file (its format, encoding, a bad line, a record
that is not an object) is found by the library's checks (`hf_nuggets.data.checks`), as the command line finds it.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hf_nuggets import load_data
from hf_nuggets.data.checks import Caller, InputError, check_columns, check_file, csv_records, json_records
from hf_nuggets.data.formatting import examples_from_batch, resolve_columns
from rendering import UserError, error_text

MAX_UPLOAD_MB = 20
#: Megabytes the rows of an upload or a Hub dataset may take once read (Arrow's bytes, or the decoded text).
MAX_DATA_MB = 100
MAX_ROWS = 5000
#: Rows of a parquet file decoded at a time before the budget is checked again.
PARQUET_BATCH_ROWS = 16
#: How the library's input checks word a message for this Space: a file by its name, the column mapping by its
#: dropdowns.
FIELDS = Caller("fields", {"columns": "instruction/input/output"})
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


class OverBudget(Exception):
    """The rows read so far take more bytes than the budget (`rows`: how many were read)."""

    def __init__(self, rows: int):
        super().__init__(rows)
        self.rows = rows


def budget_text(source: str, max_data_mb: float, rows: int) -> str:
    """The message of data over the budget."""
    read = f"its first {rows} rows alone" if rows > 1 else "a single row alone"
    return (
        f"{source} holds more than {max_data_mb:g} MB of data once read ({read}); this Space reads up to "
        f"{max_data_mb:g} MB. Upload fewer or shorter rows."
    )


def _parquet_table(file: Path, max_rows: int, max_bytes: int):
    """Up to `max_rows` rows of a parquet file, `PARQUET_BATCH_ROWS` at a time, and whether it has more.

    Before anything is decoded, the row groups to read are checked in the file's metadata: a column chunk larger than
    the budget once decompressed is refused (one such value would be decoded whole, whatever the batch size).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(file)
    metadata, rows = parquet.metadata, 0
    for group in range(metadata.num_row_groups):
        if rows > max_rows:
            break
        row_group = metadata.row_group(group)
        if any(row_group.column(c).total_uncompressed_size > max_bytes for c in range(row_group.num_columns)):
            raise OverBudget(rows + 1)
        rows += row_group.num_rows
    batches, size, rows = [], 0, 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        batch = batch.slice(0, max_rows + 1 - rows)
        batches.append(batch)
        rows, size = rows + batch.num_rows, size + batch.nbytes
        if size > max_bytes:
            raise OverBudget(rows)
        if rows > max_rows:
            break
    table = pa.Table.from_batches(batches, schema=parquet.schema_arrow)
    return table.slice(0, max_rows), table.num_rows > max_rows


def _json_table(file: Path, max_rows: int, max_bytes: int):
    """Up to `max_rows` records of a JSON or JSON Lines file, a record at a time (checked by the library's
    `json_records`), and whether it has more; typed by Arrow's JSON reader, as `datasets` types them."""
    import pyarrow.json as paj

    kept, size = [], 0
    for _, value in json_records(file, source=f"`{file.name}`", caller=FIELDS):
        record = json.dumps(value, ensure_ascii=False).encode("utf-8")
        if len(kept) == max_rows:
            return paj.read_json(io.BytesIO(b"\n".join(kept))), True
        kept.append(record)
        size += len(record)
        if size > max_bytes:
            raise OverBudget(len(kept))
    return paj.read_json(io.BytesIO(b"\n".join(kept))), False


def _csv_table(file: Path, max_rows: int, max_bytes: int):
    """Up to `max_rows` records of a CSV file, a record at a time (checked by the library's `csv_records`), and
    whether it has more; typed by pandas, as `datasets` types them."""
    import pandas as pd
    import pyarrow as pa

    records = csv_records(file, source=f"`{file.name}`", caller=FIELDS)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(next(records))
    kept, size, more = 0, 0, False
    for record in records:
        if kept == max_rows:
            more = True
            break
        kept += 1
        size += sum(len(field.encode("utf-8")) for field in record)
        if size > max_bytes:
            raise OverBudget(kept)
        writer.writerow(record)
    frame = pd.read_csv(io.StringIO(text.getvalue()))
    return pa.Table.from_pandas(frame, preserve_index=False), more


def read_table(file: Path, *, max_rows: int, max_bytes: int):
    """The first `max_rows` rows of a JSON, JSON Lines, CSV or parquet file as an Arrow table, and whether it has
    more rows.

    The file is read a few rows at a time (parquet row batches, JSON records, CSV records), never whole into
    Arrow, and never decompressed by its contents: reading stops after `max_rows + 1` rows.

    Raises:
        `OverBudget`: When the rows read take more than `max_bytes` bytes (decoded Arrow data for parquet, the
            records' text otherwise, and the whole table's Arrow bytes at the end).
    """
    readers = {".parquet": _parquet_table, ".csv": _csv_table, ".json": _json_table, ".jsonl": _json_table}
    table, more = readers[file.suffix.lower()](file, max_rows, max_bytes)
    if table.nbytes > max_bytes:
        raise OverBudget(table.num_rows)
    return table, more


def in_memory_dataset(table: Any):
    """A `Dataset` over an Arrow table held in memory (no cache file)."""
    from datasets import Dataset
    from datasets.table import InMemoryTable

    return Dataset(InMemoryTable(table))


def read_upload(
    path: str | None,
    *,
    field: str = "the upload box",
    max_mb: float = MAX_UPLOAD_MB,
    max_rows: int = MAX_ROWS,
    max_data_mb: float = MAX_DATA_MB,
):
    """Read an uploaded JSON/JSONL/CSV/parquet file into an in-memory `Dataset`, within the Space's limits.

    Every failure is a one-line `UserError` that names the file, and the line for a text file's bad line.

    Args:
        path (`str`): The uploaded file.
        field (`str`, *optional*, defaults to `"the upload box"`): The box the file comes from, as the page names it
            (e.g. `"the Annotations box"`), in the message when there is no file.
        max_mb (`float`, *optional*, defaults to `20`): Largest file on disk, checked before it is opened.
        max_rows (`int`, *optional*, defaults to `5000`): Rows read at most.
        max_data_mb (`float`, *optional*, defaults to `100`): Megabytes the rows read may take (see `read_table`).

    Returns:
        `tuple[datasets.Dataset, bool]`: The rows read, and whether the file holds more than `max_rows`.

    Raises:
        `UserError`: A missing or too large file, or rows over `max_data_mb`; and, worded by the library's checks
            (`check_file`, `json_records`, `csv_records`), an unsupported, compressed, empty or unreadable file (a line
            that is not UTF-8, not JSON, not a JSON object or whose field changes type, or not CSV).
    """
    if not path:
        raise UserError(f"Upload a file in {field} first.")
    file = Path(path)
    suffix = file.suffix.lower()
    try:
        check_file(file, source=f"`{file.name}`")
    except InputError as err:
        raise UserError(str(err)) from None
    size_mb = file.stat().st_size / 2**20
    if size_mb > max_mb:
        raise UserError(f"`{file.name}` is {size_mb:.1f} MB; this Space takes files up to {max_mb:g} MB.")
    try:
        table, more = read_table(file, max_rows=max_rows, max_bytes=int(max_data_mb * 2**20))
    except OverBudget as err:
        raise UserError(budget_text(f"`{file.name}`", max_data_mb, err.rows)) from None
    except InputError as err:
        raise UserError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - any parsing error becomes a message
        cause: BaseException = err
        for _ in range(5):  # the innermost cause names the problem (e.g. the bad JSON line)
            if cause.__cause__ is None:
                break
            cause = cause.__cause__
        raise UserError(f"Could not read `{file.name}` as {suffix[1:].upper()}: {error_text(cause)}") from err
    if table.num_rows == 0:  # a parquet file (a text file without rows is refused by the library's checks)
        raise UserError(f"`{file.name}` has no rows.")
    if table.num_columns == 0:  # records without fields past the rows read (the library refuses a whole file of them)
        raise UserError(f"`{file.name}` has no fields: its records are empty.")
    return in_memory_dataset(table), more


def row_bytes(value: Any) -> int:
    """The bytes a row (or a value of it) takes once decoded: text as UTF-8, bytes as they are, 8 a number."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "replace"))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, Mapping):
        return sum(row_bytes(k) + row_bytes(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(row_bytes(v) for v in value)
    if value is None or isinstance(value, (bool, int, float)):
        return 8
    return sys.getsizeof(value)


def load_hub_dataset(
    repo_id: str,
    config: str | None,
    split: str,
    *,
    max_rows: int,
    max_data_mb: float = MAX_DATA_MB,
    endpoint: str | None = None,
):
    """The first `max_rows` rows of a public Hub dataset, streamed a row at a time (nothing is cached on disk) and
    refused once they take more than `max_data_mb` megabytes (see `row_bytes`).

    Returns:
        `tuple[datasets.Dataset, bool]`: The rows read, and whether the split holds more than `max_rows`.
    """
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
    max_bytes, rows, size, more = int(max_data_mb * 2**20), [], 0, False
    try:
        stream = load_data(repo_id, split=split, streaming=True, name=(config or "").strip() or None, token=False)
        features = stream.features
        for row in stream:
            if len(rows) == max_rows:
                more = True
                break
            rows.append(row)
            size += row_bytes(row)
            if size > max_bytes:
                raise OverBudget(len(rows))
    except OverBudget as err:
        raise UserError(budget_text(f"The Hub dataset `{repo_id}`", max_data_mb, err.rows)) from None
    except Exception as err:  # noqa: BLE001
        raise UserError(f"Could not load split `{split}` of `{repo_id}`: {error_text(err)}") from err
    if not rows:
        raise UserError(f"Split `{split}` of `{repo_id}` has no rows.")
    dataset = Dataset.from_list(rows, features=features) if features is not None else Dataset.from_list(rows)
    return dataset, more


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
        raise UserError(
            "Map the instruction and output columns in their dropdowns under ① (or pick the chat column in the "
            "“or messages” dropdown) before prospecting."
        )
    return {"instruction": instruction, "input": clean(input_), "output": output}


def check_rows(dataset: Any, columns: Mapping[str, str | None], rows: int) -> dict:
    """Fail before loading any model when the rows to score cannot be read with the column mapping."""
    try:
        mapping = check_columns(dataset.column_names, columns, source="the data", caller=FIELDS)
    except InputError as err:
        raise UserError(str(err)) from None
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
