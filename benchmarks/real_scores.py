"""Score the shipped sample's rows against the shipped tasks once, and keep the score matrix for replays.

Writes `benchmarks/data/sample_scores.npz`: `one_shot` (rows x tasks), `zero_shot` (tasks), `golden_score` and
`nuggets_gain` (rows), with the model, dtype and device in `meta` (JSON). `bench_scale.py` replays early stopping on
it, so a change of the stopping rule is measured on real scores without the model.

    python benchmarks/real_scores.py                       # 300 rows x 16 tasks, the embedded prospector, auto dtype
    python benchmarks/real_scores.py --device cuda --dtype float32 --out /tmp/sample_scores.npz
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hf_nuggets import GoldenScorer, load_default_task_set, load_prospector, load_sample_dataset
from hf_nuggets.run.loop import ProgressCallback, score_rows

DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "sample_scores.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="Prospector (default: the embedded SmolLM2-135M-Instruct).")
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args()

    prospector = load_prospector(args.model, device=args.device, dtype=args.dtype)
    data = load_sample_dataset()
    data = data.select(range(min(args.rows, len(data))))
    scorer = GoldenScorer(prospector, load_default_task_set(args.tasks), return_scores=True)
    start = time.perf_counter()
    zero_shot = scorer.zero_shot_scores
    columns = score_rows(data, scorer, batch_size=args.batch_size, callbacks=[ProgressCallback("Scoring")])
    seconds = time.perf_counter() - start
    meta = {
        "model": prospector.name,
        "dtype": str(prospector.model.dtype).replace("torch.", ""),
        "device": str(prospector.device),
        "rows": len(data),
        "tasks": len(scorer.tasks),
        "seconds": round(seconds, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        one_shot=np.asarray(columns["nuggets_one_shot"], dtype=np.float64),
        zero_shot=np.asarray(zero_shot, dtype=np.float64),
        golden_score=np.asarray(columns["golden_score"], dtype=np.float64),
        nuggets_gain=np.asarray(columns["nuggets_gain"], dtype=np.float64),
        meta=np.array(json.dumps(meta)),
    )
    print(f"Wrote {out} ({out.stat().st_size / 1e3:.1f} kB): {json.dumps(meta)}")


if __name__ == "__main__":
    main()
