"""Training on the nuggets: `filter_for_training` and `GoldenFilterCallback` for `Trainer` and TRL's `SFTTrainer`."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainerCallback

from .._version import __version__
from ..data.formatting import resolve_columns
from ..gates import FLAGS_COLUMN, check_gates
from ..run.loop import ProgressCallback, score_rows
from ..scoring.prospector import Prospector
from ..scoring.scorer import GoldenScorer
from ..selection import GAIN_COLUMN, SCORE_COLUMN, check_percent, gated_rows, n_selected, top_indices
from ..utils.files import atomic_write_text

logger = logging.getLogger(__name__)

#: The file, in the trainer's `output_dir` (and copied into each checkpoint), that records the kept rows.
RECORD_FILE = "nuggets_kept_rows.json"
#: The keys under which the selection is logged through `Trainer.log` (TensorBoard, W&B, `state.log_history`).
METRIC_KEYS = ("rows_total", "rows_kept", "rows_dropped", "score_threshold", "top_percent")


# -- kernel: validation, scores, selection ---------------------------------------------------------------------------
def _check_dataset(dataset: Any, what: str) -> int:
    """Check that `dataset` is a `datasets.Dataset` with rows; return its length."""
    import datasets

    if dataset is None:
        raise ValueError(f"{what} is None: the trainer needs a `train_dataset` to filter.")
    if isinstance(dataset, datasets.IterableDataset) or not hasattr(dataset, "__len__"):
        raise TypeError(
            f"{what} is a streaming `{type(dataset).__name__}` without a length: neither the Trainer (epochs, "
            "learning-rate schedule) nor the top-n% filter can measure it. Materialise the rows first, e.g. "
            "`Dataset.from_generator(lambda: iter(streamed))`, then filter."
        )
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(f"{what} must be a `datasets.Dataset` (rows with columns), got {type(dataset).__name__}.")
    if len(dataset) == 0:
        raise ValueError(f"{what} is empty: there is nothing to train on.")
    return len(dataset)


def _count_kept(n_rows: int, top_percent: float) -> int:
    """Rows the top `top_percent`% of `n_rows` keeps (rounded to nearest); an error when that is no row at all."""
    exact = n_rows * top_percent / 100
    if math.floor(exact + 0.5) < 1:
        raise ValueError(
            f"`top_percent`={top_percent:g} of {n_rows} rows keeps no row ({exact:.3g} rounds to 0): training "
            f"would see no data. Use a `top_percent` above {50 / n_rows:.3g}."
        )
    return n_selected(n_rows, top_percent)


def _scores_from_column(dataset: Any, score_column: str, gain_column: str | None) -> tuple[Any, Any, Any]:
    scores = np.asarray(dataset[score_column], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise ValueError(
            f"Column `{score_column}` has {bad.size} missing or non-finite score(s) (first at row {int(bad[0])}): "
            "score every row before filtering."
        )
    if gain_column and gain_column in dataset.column_names:
        gains = np.nan_to_num(np.asarray(dataset[gain_column], dtype=np.float64), nan=-np.inf)
    else:
        gains = np.zeros_like(scores)
    flags = list(dataset[FLAGS_COLUMN]) if FLAGS_COLUMN in dataset.column_names else None
    return scores, gains, flags


def _select(
    scores: np.ndarray, gains: np.ndarray, flags: list | None, gates: Any, top_percent: float
) -> tuple[list[int], float, int]:
    """The kept row positions in dataset order, the lowest kept golden score (the threshold), and the gated count."""
    gated = gated_rows(flags, gates)
    best = top_indices(scores, gains, gated, percent=top_percent)
    n_gated = 0 if gated is None else int(gated.sum())
    if best.size == 0:
        raise ValueError(f"The gates flag all {len(scores)} rows: no row is left to train on (see `nuggets_flags`).")
    return sorted(int(i) for i in best), float(scores[best].min()), n_gated


def _no_text_error(what: str, column_names: list[str], score_column: str, err: Exception) -> ValueError:
    packed = (
        " Packed rows (`seq_lengths`) cannot be filtered: filter before packing."
        if "seq_lengths" in column_names
        else ""
    )
    return ValueError(
        f"{what} has neither a `{score_column}` column nor text columns to score (it has {sorted(column_names)}; "
        f"{err}). Score before tokenizing so the scores ride along (`ds.map(GoldenScorer(...), batched=True)`, or "
        "`filter_for_training(ds, top_percent=...)` before building the trainer), or keep the text columns when "
        "tokenizing (leave `instruction`/`input`/`output` or `messages` out of `remove_columns`: the Trainer drops "
        f"unused columns itself when it builds batches), or name them with `columns={{...}}`.{packed}"
    )


def _text_columns(dataset: Any, scorer: GoldenScorer, what: str, score_column: str) -> list[str]:
    try:
        mapping = resolve_columns(dataset.column_names, scorer.columns)
    except KeyError as err:
        raise _no_text_error(what, dataset.column_names, score_column, err) from None
    return [name for name in mapping.values() if name]


def _score_rows(
    dataset: Any, scorer: GoldenScorer, text_columns: list[str], batch_size: int, start: int, stop: int, desc: str
) -> tuple[list[float], list[float], list[str]]:
    """Scores of rows `start` to `stop`, through the prospecting loop (`hf_nuggets.run.loop`) under a progress bar."""
    if start >= stop:
        return [], [], []
    columns = score_rows(
        dataset.select_columns(text_columns),
        scorer,
        start=start,
        stop=stop,
        batch_size=batch_size,
        callbacks=[ProgressCallback(desc)],
    )
    return columns[SCORE_COLUMN], columns[GAIN_COLUMN], columns[FLAGS_COLUMN]


def _make_scorer(prospector: Any, task_set: Any, num_tasks: Any, columns: Any, template: str, scorer: Any):
    if scorer is None:
        return GoldenScorer(prospector, task_set, num_tasks=num_tasks, columns=columns, template=template)
    if not isinstance(scorer, GoldenScorer):
        raise TypeError(f"`scorer` must be a `GoldenScorer`, got {type(scorer).__name__}.")
    if prospector is not None or task_set is not None or num_tasks is not None or columns is not None:
        raise ValueError("Pass either `scorer` or `prospector`/`task_set`/`num_tasks`/`columns`, not both.")
    return scorer


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    return batch_size


def _digest(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _data_digest(dataset: Any, columns: list[str]) -> str:
    """A digest of the rows' values in `columns` (what the selection depends on), batch by batch."""
    digest = hashlib.sha256(json.dumps([len(dataset), columns]).encode("utf-8"))
    for batch in dataset.select_columns(columns).iter(batch_size=2048):
        digest.update(json.dumps([batch[c] for c in columns], ensure_ascii=False, default=str).encode("utf-8"))
    return digest.hexdigest()[:16]


