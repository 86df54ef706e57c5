"""Sharded, resumable, multi-process prospecting: checkpoints under ``<out>/checkpoint/`` and their reassembly.

The candidates are cut into shards of `shard_size` consecutive rows. Shard `k` belongs to process `k % world_size`
(ranks and world size come from the environment that `accelerate launch` or `torchrun` sets, or from
`hf-nuggets score --num_processes N`). Each finished shard is written atomically (temporary file, fsync, rename) as
``shard-00000.npz`` holding its scores, a hash of its input rows, the run fingerprint and a checksum, and a line is
appended to ``scored.log``. Killed at any point and started again with the same settings, a run loads the finished
shards and scores only the others, so the result equals an uninterrupted run. The zero-shot scores are computed
once, by rank 0, and shared through ``zero_shot.npy``.

Process 0 waits for every shard, then writes `scored.*`, `summary.json` and (with `top_percent`) `selected.*` the
way `prospect` does. A peer that dies is noticed by a stall timeout: no new shard for `timeout` seconds raises a
`TimeoutError` naming the missing shards; what was scored stays in the checkpoint for the next run.

Streaming input (`datasets.IterableDataset`) is read shard by shard, and the outputs are written shard by shard,
so memory is bounded by a shard, not the dataset. Its top-n% selection is exact: the threshold is found by passes
over the (small) score files of the checkpoint, and the selected rows are written in dataset order.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..data.formatting import Example
from ..selection import n_selected
from ..utils.files import atomic_write_bytes

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: shards carry the alignment, completeness and gate flags
CHECKPOINT_DIR = "checkpoint"
TASKS_COLUMN = "nuggets_tasks_evaluated"


class CorruptShardError(ValueError):
    """A shard file that cannot be read back, or whose checksum or fingerprint does not match."""


def dist_info() -> tuple[int, int, int]:
    """`(rank, world_size, local_rank)` from the environment set by `accelerate launch`/`torchrun`; `(0, 1, 0)`.

    RANK and WORLD_SIZE count the processes of all machines; LOCAL_RANK is the index on this machine (it picks the
    GPU), RANK when unset. Under `accelerate launch --num_machines 2 --num_processes 4` (torchrun underneath),
    machine 0 runs RANK 0 and 1, machine 1 runs RANK 2 and 3, each machine with LOCAL_RANK 0 and 1 (torchrun also sets
    LOCAL_WORLD_SIZE=2, GROUP_RANK = the machine, GROUP_WORLD_SIZE=2, MASTER_ADDR and MASTER_PORT; no NODE_RANK).
    """
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", rank))
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"`RANK`={rank} and `WORLD_SIZE`={world} in the environment are inconsistent.")
    return rank, world, local


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def weights_digest(model: Any) -> str:
    """A cheap digest of a model's weights: names, shapes and the first and last 256 values of every tensor."""
    h = hashlib.sha256()
    for name, param in model.state_dict().items():
        flat = param.detach().reshape(-1)
        h.update(f"{name}{tuple(param.shape)}{param.dtype}".encode())
        for part in (flat[:256], flat[-256:]):
            h.update(part.float().cpu().numpy().tobytes())
    return h.hexdigest()


def run_fingerprint(scorer: Any, *, shard_size: int, rows: int | None, extra: dict | None = None) -> dict[str, Any]:
    """The settings a checkpoint belongs to: model, task set, template, limits, columns and sharding.

    Args:
        scorer (`GoldenScorer`): The scorer.
        shard_size (`int`): Rows per shard.
        rows (`int`, *optional*): Number of rows to score, when known (not for a stream).
        extra (`dict`, *optional*): More settings that change the scores (dedup, early stopping).

    Returns:
        `dict`: JSON-serialisable settings; two runs may share a checkpoint only when these are equal.
    """
    prospector = scorer.loaded_prospector
    source = dict(prospector.source or {})
    source.pop("device", None)  # scores agree across devices to fp tolerance; the device may change on resume
    source.pop("dtype_reason", None)  # how the dtype was chosen does not change the scores; `model_dtype` is kept
    tasks = json.dumps([[t.instruction, t.input, t.output] for t in scorer.tasks], ensure_ascii=False)
    limits = scorer.limits
    return {
        "format": FORMAT_VERSION,
        "model": prospector.name,
        "model_source": source,
        "model_dtype": str(next(prospector.model.parameters()).dtype),
        "weights": weights_digest(prospector.model),
        "tasks_sha256": _sha(tasks.encode()),
        "num_tasks": len(scorer.tasks),
        "template": scorer.template,
        "limits": [limits.max_demo_tokens, limits.max_prompt_tokens, limits.max_answer_tokens],
        "columns": scorer.columns,
        "return_scores": scorer.return_scores,
        "gate_settings": [
            scorer.gate_settings.alignment_threshold,
            scorer.gate_settings.completeness_threshold,
            list(scorer.gate_settings.placeholders),
        ],
        "shard_size": shard_size,
        "rows": rows,
        **(extra or {}),
    }


