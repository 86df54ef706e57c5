"""Writing files so that a crash or Ctrl-C never leaves one half-written, and checking and locking an output folder."""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: The file that marks an output folder as in use by a run (see `folder_lock`).
LOCK_FILE = ".hf-nuggets.lock"


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


def temporary_path(path: str | os.PathLike, *, mode: int = 0o666) -> Path:
    """A new empty file beside `path`, named `.{name}.<random>.tmp` and created exclusively: no other writer gets it.

    Write the content there, then `os.replace` it over `path` (or use `atomic_path`, which does both).

    Example:

    ```python
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> temporary_path(folder / "a.txt") != temporary_path(folder / "a.txt")
    True
    ```
    """
    path = Path(path)
    fd, tmp = _create_temporary(path, mode)
    os.close(fd)
    return tmp


@contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int = 0o666) -> Iterator[Path]:
    """A unique temporary path beside `path` to write to; renamed over `path` when the block ends.

    For writers that want a file name rather than bytes (`Dataset.to_parquet`, `pyarrow` writers). Two writers of
    the same `path` never share the temporary file; the last to finish wins. When the block raises (Ctrl-C included)
    the temporary file is removed and `path` is left as it was.

    Args:
        path (`str` or `os.PathLike`): The file to write; its folder is created if missing.
        mode (`int`, *optional*, defaults to `0o666`): Permission bits of the new file before the umask applies.

    Example:

    ```python
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("abc")
    >>> target.read_text()
    'abc'
    ```
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path, mode=mode)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


class FolderLockedError(RuntimeError):
    """Another live run holds the output folder (its lock file names the process and the host)."""


def _process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine; `True` when it cannot be told (so a lock is never stolen)."""
    if os.name != "posix":
        return True  # `os.kill(pid, 0)` is no probe on Windows: it would signal the process
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, under another user
    return True


def _read_lock(lock: Path) -> dict[str, Any] | None:
    """The record of a lock file; `None` when it is gone; `{}` when it cannot be read (being written, or damaged)."""
    try:
        text = lock.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return record if isinstance(record, dict) else {}


def _is_stale(record: dict[str, Any]) -> bool:
    """A lock is stale when it was taken on this host by a process that has ended."""
    pid = record.get("pid")
    if record.get("host") != socket.gethostname() or isinstance(pid, bool) or not isinstance(pid, int):
        return False
    return not _process_alive(pid)


def _take_over(lock: Path, stale: dict[str, Any]) -> None:
    """Remove the stale lock `stale`, unless another run replaced it in the meantime.

    The lock is first moved aside, so that of two runs taking over the same stale lock only one removes it; the
    other finds either no lock or the winner's live one, which it puts back.
    """
    aside = temporary_path(lock.with_name(lock.name + ".stale"))
    try:
        os.replace(lock, aside)
    except FileNotFoundError:
        aside.unlink(missing_ok=True)
        return
    if _read_lock(aside) != stale:
        try:
            os.link(aside, lock)
        except OSError:
            pass  # a third run took the folder meanwhile; the one moved aside finds its lock gone when it ends
    aside.unlink(missing_ok=True)


def _acquire(lock: Path, name: str, record: dict[str, Any]) -> None:
    """Create `lock` holding `record`, taking over a stale lock; raise `FolderLockedError` if a live run holds it."""
    unreadable_since = None
    for _ in range(1000):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            held = _read_lock(lock)
            if held is None:
                continue  # freed just now
            if not held:  # being written by its holder: wait a little before calling it unreadable
                unreadable_since = unreadable_since or time.monotonic()
                if time.monotonic() - unreadable_since < 2.0:
                    time.sleep(0.05)
                    continue
            if held and _is_stale(held):
                logger.warning(
                    "Taking over the lock of %s, left by process %s that ended on this host.", lock.parent, held["pid"]
                )
                _take_over(lock, held)
                continue
            holder = (
                f"process {held.get('pid')} on host {held.get('host')}, since {held.get('started')}"
                if held
                else "a run whose lock file cannot be read"
            )
            raise FolderLockedError(
                f"`{name}`={str(lock.parent)!r} is in use by another hf-nuggets run ({holder}); wait for it to end "
                f"or write elsewhere. If no run is using it, delete {str(lock)!r}."
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        return
    raise FolderLockedError(f"`{name}`={str(lock.parent)!r}: could not take its lock {str(lock)!r}.")


@contextmanager
def folder_lock(folder: str | os.PathLike, name: str = "out_dir") -> Iterator[Path]:
    """Hold an output folder for one run: refuse a folder another live run holds, free it at the end.

    The lock is the file `LOCK_FILE` in `folder`, created exclusively (`O_EXCL`) and holding the process id, the host
    and the start time. A lock taken on this host by a process that has ended (killed, crashed) is stale and taken
    over; a lock from another host is honoured, since its process cannot be checked from here. The lock is removed
    when the block ends, however it ends (error and Ctrl-C included), if it is still this run's.

    Args:
        folder (`str` or `os.PathLike`): The output folder (it must exist).
        name (`str`, *optional*, defaults to `"out_dir"`): The argument the folder came from, for the error message.

    Raises:
        FolderLockedError: Another live run holds the folder; the message names the folder, the process and its host.

    Example:

    ```python
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with folder_lock(folder):
    ...     try:
    ...         with folder_lock(folder):
    ...             pass
    ...     except FolderLockedError as err:
    ...         print("refused:", "in use by another hf-nuggets run" in str(err))
    refused: True
    ```
    """
    lock = Path(folder) / LOCK_FILE
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "token": os.urandom(8).hex(),
    }
    _acquire(lock, name, record)
    try:
        yield lock
    finally:
        if _read_lock(lock) == record:
            lock.unlink(missing_ok=True)
