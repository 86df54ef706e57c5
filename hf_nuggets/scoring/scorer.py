"""`GoldenScorer`: the `datasets.map` transform that adds golden scores to instruction data."""

from __future__ import annotations

import logging
import math
import os
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data.formatting import TEMPLATES, Example, examples_from_batch, examples_from_rows, resolve_columns
from ..data.loading import load_default_task_set
from ..gates import (
    ALIGNMENT_COLUMN,
    COMPLETENESS_COLUMN,
    FLAGS_COLUMN,
    GateSettings,
    calibrate_thresholds,
    join_flags,
    row_flags,
)
from ..selection import GAIN_COLUMN, SCORE_COLUMN
from .engine import (
    ScoringEngine,
    SegmentEncoder,
    TokenLogProbs,
    TruncationLimits,
    golden_from_scores,
    read_signals,
)
from .prospector import Prospector, load_prospector

logger = logging.getLogger(__name__)

ONE_SHOT_COLUMN = "nuggets_one_shot"
#: The columns a scorer adds, in order (plus `nuggets_one_shot` with `return_scores=True`).
OUTPUT_COLUMNS = (SCORE_COLUMN, GAIN_COLUMN, ALIGNMENT_COLUMN, COMPLETENESS_COLUMN, FLAGS_COLUMN)


