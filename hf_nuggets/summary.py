"""Run summaries: counts, score quantiles, a terminal histogram, and the best and worst examples."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .data.formatting import resolve_columns
from .gates import FLAGS_COLUMN, flag_line, gated_mask
from .selection import rank_order

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def score_quantiles(scores: Sequence[float]) -> dict[str, float]:
    """Quantiles of the golden scores, keyed `q0`, `q10`, ... `q100`, plus `mean`.

    Example:

    ```python
    >>> score_quantiles([0.0, 0.5, 1.0])["q50"]
    0.5
    ```
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return {}
    out = {f"q{round(q * 100)}": float(np.quantile(values, q)) for q in QUANTILES}
    out["mean"] = float(values.mean())
    return out


def histogram(scores: Sequence[float], *, bins: int = 10, width: int = 40) -> list[tuple[float, float, int]]:
    """Counts of golden scores in `bins` equal bins over [0, 1] (the last bin includes 1)."""
    counts, edges = np.histogram(np.asarray(scores, dtype=np.float64), bins=bins, range=(0.0, 1.0))
    return [(float(edges[i]), float(edges[i + 1]), int(counts[i])) for i in range(bins)]


def text_histogram(scores: Sequence[float], *, bins: int = 10, width: int = 40) -> str:
    """A terminal histogram of golden scores, one bar per bin.

    Example:

    ```python
    >>> print(text_histogram([0.1, 0.15, 0.9], bins=2, width=4))
    [0.0, 0.5)  ████ 2
    [0.5, 1.0]  ██ 1
    ```
    """
    rows = histogram(scores, bins=bins)
    top = max((count for _, _, count in rows), default=0) or 1
    lines = []
    for i, (lo, hi, count) in enumerate(rows):
        bar = "█" * round(width * count / top)
        close = "]" if i == len(rows) - 1 else ")"
        lines.append(f"[{lo:.1f}, {hi:.1f}{close}  {bar} {count}")
    return "\n".join(lines)


def _snippet(text: Any, width: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _gated(rows: Any, gates: str | Sequence[str] | None) -> np.ndarray | None:
    """The gated mask of a column dict or dataset with a `nuggets_flags` column; `None` without one."""
    names = rows.column_names if hasattr(rows, "column_names") else list(rows)
    return gated_mask(list(rows[FLAGS_COLUMN]), gates) if gates and FLAGS_COLUMN in names else None


def _chat_texts(messages: Any) -> tuple[str, str]:
    """The last assistant turn of a conversation and the user turn before it (`""` where missing)."""
    turns = [m for m in messages or [] if isinstance(m, Mapping)]
    answer_at = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].get("role") == "assistant"), len(turns))
    answer = turns[answer_at].get("content") if answer_at < len(turns) else ""
    asked = next((turns[i].get("content") for i in range(answer_at - 1, -1, -1) if turns[i].get("role") == "user"), "")
    return asked or "", answer or ""


def example_texts(
    rows: Mapping[str, Sequence[Any]], columns: Mapping[str, str | None] | None = None
) -> tuple[list[Any], list[Any]]:
    """The instruction and the answer of each row of a column dict, read through a column mapping.

    Rows are read as `GoldenScorer` reads them (`hf_nuggets.data.formatting.resolve_columns`): Alpaca-style rows give
    their instruction and output columns, renamed by `columns`; chat rows give the user turn the answer replies to,
    and the answer (the last assistant turn). Rows whose text columns are not found give empty texts.

    Args:
        rows (`dict[str, list]`): The rows, as columns.
        columns (`dict`, *optional*): Maps `instruction`, `input`, `output` (or `messages`) to column names, as
            `GoldenScorer`'s `columns` (and the `columns` of `summary.json`).

    Returns:
        `tuple[list, list]`: The instructions and the answers, one per row.

    Example:

    ```python
    >>> example_texts({"prompt": ["Hi?"], "response": ["Hello."]}, {"instruction": "prompt", "output": "response"})
    (['Hi?'], ['Hello.'])
    >>> chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
    ...         {"role": "assistant", "content": "Hello."}]
    >>> example_texts({"messages": [chat]})
    (['Hi?'], ['Hello.'])
    ```
    """
    n = len(next(iter(rows.values()), []))
    try:
        mapping = resolve_columns(list(rows), columns)
    except (KeyError, ValueError):
        return [""] * n, [""] * n
    if "messages" in mapping:
        pairs = [_chat_texts(messages) for messages in rows[mapping["messages"]]]
        return [asked for asked, _ in pairs], [answer for _, answer in pairs]
    return list(rows[mapping["instruction"]]), list(rows[mapping["output"]])


