"""Pairwise judges that turn (instruction, baseline output, model output) into AlpacaEval preferences.

A judge reads the probabilities of two verdict tokens after a comparison prompt, as AlpacaEval's weighted judges
do: `P(output 2 is better) = p(id_2) / (p(id_1) + p(id_2))`; the preference is one plus the probability that the
model's output wins. Verdicts are cached on disk: a rerun pays only for new pairs, even after a failed run.
"""

from __future__ import annotations

import hashlib
import http.client
import inspect
import json
import logging
import math
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..utils.files import atomic_write_text
from ..utils.secrets import redact, redact_url, url_credentials

logger = logging.getLogger(__name__)

#: The judge's instructions (our wording; the format follows AlpacaEval's classification judges).
DEFAULT_SYSTEM_PROMPT = (
    "You are an impartial judge of the answers of AI assistants. You read an instruction and two answers to it, "
    "and you name the answer that a careful human would prefer: correct, helpful, relevant and clear."
)
#: The comparison prompt: `{instruction}`, `{output_1}`, `{output_2}`, and the identifiers `{id_1}`, `{id_2}`.
DEFAULT_TEMPLATE = (
    "## Instruction\n\n{instruction}\n\n"
    "## Answer {id_1}\n\n{output_1}\n\n"
    "## Answer {id_2}\n\n{output_2}\n\n"
    "## Verdict\n\n"
    "Which answer is better? Reply with the identifier of the better answer only, {id_1} or {id_2}, and nothing else."
)
ORDERS = ("both", "random", "fixed")
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass
class JudgeResult:
    """One AlpacaEval preference per pair (NaN where skipped), why a pair was skipped (`None` when judged), and per
    pair the probability that the model wins in each order judged (`model_second`, `model_first`)."""

    preferences: list[float]
    reasons: list[str | None]
    details: list[dict] = field(default_factory=list)

    @property
    def n_skipped(self) -> int:
        return sum(r is not None for r in self.reasons)


class VerdictCache:
    """A JSON file of verdicts keyed by a hash of the judge's settings and the pair, written atomically.

    New verdicts are merged into the file (with what other runs wrote meanwhile) every `flush_every` verdicts and
    on `flush()`; the file is replaced in one `os.replace`, so a crash never leaves it half-written.

    Args:
        path (`str` or `Path`): The JSON file.
        flush_every (`int`, *optional*, defaults to `16`): Write after this many new verdicts.
    """

    def __init__(self, path: str | os.PathLike, flush_every: int = 16):
        self.path = Path(path)
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = self._read()
        self._pending: dict[str, dict] = {}

    def _read(self) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            logger.warning("Ignoring the unreadable verdict cache %s (%s).", self.path, err)
            return {}

    @staticmethod
    def key(*parts: Any) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> dict | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, value: dict) -> None:
        with self._lock:
            self._entries[key] = value
            self._pending[key] = value
            due = len(self._pending) >= self.flush_every
        if due:
            self.flush()

    def flush(self) -> None:
        """Merge the new verdicts into the file, atomically."""
        with self._lock:
            if not self._pending:
                return
            merged = {**self._read(), **self._pending}
            atomic_write_text(self.path, json.dumps(merged, ensure_ascii=False), durable=True, mode=0o600)
            self._entries.update(merged)
            self._pending.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _default_cache_dir() -> Path:
    from ..scoring.prospector import cache_root

    return cache_root() / "verdicts"


#: A verdict on one ordered pair: P(output 2 is better) or None, the reason of a skip, and a short raw answer.
Verdict = tuple[float | None, str | None, str | None]
#: The reason of a skip when the judge's probability is NaN (NaN logits, both identifiers at logprob `-inf`).
NAN_VERDICT = "NaN verdict"


def _usable(p: Any) -> bool:
    """Whether `p` is a probability a verdict can be made of (not NaN, not missing)."""
    return isinstance(p, (int, float)) and not math.isnan(p)


