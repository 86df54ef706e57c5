"""The three classic algorithms against their peers, in one run, on clustered synthetic data.

- affinity propagation, dense fast mode vs scikit-learn (N=5,000), two stages vs scikit-learn on the same points, and
  sparse mode on a 20-NN graph (N=100,000): the issue-17 run and stage 1 of the two stages;
- `refine_task_set(selector="affinity")`: dense vs two-stage path by pool size, and a 10,000-row pool to 100 tasks;
- SimHash LSH vs exact search (N=50,000) and faiss where installed; MinHash LSH vs datasketch; k-center greedy.

Each section prints `name: value` lines with ratios against the baseline measured in the same run.
Streaming sketches have their own script, `bench_sketches.py`.

    python benchmarks/bench_algorithms.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import algorithms_affinity  # noqa: E402
import algorithms_lsh  # noqa: E402
import algorithms_refine  # noqa: E402


def main() -> None:
    print("== affinity propagation ==")
    algorithms_affinity.main()
    print("\n== locality-sensitive hashing and k-center ==")
    algorithms_lsh.main()
    print("\n== task-set refinement, affinity selector ==")
    algorithms_refine.main([])


if __name__ == "__main__":
    main()
