"""Quality scores for task-set refinement: a reward model, or the prospector used as a Yes/No judge."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..data.formatting import Example
from ..scoring.prospector import Prospector, load_prospector

logger = logging.getLogger(__name__)

JUDGE_QUESTION = "Is the response a correct, complete and helpful answer to the instruction? Answer with Yes or No."
#: What ends a field of the judge's prompt that was cut to fit its token cap.
CUT_MARK = " [...]"
#: Characters of a field tokenized at most per token it may keep: a 1 MB field is never tokenized whole.
_CHARS_PER_TOKEN = 64
#: Tokens kept aside per field for the cut mark and for merges where a cut field meets the text around it.
_FIELD_SLACK = 8


def fair_shares(lengths: Sequence[int], budget: int) -> list[int]:
    """Share `budget` among fields of the given lengths: a field shorter than its equal share keeps all of it, and
    what it leaves goes to the longer fields (which share it equally).

    Example:

    ```python
    >>> fair_shares([10, 500, 40], 300)
    [10, 250, 40]
    >>> fair_shares([400, 500], 300)
    [150, 150]
    ```
    """
    shares, left = [0] * len(lengths), max(budget, 0)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for k, i in enumerate(order):
        shares[i] = min(lengths[i], left // (len(order) - k))
        left -= shares[i]
    return shares


def judge_prompt(example: Example, tokenizer: Any = None, max_tokens: int | None = None) -> str:
    """The user message the judge reads for one example.

    With a `tokenizer` and `max_tokens`, the instruction, the input and the response hold at most `max_tokens`
    tokens together (see `fair_shares`), so a huge field cannot make a huge prompt: a field cut to its share ends with
    `CUT_MARK`, and the prompt keeps its frame (the opening, each field's label and the question). The fields are
    left as they are when they fit.

    Args:
        example (`Example`): The example to judge.
        tokenizer (*optional*): The judge's tokenizer, to count tokens.
        max_tokens (`int`, *optional*): Tokens the three fields may take together (the frame not included).

    Returns:
        `str`: The prompt.
    """
    fields = [example.instruction, example.input, example.output]
    if tokenizer is not None and max_tokens is not None:
        cap = (max_tokens + 1) * _CHARS_PER_TOKEN
        ids = [tokenizer(text[:cap], add_special_tokens=False)["input_ids"] if text else [] for text in fields]
        budget = max_tokens - _FIELD_SLACK * sum(bool(text) for text in fields)
        shares = fair_shares([len(i) for i in ids], budget)
        fields = [
            text if len(text) <= cap and len(i) <= share else tokenizer.decode(i[:share]) + CUT_MARK
            for text, i, share in zip(fields, ids, shares, strict=True)
        ]
    instruction, input_, output = fields
    context = f"Input: {input_}\n" if input_ else ""
    return (
        f"Here is an instruction and a response.\n\nInstruction: {instruction}\n{context}"
        f"Response: {output or '(empty)'}\n\n{JUDGE_QUESTION}"
    )


def _verdict_ids(tokenizer: Any) -> tuple[int, int]:
    ids = []
    for word in ("Yes", "No"):
        tokens = tokenizer(word, add_special_tokens=False)["input_ids"]
        if not tokens:
            raise ValueError(f"The judge's tokenizer cannot encode the verdict {word!r}.")
        ids.append(tokens[0])
    if ids[0] == ids[1]:
        raise ValueError("The judge's tokenizer maps 'Yes' and 'No' to the same first token.")
    return ids[0], ids[1]


@torch.inference_mode()
def prospector_quality_scores(
    examples: Sequence[Example],
    prospector: Prospector | None = None,
    *,
    batch_size: int = 16,
    max_tokens: int = 512,
    progress: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Quality as the judge's log-odds of "Yes" over "No" for "is this a good answer?".

    The prospector (by default the embedded SmolLM2-135M-Instruct) reads each example through its chat template
    and the next-token log-probabilities of the two verdict tokens are compared: `log p(Yes) - log p(No)`. A small
    model is a weak judge; this is the offline default, and a reward model (`reward_model_scores`) is the better
    choice where one is available.

    Args:
        examples (`list[Example]`): The examples to judge.
        prospector (`Prospector`, *optional*): The judge; the embedded model when omitted.
        batch_size (`int`, *optional*, defaults to `16`): Examples per forward pass.
        max_tokens (`int`, *optional*, defaults to `512`): Tokens of a prompt, its chat template included: the
            instruction, input and response share what the rest leaves (see `judge_prompt`); a prompt still longer
            keeps its last tokens.
        progress (`bool`, *optional*, defaults to `False`): Show a progress bar.
        should_stop (`Callable[[], bool]`, *optional*): Asked before each forward pass; when it returns `True`, the
            judging stops with `RunCancelled` (it may also raise an error of its own).

    Returns:
        `np.ndarray`: float64 log-odds, one per example (higher is better).
    """
    from tqdm.auto import tqdm

    prospector = prospector or load_prospector()
    tok, model = prospector.tokenizer, prospector.model
    yes, no = _verdict_ids(tok)
    if getattr(tok, "chat_template", None):

        def frame(prompt: str) -> str:
            return tok.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
    else:

        def frame(prompt: str) -> str:
            return prompt + "\nAnswer:"

    bare = len(tok(frame(judge_prompt(Example("", "", "x"))), add_special_tokens=False)["input_ids"])
    texts = [frame(judge_prompt(e, tok, max_tokens - bare)) for e in examples]
    encoded = [tok(t, add_special_tokens=False)["input_ids"][-max_tokens:] for t in texts]
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    device = next(model.parameters()).device
    out = np.empty(len(examples), dtype=np.float64)
    order = np.argsort([len(e) for e in encoded], kind="stable")
    for start in tqdm(range(0, len(order), batch_size), desc="Judging", disable=not progress):
        if should_stop is not None and should_stop():
            from ..run.loop import RunCancelled

            raise RunCancelled(f"Stopped while judging the quality of the rows ({start} of {len(order)} judged).")
        idx = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.zeros((len(idx), width), dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for b, i in enumerate(idx):
            ids[b, : len(encoded[i])] = torch.tensor(encoded[i])
            mask[b, : len(encoded[i])] = 1
        hidden = decoder(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        last = hidden[torch.arange(len(idx)), mask.sum(1).to(device) - 1]
        logp = head(last).float().log_softmax(-1)
        out[idx] = (logp[:, yes] - logp[:, no]).double().cpu().numpy()
    return out


@torch.inference_mode()
def reward_model_scores(
    examples: Sequence[Example],
    model: str | Any,
    *,
    tokenizer: Any = None,
    batch_size: int = 16,
    device: str | None = None,
    max_length: int = 512,
    progress: bool = False,
) -> np.ndarray:
    """Quality from a reward model (`AutoModelForSequenceClassification`), e.g. OpenAssistant's
    `reward-model-deberta-v3-large-v2` as in SuperNUGGETS: the first logit for the pair (question, answer).

    Args:
        examples (`list[Example]`): The examples to score.
        model (`str` or `PreTrainedModel`): Model id, folder, or a loaded sequence-classification model.
        tokenizer (*optional*): Its tokenizer when `model` is an object.
        batch_size (`int`, *optional*, defaults to `16`): Pairs per forward pass.
        device (`str`, *optional*): Torch device for a model loaded by name.
        max_length (`int`, *optional*, defaults to `512`): Token limit per pair.
        progress (`bool`, *optional*, defaults to `False`): Show a progress bar.

    Returns:
        `np.ndarray`: float64 rewards, one per example (higher is better).
    """
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if isinstance(model, str):
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
        model = AutoModelForSequenceClassification.from_pretrained(model).to(device or "cpu").eval()
    if tokenizer is None:
        raise ValueError("`tokenizer` is required when `model` is a loaded model.")
    questions = [e.instruction + (f"\n{e.input}" if e.input else "") for e in examples]
    answers = [e.output for e in examples]
    dev = next(model.parameters()).device
    out = np.empty(len(examples), dtype=np.float64)
    for start in tqdm(range(0, len(examples), batch_size), desc="Reward model", disable=not progress):
        enc = tokenizer(
            questions[start : start + batch_size],
            answers[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(dev)
        out[start : start + batch_size] = model(**enc).logits[:, 0].float().cpu().numpy()
    return out