class PairwiseJudge:
    """Base of the judges: orders, identical outputs, the verdict cache and the combination into preferences.

    Subclasses give `name`, `fingerprint()` (the settings that change a verdict) and `_score(items, on_result)`,
    which judges ordered pairs `(instruction, output_1, output_2)` and calls `on_result(index, verdict)` for each.
    A verdict without a probability, or with a NaN one, skips its pair (counted, with its reason) and is not cached.

    Args:
        orders (`str`, *optional*, defaults to `"both"`): `"both"` judges each pair twice, the model's output second
            then first, and averages (cancels position bias); `"random"` judges one order drawn per pair from a hash
            (AlpacaEval's choice, half the cost); `"fixed"` puts the baseline first (AlpacaEval's `output_1`).
        cache_dir (`str`, *optional*): Folder of the verdict cache; `$HF_NUGGETS_CACHE/verdicts` (or
            `$HF_HOME/hf_nuggets/verdicts`) when omitted.
        use_cache (`bool`, *optional*, defaults to `True`): Read and write the verdict cache.
        progress (`bool`, *optional*, defaults to `True`): Show a progress bar over the pairs to judge.
        seed (`int`, *optional*, defaults to `0`): Seed of the order drawn with `orders="random"`.
        verdict_tokens (`tuple[str, str]`, *optional*): The identifiers of the first and second answer.
        system_prompt (`str`, *optional*): The judge's instructions.
        template (`str`, *optional*): The comparison prompt (see `DEFAULT_TEMPLATE`).
    """

    name = "judge"

    def __init__(
        self,
        *,
        orders: str = "both",
        cache_dir: str | os.PathLike | None = None,
        use_cache: bool = True,
        progress: bool = True,
        seed: int = 0,
        verdict_tokens: tuple[str, str] = ("A", "B"),
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        template: str = DEFAULT_TEMPLATE,
    ):
        if orders not in ORDERS:
            raise ValueError(f"`orders` must be one of {ORDERS}, got {orders!r}.")
        if len(verdict_tokens) != 2 or verdict_tokens[0] == verdict_tokens[1]:
            raise ValueError(f"`verdict_tokens` must be two different strings, got {verdict_tokens!r}.")
        self.verdict_tokens, self.system_prompt, self.template = tuple(verdict_tokens), system_prompt, template
        self.orders, self.progress, self.seed = orders, progress, seed
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.use_cache = use_cache
        self._cache: VerdictCache | None = None

    def fingerprint(self) -> dict:
        """The settings that change a verdict (they key the cache; never a secret)."""
        return {
            "judge": self.name,
            "system": self.system_prompt,
            "template": self.template,
            "verdict_tokens": self.verdict_tokens,
        }

    def user_prompt(self, instruction: str, output_1: str, output_2: str) -> str:
        """The comparison prompt of an ordered pair."""
        id_1, id_2 = self.verdict_tokens
        return self.template.format(
            instruction=instruction.strip(), output_1=output_1.strip(), output_2=output_2.strip(), id_1=id_1, id_2=id_2
        )

    def _score(self, items: list[tuple[str, str, str]], on_result: Callable[[int, Verdict], None]) -> None:
        raise NotImplementedError

    @property
    def cache(self) -> VerdictCache | None:
        """The verdict cache of this judge's settings (`None` when caching is off)."""
        if not self.use_cache:
            return None
        if self._cache is None:
            digest = VerdictCache.key(self.fingerprint())[:16]
            self._cache = VerdictCache((self.cache_dir or _default_cache_dir()) / f"{self.name}-{digest}.json")
        return self._cache

    def judge_pairs(self, instructions: Sequence[str], outputs_1: Sequence[str], outputs_2: Sequence[str]) -> list:
        """Judge ordered pairs through the cache: one `Verdict` per `(instruction, output_1, output_2)`."""
        items = list(zip(instructions, outputs_1, outputs_2, strict=True))
        if not items:  # nothing to judge: the model is not even loaded (its fingerprint would load it)
            return []
        cache = self.cache
        fingerprint = self.fingerprint() if cache is not None else None
        keys = [VerdictCache.key(fingerprint, *item) if cache is not None else "" for item in items]
        verdicts: list[Verdict | None] = [None] * len(items)
        missing = []
        for i, key in enumerate(keys):
            hit = cache.get(key) if cache is not None else None
            if hit is not None and _usable(hit.get("p")):  # a NaN an older version cached is judged again
                verdicts[i] = (hit["p"], None, hit.get("raw"))
            else:
                missing.append(i)
        if cache is not None and len(missing) < len(items):
            logger.info("%d of %d verdicts read from the cache %s.", len(items) - len(missing), len(items), cache.path)
        if not missing:
            return verdicts
        from tqdm.auto import tqdm

        bar = tqdm(total=len(missing), desc=f"judging ({self.name})", disable=not self.progress)

        def on_result(j: int, verdict: Verdict) -> None:
            i = missing[j]
            if verdict[0] is not None and not _usable(verdict[0]):
                verdict = (None, NAN_VERDICT, verdict[2])
            verdicts[i] = verdict
            if cache is not None and verdict[0] is not None:
                cache.put(keys[i], {"p": verdict[0], "raw": verdict[2]})
            bar.update(1)

        try:
            self._score([items[i] for i in missing], on_result)
        finally:
            bar.close()
            if cache is not None:
                cache.flush()
        return verdicts

    def _model_second(self, instruction: str, prediction: str, reference: str) -> bool:
        if self.orders == "fixed":
            return True
        digest = hashlib.sha256(f"{self.seed}\0{instruction}\0{prediction}\0{reference}".encode()).digest()
        return digest[0] % 2 == 0

    def __call__(
        self, instructions: Sequence[str], predictions: Sequence[str], references: Sequence[str]
    ) -> JudgeResult:
        """Judge the model's outputs against the baseline's: one preference per pair in a `JudgeResult` (1.5 without
        asking when both outputs are the same, as AlpacaEval does; NaN with a reason when no usable verdict came).
        """
        n = len(instructions)
        if len(predictions) != n or len(references) != n:
            raise ValueError(
                f"`instructions`, `predictions` and `references` must have the same length, got {n}, "
                f"{len(predictions)} and {len(references)}."
            )
        tasks = []  # (pair index, model shown second?, instruction, output_1, output_2)
        for i, (ins, pred, ref) in enumerate(zip(instructions, predictions, references, strict=True)):
            if pred == ref:
                continue
            seconds = (True, False) if self.orders == "both" else (self._model_second(ins, pred, ref),)
            for second in seconds:
                tasks.append((i, second, ins, ref, pred) if second else (i, second, ins, pred, ref))
        verdicts = self.judge_pairs([t[2] for t in tasks], [t[3] for t in tasks], [t[4] for t in tasks])
        wins: list[dict] = [{} for _ in range(n)]
        reasons: list[str | None] = [None] * n
        for (i, second, *_), (p, reason, _) in zip(tasks, verdicts, strict=True):
            if p is None:
                reasons[i] = reasons[i] or reason or "no verdict"
            else:
                wins[i]["model_second" if second else "model_first"] = p if second else 1.0 - p
        preferences = []
        for i in range(n):
            if predictions[i] == references[i]:
                preferences.append(1.5)
            elif reasons[i] is not None:
                preferences.append(math.nan)
            else:
                preferences.append(1.0 + sum(wins[i].values()) / len(wins[i]))
        return JudgeResult(preferences=preferences, reasons=reasons, details=wins)


