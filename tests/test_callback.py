"""`filter_for_training` and `GoldenFilterCallback` with `Trainer`, TRL's `SFTTrainer` and `accelerate launch`."""

from __future__ import annotations

import json
import math
import os
import runpy
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments

from hf_nuggets import GoldenScorer, select_top
from hf_nuggets.train.callback import RECORD_FILE, GoldenFilterCallback, filter_for_training

N_ROWS, TOP_PERCENT, BATCH, EPOCHS = 40, 25, 4, 2
N_KEPT = 10  # 25% of 40 rows


# -- helpers ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    """The tiny byte-level BPE tokenizer."""
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def tiny_causal_lm(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    """A one-layer random Llama, built here for the trainer to fine-tune."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config)


def make_rows(tokenizer, *, scores: bool = True, tokenize: bool = True, seed: int = 0) -> list[dict]:
    """Alpaca rows with an `id`; tokenized to unique fixed-length `input_ids`; with random tied scores if asked."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(N_ROWS):
        row = {"id": f"row-{i}", "instruction": f"Add {i} and 2.", "input": "", "output": f"{i} + 2 = {i + 2}."}
        if tokenize:
            enc = tokenizer(f"Instruction:\n{row['instruction']}\nResponse:\n{row['output']}", max_length=48)
            pad = 48 - len(enc["input_ids"])
            row["input_ids"] = enc["input_ids"] + [tokenizer.pad_token_id] * pad
            row["attention_mask"] = [1] * len(enc["input_ids"]) + [0] * pad
            row["labels"] = enc["input_ids"] + [-100] * pad
        if scores:
            row["golden_score"] = float(rng.integers(0, 5)) / 4  # many ties, broken by the gain
            row["nuggets_gain"] = float(rng.normal())
        rows.append(row)
    assert len({tuple(r.get("input_ids", [i])) for i, r in enumerate(rows)}) == N_ROWS
    return rows


def top_ids(rows: list[dict], percent: float = TOP_PERCENT) -> list[str]:
    """The oracle: ids of the top rows by `select_top`, in dataset order."""
    best = set(select_top(Dataset.from_list(rows), percent)["id"])
    return [r["id"] for r in rows if r["id"] in best]


def arg_options(out: Path, **overrides) -> dict:
    """Trainer settings for a few quick CPU steps."""
    options = dict(
        output_dir=str(out),
        per_device_train_batch_size=BATCH,
        num_train_epochs=EPOCHS,
        learning_rate=1e-3,
        lr_scheduler_type="linear",
        save_strategy="no",
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    return {**options, **overrides}


def training_args(out: Path, **overrides) -> TrainingArguments:
    return TrainingArguments(**arg_options(out, **overrides))


def make_trainer(tokenizer, rows, out: Path, **overrides) -> Trainer:
    return Trainer(
        model=tiny_causal_lm(len(tokenizer)),
        args=training_args(out, **overrides),
        train_dataset=Dataset.from_list(rows),
    )


def record_rows_seen(trainer, rows) -> list[str]:
    """Ids of the rows the model is fed during training, recorded by a forward pre-hook."""
    by_ids = {tuple(r["input_ids"]): r["id"] for r in rows}
    seen: list[str] = []

    def hook(module, args, kwargs):
        if module.training:
            seen.extend(by_ids[tuple(x)] for x in kwargs["input_ids"].tolist())

    trainer.model.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


class StopAt(TrainerCallback):
    """Interrupts training after a given step, as a crash would."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"stopped at step {self.step}")


# -- filter_for_training ----------------------------------------------------------------------------------------------
def test_filter_for_training_reads_the_score_column(tokenizer):
    """A `golden_score` column gives the same rows as `select_top`, kept in dataset order."""
    rows = make_rows(tokenizer, tokenize=False)
    kept = filter_for_training(Dataset.from_list(rows), top_percent=TOP_PERCENT)
    assert list(kept["id"]) == top_ids(rows)


def test_filter_for_training_scores_with_the_prospector(tiny_prospector, tasks, candidates):
    """Without scores, rows are scored with the prospector and task set, as `GoldenScorer` + `select_top` would."""
    ds = Dataset.from_list(candidates).add_column("id", list(range(len(candidates))))
    kept = filter_for_training(ds, top_percent=50, prospector=tiny_prospector, task_set=tasks)
    oracle = select_top(ds.map(GoldenScorer(tiny_prospector, tasks), batched=True), 50)
    assert list(kept["id"]) == sorted(oracle["id"])
    assert {"golden_score", "nuggets_gain"} <= set(kept.column_names)


@pytest.mark.parametrize("bad", [0, -5, 100.5, "5", True])
def test_top_percent_outside_range_is_an_error(bad):
    """`top_percent` outside (0, 100] fails in `filter_for_training` and in the callback's constructor."""
    ds = Dataset.from_dict({"golden_score": [0.5, 1.0]})
    with pytest.raises(ValueError, match=r"`top_percent` must be in \(0, 100\]"):
        filter_for_training(ds, top_percent=bad)
    with pytest.raises(ValueError, match=r"`top_percent` must be in \(0, 100\]"):
        GoldenFilterCallback(top_percent=bad)


def test_neither_scores_nor_text_is_an_error(tokenizer, tmp_path):
    """Data with neither a score column nor text columns fails, naming how to keep the text or pre-score."""
    rows = [{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in make_rows(tokenizer)]
    with pytest.raises(ValueError, match="neither a `golden_score` column nor text columns.*remove_columns"):
        filter_for_training(Dataset.from_list(rows), top_percent=TOP_PERCENT)
    trainer = make_trainer(tokenizer, rows, tmp_path)
    with pytest.raises(ValueError, match="neither a `golden_score` column nor text columns"):
        GoldenFilterCallback(top_percent=TOP_PERCENT).attach(trainer)
    assert len(trainer.train_dataset) == N_ROWS


def test_filter_that_keeps_no_row_is_an_error(tokenizer, tmp_path):
    """A percentage that rounds to zero rows fails before training, saying which percentage would work."""
    ds = Dataset.from_dict({"golden_score": [0.5] * 9})
    with pytest.raises(ValueError, match=r"keeps no row \(0.45 rounds to 0\).*above 5.56"):
        filter_for_training(ds, top_percent=5)
    trainer = make_trainer(tokenizer, make_rows(tokenizer), tmp_path)
    with pytest.raises(ValueError, match="keeps no row"):
        GoldenFilterCallback(top_percent=1).attach(trainer)


def test_streaming_dataset_is_an_error(tokenizer, tmp_path):
    """An `IterableDataset`, which the trainer cannot measure, fails before training."""
    streamed = Dataset.from_list(make_rows(tokenizer)).to_iterable_dataset()
    with pytest.raises(TypeError, match="streaming `IterableDataset` without a length"):
        filter_for_training(streamed, top_percent=TOP_PERCENT)
    trainer = Trainer(
        model=tiny_causal_lm(len(tokenizer)), args=training_args(tmp_path, max_steps=2), train_dataset=streamed
    )
    with pytest.raises(TypeError, match="streaming `IterableDataset` without a length"):
        GoldenFilterCallback(top_percent=TOP_PERCENT).attach(trainer)


# -- Trainer ----------------------------------------------------------------------------------------------------------
def test_steps_and_schedule_follow_the_filtered_size(tokenizer, tmp_path):
    """Optimizer steps are ceil(kept / batch) x epochs, and the linear schedule reaches zero at the last one."""
    trainer = make_trainer(tokenizer, make_rows(tokenizer), tmp_path)
    GoldenFilterCallback(top_percent=TOP_PERCENT).attach(trainer)
    trainer.train()
    expected = math.ceil(N_KEPT / BATCH) * EPOCHS
    assert trainer.state.max_steps == trainer.state.global_step == expected
    assert trainer.lr_scheduler.get_last_lr()[0] == 0.0


def test_dataloader_yields_exactly_the_top_rows(tokenizer, tmp_path):
    """Each epoch feeds the model every top row once and no other row."""
    rows = make_rows(tokenizer)
    trainer = GoldenFilterCallback(top_percent=TOP_PERCENT).attach(make_trainer(tokenizer, rows, tmp_path))
    seen = record_rows_seen(trainer, rows)
    trainer.train()
    assert sorted(seen) == sorted(top_ids(rows) * EPOCHS)


def test_logs_counts_threshold_and_writes_kept_ids(tokenizer, tmp_path):
    """Counts and threshold reach `Trainer.log`; the kept positions and ids are written to `output_dir`."""
    rows = make_rows(tokenizer)
    trainer = make_trainer(tokenizer, rows, tmp_path)
    GoldenFilterCallback(top_percent=TOP_PERCENT).attach(trainer)
    trainer.train()
    logged = next(entry for entry in trainer.state.log_history if "nuggets/rows_kept" in entry)
    threshold = min(r["golden_score"] for r in rows if r["id"] in top_ids(rows))
    assert logged["nuggets/rows_total"] == N_ROWS
    assert (logged["nuggets/rows_kept"], logged["nuggets/rows_dropped"]) == (N_KEPT, N_ROWS - N_KEPT)
    assert logged["nuggets/score_threshold"] == threshold
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    assert record["kept_ids"] == top_ids(rows)
    assert [rows[i]["id"] for i in record["kept_positions"]] == top_ids(rows)


def test_callback_never_attached_stops_before_training(tokenizer, tmp_path):
    """`trainer.add_callback` without `attach` raises at `on_train_begin`, before any optimizer step."""
    trainer = make_trainer(tokenizer, make_rows(tokenizer), tmp_path)
    trainer.add_callback(GoldenFilterCallback(top_percent=TOP_PERCENT))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with pytest.raises(RuntimeError, match=r"never attached.*\.attach\(trainer\)"):
        trainer.train()
    assert trainer.state.global_step == 0
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))


def test_callback_passed_at_construction_is_attached_once(tokenizer, tmp_path):
    """A callback given in `callbacks=[...]` and then attached is registered once and filters the data."""
    callback = GoldenFilterCallback(top_percent=TOP_PERCENT)
    trainer = Trainer(
        model=tiny_causal_lm(len(tokenizer)),
        args=training_args(tmp_path),
        train_dataset=Dataset.from_list(make_rows(tokenizer)),
        callbacks=[callback],
    )
    callback.attach(trainer)
    assert trainer.callback_handler.callbacks.count(callback) == 1
    trainer.train()
    assert trainer.state.global_step == math.ceil(N_KEPT / BATCH) * EPOCHS


def test_replacing_the_dataset_after_attach_is_an_error(tokenizer, tmp_path):
    """A `train_dataset` swapped after `attach` is refused at `on_train_begin`."""
    rows = make_rows(tokenizer)
    trainer = GoldenFilterCallback(top_percent=TOP_PERCENT).attach(make_trainer(tokenizer, rows, tmp_path))
    trainer.train_dataset = Dataset.from_list(rows)
    with pytest.raises(RuntimeError, match="was replaced after `GoldenFilterCallback.attach`"):
        trainer.train()
    assert trainer.state.global_step == 0


# -- SFTTrainer -------------------------------------------------------------------------------------------------------
def test_sft_trainer_trains_on_the_top_rows(tokenizer, tiny_prospector, tasks, tmp_path):
    """`SFTTrainer` (which tokenizes in `__init__`) is scored from its kept text columns and trains on the top rows."""
    trl = pytest.importorskip("trl")
    rows = make_rows(tokenizer, scores=False, tokenize=False)
    args = trl.SFTConfig(**arg_options(tmp_path, max_length=64))
    trainer = trl.SFTTrainer(
        model=tiny_causal_lm(len(tokenizer)),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        formatting_func=lambda r: f"Instruction:\n{r['instruction']}\nResponse:\n{r['output']}",
    )
    callback = GoldenFilterCallback(top_percent=TOP_PERCENT, prospector=tiny_prospector, task_set=tasks)
    callback.attach(trainer)
    scored = Dataset.from_list(rows).map(GoldenScorer(tiny_prospector, tasks), batched=True).to_list()
    assert list(trainer.train_dataset["id"]) == callback.record["kept_ids"] == top_ids(scored)
    trainer.train()
    assert trainer.state.global_step == math.ceil(N_KEPT / BATCH) * EPOCHS


# -- resuming ---------------------------------------------------------------------------------------------------------
def test_resume_trains_on_the_same_subset_without_rescoring(tokenizer, tiny_prospector, tasks, tmp_path, monkeypatch):
    """A resumed run reuses the recorded subset (no scoring) and finishes the interrupted schedule on it."""
    rows = make_rows(tokenizer, scores=False)
    overrides = dict(save_strategy="steps", save_steps=2)
    first = make_trainer(tokenizer, rows, tmp_path, **overrides)
    GoldenFilterCallback(top_percent=TOP_PERCENT, prospector=tiny_prospector, task_set=tasks).attach(first)
    first.add_callback(StopAt(3))
    with pytest.raises(KeyboardInterrupt):
        first.train()
    assert (tmp_path / "checkpoint-2" / RECORD_FILE).is_file()

    monkeypatch.setattr(GoldenScorer, "__call__", lambda *a, **k: pytest.fail("the resumed run scored again"))
    second = make_trainer(tokenizer, rows, tmp_path, **overrides)
    callback = GoldenFilterCallback(top_percent=TOP_PERCENT, prospector=tiny_prospector, task_set=tasks)
    callback.attach(second)
    seen = record_rows_seen(second, rows)
    second.train(resume_from_checkpoint=True)
    assert callback.reused_record
    assert set(seen) <= set(callback.record["kept_ids"]) and len(set(seen)) == N_KEPT
    assert second.state.global_step == math.ceil(N_KEPT / BATCH) * EPOCHS


def test_resume_on_another_subset_is_an_error(tokenizer, tmp_path):
    """Resuming from a checkpoint whose recorded subset differs from the one selected now stops before training."""
    overrides = dict(save_strategy="steps", save_steps=2)
    first = make_trainer(tokenizer, make_rows(tokenizer), tmp_path, **overrides)
    GoldenFilterCallback(top_percent=TOP_PERCENT).attach(first)
    first.add_callback(StopAt(3))
    with pytest.raises(KeyboardInterrupt):
        first.train()
    rescored = [{**r, "golden_score": 1 - r["golden_score"]} for r in make_rows(tokenizer)]
    second = GoldenFilterCallback(top_percent=TOP_PERCENT).attach(make_trainer(tokenizer, rescored, tmp_path))
    with pytest.raises(RuntimeError, match="checkpoint trained on other rows"):
        second.train(resume_from_checkpoint=True)
    assert second.state.global_step == 2


# -- several processes ------------------------------------------------------------------------------------------------
DDP_SCRIPT = """
import json, sys
from pathlib import Path

from datasets import Dataset
from transformers import AutoTokenizer, Trainer

sys.path.insert(0, {tests_dir!r})
import test_callback as t

from hf_nuggets.train.callback import GoldenFilterCallback


def run(model_dir, out, tasks):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = t.make_rows(tokenizer, scores=False)
    trainer = t.make_trainer(tokenizer, rows, Path(out))
    callback = GoldenFilterCallback(top_percent=t.TOP_PERCENT, prospector=model_dir, task_set=tasks)
    callback.attach(trainer)
    seen = t.record_rows_seen(trainer, rows)
    trainer.train()
    rank = trainer.accelerator.process_index
    result = dict(
        world=trainer.accelerator.num_processes,
        kept_ids=list(trainer.train_dataset["id"]),
        scored_here=callback.scorer.stats["candidates"],
        seen=seen,
        global_step=trainer.state.global_step,
    )
    Path(out, f"rank{{rank}}.json").write_text(json.dumps(result))
    return result


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_agree_with_one(tiny_model_dir, tasks, tmp_path):
    """Two processes under `accelerate launch` score half the rows each and train on the one-process subset."""
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT.format(tests_dir=str(Path(__file__).parent)))
    out = tmp_path / "ddp"
    launcher = Path(sys.executable).with_name("accelerate")
    # `--cpu` with several processes needs MPI in accelerate; `--multi_gpu` launches through torchrun instead, and
    # with CUDA hidden and ACCELERATE_USE_CPU the two processes train on the CPU over gloo.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "ACCELERATE_USE_CPU": "true"}
    # fmt: off
    command = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
               str(script), str(tiny_model_dir), str(out), json.dumps(tasks)]
    # fmt: on
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]

    single = runpy.run_path(str(script), run_name="single")["run"](str(tiny_model_dir), str(tmp_path / "one"), tasks)
    assert single["world"] == 1 and all(r["world"] == 2 for r in ranks)
    assert ranks[0]["kept_ids"] == ranks[1]["kept_ids"] == single["kept_ids"]
    assert [r["scored_here"] for r in ranks] == [N_ROWS // 2, N_ROWS // 2]  # each rank scored its own half
    assert set(ranks[0]["seen"]) | set(ranks[1]["seen"]) == set(single["kept_ids"])
    assert ranks[0]["global_step"] == math.ceil(N_KEPT / (2 * BATCH)) * EPOCHS
    record = json.loads((out / RECORD_FILE).read_text())
    assert record["kept_ids"] == single["kept_ids"]


# -- the example ------------------------------------------------------------------------------------------------------
def test_example_script_runs_with_a_tiny_model(tiny_model_dir, tmp_path, capsys):
    """`examples/sft_with_nuggets.py` filters and fine-tunes end to end (the tiny model standing in for SmolLM2)."""
    pytest.importorskip("trl")
    example = Path(__file__).parents[1] / "examples" / "sft_with_nuggets.py"
    main = runpy.run_path(str(example), run_name="example")["main"]
    model = str(tiny_model_dir)
    result = main(["--prospector", model, "--model", model, "--rows", "40", "--output_dir", str(tmp_path)])
    record = result["record"]
    kept = min(N_KEPT, N_ROWS - record["rows_gated"])  # the top 25% of 40 rows, never a gated row
    assert record["rows_kept"] == kept and result["global_step"] == math.ceil(kept / BATCH)
    assert f"Kept {kept} of {N_ROWS} rows" in capsys.readouterr().out
    assert (tmp_path / RECORD_FILE).is_file()
    ungated = main(["--prospector", model, "--model", model, "--rows", "40", "--output_dir", str(tmp_path / "all"),
                    "--gates", "none"])  # fmt: skip
    assert ungated["record"]["rows_kept"] == N_KEPT and ungated["global_step"] == math.ceil(N_KEPT / BATCH)


# -- gates ------------------------------------------------------------------------------------------------------------
def with_flags(rows: list[dict]) -> list[dict]:
    """Flag the three best rows by golden score and gain, the ones an ungated top would take first."""
    best = {r["id"] for r in select_top(Dataset.from_list(rows), 100 * 3 / N_ROWS, gates=None)}
    return [dict(r, nuggets_flags="unaligned" if r["id"] in best else "") for r in rows]


def test_filter_for_training_never_keeps_a_flagged_row(tokenizer):
    """Flagged rows are left out of `filter_for_training`'s top; `gates=None` selects as before gates."""
    rows = with_flags(make_rows(tokenizer, tokenize=False))
    data = Dataset.from_list(rows)
    kept = filter_for_training(data, top_percent=TOP_PERCENT)
    assert len(kept) == N_KEPT and not any(kept["nuggets_flags"])
    assert kept["id"] == top_ids(rows)  # the oracle: `select_top` with its default gates
    ungated = filter_for_training(data, top_percent=TOP_PERCENT, gates=None)
    assert {r["id"] for r in rows if r["nuggets_flags"]} <= set(ungated["id"])
    with pytest.raises(ValueError, match="Unknown gate"):
        filter_for_training(data, top_percent=TOP_PERCENT, gates=["empty", "nope"])


def test_callback_never_trains_on_a_flagged_row(tokenizer, tmp_path):
    """The callback's kept rows are the gated top; the record counts the gated rows and names the gates."""
    rows = with_flags(make_rows(tokenizer))
    trainer = GoldenFilterCallback(top_percent=TOP_PERCENT).attach(make_trainer(tokenizer, rows, tmp_path))
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    assert record["kept_ids"] == top_ids(rows) and record["rows_gated"] == 3
    assert record["settings"]["gates"] == ["empty", "placeholder", "unaligned", "unfinished"]
    assert not any(trainer.train_dataset["nuggets_flags"])
