"""Sharded prospecting: multi-process equality, kill -9 and resume, refused settings, streaming memory bound."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from datasets import Dataset, load_dataset

from hf_nuggets import GoldenScorer, load_prospector
from hf_nuggets.cli import main
from hf_nuggets.gates import ALIGNMENT_THRESHOLD, COMPLETENESS_THRESHOLD, GateSettings
from hf_nuggets.run.checkpoint import exact_quantiles, read_log, stream_threshold
from hf_nuggets.run.launch import launch_processes, strip_option
from hf_nuggets.run.prospecting import prospect
from hf_nuggets.run.sharded import prospect_sharded
from hf_nuggets.scoring.engine import TruncationLimits
from hf_nuggets.selection import select_top

WORDS = "red blue add two three fox dog water boils station french square return lazy quick brown".split()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_rows(n: int, seed: int = 0, words: int = 8) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "instruction": " ".join(rng.choice(WORDS, 4)) + f" #{i}",
            "input": "" if i % 3 else " ".join(rng.choice(WORDS, 3)),
            "output": " ".join(rng.choice(WORDS, words)),
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale-data")
    rows = make_rows(48)
    tasks = [
        {"instruction": "Add 2 and 2.", "input": "", "output": "4"},
        {"instruction": "Name a colour.", "input": "", "output": "Red is a colour."},
        {"instruction": "What boils at 100 degrees?", "input": "", "output": "Water boils at 100 degrees Celsius."},
        {"instruction": "Translate into French.", "input": "Where is the station?", "output": "Où est la gare ?"},
    ]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    return folder / "data.jsonl", folder / "tasks.jsonl", rows, tasks


@pytest.fixture(scope="module")
def oracle(data_files, tiny_prospector, tmp_path_factory):
    """The single-process, unsharded `prospect` run: the reference every other run must equal."""
    import torch

    torch.set_num_threads(1)
    data, _, _, tasks = data_files
    dataset = load_dataset("json", data_files=str(data), split="train")
    scored, _ = prospect(
        dataset,
        GoldenScorer(tiny_prospector, tasks),
        tmp_path_factory.mktemp("oracle"),
        top_percent=25,
        progress=False,
    )
    return scored


def cli_args(data_files, tiny_model_dir, out, *extra) -> list[str]:
    data, task_file, _, _ = data_files
    return ["score", str(data), "--tasks", str(task_file), "--model", str(tiny_model_dir), "--out", str(out),
            "--device", "cpu", "--dtype", "float32", "--top", "25", "--quiet", *extra]  # fmt: skip


def read_scored(out) -> Dataset:
    return load_dataset("parquet", data_files=str(out / "scored.parquet"), split="train")


def assert_same(scored, oracle) -> None:
    assert scored["instruction"] == oracle["instruction"]
    assert scored["golden_score"] == oracle["golden_score"]
    np.testing.assert_allclose(scored["nuggets_gain"], oracle["nuggets_gain"], rtol=0, atol=1e-6)


def subprocess_env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")


def test_accelerate_two_processes_equal_one(data_files, tiny_model_dir, oracle, tmp_path):
    """`accelerate launch --num_processes 2 -m hf_nuggets score` on CPU gathers the same rows and scores.

    accelerate 1.x runs a single process for `--cpu` (its multi-CPU mode needs mpirun), so the test uses its
    torchrun launcher (`--multi_gpu`), which starts two processes that score on the CPU when there is no GPU.
    """
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--multi_gpu",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "hf_nuggets",
           *cli_args(data_files, tiny_model_dir, out, "--shard_size", "5")]  # fmt: skip
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same(read_scored(out), oracle)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sharding"]["processes"] == 2 and summary["sharding"]["shards"] == 10
    assert summary["sharding"]["shards_scored_by_process_0"] == 5  # the other 5 came from process 1
    selected = load_dataset("json", data_files=str(out / "selected.jsonl"), split="train")
    assert selected["instruction"] == select_top(oracle, 25)["instruction"]
    pids = {json.loads(line)["pid"] for line in open(out / "checkpoint" / "scored.log")}
    assert len(pids) == 2


def _free_port() -> int:
    import socket

    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    except OSError as err:
        pytest.skip(f"cannot bind a port on 127.0.0.1 for accelerate's rendezvous: {err}")


#: What `accelerate launch` or torchrun print when the rendezvous port is taken (another test or service got it).
PORT_TAKEN = ("utilizing it", "Address already in use", "EADDRINUSE", "address already in use")


def test_accelerate_two_machines_sharing_one_folder_equal_one(data_files, tiny_model_dir, oracle, tmp_path):
    """Two `accelerate launch --num_machines 2 --machine_rank 0|1` (one process each) writing to one output folder
    gather the rows and scores of a single-process run, as two machines with a shared filesystem would.

    Machine 1's launcher starts `delay` seconds after machine 0's: torchrun's rendezvous holds machine 0's process
    until machine 1 joins (up to its own 600 s), so process 0 logs its first shard only after machine 1 started, and
    the run's `--timeout` (a stall timer) never sees the late start. Each process has LOCAL_RANK 0; RANK is 0 and 1.
    """
    out, delay = tmp_path / "out", 8.0
    args = cli_args(data_files, tiny_model_dir, out, "--shard_size", "5", "--timeout", "300")
    for _ in range(2):  # a second port if the first was taken between choosing it and binding it
        port = _free_port()
        procs, logs = [], []
        try:
            for machine in (0, 1):
                if machine:
                    started = time.monotonic()
                    while procs[0].poll() is None and time.monotonic() - started < delay:
                        time.sleep(0.2)
                    if procs[0].poll() is not None:
                        break  # machine 0 failed (a port taken?): no machine 1 to wait for
                    machine_1_start = time.time()
                cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "2",
                       "--machine_rank", str(machine), "--main_process_ip", "127.0.0.1", "--main_process_port",
                       str(port), "--num_processes", "2", "--mixed_precision", "no", "--dynamo_backend", "no",
                       "-m", "hf_nuggets", *args]  # fmt: skip
                logs.append(open(tmp_path / f"machine{machine}.log", "w+"))  # noqa: SIM115 - closed below
                procs.append(subprocess.Popen(cmd, env=subprocess_env(), stdout=logs[-1], stderr=subprocess.STDOUT,
                                              text=True, start_new_session=True))  # fmt: skip
            deadline = time.monotonic() + 400
            while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
                if any(p.poll() not in (None, 0) for p in procs):
                    break  # one machine failed: the other would wait for it until torchrun's rendezvous times out
                time.sleep(0.5)
        finally:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            texts = []
            for log in logs:
                log.seek(0)
                texts.append(log.read())
                log.close()
        if procs[0].returncode != 0 and any(m in texts[0] for m in PORT_TAKEN):
            continue
        break
    else:
        pytest.skip(f"accelerate could not bind a rendezvous port on 127.0.0.1: {texts[0][-500:]}")
    for machine, (p, text) in enumerate(zip(procs, texts, strict=True)):
        assert p.returncode == 0, f"machine {machine} exited with {p.returncode}:\n{text[-3000:]}"
    assert_same(read_scored(out), oracle)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sharding"]["processes"] == 2 and summary["sharding"]["shards"] == 10
    assert summary["sharding"]["shards_scored_by_process_0"] == 5  # the other 5 came from machine 1
    selected = load_dataset("json", data_files=str(out / "selected.jsonl"), split="train")
    assert selected["instruction"] == select_top(oracle, 25)["instruction"]
    log = [json.loads(line) for line in open(out / "checkpoint" / "scored.log")]
    assert len({entry["pid"] for entry in log}) == 2 and sorted(e["shard"] for e in log) == list(range(10))
    assert min(entry["time"] for entry in log) >= machine_1_start  # the rendezvous waited for machine 1
    assert not (out / ".hf-nuggets.lock").exists()  # process 0 freed the folder; process 1 never took it


def test_kill9_then_resume_equals_uninterrupted(data_files, tiny_model_dir, oracle, tmp_path):
    """A run killed with SIGKILL after its first shard, started again, ends equal and scores no shard twice."""
    out = tmp_path / "out"
    args = cli_args(data_files, tiny_model_dir, out, "--shard_size", "2")
    proc = subprocess.Popen([sys.executable, "-m", "hf_nuggets", *args], env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    try:
        while not list((out / "checkpoint").glob("shard-*.npz")):
            assert proc.poll() is None, "the run ended before writing a shard"
            assert time.monotonic() < deadline, "no shard written within 120 s"
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    done_at_kill = len(list((out / "checkpoint").glob("shard-*.npz")))
    assert 1 <= done_at_kill < 24 and not (out / "scored.parquet").exists()
    assert main(args) == 0
    assert_same(read_scored(out), oracle)
    shards = read_log(out / "checkpoint")
    assert len(shards) == len(set(shards)), f"a shard was scored twice: {shards}"
    assert len(set(range(24)) - set(shards)) <= 1  # at most one written but not yet logged when killed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sharding"]["shards_resumed_by_process_0"] >= done_at_kill


def test_num_processes_shortcut_and_resume_refusals(data_files, tiny_model_dir, tiny_prospector, oracle, tmp_path):
    """`--num_processes 2` equals one process; changed settings or data, corrupt shards, bad folders are handled."""
    out = tmp_path / "out"
    assert main(cli_args(data_files, tiny_model_dir, out, "--num_processes", "2", "--shard_size", "8")) == 0
    assert_same(read_scored(out), oracle)
    # A changed task set, template or limit is refused, and nothing is deleted.
    before = sorted(p.name for p in (out / "checkpoint").iterdir())
    for extra in (["--num_tasks", "2"], ["--template", "chat"], ["--max_demo_tokens", "7"], ["--shard_size", "4"]):
        with pytest.raises(ValueError, match="checkpoint of another run .*changed"):
            _run_sharded(data_files, tiny_model_dir, out, extra)
    assert sorted(p.name for p in (out / "checkpoint").iterdir()) == before
    # Changed data under the same settings is refused too.
    data, task_file, rows, tasks = data_files
    changed = Dataset.from_list([dict(r, output=r["output"] + "!") for r in rows])
    with pytest.raises(ValueError, match="data changed since shard 0"):
        prospect_sharded(changed, GoldenScorer(tiny_prospector, tasks), out, top_percent=25,
                         shard_size=8, progress=False)  # fmt: skip
    # A corrupt shard is moved aside and scored again; the result is unchanged.
    (out / "checkpoint" / "shard-000002.npz").write_bytes(b"half-written garbage")
    dataset = load_dataset("json", data_files=str(data), split="train")
    scored, summary = prospect_sharded(dataset, GoldenScorer(tiny_prospector, tasks), out,
                                       top_percent=25, shard_size=8, progress=False)  # fmt: skip
    assert summary["sharding"]["corrupt_shards_rescored"] == 1 and summary["sharding"]["rows_scored_this_run"] == 8
    assert (out / "checkpoint" / "shard-000002.npz.corrupt").exists()
    assert_same(scored, oracle)
    with pytest.raises(FileExistsError, match="resume"):
        prospect_sharded(dataset, GoldenScorer(tiny_prospector, tasks), out, top_percent=25,
                         shard_size=8, resume=False, progress=False)  # fmt: skip
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="not writable"):
        prospect_sharded(dataset, GoldenScorer(str(tiny_model_dir), tasks, device="cpu"), blocker / "out")


def _run_sharded(data_files, tiny_model_dir, out, extra):
    from transformers import HfArgumentParser

    from hf_nuggets.run.config import ScoreConfig

    config = HfArgumentParser(ScoreConfig).parse_args_into_dataclasses(
        args=["--out", str(out), "--tasks", str(data_files[1]), "--shard_size", "8", "--dtype", "float32", *extra],
        look_for_args_file=False,
    )[0]
    prospector = load_prospector(str(tiny_model_dir), device="cpu", dtype=config.dtype)
    scorer = GoldenScorer(prospector, config.tasks, num_tasks=config.num_tasks, template=config.template,
                          limits=config.limits())  # fmt: skip
    dataset = load_dataset("json", data_files=str(data_files[0]), split="train")
    return prospect_sharded(dataset, scorer, out, top_percent=25, shard_size=config.shard_size, progress=False)


def test_dead_peer_times_out_with_a_clear_message(data_files, tiny_prospector, tmp_path):
    """Process 0 of 2 whose peer never runs stops waiting after `timeout` and keeps its own shards."""
    dataset = Dataset.from_list(data_files[2][:8])
    with pytest.raises(TimeoutError, match=r"missing .*owned by process\(es\) \[1\].*run the same command again"):
        prospect_sharded(dataset, GoldenScorer(tiny_prospector, data_files[3]), tmp_path, shard_size=2, rank=0,
                         world_size=2, timeout=1.0, progress=False)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "checkpoint").glob("shard-*.npz")) == [
        "shard-000000.npz",
        "shard-000002.npz",
    ]


def test_streaming_memory_is_bounded_by_the_shard(tiny_prospector, tmp_path):
    """A parquet-shard folder read as a stream is scored in Python memory that does not grow with the data.

    Each row carries a 24 kB `payload` column that is read and written through (not scored), so 300 rows are about
    7 MB while a shard of 2 rows holds about 50 kB. The peak for all 300 rows is compared with the peak for the first
    150: memory that followed the data would double.
    """
    from hf_nuggets.data.loading import load_data

    rows = make_rows(300, seed=1, words=3)
    for i, row in enumerate(rows):
        row["payload"] = f"{i} " + "lorem ipsum " * 2000
    folder = tmp_path / "parquet"
    folder.mkdir()
    for part in range(4):
        Dataset.from_list(rows[part * 75 : (part + 1) * 75]).to_parquet(str(folder / f"part-{part}.parquet"))
    data_bytes = sum(len(json.dumps(r)) for r in rows)
    tasks = [{"instruction": "Add 2 and 2.", "input": "", "output": "4"}]
    limits = TruncationLimits(8, 16, 16)
    # Fixed thresholds: with these short limits most shipped answers are cut, which leaves 'auto' little to calibrate
    # on, and the tiny random model would flag every row.
    gate_settings = GateSettings(ALIGNMENT_THRESHOLD, COMPLETENESS_THRESHOLD)
    scorer = GoldenScorer(tiny_prospector, tasks, limits=limits, gate_settings=gate_settings)
    scorer.zero_shot_scores  # noqa: B018 - model and zero-shot scores outside the measurement
    warm_up = load_data(folder, streaming=True)  # one-time allocations (caches, imports) outside the measurement
    prospect_sharded(warm_up, scorer, tmp_path / "warm", top_percent=5, shard_size=2, limit=4, progress=False)
    peaks = {}
    for n_rows in (150, 300):
        stream = load_data(folder, streaming=True)
        tracemalloc.start()
        _, summary = prospect_sharded(
            stream, scorer, tmp_path / f"out{n_rows}", top_percent=5, shard_size=2, limit=n_rows, progress=False
        )
        peaks[n_rows] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert summary["rows_scored"] == 300 and summary["sharding"]["shards"] == 150 and summary["sharding"]["streaming"]
    print("peak bytes by rows streamed:", peaks)
    assert peaks[300] < 1.25 * peaks[150], f"peaks {peaks} bytes: memory grows with the data"
    assert peaks[300] < data_bytes / 4, f"peak {peaks[300]} bytes for {data_bytes} bytes of data"
    # Oracle: the in-memory dataset in the same (stream) order, scored by `prospect`.
    reference = load_data(folder)
    oracle = GoldenScorer(tiny_prospector, tasks, limits=limits, gate_settings=gate_settings)
    expected, _ = prospect(reference, oracle, tmp_path / "ref", top_percent=5, progress=False)
    scored = read_scored(tmp_path / "out300")
    assert scored["instruction"] == expected["instruction"] and scored["golden_score"] == expected["golden_score"]
    assert scored["payload"] == expected["payload"]
    selected = load_dataset("parquet", data_files=str(tmp_path / "out300" / "selected.parquet"), split="train")
    exact = select_top(expected, 5)
    assert len(selected) == len(exact) == 15
    assert sorted(selected["instruction"]) == sorted(exact["instruction"])
    assert any(expected["nuggets_flags"]) and not any(selected["nuggets_flags"])  # the stream's top honours the gates
    assert summary["gates"]["rows_flagged"] == sum(bool(f) for f in expected["nuggets_flags"])
    assert summary["quantiles"] == pytest.approx(_quantiles(expected["golden_score"]))


def _quantiles(values):
    from hf_nuggets.summary import score_quantiles

    return score_quantiles(values)


def test_stream_threshold_matches_sorting():
    """The multi-pass exact cut selects the same rows as a full sort, ties and negative gains included."""
    rng = np.random.default_rng(3)
    golden = rng.integers(0, 5, 997) / 4
    gain = np.round(rng.normal(size=997), 1)  # many exact ties
    chunks = lambda: ((golden[i : i + 50], gain[i : i + 50]) for i in range(0, 997, 50))  # noqa: E731
    from hf_nuggets.run.checkpoint import order_key
    from hf_nuggets.selection import rank_order

    keys = order_key(gain)
    for percent in (7, 20, 50):
        for budget in (0, 10**6):  # bisection passes, and the in-memory sort of the tied block
            g_star, key, ties, k = stream_threshold(chunks, 997, percent, max_in_memory=budget)
            expected = set(rank_order(golden, gain)[:k].tolist())
            pick = (golden > g_star) | ((golden == g_star) & (keys > key))
            tie_rows = np.flatnonzero((golden == g_star) & (keys == key))[:ties]
            assert set(np.flatnonzero(pick).tolist()) | set(tie_rows.tolist()) == expected


def test_exact_quantiles_match_numpy():
    """Quantiles from value counts equal `score_quantiles` on the values."""
    from collections import Counter

    values = (np.random.default_rng(0).integers(0, 17, 501) / 16).tolist()
    assert exact_quantiles(Counter(values)) == pytest.approx(_quantiles(values))


def test_strip_option():
    """The launcher removes `--num_processes` in both spellings."""
    assert strip_option(["score", "d", "--num_processes", "2", "--top", "5"], "num_processes") == [
        "score",
        "d",
        "--top",
        "5",
    ]
    assert strip_option(["--num-processes=3", "x"], "num_processes") == ["x"]


def test_launcher_stops_the_others_when_one_dies(tmp_path, monkeypatch):
    """When one launched process exits with an error, the launcher ends the others and returns that status."""
    (tmp_path / "flaky_worker.py").write_text(
        "import os, sys, time\nif os.environ['RANK'] == '1':\n    sys.exit(3)\ntime.sleep(60)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    start = time.monotonic()
    assert launch_processes([], 2, module="flaky_worker") == 3
    assert time.monotonic() - start < 30


def test_sharded_auto_tasks_equal_unsharded(tiny_prospector, tmp_path):
    """`prospect_sharded(..., task_set="auto")` draws the same tasks as `prospect` and gives the same scores; a stream
    is refused."""
    import math

    from hf_nuggets.gates import GateSettings

    data = Dataset.from_list(make_rows(24))
    scorer = GoldenScorer(tiny_prospector, gate_settings=GateSettings(alignment_threshold=-math.inf))
    options = {"num_tasks": 3, "sample_size": 16, "quality": lambda ex: [len(e.output) for e in ex]}
    options["embedder"] = lambda texts: np.array([[t.count(w) + 1.0 for w in WORDS] for t in texts])
    expected, plain = prospect(data, scorer, tmp_path / "plain", task_set="auto", auto_options=options, progress=False)
    scored, sharded = prospect_sharded(
        data, scorer, tmp_path / "sharded", task_set="auto", auto_options=options, shard_size=8, progress=False
    )
    assert sharded["tasks"] == plain["tasks"] and sharded["tasks"]["source"] == "auto"
    assert_same(scored, expected)
    with pytest.raises(ValueError, match="`task_set='auto'` samples the data, which a stream cannot give"):
        prospect_sharded(data.to_iterable_dataset(), scorer, tmp_path / "stream", task_set="auto", progress=False)


def test_resume_in_another_dtype_is_refused(data_files, tiny_model_dir, tmp_path):
    """Scores are never mixed from two dtypes: resuming a float32 checkpoint in bfloat16 is refused, naming it."""
    out = tmp_path / "out"
    assert main(cli_args(data_files, tiny_model_dir, out, "--shard_size", "8")) == 0
    with pytest.raises(ValueError, match=r"checkpoint of another run \(changed: model_dtype, model_source, weights\)"):
        _run_sharded(data_files, tiny_model_dir, out, ["--dtype", "bfloat16"])


def test_sharded_rerun_without_top_removes_the_old_selection_and_partial(data_files, tiny_prospector, tmp_path):
    """Process 0 of a sharded run without `top_percent` removes the `selected.*` and `scored.partial.*` an earlier
    run left in the folder; its summary names no selection."""
    dataset = Dataset.from_list(data_files[2][:8])
    prospect_sharded(dataset, GoldenScorer(tiny_prospector, data_files[3]), tmp_path, top_percent=25, shard_size=4,
                     progress=False)  # fmt: skip
    assert (tmp_path / "selected.parquet").is_file() and (tmp_path / "selected.jsonl").is_file()
    for name in ("scored.partial.parquet", "scored.partial.jsonl"):
        (tmp_path / name).write_text("left by a failed run")
    _, summary = prospect_sharded(dataset, GoldenScorer(tiny_prospector, data_files[3]), tmp_path, shard_size=4,
                                  progress=False)  # fmt: skip
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["checkpoint", "scored.jsonl", "scored.parquet", "summary.json"], left
    assert "selection" not in summary and "selection" not in json.loads((tmp_path / "summary.json").read_text())


def test_only_process_0_locks_the_folder(data_files, tiny_prospector, tmp_path):
    """The processes of one sharded run share the output folder: a lock held by a live process refuses process 0
    (which writes the outputs), never the others (which write only their checkpoint shards)."""
    import socket

    dataset = Dataset.from_list(data_files[2][:8])
    prospect_sharded(dataset, GoldenScorer(tiny_prospector, data_files[3]), tmp_path, shard_size=4, progress=False)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": sleeper.pid, "host": socket.gethostname(), "started": "2024-01-01T00:00:00+00:00"}
        (tmp_path / ".hf-nuggets.lock").write_text(json.dumps(lock))
        assert prospect_sharded(dataset, GoldenScorer(tiny_prospector, data_files[3]), tmp_path, shard_size=4,
                                rank=1, world_size=2, timeout=5.0, progress=False) == (None, None)  # fmt: skip
        with pytest.raises(RuntimeError, match=rf"in use .*process {sleeper.pid}"):
            prospect_sharded(dataset, GoldenScorer(tiny_prospector, data_files[3]), tmp_path, shard_size=4,
                             progress=False)  # fmt: skip
    finally:
        sleeper.kill()
        sleeper.wait()


def test_sigterm_frees_the_lock_and_keeps_the_shards(data_files, tiny_prospector, oracle, tmp_path):
    """SLURM and torchrun stop a job with SIGTERM: process 0 unwinds (exit status 143), so its folder lock, which a
    rerun on another host would honour, is gone; the finished shards stay, and a rerun resumes to the same result."""
    from hf_nuggets.run.loop import RunCallback

    class TerminateAfterFirstShard(RunCallback):
        def on_batch_end(self, state, batch, result):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends

    dataset = load_dataset("json", data_files=str(data_files[0]), split="train")
    scorer = GoldenScorer(tiny_prospector, data_files[3])
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        prospect_sharded(dataset, scorer, tmp_path, top_percent=25, shard_size=8, progress=False,
                         callbacks=[TerminateAfterFirstShard()])  # fmt: skip
    assert stopped.value.code == 143 and signal.getsignal(signal.SIGTERM) == before
    assert not (tmp_path / ".hf-nuggets.lock").exists() and not (tmp_path / "scored.parquet").exists()
    assert [p.name for p in (tmp_path / "checkpoint").glob("shard-*.npz")] == ["shard-000000.npz"]
    scored, summary = prospect_sharded(dataset, scorer, tmp_path, top_percent=25, shard_size=8, progress=False)
    assert summary["sharding"]["shards_resumed_by_process_0"] == 1
    assert_same(scored, oracle)


def test_device_and_ranks_of_a_process_on_machine_1(monkeypatch):
    """The environment torchrun gives the second process of machine 1 under `accelerate launch --num_machines 2
    --num_processes 4`: global RANK 3 of 4, LOCAL_RANK 1; it takes its machine's second GPU, and shards 3, 7, ..."""
    import torch

    from hf_nuggets.run.build import default_device
    from hf_nuggets.run.checkpoint import dist_info
    from hf_nuggets.run.config import ScoreConfig

    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "GROUP_RANK": "1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert dist_info() == (3, 4, 1)
    assert default_device(ScoreConfig()) == "cuda:1"
    assert default_device(ScoreConfig(device="cpu")) == "cpu"
    monkeypatch.setenv("RANK", "2")  # the first process of machine 1
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert default_device(ScoreConfig()) == "cuda:0"
    monkeypatch.delenv("LOCAL_RANK")  # a launcher that sets no LOCAL_RANK: the global rank picks the GPU
    assert dist_info() == (2, 4, 2) and default_device(ScoreConfig()) == "cuda:0"