# ---------------------------------------------------------------------------------------------------- local
class LocalJudge(PairwiseJudge):
    """A pairwise judge run with a causal LM on this machine.

    The prompt (the tokenizer's chat template when it has one) ends where the model should name the better answer;
    the preference comes from the next-token probabilities of the two verdict tokens. Sequences are left-padded with
    explicit position ids, so a verdict does not depend on the batch it was run in.

    Args:
        model (`str` or `Prospector`, *optional*): What `load_prospector` loads (Hub id, folder, `.gguf` file), or a
            loaded `Prospector`; the embedded SmolLM2-135M-Instruct when omitted. Loaded on first use.
        batch_size (`int`, *optional*, defaults to `8`): Prompts per forward pass.
        max_output_tokens (`int`, *optional*, defaults to `512`): The instruction and each output are cut to this many
            tokens (counted and logged).
        device (`str`, *optional*): Device for a model loaded by name.
        **kwargs: Of `PairwiseJudge`: `orders` (defaults to `"both"`), `verdict_tokens` (defaults to `("A", "B")`,
            one token each), `system_prompt`, `template`, `cache_dir`, `use_cache`, `progress`, `seed`.

    Example:
        ```python
        >>> judge = LocalJudge(tiny_prospector, use_cache=False, progress=False)
        >>> result = judge(["Add 2 and 2."], ["4"], ["5"])
        >>> 1 <= result.preferences[0] <= 2
        True
        ```
    """

    name = "local"

    def __init__(
        self,
        model: Any = None,
        *,
        batch_size: int = 8,
        max_output_tokens: int = 512,
        device: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be at least 1, got {batch_size}.")
        if max_output_tokens < 1:
            raise ValueError(f"`max_output_tokens` must be at least 1, got {max_output_tokens}.")
        self.model, self.device = model, device
        self.batch_size, self.max_output_tokens = batch_size, max_output_tokens
        self._prospector = model if hasattr(model, "tokenizer") else None
        self.n_model_calls = 0
        self.n_truncated = 0
        if self._prospector is not None and self._prospector.source is None and self.use_cache:
            logger.info("The local judge's model was built in memory and has no recipe to key a cache: no cache.")
            self.use_cache = False

    def fingerprint(self) -> dict:
        """The judge's settings and its model: name, loading recipe, revision and a digest of the loaded weights.

        The weights digest (`hf_nuggets.run.checkpoint.weights_digest`: the names, shapes, dtypes and first and last
        256 values of every tensor) is read from the model in memory, so it keys the cache with the weights that
        give the verdicts, however they were loaded: retrained weights saved into the same folder, a moved Hub
        branch or a new `.gguf` get verdicts of their own. It loads the model if it is not loaded yet.
        """
        from ..run.checkpoint import weights_digest

        prospector = self.prospector
        model = {
            "name": prospector.name,
            "source": prospector.source,
            "revision": prospector.revision,
            "weights": weights_digest(prospector.model),
        }
        # "prompt": 2 since the instruction is cut to `max_output_tokens` too (verdicts cached before saw it whole)
        return {**super().fingerprint(), "model": model, "max_output_tokens": self.max_output_tokens, "prompt": 2}

    @property
    def prospector(self):
        """The loaded model and tokenizer (loads them on first use)."""
        if self._prospector is None:
            from ..scoring.prospector import load_prospector

            self._prospector = load_prospector(self.model, device=self.device)
        return self._prospector

    def _verdict_ids(self, tokenizer) -> list[int]:
        ids = [tokenizer.encode(token, add_special_tokens=False) for token in self.verdict_tokens]
        for token, encoded in zip(self.verdict_tokens, ids, strict=True):
            if len(encoded) != 1:
                raise ValueError(
                    f"`verdict_tokens` must each be one token of the judge's tokenizer; {token!r} is not."
                )
        return [encoded[0] for encoded in ids]

    def _cut(self, tokenizer, text: str) -> str:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) <= self.max_output_tokens:
            return text
        self.n_truncated += 1
        return tokenizer.decode(ids[: self.max_output_tokens]) + " [...]"

    def build_prompt(self, instruction: str, output_1: str, output_2: str) -> list[int]:
        """The token ids of the comparison prompt, ending where the verdict token comes.

        Each output, and the instruction too, is cut to `max_output_tokens` tokens (marked `[...]`), so the prompt
        holds at most three times that beside its frame, however long the texts: a text is never tokenized past
        64 characters a token it may keep.

        Args:
            instruction (`str`): The instruction.
            output_1 (`str`): The output shown first (identifier `verdict_tokens[0]`).
            output_2 (`str`): The output shown second (identifier `verdict_tokens[1]`).

        Returns:
            `list[int]`: The prompt's token ids.
        """
        tokenizer = self.prospector.tokenizer
        chars = (self.max_output_tokens + 1) * 64  # enough text to hold more tokens than are kept
        output_1, output_2 = (self._cut(tokenizer, text.strip()[:chars]) for text in (output_1, output_2))
        instruction = instruction.strip()
        ids = tokenizer.encode(instruction[:chars], add_special_tokens=False)
        if len(ids) > self.max_output_tokens or len(instruction) > chars:
            instruction = tokenizer.decode(ids[: self.max_output_tokens]) + " [...]"
        user = self.user_prompt(instruction, output_1, output_2)
        if getattr(tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return tokenizer.encode(text, add_special_tokens=False)
        ids = tokenizer.encode(f"{self.system_prompt}\n\n{user}\n\nBetter answer:\n", add_special_tokens=False)
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return ([start] if start is not None else []) + ids

    def _score(self, items: list[tuple[str, str, str]], on_result: Callable[[int, Verdict], None]) -> None:
        import torch

        from .generation import left_padded

        prospector = self.prospector
        model, tokenizer = prospector.model, prospector.tokenizer
        verdict_ids = self._verdict_ids(tokenizer)
        truncated_before = self.n_truncated
        prompts = [self.build_prompt(*item) for item in items]
        if self.n_truncated > truncated_before:
            cut = self.n_truncated - truncated_before
            logger.warning("The local judge cut %d output(s) to %d tokens.", cut, self.max_output_tokens)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        keep_last = "logits_to_keep" in inspect.signature(model.forward).parameters
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            ids, mask = left_padded([prompts[i] for i in batch], pad)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            inputs = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
            inputs = {name: tensor.to(prospector.device) for name, tensor in inputs.items()}
            with torch.inference_mode():
                out = model(**inputs, use_cache=False, **({"logits_to_keep": 1} if keep_last else {}))
            pair = out.logits[:, -1, verdict_ids].float().softmax(-1)[:, 1].cpu().tolist()
            self.n_model_calls += len(batch)
            for i, p in zip(batch, pair, strict=True):
                on_result(i, (float(p), None, None))


# --------------------------------------------------------------------------------------------------- openai
class JudgeRequestError(RuntimeError):
    """The endpoint refused a request, or kept failing after all retries."""


class _Stopped(Exception):
    """A request given up because the run was interrupted or failed (never raised out of the judge)."""


class _RateLimiter:
    def __init__(self, per_minute: float | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def parse_chat_verdict(body: bytes | str, verdict_tokens: tuple[str, str] = ("m", "M")) -> Verdict:
    """Read a verdict from a chat-completions answer: logprob-weighted where it has logprobs, else from the text.

    Args:
        body (`bytes` or `str`): The JSON answer of the endpoint.
        verdict_tokens (`tuple[str, str]`, *optional*, defaults to `("m", "M")`): Identifiers of the first and
            second answer.

    Returns:
        `Verdict`: `(P(output 2 is better) or None, skip reason or None, the answer's text)`.

    Example:
        ```python
        >>> answer = {"choices": [{"message": {"content": "M"}, "logprobs": {"content": [{"token": "M",
        ...     "logprob": -0.25, "top_logprobs": [{"token": "M", "logprob": -0.25},
        ...     {"token": "m", "logprob": -1.5}]}]}}]}
        >>> p, reason, text = parse_chat_verdict(json.dumps(answer))
        >>> round(p, 4), reason, text
        (0.7773, None, 'M')
        >>> parse_chat_verdict("<html>Bad gateway</html>")
        (None, 'malformed response', '<html>Bad gateway</html>')
        ```
    """
    id_1, id_2 = verdict_tokens
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        choice = json.loads(raw)["choices"][0]
        content = ((choice.get("message") or {}).get("content") or "").strip()
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None, "malformed response", raw[:80]
    try:
        top = (choice.get("logprobs") or {}).get("content")[0].get("top_logprobs") or []
    except (TypeError, IndexError, AttributeError):
        top = []
    found: dict[str, float] = {}
    for entry in top if isinstance(top, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("logprob"), (int, float)):
            token = str(entry.get("token", "")).strip()
            if token in (id_1, id_2) and token not in found:
                found[token] = float(entry["logprob"])
    if found:
        gap = found.get(id_2, -math.inf) - found.get(id_1, -math.inf)  # log odds that answer 2 is better
        if math.isnan(gap):  # a NaN logprob, or both at -inf: the logprobs say nothing
            return None, NAN_VERDICT, content[:20]
        p = 1.0 / (1.0 + math.exp(-gap)) if gap >= 0 else math.exp(gap) / (1.0 + math.exp(gap))
        return p, None, content[:20]
    if content == id_1:
        return 0.0, None, content
    if content == id_2:
        return 1.0, None, content
    return None, "unparseable verdict", content[:80]


class OpenAIJudge(PairwiseJudge):
    """A pairwise judge asked through any OpenAI-compatible chat-completions endpoint (gpt-4o-mini by default).

    It asks for one token with `logprobs` and reads the logprob-weighted preference from the two identifiers among
    the top logprobs (AlpacaEval's weighted judge); an endpoint without logprobs gives a 0/1 verdict from the text.
    Requests run in `num_workers` threads under an optional rate limit; 429, 5xx and network errors are retried with
    exponential backoff (honouring `Retry-After`); other HTTP errors stop the run with a clear error. An answer that
    cannot be read (not JSON, no choices, no identifier) skips the pair, counted and reported, and is not cached.
    Ctrl-C, or a request that fails for good, cancels the requests not yet sent (at most the `num_workers` already
    sent are still answered) and caches every verdict that came back before the error is raised again.
    The key is read from the environment at each request and never stored, logged or cached; a key carried in
    `base_url` (`https://user:KEY@host/v1`, `?api_key=KEY`) is masked in logs, errors and `fingerprint()`.

    Args:
        model (`str`, *optional*, defaults to `"gpt-4o-mini"`): The judge model.
        base_url (`str`, *optional*): The endpoint, up to `/v1`; `$OPENAI_BASE_URL` or OpenAI's when omitted.
        api_key_env (`str`, *optional*, defaults to `"OPENAI_API_KEY"`): The environment variable holding the key.
        temperature (`float`, *optional*, defaults to `1.0`): Sampling temperature (AlpacaEval's; logprobs are read).
        logprobs (`bool`, *optional*, defaults to `True`): Ask for the top logprobs.
        top_logprobs (`int`, *optional*, defaults to `5`): How many.
        max_retries (`int`, *optional*, defaults to `6`): Retries of one request on 429, 5xx or network errors.
        backoff (`float`, *optional*, defaults to `1.0`): First wait in seconds, doubled at each retry (with jitter).
        max_backoff (`float`, *optional*, defaults to `60.0`): Longest wait.
        timeout (`float`, *optional*, defaults to `60.0`): Seconds per request.
        requests_per_minute (`float`, *optional*): Rate limit over all workers.
        num_workers (`int`, *optional*, defaults to `4`): Concurrent requests.
        **kwargs: Of `PairwiseJudge`: `orders` (defaults to `"random"`), `verdict_tokens` (defaults to AlpacaEval's
            `("m", "M")`), `system_prompt`, `template`, `cache_dir`, `use_cache`, `progress`, `seed`.

    Raises:
        `ValueError`: When the environment variable `api_key_env` is not set.
    """

    name = "openai"

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 1.0,
        logprobs: bool = True,
        top_logprobs: int = 5,
        max_retries: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float = 60.0,
        requests_per_minute: float | None = None,
        num_workers: int = 4,
        **kwargs: Any,
    ):
        kwargs.setdefault("orders", "random")
        kwargs.setdefault("verdict_tokens", ("m", "M"))
        super().__init__(**kwargs)
        if not os.environ.get(api_key_env):
            raise ValueError(
                f"The `openai` judge reads its key from the environment variable `{api_key_env}`, which is not set. "
                f"Set it (`export {api_key_env}=...`), or name another variable with `api_key_env`; for an endpoint "
                "that needs no key, set it to any non-empty value."
            )
        if num_workers < 1:
            raise ValueError(f"`num_workers` must be at least 1, got {num_workers}.")
        if max_retries < 0:
            raise ValueError(f"`max_retries` must be at least 0, got {max_retries}.")
        self.model, self.api_key_env = model, api_key_env
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.temperature, self.logprobs, self.top_logprobs = temperature, logprobs, top_logprobs
        self.max_retries, self.backoff, self.max_backoff, self.timeout = max_retries, backoff, max_backoff, timeout
        self.num_workers = num_workers
        self._limiter = _RateLimiter(requests_per_minute)
        self.n_requests = 0
        self._count_lock = threading.Lock()

    def fingerprint(self) -> dict:
        settings = {"base_url": redact_url(self.base_url), "model": self.model, "temperature": self.temperature}
        top = self.top_logprobs if self.logprobs else None  # not sent without logprobs
        return {**super().fingerprint(), **settings, "logprobs": self.logprobs, "top_logprobs": top}

    def _redact(self, text: str) -> str:
        return redact(text, [os.environ.get(self.api_key_env), *url_credentials(self.base_url)])

    def _post(self, body: dict, stop: threading.Event | None = None) -> bytes:
        """POST to `/chat/completions` with retries; returns the body of a 200 answer.

        Once `stop` is set (the run was interrupted or failed), no request or retry is sent any more.
        """
        url = f"{self.base_url}/chat/completions"
        shown = redact_url(url)  # what messages and logs name
        data = json.dumps(body).encode()
        last = ""
        for attempt in range(self.max_retries + 1):
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ValueError(f"The environment variable `{self.api_key_env}` holding the endpoint key is not set.")
            self._limiter.wait()
            if stop is not None and stop.is_set():
                raise _Stopped
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
            request = urllib.request.Request(url, data=data, method="POST", headers=headers)
            wait = None
            try:
                with self._count_lock:
                    self.n_requests += 1
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.read()
            except urllib.error.HTTPError as err:
                detail = self._redact(err.read().decode("utf-8", "replace")[:300])
                if err.code not in RETRY_STATUS:
                    raise JudgeRequestError(f"{shown} answered HTTP {err.code}: {detail}") from None
                last = f"HTTP {err.code}: {detail}"
                retry_after = (err.headers.get("Retry-After") or "") if err.headers else ""
                wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
                last = self._redact(f"{type(err).__name__}: {getattr(err, 'reason', err)}")
            if attempt == self.max_retries:
                break
            if wait is None:
                wait = self.backoff * 2**attempt * (1 + random.random() / 4)
            wait = min(wait, self.max_backoff)
            logger.warning("%s failed (%s); retry %d/%d in %.2fs.", shown, last, attempt + 1, self.max_retries, wait)
            if stop is None:
                time.sleep(wait)
            elif stop.wait(wait):  # woken at once when the run stops
                raise _Stopped
        raise JudgeRequestError(f"{shown} kept failing after {self.max_retries} retries; last: {last}")

    def _ask(self, item: tuple[str, str, str], stop: threading.Event | None = None) -> Verdict:
        user = self.user_prompt(*item)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}],
            "max_tokens": 1,
            "temperature": self.temperature,
        }
        if self.logprobs:
            body.update(logprobs=True, top_logprobs=self.top_logprobs)
        return parse_chat_verdict(self._post(body, stop), self.verdict_tokens)

    def _score(self, items: list[tuple[str, str, str]], on_result: Callable[[int, Verdict], None]) -> None:
        """Ask for the verdicts in `num_workers` threads.

        On the first failed request, and on any exception in this thread (Ctrl-C included), the requests not yet
        sent are cancelled and no retry is sent any more: at most the `num_workers` requests already on the wire
        are still paid for. Their verdicts, and every other verdict that came back, are handed to `on_result` (so
        they are cached) before the error is raised again.
        """
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=self.num_workers)
        futures: dict[Future, int] = {}
        reported: set[Future] = set()
        error: BaseException | None = None
        try:
            for j, item in enumerate(items):
                futures[pool.submit(self._ask, item, stop)] = j
            for future in as_completed(futures):
                exc = None if future.cancelled() else future.exception()
                if exc is None and not future.cancelled():
                    on_result(futures[future], future.result())  # verdicts that arrive are kept, even after a failure
                    reported.add(future)
                elif exc is not None and error is None and not isinstance(exc, _Stopped):
                    error = exc
                    stop.set()
                    for other in futures:  # the workers skip them (and so `as_completed` sees them end)
                        other.cancel()
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)  # waits for the requests on the wire only
            for future, j in futures.items():
                if future not in reported and not future.cancelled() and future.exception() is None:
                    on_result(j, future.result())
            raise
        finally:
            pool.shutdown(wait=True)
        if error is not None:
            raise error


