"""The judges: verdict cache, local causal-LM judge, and the OpenAI-compatible judge against a local HTTP endpoint."""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hf_nuggets.evaluation.judges import (
    JudgeRequestError,
    LocalJudge,
    OpenAIJudge,
    PairwiseJudge,
    VerdictCache,
    parse_chat_verdict,
)
from hf_nuggets.evaluation.winrate import alpaca_eval_winrate

SECRET = "sk-test-7f3a9c1e5b2d4f60"
URL_KEY = "sk-in-the-url-5e1d0c9b"
WRONG = "WRONG"
PAIRS = {
    "instructions": ["What is the capital of France?", "What is 2 + 2?", "Name a yellow fruit.", "Say hello."],
    "predictions": ["Paris.", "4", "A banana.", "Hello!"],
    "references": [f"{WRONG} Berlin.", f"{WRONG} 7", f"{WRONG} A carburetor.", "Hello!"],
}


# ------------------------------------------------------------------------------------------------ the endpoint
class Endpoint:
    """A chat-completions server on 127.0.0.1 whose judge prefers the answer without "WRONG" in it.

    `script` lists, per request in order, what to answer: `"ok"`, `"text"` (no logprobs), `"garbage"`, `"-inf"`
    (both identifiers at logprob `-inf`), or an HTTP status; after the script, `default`. Each answer waits `delay`
    seconds; `answered` lists the user prompts of the requests answered in full, and `after_answer(n)` is called
    (in the server's thread) after the n-th one.
    """

    LOGPROB_BEST, LOGPROB_OTHER = -0.1, -2.4

    def __init__(self, default="ok", script=(), delay=0.0):
        self.default, self.script, self.requests = default, list(script), []
        self.delay, self.answered, self.after_answer = delay, [], None
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with endpoint.lock:
                    endpoint.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                    action = endpoint.script.pop(0) if endpoint.script else endpoint.default
                if endpoint.delay:
                    time.sleep(endpoint.delay)
                if self.headers.get("Authorization") != f"Bearer {SECRET}":
                    return self.reply(401, {"error": {"message": "invalid api key"}})
                if isinstance(action, int):
                    return self.reply(action, {"error": {"message": f"status {action}"}}, {"Retry-After": "0"})
                if action == "garbage":
                    return self.reply(200, b"<html>upstream exploded</html>")
                user = body["messages"][-1]["content"]
                first = user.split("## Answer m")[1].split("## Answer M")[0]
                best = "M" if WRONG in first else "m"
                other = "m" if best == "M" else "M"
                choice = {"index": 0, "message": {"role": "assistant", "content": best}, "finish_reason": "length"}
                if action in ("ok", "-inf") and body.get("logprobs"):
                    best_lp, other_lp = endpoint.LOGPROB_BEST, endpoint.LOGPROB_OTHER
                    if action == "-inf":
                        best_lp = other_lp = -math.inf  # sent as `-Infinity`, which Python's json reads
                    top = [{"token": best, "logprob": best_lp}, {"token": other, "logprob": other_lp}]
                    choice["logprobs"] = {"content": [{"token": best, "logprob": best_lp, "top_logprobs": top}]}
                self.reply(200, {"id": "x", "object": "chat.completion", "choices": [choice]})
                with endpoint.lock:
                    endpoint.answered.append(user)
                    answered = len(endpoint.answered)
                if endpoint.after_answer is not None:
                    endpoint.after_answer(answered)

            def reply(self, status, payload, headers=None):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    @property
    def p_good(self) -> float:
        """The probability that the good answer wins, from the logprobs the endpoint sends."""
        return 1 / (1 + math.exp(self.LOGPROB_OTHER - self.LOGPROB_BEST))


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.close()


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("HF_NUGGETS_TEST_KEY", SECRET)
    return "HF_NUGGETS_TEST_KEY"


def _openai(endpoint, key, tmp_path, **kwargs):
    settings = {
        "base_url": endpoint.url,
        "api_key_env": key,
        "cache_dir": tmp_path / "cache",
        "progress": False,
        "backoff": 0.01,
        "max_retries": 3,
        "num_workers": 2,
    }
    return OpenAIJudge(**{**settings, **kwargs})


