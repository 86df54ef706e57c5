"""Input checks that run before any model loads: the data file and the column mapping, in one-line messages.

Every entry point (the command line, the Python API, the Space) calls the same checks; only the way a message says
what to change differs: command-line flags, Python keyword arguments, or the fields of a form (see `Caller`).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
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
#: The first bytes of the compressed files and archives given by mistake, refused rather than decompressed.
ARCHIVES = {b"\x1f\x8b": "gzip file", b"PK\x03\x04": "zip archive", b"(\xb5/\xfd": "zstd file"}


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


def check_file(path: str | os.PathLike, *, source: str | None = None) -> Path:
    """Check what a data file is before it is read: a format hf-nuggets reads, not empty, not compressed.

    Args:
        path (`str`): An existing file.
        source (`str`, *optional*): What messages call the file (the Space gives its name only); defaults to `path`.

    Returns:
        `Path`: The file.

    Raises:
        InputError: The file's suffix is not one of `FILE_BUILDERS`, the file is empty, or it is a gzip, zip or zstd
            file (which is refused rather than decompressed).
    """
    file = Path(path)
    source = source or str(file)
    suffix = file.suffix.lower()
    if suffix not in FILE_BUILDERS:
        raise InputError(
            f"{source} is not a data file hf-nuggets reads: expected {', '.join(sorted(FILE_BUILDERS))} "
            f"(a file name ending with one of them), got {suffix or 'no suffix'!r}."
        )
    if file.stat().st_size == 0:
        raise InputError(f"{source} is empty: expected at least one row.")
    with open(file, "rb") as handle:
        head = handle.read(4)
    packed = next((name for magic, name in ARCHIVES.items() if head.startswith(magic)), None)
    if packed:
        raise InputError(f"{source} is a {packed}: expected a plain {suffix} file; unpack it first.")
    return file


def _not_utf8(source: str, line: int, byte: int, caller: Caller) -> InputError:
    fix = "upload it again" if caller.style == "fields" else "e.g. `iconv -f latin1 -t utf-8`"
    return InputError(
        f"{source}, line {line}: byte 0x{byte:02x} is not UTF-8; expected a UTF-8 text file (re-save it as UTF-8, "
        f"{fix})."
    )


def decode_line(raw: bytes, number: int, *, source: str, caller: Caller = CLI) -> str:
    """A line of a text file as text, without the byte-order mark that Excel and Notepad put before the first line.

    Args:
        raw (`bytes`): The line as read.
        number (`int`): Its number, from 1.
        source (`str`): What the message calls the file.
        caller (`Caller`, *optional*, defaults to `CLI`): How the message says what to do.

    Raises:
        InputError: The line is not UTF-8; the message names the first byte that is not.

    Example:

    ```python
    >>> decode_line(b"caf\\xc3\\xa9\\n", 2, source="data.csv")
    'café\\n'
    >>> decode_line(b"caf\\xe9\\n", 2, source="data.csv")
    Traceback (most recent call last):
    ...
    hf_nuggets.data.checks.InputError: data.csv, line 2: byte 0xe9 is not UTF-8; expected a UTF-8 text file (re-save \
it as UTF-8, e.g. `iconv -f latin1 -t utf-8`).
    ```
    """
    if number == 1:
        raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _not_utf8(source, number, raw[err.start], caller) from None


def text_lines(
    path: str | os.PathLike, *, source: str, caller: Caller = CLI, max_bytes: int | None = None
) -> Iterator[tuple[int, str]]:
    """The lines of a text file with their numbers, each checked by `decode_line`, read one at a time.

    Args:
        path (`str`): The file.
        source (`str`): What messages call the file.
        caller (`Caller`, *optional*, defaults to `CLI`): How messages say what to do.
        max_bytes (`int`, *optional*): Stop after this many bytes (a longer line is cut there); no limit by default.
    """
    read = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(iter(lambda: handle.readline(max_bytes or -1), b""), start=1):
            read += len(raw)
            if max_bytes is not None and read > max_bytes:
                return
            yield number, decode_line(raw, number, source=source, caller=caller)


def json_kind(value: Any) -> str | None:
    """The JSON type of a value in plain words (`None` for null, which fits a field of any type)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "object"}[type(value)]


def _record(value: Any, source: str, line: int, kinds: dict[str, str], expected: str) -> dict:
    """`value` if it is a JSON object whose fields hold the types of the records before it."""
    if not isinstance(value, dict):
        raise InputError(f"{source}, line {line}: a JSON {json_kind(value) or 'null'}, expected {expected}.")
    for key, item in value.items():
        kind = json_kind(item)
        if kind is not None and kinds.setdefault(key, kind) != kind:
            raise InputError(
                f"{source}, line {line}: a {kind} in `{key}`, where the records before it have a {kinds[key]}; "
                "expected one type per field."
            )
    return value


