"""Input checks that run before any model loads: the data file and the column mapping, in one-line messages.

Every entry point (the command line, the Python API, the Space) calls the same checks; only the way a message says
what to change differs: command-line flags, Python keyword arguments, or the fields of a form (see `Caller`).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: File suffixes `load_data` reads, and the `datasets` builder of each.
FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
#: The keys of a column mapping.
COLUMN_KEYS = ("instruction", "input", "output", "messages")
#: Usual names of each text column, tried (after close spellings) when suggesting a mapping.
COLUMN_SYNONYMS = {
    "instruction": ("instruction", "prompt", "question", "query", "input_text", "user", "request", "problem"),
    "input": ("input", "context", "passage"),
    "output": ("output", "response", "answer", "completion", "target", "chosen", "assistant", "solution"),
    "messages": ("messages", "conversation", "conversations", "chat", "dialog"),
}
#: Bytes of a file read to check its encoding and its JSON (the rest is read by `datasets`, whose errors
#: `load_data` words the same way).
CHECK_BYTES = 64 * 1024 * 1024


class InputError(ValueError):
    """A problem with the data or the arguments given, found before any model loads: one line that names the file,
    the line or row, what was expected, and what to change."""


class MissingInputError(InputError, FileNotFoundError):
    """A data file or folder that does not exist (also a `FileNotFoundError`)."""


@dataclass(frozen=True)
class Caller:
    """How a message names what to change: command-line flags, Python keyword arguments, or the fields of a form.

    Args:
        style (`str`): `"flags"` (``--columns instruction=prompt``), `"keywords"` (``columns={'instruction':
            'prompt'}``) or `"fields"` (the labels in `labels`).
        labels (`dict[str, str]`, *optional*): For `"fields"`: the label of each argument's field, e.g.
            ``{"columns": "Column mapping"}``; an argument without a label keeps its name.

    Example:

    ```python
    >>> CLI.argument("top_quality", 4), PYTHON.argument("top_quality", 4)
    ('`--top_quality 4`', '`top_quality=4`')
    >>> print(CLI.columns({"instruction": "prompt", "output": "response"}))
    `--columns instruction=prompt,output=response`
    >>> print(PYTHON.columns({"instruction": "prompt", "output": "response"}))
    `columns={'instruction': 'prompt', 'output': 'response'}`
    ```
    """

    style: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.style not in ("flags", "keywords", "fields"):
            raise ValueError(f"`style` must be 'flags', 'keywords' or 'fields', got {self.style!r}.")

    def name(self, argument: str) -> str:
        """The argument as the caller writes it: `--token`, `token=`, or its field's label."""
        if self.style == "flags":
            return f"`--{argument}`"
        if self.style == "keywords":
            return f"`{argument}=`"
        return f"the {self.labels.get(argument, argument)} field"

    def argument(self, argument: str, value: Any) -> str:
        """The argument with a value, as the caller writes it."""
        if self.style == "flags":
            return f"`--{argument} {value}`"
        if self.style == "keywords":
            return f"`{argument}={value!r}`"
        return f"{value} in the {self.labels.get(argument, argument)} field"

    def columns(self, mapping: Mapping[str, str | None]) -> str:
        """A column mapping as the caller writes it (an empty name for `None`)."""
        if self.style == "keywords":
            return f"`columns={dict(mapping)!r}`"
        text = ",".join(f"{key}={name or ''}" for key, name in mapping.items())
        return self.argument("columns", text) if self.style == "flags" else f"{text} in the {self._label()} field"

    def _label(self) -> str:
        return self.labels.get("columns", "columns")


#: Messages for the command line and for Python.
CLI, PYTHON = Caller("flags"), Caller("keywords")


def parse_columns(value: str | Mapping[str, str | None] | None) -> dict[str, str | None] | None:
    """A column mapping from its command-line form `'instruction=q,input=,output=a'` (or a dict, returned checked);
    an empty name means no such column.

    Example:

    ```python
    >>> parse_columns("instruction=prompt,input=,output=response")
    {'instruction': 'prompt', 'input': None, 'output': 'response'}
    ```
    """
    if not value:
        return None
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        items = [(k, v) if sep else (k, False) for k, sep, v in (p.partition("=") for p in str(value).split(","))]
    mapping: dict[str, str | None] = {}
    for key, name in items:
        if name is False or str(key).strip() not in COLUMN_KEYS:
            raise ValueError(
                f"`columns` must look like 'instruction=q,input=,output=a' (keys instruction, input, output, "
                f"messages), got {value!r}."
            )
        mapping[str(key).strip()] = (str(name).strip() or None) if name is not None else None
    return mapping