# -- public function -------------------------------------------------------------------------------------------------
def filter_for_training(
    dataset: Any,
    top_percent: float = 5,
    *,
    prospector: Prospector | str | None = None,
    task_set: Any = None,
    num_tasks: int | None = None,
    columns: Mapping[str, str | None] | None = None,
    template: str = "alpaca",
    scorer: GoldenScorer | None = None,
    score_column: str = SCORE_COLUMN,
    gain_column: str | None = GAIN_COLUMN,
    batch_size: int = 16,
    gates: str | list[str] | None = "all",
):
    """Keep the top `top_percent`% of a training set by golden score, before any trainer is built.

    Scores come from the `golden_score` column when the dataset has one; otherwise the rows are scored with a
    `GoldenScorer` built from `prospector` and `task_set` (or the given `scorer`), and the score columns are added.
    Ties are broken by `nuggets_gain`, then by row order, and rows flagged by a chosen gate are never kept, as in
    `select_top`. Unlike `select_top`, the kept rows stay in dataset order, and a percentage that rounds to no row at
    all is an error rather than one row.

    Args:
        dataset (`datasets.Dataset`): The training rows (a streaming `IterableDataset` cannot be measured: an error).
        top_percent (`float`, *optional*, defaults to `5`): Percentage of rows to keep, in (0, 100], rounded to the
            nearest row.
        prospector (`Prospector` or `str`, *optional*): The prospector model when scoring is needed; `None` for the
            embedded SmolLM2-135M-Instruct.
        task_set (`datasets.Dataset` or `list[dict]`, *optional*): The predefined tasks; `None` for the shipped set.
        num_tasks (`int`, *optional*): Use only the first `num_tasks` tasks.
        columns (`dict`, *optional*): Maps `instruction`, `input`, `output` (or `messages`) to the data's columns.
        template (`str`, *optional*, defaults to `"alpaca"`): `"alpaca"` or `"chat"` (see `GoldenScorer`).
        scorer (`GoldenScorer`, *optional*): A ready scorer, instead of `prospector`/`task_set`/`num_tasks`/`columns`.
        score_column (`str`, *optional*, defaults to `"golden_score"`): The score column read when present.
        gain_column (`str`, *optional*, defaults to `"nuggets_gain"`): Tie-breaking column; `None` to skip.
        batch_size (`int`, *optional*, defaults to `16`): Rows per scorer call.
        gates (`str` or `list[str]`, *optional*, defaults to `"all"`): The gates that keep rows out (see
            `select_top`); `None` to rank by golden score alone.

    Returns:
        `datasets.Dataset`: The kept rows in their original order, with the score columns.

    Example:

    ```python
    >>> from datasets import Dataset
    >>> ds = Dataset.from_dict({"text": ["a", "b", "c", "d"], "golden_score": [0.2, 0.9, 0.5, 0.7]})
    >>> list(filter_for_training(ds, top_percent=50)["text"])
    ['b', 'd']
    ```
    """
    top_percent = check_percent(top_percent, "top_percent")
    batch_size = _check_batch_size(batch_size)
    check_gates(gates)
    scorer = _make_scorer(prospector, task_set, num_tasks, columns, template, scorer)
    n_rows = _check_dataset(dataset, "`dataset`")
    _count_kept(n_rows, top_percent)
    if score_column not in dataset.column_names:
        _text_columns(dataset, scorer, "`dataset`", score_column)
        dataset = dataset.map(
            scorer, batched=True, batch_size=batch_size, with_indices=True, desc="Prospecting golden examples"
        )
        score_column, gain_column = SCORE_COLUMN, GAIN_COLUMN
    scores, gains, flags = _scores_from_column(dataset, score_column, gain_column)
    kept, threshold, n_gated = _select(scores, gains, flags, gates, top_percent)
    logger.info(
        "Kept %d of %d rows (top %g%%, golden score >= %.4g; %d rows gated).",
        len(kept),
        n_rows,
        top_percent,
        threshold,
        n_gated,
    )
    return dataset.select(kept)


