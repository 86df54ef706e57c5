"""What every command shares: its errors in one line, library progress bars hidden unless `--verbose`, `--token`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..utils.network import HubUnreachableError, is_network_error, unreachable_message
from ..utils.progress import library_progress_bars, library_retry_warnings
from ..utils.secrets import redact

#: The errors a command reports in one line (anything else is a bug and keeps its traceback).
COMMAND_ERRORS = (ValueError, KeyError, TypeError, OSError, ImportError, RuntimeError)

VERBOSE_HELP = (
    "Also show the progress bars of datasets, transformers and huggingface_hub, and the Hub client's retry warnings "
    "(hidden by default)."
)
TOKEN_HELP = "Hugging Face token for private Hub data, models and pushes (default: HF_TOKEN, then `hf auth login`)."


def error_line(command: str, err: BaseException, token: str | None = None) -> str:
    """The one line a failed command prints: `hf-nuggets <command>: error: <message>`, the token never in it."""
    if is_network_error(err) and not isinstance(err, HubUnreachableError):
        message = unreachable_message(err, f"finish `hf-nuggets {command}`")
    elif isinstance(err, KeyError) and err.args:
        message = str(err.args[0])
    else:
        message = str(err)
    return f"hf-nuggets {command}: error: " + redact(" ".join(message.split()), token)


@contextmanager
def token_in_environment(token: str | None) -> Iterator[None]:
    """Set `HF_TOKEN` to `token` inside the block (where `huggingface_hub`, `datasets` and `transformers` read it
    for Hub data and models), restoring it afterwards; `None` leaves it as it is."""
    if token is None:
        yield
        return
    before = os.environ.get("HF_TOKEN")
    os.environ["HF_TOKEN"] = token
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_TOKEN", None)
        else:
            os.environ["HF_TOKEN"] = before


def run_command(command: str, action: Callable[[], int | None], *, verbose: bool, token: str | None = None) -> int:
    """Run a command's `action` with the library progress bars and retry warnings hidden (unless `verbose`) and
    `token` in the environment; a known error becomes one line on stderr and exit code 1.

    Args:
        command (`str`): The command's name, for the message.
        action (`Callable`): Does the work; returns the exit code (`None` for 0).
        verbose (`bool`): Show the progress bars of the libraries underneath.
        token (`str`, *optional*): The Hugging Face token of the command (`--token`).

    Returns:
        `int`: The exit code.
    """
    with library_progress_bars(verbose), library_retry_warnings(verbose), token_in_environment(token):
        try:
            return action() or 0
        except Exception as err:
            if not (isinstance(err, COMMAND_ERRORS) or is_network_error(err)):
                raise
            print(error_line(command, err, token), file=sys.stderr)
            return 1