def json_records(
    path: str | os.PathLike, *, source: str, caller: Caller = CLI, max_bytes: int | None = None
) -> Iterator[tuple[int, dict]]:
    """The records of a JSON list or JSON Lines file, each with the line it starts on, checked as they are read.

    JSON Lines are read a line at a time; a JSON list is read whole (or, over `max_bytes`, not at all: `datasets`
    reads it and `load_data` words its errors). Once every record is read, a file without any, or whose records
    have no fields, is refused.

    Args:
        path (`str`): The file.
        source (`str`): What messages call the file.
        caller (`Caller`, *optional*, defaults to `CLI`): How messages say what to do.
        max_bytes (`int`, *optional*): Bytes read at most; no limit by default.

    Raises:
        InputError: On the first line that is not UTF-8, not valid JSON, not a JSON object (`null`, a list...), or
            whose field holds another type than the records before it (a number where they hold strings).
    """
    with open(path, "rb") as handle:
        head = handle.read(4096).removeprefix(codecs.BOM_UTF8).lstrip()
    kinds: dict[str, str] = {}
    records = 0
    if not head.startswith(b"["):
        blank = True
        for number, line in text_lines(path, source=source, caller=caller, max_bytes=max_bytes):
            if not line.strip():
                continue
            blank = False
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(
                    f"{source}, line {number}: not valid JSON ({err.msg} at column {err.colno}); expected one JSON "
                    "object per line."
                ) from None
            records += 1
            yield number, _record(value, source, number, kinds, 'one JSON object per line (e.g. {"instruction": ...})')
        if blank:
            raise InputError(f"{source} holds only blank lines: expected at least one row.")
    else:
        if max_bytes is not None and os.path.getsize(path) > max_bytes:
            return
        raw = Path(path).read_bytes().removeprefix(codecs.BOM_UTF8)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _not_utf8(source, raw.count(b"\n", 0, err.start) + 1, raw[err.start], caller) from None
        decoder, at = json.JSONDecoder(), text.index("[") + 1
        while True:
            while at < len(text) and text[at] in " \t\r\n,":
                at += 1
            if at >= len(text) or text[at] == "]":
                break
            line = text.count("\n", 0, at) + 1
            try:
                value, at = decoder.raw_decode(text, at)
            except json.JSONDecodeError as err:
                raise InputError(
                    f"{source}, line {err.lineno}: not valid JSON ({err.msg} at column {err.colno}); expected a JSON "
                    "list of objects, or one JSON object per line."
                ) from None
            records += 1
            yield line, _record(value, source, line, kinds, "a JSON object")
        if not records:
            raise InputError(f"{source} is an empty JSON list: expected at least one row.")
    if records and not kinds:
        raise InputError(f"{source} has no fields: its records are empty; expected named fields in each record.")


def csv_records(
    path: str | os.PathLike, *, source: str, caller: Caller = CLI, max_bytes: int | None = None
) -> Iterator[list[str]]:
    """The header of a CSV file, then its rows (not its empty lines), checked as they are read.

    Args:
        path (`str`): The file.
        source (`str`): What messages call the file.
        caller (`Caller`, *optional*, defaults to `CLI`): How messages say what to do.
        max_bytes (`int`, *optional*): Bytes read at most; no limit by default.

    Raises:
        InputError: A line is not UTF-8 or not valid CSV, line 1 holds no column names, or no row with a value
            follows it.
    """
    reader = csv.reader(line for _, line in text_lines(path, source=source, caller=caller, max_bytes=max_bytes))
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise InputError(f"{source} has no header row: expected column names on line 1, then one row per line.")
        yield header
        rows = 0
        for row in reader:
            if row:  # an empty line is no row (pandas skips it); a row of empty cells is one
                rows += any(cell.strip() for cell in row)
                yield row
    except csv.Error as err:
        raise InputError(f"{source}, line {reader.line_num}: not valid CSV ({err}).") from None
    if not rows:
        raise InputError(
            f"{source} has a header ({', '.join(header)}) but no data rows: expected at least one row after line 1."
        )


def _check_parquet(path: Path) -> None:
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(str(path)).metadata.num_rows
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a broken file
        raise InputError(f"{path} is not a readable parquet file ({type(err).__name__}: {err}).") from None
    if rows == 0:
        raise InputError(f"{path} holds no rows: expected at least one row.")


def _one_object(file: Path) -> bool:
    """Whether a JSON file is one object written over several lines (`datasets` reads it as one row, or a field)."""
    if file.stat().st_size >= CHECK_BYTES:
        return False
    text = file.read_bytes().decode("utf-8", errors="ignore").lstrip("\ufeff").strip()
    if not text.startswith("{") or "\n" not in text:
        return False
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False


def check_data_file(path: str | os.PathLike) -> Path | None:
    """Check a local data file before it is loaded: format, encoding, emptiness, and (for JSON/JSONL and CSV) that
    it parses, naming the line at fault.

    Names that are not a local file (a folder, a Hub dataset id) are left to `load_data`. JSON, JSONL and CSV files
    are checked over their first 64 MiB (`CHECK_BYTES`) by `json_records` and `csv_records`, which the Space reads
    uploads with; `load_data` words an error further on in the same terms.

    Args:
        path (`str`): The data, as given.

    Returns:
        `Path` or `None`: The file checked; `None` for a folder or a Hub id.

    Raises:
        InputError: The file is missing (for a name that looks like a file), of an unknown format, compressed, empty,
            not UTF-8, a CSV with a header only, not valid JSON, a JSON record that is not an object or whose field
            changes type, or records without fields; one line names the file and the line.
    """
    text_path = os.path.expanduser(str(path))
    file = Path(text_path)
    if file.is_dir():
        return None
    if not file.is_file():
        if text_path.startswith((".", "/", "~")) or file.suffix.lower() in FILE_BUILDERS:
            raise MissingInputError(f"{path} does not exist (no such file or folder).")
        return None
    check_file(file)
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        _check_parquet(file)
    elif suffix == ".csv":
        for _ in csv_records(file, source=str(file), max_bytes=CHECK_BYTES):
            pass
    elif not _one_object(file):
        for _ in json_records(file, source=str(file), max_bytes=CHECK_BYTES):
            pass
    return file
