"""The prospecting loop, written once: batches of candidates go through the scorer, and hooks see every step.

`prospect`, `prospect_sharded`, `GoldenFilterCallback` and the Space all run this loop. They differ only in which rows
form a batch, where the results go, and which hooks they pass: a progress bar, a time budget, a cancel button, a live
view. This is how transformers' `Trainer` runs one training loop and hands progress, logging and stopping to
`TrainerCallback` events.

A hook is a `RunCallback`. It sees the run's phases (`loading`, `tasks`, `zero_shot`, `scoring`, `writing`), and
every batch before and after it is scored. Before a batch it may set `control.should_stop`: the run then ends
normally with the rows done so far, and the summary says it stopped early. It may also raise `RunCancelled`: the run
is abandoned, and the rows done so far are saved as `scored.partial.*`. While a run draws its tasks from the data
(`task_set="auto"`), the hooks see every small step of that work (`on_step`) and may abandon the run there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data.formatting import examples_from_batch, resolve_columns

#: The phases of a run, in order; `RunCallback.on_phase` receives each one that runs.
PHASES = ("loading", "tasks", "zero_shot", "scoring", "writing")


class RunCancelled(Exception):
    """Raised by a hook to abandon a run (a cancel button, a closed page): the rows done so far are kept."""


@dataclass
class RunState:
    """Where a run stands, as its hooks see it.

    Attributes:
        rows_total (`int` or `None`): Rows this run will score; `None` for a stream of unknown length.
        rows_done (`int`): Rows scored (or resumed from a checkpoint) so far.
        num_tasks (`int`): Tasks each row is scored against (set once the task set is built).
        tasks (`list[Example]`): The task set, once built (before the `zero_shot` phase).
        phase (`str`): The current phase, one of `PHASES`.
        next_rows (`int`): Rows in the batch about to be scored.
        scoring_started (`float` or `None`): `time.perf_counter()` when scoring began.
        stopped_early (`bool`): Whether a hook ended the run before every row was scored.
    """

    rows_total: int | None = None
    rows_done: int = 0
    num_tasks: int = 0
    tasks: list = field(default_factory=list)
    phase: str = "loading"
    next_rows: int = 0
    scoring_started: float | None = None
    stopped_early: bool = False

    @property
    def scoring_seconds(self) -> float:
        """Seconds since scoring began (0 before)."""
        return 0.0 if self.scoring_started is None else time.perf_counter() - self.scoring_started


@dataclass
class RunControl:
    """What the hooks ask of the loop before a batch: `should_stop` ends the run, keeping every row done."""

    should_stop: bool = False


class RunCallback:
    """A hook of the prospecting loop; override the events you need (each does nothing by default)."""

    def on_phase(self, state: RunState, phase: str) -> None:
        """A phase begins (`state.phase` is already `phase`)."""

    def on_batch_begin(self, state: RunState, control: RunControl) -> None:
        """A batch of `state.next_rows` rows is about to be scored; set `control.should_stop` or raise
        `RunCancelled` to end the run here."""

    def on_step(self, state: RunState, control: RunControl) -> None:
        """A small step of the `tasks` phase is about to run (a slice of rows read by the gates or the quality
        judge, while the tasks are drawn from the data); set `control.should_stop` or raise `RunCancelled` to
        abandon the run here (no row is scored yet: the run ends with `RunCancelled`)."""

    def on_batch_end(self, state: RunState, batch: Batch, result: Mapping[str, Any]) -> None:
        """A batch was scored; `result` is what the run's score function returned for it."""

    def on_run_end(self, state: RunState) -> None:
        """The loop ended: every batch done, stopped by a hook, or failed (called in every case)."""


@dataclass
class Batch:
    """A batch of the loop: `size` rows starting at row `start`, and what the run's score function reads."""

    start: int
    size: int
    payload: Any = None


