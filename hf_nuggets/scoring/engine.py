"""The scoring engine: zero-shot and one-shot answer log-likelihoods with a cached demonstration prefix.

Every sequence is ``[BOS] + demonstration + task prompt + answer`` (no demonstration for the zero-shot score), each
segment tokenized on its own and the ids concatenated, so the prefix ``[BOS] + demonstration`` is run once per
candidate and its key/value cache reused for every task. Only answer tokens are scored, and the vocabulary
projection is applied at answer positions only.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ..data.formatting import Example, render_demonstration, render_prompt

logger = logging.getLogger(__name__)

#: What the NUGGETS template writes right before an answer, without the instruction: the bare cue of
#: `nuggets_alignment`'s unconditional side.
RESPONSE_CUE = "Response:\n"


@dataclass(frozen=True)
class TruncationLimits:
    """Explicit token limits per segment. Truncation is counted and reported, never silent.

    A demonstration and an answer keep their first tokens; a task prompt keeps its last tokens, so the
    ``Response:`` cue right before the answer survives.

    Args:
        max_demo_tokens (`int`, *optional*, defaults to `512`): Limit for a candidate's demonstration.
        max_prompt_tokens (`int`, *optional*, defaults to `256`): Limit for a task's prompt.
        max_answer_tokens (`int`, *optional*, defaults to `256`): Limit for a task's answer.
    """

    max_demo_tokens: int = 512
    max_prompt_tokens: int = 256
    max_answer_tokens: int = 256

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


@dataclass(frozen=True)
class EncodedTask:
    """A task's prompt and answer token ids."""

    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]


@dataclass(frozen=True)
class SignalSequences:
    """The token ids a candidate's alignment and completeness signals are read from.

    `conditional` is ``[BOS] + prompt + answer`` followed by the template's end-of-answer token (unless the answer was
    cut by `max_answer_tokens`, when the end is not in view); `bare` is ``[BOS] + response cue + answer``. Answer
    tokens start at `conditional_start` and `bare_start`.
    """

    conditional: tuple[int, ...]
    conditional_start: int
    bare: tuple[int, ...]
    bare_start: int
    answer_length: int
    answer_cut: bool

    @property
    def has_end(self) -> bool:
        """Whether `conditional` ends with the end-of-answer token (the answer was not cut)."""
        return not self.answer_cut