def _suggest(key: str, names: Sequence[str]) -> str | None:
    """The data column most likely meant for `key`: a close spelling of the key or of one of its usual names."""
    lowered = {n.lower(): n for n in names}
    for synonym in COLUMN_SYNONYMS[key]:
        if synonym in lowered:
            return lowered[synonym]
    close = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.75)
    return lowered[close[0]] if close else None


def check_columns(
    column_names: Sequence[str],
    columns: Mapping[str, str | None] | None = None,
    *,
    source: str = "the data",
    caller: Caller = PYTHON,
) -> dict[str, str | None]:
    """Check that a column mapping fits the data, and return how the rows will be read.

    Rows are read as `resolve_columns` reads them: Alpaca-style `instruction`, `input` (optional) and `output`
    columns, renamed by `columns`, or a chat `messages` column.

    Args:
        column_names (`list[str]`): The data's columns.
        columns (`dict`, *optional*): Maps `instruction`, `input`, `output` (or `messages`) to column names.
        source (`str`, *optional*, defaults to `"the data"`): What the message calls the data (its file).
        caller (`Caller`, *optional*, defaults to `PYTHON`): How the message says what to change.

    Returns:
        `dict`: The mapping `resolve_columns` returns.

    Raises:
        InputError: A key is unknown or a mapped column is missing; the message suggests a mapping.

    Example:

    ```python
    >>> check_columns(["prompt", "response"], {"instruction": "prompt", "output": "response"})
    {'instruction': 'prompt', 'input': None, 'output': 'response'}
    >>> check_columns(["prompt", "response"], source="data.csv", caller=CLI)
    Traceback (most recent call last):
    ...
    hf_nuggets.data.checks.InputError: data.csv has no column `instruction` (expected instruction and output, or \
messages); its columns are prompt, response. Map them with `--columns instruction=prompt,output=response`.
    ```
    """
    from .formatting import resolve_columns

    names = list(column_names)
    given = dict(columns or {})
    unknown = sorted(set(given) - set(COLUMN_KEYS))
    if unknown:
        raise InputError(
            f"Unknown key(s) {', '.join(unknown)} in {caller.name('columns')}: the keys are {', '.join(COLUMN_KEYS)}."
        )
    try:
        return resolve_columns(names, given)
    except (KeyError, ValueError):
        pass
    has = ", ".join(names) if names else "none"
    chat = "messages" in given or ("messages" in names and "instruction" not in given and "instruction" not in names)
    keys = ("messages",) if chat else ("instruction", "output")
    wanted = {key: given.get(key, key) for key in keys}
    if not chat and given.get("input") is not None:
        wanted["input"] = given["input"]
    missing = next(key for key, name in wanted.items() if name not in names)
    suggestion = {key: name if name in names else _suggest(key, names) for key, name in wanted.items()}
    if all(suggestion.values()):
        renamed = {key: name for key, name in suggestion.items() if name != key}  # the usual names need no mapping
        hint = (
            f"Map them with {caller.columns(renamed)}."
            if renamed
            else f"They have the usual names: leave out {caller.name('columns')}."
        )
    else:
        placeholders = {key: name or "COLUMN" for key, name in suggestion.items()}
        hint = f"Name them with {caller.columns(placeholders)}" + (
            "." if chat else ", or give a `messages` column of chat turns."
        )
    if missing in given:
        raise InputError(
            f"Column `{wanted[missing]}` (given for `{missing}` in {caller.name('columns')}) is not in {source}; its "
            f"columns are {has}. {hint}"
        )
    expected = "messages" if chat else "instruction and output, or messages"
    raise InputError(f"{source} has no column `{missing}` (expected {expected}); its columns are {has}. {hint}")


# ---------------------------------------------------------------------------------------------------------------------
# Data files


def _line_of(data: bytes, position: int) -> int:
    return data.count(b"\n", 0, position) + 1


def _check_utf8(path: Path, data: bytes) -> None:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=len(data) < CHECK_BYTES)
    except UnicodeDecodeError as err:
        line = _line_of(data, err.start)
        raise InputError(
            f"{path}, line {line}: byte 0x{data[err.start]:02x} is not UTF-8; expected a UTF-8 text file (re-save it "
            "as UTF-8, e.g. `iconv -f latin1 -t utf-8`)."
        ) from None


