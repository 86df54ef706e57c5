"""Shared fixtures: a tiny random Llama with a small byte-level BPE tokenizer, saved to disk once per session, and
tiny random sliding-window models (Gemma 3, Mistral) with the same tokenizer."""

from __future__ import annotations

import pytest

TINY_CORPUS = [
    "Instruction:\nName a primary colour.\nResponse:\nRed is a primary colour.",
    "Instruction:\nAdd 2 and 3.\nInput:\nUse integers.\nResponse:\n2 + 3 = 5.",
    "The quick brown fox jumps over the lazy dog. Water boils at 100 degrees Celsius.",
    "Translate into French: where is the station? Où est la gare ?",
    "def square(x):\n    return x * x",
]


def build_tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(TINY_CORPUS * 20, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def build_tiny_model(vocab_size: int, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    # Random weights give near-uniform predictions; a larger init makes gains and losses clearly non-zero.
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.mul_(8.0)
    return model.eval()


#: The attention window of the tiny sliding-window models, in tokens: shorter than some demonstrations and tasks.
TINY_SLIDING_WINDOW = 32


def build_tiny_sliding_model(
    vocab_size: int, architecture: str, seed: int = 0, sliding_window: int = TINY_SLIDING_WINDOW
):
    """A tiny random causal LM whose attention (or part of it) only sees the last `TINY_SLIDING_WINDOW` tokens.

    Args:
        vocab_size (`int`): The tokenizer's vocabulary size.
        architecture (`str`): `"gemma3"` (sliding layers around one full-attention layer, as in Gemma 3) or
            `"mistral"` (every layer sliding).
        seed (`int`, *optional*, defaults to `0`): Seed of the random weights.
        sliding_window (`int`, *optional*, defaults to `TINY_SLIDING_WINDOW`): The attention window in tokens.
    """
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, MistralConfig, MistralForCausalLM

    shape = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "max_position_embeddings": 2048,
        "sliding_window": sliding_window,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "tie_word_embeddings": True,
    }
    torch.manual_seed(seed)
    if architecture == "gemma3":
        layer_types = ["sliding_attention", "full_attention", "sliding_attention"]
        config = Gemma3TextConfig(num_hidden_layers=3, layer_types=layer_types, query_pre_attn_scalar=8, **shape)
        model = Gemma3ForCausalLM(config)
    elif architecture == "mistral":
        model = MistralForCausalLM(MistralConfig(num_hidden_layers=2, **shape))
    else:
        raise ValueError(f"`architecture` must be 'gemma3' or 'mistral', got {architecture!r}.")
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.mul_(8.0)
    return model.eval()


@pytest.fixture(scope="session")
def make_sliding_prospector():
    """Builds a `Prospector` of a tiny sliding-window model and the tiny tokenizer: `(architecture, window)`."""
    from hf_nuggets.scoring.prospector import Prospector

    tokenizer = build_tiny_tokenizer()

    def make(architecture: str, sliding_window: int = TINY_SLIDING_WINDOW) -> Prospector:
        model = build_tiny_sliding_model(len(tokenizer), architecture, sliding_window=sliding_window)
        return Prospector(model=model, tokenizer=tokenizer, name=f"tiny-{architecture}-window-{sliding_window}")

    return make


@pytest.fixture(scope="session", params=["gemma3", "mistral"])
def sliding_prospector(request, make_sliding_prospector):
    """A tiny random sliding-window model (Gemma 3 and Mistral) and the tiny tokenizer, as a `Prospector`."""
    return make_sliding_prospector(request.param)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A folder holding a tiny random Llama and its tokenizer, saved with `save_pretrained`."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(len(tokenizer))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_prospector(tiny_model_dir):
    """The tiny model loaded with `load_prospector` on CPU, in float32 (the precision the oracle tests compare in)."""
    from hf_nuggets import load_prospector

    return load_prospector(str(tiny_model_dir), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def prospector_cache_limits_restored():
    """The Space bounds the library's cache of loaded prospectors for the whole process; the test modules after a
    Space module get back the limits they had."""
    from hf_nuggets.scoring.prospector import prospector_cache_info, set_prospector_cache_limits

    before = prospector_cache_info()
    yield
    set_prospector_cache_limits(max_models=before["max_models"], max_bytes=before["max_bytes"])


@pytest.fixture
def tasks():
    """A small task set with and without inputs."""
    return [
        {"instruction": "Add 2 and 2.", "input": "", "output": "4"},
        {"instruction": "Name a colour.", "input": "", "output": "Red is a colour."},
        {"instruction": "Translate into French.", "input": "Where is the station?", "output": "Où est la gare ?"},
        {"instruction": "Write a function.", "input": "It squares x.", "output": "def square(x):\n    return x * x"},
        {"instruction": "What boils at 100 degrees?", "input": "", "output": "Water boils at 100 degrees Celsius."},
    ]


@pytest.fixture
def candidates():
    """Candidates with and without inputs, one with an empty answer and one duplicate."""
    return [
        {"instruction": "Name a primary colour.", "input": "", "output": "Red is a primary colour."},
        {"instruction": "Add 2 and 3.", "input": "Use integers.", "output": "2 + 3 = 5."},
        {"instruction": "Describe a fox.", "input": "", "output": "The quick brown fox jumps over the lazy dog."},
        {"instruction": "Say nothing.", "input": "", "output": ""},
        {"instruction": "Name a primary colour.", "input": "", "output": "Red is a primary colour."},
        {"instruction": "  Translate into French.  ", "input": " Hello ", "output": " Bonjour "},
    ]


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: the CI machine has 2 shared cores, and results must not depend on threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def import_alpaca_eval(module: str = "alpaca_eval.metrics"):
    """Import a module of `alpaca_eval` (the win-rate oracle), skipping the test when it is not installed.

    `alpaca_eval` imports `pkg_resources`, which setuptools 81 and later no longer ship. A stand-in with the two
    functions it calls is put in `sys.modules` for the import only: left there, it breaks pytest's
    `monkeypatch.syspath_prepend`, which calls `pkg_resources.fixup_namespace_packages` whenever `pkg_resources`
    is loaded.
    """
    import importlib.metadata
    import importlib.util
    import sys
    import types

    shim = None
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        from packaging.version import parse

        shim = types.ModuleType("pkg_resources")
        shim.parse_version = parse
        shim.get_distribution = lambda name: types.SimpleNamespace(version=importlib.metadata.version(name))
        sys.modules["pkg_resources"] = shim
    try:
        return pytest.importorskip(module, reason="the oracle: pip install alpaca-eval")
    finally:
        if shim is not None and sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]