def test_sharded_diverse_top_equals_unsharded(tiny_prospector, tasks, tmp_path):
    """`min_distance` gives the same diverse top sharded or not (embeddings from a column that scoring keeps); a
    stream and early stopping are refused."""
    rows = make_rows(12)
    rows = [{**row, "nuggets_embedding": np.eye(6)[i % 6].tolist()} for i, row in enumerate(rows * 2)]
    data = Dataset.from_list(rows)  # rows i and i + 6 (and i + 12, ...) share an embedding
    scorer = GoldenScorer(tiny_prospector, tasks, gate_settings=GateSettings(-1e9, -1e9))
    _, plain = prospect(data, scorer, tmp_path / "plain", top_percent=50, min_distance=0.1, progress=False)
    _, sharded = prospect_sharded(
        data, scorer, tmp_path / "sharded", top_percent=50, min_distance=0.1, shard_size=8, progress=False
    )
    for record in (plain["selection"], sharded["selection"]):
        assert record["rows_selected"] == 6 and record["rows_redundant"] == 24 - 6
    expected = load_dataset("json", data_files=str(tmp_path / "plain" / "selected.jsonl"), split="train")
    got = load_dataset("json", data_files=str(tmp_path / "sharded" / "selected.jsonl"), split="train")
    assert got["instruction"] == expected["instruction"]
    assert sorted(np.argmax(got["nuggets_embedding"], axis=1).tolist()) == list(range(6))
    with pytest.raises(ValueError, match="`min_distance` needs a map-style dataset"):
        prospect_sharded(data.to_iterable_dataset(), scorer, tmp_path / "s", top_percent=50, min_distance=0.1)
