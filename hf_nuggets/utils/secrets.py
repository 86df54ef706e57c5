"""Keeping secrets (tokens, API keys, keys carried in URLs) out of messages, logs and written files."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit, urlunsplit

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
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):  # a secret inside another: longest first
        text = text.replace(secret, MASK)
    return text


def _query_parts(query: str) -> list[tuple[str, str, str]]:
    return [part.partition("=") for part in query.split("&") if part]


def url_credentials(url: str) -> list[str]:
    """The secrets a URL may carry, to hand to `redact`: the password before `@` (the user when there is no password,
    as in `https://KEY@host`), and every query value (or bare query word), each as written and decoded.

    Example:

    ```python
    >>> url_credentials("https://me:sk-1%2B2@example.com/v1?api_key=k-456&verbose")
    ['sk-1%2B2', 'sk-1+2', 'k-456', 'verbose']
    >>> url_credentials("https://sk-789@example.com/v1"), url_credentials("https://api.openai.com/v1")
    (['sk-789'], [])
    ```
    """
    parts = urlsplit(url)
    found: list[str] = []
    if "@" in parts.netloc:
        user, _, password = parts.netloc.rpartition("@")[0].partition(":")
        found.append(password or user)
    found += [value if sep else name for name, sep, value in _query_parts(parts.query)]
    out: list[str] = []
    for secret in found:
        for form in (secret, unquote_plus(secret)):
            if form and form not in out:
                out.append(form)
    return out


def redact_url(url: str) -> str:
    """`url` fit to log or write: the user and password before `@` and every query value masked with `***`.

    Query values are all masked, whatever their names: a key goes by many (`key`, `api_key`, `token`, `sig`,
    `code`...), and an endpoint's query seldom says anything a reader needs.

    Example:

    ```python
    >>> redact_url("https://user:sk-123@example.com/v1")
    'https://***@example.com/v1'
    >>> redact_url("https://example.com/v1?api_key=sk-123&api-version=2024-06-01")
    'https://example.com/v1?api_key=***&api-version=***'
    >>> redact_url("https://api.openai.com/v1")
    'https://api.openai.com/v1'
    ```
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc and not parts.query:
        return url
    netloc = f"{MASK}@{parts.netloc.rpartition('@')[2]}" if "@" in parts.netloc else parts.netloc
    query = "&".join(f"{name}={MASK}" if sep else MASK for name, sep, _ in _query_parts(parts.query))
    return urlunsplit(parts._replace(netloc=netloc, query=query))
