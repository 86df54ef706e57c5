"""hf-nuggets: find the golden examples of an instruction dataset with a small prospector LM (SuperNUGGETS)."""

from ._version import __version__
from .data.checks import InputError, check_columns, check_data_file
from .data.formatting import Example
from .data.loading import load_data, load_default_task_set, load_sample_dataset
from .evaluation.winrate import alpaca_eval_winrate, compute_winrate, winrate_metric_path
from .gates import GATE_NAMES, GateSettings
from .publish.card import build_dataset_card
from .publish.hub import export_repo_folder, push_scored_dataset
from .run.build import prospect_with_config
from .run.config import ScoreConfig
from .run.loop import RunCallback
from .run.prospecting import prospect
from .run.sharded import prospect_sharded
from .scoring.engine import TruncationLimits
from .scoring.prospector import Prospector, load_prospector
from .scoring.scorer import GoldenScorer, golden_score
from .selection import select_top
from .taskset.refine import auto_task_set, refine_task_set

# Importing these pulls in `transformers.Trainer` (seconds), so they load on first access.
_LAZY = {
    "GoldenFilterCallback": "train.callback",
    "PayoffConfig": "train.payoff",
    "filter_for_training": "train.callback",
    "run_payoff": "train.payoff",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GATE_NAMES",
    "Example",
    "GateSettings",
    "GoldenFilterCallback",
    "GoldenScorer",
    "InputError",
    "PayoffConfig",
    "Prospector",
    "RunCallback",
    "ScoreConfig",
    "TruncationLimits",
    "__version__",
    "alpaca_eval_winrate",
    "auto_task_set",
    "build_dataset_card",
    "check_columns",
    "check_data_file",
    "compute_winrate",
    "export_repo_folder",
    "filter_for_training",
    "golden_score",
    "load_data",
    "load_default_task_set",
    "load_prospector",
    "load_sample_dataset",
    "prospect",
    "prospect_sharded",
    "prospect_with_config",
    "push_scored_dataset",
    "refine_task_set",
    "run_payoff",
    "select_top",
    "winrate_metric_path",
]
