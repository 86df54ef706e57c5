"""How the `unaligned` and `unfinished` thresholds are chosen, reproducibly, for any prospector and template.

The rule uses the 16 shipped tasks, never the sample the product is checked on. Each task's reference answer is read
three ways: intact; cut after half of its words (for answers of at least four words); and swapped for the answer of
the task five places further on. The prospector's `nuggets_alignment` and `nuggets_completeness` are read for each
(`hf_nuggets.scoring.scorer.flag_examples`, no task scoring). Then:

- `unaligned`: the loosest threshold on the grid -1.0, -0.9, ... 1.0 nats that gates none of the intact answers;
- `unfinished`: the loosest threshold on the grid log(1e-1), log(1e-2), ... log(1e-12) that gates none of them.

This is `hf_nuggets.gates.calibrate_thresholds`, which the library runs on the intact answers whenever a threshold
is `"auto"` (the default). The script prints, for grid values around the picks, how many intact answers each gates
and how many swapped or cut ones it catches, the values the rule picks, and then, for information only, what those
thresholds do on the shipped sample (good rows gated, flawed rows caught per kind).

    python benchmarks/calibrate_gates.py                       # embedded SmolLM2-135M-Instruct, NUGGETS template
    python benchmarks/calibrate_gates.py --model gemma3-270m   # the second embedded prospector
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from hf_nuggets import load_default_task_set, load_prospector, load_sample_dataset
from hf_nuggets.data.formatting import examples_from_rows
from hf_nuggets.gates import ALIGNMENT_GRID, COMPLETENESS_GRID, calibrate_thresholds, split_flags
from hf_nuggets.scoring.scorer import flag_examples

SHOWN_ALIGNMENT = [t for t in ALIGNMENT_GRID if -0.2 <= t <= 0.5]
SHOWN_COMPLETENESS = COMPLETENESS_GRID[:8]


def variants(tasks: list[dict]) -> list[dict]:
    """Each task intact, cut after half its words, and with the answer of the task five places on."""
    rows = []
    for j, task in enumerate(tasks):
        rows.append({**task, "kind": "intact"})
        words = task["output"].split()
        if len(words) >= 4:
            rows.append({**task, "output": " ".join(words[: len(words) // 2]), "kind": "cut"})
        rows.append({**task, "output": tasks[(j + 5) % len(tasks)]["output"], "kind": "swapped"})
    return rows


def signals(prospector, rows: list[dict], template: str) -> dict[str, np.ndarray]:
    examples = examples_from_rows([{k: r[k] for k in ("instruction", "input", "output")} for r in rows])
    return flag_examples(prospector, examples, template=template)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="Prospector: a short name, GGUF file, folder or Hub id.")
    parser.add_argument("--template", default="alpaca")
    parser.add_argument("--skip_sample", action="store_true", help="Do not report the defaults on the sample.")
    args = parser.parse_args()

    prospector = load_prospector(args.model)
    start = time.perf_counter()
    rows = variants(list(load_default_task_set()))
    read = signals(prospector, rows, args.template)
    kinds = np.array([r["kind"] for r in rows])
    alignment, completeness = read["alignment"], read["completeness"]
    print(f"model: {prospector.name}, template {args.template}; {len(rows)} task variants")
    print(f"(signals read in {time.perf_counter() - start:.1f} s)")

    def count(mask, kind):
        return f"{int(mask[kinds == kind].sum())}/{int((kinds == kind).sum())}"

    print("unaligned: threshold, intact gated, swapped caught, cut caught")
    for t in SHOWN_ALIGNMENT:
        gated = alignment <= t
        print(f"  {t:4.1f}  {count(gated, 'intact')}  {count(gated, 'swapped')}  {count(gated, 'cut')}")
    print("unfinished: threshold, intact gated, cut caught, swapped caught")
    for t in SHOWN_COMPLETENESS:
        gated = completeness < t
        print(f"  log({math.exp(t):.0e})  {count(gated, 'intact')}  {count(gated, 'cut')}  {count(gated, 'swapped')}")
    intact = kinds == "intact"
    pick_a, pick_c = calibrate_thresholds(alignment[intact], completeness[intact])
    print(f"rule picks: alignment_threshold={pick_a}, completeness_threshold=log({math.exp(pick_c):.0e})")
    if args.skip_sample:
        return
    sample = load_sample_dataset().to_list()
    flags = signals(prospector, sample, args.template)["flags"]
    flaws = [r["flaw"] or "good" for r in sample]
    print("'auto' thresholds on the shipped sample (rows flagged by any gate / rows):")
    for kind in sorted(set(flaws)):
        rows_of = [f for f, k in zip(flags, flaws, strict=True) if k == kind]
        names = sorted({name for f in rows_of for name in split_flags(f)})
        print(f"  {kind}: {sum(bool(f) for f in rows_of)}/{len(rows_of)} ({', '.join(names) or 'none'})")


if __name__ == "__main__":
    main()
