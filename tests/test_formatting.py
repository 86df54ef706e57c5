"""Prompt templates, row reading and chat conversion."""

from __future__ import annotations

import pytest

from hf_nuggets.data.formatting import (
    Example,
    examples_from_batch,
    examples_from_rows,
    messages_to_example,
    render_demonstration,
    render_prompt,
    resolve_columns,
)


def test_alpaca_template_with_and_without_input():
    """The NUGGETS template, with the Input block dropped when the input is empty."""
    assert render_prompt(Example("Sum.", "1 2", "3")) == "Instruction:\nSum.\nInput:\n1 2\nResponse:\n"
    assert render_prompt(Example("Sum.", "", "3")) == "Instruction:\nSum.\nResponse:\n"
    assert render_demonstration(Example("Sum.", "", "3")) == "Instruction:\nSum.\nResponse:\n3\n\n"


def test_text_fields_are_stripped_and_none_input_is_empty():
    """Whitespace around fields is stripped and a missing input reads as empty."""
    batch = {"instruction": ["  Hi  "], "input": [None], "output": [" there \n"]}
    mapping = resolve_columns(list(batch))
    assert examples_from_batch(batch, mapping) == [Example("Hi", "", "there")]


def test_chat_template_uses_the_tokenizer():
    """`template='chat'` renders through the tokenizer's chat template."""

    class Tok:
        chat_template = "x"

        def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=True):
            body = "".join(f"<{m['role']}>{m['content']}" for m in messages)
            return body + ("<assistant>" if add_generation_prompt else "")

    assert render_prompt(Example("Hi", "ctx", "Yo"), "chat", Tok()) == "<user>Hi\n\nctx<assistant>"
    assert render_demonstration(Example("Hi", "", "Yo"), "chat", Tok()) == "<user>Hi<assistant>Yo"
    with pytest.raises(ValueError, match="needs a tokenizer with a chat template"):
        render_prompt(Example("Hi", "", "Yo"), "chat", None)


def test_messages_conversion_keeps_earlier_turns_as_input():
    """The last assistant turn is the answer, the user turn before it the instruction, earlier turns the input."""
    example = messages_to_example(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Add 1 and 1."},
            {"role": "assistant", "content": "2"},
        ]
    )
    assert example == Example("Add 1 and 1.", "system: Be brief.\nuser: Hi\nassistant: Hello", "2")


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ("hello", "must hold a list of at least two"),
        ([{"role": "user", "content": "x"}, {"role": "user", "content": "y"}], "must have role 'assistant'"),
        ([{"role": "assistant", "content": "x"}, {"role": "assistant", "content": "y"}], "must have role 'user'"),
        ([{"role": "user"}, {"role": "assistant", "content": "y"}], "Message 0 .* needs `role` and `content`"),
    ],
)
def test_bad_messages_are_refused_with_the_row(messages, match):
    """Malformed conversations fail with the row named."""
    with pytest.raises(ValueError, match=match):
        messages_to_example(messages, row=7)


def test_resolve_columns_errors_name_the_columns():
    """Unknown mapping keys and missing columns are named."""
    with pytest.raises(ValueError, match="`columns` keys must be among"):
        resolve_columns(["instruction", "output"], {"question": "q"})
    with pytest.raises(KeyError, match="Column `answer` \\(for `output`\\) not found"):
        resolve_columns(["instruction", "output"], {"output": "answer"})
    with pytest.raises(KeyError, match="Column `ctx` \\(for `input`\\) not found"):
        resolve_columns(["instruction", "output"], {"input": "ctx"})


def test_messages_column_detected_only_without_instruction():
    """A `messages` column is used when there is no instruction column."""
    assert resolve_columns(["messages"]) == {"messages": "messages"}
    assert resolve_columns(["messages", "instruction", "output"])["instruction"] == "instruction"


def test_examples_from_rows_accepts_lists_and_rejects_others():
    """Task sets are lists of dicts or datasets; anything else, or nothing, is refused."""
    assert examples_from_rows([{"instruction": "a", "output": "b"}]) == [Example("a", "", "b")]
    with pytest.raises(ValueError, match="`task_set` is empty"):
        examples_from_rows([])
    with pytest.raises(TypeError, match="`task_set` must be a `datasets.Dataset` or a list of dicts"):
        examples_from_rows("tasks.jsonl")
