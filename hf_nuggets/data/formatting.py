"""Row extraction and prompt templates: how an example becomes the text segments the prospector reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The NUGGETS default prompt. The ``Input`` block is dropped when the input is empty.
ALPACA_TEMPLATE = "Instruction:\n{instruction}\nInput:\n{input}\nResponse:\n"
ALPACA_TEMPLATE_NO_INPUT = "Instruction:\n{instruction}\nResponse:\n"
#: Appended to a demonstration (prompt + answer) before the task prompt that follows it.
DEMO_SEPARATOR = "\n\n"

DEFAULT_COLUMNS = {"instruction": "instruction", "input": "input", "output": "output"}
TEMPLATES = ("alpaca", "chat")


@dataclass(frozen=True)
class Example:
    """One instruction example with stripped text fields.

    Args:
        instruction (`str`): The question or task.
        input (`str`): Optional context for the instruction (may be empty).
        output (`str`): The answer.
    """

    instruction: str
    input: str
    output: str


def _where(row: int | None) -> str:
    return f"row {row}" if row is not None else "this row"


def _text(value: Any, column: str, row: int | None, *, allow_none: bool) -> str:
    if value is None and allow_none:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"Column `{column}` must hold strings, got {type(value).__name__} at {_where(row)}.")
    return value.strip()


def messages_to_example(messages: Any, *, row: int | None = None, column: str = "messages") -> Example:
    """Turn a conversation in the TRL conversational format into an `Example`.

    The last message must come from the assistant: it is the answer. The last user message before it is the
    instruction. Any earlier turns (a system prompt, previous exchanges) become the `input`, one
    ``role: content`` line each, so the context the answer depends on is kept.

    Args:
        messages (`list[dict]`): Messages with `role` and `content` keys.
        row (`int`, *optional*): Row index, used in error messages.
        column (`str`, *optional*, defaults to `"messages"`): Column name, used in error messages.

    Returns:
        `Example`: The converted example.

    Example:

    ```python
    >>> messages_to_example([{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}])
    Example(instruction='Hi?', input='', output='Hello.')
    ```
    """
    if not isinstance(messages, Sequence) or isinstance(messages, str) or len(messages) < 2:
        raise ValueError(
            f"Column `{column}` must hold a list of at least two {{role, content}} messages at {_where(row)}, "
            f"got {messages!r:.80}."
        )
    turns = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise ValueError(f"Message {i} of column `{column}` at {_where(row)} needs `role` and `content` keys.")
        turns.append((message["role"], _text(message["content"], f"{column}[{i}].content", row, allow_none=False)))
    if turns[-1][0] != "assistant":
        raise ValueError(
            f"The last message of column `{column}` at {_where(row)} must have role 'assistant', got {turns[-1][0]!r}."
        )
    if turns[-2][0] != "user":
        raise ValueError(
            f"The message before the answer in column `{column}` at {_where(row)} must have role 'user', "
            f"got {turns[-2][0]!r}."
        )
    context = "\n".join(f"{role}: {content}" for role, content in turns[:-2])
    return Example(instruction=turns[-2][1], input=context, output=turns[-1][1])


def resolve_columns(column_names: Sequence[str], columns: Mapping[str, str | None] | None = None) -> dict:
    """Decide how rows are read: Alpaca-style columns (renamed by `columns`) or a chat `messages` column.

    Args:
        column_names (`list[str]`): The dataset's columns.
        columns (`dict`, *optional*): Maps `instruction`, `input`, `output` (or `messages`) to column names.
            `input` may map to `None` when the data has no input column.

    Returns:
        `dict`: Either ``{"messages": name}`` or ``{"instruction": ..., "input": ... or None, "output": ...}``.
    """
    names = set(column_names)
    columns = dict(columns or {})
    unknown = set(columns) - {"instruction", "input", "output", "messages"}
    if unknown:
        raise ValueError(f"`columns` keys must be among instruction, input, output, messages; got {sorted(unknown)}.")
    if "messages" in columns or ("messages" in names and "instruction" not in columns and "instruction" not in names):
        name = columns.get("messages", "messages")
        if name not in names:
            raise KeyError(f"Column `{name}` (mapped to `messages`) not found; the data has {sorted(names)}.")
        return {"messages": name}
    mapping = {**DEFAULT_COLUMNS, **columns}
    for key in ("instruction", "output"):
        if mapping[key] not in names:
            raise KeyError(
                f"Column `{mapping[key]}` (for `{key}`) not found; the data has {sorted(names)}. "
                f"Map your columns with `columns={{'{key}': ...}}`, or provide a `messages` column."
            )
    if mapping["input"] is not None and mapping["input"] not in names:
        if "input" in columns:
            raise KeyError(f"Column `{mapping['input']}` (for `input`) not found; the data has {sorted(names)}.")
        mapping["input"] = None
    return mapping


def examples_from_batch(
    batch: Mapping[str, Sequence[Any]], mapping: Mapping[str, str | None], indices: Sequence[int] | None = None
) -> list[Example]:
    """Read a `datasets` batch (a dict of columns) into validated `Example` objects.

    Args:
        batch (`dict[str, list]`): The batch, as `datasets.Dataset.map(batched=True)` passes it.
        mapping (`dict`): The result of `resolve_columns`.
        indices (`list[int]`, *optional*): Row indices of the batch, named in error messages.

    Returns:
        `list[Example]`: One example per row.
    """
    if "messages" in mapping:
        column = mapping["messages"]
        values = batch[column]
        rows = indices if indices is not None else [None] * len(values)
        examples = [messages_to_example(m, row=r, column=column) for m, r in zip(values, rows, strict=False)]
    else:
        size = len(batch[mapping["output"]])
        rows = indices if indices is not None else [None] * size
        inputs = batch[mapping["input"]] if mapping["input"] is not None else [""] * size
        examples = [
            Example(
                instruction=_text(i, mapping["instruction"], r, allow_none=False),
                input=_text(x, mapping["input"] or "input", r, allow_none=True),
                output=_text(o, mapping["output"], r, allow_none=True),
            )
            for i, x, o, r in zip(batch[mapping["instruction"]], inputs, batch[mapping["output"]], rows, strict=False)
        ]
    for example, r in zip(examples, rows, strict=False):
        if not example.instruction:
            column = mapping.get("instruction") or mapping.get("messages")
            raise ValueError(f"Column `{column}` is empty at {_where(r)}: every example needs an instruction.")
    return examples


def examples_from_rows(rows: Any, columns: Mapping[str, str | None] | None = None, *, what: str = "task_set"):
    """Read a task set given as a `datasets.Dataset` or a list of dicts into examples.

    Args:
        rows (`datasets.Dataset` or `list[dict]`): The rows.
        columns (`dict`, *optional*): Column mapping, as in `resolve_columns`.
        what (`str`, *optional*, defaults to `"task_set"`): The argument name used in error messages.

    Returns:
        `list[Example]`: The examples.
    """
    if hasattr(rows, "column_names") and hasattr(rows, "to_dict"):
        names, batch = list(rows.column_names), rows.to_dict()
    elif isinstance(rows, Sequence) and not isinstance(rows, str):
        if not all(isinstance(r, Mapping) for r in rows):
            raise TypeError(f"`{what}` must be a `datasets.Dataset` or a list of dicts.")
        names = sorted({k for r in rows for k in r})
        batch = {k: [r.get(k) for r in rows] for k in names}
    else:
        raise TypeError(f"`{what}` must be a `datasets.Dataset` or a list of dicts, got {type(rows).__name__}.")
    if not batch or not len(next(iter(batch.values()))):
        raise ValueError(f"`{what}` is empty: it needs at least one example.")
    mapping = resolve_columns(names, columns)
    size = len(next(iter(batch.values())))
    return examples_from_batch(batch, mapping, list(range(size)))


def render_prompt(example: Example, template: str = "alpaca", tokenizer: Any = None) -> str:
    """Render the prompt of an example (everything the answer follows).

    Args:
        example (`Example`): The example.
        template (`str`, *optional*, defaults to `"alpaca"`): `"alpaca"` for the NUGGETS template, or `"chat"`
            for the tokenizer's chat template (a user turn with the instruction, then the input, and the
            generation prompt).
        tokenizer (*optional*): Needed for `template="chat"`.

    Returns:
        `str`: The prompt text.

    Example:

    ```python
    >>> print(render_prompt(Example("Add 2 and 3.", "", "5")), end="")
    Instruction:
    Add 2 and 3.
    Response:
    ```
    """
    if template == "alpaca":
        if example.input:
            return ALPACA_TEMPLATE.format(instruction=example.instruction, input=example.input)
        return ALPACA_TEMPLATE_NO_INPUT.format(instruction=example.instruction)
    if template == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("`template='chat'` needs a tokenizer with a chat template.")
        content = example.instruction + (f"\n\n{example.input}" if example.input else "")
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
    raise ValueError(f"`template` must be one of {TEMPLATES}, got {template!r}.")


def render_demonstration(example: Example, template: str = "alpaca", tokenizer: Any = None) -> str:
    """Render an example as a one-shot demonstration.

    With `template="alpaca"`: its prompt, its answer and `DEMO_SEPARATOR`. With `template="chat"`: the user and
    assistant turns as the tokenizer's chat template renders them.
    """
    if template == "chat":
        render_prompt(example, template, tokenizer)  # validates the tokenizer
        content = example.instruction + (f"\n\n{example.input}" if example.input else "")
        messages = [{"role": "user", "content": content}, {"role": "assistant", "content": example.output}]
        return tokenizer.apply_chat_template(messages, tokenize=False)
    return render_prompt(example, template, tokenizer) + example.output + DEMO_SEPARATOR