class SegmentEncoder:
    """Tokenizes demonstrations and tasks segment by segment, applying the truncation limits.

    Args:
        tokenizer: A `transformers` tokenizer.
        template (`str`, *optional*, defaults to `"alpaca"`): The prompt template, see `render_prompt`.
        limits (`TruncationLimits`, *optional*): Segment limits.
    """

    def __init__(self, tokenizer: Any, template: str = "alpaca", limits: TruncationLimits | None = None):
        self.tokenizer = tokenizer
        self.template = template
        self.limits = limits or TruncationLimits()
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if bos is None:
            raise ValueError("The tokenizer defines neither a BOS nor an EOS token; one is needed to start sequences.")
        self.bos_id = int(bos)
        self._parts: tuple[list[int], int] | None = None

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _template_parts(self) -> tuple[list[int], int]:
        """The response cue's ids and the end-of-answer token id of the template, found once from a probe example.

        The cue is what the template writes right before an answer when the instruction is left out: ``Response:\n``
        for the NUGGETS template; the assistant header (the generation prompt) for a chat template. The end of an
        answer is the first token of what the template writes right after one: the demonstration separator's first
        token for the NUGGETS template, the end-of-turn token for a chat template.
        """
        if self._parts is None:
            probe = Example("Probe instruction.", "", "Probe answer.")
            prompt = render_prompt(probe, self.template, self.tokenizer)
            demo = render_demonstration(probe, self.template, self.tokenizer)
            if not demo.startswith(prompt + probe.output):
                raise ValueError(
                    f"The {self.template!r} template does not write a demonstration as its prompt followed by the "
                    "answer, so the end of an answer cannot be found for `nuggets_completeness`."
                )
            end = self._ids(demo[len(prompt) + len(probe.output) :])
            if self.template == "alpaca":
                cue = RESPONSE_CUE
            else:
                user = [{"role": "user", "content": probe.instruction}]
                bare = self.tokenizer.apply_chat_template(user, tokenize=False)
                cue = prompt[len(bare) :] if prompt.startswith(bare) and len(prompt) > len(bare) else ""
            if not end:
                raise ValueError(f"The {self.template!r} template writes nothing after an answer to read its end.")
            self._parts = (self._ids(cue), end[0])
        return self._parts

    def encode_signals(self, example: Example) -> SignalSequences | None:
        """The sequences of `nuggets_alignment` and `nuggets_completeness`, or `None` for an answer with no tokens.

        The prompt keeps its last `max_prompt_tokens` tokens and the answer its first `max_answer_tokens`, as for a
        task; an answer cut that way has no end in view (`answer_cut`).
        """
        answer = self._ids(example.output)
        if not answer:
            return None
        cue, end = self._template_parts()
        prompt = self._ids(render_prompt(example, self.template, self.tokenizer))[-self.limits.max_prompt_tokens :]
        answer_cut = len(answer) > self.limits.max_answer_tokens
        answer = answer[: self.limits.max_answer_tokens]
        conditional = [self.bos_id, *prompt, *answer] + ([] if answer_cut else [end])
        return SignalSequences(
            conditional=tuple(conditional),
            conditional_start=1 + len(prompt),
            bare=(self.bos_id, *cue, *answer),
            bare_start=1 + len(cue),
            answer_length=len(answer),
            answer_cut=answer_cut,
        )

    def encode_demo(self, example: Example) -> tuple[list[int], bool]:
        """Return ``[BOS] + demonstration`` ids and whether the demonstration was truncated."""
        ids = self._ids(render_demonstration(example, self.template, self.tokenizer))
        cut = len(ids) > self.limits.max_demo_tokens
        return [self.bos_id, *ids[: self.limits.max_demo_tokens]], cut

    def encode_task(self, example: Example, index: int | None = None) -> tuple[EncodedTask, bool, bool]:
        """Return the encoded task and whether its prompt and its answer were truncated."""
        prompt = self._ids(render_prompt(example, self.template, self.tokenizer))
        answer = self._ids(example.output)
        if not answer:
            where = f"task {index}" if index is not None else "a task"
            raise ValueError(f"The answer (`output`) of {where} is empty: every task needs an answer to score.")
        prompt_cut = len(prompt) > self.limits.max_prompt_tokens
        answer_cut = len(answer) > self.limits.max_answer_tokens
        task = EncodedTask(
            tuple(prompt[-self.limits.max_prompt_tokens :]), tuple(answer[: self.limits.max_answer_tokens])
        )
        return task, prompt_cut, answer_cut


def plan_batches(tasks: list[EncodedTask], *, max_batch_tokens: int, max_batch_size: int) -> list[list[int]]:
    """Group task indices into length buckets: sorted by length, each batch within a token budget.

    Args:
        tasks (`list[EncodedTask]`): The tasks.
        max_batch_tokens (`int`): Budget of batch size times the longest sequence in the batch.
        max_batch_size (`int`): Most tasks in one batch.

    Returns:
        `list[list[int]]`: Task indices per batch, longest first.
    """
    order = sorted(range(len(tasks)), key=lambda j: (-(len(tasks[j].prompt_ids) + len(tasks[j].answer_ids)), j))
    batches: list[list[int]] = []
    for j in order:
        if batches:
            first = batches[-1][0]
            longest = len(tasks[first].prompt_ids) + len(tasks[first].answer_ids)
            if len(batches[-1]) < max_batch_size and (len(batches[-1]) + 1) * longest <= max_batch_tokens:
                batches[-1].append(j)
                continue
        batches.append([j])
    return batches


