"""Loading prospectors from folders, GGUF files and the Hub cache, and their errors."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from hf_nuggets import load_prospector
from hf_nuggets.prospector import convert_gguf, gguf_has_tokenizer, pick_dtype


def test_load_from_folder(tiny_model_dir):
    """A `save_pretrained` folder loads in eval mode on the requested device, once per process."""
    prospector = load_prospector(str(tiny_model_dir), device="cpu")
    assert prospector.device.type == "cpu" and not prospector.model.training
    assert prospector.model.dtype == torch.float32
    assert load_prospector(str(tiny_model_dir), device="cpu") is prospector
    assert prospector.name == str(tiny_model_dir)


def test_pickles_as_its_recipe(tiny_model_dir):
    """A loaded prospector pickles as its load arguments and unpickles to the loaded object."""
    prospector = load_prospector(str(tiny_model_dir), device="cpu")
    payload = pickle.dumps(prospector)
    assert len(payload) < 2_000
    assert pickle.loads(payload) is prospector


def test_missing_path_is_named(tmp_path):
    """A local path that does not exist fails with the argument's name."""
    with pytest.raises(FileNotFoundError, match="`name_or_path` .*nope.* does not exist"):
        load_prospector(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="model.gguf"):
        load_prospector("./model.gguf")


def test_folder_without_model_is_refused(tmp_path):
    """A folder with neither config.json nor a GGUF file says what it expected."""
    with pytest.raises(ValueError, match="no config.json and 0 .gguf files"):
        load_prospector(str(tmp_path))


def write_gguf_without_tokenizer(path):
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_without_tokenizer_is_refused(tmp_path):
    """A GGUF file that carries no tokenizer fails with what to pass instead."""
    path = tmp_path / "no-tokenizer.gguf"
    write_gguf_without_tokenizer(path)
    assert not gguf_has_tokenizer(path)
    with pytest.raises(ValueError, match="holds no tokenizer .*Pass `tokenizer=`"):
        load_prospector(str(path))


def test_dtype_names_are_checked():
    """Unknown dtype names fail; defaults are float32 on CPU and bfloat16 on CUDA."""
    assert pick_dtype(None, torch.device("cpu")) == torch.float32
    assert pick_dtype(None, torch.device("cuda")) == torch.bfloat16
    assert pick_dtype("float16", torch.device("cpu")) == torch.float16
    with pytest.raises(ValueError, match="`dtype` must name a torch dtype"):
        pick_dtype("float99", torch.device("cpu"))


def test_hub_id_loads_through_the_hub_cache(tiny_model_dir, tmp_path):
    """A Hub id resolves through the real `huggingface_hub` cache layout, offline, with a pinned revision."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--tiny-llama"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    code = (
        "from hf_nuggets import load_prospector\n"
        "p = load_prospector('tiny-org/tiny-llama', device='cpu')\n"
        "print(type(p.model).__name__, p.name)\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LlamaForCausalLM tiny-org/tiny-llama" in out.stdout
    missing = code.replace("tiny-org/tiny-llama", "tiny-org/absent")
    out = subprocess.run([sys.executable, "-c", missing], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "Could not load the prospector `name_or_path`='tiny-org/absent'" in out.stderr


def test_cached_conversion_still_needs_a_tokenizer(tmp_path):
    """A conversion cached without a tokenizer is refused when a tokenizer is required, without reading the GGUF."""
    path = tmp_path / "no-tokenizer.gguf"
    write_gguf_without_tokenizer(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    cached = tmp_path / "cache" / f"no-tokenizer-{digest[:16]}"
    cached.mkdir(parents=True)
    (cached / "config.json").write_text("{}")
    assert convert_gguf(path, cache_dir=tmp_path / "cache", require_tokenizer=False) == cached
    with pytest.raises(ValueError, match="holds no tokenizer"):
        convert_gguf(path, cache_dir=tmp_path / "cache")
