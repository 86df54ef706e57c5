"""Atomic writes (`hf_nuggets.utils.files`): content, permissions, and no temporary file left behind."""

from __future__ import annotations

import json
import os
import stat

import pytest

from hf_nuggets.utils.files import atomic_write_bytes, atomic_write_json, atomic_write_text


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_json_content_and_replace(tmp_path):
    path = tmp_path / "sub" / "out.json"
    atomic_write_json(path, {"a": "é"})
    atomic_write_json(path, [1, 2])
    assert path.read_text(encoding="utf-8") == json.dumps([1, 2], indent=2) + "\n"
    atomic_write_json(path, {"a": "é"}, indent=None)
    assert path.read_bytes() == '{"a": "é"}\n'.encode()
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_mode_is_what_open_gives(tmp_path):
    """Like `open()`: 0o666 less the umask (not mkstemp's owner-only 0o600), unless a mode is asked for."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = atomic_write_text(tmp_path / "atomic.txt", "x")
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~_umask()
    private = atomic_write_bytes(tmp_path / "private.bin", b"x", durable=True, mode=0o600)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 & ~_umask()


def test_failed_write_leaves_old_file(tmp_path):
    path = atomic_write_text(tmp_path / "keep.txt", "old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
