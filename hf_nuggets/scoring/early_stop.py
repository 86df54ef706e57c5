"""Adaptive early stopping for top-n% selection: stop scoring a candidate once its fate is clear.

Each candidate's tasks are evaluated in a seeded random order (a permutation per row, from `seed` and the row
index), `chunk` tasks at a time. After `t` of the `m` tasks with `s` gains, the number of gains `K` over all tasks
follows a hypergeometric law (sampling without replacement), so the exact two-sided confidence set at level
`1 - delta` is every `K` with ``P(X <= s | K) >= delta / 2`` and ``P(X >= s | K) >= delta / 2``. The candidate stops
when the whole set lies below the running threshold `tau` (it cannot reach the top n%) or above it (it has
surely passed). `tau` is the top-n% cut of the scores seen so far; the first `warmup` rows (or `warmup_share` of
the rows) are scored in full. Options: `looks` bounds the error over a row's repeated looks (a union bound or
alpha spending), and `tie_gain` compares a row whose count interval only reaches `tau` with the cut row by mean
gain, the ranking's tie-breaker (with few tasks many rows tie on golden score at the cut).

Guarantee and its limits: for a fixed `tau` each stop is wrong with probability at most `delta` per look by default,
and at most `delta` over all of a row's looks with `looks="union"` or `"spending"`; a stop on the gain test also
needs its gain interval right, a normal approximation per stratum at the same level (so up to twice the error, and
not exact); and `tau` itself moves as rows arrive. So the benchmark reports the overlap with the exhaustive
selection rather than claiming one. Measured by replay, no model (`benchmarks/bench_scale.py --replays_only`: pairs
evaluated / top-5% overlap, pairs / top-10% overlap) on the real score matrix of the 300 shipped sample rows x 16
tasks (SmolLM2-135M, float32, H200): the default 0.81/1.00, 0.84/0.97; `delta=0.3, chunk=2, looks="union"` (chosen
by the rule in the README) 0.73/1.00, 0.80/0.97; `delta=0.1, chunk=2, looks="union", tie_gain=True` 0.73/1.00,
0.77/0.97. Few tasks give wide intervals: even knowing the final cut, certifying a row's side from its counts alone
takes 0.80 of the pairs at top 10% (one task per look), and no setting tried reached 0.50 of the pairs at a top-10%
overlap of 0.9 (the cheapest at 0.9 took 0.69, averaged over five row orders). On a generated 2000 x 100 matrix the
default takes 0.21/0.99 and 0.26/0.96. A stopped row's `golden_score` is the estimate `s / t` and its gain the mean
over evaluated tasks; `nuggets_tasks_evaluated` says how many tasks it took.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np

from ..gates import flags_to_bits, join_flags, row_flags
from ..selection import n_selected
from .engine import ScoringEngine, read_signals


@lru_cache(maxsize=65536)
def _hyper_pmf(m: int, big_k: int, t: int) -> tuple[float, ...]:
    total = math.comb(m, t)
    return tuple(math.comb(big_k, x) * math.comb(m - big_k, t - x) / total for x in range(t + 1))


@lru_cache(maxsize=65536)
def gains_interval(m: int, t: int, s: int, delta: float) -> tuple[int, int]:
    """Exact confidence interval `(K_low, K_high)` for the total gains `K` of `m` tasks after `s` in `t`.

    Example:

    ```python
    >>> gains_interval(16, 16, 5, 0.05)
    (5, 5)
    ```
    """
    candidates = range(s, s + (m - t) + 1)
    plausible = [
        k
        for k in candidates
        if sum(_hyper_pmf(m, k, t)[: s + 1]) >= delta / 2 and sum(_hyper_pmf(m, k, t)[s:]) >= delta / 2
    ]
    if not plausible:  # cannot happen for delta < 1, kept as a guard
        return s, s + (m - t)
    return plausible[0], plausible[-1]


def gain_interval(gains: np.ndarray, m: int, k_low: int, k_high: int, delta: float) -> tuple[float, float]:
    """Interval for a row's mean gain over all `m` tasks from its observed per-task `gains`, stratified by sign.

    The unseen tasks hold `K - s` gains (`K` in `[k_low, k_high]`, the count interval) and the rest losses; each
    stratum's unseen mean is bounded by a normal interval at level `delta` around its observed mean (gains stay
    positive, losses non-positive). A stratum that may have unseen tasks but fewer than two observed ones leaves the
    interval unbounded. An approximation (normal, per stratum), not an exact interval.

    Example:

    ```python
    >>> gain_interval(np.array([0.5, -0.25, 0.75, -0.5]), 4, 2, 2, 0.05)
    (0.125, 0.125)
    ```
    """
    t, s = len(gains), int(np.count_nonzero(gains > 0))
    bounds = []
    for stratum, unseen_max, floor, ceil in ((gains[gains > 0], k_high - s, 0.0, math.inf),
                                             (gains[gains <= 0], m - t - (k_low - s), -math.inf, 0.0)):  # fmt: skip
        if unseen_max <= 0:
            bounds.append((0.0, 0.0))
        elif len(stratum) < 2:
            return -math.inf, math.inf
        else:
            half = _Z(delta) * float(stratum.std(ddof=1)) / math.sqrt(len(stratum))
            mean = float(stratum.mean())
            bounds.append((max(floor, mean - half), min(ceil, mean + half)))
    (win_low, win_high), (loss_low, loss_high) = bounds
    total = float(gains.sum())
    # The mean gain is linear in the unseen wins `K - s`, so its extremes lie at the ends of the count interval.
    ends = [total + (k - s) * w + (m - t - (k - s)) * loss for k in (k_low, k_high) for w, loss in
            ((win_low, loss_low), (win_high, loss_high))]  # fmt: skip
    return min(ends[0], ends[2]) / m, max(ends[1], ends[3]) / m


LOOKS = ("each", "union", "spending")
# The options' values before they existed: left out of `settings()` so older checkpoints keep their fingerprint.
LEGACY = {"warmup_share": 0.0, "looks": "each", "tie_gain": False}


@lru_cache(maxsize=1024)
def _Z(delta: float) -> float:
    """The two-sided normal quantile `z` with `P(|Z| > z) = delta`."""
    return -NormalDist().inv_cdf(delta / 2)


def _spent(delta: float, fraction: float) -> float:
    """O'Brien-Fleming-type alpha spent by information `fraction` in [0, 1] (Lan and DeMets, 1983)."""
    if fraction <= 0:
        return 0.0
    return min(delta, math.erfc(_Z(delta) / math.sqrt(2 * fraction)))  # 2 * P(Z > z / sqrt(fraction))