class GoldenScorer:
    """Scores instruction examples by their golden score, as a batched `datasets.map` function.

    For each candidate example the prospector reads it as a one-shot demonstration before every task of the
    predefined task set. The golden score is the fraction of tasks whose answer log-likelihood rises above its
    zero-shot value (strictly); `nuggets_gain` is the mean rise, which breaks ties in `select_top`.

    In the same pass it reads two signals of the row itself, and the gates they feed:

    - `nuggets_alignment`: the mean log-likelihood of the row's answer after its own prompt, minus the same after the
      template's bare response cue (``Response:\n``, or the chat template's assistant header): the log of 1/IFD.
      Above 0 the instruction helps predict the answer; at or below 0 the answer does not belong to its question.
    - `nuggets_completeness`: the log-probability of the template's end of an answer (the first token of the
      demonstration separator, or the chat template's end-of-turn token) right after the answer. A cut-off answer
      makes it low.
    - `nuggets_flags`: the gates the row fails (`empty`, `placeholder`, `unaligned`, `unfinished`), joined by commas;
      `""` when it passes. `select_top` and every other selection keep flagged rows out of the top.

    Both signals are NaN for an empty answer; the completeness is NaN when the answer was cut by `max_answer_tokens`.

    The scorer loads the model and computes the zero-shot scores once, on the first batch, and never per batch. It
    pickles as its settings (the model as its load recipe when it came from `load_prospector`), so `datasets`
    fingerprints it cheaply and deterministically: a second identical `.map` is served from the cache, and
    `num_proc` workers each load the model once.

    Args:
        prospector (`Prospector`, `str` or `None`, *optional*): A loaded `Prospector`, a model name or path for
            `load_prospector`, or `None` for the embedded SmolLM2-135M-Instruct. Names load on first use.
        task_set (`datasets.Dataset`, `list[dict]` or `None`, *optional*): The predefined tasks, with the same
            column conventions as the data, or a file or Hub id to load them from. `None` for the task set shipped
            with the package. `"auto"` (tasks drawn from the data) is refused here, since a scorer never sees the whole
            data: use `auto_task_set` or `prospect(..., task_set="auto")`.
        num_tasks (`int`, *optional*): Use only the first `num_tasks` tasks.
        columns (`dict`, *optional*): Maps `instruction`, `input`, `output` (or `messages`) to the data's column
            names. Chat data in a `messages` column (TRL conversational format) is detected automatically.
        template (`str`, *optional*, defaults to `"alpaca"`): `"alpaca"` (the NUGGETS prompt) or `"chat"` (the
            tokenizer's chat template).
        limits (`TruncationLimits`, *optional*): Token limits for demonstration, task prompt and answer.
        return_scores (`bool`, *optional*, defaults to `False`): Also add `nuggets_one_shot`, the per-task one-shot
            scores (the zero-shot scores are `scorer.zero_shot_scores`).
        max_batch_tokens (`int`, *optional*, defaults to `4096`): Padded tokens per forward pass.
        device (`str`, *optional*): Device for a prospector loaded by name.
        gate_settings (`GateSettings`, *optional*): Thresholds and placeholder list of the gates that write
            `nuggets_flags` (see `hf_nuggets.gates`); the documented defaults when omitted.
        signals (`bool`, *optional*, defaults to `True`): Read `nuggets_alignment` and `nuggets_completeness`. With
            `False` they are NaN, and only the `empty` and `placeholder` gates can flag a row.
        candidates_per_forward (`int`, *optional*, defaults to `1`): Most candidates stacked in one forward pass. `1`
            runs each candidate's demonstration on its own and reuses its cache for every task batch; above 1 the
            demonstrations of several candidates run together and each task batch is scored after all of them in one
            forward (one row per candidate and task), as many as `max_batch_tokens` allows (counting each row's
            padded demonstration and task). The scores are the same to floating-point tolerance; it pays off where
            one forward is cheap for its size (GPUs, small task sets), not on a small CPU.
        load_options (`dict`, *optional*): More arguments of `load_prospector` (`revision`, `gguf_file`, `dtype`,
            `tokenizer`) for a prospector given by name or path; it loads on first use, so a run times its loading.

    Example:

    ```python
    >>> from datasets import Dataset
    >>> from hf_nuggets import GoldenScorer, select_top
    >>> ds = Dataset.from_list([{"instruction": "Name a primary colour.", "input": "", "output": "Red."}])
    >>> scorer = GoldenScorer(prospector=tiny_prospector, task_set=[
    ...     {"instruction": "Add 2 and 2.", "input": "", "output": "4"}])
    >>> scored = ds.map(scorer, batched=True, batch_size=16)
    >>> sorted(set(scored.column_names) - set(ds.column_names))
    ['golden_score', 'nuggets_alignment', 'nuggets_completeness', 'nuggets_flags', 'nuggets_gain']
    ```
    """

    def __init__(
        self,
        prospector: Prospector | str | os.PathLike | None = None,
        task_set: Any = None,
        *,
        num_tasks: int | None = None,
        columns: Mapping[str, str | None] | None = None,
        template: str = "alpaca",
        limits: TruncationLimits | None = None,
        return_scores: bool = False,
        max_batch_tokens: int = 4096,
        device: str | None = None,
        gate_settings: GateSettings | None = None,
        signals: bool = True,
        candidates_per_forward: int = 1,
        load_options: Mapping[str, Any] | None = None,
    ):
        if template not in TEMPLATES:
            raise ValueError(f"`template` must be one of {TEMPLATES}, got {template!r}.")
        if num_tasks is not None and (not isinstance(num_tasks, int) or num_tasks < 1):
            raise ValueError(f"`num_tasks` must be a positive integer, got {num_tasks!r}.")
        if not isinstance(max_batch_tokens, int) or max_batch_tokens < 1:
            raise ValueError(f"`max_batch_tokens` must be a positive integer, got {max_batch_tokens!r}.")
        if not isinstance(candidates_per_forward, int) or candidates_per_forward < 1:
            raise ValueError(f"`candidates_per_forward` must be a positive integer, got {candidates_per_forward!r}.")
        if prospector is not None and not isinstance(prospector, (Prospector, str, os.PathLike)):
            raise TypeError(
                "`prospector` must be a `Prospector` (see `load_prospector`), a model name or path, or None; "
                f"got {type(prospector).__name__}."
            )
        if isinstance(task_set, str) and task_set == "auto":
            raise ValueError(
                "`task_set='auto'` draws the tasks from the data being scored, which a `GoldenScorer` does not see: "
                "build them with `hf_nuggets.auto_task_set(dataset, ...)` and pass them as `task_set`, or run "
                "`prospect(dataset, scorer, out_dir, task_set='auto')`."
            )
        self.prospector = prospector
        # The shipped default task set is read on first use, so importing `golden_score` reads no file.
        self._tasks = None if task_set is None else _task_examples(task_set, num_tasks)
        #: Where the tasks came from, for the run summary: "shipped", the file or Hub id, or "given" (in memory).
        self.task_source = (
            "shipped" if task_set is None else str(task_set) if isinstance(task_set, (str, os.PathLike)) else "given"
        )
        self._num_tasks = num_tasks
        self.columns = dict(columns) if columns else None
        self.template = template
        self.limits = limits or TruncationLimits()
        self.return_scores = return_scores
        self.max_batch_tokens = max_batch_tokens
        self.device = device
        if gate_settings is not None and not isinstance(gate_settings, GateSettings):
            raise TypeError(f"`gate_settings` must be a `GateSettings`, got {type(gate_settings).__name__}.")
        self.gate_settings = gate_settings or GateSettings()
        self.signals = bool(signals)
        self.candidates_per_forward = candidates_per_forward
        unknown = set(load_options or {}) - {"revision", "gguf_file", "dtype", "tokenizer"}
        if unknown:
            raise ValueError(
                f"`load_options` takes revision, gguf_file, dtype and tokenizer (see `load_prospector`), got "
                f"{sorted(unknown)}."
            )
        self.load_options = dict(load_options) if load_options else None
        self._state: dict[str, Any] | None = None
        self._loaded: Prospector | None = None
        self.stats = _fresh_stats()

    @property
    def tasks(self) -> list[Example]:
        """The predefined task set, as examples."""
        if self._tasks is None:
            self._tasks = _task_examples(None, self._num_tasks)
        return self._tasks

    # -- pickling: settings only, never loaded models or computed caches ---------------------------------------
    _SETTINGS = (
        "prospector",
        "tasks",
        "columns",
        "template",
        "limits",
        "return_scores",
        "max_batch_tokens",
        "device",
        "gate_settings",
        "signals",
        "candidates_per_forward",
        "load_options",
    )

    def __getstate__(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in self._SETTINGS}, "task_source": self.task_source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self._tasks, self._num_tasks = state.pop("tasks"), None
        self.task_source = state.pop("task_source", "given")
        state.setdefault("candidates_per_forward", 1)  # pickled before the setting existed
        state.setdefault("load_options", None)
        self.__dict__.update(state)
        self._state, self._loaded = None, None
        self.stats = _fresh_stats()

    def with_options(self, **options: Any) -> GoldenScorer:
        """A new scorer with some settings changed, e.g. ``golden_score.with_options(task_set=tasks)``.

        `model=` is accepted as another name for `prospector=`.
        """
        if "model" in options:
            options["prospector"] = options.pop("model")
        settings = self.__getstate__()
        tasks, task_source = settings.pop("tasks"), settings.pop("task_source")
        unknown = set(options) - set(settings) - {"task_set", "num_tasks"}
        if unknown:
            raise TypeError(f"Unknown option(s) {sorted(unknown)}; accepted: {sorted(settings) + ['task_set']}.")
        settings.update(options)
        if "task_set" not in options:
            settings["task_set"] = [
                {"instruction": t.instruction, "input": t.input, "output": t.output} for t in tasks
            ]
        scorer = GoldenScorer(**settings)
        if "task_set" not in options:
            scorer.task_source = task_source
        return scorer

    # -- lazy set-up -----------------------------------------------------------------------------------------------
    @property
    def loaded_prospector(self) -> Prospector:
        """The prospector, loaded on first use."""
        if isinstance(self.prospector, Prospector):
            return self.prospector
        if self._loaded is None:
            name = None if self.prospector is None else str(self.prospector)
            self._loaded = load_prospector(name, device=self.device, **(self.load_options or {}))
        return self._loaded

    def _setup(self, zero_shot: np.ndarray | None = None) -> dict[str, Any]:
        """Load the model, encode the tasks and compute (or adopt, when `zero_shot` is given) the zero-shot scores."""
        if self._state is None:
            prospector = self.loaded_prospector
            encoder = SegmentEncoder(prospector.tokenizer, self.template, self.limits)
            encoded, prompts_cut, answers_cut = [], 0, 0
            for j, task in enumerate(self.tasks):
                enc, p_cut, a_cut = encoder.encode_task(task, j)
                encoded.append(enc)
                prompts_cut += p_cut
                answers_cut += a_cut
            if prompts_cut or answers_cut:
                logger.warning(
                    "Task set: %d prompt(s) truncated to %d tokens and %d answer(s) to %d tokens.",
                    prompts_cut,
                    self.limits.max_prompt_tokens,
                    answers_cut,
                    self.limits.max_answer_tokens,
                )
            engine = ScoringEngine(prospector.model, encoded, max_batch_tokens=self.max_batch_tokens)
            if zero_shot is not None and np.shape(zero_shot) != (len(encoded),):
                raise ValueError(f"`zero_shot` must have shape ({len(encoded)},), got {np.shape(zero_shot)}.")
            s_zero = engine.score([encoder.bos_id]) if zero_shot is None else np.asarray(zero_shot, np.float64)
            gates = calibrated_gate_settings(engine, encoder, self.gate_settings) if self.signals else None
            self._state = {"encoder": encoder, "engine": engine, "s_zero": s_zero, "gates": gates}
            self.stats.update(tasks_prompt_truncated=prompts_cut, tasks_answer_truncated=answers_cut)
        return self._state

    @property
    def resolved_gate_settings(self) -> GateSettings:
        """The gate settings with every `"auto"` threshold calibrated for this prospector and template.

        Without signals (`signals=False`) the learned gates cannot fire, and their thresholds stay as given.
        """
        gates = self._setup()["gates"]
        if gates is None:
            return self.gate_settings.resolve(-math.inf, -math.inf)
        return gates

    @property
    def zero_shot_scores(self) -> np.ndarray:
        """`s_zero`: the mean answer log-likelihood of each task without a demonstration (computed once)."""
        return self._setup()["s_zero"]

    @property
    def encoder(self) -> SegmentEncoder:
        """The tokenizer side of the set-up scorer: turns demonstrations, tasks and signals into token ids."""
        return self._setup()["encoder"]

    @property
    def engine(self) -> ScoringEngine:
        """The set-up scoring engine (the prospector's model and the encoded tasks)."""
        return self._setup()["engine"]

    def use_zero_shot_scores(self, zero_shot: np.ndarray) -> None:
        """Score against zero-shot scores computed elsewhere (by another process of a sharded run), not recomputed.

        Args:
            zero_shot (`np.ndarray`): One value a task, as `zero_shot_scores` gives them.
        """
        zero_shot = np.asarray(zero_shot, np.float64)
        if self._state is None:
            self._setup(zero_shot=zero_shot)
        elif zero_shot.shape != self._state["s_zero"].shape:
            raise ValueError(f"`zero_shot` must have shape {self._state['s_zero'].shape}, got {zero_shot.shape}.")
        else:
            self._state["s_zero"] = zero_shot

    # -- scoring ---------------------------------------------------------------------------------------------------
    def score_examples(self, examples: Sequence[Example]) -> dict[str, np.ndarray]:
        """Score examples directly.

        Returns:
            `dict`: `golden_score` `(n,)`, `nuggets_gain` `(n,)`, `one_shot` `(n, m)`, `demo_truncated` `(n,)`,
            `alignment` `(n,)`, `completeness` `(n,)` and `flags` (a list of comma-joined gate names).
        """
        state = self._setup()
        encoder, engine = state["encoder"], state["engine"]
        one_shot = np.empty((len(examples), len(self.tasks)), dtype=np.float64)
        truncated = np.zeros(len(examples), dtype=bool)
        signals = [encoder.encode_signals(example) if self.signals else None for example in examples]
        conditional: list[np.ndarray | None] = [None] * len(examples)
        seen: dict[tuple[int, ...], int] = {}
        demos: list[list[int]] = [[] for _ in examples]
        for i, example in enumerate(examples):
            demos[i], truncated[i] = encoder.encode_demo(example)
            seen.setdefault(tuple(demos[i]), i)  # identical demonstrations are scored once
        unique = sorted(seen.values())
        # Where a demonstration starts with its signal sequence, its own forward gives the signals too.
        score_from: list[int | None] = [None] * len(examples)
        for i in unique:
            sig = signals[i]
            if sig is not None and tuple(demos[i][: len(sig.conditional)]) == sig.conditional:
                score_from[i] = sig.conditional_start
                self.stats["signals_from_demo_forward"] += 1
        if self.candidates_per_forward > 1:
            scores, own = engine.score_candidates_and_log_probs(
                [demos[i] for i in unique], [score_from[i] for i in unique], max_candidates=self.candidates_per_forward
            )
            one_shot[unique] = scores
            for i, values in zip(unique, own, strict=True):
                conditional[i] = values
        else:
            for i in unique:
                kv, conditional[i] = engine.prefix_cache_and_log_probs(demos[i], score_from[i])
                one_shot[i] = engine.score_with_cache(kv, len(demos[i]))
        for i in range(len(examples)):
            first = seen[tuple(demos[i])]
            if first != i:
                one_shot[i] = one_shot[first]
                self.stats["duplicates_reused"] += 1
        alignment, completeness = read_signals(engine, signals, conditional)
        if truncated.any():
            logger.warning(
                "%d demonstration(s) truncated to %d tokens.", int(truncated.sum()), self.limits.max_demo_tokens
            )
        self.stats["candidates"] += len(examples)
        self.stats["demos_truncated"] += int(truncated.sum())
        golden, gain = golden_from_scores(one_shot, state["s_zero"])
        flags = [
            join_flags(row_flags(example.output, a, c, self.resolved_gate_settings))
            for example, a, c in zip(examples, alignment, completeness, strict=True)
        ]
        return {
            "golden_score": golden,
            "nuggets_gain": gain,
            "one_shot": one_shot,
            "demo_truncated": truncated,
            "alignment": alignment,
            "completeness": completeness,
            "flags": flags,
        }

    def __call__(self, batch: Mapping[str, Sequence[Any]], indices: Sequence[int] | None = None) -> dict[str, list]:
        """Score a batch (`datasets.map(..., batched=True)`), returning the new columns only.

        Args:
            batch (`dict[str, list]`): A batch of rows; the input columns are left untouched.
            indices (`list[int]`, *optional*): Row indices (pass `with_indices=True` to `map`), named in errors.

        Returns:
            `dict[str, list]`: `golden_score`, `nuggets_gain` and, with `return_scores`, `nuggets_one_shot`.
        """
        if not isinstance(batch, Mapping):
            raise TypeError("GoldenScorer expects a batch (a dict of columns): call `.map(scorer, batched=True)`.")
        mapping = resolve_columns(list(batch.keys()), self.columns)
        examples = examples_from_batch(batch, mapping, indices)
        if not examples:
            return {name: [] for name in self.output_names}
        return self.output_columns(self.score_examples(examples))

    @property
    def output_names(self) -> tuple[str, ...]:
        """The columns this scorer adds, in order: `OUTPUT_COLUMNS`, and `nuggets_one_shot` with `return_scores`."""
        return OUTPUT_COLUMNS + ((ONE_SHOT_COLUMN,) if self.return_scores else ())

    def output_columns(self, result: Mapping[str, Any]) -> dict[str, list]:
        """The new columns of a `score_examples` result, as `datasets.map` adds them (`output_names`, in order)."""
        out = {
            SCORE_COLUMN: np.asarray(result["golden_score"]).tolist(),
            GAIN_COLUMN: np.asarray(result["nuggets_gain"]).tolist(),
            ALIGNMENT_COLUMN: np.asarray(result["alignment"]).tolist(),
            COMPLETENESS_COLUMN: np.asarray(result["completeness"]).tolist(),
            FLAGS_COLUMN: list(result["flags"]),
        }
        if self.return_scores:
            out[ONE_SHOT_COLUMN] = np.asarray(result["one_shot"]).tolist()
        return out

    def __repr__(self) -> str:
        prospector = self.prospector.name if isinstance(self.prospector, Prospector) else self.prospector
        return (
            f"GoldenScorer(prospector={prospector or 'embedded SmolLM2-135M-Instruct'!r}, tasks={len(self.tasks)}, "
            f"template={self.template!r}, limits={self.limits})"
        )