def best_and_worst(
    rows: dict[str, list],
    *,
    k: int = 5,
    text_columns: Sequence[str] = ("instruction", "output"),
    gates: str | Sequence[str] | None = "all",
    columns: Mapping[str, str | None] | None = None,
):
    """The `k` best and `k` worst rows of a scored column dict, as lists of dicts with rank, text and flags.

    Each dict holds the row's `text_columns` as they are, and its `instruction` and `output` read through the column
    mapping `columns` (see `example_texts`). Rows flagged by a chosen gate are never among the best and come first
    among the worst.
    """
    scores = rows["golden_score"]
    gains = rows.get("nuggets_gain") or [0.0] * len(scores)
    flags = rows.get(FLAGS_COLUMN) or [""] * len(scores)
    gated = _gated(rows, gates)
    order = rank_order(scores, gains, gated)
    names = [c for c in text_columns if c in rows]
    instructions, outputs = example_texts(rows, columns)

    def pick(indices):
        return [
            {
                "row": int(i),
                "golden_score": scores[i],
                "nuggets_gain": gains[i],
                "flags": flags[i],
                **{c: rows[c][i] for c in names},
                "instruction": instructions[i],
                "output": outputs[i],
            }
            for i in indices
        ]

    best = [i for i in order if gated is None or not gated[i]][:k]
    return pick(best), pick(order[::-1][:k])


def describe_tasks(record: Mapping[str, Any] | None) -> str:
    """Where a run's tasks came from, from the `tasks` record of `summary.json` (`""` without one).

    The text follows "m tasks; " in the dataset card. A local task file is named by its file name only.

    Example:

    ```python
    >>> describe_tasks({"source": "shipped", "count": 16})
    'the task set shipped with hf-nuggets'
    >>> made = {"sample_size": 40, "rows_available": 300, "seed": 0, "near_duplicates": 1, "selector": "kcenter",
    ...         "gated": {"rows": 3, "by_gate": {"empty": 1, "placeholder": 2, "unaligned": 0}}, "rows": [5, 17]}
    >>> print(describe_tasks({"source": "auto", "count": 2, "provenance": made}))
    drawn from the scored data itself (--tasks auto): a random sample of 40 of its 300 rows (seed 0), less 3 rows
    stopped by the gates (empty 1, placeholder 2) and 1 near-duplicate, chosen by quality, then kcenter diversity. The
    rows chosen as tasks stay among the scored candidates; each meets itself as one of the tasks, which can add 1/2
    to its golden score and lifts its mean gain. Rows chosen: 5, 17.
    ```
    """
    if not record:
        return ""
    source, count = record.get("source"), record.get("count")
    if source == "shipped":
        return "the task set shipped with hf-nuggets"
    if source == "given":
        return "passed to the scorer in memory"
    if source != "auto":
        from .publish.card import public_name

        return f"from {public_name(source)}"
    made = record.get("provenance") or {}
    gated = made.get("gated") or {}
    gates = ", ".join(f"{name} {n}" for name, n in (gated.get("by_gate") or {}).items() if n)
    dups = made.get("near_duplicates", 0)
    return (
        f"drawn from the scored data itself (--tasks auto): a random sample of {made.get('sample_size')} of its "
        f"{made.get('rows_available')} rows (seed {made.get('seed')}), less {gated.get('rows', 0)} rows stopped by "
        "the gates" + (f" ({gates})" if gates else "") + f" and {dups} near-duplicate{'' if dups == 1 else 's'}, "
        f"chosen by quality, then {made.get('selector')} diversity. The rows chosen as tasks stay among the scored "
        f"candidates; each meets itself as one of the tasks, which can add 1/{count} to its golden score and lifts "
        "its mean gain. Rows chosen: " + ", ".join(str(r) for r in made.get("rows", [])) + "."
    )