@dataclass
class EarlyStopping:
    """Settings and state of adaptive early stopping (see the module docstring).

    Args:
        delta (`float`, *optional*, defaults to `0.05`): Error level of each confidence interval, in (0, 1).
        chunk (`int`, *optional*, defaults to `4`): Tasks evaluated between two looks.
        warmup (`int`, *optional*, defaults to `50`): Rows scored in full before stopping starts.
        seed (`int`, *optional*, defaults to `0`): Seed of the per-row task orders.
        warmup_share (`float`, *optional*, defaults to `0.0`): Warm-up as a share of the rows, in [0, 1): the rows
            scored in full are ``max(warmup, ceil(warmup_share * n_rows))`` when the row count is known.
        looks (`str`, *optional*, defaults to `"each"`): Error control over a row's repeated looks: `"each"` (every
            look at level `delta`), `"union"` (level `delta / L` over the `L` looks, a union bound: at most `delta`
            per row) or `"spending"` (an O'Brien-Fleming-type alpha-spending function spread over the `L` looks,
            also at most `delta` per row, spending little on the first looks).
        tie_gain (`bool`, *optional*, defaults to `False`): Compare rows at the threshold's golden score by their
            mean gain (the ranking's tie-breaker): an interval on the mean gain over all `m` tasks at the same level
            (see `gain_interval`) settles a row whose count interval only reaches the threshold.
    """

    delta: float = 0.05
    chunk: int = 4
    warmup: int = 50
    seed: int = 0
    warmup_share: float = 0.0
    looks: str = "each"
    tie_gain: bool = False
    _seen: list = field(default_factory=list, repr=False)
    _seen_gain: list = field(default_factory=list, repr=False)
    _evaluated: int = field(default=0, repr=False)
    _stopped_low: int = field(default=0, repr=False)
    _stopped_high: int = field(default=0, repr=False)

    def __post_init__(self):
        if not 0 < self.delta < 1:
            raise ValueError(f"`delta` must be in (0, 1), got {self.delta!r}.")
        for name in ("chunk", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if isinstance(self.warmup_share, bool) or not 0 <= self.warmup_share < 1:
            raise ValueError(f"`warmup_share` must be in [0, 1), got {self.warmup_share!r}.")
        if self.looks not in LOOKS:
            raise ValueError(f"`looks` must be one of {LOOKS}, got {self.looks!r}.")
        self._n_rows: int | None = None
        self._engines: dict[tuple[int, ...], ScoringEngine] = {}

    def settings(self) -> dict[str, Any]:
        """The settings (they change the scores, so they belong in a checkpoint's fingerprint)."""
        # Options at their original value are left out, so runs checkpointed before they existed still resume.
        return {
            k: v for k, v in asdict(self).items() if not k.startswith("_") and not (k in LEGACY and v == LEGACY[k])
        }

    def warmup_rows(self) -> int:
        """Rows scored in full before stopping starts (`warmup`, or `warmup_share` of the known row count)."""
        if self._n_rows is None or not self.warmup_share:
            return self.warmup
        return max(self.warmup, math.ceil(self.warmup_share * self._n_rows))

    def look_delta(self, t: int) -> float:
        """The error level of the look after `t` tasks (see `looks`)."""
        looks = -(-self._m // self.chunk) - 1  # looks before the last chunk, the only ones that can stop a row
        if self.looks == "each" or looks <= 1:
            return self.delta
        if self.looks == "union":
            return self.delta / looks
        k = -(-t // self.chunk)  # this look's number, 1..looks
        return _spent(self.delta, k / looks) - _spent(self.delta, (k - 1) / looks)

    def start(self, scorer: Any, *, n_rows: int | None, top_percent: float) -> None:
        """Bind to a scorer (its model, encoded tasks and zero-shot scores) and the selection share."""
        self._encoder, self._base, self._s_zero = scorer.encoder, scorer.engine, scorer.zero_shot_scores
        self._gate_settings = scorer.resolved_gate_settings
        self._return_scores = scorer.return_scores
        self._percent = float(top_percent)
        self._m = len(self._base.tasks)
        self._n_rows = n_rows

    def threshold(self) -> float:
        """The running top-n% cut of the golden scores seen so far (`-inf` during warm-up)."""
        return self.cut()[0]

    def cut(self) -> tuple[float, float]:
        """The running cut `(golden, gain)`: the golden score and gain of the last row in the top n% seen so far.

        `(-inf, -inf)` during warm-up. Stopped rows rank by their estimates.
        """
        n = len(self._seen)
        if n < self.warmup_rows():
            return -math.inf, -math.inf
        golden = np.asarray(self._seen, dtype=np.float64)
        gain = np.asarray(self._seen_gain, dtype=np.float64)
        k = n_selected(n, self._percent)
        tau = float(np.partition(golden, n - k)[n - k])
        above = int(np.count_nonzero(golden > tau))
        tied = gain[golden == tau]
        gain_tau = float(np.partition(tied, len(tied) - (k - above))[len(tied) - (k - above)])
        return tau, gain_tau

    def observe(self, arrays: dict[str, np.ndarray]) -> None:
        """Feed the results of an already-scored shard (on resume), in row order."""
        self._seen.extend(np.asarray(arrays["golden"]).tolist())
        self._seen_gain.extend(np.asarray(arrays["gain"]).tolist())
        self._evaluated += int(np.asarray(arrays["tasks"]).sum())

    def _engine(self, tasks: tuple[int, ...]) -> ScoringEngine:
        engine = self._engines.get(tasks)
        if engine is None:
            engine = ScoringEngine(self._base.model, [self._base.tasks[j] for j in tasks])
            if len(self._engines) > 4096:
                self._engines.clear()
            self._engines[tasks] = engine
        return engine

    def _decide(self, t: int, s: int, gains: np.ndarray, cut: tuple[float, float]) -> int:
        """`-1` (settled below the cut), `1` (above) or `0` (go on) for a row with `s` gains in its first `t` tasks.

        `gains` are the row's per-task gains so far (only read with `tie_gain`).
        """
        tau, gain_tau = cut
        if t >= self._m or tau == -math.inf:
            return 0
        delta = self.look_delta(t)
        if delta <= 0:  # an alpha-spending look with nothing spent (underflow on very many looks)
            return 0
        low, high = gains_interval(self._m, t, s, delta)
        if high / self._m < tau:
            return -1
        if low / self._m > tau:
            return 1
        if self.tie_gain and (high / self._m <= tau or low / self._m >= tau):
            gain_low, gain_high = gain_interval(gains, self._m, low, high, delta)
            if high / self._m <= tau and gain_high < gain_tau:
                return -1
            if low / self._m >= tau and gain_low > gain_tau:
                return 1
        return 0

    def _count(self, side: int) -> None:
        if side < 0:
            self._stopped_low += 1
        elif side > 0:
            self._stopped_high += 1

    def simulate(self, one_shot: np.ndarray, s_zero: np.ndarray, top_percent: float) -> dict[str, np.ndarray]:
        """Replay the stopping rule on a precomputed one-shot matrix `(n, m)` (no model), rows in order.

        The decisions are the ones a live run takes when its per-task scores equal `one_shot`; used to measure the
        savings and the selection overlap on score matrices that were computed once.

        Returns:
            `dict`: `golden`, `gain` and `tasks`, as `score` returns them.
        """
        one_shot = np.asarray(one_shot, dtype=np.float64)
        s_zero = np.asarray(s_zero, dtype=np.float64)
        self._percent, self._m, self._return_scores = float(top_percent), one_shot.shape[1], False
        n, m = one_shot.shape
        golden, gain, tasks = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
        self._n_rows = n
        for i in range(n):
            order = np.random.default_rng([self.seed, i]).permutation(m)
            cut = self.cut()
            t = s = side = 0
            while t < m:
                part = np.sort(order[t : t + self.chunk])
                s += int((one_shot[i, part] > s_zero[part]).sum())
                t += len(part)
                seen = np.sort(order[:t])
                side = self._decide(t, s, one_shot[i, seen] - s_zero[seen], cut)
                if side:
                    break
            self._count(side)
            seen = np.sort(order[:t])
            golden[i], gain[i], tasks[i] = s / t, float((one_shot[i, seen] - s_zero[seen]).mean()), t
            self._seen.append(golden[i])
            self._seen_gain.append(gain[i])
            self._evaluated += t
        return {"golden": golden, "gain": gain, "tasks": tasks}

    def score(self, examples: list, start: int) -> dict[str, np.ndarray]:
        """Score consecutive rows `start, start + 1, ...` with early stopping.

        Returns:
            `dict`: `golden`, `gain`, `tasks` (tasks evaluated per row), the signals `alignment` and `completeness`,
            the gates as `flagbits` (see `flags_to_bits`) and, with `return_scores`, `one_shot` (NaN where a task was
            not evaluated). The signals are read with separate forwards here, never stopped early.
        """
        m = self._m
        golden = np.empty(len(examples))
        gain = np.empty(len(examples))
        tasks = np.empty(len(examples), dtype=np.int64)
        one_shot = np.full((len(examples), m), np.nan)
        for i, example in enumerate(examples):
            ids, _ = self._encoder.encode_demo(example)
            kv = self._base.prefix_cache(ids)
            order = np.random.default_rng([self.seed, start + i]).permutation(m)
            cut = self.cut()
            t = s = side = 0
            while t < m:
                part = tuple(sorted(order[t : t + self.chunk].tolist()))
                values = self._engine(part).score_with_cache(kv, len(ids))
                one_shot[i, list(part)] = values
                s += int((values > self._s_zero[list(part)]).sum())
                t += len(part)
                done = ~np.isnan(one_shot[i])
                side = self._decide(t, s, one_shot[i, done] - self._s_zero[done], cut)
                if side:
                    break
            self._count(side)
            done = ~np.isnan(one_shot[i])
            golden[i] = s / t
            gain[i] = float((one_shot[i, done] - self._s_zero[done]).mean())
            tasks[i] = t
            self._seen.append(golden[i])
            self._seen_gain.append(gain[i])
            self._evaluated += t
        alignment, completeness = read_signals(self._base, [self._encoder.encode_signals(e) for e in examples])
        flags = [
            join_flags(row_flags(e.output, a, c, self._gate_settings))
            for e, a, c in zip(examples, alignment, completeness, strict=True)
        ]
        out = {
            "golden": golden,
            "gain": gain,
            "tasks": tasks,
            "alignment": alignment,
            "completeness": completeness,
            "flagbits": flags_to_bits(flags),
        }
        if self._return_scores:
            out["one_shot"] = one_shot
        return out

    def report(self) -> dict[str, Any]:
        """Task evaluations made and saved, and how many rows stopped below or above the threshold."""
        full = len(self._seen) * self._m
        return {
            **self.settings(),
            "rows": len(self._seen),
            "task_evaluations": self._evaluated,
            "exhaustive_evaluations": full,
            "evaluated_fraction": round(self._evaluated / full, 4) if full else None,
            "rows_stopped_below": self._stopped_low,
            "rows_stopped_above": self._stopped_high,
        }
