"""Network failures (no connection, a timeout, offline mode) told in one line, whichever HTTP client raised them."""

from __future__ import annotations

import os

#: The class names of the transport errors of `httpx` (and of its forks, which `huggingface_hub` may vendor) and of
#: `requests`: the connection failed or timed out, as opposed to an HTTP status the server answered with.
TRANSPORT_ERRORS = frozenset(
    {"TransportError", "NetworkError", "ConnectError", "TimeoutException", "ConnectTimeout", "ReadTimeout"}
)


class HubUnreachableError(ConnectionError):
    """The Hub (or another endpoint) could not be reached: no network, a timeout, or offline mode. An `OSError`."""


def is_network_error(err: BaseException) -> bool:
    """Whether `err` (or an error it was raised from) says the network failed, not the request.

    Example:

    ```python
    >>> is_network_error(ConnectionRefusedError(111, "Connection refused")), is_network_error(ValueError("x"))
    (True, False)
    ```
    """
    seen = 0
    while err is not None and seen < 8:
        if isinstance(err, (ConnectionError, TimeoutError)):
            return True
        for cls in type(err).__mro__:
            module = cls.__module__.split(".")[0]
            if cls.__name__ in TRANSPORT_ERRORS and module.startswith("httpx"):
                return True
            if module == "requests" and cls.__name__ in ("ConnectionError", "Timeout"):
                return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def unreachable_message(err: BaseException, what: str) -> str:
    """One line saying that `what` could not be done because the network failed, and what to do.

    Args:
        err (`BaseException`): The error raised.
        what (`str`): What was being done, e.g. ``"push to the dataset repo user/name"``.

    Example:

    ```python
    >>> print(unreachable_message(ConnectionRefusedError(111, "Connection refused"), "load the dataset user/data"))
    Could not load the dataset user/data: the Hub is not reachable (ConnectionRefusedError: [Errno 111] Connection \
refused). Check the network connection, or set HF_HUB_OFFLINE=1 to use only the files already cached.
    ```
    """
    reason = " ".join(str(err).split()) or type(err).__name__
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return f"Could not {what}: HF_HUB_OFFLINE is set, and it needs the Hub ({reason})."
    return (
        f"Could not {what}: the Hub is not reachable ({type(err).__name__}: {reason}). Check the network connection, "
        "or set HF_HUB_OFFLINE=1 to use only the files already cached."
    )
