"""Run summaries: the flawed-rows report and its chance probability."""

from __future__ import annotations

import pytest
from scipy.stats import hypergeom

from hf_nuggets.summary import bottom_half_chance, flaw_catch, flaw_report


@pytest.mark.parametrize("num_rows", [2, 7, 10, 80, 301])
def test_bottom_half_chance_matches_scipy_hypergeometric_tail(num_rows):
    """P(X >= k) for X ~ Hypergeometric(rows, marked, rows // 2) agrees with scipy for every marked count and k."""
    for marked in range(0, num_rows + 1, max(1, num_rows // 9)):
        for k in range(marked + 1):
            expected = hypergeom.sf(k - 1, num_rows, marked, num_rows // 2)
            assert bottom_half_chance(num_rows, marked, k) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_bottom_half_chance_rejects_impossible_counts():
    with pytest.raises(ValueError, match="in_bottom <= num_marked"):
        bottom_half_chance(10, 3, 4)


def test_flaw_report_counts_each_kind_in_the_bottom_half():
    """Six rows, ranked by golden score then gain: rows 4 and 5 (a `<nooutput>` and an empty one) are last."""
    scored = {
        "golden_score": [1.0, 0.75, 0.75, 0.5, 0.25, 0.25],
        "nuggets_gain": [0.3, 0.2, 0.1, 0.0, -0.1, -0.2],
        "flaw": [None, "empty_output", None, None, "nooutput", "empty_output"],
    }
    report = flaw_report(scored)
    assert "By golden score alone, 2 of 3 flawed rows rank in the bottom half" in report
    assert f"{bottom_half_chance(6, 3, 2):.3g}" in report and "0.5)" in report
    assert "by kind: empty_output 1/2, nooutput 1/1" in report
    assert report.splitlines()[-1] == "caught: 2/3 flawed, 0/3 good gated"


def test_flaw_report_counts_gated_rows_and_ranks_the_others_among_themselves():
    """A gated flawed row is caught; the others rank within the ungated rows; a gated good row is counted."""
    scored = {
        "golden_score": [1.0, 0.75, 0.75, 0.5, 0.25, 0.25],
        "nuggets_gain": [0.3, 0.2, 0.1, 0.0, -0.1, -0.2],
        "flaw": ["truncated", "empty_output", None, None, "nooutput", None],
        "nuggets_flags": ["unfinished", "", "", "", "", "unaligned"],
    }
    # Ungated rows 1..4 rank 1 > 2 > 3 > 4: rows 3 and 4 are their bottom half, so `nooutput` is caught and the empty
    # row (rank 1 of the ungated) is not.
    result = flaw_catch(scored)
    assert result["kinds"] == {"empty_output": (0, 1), "nooutput": (1, 1), "truncated": (1, 1)}
    assert (result["good_gated"], result["good"]) == (1, 3)
    assert flaw_report(scored).splitlines()[-1] == "caught: 2/3 flawed, 1/3 good gated"
    assert flaw_catch(scored, gates=None)["kinds"]["truncated"] == (0, 1)  # ranked first without gates


def test_flaw_report_without_flawed_rows():
    assert flaw_report({"golden_score": [0.5], "nuggets_gain": [0.0], "flaw": [None]}).startswith("No rows marked")


def test_run_report_shows_the_user_turn_and_the_answer_of_chat_rows():
    """The best and worst rows of chat data show the user turn and the answer (they were blank)."""
    from hf_nuggets.selection import SCORE_COLUMN
    from hf_nuggets.summary import format_summary

    rows = {
        "messages": [
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": f"Question {i}?"},
                {"role": "assistant", "content": f"Answer {i}."},
            ]
            for i in range(3)
        ],
        SCORE_COLUMN: [0.0, 0.5, 1.0],
        "nuggets_gain": [0.0, 0.0, 0.0],
    }
    summary = {"rows_scored": 3, "rows_total": 3, "num_tasks": 2, "model": "tiny", "timings": {"scoring_s": 1.0}}
    summary["quantiles"] = {"mean": 0.5, "q50": 0.5, "q10": 0.1, "q90": 0.9}
    report = format_summary(summary, rows, k=1)
    best, worst = report.split("Best 1:")[1].split("Worst 1:")
    assert "Question 2?  -> Answer 2." in best and "Question 0?  -> Answer 0." in worst
