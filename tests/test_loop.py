"""The prospecting loop: hooks see every phase and batch, stop keeps the rows done, cancel saves them as partial."""

from __future__ import annotations

import json
import threading

import pytest
from datasets import Dataset

from hf_nuggets import GoldenScorer
from hf_nuggets.run.loop import (
    PHASES,
    Batch,
    CallbackHandler,
    CancelCallback,
    RunCallback,
    RunState,
    TimeBudgetCallback,
    run_batches,
    score_rows,
)
from hf_nuggets.run.prospecting import prospect
from hf_nuggets.scoring.engine import TruncationLimits

ROWS = [
    {"instruction": f"Say {w}.", "input": "", "output": f"{w}."} for w in "red blue two fox dog sea sun cat".split()
]
TASKS = [
    {"instruction": "Name a colour.", "input": "", "output": "Green."},
    {"instruction": "Add 1+1.", "input": "", "output": "2"},
]


class Recorder(RunCallback):
    def __init__(self):
        self.events = []

    def on_phase(self, state, phase):
        self.events.append(("phase", phase))

    def on_batch_begin(self, state, control):
        self.events.append(("begin", state.rows_done, state.next_rows))

    def on_batch_end(self, state, batch, result):
        self.events.append(("end", batch.start, batch.size, len(result["golden_score"])))

    def on_run_end(self, state):
        self.events.append(("run_end", state.rows_done))


@pytest.fixture
def scorer(tiny_prospector):
    return GoldenScorer(tiny_prospector, TASKS, limits=TruncationLimits(64, 32, 32))


def test_prospect_hooks_see_every_phase_and_batch(scorer, tmp_path):
    """`prospect` runs the phases in order and calls the batch hooks once a batch, with row counts."""
    recorder = Recorder()
    scored, summary = prospect(
        Dataset.from_list(ROWS), scorer, tmp_path, batch_size=3, callbacks=[recorder], progress=False
    )
    assert [e[1] for e in recorder.events if e[0] == "phase"] == list(PHASES)
    assert [e for e in recorder.events if e[0] == "begin"] == [("begin", 0, 3), ("begin", 3, 3), ("begin", 6, 2)]
    assert [e for e in recorder.events if e[0] == "end"] == [("end", 0, 3, 3), ("end", 3, 3, 3), ("end", 6, 2, 2)]
    assert recorder.events.count(("run_end", 8)) == 1
    assert len(scored) == 8 and summary["rows_scored"] == 8


def test_score_rows_equals_the_map_transform(scorer):
    """The loop's columns equal those of `dataset.map(scorer, batched=True)` on the same rows."""
    data = Dataset.from_list(ROWS)
    looped = score_rows(data, scorer, batch_size=3)
    mapped = data.map(scorer, batched=True, batch_size=5, with_indices=True)
    assert looped["nuggets_flags"] == mapped["nuggets_flags"]
    for name in ("golden_score", "nuggets_gain", "nuggets_alignment", "nuggets_completeness"):
        assert looped[name] == pytest.approx(mapped[name], abs=1e-5, nan_ok=True), name


def test_a_hook_that_stops_keeps_the_rows_done(scorer, tmp_path):
    """`control.should_stop` ends the run normally: the rows done are written and the summary says it stopped."""

    class StopAfterFour(RunCallback):
        def on_batch_begin(self, state, control):
            control.should_stop = state.rows_done >= 4

    scored, summary = prospect(
        Dataset.from_list(ROWS), scorer, tmp_path, batch_size=2, callbacks=[StopAfterFour()], progress=False
    )
    assert len(scored) == 4 and summary["stopped_early"] is True
    assert json.loads((tmp_path / "summary.json").read_text())["rows_scored"] == 4


def test_cancel_saves_the_rows_done_as_partial(scorer, tmp_path):
    """`RunCancelled` from a hook abandons the run; the rows scored before are in `scored.partial.*`."""
    cancel = CancelCallback(reason="cancelled by the test")

    class CancelAfterFirst(RunCallback):
        def on_batch_end(self, state, batch, result):
            cancel.cancel()

    with pytest.raises(RuntimeError, match="cancelled by the test.*The 3 rows scored before are saved") as info:
        prospect(
            Dataset.from_list(ROWS),
            scorer,
            tmp_path,
            batch_size=3,
            callbacks=[CancelAfterFirst(), cancel],
            progress=False,
        )
    assert type(info.value.__cause__).__name__ == "RunCancelled"
    assert len(Dataset.from_parquet(str(tmp_path / "scored.partial.parquet"))) == 3
    assert not (tmp_path / "scored.parquet").exists()


def test_cancel_before_scoring_stops_at_the_next_phase(scorer, tmp_path):
    """A cancel set before the run starts stops it at its first phase, before the model work."""
    event = threading.Event()
    event.set()
    with pytest.raises(Exception, match="cancelled"):
        prospect(Dataset.from_list(ROWS), scorer, tmp_path, callbacks=[CancelCallback(event)], progress=False)
    assert not (tmp_path / "scored.parquet").exists()


def test_time_budget_runs_the_first_batch_then_stops():
    """With no time left, the budget still lets the first batch run, then stops before the second."""
    budget = TimeBudgetCallback(1e-9)
    handler, state = CallbackHandler([budget]), RunState(rows_total=6)
    handler.phase(state, "scoring")
    batches = [Batch(0, 3), Batch(3, 3)]
    done = [b.start for b, _ in run_batches(batches, lambda b: {}, handler, state)]
    assert done == [0] and state.stopped_early and state.rows_done == 3


def test_callbacks_must_be_run_callbacks(scorer, tmp_path):
    """Anything else in `callbacks` is refused with its position."""
    with pytest.raises(TypeError, match=r"`callbacks\[0\]` must be a `RunCallback`, got function"):
        prospect(Dataset.from_list(ROWS), scorer, tmp_path, callbacks=[lambda: None], progress=False)


def test_hooks_see_the_tasks_before_the_zero_shot_scores(scorer, tmp_path):
    """`state.tasks` holds the task set when the `zero_shot` phase begins (the Space shows it from there)."""
    seen = {}

    class Tasks(RunCallback):
        def on_phase(self, state, phase):
            seen.setdefault(phase, [t.instruction for t in state.tasks])

    prospect(Dataset.from_list(ROWS[:2]), scorer, tmp_path, callbacks=[Tasks()], progress=False)
    assert seen["tasks"] == [] and seen["zero_shot"] == [t["instruction"] for t in TASKS]


def test_a_cancel_once_every_row_is_scored_keeps_the_run(scorer, tmp_path):
    """A cancel that arrives after the last batch does not throw away a finished run: it is written in full."""
    cancel = CancelCallback()

    class CancelAtTheEnd(RunCallback):
        def on_batch_end(self, state, batch, result):
            if state.rows_done == len(ROWS):
                cancel.cancel()

    scored, _ = prospect(
        Dataset.from_list(ROWS), scorer, tmp_path, callbacks=[CancelAtTheEnd(), cancel], progress=False
    )
    assert len(scored) == len(ROWS) and (tmp_path / "scored.parquet").exists()


def test_score_rows_on_its_own_opens_the_scoring_phase(scorer):
    """Called outside `prospect` (the Trainer callback does), the loop still tells its hooks that scoring begins."""
    recorder = Recorder()
    score_rows(Dataset.from_list(ROWS[:2]), scorer, callbacks=[recorder])
    assert recorder.events[0] == ("phase", "scoring")
