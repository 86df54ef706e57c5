"""Adaptive early stopping for top-n% selection: stop scoring a candidate once its fate is clear.

Each candidate's tasks are evaluated in a seeded random order (a permutation per row, from `seed` and the row
index), `chunk` tasks at a time. After `t` of the `m` tasks with `s` gains, the number of gains `K` over all tasks
follows a hypergeometric law (sampling without replacement), so the exact two-sided confidence set at level
`1 - delta` is every `K` with ``P(X <= s | K) >= delta / 2`` and ``P(X >= s | K) >= delta / 2``. The candidate stops
when the whole set lies below the running threshold `tau` (it cannot reach the top n%) or above it (it has
surely passed). `tau` is the top-n% cut of the scores seen so far; the first `warmup` rows are scored in full.

Guarantee and its limits: for a fixed `tau` each stop is wrong with probability at most `delta` per look (no
union bound over the looks), and `tau` itself moves as rows arrive; the benchmark reports the overlap with the
exhaustive selection rather than claiming one. A stopped row's `golden_score` is the estimate `s / t` and its gain
the mean over evaluated tasks; `nuggets_tasks_evaluated` says how many tasks it took.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
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


@dataclass
class EarlyStopping:
    """Settings and state of adaptive early stopping (see the module docstring).

    Args:
        delta (`float`, *optional*, defaults to `0.05`): Error level of each confidence interval, in (0, 1).
        chunk (`int`, *optional*, defaults to `4`): Tasks evaluated between two looks.
        warmup (`int`, *optional*, defaults to `50`): Rows scored in full before stopping starts.
        seed (`int`, *optional*, defaults to `0`): Seed of the per-row task orders.
    """

    delta: float = 0.05
    chunk: int = 4
    warmup: int = 50
    seed: int = 0
    _seen: list = field(default_factory=list, repr=False)
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
        self._engines: dict[tuple[int, ...], ScoringEngine] = {}

    def settings(self) -> dict[str, Any]:
        """The settings (they change the scores, so they belong in a checkpoint's fingerprint)."""
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    def start(self, scorer: Any, *, n_rows: int | None, top_percent: float) -> None:
        """Bind to a scorer (its model, encoded tasks and zero-shot scores) and the selection share."""
        self._encoder, self._base, self._s_zero = scorer.encoder, scorer.engine, scorer.zero_shot_scores
        self._gate_settings = scorer.resolved_gate_settings
        self._return_scores = scorer.return_scores
        self._percent = float(top_percent)
        self._m = len(self._base.tasks)

    def threshold(self) -> float:
        """The running top-n% cut of the golden scores seen so far (`-inf` during warm-up)."""
        if len(self._seen) < self.warmup:
            return -math.inf
        k = n_selected(len(self._seen), self._percent)
        return float(np.partition(np.asarray(self._seen), len(self._seen) - k)[len(self._seen) - k])

    def observe(self, arrays: dict[str, np.ndarray]) -> None:
        """Feed the results of an already-scored shard (on resume), in row order."""
        self._seen.extend(np.asarray(arrays["golden"]).tolist())
        self._evaluated += int(np.asarray(arrays["tasks"]).sum())

    def _engine(self, tasks: tuple[int, ...]) -> ScoringEngine:
        engine = self._engines.get(tasks)
        if engine is None:
            engine = ScoringEngine(self._base.model, [self._base.tasks[j] for j in tasks])
            if len(self._engines) > 4096:
                self._engines.clear()
            self._engines[tasks] = engine
        return engine

    def _stop(self, t: int, s: int, tau: float) -> bool:
        """Whether a row with `s` gains in its first `t` tasks has its side of `tau` settled (and count it)."""
        if t >= self._m or tau == -math.inf:
            return False
        low, high = gains_interval(self._m, t, s, self.delta)
        if high / self._m < tau:
            self._stopped_low += 1
            return True
        if low / self._m > tau:
            self._stopped_high += 1
            return True
        return False

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
        for i in range(n):
            order = np.random.default_rng([self.seed, i]).permutation(m)
            tau = self.threshold()
            t = s = 0
            while t < m:
                part = np.sort(order[t : t + self.chunk])
                s += int((one_shot[i, part] > s_zero[part]).sum())
                t += len(part)
                if self._stop(t, s, tau):
                    break
            seen = np.sort(order[:t])
            golden[i], gain[i], tasks[i] = s / t, float((one_shot[i, seen] - s_zero[seen]).mean()), t
            self._seen.append(golden[i])
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
            tau = self.threshold()
            t = s = 0
            while t < m:
                part = tuple(sorted(order[t : t + self.chunk].tolist()))
                values = self._engine(part).score_with_cache(kv, len(ids))
                one_shot[i, list(part)] = values
                s += int((values > self._s_zero[list(part)]).sum())
                t += len(part)
                if self._stop(t, s, tau):
                    break
            done = ~np.isnan(one_shot[i])
            golden[i] = s / t
            gain[i] = float((one_shot[i, done] - self._s_zero[done]).mean())
            tasks[i] = t
            self._seen.append(golden[i])
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
