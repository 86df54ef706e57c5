"""The progress bars and retry warnings of the libraries underneath (datasets, transformers, huggingface_hub), turned
off for a while."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def library_progress_bars(enabled: bool) -> Iterator[None]:
    """Show or hide the progress bars of `datasets` ("Generating train split", "Creating parquet from Arrow format"),
    `transformers` ("Loading weights") and `huggingface_hub` (downloads) inside the block; each library's setting is
    restored afterwards. hf-nuggets' own bars (scoring, refining) are plain `tqdm` bars and stay.

    Args:
        enabled (`bool`): `True` leaves the bars as they are; `False` hides them inside the block.

    Example:

    ```python
    >>> import datasets
    >>> with library_progress_bars(False):
    ...     datasets.utils.logging.is_progress_bar_enabled()
    False
    >>> datasets.utils.logging.is_progress_bar_enabled()
    True
    ```
    """
    if enabled:
        yield
        return
    import datasets.utils.logging as datasets_logging
    import huggingface_hub.utils as hub_utils
    import transformers.utils.logging as transformers_logging

    before = (
        datasets_logging.is_progress_bar_enabled(),
        transformers_logging.is_progress_bar_enabled(),
        not hub_utils.are_progress_bars_disabled(),
    )
    datasets_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    hub_utils.disable_progress_bars()
    try:
        yield
    finally:
        datasets_on, transformers_on, hub_on = before
        if datasets_on:
            datasets_logging.enable_progress_bar()
        if transformers_on:
            transformers_logging.enable_progress_bar()
        if hub_on:
            hub_utils.enable_progress_bars()


@contextmanager
def library_retry_warnings(enabled: bool) -> Iterator[None]:
    """Show or hide `huggingface_hub`'s warnings inside the block, such as the "Retrying in 1s [Retry 1/5]" lines it
    logs while a Hub it cannot reach is retried (the error that follows says what failed, in one line). Its logger's
    level is restored afterwards.

    Args:
        enabled (`bool`): `True` leaves the warnings as they are; `False` keeps only errors inside the block.

    Example:

    ```python
    >>> with library_retry_warnings(False):
    ...     logging.getLogger("huggingface_hub").isEnabledFor(logging.WARNING)
    False
    ```
    """
    if enabled:
        yield
        return
    hub_logger = logging.getLogger("huggingface_hub")
    before = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub_logger.setLevel(before)