@dataclass
class CallbackHandler:
    """Calls every hook of a run in order."""

    callbacks: list[RunCallback] = field(default_factory=list)

    def phase(self, state: RunState, phase: str) -> None:
        if phase not in PHASES:
            raise ValueError(f"`phase` must be one of {PHASES}, got {phase!r}.")
        state.phase = phase
        if phase == "scoring" and state.scoring_started is None:
            state.scoring_started = time.perf_counter()
        for callback in self.callbacks:
            callback.on_phase(state, phase)

    def batch_begin(self, state: RunState) -> RunControl:
        control = RunControl()
        for callback in self.callbacks:
            callback.on_batch_begin(state, control)
        return control

    def step(self, state: RunState) -> bool:
        """Whether a hook asks to stop before a step of the `tasks` phase (a hook may also raise `RunCancelled`)."""
        control = RunControl()
        for callback in self.callbacks:
            callback.on_step(state, control)
        return control.should_stop

    def batch_end(self, state: RunState, batch: Batch, result: Mapping[str, Any]) -> None:
        for callback in self.callbacks:
            callback.on_batch_end(state, batch, result)

    def run_end(self, state: RunState) -> None:
        for callback in self.callbacks:
            callback.on_run_end(state)


def check_callbacks(callbacks: Iterable[RunCallback] | None) -> list[RunCallback]:
    """The hooks as a list, each checked to be a `RunCallback`."""
    callbacks = list(callbacks or ())
    for i, callback in enumerate(callbacks):
        if not isinstance(callback, RunCallback):
            raise TypeError(f"`callbacks[{i}]` must be a `RunCallback`, got {type(callback).__name__}.")
    return callbacks


def run_batches(
    batches: Iterable[Batch],
    score: Callable[[Batch], Mapping[str, Any]],
    handler: CallbackHandler,
    state: RunState,
) -> Iterator[tuple[Batch, Mapping[str, Any]]]:
    """The loop: ask the hooks, score a batch, tell the hooks, yield it; until the batches end or a hook stops it.

    Args:
        batches (iterable of `Batch`): The batches, in order (read lazily: a stream is never held whole).
        score (`Callable[[Batch], dict]`): Scores one batch (or reads it back from a checkpoint).
        handler (`CallbackHandler`): The run's hooks.
        state (`RunState`): The run's state; `rows_done` and `stopped_early` are updated here.

    Yields:
        `tuple[Batch, dict]`: Each batch with its result, once the hooks have seen it.
    """
    try:
        for batch in batches:
            state.next_rows = batch.size
            if handler.batch_begin(state).should_stop:
                state.stopped_early = True
                return
            result = score(batch)
            state.rows_done += batch.size
            handler.batch_end(state, batch, result)
            yield batch, result
    finally:
        state.next_rows = 0
        handler.run_end(state)


def dataset_batches(
    dataset: Any,
    columns: Mapping[str, str | None] | None,
    *,
    start: int = 0,
    stop: int | None = None,
    batch_size: int = 16,
) -> Iterator[Batch]:
    """Batches of rows `start` to `stop` of a map-style dataset, as `Example` lists (row numbers kept for errors)."""
    stop = len(dataset) if stop is None else stop
    mapping = resolve_columns(list(dataset.column_names), columns)
    for first in range(start, stop, batch_size):
        last = min(first + batch_size, stop)
        yield Batch(first, last - first, examples_from_batch(dataset[first:last], mapping, list(range(first, last))))


def score_rows(
    dataset: Any,
    scorer: Any,
    *,
    start: int = 0,
    stop: int | None = None,
    batch_size: int = 16,
    callbacks: Sequence[RunCallback] = (),
    state: RunState | None = None,
    into: MutableMapping[str, list] | None = None,
) -> MutableMapping[str, list]:
    """Score rows `start` to `stop` of `dataset` batch by batch through `run_batches`, as the output columns.

    Args:
        dataset (`datasets.Dataset`): The candidates (map-style).
        scorer (`GoldenScorer`): The scorer, its task set ready.
        start (`int`, *optional*, defaults to `0`): First row.
        stop (`int`, *optional*): End row (exclusive); the dataset's end by default.
        batch_size (`int`, *optional*, defaults to `16`): Rows per scorer call.
        callbacks (`list[RunCallback]`, *optional*): The hooks.
        state (`RunState`, *optional*): The run's state, when the caller reads it afterwards.
        into (`dict[str, list]`, *optional*): Columns to extend in place, so a caller keeps the rows done when a
            batch fails.

    Returns:
        `dict[str, list]`: The columns `GoldenScorer` adds (`golden_score`, `nuggets_gain`, the signals, the flags,
        and `nuggets_one_shot` with `return_scores`), one value a row.
    """
    stop = len(dataset) if stop is None else stop
    state = state or RunState(rows_total=stop - start, num_tasks=len(scorer.tasks))
    handler = CallbackHandler(check_callbacks(callbacks))
    columns = into if into is not None else {}
    for name in scorer.output_names:
        columns.setdefault(name, [])
    if state.phase != "scoring":  # called on its own (not from `prospect`): the hooks see scoring begin here
        handler.phase(state, "scoring")
    batches = dataset_batches(dataset, scorer.columns, start=start, stop=stop, batch_size=batch_size)
    for _, result in run_batches(batches, lambda batch: scorer.score_examples(batch.payload), handler, state):
        for name, values in scorer.output_columns(result).items():
            columns[name].extend(values)
    return columns