def flag_examples(
    prospector: Prospector,
    examples: Sequence[Example],
    *,
    template: str = "alpaca",
    limits: TruncationLimits | None = None,
    gate_settings: GateSettings | None = None,
    max_batch_tokens: int = 4096,
) -> dict[str, Any]:
    """The signals and gates of rows without scoring them against tasks (two short forwards a row, batched).

    The values are those `GoldenScorer` writes for the same prospector, template and limits; `refine_task_set` uses
    this to keep gated rows out of a task set.

    Args:
        prospector (`Prospector`): The loaded prospector.
        examples (`list[Example]`): The rows.
        template (`str`, *optional*, defaults to `"alpaca"`): The prompt template.
        limits (`TruncationLimits`, *optional*): Token limits.
        gate_settings (`GateSettings`, *optional*): Thresholds and placeholders.
        max_batch_tokens (`int`, *optional*, defaults to `4096`): Padded tokens per forward pass.

    Returns:
        `dict`: `alignment` and `completeness` arrays, `flags` (comma-joined gate names per row) and the
        `gate_settings` used (their `"auto"` thresholds calibrated).
    """
    encoder = SegmentEncoder(prospector.tokenizer, template, limits)
    reader = TokenLogProbs(prospector.model, max_batch_tokens=max_batch_tokens)
    gate_settings = calibrated_gate_settings(reader, encoder, gate_settings or GateSettings())
    alignment, completeness = read_signals(reader, [encoder.encode_signals(e) for e in examples])
    flags = [
        join_flags(row_flags(e.output, a, c, gate_settings))
        for e, a, c in zip(examples, alignment, completeness, strict=True)
    ]
    return {"alignment": alignment, "completeness": completeness, "flags": flags, "gate_settings": gate_settings}


