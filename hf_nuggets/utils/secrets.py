"""Keeping secrets (tokens, API keys, keys carried in URLs) out of messages, logs and written files."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"


def redact(text: str, secrets: str | Iterable[str | None] | None) -> str:
    """`text` with every occurrence of each non-empty secret replaced by `***`.

    Example:

    ```python
    >>> redact("401 for token hf_abc", "hf_abc")
    '401 for token ***'
    >>> redact("nothing to hide", [None, ""])
    'nothing to hide'
    ```
    """
    if secrets is None:
        return text
    if isinstance(secrets, str):
        secrets = [secrets]
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
