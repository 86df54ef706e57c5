"""Running a command in several local processes (one per GPU when there are several), as `accelerate launch` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence


def strip_option(argv: Sequence[str], name: str) -> list[str]:
    """`argv` without `--name VALUE` / `--name=VALUE` (also the dashed spelling)."""
    names = {f"--{name}", f"--{name.replace('_', '-')}"}
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in names:
            skip = True
            continue
        if any(arg.startswith(n + "=") for n in names):
            continue
        out.append(arg)
    return out


def launch_processes(args: Sequence[str], num_processes: int, *, module: str = "hf_nuggets", poll: float = 0.2) -> int:
    """Run `python -m <module> <args>` in `num_processes` local processes (RANK/WORLD_SIZE set) and wait.

    When one process fails, the others (which this function started) are terminated, so nothing hangs.

    Args:
        args (`list[str]`): Command-line arguments for every process.
        num_processes (`int`): Number of processes.
        module (`str`, *optional*, defaults to `"hf_nuggets"`): The module to run.
        poll (`float`, *optional*, defaults to `0.2`): Seconds between status checks.

    Returns:
        `int`: 0 when all succeeded, else the first failing exit status.
    """
    import torch

    procs = []
    for rank in range(num_processes):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(num_processes), LOCAL_RANK=str(rank))
        if torch.cuda.is_available() and torch.cuda.device_count() > 1:
            env["CUDA_VISIBLE_DEVICES"] = str(rank % torch.cuda.device_count())
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // num_processes)))
        procs.append(subprocess.Popen([sys.executable, "-m", module, *args], env=env))
    status = 0
    while [p.poll() for p in procs].count(None):  # polls every process (any() would stop at the first)
        failed = [p for p in procs if p.returncode not in (None, 0)]
        if failed:
            status = failed[0].returncode
            print(
                f"hf-nuggets: process {procs.index(failed[0])} exited with status {status}; stopping the others "
                "(finished shards are kept; run the same command again to resume).",
                file=sys.stderr,
            )
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait()
            return status
        time.sleep(poll)
    for p in procs:
        if p.returncode != 0 and status == 0:
            status = p.returncode
    return status