def _check_json_lines(path: Path, text: str, complete: bool) -> None:
    lines = text.split("\n")
    if not complete:
        lines = lines[:-1]  # the last line read may be cut
    rows = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(
                f"{path}, line {number}: not valid JSON ({err.msg} at column {err.colno}); expected one JSON object "
                "per line."
            ) from None
        if not isinstance(value, dict):
            raise InputError(
                f"{path}, line {number}: a JSON {type(value).__name__}, expected one JSON object per line "
                '(e.g. {"instruction": ..., "output": ...}).'
            )
        rows += 1
    if not rows:
        raise InputError(f"{path} holds no JSON object: expected one row per line.")


def _check_json(path: Path, text: str, complete: bool) -> None:
    start = text.lstrip()
    if not start.startswith("["):
        if complete and start.startswith("{") and "\n" in start.strip():
            try:  # one JSON object over several lines (`datasets` reads it as one row, or a field of it)
                if isinstance(json.loads(text), dict):
                    return
            except json.JSONDecodeError:
                pass  # JSON lines: each line is checked below
        _check_json_lines(path, text, complete)
        return
    if not complete:
        return  # a large JSON list: `datasets` reads it; `load_data` words its errors
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path}, line {err.lineno}: not valid JSON ({err.msg} at column {err.colno}); expected a JSON list of "
            "objects, or one JSON object per line."
        ) from None
    if not value:
        raise InputError(f"{path} is an empty JSON list: expected at least one row.")
    bad = next((i for i, row in enumerate(value) if not isinstance(row, dict)), None)
    if bad is not None:
        raise InputError(f"{path}, row {bad}: a JSON {type(value[bad]).__name__}, expected a JSON object.")


def _check_csv(path: Path, text: str) -> None:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        has_row = any(any(cell.strip() for cell in row) for row in reader)
    except csv.Error as err:
        raise InputError(f"{path}, line {reader.line_num}: not valid CSV ({err}).") from None
    if not header or not any(cell.strip() for cell in header):
        raise InputError(f"{path} has no header row: expected column names on line 1, then one row per line.")
    if not has_row:
        raise InputError(
            f"{path} has a header ({', '.join(header)}) but no data rows: expected at least one row after line 1."
        )


def _check_parquet(path: Path) -> None:
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(str(path)).metadata.num_rows
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a broken file
        raise InputError(f"{path} is not a readable parquet file ({type(err).__name__}: {err}).") from None
    if rows == 0:
        raise InputError(f"{path} holds no rows: expected at least one row.")


def check_data_file(path: str | os.PathLike) -> Path | None:
    """Check a local data file before it is loaded: format, encoding, emptiness, and (for JSON/JSONL and CSV) that
    it parses, naming the line at fault.

    Names that are not a local file (a folder, a Hub dataset id) are left to `load_data`. JSON, JSONL and CSV files
    are checked over their first 64 MiB (`CHECK_BYTES`); `load_data` words an error further on in the same terms.

    Args:
        path (`str`): The data, as given.

    Returns:
        `Path` or `None`: The file checked; `None` for a folder or a Hub id.

    Raises:
        InputError: The file is missing (for a name that looks like a file), of an unknown format, not UTF-8, empty,
            a CSV with a header only, or not valid JSON; one line names the file and the line.
    """
    text_path = os.path.expanduser(str(path))
    file = Path(text_path)
    if file.is_dir():
        return None
    if not file.is_file():
        if text_path.startswith((".", "/", "~")) or file.suffix.lower() in FILE_BUILDERS:
            raise MissingInputError(f"{path} does not exist (no such file or folder).")
        return None
    suffix = file.suffix.lower()
    if suffix not in FILE_BUILDERS:
        raise InputError(
            f"{file} is not a data file hf-nuggets reads: expected {', '.join(sorted(FILE_BUILDERS))} "
            f"(a file name ending with one of them), got {suffix or 'no suffix'!r}."
        )
    if file.stat().st_size == 0:
        raise InputError(f"{file} is empty: expected at least one row.")
    if suffix == ".parquet":
        _check_parquet(file)
        return file
    with open(file, "rb") as handle:
        data = handle.read(CHECK_BYTES)
    complete = len(data) < CHECK_BYTES
    _check_utf8(file, data)
    text = data.decode("utf-8", errors="ignore").lstrip("\ufeff")
    if not text.strip():
        raise InputError(f"{file} holds only blank lines: expected at least one row.")
    if suffix == ".csv":
        _check_csv(file, text)
    else:
        _check_json(file, text, complete)
    return file
