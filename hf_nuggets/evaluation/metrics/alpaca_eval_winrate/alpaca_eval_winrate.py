"""AlpacaEval win rate of a model's outputs against a baseline's, as an `evaluate` metric (a thin layer over
`hf_nuggets.evaluation.winrate`)."""

import datasets
import evaluate

from hf_nuggets.evaluation.winrate import alpaca_eval_winrate

_CITATION = """\
@article{dubois2024length,
  title={Length-Controlled AlpacaEval: A Simple Way to Debias Automatic Evaluators},
  author={Dubois, Yann and Galambosi, Bal{\\'a}zs and Liang, Percy and Hashimoto, Tatsunori B},
  journal={arXiv preprint arXiv:2404.04475},
  year={2024}
}
@misc{alpaca_eval,
  author = {Xuechen Li and Tianyi Zhang and Yann Dubois and Rohan Taori and Ishaan Gulrajani and Carlos Guestrin and
            Percy Liang and Tatsunori B. Hashimoto},
  title = {AlpacaEval: An Automatic Evaluator of Instruction-following Models},
  year = {2023},
  howpublished = {\\url{https://github.com/tatsu-lab/alpaca_eval}}
}
"""

_DESCRIPTION = """\
AlpacaEval win rate: how often a judge prefers the model's output (`predictions`) to a baseline's output
(`references`) for the same instruction, with AlpacaEval's definitions: the raw `win_rate` (mean preference, in
percent) with its `standard_error`, the counts, the `discrete_win_rate`, the model's `avg_length`, and the
length-controlled win rate of AlpacaEval 2.0 (a GLM on `tanh(std_delta_len) + instruction_difficulty +
not_gamed_baseline`, predicted with no length difference). Preferences come from a judge: `precomputed` (you pass
them), `local` (a causal LM run here reading the probabilities of two verdict tokens, both output orders) or `openai`
(any OpenAI-compatible chat endpoint, logprob-weighted, with retries, rate limiting and a verdict cache).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): The model's outputs (AlpacaEval's `output_2`).
    references (`list[str]`): The baseline's outputs for the same instructions (`output_1`).
    instructions (`list[str]`, *optional*): The instructions; needed by the `local` and `openai` judges.
    judge (`str`, *optional*, defaults to `"precomputed"`): `"precomputed"`, `"local"` or `"openai"` (or a judge
        object from `hf_nuggets.evaluation.judges`).
    preferences (`list[float]`, *optional*): With `judge="precomputed"`: one per pair, in [1, 2] (2: the model wins,
        1: the baseline wins, 1.5 or 0: a draw, NaN/None: no verdict, skipped and counted).
    instruction_difficulty (`list[float]`, *optional*): One difficulty per pair for the length-controlled GLM
        (AlpacaEval's `instruction_difficulty.csv` on its 805 instructions).
    lc_variant (`str`, *optional*, defaults to `"auto"`): `"length_controlled_v1"` (needs the difficulty and
        `gamed_annotations`), `"length_controlled_noreg"` (needs the difficulty), `"length_controlled_minimal"`, or
        `"auto"` for the richest one the inputs allow.
    gamed_annotations (`dict`, *optional*): AlpacaEval's `df_gamed.csv` columns, for `length_controlled_v1`.
    length_controlled (`bool`, *optional*, defaults to `True`): Fit the length-controlled GLM.
    empty_outputs (`str`, *optional*, defaults to `"error"`): `"error"`, `"skip"` or `"keep"` empty outputs.
    judge_kwargs (`dict`, *optional*): Arguments of the judge, e.g. `{"model": "Qwen/Qwen2.5-7B-Instruct"}` for
        `local` or `{"model": "gpt-4o-mini", "base_url": ..., "requests_per_minute": 500}` for `openai`.
    generator (`str`, *optional*, defaults to `"model"`): The model's name in the annotations.
    baseline (`str`, *optional*, defaults to `"baseline"`): The baseline's name in the annotations.
    return_annotations (`bool`, *optional*, defaults to `False`): Also return AlpacaEval-style annotations.

Returns:
    win_rate (`float`): Mean of `preference - 1` over judged pairs, in percent.
    standard_error (`float`): Its standard error (NaN with fewer than two pairs).
    n_wins (`int`), n_wins_base (`int`), n_draws (`int`), n_total (`int`): Pairs won by the model, by the baseline,
        exact draws, and pairs with a preference.
    discrete_win_rate (`float`): The win rate after rounding each preference to a win, a loss or a draw.
    avg_length (`int`): Mean length of the model's outputs, in characters.
    length_controlled_winrate (`float`), lc_standard_error (`float`), lc_variant (`str`): The length-controlled win
        rate (NaN with fewer than 5 judged pairs).
    n_skipped (`int`): Pairs without a preference (judge failures, skipped empty outputs).

Examples:
    >>> import evaluate
    >>> from hf_nuggets.evaluation.winrate import winrate_metric_path
    >>> winrate = evaluate.load(winrate_metric_path())
    >>> results = winrate.compute(
    ...     predictions=["Paris is the capital of France.", "4", "Blue."],
    ...     references=["Berlin.", "2 + 2 = 5", "The sky is blue on a clear day."],
    ...     judge="precomputed",
    ...     preferences=[2, 1.75, 1],
    ...     length_controlled=False,
    ... )
    >>> round(results["win_rate"], 2), results["n_wins"], results["n_wins_base"], results["avg_length"]
    (58.33, 2, 1, 12)

    The length-controlled win rate needs at least 5 judged pairs:

    >>> predictions = ["a" * n for n in (10, 80, 35, 200, 5, 60, 120, 15)]
    >>> references = ["b" * 50] * 8
    >>> results = winrate.compute(predictions=predictions, references=references, judge="precomputed",
    ...                           preferences=[1.2, 1.9, 1.5, 2.0, 1.0, 1.7, 1.8, 1.1])
    >>> round(results["win_rate"], 2), results["lc_variant"], 0 < results["length_controlled_winrate"] < 100
    (52.5, 'length_controlled_minimal', True)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AlpacaEvalWinrate(evaluate.Metric):
    """AlpacaEval win rate, raw and length-controlled, with precomputed, local or OpenAI-compatible judges."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            homepage="https://github.com/tatsu-lab/alpaca_eval",
            reference_urls=["https://arxiv.org/abs/2404.04475", "https://github.com/tatsu-lab/alpaca_eval"],
        )

    def _compute(
        self,
        predictions,
        references,
        instructions=None,
        judge="precomputed",
        preferences=None,
        instruction_difficulty=None,
        lc_variant="auto",
        gamed_annotations=None,
        length_controlled=True,
        empty_outputs="error",
        judge_kwargs=None,
        generator="model",
        baseline="baseline",
        return_annotations=False,
    ):
        return alpaca_eval_winrate(
            predictions,
            references,
            instructions,
            judge=judge,
            preferences=preferences,
            instruction_difficulty=instruction_difficulty,
            lc_variant=lc_variant,
            gamed_annotations=gamed_annotations,
            length_controlled=length_controlled,
            empty_outputs=empty_outputs,
            judge_kwargs=judge_kwargs,
            generator=generator,
            baseline=baseline,
            return_annotations=return_annotations,
        )