def redundancy_line(selection: Mapping[str, Any] | None) -> str:
    """One line for people on the rows a diverse top skipped as redundant (`""` for a plain top).

    Reads the `selection` record of `summary.json` (see `hf_nuggets.run.outputs.selection_record`).

    Example:

    ```python
    >>> lsh = {"method": "lsh", "n_bits_per_table": 11, "n_tables": 15, "recall_at_threshold": 0.951}
    >>> record = {"top_percent": 5, "rows_selected": 15, "min_distance": 0.1, "rows_redundant": 4, "neighbours": lsh}
    >>> print(redundancy_line(record))
    Diverse top 5%: 15 rows kept, 4 rows skipped as redundant (cosine distance below 0.1 to a better kept row;
    neighbours by SimHash LSH, 11 bits x 15 tables, recall 0.951 at the threshold).
    ```
    """
    if not selection or selection.get("min_distance") is None:
        return ""
    neighbours = selection.get("neighbours") or {}
    if neighbours.get("method") == "lsh":
        how = (
            f"neighbours by SimHash LSH, {neighbours['n_bits_per_table']} bits x {neighbours['n_tables']} tables, "
            f"recall {neighbours['recall_at_threshold']:.3g} at the threshold"
        )
    else:
        how = "neighbours by exact search"
    skipped = selection.get("rows_redundant", 0)
    return (
        f"Diverse top {selection['top_percent']:g}%: {selection['rows_selected']} rows kept, {skipped} "
        f"row{'' if skipped == 1 else 's'} skipped as redundant (cosine distance below {selection['min_distance']:g} "
        f"to a better kept row; {how})."
    )


