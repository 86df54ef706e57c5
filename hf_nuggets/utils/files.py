"""Writing files so that a crash or Ctrl-C never leaves one half-written, and checking an output folder."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _create_temporary(path: Path, mode: int) -> tuple[int, Path]:
    """Create `.{name}.<random>.tmp` beside `path` exclusively, with `mode` less the umask; its descriptor and path."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"No unused temporary name for {str(path)!r} after 100 tries.")


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = False, mode: int = 0o666) -> Path:
    """Write `data` to `path` through a unique temporary file in the same folder, renamed over `path` at the end.

    Readers see the old file or the new one, never a mix; two writers never share a temporary name. The file gets
    the permissions `open()` would give it (`mode` less the process umask), not the owner-only ones of
    `tempfile.mkstemp`.

    Args:
        path (`str` or `os.PathLike`): The file to write; its folder is created if missing.
        data (`bytes`): The content.
        durable (`bool`, *optional*, defaults to `False`): `fsync` the file before the rename (checkpoints, caches
            that must survive a power cut).
        mode (`int`, *optional*, defaults to `0o666`): Permission bits of the new file before the umask applies, as
            for `os.open` (`0o600` keeps it to its owner).

    Returns:
        `pathlib.Path`: The file written.

    Example:

    ```python
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> atomic_write_bytes(f"{folder}/a.bin", b"abc").read_bytes()
    b'abc'
    ```
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = False, mode: int = 0o666) -> Path:
    """`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable, mode=mode)


def atomic_write_json(
    path: str | os.PathLike, obj: Any, *, indent: int | None = 2, durable: bool = False, mode: int = 0o666
) -> Path:
    """`atomic_write_text` of `obj` as JSON (UTF-8, not ASCII-escaped, with a final newline)."""
    return atomic_write_text(
        path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n", durable=durable, mode=mode
    )


def check_writable(folder: str | os.PathLike, name: str = "out_dir") -> Path:
    """Create `folder` if needed and check that files can be written in it, before any long work starts.

    Raises:
        PermissionError: The folder cannot be created or written; the message names the argument `name`.
    """
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(f"Output folder `{name}`={str(out)!r} is not writable: {err}.") from err
    return out