# ---------------------------------------------------------------------------------------------------------------------
# The hooks every entry point uses


class ProgressCallback(RunCallback):
    """A `tqdm` progress bar over the rows, opened when scoring begins.

    Args:
        desc (`str`, *optional*, defaults to `"Prospecting"`): The bar's label.
        disable (`bool`, *optional*, defaults to `False`): No bar.
    """

    def __init__(self, desc: str = "Prospecting", *, disable: bool = False):
        self.desc, self.disable, self.bar = desc, disable, None

    def on_phase(self, state: RunState, phase: str) -> None:
        if phase == "scoring" and self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.rows_total, unit="row", desc=self.desc, disable=self.disable)

    def on_batch_end(self, state: RunState, batch: Batch, result: Mapping[str, Any]) -> None:
        if self.bar is not None:
            self.bar.update(batch.size)

    def on_run_end(self, state: RunState) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def batch_fits(elapsed: float, rows_done: int, next_rows: int, max_seconds: float) -> bool:
    """Whether a batch of `next_rows` rows is expected to end within `max_seconds`, at the pace so far.

    Example:

    ```python
    >>> batch_fits(elapsed=200.0, rows_done=64, next_rows=16, max_seconds=210.0)  # 3.125 s a row: ends at 250 s
    False
    >>> batch_fits(elapsed=150.0, rows_done=64, next_rows=16, max_seconds=210.0)  # ends at about 187.5 s
    True
    ```
    """
    if rows_done <= 0:
        return True
    return elapsed + elapsed / rows_done * next_rows <= max_seconds


class TimeBudgetCallback(RunCallback):
    """Stops the run before a batch that is not expected to end within `max_seconds` of scoring (see `batch_fits`).

    The first batch always runs; the rows scored by then are kept and the summary says the run stopped early.
    """

    def __init__(self, max_seconds: float):
        if max_seconds is None or max_seconds <= 0:
            raise ValueError(f"`max_seconds` must be positive, got {max_seconds!r}.")
        self.max_seconds = max_seconds

    def on_batch_begin(self, state: RunState, control: RunControl) -> None:
        if not batch_fits(state.scoring_seconds, state.rows_done, state.next_rows, self.max_seconds):
            control.should_stop = True


class CancelCallback(RunCallback):
    """Abandons the run with `RunCancelled` before the next batch (or step of the `tasks` phase) once `event` is set
    (a cancel button, a thread).

    Args:
        event (`threading.Event`, *optional*): The flag to watch; a new one when omitted (set it with `cancel()`).
        reason (`str`, *optional*, defaults to `"cancelled"`): The message of the `RunCancelled` error.
    """

    def __init__(self, event: threading.Event | None = None, reason: str = "cancelled"):
        self.event = event if event is not None else threading.Event()
        self.reason = reason

    def cancel(self) -> None:
        """Ask the run to stop before its next batch."""
        self.event.set()

    def on_phase(self, state: RunState, phase: str) -> None:
        if self.event.is_set() and phase != "writing":  # once every row is scored, the run finishes and writes
            raise RunCancelled(self.reason)

    def on_step(self, state: RunState, control: RunControl) -> None:
        if self.event.is_set():
            raise RunCancelled(self.reason)

    def on_batch_begin(self, state: RunState, control: RunControl) -> None:
        if self.event.is_set():
            raise RunCancelled(self.reason)
