"""A prospecting run built from its settings: the one function the command line and the Space both call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..scoring.prospector import Prospector
from ..scoring.scorer import GoldenScorer
from .checkpoint import dist_info
from .config import ScoreConfig
from .loop import RunCallback


def default_device(config: ScoreConfig) -> str | None:
    """The device of this process: `config.device`, else the GPU of this process's local rank on its machine under a
    multi-process launcher (`dist_info`: under `accelerate launch --num_machines 2`, the first process of machine 1
    has RANK 1 or more but LOCAL_RANK 0, so it takes its machine's first GPU)."""
    if config.device is not None or not config.sharded():
        return config.device
    import torch

    _, world, local = dist_info()
    if torch.cuda.is_available() and world > 1:
        return f"cuda:{local % torch.cuda.device_count()}"
    return None


def build_scorer(config: ScoreConfig, *, prospector: Prospector | None = None, task_set: Any = None) -> GoldenScorer:
    """The `GoldenScorer` of a run's settings.

    Args:
        config (`ScoreConfig`): The run's settings.
        prospector (`Prospector`, *optional*): A prospector already loaded (the Space keeps its models loaded);
            `config.model` is loaded otherwise.
        task_set (*optional*): Tasks already read (a `Dataset` or a list of dicts), instead of `config.tasks`.

    Returns:
        `GoldenScorer`: The scorer, its prospector loaded on first use (inside the run, which times it); with
        `--tasks auto`, the run draws its tasks from the data (see `prospect`).
    """
    auto = task_set is None and config.auto_tasks()
    load_options = None
    if prospector is None:  # loaded on first use, inside the run, which times it (summary.json's load_s)
        load_options = {"revision": config.revision, "gguf_file": config.gguf_file, "dtype": config.dtype}
    return GoldenScorer(
        prospector if prospector is not None else config.model,
        None if auto else (task_set if task_set is not None else config.tasks),
        num_tasks=None if auto else config.num_tasks,
        columns=config.column_mapping(),
        template=config.template,
        limits=config.limits(),
        return_scores=config.return_scores,
        max_batch_tokens=config.max_batch_tokens,
        candidates_per_forward=config.candidates_per_forward,
        gate_settings=config.gate_settings(),
        device=default_device(config) if prospector is None else None,
        load_options=load_options,
    )


def prospect_with_config(
    config: ScoreConfig,
    dataset: Any,
    *,
    source: str | None = None,
    prospector: Prospector | None = None,
    task_set: Any = None,
    callbacks: Sequence[RunCallback] = (),
    progress: bool = True,
) -> tuple[Any, dict[str, Any] | None]:
    """Run `prospect`, or `prospect_sharded` when the settings ask for shards, as `config` says.

    Args:
        config (`ScoreConfig`): The run's settings (those of `hf-nuggets score`).
        dataset (`datasets.Dataset` or `datasets.IterableDataset`): The candidates.
        source (`str`, *optional*): Where the data came from, recorded in the summary.
        prospector (`Prospector`, *optional*): A prospector already loaded, instead of loading `config.model`.
        task_set (*optional*): Tasks already read, instead of `config.tasks`.
        callbacks (`list[RunCallback]`, *optional*): Hooks of the run (see `hf_nuggets.run.loop`).
        progress (`bool`, *optional*, defaults to `True`): Show progress bars.

    Returns:
        `tuple`: The scored rows and the summary (`(None, None)` on the other processes of a sharded run).
    """
    scorer = build_scorer(config, prospector=prospector, task_set=task_set)
    auto = task_set is None and config.auto_tasks()
    auto_options = None
    if auto:
        auto_options = {"sample_size": config.task_sample_size, "seed": config.task_seed}
        if config.num_tasks is not None:
            auto_options["num_tasks"] = config.num_tasks
    common = {
        "task_set": "auto" if auto else None,
        "auto_options": auto_options,
        "top_percent": config.top,
        "min_distance": config.min_distance,
        "limit": config.limit,
        "source": source,
        "progress": progress,
        "gates": config.selection_gates(),
        "callbacks": callbacks,
    }
    if config.sharded():
        from .sharded import prospect_sharded

        early = None
        if config.early_stop:
            from ..scoring.early_stop import EarlyStopping

            early = EarlyStopping(
                delta=config.early_stop_delta,
                chunk=config.early_stop_chunk,
                warmup=config.early_stop_warmup,
                seed=config.seed,
                warmup_share=config.early_stop_warmup_share,
                looks=config.early_stop_looks,
                tie_gain=config.early_stop_tie_gain,
            )
        return prospect_sharded(
            dataset,
            scorer,
            config.out,
            shard_size=config.shard_size or 64,
            resume=config.resume,
            timeout=config.timeout,
            dedup_threshold=config.dedup_threshold if config.dedup else None,
            early_stop=early,
            **common,
        )
    from .prospecting import prospect

    return prospect(
        dataset, scorer, config.out, max_seconds=config.max_seconds, batch_size=config.batch_size, **common
    )
