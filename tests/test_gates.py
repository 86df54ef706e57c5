"""The sanity gates on hand-made rows, and how selection honours them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from datasets import Dataset

from hf_nuggets import select_top
from hf_nuggets.gates import (
    ALIGNMENT_GRID,
    ALIGNMENT_THRESHOLD,
    COMPLETENESS_GRID,
    COMPLETENESS_THRESHOLD,
    GATE_NAMES,
    PLACEHOLDERS,
    GateSettings,
    calibrate_thresholds,
    check_gates,
    flag_counts,
    flag_line,
    gated_mask,
    row_flags,
)
from hf_nuggets.selection import rank_order, top_indices

NAN = math.nan
GOOD = dict(alignment=0.9, completeness=-1.0)


def test_thresholds_and_placeholders_are_pinned():
    """The documented defaults: alignment 0.1 nats, completeness log(1e-4), and the placeholder list."""
    assert ALIGNMENT_THRESHOLD == 0.1
    assert COMPLETENESS_THRESHOLD == pytest.approx(math.log(1e-4))
    assert GATE_NAMES == ("empty", "placeholder", "unaligned", "unfinished")
    assert PLACEHOLDERS == (
        "<nooutput>",
        "<no output>",
        "no output",
        "<noinput>",
        "n/a",
        "na",
        "none",
        "null",
        "nan",
        "-",
        "--",
        "...",
        "tbd",
        "todo",
        "[deleted]",
        "[removed]",
    )


@pytest.mark.parametrize("answer", ["", "   ", "\n\t"])
def test_empty_gate(answer):
    """A blank answer is `empty` (and its NaN signals fire nothing else)."""
    assert row_flags(answer, NAN, NAN) == ("empty",)


@pytest.mark.parametrize("answer", ["<nooutput>", " <NoOutput> ", "N/A", "none", "...", "[deleted]"])
def test_placeholder_gate_is_case_insensitive_on_the_whole_answer(answer):
    """A whole answer from the list is a `placeholder`, whatever its case and surrounding spaces."""
    assert row_flags(answer, **GOOD) == ("placeholder",)


@pytest.mark.parametrize("answer", ["None of them.", "N/A: the sentence has no verb.", "nanometre"])
def test_placeholder_gate_needs_the_whole_answer(answer):
    """An answer that only contains a placeholder word is not one."""
    assert row_flags(answer, **GOOD) == ()


def test_unaligned_gate_is_at_or_below_the_threshold():
    """`unaligned` fires at the threshold and below, not above it, and never on NaN."""
    assert row_flags("x", ALIGNMENT_THRESHOLD, -1.0) == ("unaligned",)
    assert row_flags("x", ALIGNMENT_THRESHOLD - 0.5, -1.0) == ("unaligned",)
    assert row_flags("x", ALIGNMENT_THRESHOLD + 1e-9, -1.0) == ()
    assert row_flags("x", NAN, -1.0) == ()


def test_unfinished_gate_is_strictly_below_the_threshold():
    """`unfinished` fires strictly below the threshold, and never on NaN (an answer cut by the token limit)."""
    assert row_flags("x", 0.9, COMPLETENESS_THRESHOLD - 1e-9) == ("unfinished",)
    assert row_flags("x", 0.9, COMPLETENESS_THRESHOLD) == ()
    assert row_flags("x", 0.9, NAN) == ()


def test_gate_settings_change_the_rules():
    """Custom thresholds and placeholders replace the defaults; 'auto' must be resolved before use."""
    settings = GateSettings(alignment_threshold=-1.0, completeness_threshold=-50.0, placeholders=("Pass",))
    assert row_flags("pass", -0.5, -20.0, settings) == ("placeholder",)
    assert row_flags("<nooutput>", -0.5, -20.0, settings) == ()
    with pytest.raises(ValueError, match="`alignment_threshold` must be a number or 'auto'"):
        GateSettings(alignment_threshold=NAN)
    auto = GateSettings(completeness_threshold=-3.0)
    assert not auto.resolved and auto.resolve(0.4, -99.0) == GateSettings(0.4, -3.0)
    with pytest.raises(ValueError, match="'auto' threshold left"):
        row_flags("x", 0.0, 0.0, auto)


def test_calibration_rule_is_the_loosest_grid_value_gating_no_intact_answer():
    """The rule picks the loosest grid threshold under every intact answer, and the strictest when none is."""
    assert ALIGNMENT_GRID[0] == -1.0 and ALIGNMENT_GRID[-1] == 1.0 and len(ALIGNMENT_GRID) == 21
    assert [round(math.exp(t), 14) for t in COMPLETENESS_GRID] == [10.0**-k for k in range(1, 13)]
    a, c = calibrate_thresholds([0.31, 0.8], [-2.2, -4.0])
    assert a == 0.3 and c == pytest.approx(math.log(1e-2))  # 0.3 < 0.31; log(1e-2) = -4.6 <= -4.0
    a, c = calibrate_thresholds([0.3, 0.8], [math.log(1e-2), NAN])
    assert a == pytest.approx(0.2) and c == pytest.approx(math.log(1e-2))  # at 0.3 the first would be gated
    a, c = calibrate_thresholds([-5.0], [-80.0])
    assert a == -1.0 and c == pytest.approx(math.log(1e-12))  # nothing fits: the strictest values
    for alignment, completeness in ([0.05, 1.0, 0.37], [-9.3, -1.0, -25.0]), ([2.0], [-0.01]):
        a, c = calibrate_thresholds(alignment, completeness)
        assert not any(
            row_flags("x", al, co, GateSettings(a, c)) for al, co in zip(alignment, completeness, strict=True)
        )


def test_unknown_gate_name_lists_the_known_ones():
    """An unknown gate fails, naming the gates."""
    with pytest.raises(ValueError, match=r"Unknown gate\(s\) \['emtpy'\].*'empty', 'placeholder'"):
        check_gates(["emtpy"])
    assert check_gates("unfinished, empty") == ("empty", "unfinished")
    assert check_gates(None) is None


def test_masks_counts_and_line():
    """The mask honours only the chosen gates; the line counts rows per gate."""
    flags = ["", "empty", "unaligned,unfinished", "placeholder", "unaligned"]
    assert gated_mask(flags).tolist() == [False, True, True, True, True]
    assert gated_mask(flags, ["unaligned"]).tolist() == [False, False, True, False, True]
    assert gated_mask(flags, None).tolist() == [False] * 5
    assert flag_counts(flags) == {"empty": 1, "placeholder": 1, "unaligned": 2, "unfinished": 1}
    assert flag_line(flags) == "Flagged 4 of 5 rows: empty 1, placeholder 1, unaligned 2, unfinished 1"


def scored_table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 9, n) / 8
    gains = rng.normal(size=n)
    flags = rng.choice(["", "", "", "empty", "unaligned", "unaligned,unfinished", "placeholder"], n).tolist()
    return Dataset.from_dict({"golden_score": scores, "nuggets_gain": gains, "nuggets_flags": flags, "i": range(n)})


@pytest.mark.parametrize("percent", [5, 25, 50, 100])
@pytest.mark.parametrize("bottom", [False, True])
def test_gates_none_is_the_selection_before_gates(percent, bottom):
    """`gates=None` selects exactly what ranking by score, gain and row order alone selects."""
    ds = scored_table()
    order = np.lexsort((np.arange(len(ds)), -np.array(ds["nuggets_gain"]), -np.array(ds["golden_score"])))
    if bottom:
        order = order[::-1]
    k = max(1, min(len(ds), math.floor(len(ds) * percent / 100 + 0.5)))
    assert select_top(ds, percent, bottom=bottom, gates=None)["i"] == order[:k].tolist()


def test_gated_rows_are_never_selected_and_come_first_among_the_worst():
    """No flagged row is in any top n%; the worst list starts with every flagged row."""
    ds = scored_table()
    flagged = {i for i, f in enumerate(ds["nuggets_flags"]) if f}
    for percent in (5, 25, 50, 75, 100):
        assert not flagged & set(select_top(ds, percent)["i"])
    worst = select_top(ds, 100 * len(flagged) / len(ds), bottom=True)["i"]
    assert set(worst) == flagged


def test_chosen_gates_only():
    """`gates=["empty"]` keeps out only empty rows; an unknown gate is refused; gates need the flags column."""
    ds = scored_table()
    chosen = set(select_top(ds, 100, gates=["empty"])["i"])
    assert chosen == {i for i, f in enumerate(ds["nuggets_flags"]) if "empty" not in f}
    with pytest.raises(ValueError, match="Unknown gate"):
        select_top(ds, 5, gates=["nope"])
    bare = ds.remove_columns("nuggets_flags")
    assert select_top(bare, 50)["i"] == select_top(ds, 50, gates=None)["i"]
    with pytest.raises(KeyError, match="needs the `nuggets_flags` column"):
        select_top(bare, 50, gates=["empty"])


def test_rank_order_and_top_indices_agree():
    """`top_indices` is the head of `rank_order` with gated rows removed."""
    ds = scored_table(seed=3)
    gated = gated_mask(ds["nuggets_flags"])
    order = rank_order(ds["golden_score"], ds["nuggets_gain"], gated)
    top = top_indices(ds["golden_score"], ds["nuggets_gain"], gated, percent=100)
    assert top.tolist() == [i for i in order if not gated[i]]