def rows_digest(examples: list[Example]) -> str:
    """Hash of the candidates of a shard, so a resumed run notices changed data."""
    return _sha(json.dumps([[e.instruction, e.input, e.output] for e in examples], ensure_ascii=False).encode())


class Checkpoint:
    """The checkpoint folder of a run: manifest, zero-shot scores, shard files and the log of scored shards.

    Args:
        folder (`str` or `os.PathLike`): The checkpoint folder (created if missing).
        fingerprint (`dict`): See `run_fingerprint`.
        resume (`bool`, *optional*, defaults to `True`): Continue from a checkpoint of the same settings. With
            `False` an existing checkpoint is refused rather than overwritten.

    Raises:
        PermissionError: The folder is not writable.
        ValueError: The folder holds the checkpoint of a run with other settings.
        FileExistsError: A checkpoint exists and `resume` is `False`.
    """

    def __init__(self, folder: str | os.PathLike, fingerprint: dict[str, Any], *, resume: bool = True):
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.key = _sha(json.dumps(fingerprint, sort_keys=True).encode())
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / f".write-test-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise PermissionError(f"Checkpoint folder {str(self.folder)!r} is not writable: {err}.") from err
        manifest = self.folder / "manifest.json"
        if manifest.is_file():
            try:
                old = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                raise ValueError(f"The checkpoint manifest {str(manifest)!r} is unreadable ({err}).") from err
            if old != fingerprint:
                changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
                raise ValueError(
                    f"{str(self.folder)!r} holds the checkpoint of another run (changed: {', '.join(changed)}); "
                    "refusing to mix scores. Use another output folder, or delete that checkpoint to start over."
                )
            if not resume:
                raise FileExistsError(
                    f"{str(self.folder)!r} already holds a checkpoint and `resume` is off; delete it or resume."
                )
        else:
            atomic_write_bytes(
                manifest, (json.dumps(fingerprint, indent=2, sort_keys=True) + "\n").encode(), durable=True
            )

    # -- zero-shot scores -----------------------------------------------------------------------------------------
    def zero_shot(self, compute: Callable[[], np.ndarray] | None, *, timeout: float) -> np.ndarray:
        """Read the shared zero-shot scores; `compute` (rank 0 only) makes and writes them if missing."""
        path = self.folder / "zero_shot.npy"
        waited = time.monotonic()
        while True:
            if path.is_file():
                try:
                    return np.load(path, allow_pickle=False)
                except (OSError, ValueError) as err:
                    if compute is None:
                        raise CorruptShardError(f"{str(path)!r} is unreadable ({err}).") from err
                    logger.warning("Recomputing the unreadable zero-shot scores %s (%s).", path, err)
            if compute is not None:
                values = np.asarray(compute(), dtype=np.float64)
                buffer = io.BytesIO()
                np.save(buffer, values, allow_pickle=False)
                atomic_write_bytes(path, buffer.getvalue(), durable=True)
                return values
            if time.monotonic() - waited > timeout:
                raise TimeoutError(
                    f"Process 0 did not write the zero-shot scores ({str(path)!r}) within {timeout:.0f} s; "
                    "it may have died. Run the same command again to resume."
                )
            time.sleep(0.1)

    # -- shards ---------------------------------------------------------------------------------------------------
    def shard_path(self, k: int) -> Path:
        return self.folder / f"shard-{k:06d}.npz"

    def write_shard(self, k: int, start: int, digest: str, arrays: dict[str, np.ndarray]) -> None:
        """Write shard `k` atomically and log it as scored."""
        payload = {name: np.asarray(value) for name, value in arrays.items()}
        check = hashlib.sha256()
        for name in sorted(payload):
            check.update(name.encode() + payload[name].tobytes())
        meta = {"shard": k, "start": start, "rows": digest, "key": self.key, "checksum": check.hexdigest()}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps(meta)), **payload)
        atomic_write_bytes(self.shard_path(k), buffer.getvalue(), durable=True)
        line = json.dumps({"shard": k, "pid": os.getpid(), "time": round(time.time(), 3)}) + "\n"
        fd = os.open(self.folder / "scored.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def read_shard(self, k: int, digest: str | None = None) -> dict[str, np.ndarray] | None:
        """Shard `k`'s arrays, or `None` when it is not written yet.

        Raises:
            CorruptShardError: The file is unreadable or its checksum, run key or row hash does not match.
        """
        path = self.shard_path(k)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            meta = json.loads(str(arrays.pop("meta")))
        except Exception as err:  # noqa: BLE001 - any decoding failure means a corrupt file
            raise CorruptShardError(f"Shard file {str(path)!r} is corrupt ({type(err).__name__}: {err}).") from err
        check = hashlib.sha256()
        for name in sorted(arrays):
            check.update(name.encode() + arrays[name].tobytes())
        if meta.get("checksum") != check.hexdigest() or meta.get("shard") != k:
            raise CorruptShardError(f"Shard file {str(path)!r} is corrupt (checksum mismatch).")
        if meta.get("key") != self.key:
            raise CorruptShardError(f"Shard file {str(path)!r} belongs to another run.")
        if digest is not None and meta.get("rows") != digest:
            raise ValueError(
                f"The data changed since shard {k} was scored (rows {meta.get('start')}...): refusing to mix scores. "
                "Use another output folder, or delete the checkpoint to start over."
            )
        return arrays

    def quarantine(self, k: int, err: Exception) -> None:
        """Move a corrupt shard aside (kept as ``*.corrupt``) so that it is scored again."""
        path = self.shard_path(k)
        logger.warning("%s Moved it to %s.corrupt; the shard will be scored again.", err, path.name)
        os.replace(path, path.with_name(path.name + ".corrupt"))


def read_log(folder: str | os.PathLike, since: float | None = None) -> list[int]:
    """Shard ids in the order they were logged as scored in a checkpoint folder (torn lines are skipped).

    Args:
        folder (`str`): The checkpoint folder.
        since (`float`, *optional*): Only entries logged at or after this Unix time.

    Returns:
        `list[int]`: Shard ids; an id appearing twice means the shard was scored twice.
    """
    path = Path(folder) / "scored.log"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            if since is None or entry["time"] >= since:
                out.append(int(entry["shard"]))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def iter_shards(dataset: Any, shard_size: int, limit: int | None = None) -> Iterator[tuple[int, int, Any]]:
    """Yield `(k, start, batch)` for consecutive shards; `batch` is a callable returning the rows (a dict of lists).

    A map-style `datasets.Dataset` is sliced only when the rows are asked for; a stream is read batch by batch.
    """
    if hasattr(dataset, "__len__") and hasattr(dataset, "select"):
        total = len(dataset) if limit is None else min(limit, len(dataset))
        for k, start in enumerate(range(0, total, shard_size)):
            stop = min(start + shard_size, total)
            yield k, start, (lambda a=start, b=stop: dataset[a:b])
        return
    start = 0
    for k, batch in enumerate(dataset.iter(batch_size=shard_size)):
        if limit is not None and start >= limit:
            return
        if limit is not None and start + shard_size > limit:
            batch = {name: values[: limit - start] for name, values in batch.items()}
        yield k, start, (lambda b=batch: b)
        start += len(next(iter(batch.values())))


def wait_for_shards(
    checkpoint: Checkpoint, n_shards: int, *, timeout: float, world_size: int, poll: float = 0.2
) -> None:
    """Block until all shard files exist; raise `TimeoutError` after `timeout` seconds without a new one."""
    last_count, last_change = -1, time.monotonic()
    while True:
        missing = [k for k in range(n_shards) if not checkpoint.shard_path(k).is_file()]
        if not missing:
            return
        if len(missing) != last_count:
            last_count, last_change = len(missing), time.monotonic()
        elif time.monotonic() - last_change > timeout:
            ranks = sorted({k % world_size for k in missing})
            raise TimeoutError(
                f"No shard finished for {timeout:.0f} s; {len(missing)} shard(s) missing (first: {missing[:5]}), "
                f"owned by process(es) {ranks}, which may have died. The {n_shards - len(missing)} finished shards "
                f"are kept in {str(checkpoint.folder)!r}: run the same command again to resume."
            )
        time.sleep(poll)


def exact_quantiles(counts: Counter) -> dict[str, float]:
    """`score_quantiles` computed exactly from value counts (golden scores take few distinct values)."""
    from ..summary import QUANTILES

    if not counts:
        return {}
    values = np.array(sorted(counts), dtype=np.float64)
    cum = np.cumsum([counts[v] for v in sorted(counts)])
    n = int(cum[-1])

    def nth(i: int) -> float:
        return float(values[np.searchsorted(cum, i + 1)])

    out = {}
    for q in QUANTILES:
        pos = q * (n - 1)
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        a, b = nth(lo), nth(hi)
        out[f"q{round(q * 100)}"] = float(a + (b - a) * (pos - lo))
    out["mean"] = float(sum(v * c for v, c in counts.items()) / n)
    return out


def order_key(x: np.ndarray) -> np.ndarray:
    """Map float64 values to int64 keys with the same order (for exact bisection)."""
    bits = (np.asarray(x, dtype=np.float64) + 0.0).view(np.int64)  # + 0.0 turns -0.0 into 0.0
    return np.where(bits < 0, np.int64(-(2**63)) - bits - 1, bits)


def stream_threshold(
    read: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]],
    n_rows: int,
    percent: float,
    *,
    max_in_memory: int = 1_000_000,
    n_keep: int | None = None,
):
    """The exact top-`percent`% cut over a stream of `(golden, gain)` chunks, by repeated passes.

    Rows rank by golden score, then gain, then row order (as `select_top`). Pass 1 counts golden values; if the
    cut falls inside a block of equal golden scores, the gains of that block are sorted in memory when there are
    at most `max_in_memory` of them (one more pass), else bisection over the gains' bit patterns finds the cut
    in at most 64 more passes. Memory: the value counts, one chunk, and at most `max_in_memory` gains.

    With gates, `read` yields the ungated rows only, and `n_keep` caps the count (the top is `n_selected` of all
    `n_rows`, but never more than the ungated rows).

    Returns:
        `tuple[float, int, int, int]`: `(golden, gain_key, ties_taken, k)`: a row is selected when its golden is
        above `golden`, or equal with a gain key above `gain_key`, or equal in both and among the first
        `ties_taken` such rows; `k` rows in all.
    """
    k = n_selected(n_rows, percent) if n_keep is None else min(n_selected(n_rows, percent), n_keep)
    counts: Counter = Counter()
    for golden, _ in read():
        counts.update(golden.tolist())
    if k == 0:
        return math.inf, -(2**63), 0, 0
    above = 0
    for value in sorted(counts, reverse=True):
        if above + counts[value] >= k:
            g_star, need = value, k - above
            break
        above += counts[value]
    if counts[g_star] == need:  # the cut falls between two golden values: no gain needed
        return g_star, -(2**63), 0, k
    lo, hi = -(2**63), 2**63 - 1  # find the largest key t with #(gain key >= t) >= need
    if counts[g_star] <= max_in_memory:  # the tied block fits: one more pass, sorted in memory
        keys = np.sort(np.concatenate([order_key(gain[golden == g_star]) for golden, gain in read()]))
        lo = hi = int(keys[len(keys) - need])
    while lo < hi:
        mid = lo + (hi - lo + 1) // 2
        count = sum(int((order_key(gain[golden == g_star]) >= mid).sum()) for golden, gain in read())
        if count >= need:
            lo = mid
        else:
            hi = mid - 1
    strictly = sum(int((order_key(gain[golden == g_star]) > lo).sum()) for golden, gain in read())
    return g_star, lo, need - strictly, k