# ------------------------------------------------------------------------------------------------------ cache
def test_cache_writes_atomically_and_merges(tmp_path):
    """Two caches on one file merge their verdicts; the file is whole JSON and no temporary file is left."""
    first, second = VerdictCache(tmp_path / "v.json"), VerdictCache(tmp_path / "v.json")
    first.put("a", {"p": 0.25})
    second.put("b", {"p": 0.75})
    first.flush()
    second.flush()
    assert json.loads((tmp_path / "v.json").read_text()) == {"a": {"p": 0.25}, "b": {"p": 0.75}}
    assert [p.name for p in tmp_path.iterdir()] == ["v.json"]


def test_cache_ignores_an_unreadable_file(tmp_path, caplog):
    """A corrupt cache file is reported and ignored, not fatal."""
    (tmp_path / "v.json").write_text("{not json")
    assert len(VerdictCache(tmp_path / "v.json")) == 0 and "unreadable verdict cache" in caplog.text


class ScriptedJudge(PairwiseJudge):
    """A judge whose verdict on `(instruction, output_1, output_2)` is `verdicts[instruction]`; counts its calls."""

    name = "scripted"

    def __init__(self, verdicts, **kwargs):
        super().__init__(orders="fixed", progress=False, **kwargs)
        self.verdicts, self.n_calls = verdicts, 0

    def _score(self, items, on_result):
        for j, (instruction, _, _) in enumerate(items):
            self.n_calls += 1
            on_result(j, (self.verdicts[instruction], None, None))


def test_nan_verdicts_are_skipped_and_never_cached(tmp_path, caplog):
    """A NaN verdict is a counted skip with a reason (like a garbage answer), not cached, and asked again later;
    a NaN already in a cache file (written by an older version) is not served."""
    verdicts = {"Q1?": math.nan, "Q2?": 0.75}
    args = (list(verdicts), ["good 1", "good 2"], ["base 1", "base 2"])
    judge = ScriptedJudge(verdicts, cache_dir=tmp_path)
    out = alpaca_eval_winrate(*args[1:], args[0], judge=judge, length_controlled=False)
    result = judge(*args)
    assert (result.n_skipped, result.reasons) == (1, ["NaN verdict", None])
    assert math.isnan(result.preferences[0]) and result.preferences[1] == 1.75
    assert out["n_skipped"] == 1 and "Skipped 1 of 2 pairs: {'NaN verdict': 1}" in caplog.text
    cached = json.loads(judge.cache.path.read_text())
    assert [entry["p"] for entry in cached.values()] == [0.75]  # the NaN was not written
    again = ScriptedJudge({**verdicts, "Q1?": 0.25}, cache_dir=tmp_path)
    assert again(*args).preferences == [1.25, 1.75] and again.n_calls == 1  # only the skipped pair is judged
    stale = ScriptedJudge({**verdicts, "Q2?": 0.5}, cache_dir=tmp_path / "stale")
    stale.cache.put(VerdictCache.key(stale.fingerprint(), "Q2?", "base 2", "good 2"), {"p": math.nan})
    stale.cache.flush()
    assert stale(*args).preferences[1] == 1.5 and stale.n_calls == 2  # the stale NaN is judged again


# ------------------------------------------------------------------------------------------------------ local
def test_local_judge_swapping_sides_mirrors_the_preference(tiny_prospector, tmp_path):
    """With both orders, judging (a, b) and (b, a) gives preferences that sum to 3: no position bias is left."""
    judge = LocalJudge(tiny_prospector, cache_dir=tmp_path, progress=False)
    forward = judge(PAIRS["instructions"][:3], PAIRS["predictions"][:3], PAIRS["references"][:3])
    backward = judge(PAIRS["instructions"][:3], PAIRS["references"][:3], PAIRS["predictions"][:3])
    assert all(1 <= p <= 2 for p in forward.preferences)
    assert [a + b for a, b in zip(forward.preferences, backward.preferences, strict=True)] == pytest.approx([3] * 3)


