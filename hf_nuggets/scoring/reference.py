"""A faithful re-implementation of the original NUGGETS scoring loop, kept as the oracle and the baseline.

Per candidate it runs the demonstration once (every layer keeping all its keys, as the original's tuple caches did;
see `unbounded_cache`), expands its key/value cache over batches of 8 tasks, right-pads every task to a fixed 200
tokens, takes the full logits and a full-vocabulary log-softmax, and averages the log-probabilities of the answer
tokens. It shares the project's tokenization (`SegmentEncoder`), so the ids it
scores are the engine's; only the computation differs. It is deliberately plain and slow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.formatting import Example
from .engine import EncodedTask, SegmentEncoder, cache_class, cache_keyword, returned_cache, unbounded_cache


@torch.inference_mode()
def _batch_scores(
    model: Any, kv, prefix_len: int, tasks: list[EncodedTask], pad_to: int, pad_id: int, cache_kw: str
) -> list[float]:
    device = next(model.parameters()).device
    width = max(pad_to, max(len(t.prompt_ids) + len(t.answer_ids) for t in tasks))
    ids = torch.full((len(tasks), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(tasks), width), dtype=torch.long)
    for b, task in enumerate(tasks):
        seq = task.prompt_ids + task.answer_ids
        ids[b, : len(seq)] = torch.tensor(seq)
        mask[b, : len(seq)] = 1
    cache = cache_class()(
        ddp_cache_data=[(k.repeat(len(tasks), 1, 1, 1), v.repeat(len(tasks), 1, 1, 1)) for k, v in kv]
    )
    full_mask = torch.cat([torch.ones((len(tasks), prefix_len), dtype=torch.long), mask], dim=1)
    logits = model(
        input_ids=ids.to(device), attention_mask=full_mask.to(device), use_cache=True, **{cache_kw: cache}
    ).logits
    log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
    scores = []
    for b, task in enumerate(tasks):
        start = len(task.prompt_ids)
        total = 0.0
        for i, token in enumerate(task.answer_ids):
            total += float(log_probs[b, start - 1 + i, token])
        scores.append(total / len(task.answer_ids))
    return scores


@torch.inference_mode()
def reference_scores(
    model: Any,
    encoder: SegmentEncoder,
    prefix_ids: list[int],
    tasks: list[EncodedTask],
    *,
    batch_size: int = 8,
    pad_to: int = 200,
) -> np.ndarray:
    """Mean answer log-likelihoods of every task after ``prefix_ids``, the original NUGGETS way.

    Args:
        model: A `transformers` causal LM.
        encoder (`SegmentEncoder`): Gives the BOS id; the tasks are already encoded with it.
        prefix_ids (`list[int]`): ``[BOS]`` or ``[BOS] + demonstration``.
        tasks (`list[EncodedTask]`): Encoded tasks.
        batch_size (`int`, *optional*, defaults to `8`): Tasks per forward pass.
        pad_to (`int`, *optional*, defaults to `200`): Fixed padded length of the task part.

    Returns:
        `np.ndarray`: float64 array of shape `(m,)`.
    """
    device = next(model.parameters()).device
    cache_kw = cache_keyword(model)
    out = model(input_ids=torch.tensor([prefix_ids], device=device), use_cache=True, **{cache_kw: unbounded_cache()})
    kv = [(layer.keys, layer.values) for layer in returned_cache(out).layers]
    pad_id = encoder.tokenizer.pad_token_id if encoder.tokenizer.pad_token_id is not None else 0
    scores: list[float] = []
    for start in range(0, len(tasks), batch_size):
        batch = tasks[start : start + batch_size]
        scores.extend(_batch_scores(model, kv, len(prefix_ids), batch, pad_to, pad_id, cache_kw))
    return np.asarray(scores, dtype=np.float64)


def reference_nuggets(
    model: Any,
    tokenizer: Any,
    candidates: list[Example],
    tasks: list[Example],
    *,
    template: str = "alpaca",
    limits=None,
    batch_size: int = 8,
    pad_to: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-shot scores `(m,)` and one-shot scores `(n, m)` with the reference loop.

    Args:
        model: A `transformers` causal LM.
        tokenizer: Its tokenizer.
        candidates (`list[Example]`): The candidate demonstrations.
        tasks (`list[Example]`): The predefined task set.
        template (`str`, *optional*, defaults to `"alpaca"`): Prompt template.
        limits (`TruncationLimits`, *optional*): Segment limits.
        batch_size (`int`, *optional*, defaults to `8`): Tasks per forward pass.
        pad_to (`int`, *optional*, defaults to `200`): Fixed padded length of the task part.

    Returns:
        `tuple[np.ndarray, np.ndarray]`: ``(s_zero, s_one)``.
    """
    encoder = SegmentEncoder(tokenizer, template, limits)
    encoded = [encoder.encode_task(t, j)[0] for j, t in enumerate(tasks)]
    s_zero = reference_scores(model, encoder, [encoder.bos_id], encoded, batch_size=batch_size, pad_to=pad_to)
    s_one = (
        np.stack(
            [
                reference_scores(
                    model, encoder, encoder.encode_demo(c)[0], encoded, batch_size=batch_size, pad_to=pad_to
                )
                for c in candidates
            ]
        )
        if candidates
        else np.zeros((0, len(tasks)))
    )
    return s_zero, s_one