# -- the callback ----------------------------------------------------------------------------------------------------
class GoldenFilterCallback(TrainerCallback):
    """Makes a `Trainer` (or TRL `SFTTrainer`) learn only from the top n% of its training set by golden score.

    **How it takes effect.** A `Trainer` builds its dataloader, step count and learning-rate schedule from
    `trainer.train_dataset` at the start of `train()`, *before* any callback event fires, and callbacks are never
    handed the trainer. So this callback does its work in `attach(trainer)`, which you call once the trainer is
    built (for `SFTTrainer`, after it has tokenized the data in its `__init__`):

    1. it scores `trainer.train_dataset` (or reads its `golden_score` column), keeps the top `top_percent`% and
       **replaces `trainer.train_dataset` with the kept rows** (in dataset order). The dataloader, the number of
       optimizer steps, the epochs and the learning-rate schedule then all follow the filtered size;
    2. it writes the kept row positions (and the values of `id_column`, when the data has one) with the score
       threshold and settings to `<output_dir>/nuggets_kept_rows.json`, and registers itself with
       `trainer.add_callback`;
    3. at `on_train_begin` it logs `nuggets/rows_total`, `nuggets/rows_kept`, `nuggets/rows_dropped`,
       `nuggets/score_threshold` and `nuggets/top_percent` through `trainer.log` (so they reach TensorBoard, W&B and
       `trainer.state.log_history`), and at each `on_save` it copies the record into the checkpoint folder.

    A callback added with `trainer.add_callback(...)` or `callbacks=[...]` but never attached raises at
    `on_train_begin`, before the first optimizer step, instead of silently training on all rows; so does one whose
    `trainer.train_dataset` was replaced after `attach`.

    **Same subset everywhere.** Under `accelerate launch`/DDP every process calls `attach`: scoring, if needed, is
    sharded across the processes and gathered, the main process picks the rows and broadcasts them, so all
    processes train on the same subset. **Resuming**: when `<output_dir>/nuggets_kept_rows.json` exists and was made
    with the same settings from the same rows, `attach` reuses it without scoring again; a run resumed from
    `checkpoint-N` checks its subset against the record in that checkpoint and stops if they differ.

    Scores come from the `golden_score` column (and `nuggets_gain` for ties) when the dataset has one; otherwise the
    text columns (`instruction`/`input`/`output` or `messages`, as `GoldenScorer` reads them) must still be there.
    `SFTTrainer` keeps them next to `input_ids`, unless it packs the rows. With `max_steps > 0` the Trainer trains for
    `max_steps` whatever the data size.

    Args:
        top_percent (`float`, *optional*, defaults to `5`): Percentage of rows to keep, in (0, 100], rounded to the
            nearest row; a percentage that keeps no row is an error.
        prospector (`Prospector` or `str`, *optional*): The prospector when scoring is needed: a loaded `Prospector`,
            or a name or path that each process loads on its own device; `None` for the embedded
            SmolLM2-135M-Instruct.
        task_set (`datasets.Dataset` or `list[dict]`, *optional*): The predefined tasks; `None` for the shipped set.
        num_tasks (`int`, *optional*): Use only the first `num_tasks` tasks.
        columns (`dict`, *optional*): Maps `instruction`, `input`, `output` (or `messages`) to the data's columns.
        template (`str`, *optional*, defaults to `"alpaca"`): `"alpaca"` or `"chat"` (see `GoldenScorer`).
        scorer (`GoldenScorer`, *optional*): A ready scorer, instead of `prospector`/`task_set`/`num_tasks`/`columns`.
        score_column (`str`, *optional*, defaults to `"golden_score"`): The score column read when present.
        gain_column (`str`, *optional*, defaults to `"nuggets_gain"`): Tie-breaking column; `None` to skip.
        id_column (`str`, *optional*, defaults to `"id"`): A column whose values are recorded for the kept rows,
            when the data has it (row positions are always recorded).
        batch_size (`int`, *optional*, defaults to `16`): Rows per scorer call.
        gates (`str` or `list[str]`, *optional*, defaults to `"all"`): The gates that keep rows out (see
            `select_top`); `None` to rank by golden score alone.

    Example:

    ```python
    from hf_nuggets import GoldenFilterCallback
    from trl import SFTConfig, SFTTrainer

    trainer = SFTTrainer(model=model, train_dataset=ds, args=SFTConfig(output_dir="out"))
    GoldenFilterCallback(top_percent=5, task_set=tasks).attach(trainer)  # filters trainer.train_dataset now
    trainer.train()  # steps, epochs and schedule follow the kept rows
    ```
    """

    def __init__(
        self,
        top_percent: float = 5,
        prospector: Prospector | str | None = None,
        task_set: Any = None,
        *,
        num_tasks: int | None = None,
        columns: Mapping[str, str | None] | None = None,
        template: str = "alpaca",
        scorer: GoldenScorer | None = None,
        score_column: str = SCORE_COLUMN,
        gain_column: str | None = GAIN_COLUMN,
        id_column: str | None = "id",
        batch_size: int = 16,
        gates: str | list[str] | None = "all",
    ):
        self.top_percent = check_percent(top_percent, "top_percent")
        check_gates(gates)
        self.gates = gates
        self.batch_size = _check_batch_size(batch_size)
        self._owns_scorer = scorer is None
        self.scorer = _make_scorer(prospector, task_set, num_tasks, columns, template, scorer)
        self.score_column, self.gain_column, self.id_column = score_column, gain_column, id_column
        #: The selection record (also written to `output_dir`); `None` until `attach`.
        self.record: dict[str, Any] | None = None
        #: Whether `attach` reused the record found in `output_dir` instead of selecting again.
        self.reused_record = False
        self._trainer: Any = None
        self._filtered: Any = None

    @property
    def kept_positions(self) -> list[int]:
        """Positions of the kept rows in the trainer's original `train_dataset` (empty before `attach`)."""
        return list(self.record["kept_positions"]) if self.record else []

    def attach(self, trainer: Any) -> Any:
        """Filter `trainer.train_dataset` to its top rows now, and register this callback with the trainer.

        Call it after building the trainer and before `trainer.train()`, on every process of a distributed run.

        Args:
            trainer (`transformers.Trainer`): The trainer, e.g. a TRL `SFTTrainer`, whose `train_dataset` is filtered.

        Returns:
            `transformers.Trainer`: The same trainer, now holding the kept rows in `train_dataset`.
        """
        if self._trainer is trainer:
            return trainer
        if self._trainer is not None:
            raise ValueError("This `GoldenFilterCallback` is already attached to another trainer; create a new one.")
        if not hasattr(trainer, "train_dataset") or not hasattr(trainer, "accelerator"):
            raise TypeError(f"`attach` needs a `transformers.Trainer`, got {type(trainer).__name__}.")
        dataset, args = trainer.train_dataset, trainer.args
        n_rows = _check_dataset(dataset, "`trainer.train_dataset`")
        n_kept = _count_kept(n_rows, self.top_percent)
        world = trainer.accelerator.num_processes
        if args.dataloader_drop_last and n_kept < args.per_device_train_batch_size * world:
            raise ValueError(
                f"Keeping {n_kept} rows with `dataloader_drop_last=True` and a batch of "
                f"{args.per_device_train_batch_size} x {world} process(es) leaves no full batch: raise `top_percent`."
            )
        from_column = self.score_column in dataset.column_names
        text_columns = (
            [] if from_column else _text_columns(dataset, self.scorer, "`trainer.train_dataset`", self.score_column)
        )
        if self._owns_scorer and self.scorer.device is None and not isinstance(self.scorer.prospector, Prospector):
            self.scorer.device = str(args.device)  # each process loads the prospector on its own device

        main = trainer.accelerator.is_main_process
        path = Path(args.output_dir) / RECORD_FILE
        settings = reused = error = None
        if main:
            try:
                settings = self._settings(dataset, n_rows, from_column, text_columns)
                reused = _load_record(path, settings)
            except Exception as err:  # reported on every process, never a hang in a collective call
                error = f"{type(err).__name__}: {err}"
        reused, error = _broadcast([reused, error], world)
        if error:
            raise RuntimeError(f"Reading the selection settings failed on the main process: {error}")
        if reused is not None:
            record = reused
            logger.info("Reusing the kept rows recorded in %s (same settings, same rows).", path)
        else:
            if from_column:
                scores, gains, flags = _scores_from_column(dataset, self.score_column, self.gain_column)
            else:
                scores, gains, flags = self._score_sharded(dataset, text_columns, trainer.accelerator)
            record = None
            if main:
                try:
                    record = self._build_record(dataset, scores, gains, flags, settings)
                except Exception as err:
                    error = f"{type(err).__name__}: {err}"
            record, error = _broadcast([record, error], world)
            if error:
                raise RuntimeError(f"Selecting the kept rows failed on the main process: {error}")

        self._filtered = dataset.select(record["kept_positions"])
        trainer.train_dataset = self._filtered
        self.record, self.reused_record, self._trainer = record, reused is not None, trainer
        if args.should_save and reused is None:
            atomic_write_text(path, json.dumps(record, indent=1, ensure_ascii=False, default=str) + "\n")
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)
        logger.info(
            "GoldenFilterCallback: trainer.train_dataset filtered from %d to %d rows (top %g%%, golden score >= %.4g);"
            " kept rows recorded in %s.",
            n_rows,
            record["rows_kept"],
            self.top_percent,
            record["score_threshold"],
            path,
        )
        return trainer

    # -- attach helpers --------------------------------------------------------------------------------------------
    def _settings(self, dataset: Any, n_rows: int, from_column: bool, text_columns: list[str]) -> dict[str, Any]:
        """What the selection depends on: a stored record is reused only when all of it matches."""
        gates = check_gates(self.gates)
        settings: dict[str, Any] = {
            "top_percent": self.top_percent,
            "rows_total": n_rows,
            "id_column": None,
            "gates": list(gates) if gates else None,
        }
        columns = list(text_columns)
        if from_column:
            named = (self.score_column, self.gain_column, FLAGS_COLUMN)
            columns = [c for c in named if c and c in dataset.column_names]
            settings["scores"] = {"column": self.score_column, "gain_column": self.gain_column}
        else:
            prospector = self.scorer.prospector
            if isinstance(prospector, Prospector):
                prospector = prospector.name + (f"@{prospector.revision}" if prospector.revision else "")
            tasks = [[t.instruction, t.input, t.output] for t in self.scorer.tasks]
            settings["scores"] = {
                "prospector": str(prospector) if prospector is not None else "embedded",
                "task_set": _digest(tasks),
                "num_tasks": len(tasks),
                "template": self.scorer.template,
                "limits": str(self.scorer.limits),
                "gate_settings": str(self.scorer.gate_settings),
            }
        if self.id_column and self.id_column in dataset.column_names:
            settings["id_column"] = self.id_column
            columns.append(self.id_column)
        settings["data"] = _data_digest(dataset, columns)
        return settings

    def _score_sharded(self, dataset: Any, text_columns: list[str], accelerator: Any) -> tuple[Any, Any, list[str]]:
        """Each process scores a contiguous shard; the shards are gathered in order on every process."""
        world, rank, n_rows = accelerator.num_processes, accelerator.process_index, len(dataset)
        div, mod = divmod(n_rows, world)
        start = rank * div + min(rank, mod)
        stop = start + div + (rank < mod)
        desc = "Prospecting golden examples" + (f" (process {rank + 1}/{world})" if world > 1 else "")
        if world == 1:
            scores, gains, flags = _score_rows(dataset, self.scorer, text_columns, self.batch_size, start, stop, desc)
        else:
            try:
                payload = (None, _score_rows(dataset, self.scorer, text_columns, self.batch_size, start, stop, desc))
            except Exception as err:  # every process must reach the gather, or the others would wait forever
                payload = (f"process {rank}: {type(err).__name__}: {err}", None)
            from accelerate.utils import gather_object

            parts = gather_object([payload])
            errors = [message for message, _ in parts if message]
            if errors:
                raise RuntimeError(f"Scoring `trainer.train_dataset` failed on {errors[0]}")
            scores = [s for _, (shard, _, _) in parts for s in shard]
            gains = [g for _, (_, shard, _) in parts for g in shard]
            flags = [f for _, (_, _, shard) in parts for f in shard]
        return np.asarray(scores, dtype=np.float64), np.asarray(gains, dtype=np.float64), flags

    def _build_record(self, dataset: Any, scores: Any, gains: Any, flags: Any, settings: Any) -> dict[str, Any]:
        kept, threshold, n_gated = _select(np.asarray(scores), np.asarray(gains), flags, self.gates, self.top_percent)
        ids = None
        if settings["id_column"]:
            ids = list(dataset.select(kept)[settings["id_column"]])
        return {
            "hf_nuggets_version": __version__,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "settings": settings,
            "top_percent": self.top_percent,
            "rows_total": len(dataset),
            "rows_kept": len(kept),
            "rows_dropped": len(dataset) - len(kept),
            "rows_gated": n_gated,
            "score_threshold": threshold,
            "kept_positions": kept,
            "kept_ids": ids,
        }

    # -- events ----------------------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        if self._trainer is None:
            raise RuntimeError(
                "GoldenFilterCallback was added to the trainer but never attached, and the Trainer has already "
                "built its dataloader and step count from all rows: filtering now would change nothing, so training "
                "stops here. Call `GoldenFilterCallback(...).attach(trainer)` after building the trainer and before "
                "`trainer.train()` (instead of `trainer.add_callback(...)` or `callbacks=[...]`)."
            )
        if self._trainer.train_dataset is not self._filtered:
            raise RuntimeError(
                "`trainer.train_dataset` was replaced after `GoldenFilterCallback.attach`, so the trainer would not "
                "train on the kept rows; call `attach` again on a new callback after setting the dataset."
            )
        if state.global_step > 0:
            self._check_resumed_subset(args, state)
        self._trainer.log({f"nuggets/{key}": self.record[key] for key in METRIC_KEYS})

    def _check_resumed_subset(self, args, state) -> None:
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}" / RECORD_FILE
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            if not self.reused_record:
                logger.warning(
                    "Resuming at step %d, but %s is missing: the subset cannot be checked against the checkpoint's.",
                    state.global_step,
                    path,
                )
            return
        if saved.get("kept_positions") != self.record["kept_positions"]:
            raise RuntimeError(
                f"Resuming at step {state.global_step} from a checkpoint trained on other rows (see {path}): the "
                f"subset selected now ({self.record['rows_kept']} of {self.record['rows_total']} rows) differs. Use "
                "the same data and settings as the checkpoint's run, or start a fresh run in a new `output_dir`."
            )

    def on_save(self, args, state, control, **kwargs):
        if self.record is None or not args.should_save:
            return
        source = Path(args.output_dir) / RECORD_FILE
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if source.is_file() and folder.is_dir():
            shutil.copyfile(source, folder / RECORD_FILE)


def _load_record(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The record stored at `path` when it was made with exactly these `settings`, else `None`."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("Ignoring the unreadable record %s; selecting again.", path)
        return None
    if not isinstance(record, dict) or record.get("settings") != json.loads(json.dumps(settings, default=str)):
        logger.info("The record in %s was made with other settings or rows; selecting again.", path)
        return None
    if any(key not in record for key in METRIC_KEYS):
        logger.warning("Ignoring the incomplete record %s; selecting again.", path)
        return None
    positions = record.get("kept_positions")
    if not isinstance(positions, list) or not all(
        isinstance(p, int) and 0 <= p < settings["rows_total"] for p in positions
    ):
        logger.warning("Ignoring the record %s: its kept positions do not fit the data; selecting again.", path)
        return None
    return record


def _broadcast(objects: list[Any], world: int) -> list[Any]:
    if world == 1:
        return objects
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list(objects, from_process=0)