def test_local_judge_does_not_depend_on_the_batch(tiny_prospector):
    """Left padding with explicit positions: a verdict is the same alone or in a batch."""
    batched = LocalJudge(tiny_prospector, batch_size=4, use_cache=False, progress=False)
    single = LocalJudge(tiny_prospector, batch_size=1, use_cache=False, progress=False)
    args = (PAIRS["instructions"][:3], PAIRS["predictions"][:3], PAIRS["references"][:3])
    assert batched(*args).preferences == pytest.approx(single(*args).preferences, abs=1e-5)


def test_local_judge_identical_outputs_are_draws_without_a_call(tiny_prospector):
    """Identical outputs get 1.5 without running the model, as in AlpacaEval."""
    judge = LocalJudge(tiny_prospector, use_cache=False, progress=False)
    assert judge(["Say hi."], ["Hi!"], ["Hi!"]).preferences == [1.5] and judge.n_model_calls == 0


def test_local_judge_with_only_identical_outputs_never_loads_its_model(tmp_path):
    """Only draws to give: the model named is never loaded, not even to key the cache."""
    judge = LocalJudge(str(tmp_path / "no-such-model"), cache_dir=tmp_path, progress=False)
    assert judge(["Say hi."], ["Hi!"], ["Hi!"]).preferences == [1.5] and judge._prospector is None


def test_local_judge_rerun_reads_the_cache(tiny_prospector, tmp_path):
    """A second run with the same settings reads every verdict from the disk cache and runs nothing."""
    args = (PAIRS["instructions"], PAIRS["predictions"], PAIRS["references"])
    first = LocalJudge(tiny_prospector, cache_dir=tmp_path, progress=False)
    expected = first(*args).preferences
    again = LocalJudge(tiny_prospector, cache_dir=tmp_path, progress=False)
    assert again(*args).preferences == expected and first.n_model_calls == 6 and again.n_model_calls == 0