#: Calibrated thresholds by (model id, template, limits), with a weak reference to the model: the id of a freed
#: model can be reused, and the cache must not keep a model alive (`load_prospector` bounds how many stay loaded).
_CALIBRATED: dict[tuple, tuple[weakref.ref, tuple[float, float]]] = {}


def calibrated_gate_settings(reader: TokenLogProbs, encoder: SegmentEncoder, settings: GateSettings) -> GateSettings:
    """`settings` with each `"auto"` threshold chosen by `calibrate_thresholds` for this prospector and template.

    The intact answers are the reference answers of the task set shipped with the package (all of it, whatever task
    set the run scores against), read with the run's template and limits: two short forwards per task, once per
    model, template and limits in a process.

    Args:
        reader (`TokenLogProbs`): The prospector (a `ScoringEngine` is one).
        encoder (`SegmentEncoder`): The run's tokenizer, template and limits.
        settings (`GateSettings`): The settings to resolve.

    Returns:
        `GateSettings`: Settings with numeric thresholds.
    """
    if settings.resolved:
        return settings
    key = (id(reader.model), encoder.template, encoder.limits)
    cached = _CALIBRATED.get(key)
    if cached is None or cached[0]() is not reader.model:
        tasks = examples_from_rows(load_default_task_set(), what="the shipped task set")
        alignment, completeness = read_signals(reader, [encoder.encode_signals(t) for t in tasks])
        for stale in [k for k, (model, _) in _CALIBRATED.items() if model() is None]:
            del _CALIBRATED[stale]
        cached = (weakref.ref(reader.model), calibrate_thresholds(alignment, completeness))
        _CALIBRATED[key] = cached
        logger.info(
            "Gate thresholds calibrated on the shipped task set: alignment %.1f, completeness %.3g.", *cached[1]
        )
    return settings.resolve(*cached[1])


def _fresh_stats() -> dict[str, int]:
    return {"candidates": 0, "demos_truncated": 0, "duplicates_reused": 0, "signals_from_demo_forward": 0}


def _task_examples(task_set: Any, num_tasks: int | None) -> list[Example]:
    if task_set is None:
        task_set = load_default_task_set()
    elif isinstance(task_set, (str, os.PathLike)):
        from ..data.loading import load_data

        task_set = load_data(task_set)
    tasks = examples_from_rows(task_set, what="task_set")
    if num_tasks is not None:
        tasks = tasks[:num_tasks]
    for j, task in enumerate(tasks):
        if not task.output:
            raise ValueError(f"The answer (`output`) of task {j} in `task_set` is empty: every task needs an answer.")
    return tasks


#: Ready-made scorer for ``ds.map(golden_score, batched=True)``: the embedded prospector and the shipped task set,
#: loaded on first call. Configure it with ``golden_score.with_options(task_set=..., model=...)``.
golden_score = GoldenScorer()