def get_judge(name: str, **kwargs: Any) -> PairwiseJudge:
    """Build a judge by name.

    Args:
        name (`str`): `"local"` (`LocalJudge`) or `"openai"` (`OpenAIJudge`).
        **kwargs: The judge's arguments.

    Returns:
        `PairwiseJudge`: The judge.
    """
    judges = {"local": LocalJudge, "openai": OpenAIJudge}
    if name not in judges:
        raise ValueError(f"`judge` must be 'precomputed', 'local' or 'openai', got {name!r}.")
    return judges[name](**kwargs)


def judge_options(
    name: str,
    *,
    model: str | None = None,
    batch_size: int = 8,
    device: str | None = None,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    num_workers: int = 4,
    requests_per_minute: float | None = None,
) -> dict[str, Any]:
    """The arguments of `get_judge(name, ...)` that belong to that judge, from the settings a command takes for both.

    `local` takes the model (what `load_prospector` loads; the embedded one when `None`), its batch size and device;
    `openai` the endpoint, its key's variable, the request workers and rate, and the model when one is given.

    Example:

    ```python
    >>> judge_options("local", model=None, batch_size=4, base_url="http://x")
    {'model': None, 'batch_size': 4, 'device': None}
    ```
    """
    if name == "local":
        return {"model": model, "batch_size": batch_size, "device": device}
    options = {
        "base_url": base_url,
        "api_key_env": api_key_env,
        "num_workers": num_workers,
        "requests_per_minute": requests_per_minute,
    }
    if model is not None:
        options["model"] = model
    return options