def test_local_judge_retrained_weights_are_judged_again(tiny_model_dir, tmp_path, monkeypatch):
    """Weights retrained into the same folder get verdicts of their own, not the old weights' cached ones."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    from hf_nuggets.scoring import prospector as prospectors

    folder = tmp_path / "judge-model"
    shutil.copytree(tiny_model_dir, folder)
    args = (PAIRS["instructions"][:3], PAIRS["predictions"][:3], PAIRS["references"][:3])
    settings = {"device": "cpu", "cache_dir": tmp_path / "cache", "progress": False}
    monkeypatch.setattr(prospectors, "_LOADED", {})  # a fresh process: nothing loaded yet
    first = LocalJudge(str(folder), **settings)
    before = first(*args).preferences
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():  # "retraining": new weights, same folder, same file names and shapes
        for param in model.parameters():
            param.mul_(-1.5)
    model.save_pretrained(folder)
    monkeypatch.setattr(prospectors, "_LOADED", {})  # another fresh process
    second = LocalJudge(str(folder), **settings)
    after = second(*args).preferences
    assert first.n_model_calls == 6 and second.n_model_calls == 6, "the retrained model was served old verdicts"
    assert after != pytest.approx(before)
    monkeypatch.setattr(prospectors, "_LOADED", {})
    third = LocalJudge(str(folder), **settings)
    assert third(*args).preferences == after and third.n_model_calls == 0  # unchanged weights: served by the cache


def test_local_judge_revision_keys_the_cache(tiny_prospector, tmp_path):
    """Two commits of a Hub model loaded with the same arguments do not share verdicts: the revision is keyed."""
    import copy

    from hf_nuggets.scoring.prospector import Prospector

    judges = []
    for commit in ("a" * 40, "b" * 40):
        model = copy.deepcopy(tiny_prospector.model)
        model.config._commit_hash = commit
        prospector = Prospector(model, tiny_prospector.tokenizer, tiny_prospector.name, dict(tiny_prospector.source))
        judges.append(LocalJudge(prospector, cache_dir=tmp_path, progress=False))
    assert judges[0].fingerprint() != judges[1].fingerprint()
    assert judges[0].cache.path != judges[1].cache.path


def test_local_judge_truncates_long_outputs(tiny_prospector, caplog):
    """Outputs longer than `max_output_tokens` are cut, counted and logged."""
    judge = LocalJudge(tiny_prospector, max_output_tokens=4, use_cache=False, progress=False)
    judge(["Say hi."], ["Hello there, how are you doing today?"], ["Hi"])
    assert judge.n_truncated == 2 and "cut 2 output(s) to 4 tokens" in caplog.text


def test_local_judge_rejects_multi_token_verdicts(tiny_prospector):
    """A verdict identifier that is not one token is an error naming it."""
    judge = LocalJudge(tiny_prospector, verdict_tokens=("First", "Second"), use_cache=False, progress=False)
    with pytest.raises(ValueError, match="`verdict_tokens` must each be one token.*'First' is not"):
        judge(["Say hi."], ["Hi"], ["Hello"])


def test_local_judge_rejects_unknown_orders(tiny_prospector):
    """An unknown `orders` is an error listing the choices."""
    with pytest.raises(ValueError, match=r"`orders` must be one of \('both', 'random', 'fixed'\), got 'twice'"):
        LocalJudge(tiny_prospector, orders="twice")


@pytest.mark.slow
def test_local_judge_end_to_end_with_the_embedded_model(tmp_path):
    """The embedded SmolLM2 judges plainly wrong answers in both orders; position bias cancels; the cache serves."""
    from hf_nuggets import load_prospector

    prospector = load_prospector(device="cpu")
    judge = LocalJudge(prospector, cache_dir=tmp_path, progress=False)
    args = (PAIRS["instructions"], PAIRS["predictions"], PAIRS["references"])
    result = judge(*args)
    assert judge.n_model_calls == 6 and result.preferences[3] == 1.5  # 3 pairs x 2 orders; identical pair: draw
    for detail, preference in zip(result.details[:3], result.preferences[:3], strict=True):
        # both orders ran, and the preference is their mean: whatever bias one order has, the other mirrors it
        assert set(detail) == {"model_second", "model_first"}
        assert detail["model_first"] - detail["model_second"] > 0.5  # SmolLM2 favours answer A whatever it says
        assert preference == pytest.approx(1 + (detail["model_second"] + detail["model_first"]) / 2)
    swapped = judge(PAIRS["instructions"], PAIRS["references"], PAIRS["predictions"])
    assert judge.n_model_calls == 6  # the same prompts, served by the cache
    assert [a + b for a, b in zip(result.preferences, swapped.preferences, strict=True)] == pytest.approx([3] * 4)
    rerun = LocalJudge(load_prospector(device="cpu"), cache_dir=tmp_path, progress=False)
    assert rerun(*args).preferences == result.preferences and rerun.n_model_calls == 0


# ----------------------------------------------------------------------------------------------------- openai
def test_parse_reads_logprobs_and_text():
    """Logprobs give a weighted verdict; without them the text gives 0 or 1; garbage is a counted skip."""
    top = [{"token": "m", "logprob": -0.5}, {"token": "x", "logprob": -1}]
    with_logprobs = {"choices": [{"message": {"content": "m"}, "logprobs": {"content": [{"top_logprobs": top}]}}]}
    assert parse_chat_verdict(json.dumps(with_logprobs))[0] == 0.0  # only `m` among the top logprobs
    assert parse_chat_verdict(json.dumps({"choices": [{"message": {"content": "M"}}]}))[:2] == (1.0, None)
    assert parse_chat_verdict(json.dumps({"choices": [{"message": {"content": "Both"}}]}))[1] == "unparseable verdict"
    assert parse_chat_verdict(b'{"choices": []}')[1] == "malformed response"


def test_openai_judge_reads_logprob_weighted_preferences(endpoint, key, tmp_path):
    """The preference is the logprob-weighted probability that the model wins, whichever side it was shown on."""
    judge = _openai(endpoint, key, tmp_path, orders="both")
    result = judge(PAIRS["instructions"], PAIRS["predictions"], PAIRS["references"])
    assert result.preferences == pytest.approx([1 + endpoint.p_good] * 3 + [1.5], abs=1e-12)
    assert len(endpoint.requests) == 6 and all(r["body"]["logprobs"] for r in endpoint.requests)
    assert endpoint.requests[0]["body"]["max_tokens"] == 1 and endpoint.requests[0]["body"]["model"] == "gpt-4o-mini"


def test_openai_judge_retries_429_and_5xx(key, tmp_path):
    """429 and 503 answers are retried with backoff until the verdict comes."""
    endpoint = Endpoint(script=[429, 503, 429])
    try:
        judge = _openai(endpoint, key, tmp_path, num_workers=1, orders="fixed")
        assert judge(["Say hello."], ["Hello!"], [f"{WRONG} Bye."]).preferences == pytest.approx([1 + endpoint.p_good])
        assert len(endpoint.requests) == 4 and judge.n_requests == 4
    finally:
        endpoint.close()


def test_openai_judge_gives_up_after_retries(key, tmp_path):
    """An endpoint that keeps failing is a clear error after `max_retries`."""
    endpoint = Endpoint(default=500)
    try:
        judge = _openai(endpoint, key, tmp_path, max_retries=2, orders="fixed")
        with pytest.raises(JudgeRequestError, match=r"kept failing after 2 retries; last: HTTP 500"):
            judge(["Say hello."], ["Hello!"], ["Bye."])
        assert len(endpoint.requests) == 3
    finally:
        endpoint.close()


def test_openai_judge_reads_text_without_logprobs(key, tmp_path):
    """An endpoint that returns no logprobs gives 0/1 verdicts from the text."""
    endpoint = Endpoint(default="text")
    try:
        judge = _openai(endpoint, key, tmp_path, orders="both")
        assert judge(PAIRS["instructions"][:2], PAIRS["predictions"][:2], PAIRS["references"][:2]).preferences == [
            2,
            2,
        ]
    finally:
        endpoint.close()


def test_openai_garbage_is_a_counted_skip_not_cached(key, tmp_path, caplog):
    """Answers that are not chat completions skip their pairs, counted in the metric, and are not cached."""
    endpoint = Endpoint(script=["garbage"], default="ok")
    try:
        judge = _openai(endpoint, key, tmp_path, num_workers=1, orders="fixed")
        out = alpaca_eval_winrate(
            PAIRS["predictions"][:3],
            PAIRS["references"][:3],
            PAIRS["instructions"][:3],
            judge=judge,
            length_controlled=False,
        )
        assert (out["n_skipped"], out["n_total"]) == (1, 2) and "malformed response" in caplog.text
        again = _openai(endpoint, key, tmp_path, num_workers=1, orders="fixed")
        again(PAIRS["instructions"][:3], PAIRS["predictions"][:3], PAIRS["references"][:3])
        assert again.n_requests == 1  # only the skipped pair is asked again
    finally:
        endpoint.close()


def test_openai_minus_inf_logprobs_are_a_counted_skip_not_cached(key, tmp_path, caplog):
    """Both identifiers at logprob `-inf` give no verdict (NaN): a counted skip, not cached, asked again later."""
    endpoint = Endpoint(script=["-inf"], default="ok")
    try:
        judge = _openai(endpoint, key, tmp_path, num_workers=1, orders="fixed")
        result = judge(PAIRS["instructions"][:2], PAIRS["predictions"][:2], PAIRS["references"][:2])
        assert result.n_skipped == 1 and result.reasons[0] == "NaN verdict" and math.isnan(result.preferences[0])
        assert len(json.loads(judge.cache.path.read_text())) == 1
        again = _openai(endpoint, key, tmp_path, num_workers=1, orders="fixed")
        again(PAIRS["instructions"][:2], PAIRS["predictions"][:2], PAIRS["references"][:2])
        assert again.n_requests == 1  # only the skipped pair is asked again
    finally:
        endpoint.close()


def test_openai_top_logprobs_keys_the_cache(endpoint, key, tmp_path):
    """Verdicts read from 5 top logprobs are not served to a judge that reads 1: `top_logprobs` keys the cache."""
    args = (PAIRS["instructions"][:2], PAIRS["predictions"][:2], PAIRS["references"][:2])
    _openai(endpoint, key, tmp_path, orders="fixed", top_logprobs=5)(*args)
    narrow = _openai(endpoint, key, tmp_path, orders="fixed", top_logprobs=1)
    narrow(*args)
    assert narrow.n_requests == 2 and endpoint.requests[-1]["body"]["top_logprobs"] == 1
    same = _openai(endpoint, key, tmp_path, orders="fixed", top_logprobs=1)
    same(*args)
    assert same.n_requests == 0


def test_openai_judge_needs_a_key(monkeypatch):
    """A missing key is an error that names the environment variable."""
    monkeypatch.delenv("HF_NUGGETS_MISSING_KEY", raising=False)
    with pytest.raises(ValueError, match="environment variable `HF_NUGGETS_MISSING_KEY`, which is not set"):
        OpenAIJudge(api_key_env="HF_NUGGETS_MISSING_KEY")


def test_failed_run_keeps_paid_verdicts(key, tmp_path):
    """When the endpoint starts refusing midway, the verdicts already paid for stay in the cache for the rerun."""
    endpoint = Endpoint(script=["ok", "ok", 403], default=403)
    instructions = [f"Question {i}?" for i in range(6)]
    predictions, references = [f"Answer {i}." for i in range(6)], [f"{WRONG} {i}." for i in range(6)]
    try:
        judge = _openai(endpoint, key, tmp_path, num_workers=1, orders="fixed")
        with pytest.raises(JudgeRequestError, match="answered HTTP 403"):
            judge(instructions, predictions, references)
        endpoint.default = "ok"
        rerun = _openai(endpoint, key, tmp_path, num_workers=1, orders="fixed")
        assert rerun(instructions, predictions, references).preferences == pytest.approx([1 + endpoint.p_good] * 6)
        assert rerun.n_requests == 4  # the 2 verdicts of the failed run were not paid twice
    finally:
        endpoint.close()


def test_ctrl_c_stops_paying_and_caches_what_was_paid(key, tmp_path):
    """Ctrl-C while judging sends at most `num_workers` more requests, and every verdict answered is in the cache.

    The probe of the issue: 40 pairs, 4 workers, an endpoint that takes 0.1 s per answer, and SIGINT-like
    interruption of the main thread (`KeyboardInterrupt`, raised by a signal handler) once 6 verdicts came back.
    """
    n, workers = 40, 4
    endpoint = Endpoint(delay=0.1)
    sent_at_interrupt = []

    def interrupt(signum, frame):
        sent_at_interrupt.append(len(endpoint.requests))
        raise KeyboardInterrupt

    main = threading.main_thread().ident
    endpoint.after_answer = lambda answered: answered == 6 and signal.pthread_kill(main, signal.SIGUSR1)
    instructions = [f"Question {i}?" for i in range(n)]
    predictions, references = [f"Answer {i}." for i in range(n)], [f"{WRONG} {i}." for i in range(n)]
    judge = _openai(endpoint, key, tmp_path, num_workers=workers, orders="fixed")
    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            judge(instructions, predictions, references)
        time.sleep(3 * endpoint.delay)  # a worker left running would send more meanwhile
    finally:
        signal.signal(signal.SIGUSR1, previous)
        endpoint.close()
    assert len(sent_at_interrupt) == 1
    sent_after = len(endpoint.requests) - sent_at_interrupt[0]
    assert sent_after <= workers, f"{sent_after} requests sent after Ctrl-C (at most {workers} may be)"
    fingerprint = judge.fingerprint()
    key_of = {
        judge.user_prompt(*item): VerdictCache.key(fingerprint, *item)
        for item in zip(instructions, references, predictions, strict=True)
    }
    cached = json.loads(judge.cache.path.read_text())
    lost = [user for user in endpoint.answered if key_of[user] not in cached]
    assert not lost, f"{len(lost)} of {len(endpoint.answered)} answered verdicts are not in the cache"


def test_key_never_leaks(endpoint, key, tmp_path, caplog):
    """The key appears in no log line, error message, cache file or judge attribute."""
    caplog.set_level(logging.DEBUG)
    endpoint.script = [429, "ok", "garbage"]
    judge = _openai(endpoint, key, tmp_path, num_workers=1, orders="fixed")
    judge(PAIRS["instructions"][:3], PAIRS["predictions"][:3], PAIRS["references"][:3])
    endpoint.default = 400
    with pytest.raises(JudgeRequestError) as error:
        _openai(endpoint, key, tmp_path, use_cache=False)(["Q?"], ["A"], ["B"])
    cache_text = "".join(p.read_text() for p in (tmp_path / "cache").iterdir())
    assert endpoint.requests[0]["auth"] == f"Bearer {SECRET}"  # it was sent...
    assert SECRET not in caplog.text + str(error.value) + cache_text + repr(vars(judge))  # ...and nowhere else


def test_eval_cli_never_writes_a_key_carried_in_the_url(endpoint, key, tmp_path, caplog, capsys):
    """A key in `--base_url`'s query is masked in `metrics.json`, in the retry warning and in the printout."""
    from hf_nuggets.cli.evaluate import eval_main

    endpoint.script = [429]  # one retry, logged with the URL
    instructions = PAIRS["instructions"][:3]
    for name, outputs in (("baseline", PAIRS["references"][:3]), ("model", PAIRS["predictions"][:3])):
        rows = [{"instruction": i, "output": o, "generator": name} for i, o in zip(instructions, outputs, strict=True)]
        (tmp_path / f"{name}.json").write_text(json.dumps(rows))
    base_url = f"{endpoint.url}?api_key={URL_KEY}"
    argv = ["--baseline", str(tmp_path / "baseline.json"), "--model_outputs", str(tmp_path / "model.json")]
    argv += ["--judge", "openai", "--base_url", base_url, "--api_key_env", key, "--num_workers", "1"]
    argv += ["--cache_dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert eval_main(argv) == 0
    written = (tmp_path / "out" / "metrics.json").read_text()
    assert json.loads(written)["judge_settings"]["base_url"] == f"{endpoint.url}?api_key=***"
    assert "retry 1/6" in caplog.text
    printed = capsys.readouterr()
    cache_text = "".join(p.read_text() for p in (tmp_path / "cache").iterdir())
    assert URL_KEY not in written + caplog.text + printed.out + printed.err + cache_text


@pytest.mark.parametrize("netloc", [f"user:{URL_KEY}@127.0.0.1:9", f"user:{URL_KEY}@127.0.0.1"])
def test_judge_errors_never_show_a_key_carried_in_the_url(key, netloc, caplog):
    """A key in the URL's user part is masked in the retry warnings and in the error, whatever the error."""
    judge = OpenAIJudge(
        base_url=f"http://{netloc}/v1", api_key_env=key, use_cache=False, progress=False, max_retries=1, backoff=0.01
    )
    with pytest.raises(JudgeRequestError) as error:
        judge(["Q?"], ["A"], ["B"])
    assert URL_KEY not in caplog.text + str(error.value) + json.dumps(judge.fingerprint())
    assert "http://***@127.0.0.1" in str(error.value)


def test_openai_rate_limit_spaces_requests(endpoint, key, tmp_path):
    """`requests_per_minute` spaces the requests of all workers."""
    import time

    judge = _openai(endpoint, key, tmp_path, requests_per_minute=600, num_workers=3, orders="fixed", use_cache=False)
    started = time.monotonic()
    judge([f"Q{i}" for i in range(5)], [f"A{i}" for i in range(5)], [f"B{i}" for i in range(5)])
    assert time.monotonic() - started >= 0.4  # 5 requests, 0.1 s apart


def test_metric_runs_the_openai_judge(endpoint, key, tmp_path):
    """`evaluate.load(...).compute(judge="openai")` judges through the endpoint and returns AlpacaEval's numbers."""
    import evaluate

    from hf_nuggets.evaluation.winrate import winrate_metric_path

    out = evaluate.load(winrate_metric_path()).compute(
        predictions=PAIRS["predictions"],
        references=PAIRS["references"],
        instructions=PAIRS["instructions"],
        judge="openai",
        judge_kwargs={"base_url": endpoint.url, "api_key_env": key, "cache_dir": str(tmp_path), "progress": False},
        length_controlled=False,
    )
    assert out["win_rate"] == pytest.approx(100 * (3 * endpoint.p_good + 0.5) / 4)
    assert (out["n_wins"], out["n_draws"], out["n_total"]) == (3, 1, 4)
