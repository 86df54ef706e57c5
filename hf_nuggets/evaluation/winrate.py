"""AlpacaEval win rates, raw and length-controlled, from pairwise preferences.

Source: Dubois et al., *Length-Controlled AlpacaEval: A Simple Way to Debias Automatic Evaluators* (2024), and the
definitions of the `alpaca-eval` package (`get_winrate`, `get_length_controlled_winrate`), re-implemented here on
numpy arrays. Guarantees: the raw metrics (`win_rate`, `standard_error`, counts, `discrete_win_rate`, `avg_length`)
follow AlpacaEval's definitions exactly; the length-controlled win rate fits the same GLM with the same
cross-validation folds, grid of `C`, loss and weights, solved to high precision: it agrees with AlpacaEval's GLM run
to tight tolerance to 1e-6 points, and with AlpacaEval's defaults (liblinear, tolerance 1e-4) to about 0.01 points.

Preferences follow AlpacaEval's convention: a float in [1, 2], the probability that the model (output 2) beats the
baseline (output 1) plus one; 2 means the model wins, 1 the baseline wins, 1.5 (or 0, the legacy code) a draw, NaN
(or `None`) a pair without a verdict, which is skipped and counted in `n_skipped`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .generation import ALPACA_EVAL_REPO

logger = logging.getLogger(__name__)

#: The GLMs of AlpacaEval 2.0, by AlpacaEval's names: which features they use and how much weight the annotations
#: of the two "gamed" (verbose and concise) baselines get when the fit is regularised towards them.
GLM_VARIANTS: dict[str, dict[str, Any]] = {
    "length_controlled_v1": {"difficulty": True, "gamed_weight": 0.2},
    "length_controlled_noreg": {"difficulty": True, "gamed_weight": None},
    "length_controlled_minimal": {"difficulty": False, "gamed_weight": None},
}
#: The grid of inverse regularisation strengths searched by cross-validation (scikit-learn's `Cs=10`).
LC_CS = np.logspace(-4, 4, 10)
#: Number of cross-validation folds of the GLM.
LC_N_SPLITS = 5
EMPTY_OUTPUT_POLICIES = ("error", "skip", "keep")


# ----------------------------------------------------------------------------------------------- preferences
def check_preferences(preferences: Sequence[float | None] | np.ndarray, *, name: str = "preferences") -> np.ndarray:
    """Validate preferences and return them as floats, with 0 (legacy draw) mapped to 1.5 and `None` to NaN.

    Args:
        preferences (`Sequence[float]`): One preference per pair, in [1, 2], 0 for a draw, NaN/`None` for a skip.
        name (`str`, *optional*, defaults to `"preferences"`): The argument name used in error messages.

    Returns:
        `np.ndarray`: float64 preferences in [1, 2] or NaN.

    Raises:
        `ValueError`: When a preference is outside [1, 2] and not 0, or is not a number.

    Example:
        ```python
        >>> check_preferences([2, 0, None, 1.25]).tolist()
        [2.0, 1.5, nan, 1.25]
        ```
    """
    values = []
    for i, value in enumerate(preferences):
        if value is None:
            values.append(math.nan)
            continue
        if isinstance(value, (str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"`{name}` must hold numbers, got {value!r} ({type(value).__name__}) at index {i}.")
        values.append(float(value))
    array = np.asarray(values, dtype=np.float64)
    bad = ~np.isnan(array) & (array != 0) & ((array < 1) | (array > 2))
    if bad.any():
        where = np.flatnonzero(bad)
        more = f" (and {len(where) - 1} more)" if len(where) > 1 else ""
        raise ValueError(
            f"`{name}` must be in [1, 2] (2: the model wins, 1: the baseline wins, 1.5 or 0: a draw, NaN: skipped), "
            f"got {float(array[where[0]])!r} at index {where[0]}{more}."
        )
    array[array == 0] = 1.5
    return array


def _sem(values: np.ndarray) -> float:
    """Standard error of the mean with `ddof=1` (pandas' `sem`); NaN for fewer than two values."""
    if len(values) < 2:
        return math.nan
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


def head_to_head(preferences: Sequence[float | None] | np.ndarray) -> dict[str, float | int]:
    """AlpacaEval's head-to-head metrics of a list of preferences.

    `win_rate` is the mean of `preference - 1` in percent and `standard_error` its standard error (ddof 1);
    `n_wins`/`n_wins_base` count preferences above/below 1.5; `n_draws` counts exact draws (1.5 or 0);
    `discrete_win_rate` rounds each preference to a win, a loss or (exactly 1.5) a draw first. Skipped pairs (NaN)
    are left out of everything and counted in `n_skipped`.

    Args:
        preferences (`Sequence[float]`): One preference per pair (see `check_preferences`).

    Returns:
        `dict`: `win_rate`, `standard_error`, `n_wins`, `n_wins_base`, `n_draws`, `n_total`, `discrete_win_rate`,
        `n_skipped`.

    Raises:
        `ValueError`: When a preference is invalid, or no pair has a preference.

    Example:
        ```python
        >>> out = head_to_head([2, 1, 1.5, 1.75])
        >>> out["win_rate"], out["n_wins"], out["n_wins_base"], out["n_draws"], out["discrete_win_rate"]
        (56.25, 2, 1, 1, 62.5)
        ```
    """
    prefs = check_preferences(preferences)
    valid = prefs[~np.isnan(prefs)]
    if len(valid) == 0:
        raise ValueError(f"No pair has a preference: all {len(prefs)} pairs were skipped (NaN), nothing to average.")
    wins = valid - 1.0
    discrete = np.where(valid == 1.5, 0.5, np.where(valid > 1.5, 1.0, 0.0))
    return {
        "win_rate": float(np.mean(wins) * 100),
        "standard_error": _sem(wins) * 100,
        "n_wins": int(np.sum(wins > 0.5)),
        "n_wins_base": int(np.sum(wins < 0.5)),
        "n_draws": int(np.sum(valid == 1.5)),
        "n_total": len(valid),
        "discrete_win_rate": float(np.mean(discrete) * 100),
        "n_skipped": int(len(prefs) - len(valid)),
    }


# ---------------------------------------------------------------------------------------- length-controlled GLM
def _logistic(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _objective(w: np.ndarray, X: np.ndarray, y: np.ndarray, s: np.ndarray, lam: float) -> float:
    z = X @ w
    return float(np.sum(s * (np.logaddexp(0.0, z) - y * z)) + lam * np.abs(w).sum())


def _fit_l1_logistic(
    X: np.ndarray, y: np.ndarray, s: np.ndarray, C: float, *, max_iter: int = 200, tol: float = 1e-13
) -> np.ndarray:
    """L1-penalised logistic regression with soft labels, no intercept, by proximal Newton.

    Minimises `C * sum_i s_i * CE(y_i, sigmoid(x_i . w)) + ||w||_1` (liblinear's objective with sample weights, on
    the rows duplicated once per label); each Newton step solves its L1 sub-problem by coordinate descent.
    """
    n_features = X.shape[1]
    lam = 1.0 / C
    w = np.zeros(n_features)
    value = _objective(w, X, y, s, lam)
    for _ in range(max_iter):
        q = _logistic(X @ w)
        grad = X.T @ (s * (q - y))
        hess = (X * (s * q * (1 - q))[:, None]).T @ X
        target = w.copy()  # coordinate descent on the quadratic model, in the new point `target`
        for _ in range(500):
            biggest = 0.0
            for j in range(n_features):
                if hess[j, j] <= 1e-300:
                    new = 0.0 if abs(grad[j]) <= lam else target[j]
                else:
                    slope = grad[j] + hess[j] @ (target - w) - hess[j, j] * (target[j] - w[j])
                    u = w[j] - slope / hess[j, j]
                    new = math.copysign(max(abs(u) - lam / hess[j, j], 0.0), u)
                biggest = max(biggest, abs(new - target[j]))
                target[j] = new
            if biggest <= 1e-16 * (1 + np.abs(target).max()):
                break
        step = target - w
        decrease = grad @ step + lam * (np.abs(target).sum() - np.abs(w).sum())
        if np.abs(step).max() <= tol * (1 + np.abs(w).max()) or decrease >= 0:
            break
        if -decrease <= 1e-13 * (1 + abs(value)):  # below the objective's rounding noise: a full Newton step
            w = target
            value = _objective(w, X, y, s, lam)
            continue
        t, accepted = 1.0, False
        for _ in range(60):  # backtracking (Armijo) line search
            candidate = w + t * step
            new_value = _objective(candidate, X, y, s, lam)
            if new_value <= value + 1e-4 * t * decrease:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        w, value = candidate, new_value
    else:
        warnings.warn(f"The length-controlled GLM did not converge in {max_iter} Newton steps.", stacklevel=3)
    return w


def _cv_select_c(X: np.ndarray, y: np.ndarray, s: np.ndarray, Cs: np.ndarray, n_splits: int) -> tuple[float, list]:
    """Pick `C` by grouped K-fold cross-validation on the weighted soft-label log loss (first best on ties).

    Folds are those of scikit-learn's `GroupKFold` with one group per annotation: row `j` of `m` goes to fold
    `(m - 1 - j) % n_splits`.
    """
    m = len(y)
    folds = (m - 1 - np.arange(m)) % n_splits
    totals = []
    for C in Cs:
        total = 0.0
        for k in range(n_splits):
            train, test = folds != k, folds == k
            w = _fit_l1_logistic(X[train], y[train], s[train], C)
            q = np.clip(_logistic(X[test] @ w), 1e-15, 1 - 1e-15)
            loss = -(y[test] * np.log(q) + (1 - y[test]) * np.log(1 - q)) * s[test]
            total -= float(np.mean(loss))
        totals.append(total)
    return float(Cs[int(np.argmax(totals))]), totals


def _resolve_variant(variant: str, has_difficulty: bool, has_gamed: bool) -> str:
    if variant == "auto":
        if has_difficulty and has_gamed:
            return "length_controlled_v1"
        return "length_controlled_noreg" if has_difficulty else "length_controlled_minimal"
    if variant not in GLM_VARIANTS:
        raise ValueError(f"`lc_variant` must be 'auto' or one of {sorted(GLM_VARIANTS)}, got {variant!r}.")
    if GLM_VARIANTS[variant]["difficulty"] and not has_difficulty:
        raise ValueError(f"`lc_variant` {variant!r} needs `instruction_difficulty` (one float per instruction).")
    if GLM_VARIANTS[variant]["gamed_weight"] and not has_gamed:
        raise ValueError(
            f"`lc_variant` {variant!r} regularises towards AlpacaEval's gamed baselines: pass `gamed_annotations` "
            "(columns preference in [0, 1], std_delta_len, instruction_difficulty, as in AlpacaEval's "
            "`df_gamed.csv`), or use 'length_controlled_noreg'."
        )
    return variant


def _column(data: Any, key: str) -> np.ndarray:
    try:
        return np.asarray(list(data[key]), dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"`gamed_annotations` needs a numeric column {key!r} ({err}).") from err


def length_controlled_winrate(
    preferences: Sequence[float | None] | np.ndarray,
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    instruction_difficulty: Sequence[float] | None = None,
    variant: str = "auto",
    gamed_annotations: Mapping[str, Sequence[float]] | Any | None = None,
) -> dict[str, Any]:
    """The length-controlled win rate of AlpacaEval 2.0.

    Fits `P(model wins) = sigmoid(a * tanh(std_delta_len) + b * instruction_difficulty + c)` (L1 penalty, `C`
    chosen by 5-fold grouped cross-validation over `logspace(-4, 4, 10)`) on the pairs with a preference, where
    `std_delta_len` is the baseline's length minus the model's, in characters, divided by its standard deviation
    over all pairs; then averages the prediction with no length difference over all pairs.

    Args:
        preferences (`Sequence[float]`): One preference per pair (see `check_preferences`).
        predictions (`Sequence[str]`): The model's outputs (AlpacaEval's `output_2`).
        references (`Sequence[str]`): The baseline's outputs (`output_1`).
        instruction_difficulty (`Sequence[float]`, *optional*): One difficulty per pair (AlpacaEval's
            `instruction_difficulty.csv` for its 805 instructions).
        variant (`str`, *optional*, defaults to `"auto"`): A name of `GLM_VARIANTS`; `"auto"` takes
            `length_controlled_v1` with difficulty and gamed annotations, `length_controlled_noreg` with difficulty
            only, else `length_controlled_minimal`.
        gamed_annotations (`Mapping`, *optional*): AlpacaEval's annotations of its gamed baselines (`df_gamed.csv`
            rows: `preference` in [0, 1], `std_delta_len`, `instruction_difficulty`), for `length_controlled_v1`.

    Returns:
        `dict`: `length_controlled_winrate` and `lc_standard_error` (percent), `lc_variant`, the chosen `lc_C` and
        the fitted `lc_weights`. Both numbers are NaN when fewer than 5 pairs have a preference or all pairs have
        the same length difference; `lc_note` then says why (and is logged as a warning).
    """
    prefs = check_preferences(preferences)
    n = len(prefs)
    if len(predictions) != n or len(references) != n:
        raise ValueError(
            f"`preferences`, `predictions` and `references` must have the same length, got {n}, {len(predictions)} "
            f"and {len(references)}."
        )
    difficulty = None if instruction_difficulty is None else np.asarray(instruction_difficulty, dtype=np.float64)
    if difficulty is not None and difficulty.shape != (n,):
        raise ValueError(f"`instruction_difficulty` must have one value per pair ({n}), got shape {difficulty.shape}.")
    name = _resolve_variant(variant, difficulty is not None, gamed_annotations is not None)
    spec = GLM_VARIANTS[name]
    delta = np.array([len(r) for r in references], dtype=np.float64) - np.array([len(p) for p in predictions])
    scale = np.std(delta, ddof=1) if n > 1 else 0.0
    valid = ~np.isnan(prefs)
    if valid.sum() < LC_N_SPLITS or not scale > 0:
        why = (
            f"only {int(valid.sum())} pair(s) have a preference"
            if valid.sum() < LC_N_SPLITS
            else "every pair has the same length difference"
        )
        note = (
            f"The length-controlled win rate needs at least {LC_N_SPLITS} pairs with a preference, and pairs whose "
            f"outputs differ in length by different amounts; {why}, so it is NaN."
        )
        logger.warning(note)
        return {
            "length_controlled_winrate": math.nan,
            "lc_standard_error": math.nan,
            "lc_variant": name,
            "lc_note": note,
        }

    def design(tanh_len: np.ndarray, diff: np.ndarray | None, not_gamed: float) -> np.ndarray:
        columns = [tanh_len] + ([diff] if spec["difficulty"] else []) + [np.full(len(tanh_len), not_gamed)]
        return np.column_stack(columns)

    X = design(np.tanh(delta / scale), difficulty, 1.0)
    y, weight = prefs - 1.0, np.ones(n)
    if spec["gamed_weight"]:
        gamed_y = _column(gamed_annotations, "preference")
        gamed_X = design(
            np.tanh(_column(gamed_annotations, "std_delta_len")),
            _column(gamed_annotations, "instruction_difficulty"),
            0.0,
        )
        X = np.vstack([gamed_X, X])
        y = np.concatenate([gamed_y, y])
        # AlpacaEval splits the regularisation weight between its two gamed baselines
        weight = np.concatenate([np.full(len(gamed_y), spec["gamed_weight"] / 2), weight])
    train = ~np.isnan(y)
    C, _ = _cv_select_c(X[train], y[train], weight[train], LC_CS, LC_N_SPLITS)
    w = _fit_l1_logistic(X[train], y[train], weight[train], C)

    X_test = design(np.zeros(n), difficulty, 1.0)
    predicted = _logistic(X_test @ w)
    names = (
        ["tanh_std_delta_len"] + (["instruction_difficulty"] if spec["difficulty"] else []) + ["not_gamed_baseline"]
    )
    return {
        "length_controlled_winrate": float(np.mean(predicted) * 100),
        "lc_standard_error": _sem(predicted) * 100,
        "lc_variant": name,
        "lc_C": C,
        "lc_weights": dict(zip(names, w.tolist(), strict=True)),
    }


# --------------------------------------------------------------------------------------------------- metrics
def compute_winrate(
    predictions: Sequence[str],
    references: Sequence[str],
    preferences: Sequence[float | None] | np.ndarray,
    *,
    instruction_difficulty: Sequence[float] | None = None,
    lc_variant: str = "auto",
    gamed_annotations: Mapping[str, Sequence[float]] | Any | None = None,
    length_controlled: bool = True,
) -> dict[str, Any]:
    """All of AlpacaEval's leaderboard numbers for one model against one baseline, from preferences.

    Args:
        predictions (`Sequence[str]`): The model's outputs.
        references (`Sequence[str]`): The baseline's outputs, aligned with `predictions`.
        preferences (`Sequence[float]`): One preference per pair (see `check_preferences`).
        instruction_difficulty (`Sequence[float]`, *optional*): See `length_controlled_winrate`.
        lc_variant (`str`, *optional*, defaults to `"auto"`): See `length_controlled_winrate`.
        gamed_annotations (`Mapping`, *optional*): See `length_controlled_winrate`.
        length_controlled (`bool`, *optional*, defaults to `True`): Also fit the length-controlled GLM.

    Returns:
        `dict`: the `head_to_head` metrics, `avg_length` (the integer part of the model's mean output length in
        characters), and with `length_controlled`, `length_controlled_winrate`, `lc_standard_error`, `lc_variant`
        (and `lc_note`, why, when the length-controlled win rate is NaN).

    Example:
        ```python
        >>> out = compute_winrate(["a", "bb", "c"], ["aa", "b", "c"], [2, 1, 1.5], length_controlled=False)
        >>> out["win_rate"], out["n_total"], out["avg_length"]
        (50.0, 3, 1)
        ```
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"`predictions` and `references` must have the same length, got {len(predictions)} and {len(references)}."
        )
    if len(preferences) != len(predictions):
        raise ValueError(
            f"`preferences` must have one value per prediction ({len(predictions)}), got {len(preferences)}."
        )
    out: dict[str, Any] = head_to_head(preferences)
    out["avg_length"] = int(np.mean([len(p) for p in predictions])) if len(predictions) else 0
    if length_controlled:
        lc = length_controlled_winrate(
            preferences,
            predictions,
            references,
            instruction_difficulty=instruction_difficulty,
            variant=lc_variant,
            gamed_annotations=gamed_annotations,
        )
        out.update(
            {k: lc[k] for k in ("length_controlled_winrate", "lc_standard_error", "lc_variant", "lc_note") if k in lc}
        )
    return out


def _empty_rows(texts: Sequence[str], name: str) -> list[int]:
    rows = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"`{name}` must hold strings, got {type(text).__name__} at index {i}.")
        if not text.strip():
            rows.append(i)
    return rows


def alpaca_eval_winrate(
    predictions: Sequence[str],
    references: Sequence[str],
    instructions: Sequence[str] | None = None,
    *,
    judge: str | Callable = "precomputed",
    preferences: Sequence[float | None] | None = None,
    instruction_difficulty: Sequence[float] | None = None,
    lc_variant: str = "auto",
    gamed_annotations: Mapping[str, Sequence[float]] | Any | None = None,
    length_controlled: bool = True,
    empty_outputs: str = "error",
    judge_kwargs: Mapping[str, Any] | None = None,
    generator: str = "model",
    baseline: str = "baseline",
    return_annotations: bool = False,
) -> dict[str, Any]:
    """Judge model outputs against baseline outputs and compute AlpacaEval's win rates (what the metric runs).

    Args:
        predictions (`Sequence[str]`): The model's outputs.
        references (`Sequence[str]`): The baseline's outputs, aligned with `predictions`.
        instructions (`Sequence[str]`, *optional*): The instructions; needed by the `local` and `openai` judges.
        judge (`str` or callable, *optional*, defaults to `"precomputed"`): `"precomputed"` (pass `preferences`),
            `"local"`, `"openai"`, or a judge object from `hf_nuggets.evaluation.judges`.
        preferences (`Sequence[float]`, *optional*): The preferences, for `judge="precomputed"`.
        instruction_difficulty (`Sequence[float]`, *optional*): See `length_controlled_winrate`.
        lc_variant (`str`, *optional*, defaults to `"auto"`): See `length_controlled_winrate`.
        gamed_annotations (`Mapping`, *optional*): See `length_controlled_winrate`.
        length_controlled (`bool`, *optional*, defaults to `True`): Also fit the length-controlled GLM.
        empty_outputs (`str`, *optional*, defaults to `"error"`): What to do with empty (or blank) outputs:
            `"error"` raises, `"skip"` gives those pairs no preference (counted in `n_skipped`), `"keep"` judges or
            counts them as they are.
        judge_kwargs (`Mapping`, *optional*): Arguments of the judge (`hf_nuggets.evaluation.judges.get_judge`).
        generator (`str`, *optional*, defaults to `"model"`): The model's name in the annotations.
        baseline (`str`, *optional*, defaults to `"baseline"`): The baseline's name in the annotations.
        return_annotations (`bool`, *optional*, defaults to `False`): Add `annotations`, AlpacaEval-style records.

    Returns:
        `dict`: The metrics of `compute_winrate`, plus `annotations` when asked.

    Raises:
        `ValueError`: On inputs of different lengths, empty outputs (with `empty_outputs="error"`), invalid
        preferences, or a judge that needs what is missing.
    """
    from .judges import get_judge

    n = len(predictions)
    for name, values in (("references", references), ("instructions", instructions)):
        if values is not None and len(values) != n:
            raise ValueError(f"`predictions` and `{name}` must have the same length, got {n} and {len(values)}.")
    if empty_outputs not in EMPTY_OUTPUT_POLICIES:
        raise ValueError(f"`empty_outputs` must be one of {EMPTY_OUTPUT_POLICIES}, got {empty_outputs!r}.")
    empty = sorted(set(_empty_rows(predictions, "predictions")) | set(_empty_rows(references, "references")))
    if empty and empty_outputs == "error":
        raise ValueError(
            f"{len(empty)} pair(s) have an empty output (rows {empty[:10]}{'...' if len(empty) > 10 else ''}); "
            "generate them again, or pass `empty_outputs='skip'` to leave them out (counted in `n_skipped`) or "
            "`empty_outputs='keep'` to judge them as they are."
        )
    skip = set(empty) if empty_outputs == "skip" else set()
    if empty:
        logger.warning("%d pair(s) have an empty output; empty_outputs=%r.", len(empty), empty_outputs)

    reasons: list[str | None] = [None] * n
    if judge == "precomputed":
        if preferences is None:
            raise ValueError("`judge='precomputed'` needs `preferences` (one float in [1, 2] per pair).")
        if len(preferences) != n:
            raise ValueError(f"`preferences` must have one value per prediction ({n}), got {len(preferences)}.")
        prefs = check_preferences(preferences)
        annotator = "precomputed"
    else:
        if preferences is not None:
            raise ValueError(f"`preferences` are only read with `judge='precomputed'`, not with judge={judge!r}.")
        if instructions is None:
            raise ValueError(f"The {judge!r} judge needs `instructions` (one per pair).")
        judge_obj = get_judge(judge, **dict(judge_kwargs or {})) if isinstance(judge, str) else judge
        keep = [i for i in range(n) if i not in skip]
        result = judge_obj(
            [instructions[i] for i in keep], [predictions[i] for i in keep], [references[i] for i in keep]
        )
        prefs = np.full(n, math.nan)
        prefs[keep] = result.preferences
        for i, reason in zip(keep, result.reasons, strict=True):
            reasons[i] = reason
        annotator = getattr(judge_obj, "name", type(judge_obj).__name__)
    prefs = prefs.copy()
    for i in skip:
        prefs[i], reasons[i] = math.nan, "empty output"
    skipped = [r for r in reasons if r]
    if skipped:
        counts: dict[str, int] = {}
        for r in skipped:
            counts[r] = counts.get(r, 0) + 1
        logger.warning("Skipped %d of %d pairs: %s", len(skipped), n, counts)

    out = compute_winrate(
        predictions,
        references,
        prefs,
        instruction_difficulty=instruction_difficulty,
        lc_variant=lc_variant,
        gamed_annotations=gamed_annotations,
        length_controlled=length_controlled,
    )
    if return_annotations:
        out["annotations"] = [
            {
                "instruction": None if instructions is None else instructions[i],
                "output_1": references[i],
                "output_2": predictions[i],
                "generator_1": baseline,
                "generator_2": generator,
                "annotator": annotator,
                "preference": None if math.isnan(prefs[i]) else float(prefs[i]),
                **({"skip_reason": reasons[i]} if reasons[i] else {}),
            }
            for i in range(n)
        ]
    return out


def winrate_metric_path() -> str:
    """The folder of the `evaluate` metric shipped in the package, for `evaluate.load(winrate_metric_path())`.

    Returns:
        `str`: The path of `hf_nuggets/metrics/alpaca_eval_winrate`.

    Example:
        ```python
        >>> Path(winrate_metric_path()).name
        'alpaca_eval_winrate'
        ```
    """
    return str(Path(__file__).resolve().parent / "metrics" / "alpaca_eval_winrate")


def load_instruction_difficulty(*, revision: str | None = None, token: str | bool | None = None) -> list[float]:
    """AlpacaEval's difficulty of each of its 805 instructions, from the Hub (needs a network).

    Args:
        revision (`str`, *optional*): Revision of the `tatsu-lab/alpaca_eval` dataset repository.
        token (`str` or `bool`, *optional*): Hub token.

    Returns:
        `list[float]`: One difficulty per instruction, in the order of the AlpacaEval set.
    """
    import csv

    from huggingface_hub import hf_hub_download

    path = hf_hub_download(
        ALPACA_EVAL_REPO, "instruction_difficulty.csv", repo_type="dataset", revision=revision, token=token
    )
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return [float(row[-1]) for row in rows[1:]]
