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


class SlowDataset:
    """A stand-in for `datasets.Dataset` whose writes take a while: while the first of its files is being written,
    `during_write` runs (another writer of the same folder, as a second run would be)."""

    def __init__(self, text: str, during_write=None):
        self.text, self.during_write = text, during_write

    def to_parquet(self, path):
        with open(path, "w") as handle:
            handle.write(self.text)
            if self.during_write is not None:
                self.during_write()
                self.during_write = None

    def to_json(self, path, lines=True):
        with open(path, "w") as handle:
            handle.write(self.text)


def test_two_writers_of_the_same_stem_do_not_collide(tmp_path):
    """Two runs writing `scored.*` into one folder at once never share a temporary file: each file ends whole
    (the last rename wins) and no temporary file is left behind."""
    from hf_nuggets.run.outputs import save_dataset_files

    second = SlowDataset("second run")
    first = SlowDataset("first run", during_write=lambda: save_dataset_files(second, tmp_path, "scored"))
    paths = save_dataset_files(first, tmp_path, "scored")
    assert open(paths["parquet"]).read() == "first run" and open(paths["jsonl"]).read() == "first run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.jsonl", "scored.parquet"]


def test_two_stream_writers_of_the_same_stem_do_not_collide(tmp_path):
    """Two stream writers of `scored.*` open at once in one folder (two streaming runs) keep their rows apart."""
    import pyarrow.parquet as pq

    from hf_nuggets.run.sharded import _StreamWriter

    first, second = _StreamWriter(tmp_path, "scored"), _StreamWriter(tmp_path, "scored")
    first.write({"golden_score": [0.5, 1.0]})
    second.write({"golden_score": [0.25]})
    paths = first.close()
    assert pq.read_table(paths["parquet"]).to_pylist() == [{"golden_score": 0.5}, {"golden_score": 1.0}]
    paths = second.close()
    assert pq.read_table(paths["parquet"]).to_pylist() == [{"golden_score": 0.25}]
    assert open(paths["jsonl"]).read() == '{"golden_score": 0.25}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.jsonl", "scored.parquet"]


def test_atomic_path_gives_each_writer_its_own_temporary_file(tmp_path):
    """`atomic_path` yields a fresh temporary path beside the target each time; the block's end renames it over the
    target, and an error (or Ctrl-C) removes it and leaves the old target."""
    from hf_nuggets.utils.files import atomic_path

    target = tmp_path / "out.txt"
    with atomic_path(target) as one, atomic_path(target) as two:
        assert one != two and one.parent == two.parent == tmp_path
        one.write_text("one")
        two.write_text("two")
    assert target.read_text() == "one"  # the outer block ends last
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "one" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
