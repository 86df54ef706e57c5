"""A Gradio page for the metric: paste AlpacaEval annotations (`output_1`, `output_2`, `preference`), get the win
rates. Run with `python app.py` (needs `pip install 'hf-nuggets[space]'`)."""

import json
from pathlib import Path

import evaluate

try:
    import gradio as gr
except ImportError as err:  # pragma: no cover - the page is optional
    raise ImportError("The metric's page needs gradio: pip install 'hf-nuggets[space]'") from err

winrate = evaluate.load(str(Path(__file__).resolve().parent))

EXAMPLE = json.dumps(
    [
        {"instruction": "Capital of France?", "output_1": "Berlin.", "output_2": "Paris.", "preference": 2},
        {"instruction": "2 + 2?", "output_1": "4", "output_2": "5", "preference": 1},
        {"instruction": "Sky colour?", "output_1": "Blue.", "output_2": "It is blue.", "preference": 1.5},
    ],
    indent=1,
)


def compute(annotations_json: str) -> dict:
    """The metrics of a JSON list of annotations."""
    records = json.loads(annotations_json)
    return winrate.compute(
        predictions=[r["output_2"] for r in records],
        references=[r["output_1"] for r in records],
        preferences=[r.get("preference") for r in records],
        judge="precomputed",
        empty_outputs="keep",
    )


demo = gr.Interface(
    fn=compute,
    inputs=gr.Code(value=EXAMPLE, language="json", label="Annotations (AlpacaEval format)"),
    outputs=gr.JSON(label="Win rates"),
    title="AlpacaEval win rate",
    description=winrate.description,
    article=winrate.citation,
)

if __name__ == "__main__":
    demo.launch()