def plan_candidate_groups(
    lengths: list[int],
    *,
    rows_per_candidate: int,
    width: int,
    max_batch_tokens: int,
    max_candidates: int | None = None,
) -> list[list[int]]:
    """Group candidates for forward passes that stack several of them, each group within a token budget.

    Candidates are sorted longest first and cut into consecutive groups, so a group is padded to its first (longest)
    demonstration. A group's forward holds ``len(group) * rows_per_candidate`` rows of ``longest + width`` token slots
    (the demonstration, padded, then `width` new tokens); that product stays within `max_batch_tokens`, except for a
    candidate too long to fit even alone, which gets a group of its own.

    Args:
        lengths (`list[int]`): Each candidate's demonstration length in tokens (``[BOS]`` included).
        rows_per_candidate (`int`): Rows each candidate adds: 1 for the demonstrations' own forward, the number of
            tasks in the bucket for a task forward.
        width (`int`): Token slots each row adds after the demonstration: 0 for the demonstrations' own forward, the
            bucket's padded task length for a task forward.
        max_batch_tokens (`int`): Budget of padded token slots per forward.
        max_candidates (`int`, *optional*): Most candidates in one group; no cap when `None`.

    Returns:
        `list[list[int]]`: Candidate indices per group, longest demonstration first.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    for i in order:
        if groups:
            size = len(groups[-1]) + 1
            slots = size * rows_per_candidate * (lengths[groups[-1][0]] + width)
            if (max_candidates is None or size <= max_candidates) and slots <= max_batch_tokens:
                groups[-1].append(i)
                continue
        groups.append([i])
    return groups


def cache_class():
    from transformers import DynamicCache

    return DynamicCache


def unbounded_cache() -> Any:
    """An empty key/value cache in which every layer keeps all its keys, sliding-window layers included.

    A model run without a cache makes one from its config, whose sliding-window layers keep only their last
    ``window - 1`` keys and count the tokens seen apart. Their keys, taken out and put back with
    `DynamicCache(ddp_cache_data=...)`, come back as plain full-attention layers that are shorter than the others:
    the attention mask, sized from the first layer, then no longer fits the full-attention layers (a size error in
    SDPA), and a model run without `position_ids` places the new tokens at the wrong positions. Running the prefix
    with this cache keeps one length, the prefix's, in every layer; the model's own sliding-window mask still hides
    the keys outside each layer's window, so the scores are those of a forward pass without a cache.

    Returns:
        `DynamicCache`: A cache without a config, whose layers are created as plain `DynamicLayer`s.
    """
    return cache_class()()


def cache_keyword(model: Any) -> str:
    """The keyword by which `model.forward` takes a key/value cache.

    `transformers` 5.x renamed `past_key_values` to `cache` and warns on the old name; older releases know only the
    old one. Asking the signature keeps both working without the warning.
    """
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def returned_cache(output: Any) -> Any:
    """The key/value cache of a model output, under its new name (`cache`) or its old one (`past_key_values`)."""
    cache = output.get("cache")
    return cache if cache is not None else output.past_key_values


class TokenLogProbs:
    """Log-probabilities of a causal LM's own tokens, with the vocabulary projected at the scored positions only.

    Args:
        model: A `transformers` causal LM (eval mode).
        max_batch_tokens (`int`, *optional*, defaults to `4096`): Padded tokens per forward pass.
    """

    def __init__(self, model: Any, *, max_batch_tokens: int = 4096):
        self.model = model
        self.max_batch_tokens = max_batch_tokens
        self.decoder = model.get_decoder()
        self._cache_keyword = cache_keyword(self.decoder)
        self.head = model.get_output_embeddings()
        self._head32: tuple[torch.Tensor, torch.Tensor | None] | None = None
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.softcap = getattr(config, "final_logit_softcapping", None)
        self.pad_id = 0
        self.device = next(model.parameters()).device

    def _head_float32(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The vocabulary projection's weight (and bias) in float32, copied once for a half-precision model."""
        if self._head32 is None:
            bias = getattr(self.head, "bias", None)
            self._head32 = (self.head.weight.float(), None if bias is None else bias.float())
        return self._head32

    def _log_probs(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of `targets` from the hidden states that predict them (the only vocabulary projection).

        For a bfloat16 or float16 model the projection runs in float32: half-precision logits are rounded by up to
        1/256 of their size (0.06 for a logit of 16), which flips close one-shot against zero-shot comparisons. Only
        the answer positions are projected, so the float32 product costs little (measured within noise on CPU).
        """
        if hidden.dtype in (torch.bfloat16, torch.float16):
            weight, bias = self._head_float32()
            logits = torch.nn.functional.linear(hidden.float(), weight, bias)
        else:
            logits = self.head(hidden).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits.log_softmax(-1).gather(1, targets[:, None])[:, 0]

    @torch.inference_mode()
    def prefix_cache(self, prefix_ids: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Run the prefix once and return its key/value tensors per layer (batch size 1)."""
        return self.prefix_cache_and_log_probs(prefix_ids, None)[0]

    @torch.inference_mode()
    def prefix_cache_and_log_probs(
        self, prefix_ids: list[int], score_from: int | None
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], np.ndarray | None]:
        """Run the prefix once: its key/value tensors, and the log-probabilities of its own tokens from `score_from`.

        Args:
            prefix_ids (`list[int]`): The prefix, starting with BOS.
            score_from (`int` or `None`): The first position whose token is scored (at least 1); `None` scores none.

        Returns:
            `tuple`: The key/value tensors per layer, and a float64 array of ``log p(prefix_ids[t] | prefix_ids[:t])``
            for ``t >= score_from`` (or `None`).
        """
        ids = torch.tensor([prefix_ids], dtype=torch.long, device=self.device)
        out = self.decoder(input_ids=ids, use_cache=True, **{self._cache_keyword: unbounded_cache()})
        kv = [(layer.keys, layer.values) for layer in returned_cache(out).layers]
        if score_from is None:
            return kv, None
        if not 1 <= score_from <= len(prefix_ids):
            raise ValueError(f"`score_from` must be in [1, {len(prefix_ids)}], got {score_from}.")
        hidden = out.last_hidden_state[0, score_from - 1 : len(prefix_ids) - 1]
        return kv, self._log_probs(hidden, ids[0, score_from:]).double().cpu().numpy()

    @torch.inference_mode()
    def sequence_log_probs(self, sequences: list[list[int]], starts: list[int]) -> list[np.ndarray]:
        """``log p(seq[t] | seq[:t])`` for ``t >= start`` of each sequence, in batches of similar length.

        Sequences are right-padded within a batch of at most `max_batch_tokens` padded tokens, so no position sees
        padding.

        Args:
            sequences (`list[list[int]]`): Token ids, each starting with BOS.
            starts (`list[int]`): Per sequence, the first scored position (at least 1).

        Returns:
            `list[np.ndarray]`: float64 arrays, in the order of `sequences`.
        """
        out: list[np.ndarray | None] = [None] * len(sequences)
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        batches: list[list[int]] = []
        for i in order:
            if batches and (len(batches[-1]) + 1) * len(sequences[batches[-1][0]]) <= self.max_batch_tokens:
                batches[-1].append(i)
            else:
                batches.append([i])
        for batch in batches:
            width = len(sequences[batch[0]])
            ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            rows, cols = [], []
            for b, i in enumerate(batch):
                seq, start = sequences[i], starts[i]
                if not 1 <= start <= len(seq):
                    raise ValueError(f"`starts[{i}]` must be in [1, {len(seq)}], got {start}.")
                ids[b, : len(seq)] = torch.tensor(seq)
                mask[b, : len(seq)] = 1
                rows.extend([b] * (len(seq) - start))
                cols.extend(range(start - 1, len(seq) - 1))
            ids, mask = ids.to(self.device), mask.to(self.device)
            rows_t = torch.tensor(rows, dtype=torch.long, device=self.device)
            cols_t = torch.tensor(cols, dtype=torch.long, device=self.device)
            hidden = self.decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            values = self._log_probs(hidden[rows_t, cols_t], ids[rows_t, cols_t + 1]).double().cpu().numpy()
            offset = 0
            for i in batch:
                n = len(sequences[i]) - starts[i]
                out[i] = values[offset : offset + n]
                offset += n
        return out  # type: ignore[return-value]


