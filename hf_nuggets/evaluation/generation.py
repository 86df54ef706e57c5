"""Model outputs for the evaluation instructions: batched greedy generation, the AlpacaEval set and output files."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: The AlpacaEval dataset repository on the Hub (the evaluation set, and the instruction difficulties of the GLM).
ALPACA_EVAL_REPO = "tatsu-lab/alpaca_eval"
#: The 805 instructions with text-davinci-003's outputs (AlpacaEval 1.0's reference).
ALPACA_EVAL_FILE = "alpaca_eval.json"
GENERATION_TEMPLATES = ("auto", "chat", "alpaca")


def _as_prospector(model: Any, device: str | None = None):
    if hasattr(model, "model") and hasattr(model, "tokenizer"):
        return model
    from ..scoring.prospector import load_prospector

    return load_prospector(None if model is None else str(model), device=device)


def resolve_generation_template(template: str, tokenizer: Any) -> str:
    """`"chat"` or `"alpaca"`, the prompt a model is asked in: `"auto"` is chat when the tokenizer has a chat template.

    Raises:
        `ValueError`: For an unknown template, or `"chat"` with a tokenizer that has no chat template.
    """
    if template not in GENERATION_TEMPLATES:
        raise ValueError(f"`template` must be one of {GENERATION_TEMPLATES}, got {template!r}.")
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if template == "chat" and not has_chat:
        raise ValueError("`template='chat'` needs a tokenizer with a chat template; use 'alpaca' or 'auto'.")
    if template == "auto":
        return "chat" if has_chat else "alpaca"
    return template


def build_generation_prompt(tokenizer: Any, instruction: str, template: str = "auto") -> list[int]:
    """The token ids of the prompt that asks the model to follow `instruction`.

    Args:
        tokenizer (`PreTrainedTokenizerBase`): The model's tokenizer.
        instruction (`str`): The instruction.
        template (`str`, *optional*, defaults to `"auto"`): `"chat"` (the tokenizer's chat template, one user turn),
            `"alpaca"` (`Instruction:\\n...\\nResponse:\\n` after one BOS, the package's prompt), or `"auto"`: chat
            when the tokenizer has a chat template.

    Returns:
        `list[int]`: The prompt's token ids.
    """
    if resolve_generation_template(template, tokenizer) == "chat":
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": instruction.strip()}], tokenize=False, add_generation_prompt=True
        )
        return tokenizer.encode(text, add_special_tokens=False)
    from ..data.formatting import ALPACA_TEMPLATE_NO_INPUT

    ids = tokenizer.encode(ALPACA_TEMPLATE_NO_INPUT.format(instruction=instruction.strip()), add_special_tokens=False)
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return ([start] if start is not None else []) + ids


def left_padded(sequences: Sequence[Sequence[int]], pad: int):
    """Token id lists as one left-padded batch: `(input_ids, attention_mask)`, both `torch.long`.

    Example:
        ```python
        >>> ids, mask = left_padded([[5, 6, 7], [8]], pad=0)
        >>> ids.tolist(), mask.tolist()
        ([[5, 6, 7], [0, 0, 8]], [[1, 1, 1], [0, 0, 1]])
        ```
    """
    import torch

    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, width - len(seq) :] = 1
    return ids, mask


def generate_outputs(
    model: Any,
    instructions: Sequence[str],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 512,
    template: str = "auto",
    do_sample: bool = False,
    progress: bool = True,
    device: str | None = None,
    **generate_kwargs: Any,
) -> list[str]:
    """Generate a model's outputs for a list of instructions, batched, greedy by default.

    Prompts are sorted by length and left-padded, so a batch wastes little padding; outputs come back in the order of
    `instructions`, decoded without special tokens and stripped.

    Args:
        model (`str` or `Prospector`): What `load_prospector` loads (Hub id, folder, `.gguf` file; `None` for the
            embedded model), or a loaded `Prospector`.
        instructions (`Sequence[str]`): The instructions.
        batch_size (`int`, *optional*, defaults to `8`): Prompts per `generate` call.
        max_new_tokens (`int`, *optional*, defaults to `512`): Longest output, in tokens.
        template (`str`, *optional*, defaults to `"auto"`): See `build_generation_prompt`.
        do_sample (`bool`, *optional*, defaults to `False`): Sample instead of greedy decoding.
        progress (`bool`, *optional*, defaults to `True`): Show a progress bar.
        device (`str`, *optional*): Device for a model loaded by name.
        **generate_kwargs: Passed to `model.generate` (e.g. `temperature`, `top_p`, `repetition_penalty`).

    Returns:
        `list[str]`: One output per instruction.

    Example:
        ```python
        >>> outputs = generate_outputs(tiny_prospector, ["Name a colour.", "Add 2 and 3."], max_new_tokens=4,
        ...     progress=False)
        >>> len(outputs), all(isinstance(o, str) for o in outputs)
        (2, True)
        ```
    """
    import torch
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
    if max_new_tokens < 1:
        raise ValueError(f"`max_new_tokens` must be at least 1, got {max_new_tokens}.")
    for i, instruction in enumerate(instructions):
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError(f"`instructions` must be non-empty strings, got {instruction!r} at index {i}.")
    prospector = _as_prospector(model, device)
    lm, tokenizer = prospector.model, prospector.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("The tokenizer has neither a pad nor an EOS token to pad batches with.")
    prompts = [build_generation_prompt(tokenizer, ins, template) for ins in instructions]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    outputs: list[str] = [""] * len(prompts)
    settings = {"do_sample": do_sample, "max_new_tokens": max_new_tokens, "pad_token_id": pad, **generate_kwargs}
    if not do_sample:
        settings.update(temperature=None, top_p=None, top_k=None)
    bar = tqdm(total=len(prompts), desc="generating", disable=not progress)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        ids, mask = left_padded([prompts[i] for i in batch], pad)
        with torch.inference_mode():
            generated = lm.generate(
                input_ids=ids.to(prospector.device), attention_mask=mask.to(prospector.device), **settings
            )
        for row, i in enumerate(batch):
            outputs[i] = tokenizer.decode(generated[row, ids.shape[1] :], skip_special_tokens=True).strip()
        bar.update(len(batch))
    bar.close()
    empty = sum(not o for o in outputs)
    if empty:
        logger.warning("%d of %d generated outputs are empty.", empty, len(outputs))
    return outputs


def load_alpaca_eval(
    path_or_id: str | os.PathLike = ALPACA_EVAL_REPO,
    *,
    filename: str = ALPACA_EVAL_FILE,
    split: str = "train",
    revision: str | None = None,
    token: str | bool | None = None,
):
    """Load the evaluation instructions: AlpacaEval's 805 from the Hub, or any dataset with an `instruction` column.

    Args:
        path_or_id (`str`, *optional*, defaults to `"tatsu-lab/alpaca_eval"`): The AlpacaEval Hub repository (read
            as its JSON file `filename`, needs a network), or a file, saved folder or Hub id `load_data` reads.
        filename (`str`, *optional*, defaults to `"alpaca_eval.json"`): The file of the AlpacaEval repository
            (`alpaca_eval_gpt4_baseline.json` holds the GPT-4 Turbo reference outputs of AlpacaEval 2.0).
        split (`str`, *optional*, defaults to `"train"`): The split of other datasets.
        revision (`str`, *optional*): Hub revision.
        token (`str` or `bool`, *optional*): Hub token.

    Returns:
        `datasets.Dataset`: With an `instruction` column (and `output`, `generator` for AlpacaEval's files).

    Raises:
        `ValueError`: When the dataset has no `instruction` column.
    """
    from datasets import Dataset

    if str(path_or_id) == ALPACA_EVAL_REPO:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(ALPACA_EVAL_REPO, filename, repo_type="dataset", revision=revision, token=token)
        dataset = Dataset.from_list(read_outputs(path))
    else:
        from ..data.loading import load_data

        kwargs = {k: v for k, v in {"revision": revision, "token": token}.items() if v is not None}
        dataset = load_data(path_or_id, split=split, **kwargs)
    if "instruction" not in dataset.column_names:
        raise ValueError(
            f"The evaluation set {str(path_or_id)!r} needs an `instruction` column; it has {dataset.column_names}."
        )
    return dataset


def read_json_records(path: str | os.PathLike, what: str = "Outputs") -> Any:
    """The records of a JSON file (a list, or one object) or of a JSON Lines file, as AlpacaEval's files hold them.

    Args:
        path (`str`): The JSON or JSONL file.
        what (`str`, *optional*, defaults to `"Outputs"`): What the file is, for the messages.

    Returns:
        The parsed JSON: a list of records, or one record.

    Raises:
        `FileNotFoundError`: When the file does not exist.
        `ValueError`: When it is neither JSON nor JSON Lines.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist.")
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as err:
            raise ValueError(f"{str(path)!r} is neither a JSON list nor JSON lines ({err}).") from err


def read_outputs(path: str | os.PathLike) -> list[dict]:
    """Read model outputs in AlpacaEval's format: a JSON list (or JSONL) of `{instruction, output[, generator]}`.

    Args:
        path (`str`): The JSON or JSONL file.

    Returns:
        `list[dict]`: The records.

    Raises:
        `ValueError`: When the file is not a list of records with `instruction` and `output`.
    """
    records = read_json_records(path, "Outputs")
    if isinstance(records, dict):
        records = [records]
    for i, record in enumerate(records if isinstance(records, list) else [None]):
        if not isinstance(record, dict) or not {"instruction", "output"} <= set(record):
            raise ValueError(f"{str(path)!r}: record {i} must be an object with `instruction` and `output`.")
    return records