def format_summary(
    summary: dict[str, Any],
    rows: dict[str, list],
    *,
    k: int = 5,
    width: int = 70,
    gates: str | Sequence[str] | None = "all",
    columns: Mapping[str, str | None] | None = None,
) -> str:
    """Human-readable report of a run: counts, flagged rows, histogram, and the best and worst examples.

    The examples are read through the column mapping `columns`, else the one the summary recorded (see
    `example_texts`).
    """
    lines = [
        f"Scored {summary['rows_scored']} of {summary['rows_total']} rows against {summary['num_tasks']} tasks "
        f"with {summary['model']} in {summary['timings']['scoring_s']:.1f} s.",
    ]
    if summary.get("stopped_early"):
        lines.append(f"Stopped at the time budget ({summary['max_seconds']} s); the other rows were not scored.")
    if (summary.get("tasks") or {}).get("source") == "auto":
        lines.append(f"Tasks: {summary['tasks']['count']}, " + describe_tasks(summary["tasks"]))
    quant = summary.get("quantiles", {})
    if quant:
        lines.append("Golden score: mean {mean:.3f}, median {q50:.3f}, 10% {q10:.3f}, 90% {q90:.3f}".format(**quant))
        if redundancy := redundancy_line(summary.get("selection")):
            lines.append(redundancy)
        gated = _gated(rows, gates)
        scores = np.asarray(rows["golden_score"], dtype=np.float64)
        if gated is not None:
            note = " (never selected; listed first among the worst)." if gated.any() else ""
            lines.append(flag_line(rows[FLAGS_COLUMN], gates) + note)
            scores = scores[~gated]
        title = "Golden-score histogram" + (" of the rows not flagged:" if gated is not None else ":")
        lines += ["", title, text_histogram(scores)]
        columns = columns if columns is not None else summary.get("columns")
        best, worst = best_and_worst(rows, k=k, gates=gates, columns=columns)
        for title, group in (("Best", best), ("Worst", worst)):
            lines += ["", f"{title} {len(group)}:"]
            for item in group:
                text, answer = _snippet(item["instruction"], width), _snippet(item["output"], width // 2)
                flags = f"  [{item['flags']}]" if item["flags"] else ""
                lines.append(
                    f"  row {item['row']:>4}  GS {item['golden_score']:.3f}  gain {item['nuggets_gain']:+.3f}{flags}  "
                    f"{text}" + (f"  -> {answer}" if text or answer else "")
                )
    truncation = summary.get("truncation", {})
    if any(truncation.values()):
        lines += ["", "Truncated: " + ", ".join(f"{k} {v}" for k, v in truncation.items())]
    return "\n".join(lines)


def bottom_half_chance(num_rows: int, num_marked: int, in_bottom: int) -> float:
    """Chance that a random ranking puts at least `in_bottom` of `num_marked` rows in the bottom half.

    The bottom half holds ``num_rows // 2`` places (the rows ranked at or below the middle), so the count of marked
    rows there is hypergeometric under a random order. A small value says the ranking pushes the marked rows down
    more than chance would; a value near 0.5 says it does not.

    Args:
        num_rows (`int`): Rows ranked.
        num_marked (`int`): Rows marked (for instance as flawed).
        in_bottom (`int`): Marked rows found in the bottom half.

    Returns:
        `float`: The one-sided tail probability P(X >= `in_bottom`).

    Example:

    ```python
    >>> round(bottom_half_chance(4, 2, 2), 4)  # both marked rows in the bottom 2 of 4: 1 order in 6
    0.1667
    ```
    """
    if not 0 <= num_marked <= num_rows or not 0 <= in_bottom <= num_marked:
        raise ValueError(f"Need 0 <= in_bottom <= num_marked <= num_rows, got {in_bottom}, {num_marked}, {num_rows}.")
    places = num_rows // 2
    total = math.comb(num_rows, places)
    tail = sum(
        math.comb(num_marked, k) * math.comb(num_rows - num_marked, places - k)
        for k in range(in_bottom, min(num_marked, places) + 1)
    )
    return tail / total


def flaw_catch(scored: Any, gates: str | Sequence[str] | None = "all") -> dict[str, Any]:
    """For data with a `flaw` column (the shipped sample): which flawed rows the gates and the ranking catch.

    A flawed row is *caught* when a chosen gate flags it, or when it ranks in the bottom half of the rows no gate
    flags (by golden score, then gain). With `gates=None`, or without a `nuggets_flags` column, that is the bottom
    half of the whole ranking.

    Args:
        scored (`dict` or `datasets.Dataset`): `golden_score`, `nuggets_gain`, `flaw` and, optionally, `nuggets_flags`.
        gates (`str` or `list[str]`, *optional*, defaults to `"all"`): The gates applied.

    Returns:
        `dict`: `kinds` (kind -> `(caught, rows)`), `caught`, `flawed`, `good_gated`, `good`, and `by_score`: the
        flawed rows in the bottom half by golden score alone and the chance of at least that many under a random
        ranking (`bottom_half_chance`).

    Example:

    ```python
    >>> rows = {"golden_score": [0.9, 0.8, 0.1, 0.7], "nuggets_gain": [0.0] * 4,
    ...         "flaw": [None, "empty", None, "truncated"], "nuggets_flags": ["", "empty", "", ""]}
    >>> result = flaw_catch(rows)
    >>> result["kinds"], result["good_gated"]
    ({'empty': (1, 1), 'truncated': (0, 1)}, 0)
    ```
    """
    scores = np.asarray(scored["golden_score"], dtype=np.float64)
    gains = np.asarray(scored["nuggets_gain"], dtype=np.float64)
    flaws = list(scored["flaw"])
    gated = _gated(scored, gates)
    gated = np.zeros(len(scores), dtype=bool) if gated is None else gated
    ungated = np.flatnonzero(~gated)
    order = ungated[rank_order(scores[ungated], gains[ungated])]
    rank = {int(i): r for r, i in enumerate(order)}
    half = len(order) / 2
    caught = [bool(gated[i]) or rank[i] >= half for i in range(len(scores))]
    bad = [i for i, f in enumerate(flaws) if f]
    good = [i for i, f in enumerate(flaws) if not f]
    kinds = {
        kind: (sum(caught[i] for i in bad if flaws[i] == kind), sum(flaws[i] == kind for i in bad))
        for kind in sorted({flaws[i] for i in bad})
    }
    full = rank_order(scores, gains)
    in_bottom = sum(1 for r, i in enumerate(full) if flaws[int(i)] and r >= len(full) / 2)
    return {
        "kinds": kinds,
        "caught": sum(caught[i] for i in bad),
        "flawed": len(bad),
        "good_gated": int(sum(gated[i] for i in good)),
        "good": len(good),
        "by_score": {"in_bottom": in_bottom, "chance": bottom_half_chance(len(full), len(bad), in_bottom)},
    }


def flaw_report(scored: Any, gates: str | Sequence[str] | None = "all") -> str:
    """For data with a `flaw` column (the shipped sample): where the deliberately bad rows end up (see `flaw_catch`).

    Its last line reads ``caught: X/N flawed, Y/M good gated``.
    """
    result = flaw_catch(scored, gates)
    if not result["flawed"]:
        return "No rows marked as flawed among those scored."
    kinds = ", ".join(f"{kind} {caught}/{rows}" for kind, (caught, rows) in result["kinds"].items())
    by_score = result["by_score"]
    return (
        f"Rows marked as flawed: {result['flawed']}. Gated, or in the bottom half of the ungated ranking, by kind: "
        f"{kinds}. Good rows gated: {result['good_gated']}/{result['good']}. By golden score alone, "
        f"{by_score['in_bottom']} of {result['flawed']} flawed rows rank in the bottom half (chance of at least as "
        f"many under a random ranking: {by_score['chance']:.3g}).\n"
        f"caught: {result['caught']}/{result['flawed']} flawed, {result['good_gated']}/{result['good']} good gated"
    )