class ScoringEngine(TokenLogProbs):
    """Mean answer log-likelihoods of a causal LM for a fixed list of tasks after any prefix.

    Args:
        model: A `transformers` causal LM (eval mode).
        tasks (`list[EncodedTask]`): The encoded tasks.
        max_batch_tokens (`int`, *optional*, defaults to `4096`): Padded tokens per forward pass.
        max_batch_size (`int`, *optional*, defaults to `64`): Tasks per forward pass.
    """

    def __init__(
        self, model: Any, tasks: list[EncodedTask], *, max_batch_tokens: int = 4096, max_batch_size: int = 64
    ):
        if not tasks:
            raise ValueError("`task_set` is empty: it needs at least one task.")
        super().__init__(model, max_batch_tokens=max_batch_tokens)
        self.tasks = tasks
        self.batches = plan_batches(tasks, max_batch_tokens=max_batch_tokens, max_batch_size=max_batch_size)
        self._prepared = [self._prepare(batch) for batch in self.batches]

    def _prepare(self, batch: list[int]) -> dict[str, torch.Tensor]:
        """Pad a bucket once: ids, mask, and where the answer tokens and their predicting positions are."""
        tasks = [self.tasks[j] for j in batch]
        width = max(len(t.prompt_ids) + len(t.answer_ids) for t in tasks)
        ids = torch.full((len(tasks), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(tasks), width), dtype=torch.long)
        rows, cols, targets, owner = [], [], [], []
        for b, task in enumerate(tasks):
            seq = task.prompt_ids + task.answer_ids
            ids[b, : len(seq)] = torch.tensor(seq)
            mask[b, : len(seq)] = 1
            start = len(task.prompt_ids)
            rows.extend([b] * len(task.answer_ids))
            cols.extend(range(start - 1, start - 1 + len(task.answer_ids)))
            targets.extend(task.answer_ids)
            owner.extend([b] * len(task.answer_ids))
        counts = torch.tensor([len(t.answer_ids) for t in tasks], dtype=torch.float32)
        as_long = {"dtype": torch.long, "device": self.device}
        return {
            "ids": ids.to(self.device),
            "mask": mask.to(self.device),
            "rows": torch.tensor(rows, **as_long),
            "cols": torch.tensor(cols, **as_long),
            "targets": torch.tensor(targets, **as_long),
            "owner": torch.tensor(owner, **as_long),
            "counts": counts.to(self.device),
        }

    @torch.inference_mode()
    def score(self, prefix_ids: list[int]) -> np.ndarray:
        """Mean log-likelihood of each task's answer after ``prefix_ids`` (which should start with BOS).

        Args:
            prefix_ids (`list[int]`): ``[BOS]`` for zero-shot scores, ``[BOS] + demonstration`` for one-shot.

        Returns:
            `np.ndarray`: float64 array of shape `(m,)`, in task order.
        """
        return self.score_with_cache(self.prefix_cache(prefix_ids), len(prefix_ids))

    @torch.inference_mode()
    def score_with_cache(self, kv: list[tuple[torch.Tensor, torch.Tensor]], past: int) -> np.ndarray:
        """Like `score`, from a prefix cache made by `prefix_cache` (possibly by another engine on the same model).

        Args:
            kv (`list[tuple[torch.Tensor, torch.Tensor]]`): Key/value tensors per layer of the prefix.
            past (`int`): The prefix length in tokens.

        Returns:
            `np.ndarray`: float64 array of shape `(m,)`, in task order.
        """
        out = np.empty(len(self.tasks), dtype=np.float64)
        cache_cls = cache_class()
        for batch, prep in zip(self.batches, self._prepared, strict=False):
            size, width = prep["ids"].shape
            cache = cache_cls(ddp_cache_data=[(k.expand(size, -1, -1, -1), v.expand(size, -1, -1, -1)) for k, v in kv])
            mask = torch.cat([prep["mask"].new_ones(size, past), prep["mask"]], dim=1)
            positions = torch.arange(past, past + width, device=self.device).expand(size, -1)
            hidden = self.decoder(
                input_ids=prep["ids"],
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **{self._cache_keyword: cache},
            ).last_hidden_state
            token_lp = self._log_probs(hidden[prep["rows"], prep["cols"]], prep["targets"])
            sums = torch.zeros(size, dtype=torch.float32, device=self.device).index_add_(0, prep["owner"], token_lp)
            out[batch] = (sums / prep["counts"]).double().cpu().numpy()
        return out

    @torch.inference_mode()
    def score_candidates(self, prefixes: list[list[int]], *, max_candidates: int | None = None) -> np.ndarray:
        """One-shot scores of several candidates, stacking their demonstrations in the same forward passes.

        The same scores as ``np.stack([engine.score(p) for p in prefixes])`` to floating-point tolerance; see
        `score_candidates_and_log_probs`.

        Args:
            prefixes (`list[list[int]]`): Per candidate, ``[BOS] + demonstration``.
            max_candidates (`int`, *optional*): Most candidates in one forward; the token budget alone when `None`.

        Returns:
            `np.ndarray`: float64 array of shape `(n, m)`, in the order of `prefixes` and of the tasks.
        """
        return self.score_candidates_and_log_probs(prefixes, None, max_candidates=max_candidates)[0]

    @torch.inference_mode()
    def score_candidates_and_log_probs(
        self,
        prefixes: list[list[int]],
        score_from: list[int | None] | None,
        *,
        max_candidates: int | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """One-shot scores of several candidates, and the log-probabilities of their own tokens, batched.

        The demonstrations of a group of candidates (`plan_candidate_groups`, at most `max_batch_tokens` padded
        tokens) run in one forward, right-padded, so no real token sees a pad; that forward also gives each
        demonstration's own log-probabilities from `score_from` (see `prefix_cache_and_log_probs`). Their key/value
        caches are then shifted to end at the same slot (left-padded, pad slots zeroed) and stacked, and each task
        bucket runs once for a subgroup of candidates: one row per (candidate, task) pair, an attention mask that
        hides each row's pad slots, and position ids that continue from the row's own demonstration length. Real
        tokens stay contiguous, so a sliding-window layer, whose window the library counts in cache slots, sees the
        same tokens as in an unbatched forward. A subgroup holds at most ``max_batch_tokens`` token slots (rows times
        padded demonstration plus task length) and `max_candidates` candidates; a candidate that does not fit alone
        runs alone, as `score_with_cache` would.

        Args:
            prefixes (`list[list[int]]`): Per candidate, ``[BOS] + demonstration``.
            score_from (`list[int | None]`, *optional*): Per candidate, the first position of its prefix whose token
                is scored (at least 1), or `None` for none; `None` scores none for every candidate.
            max_candidates (`int`, *optional*): Most candidates in one forward; the token budget alone when `None`.

        Returns:
            `tuple`: float64 one-shot scores of shape `(n, m)`, and per candidate a float64 array of
            ``log p(prefix[t] | prefix[:t])`` for ``t >= score_from`` (or `None`).
        """
        if max_candidates is not None and (not isinstance(max_candidates, int) or max_candidates < 1):
            raise ValueError(f"`max_candidates` must be a positive integer or None, got {max_candidates!r}.")
        starts = list(score_from) if score_from is not None else [None] * len(prefixes)
        if len(starts) != len(prefixes):
            raise ValueError(f"`score_from` has {len(starts)} entries for {len(prefixes)} prefixes.")
        for i, (prefix, start) in enumerate(zip(prefixes, starts, strict=True)):
            if not prefix:
                raise ValueError(f"Prefix {i} is empty: it needs at least the BOS token.")
            if start is not None and not 1 <= start <= len(prefix):
                raise ValueError(f"`score_from[{i}]` must be in [1, {len(prefix)}], got {start}.")
        out = np.empty((len(prefixes), len(self.tasks)), dtype=np.float64)
        own: list[np.ndarray | None] = [None] * len(prefixes)
        lengths = [len(p) for p in prefixes]
        for group in plan_candidate_groups(
            lengths, rows_per_candidate=1, width=0, max_batch_tokens=self.max_batch_tokens, max_candidates=None
        ):
            kv, slots, own_values = self._stacked_prefix_caches(
                [prefixes[i] for i in group], [starts[i] for i in group]
            )
            for i, values in zip(group, own_values, strict=True):
                own[i] = values
            group_lengths = [lengths[i] for i in group]
            for batch, prep in zip(self.batches, self._prepared, strict=False):
                size, width = prep["ids"].shape
                for part in plan_candidate_groups(
                    group_lengths,
                    rows_per_candidate=size,
                    width=width,
                    max_batch_tokens=self.max_batch_tokens,
                    max_candidates=max_candidates,
                ):
                    # `plan_candidate_groups` keeps the group's (longest-first) order: `part` is a run of it.
                    first, last = part[0], part[-1] + 1
                    scores = self._score_stacked(kv, slots, first, last, group_lengths[first], prep)
                    out[np.ix_([group[k] for k in range(first, last)], batch)] = scores
        return out, own

    def _stacked_prefix_caches(
        self, prefixes: list[list[int]], starts: list[int | None]
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor, list[np.ndarray | None]]:
        """Run prefixes (longest first) in one right-padded forward; return their caches left-padded.

        Returns:
            `tuple`: Key/value tensors per layer of shape ``(n, heads, longest, head_dim)``, each prefix ending at the
            last slot and zeros before it; a bool tensor ``(n, longest)`` of the real slots; and per prefix the
            log-probabilities of its own tokens from its `starts` entry (or `None`).
        """
        width = len(prefixes[0])
        lengths = torch.tensor([len(p) for p in prefixes], dtype=torch.long, device=self.device)
        ids = torch.full((len(prefixes), width), self.pad_id, dtype=torch.long)
        for b, prefix in enumerate(prefixes):
            ids[b, : len(prefix)] = torch.tensor(prefix)
        ids = ids.to(self.device)
        slot = torch.arange(width, device=self.device)
        right_mask = slot[None, :] < lengths[:, None]
        out = self.decoder(
            input_ids=ids,
            attention_mask=right_mask.long(),
            use_cache=True,
            **{self._cache_keyword: unbounded_cache()},
        )
        # Shift each row right by its padding: slot s holds the prefix's token s - (width - length).
        source = slot[None, :] - (width - lengths)[:, None]
        slots = source >= 0
        index = source.clamp(min=0)
        kv = []
        for layer in returned_cache(out).layers:
            keys, values = layer.keys, layer.values
            gather = index[:, None, :, None].expand(-1, keys.shape[1], -1, keys.shape[3])
            keep = slots[:, None, :, None]
            kv.append(
                (
                    torch.where(keep, keys.gather(2, gather), torch.zeros((), dtype=keys.dtype, device=self.device)),
                    torch.where(
                        keep, values.gather(2, gather), torch.zeros((), dtype=values.dtype, device=self.device)
                    ),
                )
            )
        own: list[np.ndarray | None] = [None] * len(prefixes)
        scored = [b for b, start in enumerate(starts) if start is not None]
        if scored:
            rows = [b for b in scored for _ in range(starts[b] - 1, len(prefixes[b]) - 1)]
            cols = [t for b in scored for t in range(starts[b] - 1, len(prefixes[b]) - 1)]
            rows_t = torch.tensor(rows, dtype=torch.long, device=self.device)
            cols_t = torch.tensor(cols, dtype=torch.long, device=self.device)
            hidden = out.last_hidden_state[rows_t, cols_t]
            values = self._log_probs(hidden, ids[rows_t, cols_t + 1]).double().cpu().numpy()
            offset = 0
            for b in scored:
                n = len(prefixes[b]) - starts[b]
                own[b] = values[offset : offset + n]
                offset += n
        return kv, slots, own

    def _score_stacked(
        self,
        kv: list[tuple[torch.Tensor, torch.Tensor]],
        slots: torch.Tensor,
        first: int,
        last: int,
        longest: int,
        prep: dict[str, torch.Tensor],
    ) -> np.ndarray:
        """Scores of one task bucket after the stacked prefixes ``first:last`` (the longest `longest` tokens long).

        Returns:
            `np.ndarray`: float64 array of shape ``(last - first, bucket size)``.
        """
        count = last - first
        size, width = prep["ids"].shape
        start = slots.shape[1] - longest
        cache = cache_class()(
            ddp_cache_data=[
                (
                    k[first:last, :, start:].repeat_interleave(size, 0),
                    v[first:last, :, start:].repeat_interleave(size, 0),
                )
                for k, v in kv
            ]
        )
        demo_mask = slots[first:last, start:].repeat_interleave(size, 0)
        mask = torch.cat([demo_mask.long(), prep["mask"].repeat(count, 1)], dim=1)
        own_lengths = slots[first:last].sum(1).repeat_interleave(size, 0)
        positions = own_lengths[:, None] + torch.arange(width, device=self.device)[None, :]
        hidden = self.decoder(
            input_ids=prep["ids"].repeat(count, 1),
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_keyword: cache},
        ).last_hidden_state
        offsets = torch.arange(count, device=self.device).repeat_interleave(prep["rows"].numel()) * size
        rows = prep["rows"].repeat(count) + offsets
        owner = prep["owner"].repeat(count) + offsets
        token_lp = self._log_probs(hidden[rows, prep["cols"].repeat(count)], prep["targets"].repeat(count))
        sums = torch.zeros(count * size, dtype=torch.float32, device=self.device).index_add_(0, owner, token_lp)
        return (sums / prep["counts"].repeat(count)).view(count, size).double().cpu().numpy()


