"""Benchmark `refine_task_set(selector="affinity")` on a generated pool: dense vs two-stage path, and their crossover.

Run from the repository root: `python benchmarks/algorithms_refine.py` (add `--help` for sizes).

Data: generated instruction rows (task verb x topic x detail words, so the embeddings form many overlapping
groups), embedded for real by the embedded all-MiniLM-L6-v2. Each measured run is a fresh subprocess that times
`refine_task_set` end to end and reads its per-step wall times from the provenance; peak RSS is measured above the
RSS right after the imports and the data (the kernel's peak counter reset through /proc/self/clear_refs). The
gates' model is a tiny random Llama with the signal gates off (the text gates stay) and the quality is a score
column, so the figures measure everything but prospector scoring; `--judge-rows` times the embedded SmolLM2 judge
on that many rows, separately. Figures are printed as `name: value`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

VERBS = [
    "Explain", "Summarize", "Write a short poem about", "List three facts about", "Give an example of",
    "Compare two kinds of", "Describe the history of", "Write a tweet about", "Classify the tone of a text on",
    "Suggest a title for an essay on", "Translate into French a sentence about", "Ask three questions about",
]  # fmt: skip
TOPICS = [
    "black holes", "photosynthesis", "the French revolution", "python lists", "tax returns", "tennis serves",
    "sourdough bread", "volcanoes", "jazz piano", "machine learning", "the water cycle", "chess openings",
    "coral reefs", "electric cars", "ancient Rome", "vaccines", "climate change", "penguins", "the stock market",
    "origami", "the human heart", "solar panels", "haiku", "marathon training", "honey bees", "quantum computing",
    "medieval castles", "coffee brewing", "earthquakes", "recycling", "the moon landing", "dinosaurs",
    "supply chains", "bird migration", "the printing press", "meditation", "rainforests", "bicycle repair",
    "cryptography", "the immune system",
]  # fmt: skip


def _vocabulary() -> list[str]:
    """The distinct lower-case words of the shipped sample's answers (a few thousand)."""
    import re

    text = (REPO / "hf_nuggets" / "data" / "sample_alpaca.jsonl").read_text()
    return sorted(set(re.findall(r"[a-z]{4,}", text.lower())))


def generated_rows(n: int, seed: int = 0) -> list[dict]:
    """`n` instruction rows (verb, topic and six random words, so few near-duplicates) with a `score` column."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = np.array(_vocabulary())
    rows = []
    for _ in range(n):
        verb, topic = VERBS[rng.integers(len(VERBS))], TOPICS[rng.integers(len(TOPICS))]
        instruction = f"{verb} {topic}: " + " ".join(rng.choice(words, size=6, replace=False)) + "."
        output = f"About {topic}, " + " ".join(rng.choice(words, size=int(rng.integers(5, 20)))) + "."
        rows.append({"instruction": instruction, "input": "", "output": output, "score": float(rng.random())})
    return rows


def _tiny_prospector():
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import build_tiny_model, build_tiny_tokenizer

    from hf_nuggets.scoring.prospector import Prospector

    tokenizer = build_tiny_tokenizer()
    return Prospector(model=build_tiny_model(len(tokenizer)), tokenizer=tokenizer, name="tiny-random-llama")


def _worker(n: int, sparse_above: int, size: int, top_quality: int, out: str) -> None:
    sys.path.insert(0, str(REPO))
    import math
    import warnings

    import hf_nuggets.taskset.exemplars as exemplars
    from hf_nuggets.gates import GateSettings
    from hf_nuggets.taskset.embeddings import load_embedder
    from hf_nuggets.taskset.refine import refine_task_set

    warnings.simplefilter("ignore")
    exemplars.SPARSE_ABOVE = sparse_above
    from datasets import Dataset

    data = Dataset.from_list(generated_rows(n))
    prospector = _tiny_prospector()
    load_embedder()  # the model load is not part of the refinement
    from algorithms_affinity import peak_rss_mib, rss_mark

    base = rss_mark()
    t0 = time.perf_counter()
    tasks, made = refine_task_set(
        data,
        size=size,
        top_quality=top_quality,
        pool=n,
        quality="score",
        selector="affinity",
        prospector=prospector,
        gate_settings=GateSettings(alignment_threshold=-math.inf, completeness_threshold=-math.inf),
        progress=False,
        return_provenance=True,
    )
    seconds = time.perf_counter() - t0
    result = {
        "seconds": seconds,
        "rss_peak_mib": peak_rss_mib(base),
        "steps": made["seconds"],
        "diversity": made["diversity"],
        "tasks": len(tasks),
    }
    Path(out).write_text(json.dumps(result))


def measure(n: int, sparse_above: int, size: int, top_quality: int, workdir: str) -> dict:
    """One refinement in a fresh subprocess."""
    out = os.path.join(workdir, f"refine-{n}-{sparse_above}.json")
    cmd = [sys.executable, __file__, "--worker", str(n), str(sparse_above), str(size), str(top_quality), out]
    subprocess.run(cmd, check=True)
    return json.loads(Path(out).read_text())


def report(prefix: str, r: dict) -> None:
    print(f"{prefix}_path: {r['diversity']['path']}")
    print(f"{prefix}_seconds_excluding_scoring: {r['seconds'] - r['steps']['gates'] - r['steps']['quality']:.2f}")
    for step, value in r["steps"].items():
        print(f"{prefix}_step_{step}_seconds: {value:.2f}")
    print(f"{prefix}_peak_rss_mib: {r['rss_peak_mib']:.1f}")
    for key, value in r["diversity"].items():
        if key != "path":
            print(f"{prefix}_{key}: {value}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        _worker(int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4]), argv[5])
        return
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--top-quality", type=int, default=20)
    parser.add_argument("--crossover", type=str, default="250,500", help="Pool sizes run on both paths.")
    args = parser.parse_args(argv)
    print(f"refine_load_average_1min_at_start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as workdir:
        for n in [int(x) for x in args.crossover.split(",") if x]:
            dense = measure(n, n, args.size, args.top_quality, workdir)
            sparse = measure(n, 0, args.size, args.top_quality, workdir)
            d, s = dense["steps"]["diversity"], sparse["steps"]["diversity"]
            print(f"crossover_{n}_dense_diversity_seconds: {d:.2f}")
            print(f"crossover_{n}_two_stage_diversity_seconds: {s:.2f}")
            print(f"crossover_{n}_dense_peak_rss_mib: {dense['rss_peak_mib']:.1f}")
            print(f"crossover_{n}_two_stage_peak_rss_mib: {sparse['rss_peak_mib']:.1f}")
            print(f"crossover_{n}_speedup_two_stage_over_dense: {d / s:.2f}")
        print(f"refine_pool: {args.pool}")
        report("refine_two_stage", measure(args.pool, 0, args.size, args.top_quality, workdir))
    print(f"refine_load_average_1min_at_end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
