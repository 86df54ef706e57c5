"""Scaled-out prospecting: `prospect_sharded` (resumable, multi-process, streaming) and a local process launcher."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ..data.checks import check_columns
from ..data.formatting import examples_from_batch, resolve_columns
from ..gates import ALIGNMENT_COLUMN, COMPLETENESS_COLUMN, FLAGS_COLUMN, bits_to_flags, check_gates, flags_to_bits
from ..scoring.scorer import ONE_SHOT_COLUMN, GoldenScorer
from ..selection import GAIN_COLUMN, SCORE_COLUMN, gated_rows
from ..utils.files import check_writable, folder_lock, temporary_path
from .checkpoint import (
    CHECKPOINT_DIR,
    TASKS_COLUMN,
    Checkpoint,
    CorruptShardError,
    dist_info,
    exact_quantiles,
    iter_shards,
    order_key,
    read_log,
    rows_digest,
    run_fingerprint,
    stream_threshold,
    wait_for_shards,
)
from .loop import Batch, CallbackHandler, ProgressCallback, RunCallback, RunState, check_callbacks, run_batches
from .outputs import (
    SCORED_STEM,
    SELECTED_STEM,
    remove_stale_outputs,
    run_summary,
    save_dataset_files,
    selection_record,
    write_summary,
)
from .prospecting import check_run_arguments, prepare_task_set

logger = logging.getLogger(__name__)


def _is_map_style(dataset: Any) -> bool:
    return hasattr(dataset, "__len__") and hasattr(dataset, "select")


#: The exit status of a process ended by SIGTERM (128 + 15, as a shell reports it).
TERMINATED_EXIT_CODE = 128 + signal.SIGTERM


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the block runs, SIGTERM raises `SystemExit(143)` instead of ending the process on the spot.

    SLURM (time limit, `scancel`, preemption) and torchrun stop a job with SIGTERM, which by default ends Python
    without running `finally` blocks: process 0 would leave the output folder's lock behind, and a lock from another
    host is never taken over, so a resumed job whose process 0 lands on another machine would be refused. Unwinding
    frees the lock and removes temporary files; the finished shards stay. Only in the main thread, and only when
    SIGTERM has its default action (a handler the caller installed is left alone).
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise SystemExit(TERMINATED_EXIT_CODE)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def prospect_sharded(
    dataset: Any,
    scorer: GoldenScorer,
    out_dir: str | os.PathLike,
    *,
    task_set: Any = None,
    auto_options: dict[str, Any] | None = None,
    top_percent: float | None = None,
    min_distance: float | None = None,
    limit: int | None = None,
    shard_size: int = 64,
    resume: bool = True,
    timeout: float = 600.0,
    dedup_threshold: float | None = None,
    early_stop: Any = None,
    source: str | None = None,
    progress: bool = True,
    gates: str | Sequence[str] | None = "all",
    rank: int | None = None,
    world_size: int | None = None,
    callbacks: Sequence[RunCallback] = (),
) -> tuple[Any, dict[str, Any] | None]:
    """Score `dataset` in checkpointed shards, possibly over several processes, and write what `prospect` writes.

    Every process calls it with the same arguments; process `rank` scores shards `k` with `k % world_size == rank`.
    Process 0 then gathers the shards into `scored.parquet`, `scored.jsonl`, `summary.json` (and `selected.*`),
    equal to a single-process run. A run started again with the same settings resumes from the checkpoint.

    Args:
        dataset (`datasets.Dataset` or `datasets.IterableDataset`): The candidates; a stream is read shard by shard.
        scorer (`GoldenScorer`): The scorer.
        out_dir (`str`): Output folder; the checkpoint lives in its `checkpoint/` subfolder. Process 0 holds the
            folder for the run (see `folder_lock`), so another run there is refused; the other processes of the run
            share it. A finished run removes the `scored.partial.*` of an earlier run, and its `selected.*` when it
            makes no selection.
        task_set (*optional*): As for `prospect`; `"auto"` needs a map-style dataset and draws its tasks from the
            rows to be scored (before deduplication). Every process builds the same tasks from the same seed; the
            checkpoint's fingerprint holds the tasks, so a process that built other tasks is refused, never mixed in.
        auto_options (`dict`, *optional*): Arguments of `auto_task_set` (`num_tasks`, `sample_size`, `seed`, ...).
        top_percent (`float`, *optional*): Also write the top `top_percent`% as `selected.*`.
        min_distance (`float`, *optional*): Make that top diverse (see `select_top`; map-style datasets only, and not
            with `early_stop`, whose threshold is the plain top's).
        limit (`int`, *optional*): Score only the first `limit` rows.
        shard_size (`int`, *optional*, defaults to `64`): Rows per shard (the unit of checkpointing and of memory).
        resume (`bool`, *optional*, defaults to `True`): Continue from an existing checkpoint of the same settings;
            with `False` an existing checkpoint is refused (never overwritten).
        timeout (`float`, *optional*, defaults to `600`): Seconds without progress after which waiting for another
            process fails with a `TimeoutError`.
        dedup_threshold (`float`, *optional*): Score exact and near-duplicate candidates (MinHash Jaccard at least
            this) once and share the score (map-style datasets only). See `hf_nuggets.run.duplicates`.
        early_stop (`EarlyStopping`, *optional*): Adaptive early stopping for the top-`top_percent`% selection (one
            process only). See `hf_nuggets.scoring.early_stop`.
        source (`str`, *optional*): Where the data came from, recorded in the summary.
        progress (`bool`, *optional*, defaults to `True`): Show a progress bar.
        gates (`str` or `list[str]`, *optional*, defaults to `"all"`): The gates that keep rows out of the top (see
            `select_top`); streaming selections honour them too.
        rank (`int`, *optional*): This process's rank; read from the environment when omitted.
        world_size (`int`, *optional*): Number of processes; read from the environment when omitted.
        callbacks (`list[RunCallback]`, *optional*): Hooks of the run (see `hf_nuggets.run.loop`); a batch here is
            a shard of this process.

    Returns:
        `tuple`: On process 0, the scored rows (a `datasets.Dataset`, or an `IterableDataset` over `scored.parquet`
        for a stream) and the summary; on other processes `(None, None)`.

    Raises:
        ValueError: Bad arguments, or a checkpoint of other settings or other data in `out_dir`.
        PermissionError: `out_dir` is not writable.
        FolderLockedError: Another live run holds `out_dir` (process 0 only; a `RuntimeError`).
        TimeoutError: Another process made no progress for `timeout` seconds.
        SystemExit: SIGTERM arrived (status 143); the lock is freed and the finished shards are kept.
    """
    check_run_arguments(
        top_percent=top_percent, min_distance=min_distance, limit=limit, gates=gates, shard_size=shard_size
    )
    if timeout <= 0:
        raise ValueError(f"`timeout` must be positive, got {timeout!r}.")
    env_rank, env_world, _ = dist_info()
    rank = env_rank if rank is None else rank
    world = env_world if world_size is None else world_size
    streaming = not _is_map_style(dataset)
    if dedup_threshold is not None and streaming:
        raise ValueError("`dedup` needs a map-style dataset (it compares all rows); it is not available on a stream.")
    if min_distance is not None and (streaming or early_stop is not None):
        raise ValueError(
            "`min_distance` needs a map-style dataset (it walks the whole ranking) and no `early_stop` (which stops "
            "against the plain top's threshold)."
        )
    if early_stop is not None:
        if top_percent is None:
            raise ValueError("`early_stop` needs `top_percent`: it stops against the top-n% threshold.")
        if world > 1:
            raise ValueError(f"`early_stop` runs in one process (its threshold is sequential), got {world} processes.")
    if not streaming and len(dataset) == 0:
        raise ValueError("The dataset is empty: there is nothing to score.")
    if streaming and isinstance(task_set, str) and task_set == "auto":
        raise ValueError("`task_set='auto'` samples the data, which a stream cannot give: load it map-style.")
    column_names = getattr(dataset, "column_names", None)
    columns_read = None
    if column_names:  # a stream of unknown columns fails at its first row
        columns_read = check_columns(column_names, scorer.columns, source=source or "the dataset")
    out = check_writable(out_dir)
    # Process 0 holds the folder for the run (it writes the outputs); the other processes of the run, on this machine
    # or on others sharing the folder, share it. SIGTERM unwinds, so that the lock does not outlive a stopped job.
    with _sigterm_unwinds(), folder_lock(out) if rank == 0 else nullcontext():
        hooks = [
            ProgressCallback(f"Prospecting (process {rank}/{world})", disable=not progress),
            *check_callbacks(callbacks),
        ]
        handler, state = CallbackHandler(hooks), RunState()

        t0 = time.perf_counter()
        handler.phase(state, "loading")
        scorer.loaded_prospector  # noqa: B018 - loads the model (timed as load_s)
        t1 = time.perf_counter()

        work, rep_of, dedup_info = dataset, None, None
        if not streaming:
            total = len(dataset) if limit is None else min(limit, len(dataset))
            work = dataset.select(range(total)) if total < len(dataset) else dataset
        handler.phase(state, "tasks")
        scorer, tasks_record = prepare_task_set(work, scorer, task_set, auto_options, progress=progress and rank == 0)
        state.num_tasks, state.tasks = len(scorer.tasks), list(scorer.tasks)
        t_tasks = time.perf_counter()
        if not streaming:
            if dedup_threshold is not None:
                from .duplicates import duplicate_representatives

                rep_of, dedup_info = duplicate_representatives(work, scorer.columns, threshold=dedup_threshold)
                work = work.select(np.unique(rep_of).tolist())
        rows = None if streaming else len(work)
        extra = {
            "limit": limit,
            "dedup_threshold": dedup_threshold,
            "early_stop": early_stop.settings() if early_stop is not None else None,
            "top_percent": top_percent if early_stop is not None else None,
        }
        checkpoint = Checkpoint(
            out / CHECKPOINT_DIR, run_fingerprint(scorer, shard_size=shard_size, rows=rows, extra=extra), resume=resume
        )
        handler.phase(state, "zero_shot")
        s_zero = checkpoint.zero_shot((lambda: scorer.zero_shot_scores) if rank == 0 else None, timeout=timeout)
        scorer.use_zero_shot_scores(s_zero)
        t2 = time.perf_counter()
        run_start = time.time()

        if early_stop is not None:
            early_stop.start(scorer, n_rows=rows, top_percent=top_percent)
        counts = {"scored": 0, "resumed": 0, "corrupt": 0}
        n_shards, mapping = 0, None

        def shards():
            nonlocal n_shards, mapping
            for k, start, get in iter_shards(work, shard_size, None if rows is not None else limit):
                n_shards = k + 1
                if k % world != rank:
                    continue
                batch = get()
                if mapping is None:
                    mapping = resolve_columns(list(batch.keys()), scorer.columns)
                size = len(next(iter(batch.values())))
                yield Batch(start, size, (k, examples_from_batch(batch, mapping, list(range(start, start + size)))))

        def score_shard(batch: Batch) -> dict[str, np.ndarray]:
            k, examples = batch.payload
            digest = rows_digest(examples)
            try:
                arrays = checkpoint.read_shard(k, digest)
            except CorruptShardError as err:
                checkpoint.quarantine(k, err)
                counts["corrupt"] += 1
                arrays = None
            if arrays is not None:
                counts["resumed"] += 1
                if early_stop is not None:
                    early_stop.observe(arrays)
                return arrays
            arrays = (
                early_stop.score(examples, batch.start) if early_stop is not None else shard_arrays(scorer, examples)
            )
            checkpoint.write_shard(k, batch.start, digest, arrays)
            counts["scored"] += 1
            return arrays

        state.rows_total = rows
        handler.phase(state, "scoring")
        for _ in run_batches(shards(), score_shard, handler, state):
            pass
        if rank != 0:
            logger.info("Process %d finished its shards (%s).", rank, counts)
            return None, None
        wait_for_shards(checkpoint, n_shards, timeout=timeout, world_size=world)
        t3 = time.perf_counter()
        handler.phase(state, "writing")

        this_run = _rows_scored_since(checkpoint, n_shards, run_start)
        if streaming:
            scored, files, selection, quantiles, done, flags = _assemble_stream(
                dataset, checkpoint, n_shards, out, shard_size, limit, top_percent, gates
            )
        else:
            scored, done = _assemble(
                dataset, checkpoint, n_shards, rep_of, len(work) if rep_of is None else len(rep_of)
            )
            files = save_dataset_files(scored, out, SCORED_STEM)
            quantiles = exact_quantiles(Counter(scored[SCORE_COLUMN]))
            selection = None
            if top_percent is not None:
                selection = selection_record(
                    scored,
                    top_percent,
                    out,
                    gates=gates,
                    min_distance=min_distance,
                    columns=scorer.columns,
                    progress=progress,
                )
            flags = Counter(scored[FLAGS_COLUMN])

        summary = run_summary(
            scorer,
            source=source,
            rows_total=done,
            rows_scored=done,
            stopped_early=False,
            max_seconds=None,
            quantiles=quantiles,
            times=(t0, t1, t2, t3),
            pairs_scored=this_run * len(scorer.tasks),
            flags=flags,
            gates=gates,
            tasks=tasks_record,
            task_seconds=t_tasks - t1,
            columns=columns_read,
        )
        summary.update(
            {
                "sharding": {
                    "processes": world,
                    "shard_size": shard_size,
                    "shards": n_shards,
                    "shards_scored_by_process_0": counts["scored"],
                    "shards_resumed_by_process_0": counts["resumed"],
                    "corrupt_shards_rescored": counts["corrupt"],
                    "rows_scored_this_run": this_run,
                    "streaming": streaming,
                    "checkpoint": str(checkpoint.folder),
                },
                "files": files,
            }
        )
        if dedup_info is not None:
            summary["dedup"] = dedup_info
        if early_stop is not None:
            summary["early_stop"] = early_stop.report()
        if selection is not None:
            summary["selection"] = selection
        remove_stale_outputs(out, selection=selection is not None)
        write_summary(out, summary)
        return scored, summary


def shard_arrays(scorer: GoldenScorer, examples: list) -> dict[str, np.ndarray]:
    """Score the examples of a shard into the arrays a checkpoint shard holds."""
    result = scorer.score_examples(examples)
    arrays = {
        "golden": result["golden_score"],
        "gain": result["nuggets_gain"],
        "alignment": result["alignment"],
        "completeness": result["completeness"],
        "flagbits": flags_to_bits(result["flags"]),
    }
    if scorer.return_scores:
        arrays["one_shot"] = result["one_shot"]
    return arrays


def _rows_scored_since(checkpoint: Checkpoint, n_shards: int, since: float) -> int:
    """Rows in shards logged as scored after `since` (by any process)."""
    total = 0
    for k in set(read_log(checkpoint.folder, since - 1e-3)):
        arrays = checkpoint.read_shard(k) if k < n_shards else None
        total += 0 if arrays is None else len(arrays["golden"])
    return total


def _load_all(checkpoint: Checkpoint, n_shards: int) -> dict[str, np.ndarray]:
    parts: dict[str, list] = {}
    for k in range(n_shards):
        arrays = checkpoint.read_shard(k)
        if arrays is None:
            raise RuntimeError(f"Shard {k} vanished from {str(checkpoint.folder)!r} while gathering.")
        for name, value in arrays.items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def _columns(arrays: dict[str, np.ndarray]) -> dict[str, list]:
    cols = {SCORE_COLUMN: arrays["golden"].tolist(), GAIN_COLUMN: arrays["gain"].tolist()}
    if "flagbits" in arrays:
        cols[ALIGNMENT_COLUMN] = arrays["alignment"].tolist()
        cols[COMPLETENESS_COLUMN] = arrays["completeness"].tolist()
        cols[FLAGS_COLUMN] = bits_to_flags(arrays["flagbits"])
    if "one_shot" in arrays:
        cols[ONE_SHOT_COLUMN] = arrays["one_shot"].tolist()
    if "tasks" in arrays:
        cols[TASKS_COLUMN] = arrays["tasks"].tolist()
    return cols


def _assemble(dataset: Any, checkpoint: Checkpoint, n_shards: int, rep_of: np.ndarray | None, total: int):
    arrays = _load_all(checkpoint, n_shards)
    if rep_of is not None:  # expand unique-row scores to every row
        position = np.searchsorted(np.unique(rep_of), rep_of)
        arrays = {name: value[position] for name, value in arrays.items()}
    scored = dataset.select(range(total)) if total < len(dataset) else dataset
    for name, values in _columns(arrays).items():
        scored = scored.add_column(name, values)
    return scored, total


def _arrow_table(batch: dict[str, list], schema: Any = None):
    import pyarrow as pa

    table = pa.Table.from_pydict(batch)
    if schema is None:
        fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
        schema = pa.schema(fields)
    return table.cast(schema), schema


class _StreamWriter:
    """Writes rows chunk by chunk to `<stem>.parquet` and `<stem>.jsonl` through unique temporary files, renamed on
    `close`, so that two writers of the same stem never write into each other's file. Used as a context manager, a
    writer left unclosed (an error, Ctrl-C) removes its temporary files."""

    def __init__(self, out: Path, stem: str):
        self.out, self.stem, self.writer, self.schema, self.closed = out, stem, None, None, False
        self.tmp = {s: temporary_path(out / f"{stem}.{s}") for s in ("parquet", "jsonl")}
        self.jsonl = open(self.tmp["jsonl"], "w", encoding="utf-8")  # noqa: SIM115 - closed in `close` or `abort`

    def write(self, batch: dict[str, list]) -> None:
        import pyarrow.parquet as pq

        table, self.schema = _arrow_table(batch, self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp["parquet"], self.schema)
        self.writer.write_table(table)
        for row in table.to_pylist():
            self.jsonl.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

    def close(self) -> dict[str, str]:
        import pyarrow.parquet as pq

        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp["parquet"], self.schema or _empty_schema())
        self.writer.close()
        self.jsonl.close()
        self.closed = True
        paths = {}
        for suffix, tmp in self.tmp.items():
            final = self.out / f"{self.stem}.{suffix}"
            os.replace(tmp, final)
            paths[suffix] = str(final)
        return paths

    def abort(self) -> None:
        """Close the files and remove the temporary ones (the outputs of an earlier run stay as they were)."""
        self.closed = True
        try:
            if self.writer is not None:
                self.writer.close()
            self.jsonl.close()
        finally:
            for tmp in self.tmp.values():
                tmp.unlink(missing_ok=True)

    def __enter__(self) -> _StreamWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self.closed:
            self.abort()


def _empty_schema():
    import pyarrow as pa

    return pa.schema([pa.field(SCORE_COLUMN, pa.float64()), pa.field(GAIN_COLUMN, pa.float64())])


def _assemble_stream(dataset, checkpoint, n_shards, out, shard_size, limit, top_percent, gates):
    """Second pass over the stream: join rows with their shard scores, write outputs chunk by chunk.

    The top is exact: the rows no chosen gate flags, ranked as `select_top` ranks them, with the count of
    `n_selected` of all rows.
    """
    counts: Counter = Counter()
    flag_values: Counter = Counter()
    done = 0
    with _StreamWriter(out, SCORED_STEM) as writer:
        for k, _, get in iter_shards(dataset, shard_size, limit):
            if k >= n_shards:
                break
            batch = dict(get())
            batch.update(_columns(checkpoint.read_shard(k)))
            counts.update(batch[SCORE_COLUMN])
            flag_values.update(batch.get(FLAGS_COLUMN, []))
            done += len(batch[SCORE_COLUMN])
            writer.write(batch)
        files = writer.close()
    selection = None
    if top_percent is not None:

        def ungated(arrays):
            if "flagbits" not in arrays:  # shards scored before gates existed
                return np.ones(len(arrays["golden"]), dtype=bool)
            mask = gated_rows(bits_to_flags(arrays["flagbits"]), gates)
            return np.ones(len(arrays["golden"]), dtype=bool) if mask is None else ~mask

        def read():
            for k in range(n_shards):
                arrays = checkpoint.read_shard(k)
                keep = ungated(arrays)
                yield arrays["golden"][keep], arrays["gain"][keep]

        n_ungated = sum(len(golden) for golden, _ in read())
        g_star, gain_key, ties, n_keep = stream_threshold(read, done, top_percent, n_keep=n_ungated)
        tie_seen = 0
        with _StreamWriter(out, SELECTED_STEM) as picker:
            for k, _, get in iter_shards(dataset, shard_size, limit):
                if k >= n_shards:
                    break
                arrays = checkpoint.read_shard(k)
                allowed = ungated(arrays)
                golden, key = arrays["golden"], order_key(arrays["gain"])
                keep = allowed & ((golden > g_star) | ((golden == g_star) & (key > gain_key)))
                tie = np.flatnonzero(allowed & (golden == g_star) & (key == gain_key))
                take = tie[: max(0, ties - tie_seen)]
                tie_seen += len(take)
                keep[take] = True
                if keep.any():
                    batch = dict(get())
                    batch.update(_columns(arrays))
                    idx = np.flatnonzero(keep).tolist()
                    picker.write({name: [values[i] for i in idx] for name, values in batch.items()})
            picked = picker.close()
        selection = {
            "top_percent": top_percent,
            "rows_selected": n_keep,
            "threshold": float(g_star) if n_keep else None,
            "gates": list(check_gates(gates) or ()),
            "order": "dataset order (streaming)",
            "files": picked,
        }
    from datasets import load_dataset

    scored = load_dataset("parquet", data_files=files["parquet"], split="train", streaming=True)
    return scored, files, selection, exact_quantiles(counts), done, flag_values