def read_signals(
    reader: TokenLogProbs,
    signals: list[SignalSequences | None],
    conditional: list[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Alignment and completeness per row: the missing forwards batched, identical rows read once.

    Args:
        reader (`TokenLogProbs`): The prospector (a `ScoringEngine` is one).
        signals (`list[SignalSequences | None]`): Per row, from `SegmentEncoder.encode_signals` (`None`: no answer).
        conditional (`list`, *optional*): Per row, the conditional log-probabilities already read from the
            demonstration's forward (see `prefix_cache_and_log_probs`), or `None` where they still have to be read.

    Returns:
        `tuple[np.ndarray, np.ndarray]`: `nuggets_alignment` and `nuggets_completeness`, NaN where a row has none.
    """
    conditional = list(conditional) if conditional is not None else [None] * len(signals)
    first: dict[SignalSequences, int] = {}
    for i, sig in enumerate(signals):
        if sig is not None:
            if sig in first and conditional[first[sig]] is None:
                conditional[first[sig]] = conditional[i]
            first.setdefault(sig, i)
    unique = sorted(first.values())
    todo = [i for i in unique if conditional[i] is None]
    sequences = [list(signals[i].conditional) for i in todo] + [list(signals[i].bare) for i in unique]
    starts = [signals[i].conditional_start for i in todo] + [signals[i].bare_start for i in unique]
    values = reader.sequence_log_probs(sequences, starts) if sequences else []
    for i, lp in zip(todo, values[: len(todo)], strict=True):
        conditional[i] = lp
    bare = dict(zip(unique, values[len(todo) :], strict=True))
    alignment = np.full(len(signals), np.nan)
    completeness = np.full(len(signals), np.nan)
    for i, sig in enumerate(signals):
        if sig is not None:
            j = first[sig]
            alignment[i], completeness[i] = signals_from_log_probs(conditional[j], bare[j], sig)
    return alignment, completeness


def signals_from_log_probs(
    conditional: np.ndarray, bare: np.ndarray, sequences: SignalSequences
) -> tuple[float, float]:
    """`nuggets_alignment` and `nuggets_completeness` from the log-probabilities of a candidate's signal sequences.

    Args:
        conditional (`np.ndarray`): Log-probabilities of `sequences.conditional` from `conditional_start` on: the
            answer tokens, then (unless the answer was cut) the end-of-answer token.
        bare (`np.ndarray`): Log-probabilities of the answer tokens of `sequences.bare`.
        sequences (`SignalSequences`): The sequences.

    Returns:
        `tuple[float, float]`: The alignment (mean answer log-likelihood after the prompt minus after the bare cue,
        the log of 1/IFD) and the completeness (the end token's log-probability; NaN when the answer was cut).
    """
    n = sequences.answer_length
    alignment = float(np.mean(conditional[:n]) - np.mean(bare))
    completeness = float(conditional[n]) if sequences.has_end else float("nan")
    return alignment, completeness


def golden_indicators(s_one: np.ndarray, s_zero: np.ndarray) -> np.ndarray:
    """Per-task gains as booleans: ``s_one > s_zero`` (strict: a tie is no gain)."""
    return np.asarray(s_one) > np.asarray(s_zero)


def golden_from_scores(s_one: np.ndarray, s_zero: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Golden scores and mean gains from one-shot scores `(n, m)` and zero-shot scores `(m,)`.

    Returns:
        `tuple[np.ndarray, np.ndarray]`: ``GS = mean_j [s_one > s_zero]`` and ``gain = mean_j (s_one - s_zero)``.

    Example:

    ```python
    >>> import numpy as np
    >>> golden_from_scores(np.array([[-1.0, -2.0], [-3.0, -2.0]]), np.array([-2.0, -2.0]))
    (array([0.5, 0. ]), array([ 0.5, -0.5]))
    ```
    """
    s_one = np.atleast_2d(np.asarray(s_one, dtype=np.float64))
    s_zero = np.asarray(s_zero, dtype=np.float64)
    return golden_indicators(s_one, s_zero[None, :]).mean(axis=1), (s_one - s_zero[None, :]).mean(axis=1)
