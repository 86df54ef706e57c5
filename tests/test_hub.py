"""Publishing to the Hub, proved at the HTTP boundary: the real `huggingface_hub` client talks to a local Hub.

`FakeHub` is a small `http.server` on 127.0.0.1 that implements the endpoints `huggingface_hub` calls to create a
repo, read it (info, tree, resolve), validate a README, pre-upload, upload LFS blobs (the basic LFS
transfer: the Xet transfer needs a CAS server, so these tests set `HF_HUB_DISABLE_XET`) and commit. It keeps the
repos in memory and records every request, so the tests see exactly what would reach the Hub.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Dataset, load_dataset

from hf_nuggets import select_top
from hf_nuggets.cli.publish import push_main
from hf_nuggets.publish.hub import (
    HubPushError,
    check_repo_id,
    export_repo_folder,
    merge_card_metadata,
    push_scored_dataset,
)

TOKEN = "hf_fakeTOKENforTESTSonly1234567890"
REPO = "user/alpaca-nuggets"
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"


class FakeHub:
    """An in-memory Hub: repos with commits, LFS blobs, and a log of every request."""

    def __init__(self):
        self.repos: dict[str, dict] = {}
        self.blobs: dict[str, bytes] = {}
        self.calls: list[dict] = []
        self.unhandled: list[str] = []
        self.fail_commit: tuple[int, str] | None = None
        self.race_commit = False  # someone else commits just before our next commit lands
        self.echo_auth = False
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # -- repo state ---------------------------------------------------------------------------------------------------
    def create(self, repo_id: str, private: bool = False, files: dict[str, bytes] | None = None):
        self.repos[repo_id] = {"private": private, "commits": []}
        self.commit(repo_id, {".gitattributes": GITATTRIBUTES, **(files or {})}, "initial commit", "")

    def commit(self, repo_id, files, summary, description):
        repo = self.repos[repo_id]
        oid = hashlib.sha1(f"{repo_id}{len(repo['commits'])}{summary}".encode()).hexdigest()
        repo["commits"].append({"oid": oid, "files": files, "summary": summary, "description": description})
        return oid

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes] | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return None
        if revision == "main":
            return repo["commits"][-1]["files"]
        for commit in repo["commits"]:
            if commit["oid"] == revision:
                return commit["files"]
        return None

    def head(self, repo_id: str) -> str:
        return self.repos[repo_id]["commits"][-1]["oid"]

    def commits(self) -> list[dict]:
        return [c for c in self.calls if re.search(r"/commit/", c["path"])]

    def mirror(self, repo_id: str, folder: Path) -> Path:
        for name, data in self.files(repo_id).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        return folder

    # -- HTTP ---------------------------------------------------------------------------------------------------------
    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _send(self, status, payload=None, headers=None, raw: bytes | None = None):
                body = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _authorized(self, path) -> bool:
                auth = self.headers.get("Authorization")
                if path.startswith("/lfs-upload/") or auth == f"Bearer {TOKEN}":
                    return True
                message = "Invalid credentials in Authorization header"
                if hub.echo_auth:  # a careless server that echoes what it got
                    message += f" (got {auth!r})"
                self._send(401, {"error": message})
                return False

            def handle_any(self):
                url = urlparse(self.path)
                path, query = unquote(url.path), parse_qs(url.query)
                if path == "/api/agent-harnesses":  # the client's user-agent registry, not part of a push
                    return self._send(404, {"error": "not served here"})
                body = self._body() if self.command in ("POST", "PUT") else b""
                record = {
                    "method": self.command,
                    "path": path,
                    "query": query,
                    "auth": self.headers.get("Authorization"),
                    "body": body,
                }
                with hub.lock:
                    hub.calls.append(record)
                if not self._authorized(path):
                    return
                with hub.lock:
                    hub.route(self, path, query, body)

            do_GET = do_POST = do_PUT = do_HEAD = handle_any

        return Handler

    def route(self, h, path, query, body):  # noqa: C901 - one dispatcher for the few endpoints
        repo_re = r"(?P<repo>[^/]+/[^/]+?)"
        if h.command == "POST" and path == "/api/repos/create":
            payload = json.loads(body)
            repo_id = f"{payload['organization']}/{payload['name']}"
            if repo_id in self.repos:
                return h._send(409, {"error": "You already created this dataset repo", "url": repo_id})
            self.create(repo_id, private=payload.get("visibility") == "private")
            return h._send(200, {"url": f"{self.url}/datasets/{repo_id}", "name": repo_id})
        if h.command == "POST" and path == "/api/validate-yaml":
            content = json.loads(body)["content"]
            match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
            try:
                data = yaml.safe_load(match.group(1)) if match else {}
                assert isinstance(data, dict)
            except Exception as err:  # noqa: BLE001
                return h._send(400, {"errors": [{"message": f"Invalid YAML: {err}"}]})
            return h._send(200, {"errors": [], "warnings": []})
        if m := re.fullmatch(rf"/api/datasets/{repo_re}(/revision/(?P<rev>[^/]+))?", path):
            files = self.files(m["repo"], m["rev"] or "main")
            if files is None:
                return h._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            readme = files.get("README.md", b"").decode()
            card = re.match(r"^---\n(.*?)\n---\n", readme, re.S)
            repo = self.repos[m["repo"]]
            sha = next(c["oid"] for c in reversed(repo["commits"]) if c["files"] is files)
            return h._send(
                200,
                {
                    "id": m["repo"],
                    "author": m["repo"].split("/")[0],
                    "sha": sha,
                    "private": repo["private"],
                    "siblings": [{"rfilename": name} for name in files],
                    "cardData": yaml.safe_load(card.group(1)) if card else None,
                    "tags": [],
                },
            )
        if m := re.fullmatch(rf"/api/datasets/{repo_re}/preupload/(?P<rev>[^/]+)", path):
            files = json.loads(body)["files"]
            modes = [
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if f["path"].endswith((".parquet", ".png")) else "regular",
                    "shouldIgnore": False,
                }
                for f in files
            ]
            return h._send(200, {"files": modes})
        if m := re.fullmatch(rf"/datasets/{repo_re}\.git/info/lfs/objects/batch", path):
            objects = []
            for obj in json.loads(body)["objects"]:
                entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in self.blobs:
                    entry["actions"] = {"upload": {"href": f"{self.url}/lfs-upload/{obj['oid']}"}}
                objects.append(entry)
            return h._send(200, {"transfer": "basic", "objects": objects})
        if m := re.fullmatch(r"/lfs-upload/(?P<oid>[0-9a-f]{64})", path):
            if hashlib.sha256(body).hexdigest() != m["oid"]:
                return h._send(400, {"error": "sha256 mismatch"})
            self.blobs[m["oid"]] = body
            return h._send(200, {})
        if m := re.fullmatch(rf"/api/datasets/{repo_re}/commit/(?P<rev>[^/]+)", path):
            if self.fail_commit:
                return h._send(self.fail_commit[0], {"error": self.fail_commit[1]})
            if self.race_commit:
                self.race_commit = False
                self.commit(m["repo"], {**self.files(m["repo"]), "other.txt": b"theirs"}, "concurrent commit", "")
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            header = lines[0]["value"]
            parent = header.get("parentCommit")
            if parent and parent != self.head(m["repo"]):
                return h._send(412, {"error": "parent commit is not the head"})
            files = dict(self.files(m["repo"]))
            for item in lines[1:]:
                value = item["value"]
                if item["key"] == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif item["key"] == "lfsFile":
                    if value["oid"] not in self.blobs:
                        return h._send(400, {"error": f"LFS object {value['oid']} was never uploaded"})
                    files[value["path"]] = self.blobs[value["oid"]]
                elif item["key"] == "deletedFile":
                    files.pop(value["path"])
                else:
                    return h._send(400, {"error": f"unsupported operation {item['key']}"})
            oid = self.commit(m["repo"], files, header["summary"], header.get("description", ""))
            url = f"{self.url}/datasets/{m['repo']}/commit/{oid}"
            return h._send(200, {"commitUrl": url, "commitOid": oid, "success": True})
        if m := re.fullmatch(rf"/datasets/{repo_re}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path):
            files = self.files(m["repo"], m["rev"])
            if files is None:
                return h._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            if m["file"] not in files:
                return h._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
            data = files[m["file"]]
            sha = next(c["oid"] for c in self.repos[m["repo"]]["commits"] if c["files"] is files)
            start, end = 0, len(data)
            if rng := re.fullmatch(r"bytes=(\d+)-(\d*)", h.headers.get("Range", "")):
                start, end = int(rng[1]), (int(rng[2]) + 1 if rng[2] else len(data))
            headers = {"X-Repo-Commit": sha, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
            return h._send(206 if h.headers.get("Range") else 200, headers=headers, raw=data[start:end])
        if m := re.fullmatch(rf"/api/datasets/{repo_re}/tree/(?P<rev>[^/]+)(?P<sub>/.*)?", path):
            files = self.files(m["repo"], m["rev"])
            if files is None:
                return h._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            entries = _tree_entries(files)
            prefix = (m["sub"] or "").strip("/")
            if prefix and not any(e["path"] == prefix and e["type"] == "directory" for e in entries):
                return h._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            inside = [e for e in entries if not prefix or e["path"].startswith(prefix + "/")]
            if not recursive:
                depth = prefix.count("/") + (1 if prefix else 0)
                inside = [e for e in inside if e["path"].count("/") == depth]
            return h._send(200, inside)
        self.unhandled.append(f"{h.command} {path}")
        return h._send(404, {"error": f"FakeHub does not implement {h.command} {path}"})


def _tree_entries(files: dict[str, bytes]) -> list[dict]:
    entries, folders = [], set()
    for name, data in sorted(files.items()):
        parts = name.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        entry = {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
        if name.endswith((".parquet", ".png")):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        entries.append(entry)
    entries += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()} for f in folders]
    return entries


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A running FakeHub, with `huggingface_hub` pointed at it and `HF_TOKEN` set."""
    import datasets.config
    from huggingface_hub import constants

    server = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", server.url)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    yield server
    assert not server.unhandled, f"huggingface_hub called endpoints FakeHub does not implement: {server.unhandled}"
    server.close()


@pytest.fixture
def scored():
    """Forty scored Alpaca-style rows with distinct scores, plus a chat-free text layout."""
    rows = [
        {
            "instruction": f"Question {i}: what is {i} plus {i % 7}?",
            "input": "" if i % 3 else f"Context {i}",
            "output": f"The answer is {i + i % 7}. " + "word " * (i % 5),
            "golden_score": (i * 7 % 9) / 8 if i % 9 != 8 else 1.0,
            "nuggets_gain": round((i * 37 % 23) / 23 - 0.5, 4),
        }
        for i in range(40)
    ]
    return Dataset.from_list(rows)


SUMMARY = {
    "hf_nuggets_version": "0.1.0",
    "source": "/home/alice/private/alpaca_sample.jsonl",
    "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "model_revision": "12fd25f",
    "num_tasks": 8,
    "template": "alpaca",
    "files": {"parquet": "/home/alice/out/scored.parquet"},
}


def push(scored, **kwargs):
    return push_scored_dataset(scored, REPO, **{"top_percent": 10, "summary": SUMMARY, "diversity": False, **kwargs})


def test_push_makes_one_commit_with_data_card_and_histogram(hub, scored):
    """One create_commit carries the data of both configs, the card, the histogram and the summary."""
    push(scored)
    commits = hub.commits()
    assert len(commits) == 1
    assert set(hub.files(REPO)) == {
        ".gitattributes",
        "README.md",
        "score_histogram.png",
        "hf_nuggets_summary.json",
        "scored/train-00000-of-00001.parquet",
        "top10/train-00000-of-00001.parquet",
    }
    header = json.loads(commits[0]["body"].splitlines()[0])["value"]
    assert header["summary"] == "Upload 40 golden-scored rows and the top 10% (4 rows) with hf-nuggets"
    assert header["parentCommit"] == hub.repos[REPO]["commits"][0]["oid"]


def test_push_creates_a_dataset_repo_with_the_private_flag(hub, scored):
    """The create call asks for a dataset repo with `visibility: private` when `private=True`."""
    push(scored, private=True)
    create = next(c for c in hub.calls if c["path"] == "/api/repos/create")
    payload = json.loads(create["body"])
    assert payload == {"name": "alpaca-nuggets", "organization": "user", "visibility": "private", "type": "dataset"}
    assert hub.repos[REPO]["private"] is True


def test_pushed_files_are_what_export_writes(hub, scored, tmp_path):
    """The committed card, histogram and data are byte for byte what `export_repo_folder` writes locally."""
    push(scored)
    export_repo_folder(scored, tmp_path / "local", top_percent=10, summary=SUMMARY, diversity=False, repo_id=REPO)
    remote = hub.files(REPO)
    for name in ("README.md", "score_histogram.png", "hf_nuggets_summary.json"):
        assert remote[name] == (tmp_path / "local" / name).read_bytes(), name
    table = pq.read_table(io.BytesIO(remote["top10/train-00000-of-00001.parquet"]))
    assert table.to_pylist() == select_top(scored, 10).to_list()


def test_pushed_repo_loads_into_the_same_rows_and_scores(hub, scored, tmp_path):
    """A copy of the pushed repo loads with `load_dataset` into the scored rows and the top-10% selection."""
    push(scored)
    folder = hub.mirror(REPO, tmp_path / "mirror")
    assert load_dataset(str(folder), "scored", split="train").to_list() == scored.to_list()
    top = load_dataset(str(folder), "top10", split="train")
    assert top.to_list() == select_top(scored, 10).to_list()
    assert load_dataset(str(folder), split="train").to_list() == top.to_list()  # the selection is the default


def test_card_never_leaks_local_paths_or_the_token(hub, scored):
    """The pushed card and summary name the source file and model folder but hold no local path and no token."""
    push(scored, summary={**SUMMARY, "model": "/home/alice/models/tiny-llama"})
    for name in ("README.md", "hf_nuggets_summary.json"):
        text = hub.files(REPO)[name].decode()
        assert "alpaca_sample.jsonl" in text and "tiny-llama (a local path)" in text
        assert "/home/alice" not in text and TOKEN not in text


def _strings(value):
    """Every string in a JSON value: keys and values, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _looks_local(text: str) -> bool:
    from pathlib import PurePosixPath, PureWindowsPath

    return PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or text.startswith("~")


def test_published_summary_holds_no_local_path_at_any_depth(hub, scored):
    """Local paths anywhere in the summary (a checkpoint folder, a list, a Windows or home path, a path relative to
    the run folder) are not published; the settings around them are."""
    summary = {
        **SUMMARY,
        "files": {"parquet": "runs/alpaca/scored.parquet", "jsonl": "runs/alpaca/scored.jsonl"},
        "sharding": {"processes": 2, "checkpoint": "/home/alice/out/checkpoint", "streaming": True},
        "selection": {"top_percent": 10, "files": {"parquet": "/home/alice/out/selected.parquet"}},
        "notes": ["C:\\Users\\alice\\out\\scored.parquet", "~/runs/log.txt", "runs/alpaca/checkpoint/scored.log"],
        "dedup": {"log": "/home/alice/out/dedup.json", "threshold": 0.8},
    }
    push(scored, summary=summary)
    text = hub.files(REPO)["hf_nuggets_summary.json"].decode()
    public = json.loads(text)
    assert not [s for s in _strings(public) if _looks_local(s)], text
    for private in ("/home/alice", "alice\\", "~/", "runs/alpaca"):
        assert private not in text, private
    assert public["sharding"]["processes"] == 2 and public["sharding"]["streaming"] is True
    assert public["dedup"]["threshold"] == 0.8


@pytest.mark.parametrize("kind", ["sharded", "streaming", "early_stop"])
def test_published_sharded_run_holds_no_local_path(hub, kind, tiny_prospector, tasks, tmp_path):
    """A sharded run (in memory, streamed, or with early stopping) read back from its folder and published, to the
    Hub and to a local export, leaves no absolute path and no trace of the local folders in any published file."""
    from hf_nuggets import GoldenScorer
    from hf_nuggets.publish.hub import load_prospect_output
    from hf_nuggets.run.sharded import prospect_sharded
    from hf_nuggets.scoring.early_stop import EarlyStopping

    rows = [
        {"instruction": f"Name colour number {i}.", "input": "" if i % 2 else "Be brief.", "output": f"Red {i}."}
        for i in range(16)
    ]
    data = Dataset.from_list(rows)
    options = {"shard_size": 4, "top_percent": 25, "progress": False}
    if kind == "streaming":
        data = data.to_iterable_dataset()
    if kind == "early_stop":
        options["early_stop"] = EarlyStopping(delta=0.2, chunk=2, warmup=4, seed=0)
    run = tmp_path / "run"
    prospect_sharded(data, GoldenScorer(tiny_prospector, tasks), run, **options)
    scored, summary = load_prospect_output(run)
    assert str(run) in json.dumps(summary)  # the local summary names local paths: there is something to strip
    push(scored, summary=summary, top_percent=25)
    export_repo_folder(scored, tmp_path / "export", top_percent=25, summary=summary, diversity=False, repo_id=REPO)
    published = {f"hub {name}": data for name, data in hub.files(REPO).items()}
    published.update({f"export {p.name}": p.read_bytes() for p in (tmp_path / "export").rglob("*") if p.is_file()})
    for name, content in published.items():
        assert str(tmp_path).encode() not in content, name
    public = json.loads(hub.files(REPO)["hf_nuggets_summary.json"])
    assert not [s for s in _strings(public) if _looks_local(s)], public
    assert public["sharding"]["streaming"] is (kind == "streaming") and public["sharding"]["shard_size"] == 4
    assert ("early_stop" in public) is (kind == "early_stop")


def test_push_merges_again_when_the_repo_moves(hub, scored):
    """When another commit lands first (HTTP 412), the push re-reads the repo, merges again and keeps their file."""
    hub.create(REPO)
    hub.race_commit = True
    push(scored)
    assert [json.loads(c["body"].splitlines()[0])["value"]["summary"][:6] for c in hub.commits()] == ["Upload"] * 2
    assert hub.files(REPO)["other.txt"] == b"theirs" and "README.md" in hub.files(REPO)


@pytest.mark.parametrize("where", ["argument", "HF_TOKEN", "login cache"])
def test_token_comes_from_argument_env_or_login_cache(hub, scored, monkeypatch, tmp_path, where):
    """The token is taken from the argument, else `HF_TOKEN`, else the login cache, and sent as a bearer token."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_TOKEN", TOKEN if where == "HF_TOKEN" else "hf_wrong")
    if where != "HF_TOKEN":
        monkeypatch.delenv("HF_TOKEN")
    if where == "login cache":
        (tmp_path / "login").mkdir()
        (tmp_path / "login" / "token").write_text(TOKEN)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "login" / "token"))
    push(scored, token=TOKEN if where == "argument" else None)
    assert hub.calls and all(c["auth"] == f"Bearer {TOKEN}" for c in hub.calls if not c["path"].startswith("/lfs"))


def test_no_token_fails_before_any_request(hub, scored, monkeypatch):
    """Without a token anywhere, the push fails with a clear error and sends nothing."""
    from huggingface_hub.errors import LocalTokenNotFoundError

    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(LocalTokenNotFoundError, match="No Hugging Face token found.*HF_TOKEN.*Nothing was pushed"):
        push(scored)
    assert hub.calls == []


@pytest.mark.parametrize("repo_id", ["alpaca-nuggets", "user/alpaca/nuggets", "user/", "/name", "user/bad name", 3])
def test_bad_repo_id_fails_before_any_request(hub, scored, repo_id):
    """A repo id that is not `namespace/name` is refused before anything is sent."""
    with pytest.raises(ValueError, match="`repo_id` must be `namespace/name`"):
        push_scored_dataset(scored, repo_id, diversity=False)
    assert hub.calls == []


def test_missing_golden_score_fails_before_any_request(hub, scored):
    """Asking for a selection of data without `golden_score` is refused before anything is sent."""
    with pytest.raises(KeyError, match="`golden_score` not found, and selecting the top 10% needs golden scores"):
        push(scored.remove_columns("golden_score"))
    assert hub.calls == []


def test_empty_selection_fails_before_any_request(hub, scored):
    """An empty dataset (so an empty selection) is refused before anything is sent."""
    with pytest.raises(ValueError, match="`scored` is empty: the selection would be empty"):
        push(scored.select([]))
    assert hub.calls == []


def test_missing_template_fails_before_any_request(hub, scored, monkeypatch):
    """A card template missing from the package is reported before anything is sent."""
    import hf_nuggets.publish.card

    # A package without the template stands in for an install that lost it.
    monkeypatch.setattr(hf_nuggets.publish.card, "TEMPLATE_PACKAGE", "hf_nuggets.utils")
    with pytest.raises(FileNotFoundError, match="Card template `dataset_card.md` is missing from the package"):
        push(scored)
    assert hub.calls == []


def test_failed_commit_says_nothing_is_on_the_hub(hub, scored):
    """When the commit fails, the error says the new repo is empty and nothing from the push is on the Hub."""
    hub.fail_commit = (500, "storage is down")
    with pytest.raises(HubPushError, match=r"created by this push and is empty; nothing from this push is on the Hub"):
        push(scored)
    assert set(hub.files(REPO)) == {".gitattributes"}


def test_token_never_in_error_messages_or_logs(hub, scored, caplog, monkeypatch):
    """A server that echoes the Authorization header cannot make the token appear in the error or the logs."""
    hub.create(REPO)
    hub.echo_auth = True
    monkeypatch.setenv("HF_TOKEN", TOKEN + "x")  # rejected, and echoed back by the server
    with caplog.at_level(logging.DEBUG), pytest.raises(HubPushError) as info:
        push(scored)
    assert "401" in str(info.value) and TOKEN not in str(info.value)
    assert info.value.__cause__ is None  # the original error, which holds the token, is not chained
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


def test_second_push_keeps_the_yaml_datasets_wrote(hub, scored):
    """Data first: after `Dataset.push_to_hub`, our push keeps its `dataset_info` and `configs` and adds ours."""
    other = Dataset.from_dict({"text": ["a", "b", "c"]})
    other.push_to_hub(REPO, token=TOKEN)
    push(scored)
    card = yaml.safe_load(hub.files(REPO)["README.md"].decode().split("---")[1])
    assert [c["config_name"] for c in card["configs"]] == ["default", "scored", "top10"]
    assert [i["config_name"] for i in card["dataset_info"]] == ["default", "scored", "top10"]
    assert not any(c.get("default") for c in card["configs"])  # `default` stays the default config
    assert "hf-nuggets" in card["tags"]
    assert "data/train-00000-of-00001.parquet" in hub.files(REPO)


def test_datasets_push_after_ours_keeps_our_card(hub, scored, tmp_path):
    """Card first: a later `Dataset.push_to_hub` of another config keeps our YAML, configs and card text."""
    push(scored)
    Dataset.from_dict({"text": ["a", "b"]}).push_to_hub(REPO, "extra", token=TOKEN)
    readme = hub.files(REPO)["README.md"].decode()
    card = yaml.safe_load(readme.split("---")[1])
    assert [c["config_name"] for c in card["configs"]] == ["extra", "scored", "top10"]
    assert {"hf-nuggets", "golden-score", "data-selection"} <= set(card["tags"])
    assert "## How it was made" in readme
    folder = hub.mirror(REPO, tmp_path / "mirror")
    assert len(load_dataset(str(folder), "top10", split="train")) == 4


def test_second_push_replaces_our_stale_shards(hub, scored, tmp_path):
    """Re-pushing with fewer shards deletes the old shards of our configs in the same commit."""
    push(scored, max_shard_size=2000)
    assert "scored/train-00001-of-00002.parquet" in hub.files(REPO)
    push(scored)
    names = sorted(n for n in hub.files(REPO) if n.startswith("scored/"))
    assert names == ["scored/train-00000-of-00001.parquet"]
    folder = hub.mirror(REPO, tmp_path / "mirror")
    assert load_dataset(str(folder), "scored", split="train").to_list() == scored.to_list()


def test_license_of_a_hub_source_is_passed_through(hub, scored):
    """Without `license=`, the license of a Hub source dataset goes into the card's YAML."""
    hub.create("tatsu-lab/alpaca", files={"README.md": b"---\nlicense: cc-by-nc-4.0\n---\n# Alpaca\n"})
    push(scored, summary={**SUMMARY, "source": "tatsu-lab/alpaca"})
    card = yaml.safe_load(hub.files(REPO)["README.md"].decode().split("---")[1])
    assert card["license"] == "cc-by-nc-4.0"
    assert card["source_datasets"] == ["tatsu-lab/alpaca"]


def test_export_folder_reloads_into_the_same_rows_and_scores(scored, tmp_path):
    """The exported folder loads offline with `load_dataset`: every row and score, and the selection best first."""
    export_repo_folder(scored, tmp_path / "repo", top_percent=25, summary=SUMMARY, diversity=False)
    assert load_dataset(str(tmp_path / "repo"), "scored", split="train").to_list() == scored.to_list()
    top = load_dataset(str(tmp_path / "repo"), "top25", split="train")
    assert top.to_list() == select_top(scored, 25).to_list() and len(top) == 10


def test_export_refuses_to_replace_a_foreign_folder(scored, tmp_path):
    """`overwrite=True` replaces an earlier export but never a folder that export did not write."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="was not written by `export_repo_folder`"):
        export_repo_folder(scored, tmp_path / "mine", overwrite=True, diversity=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_merge_keeps_their_default_config():
    """Merging never leaves two default configurations."""
    theirs = {"configs": [{"config_name": "main", "data_files": "m/*", "default": True}]}
    ours = {"configs": [{"config_name": "top5", "data_files": "top5/*", "default": True}]}
    merged = merge_card_metadata(theirs, ours)
    assert [c.get("default") for c in merged["configs"]] == [True, None]


def test_check_repo_id_accepts_namespace_name():
    """A well-formed `namespace/name` passes unchanged."""
    assert check_repo_id("HuggingFaceTB/smol-nuggets.v1") == "HuggingFaceTB/smol-nuggets.v1"


def _prospect_dir(scored, folder: Path) -> Path:
    folder.mkdir()
    scored.to_parquet(str(folder / "scored.parquet"))
    (folder / "summary.json").write_text(json.dumps({**SUMMARY, "selection": {"top_percent": 10}}))
    return folder


def test_cli_push_uses_hf_endpoint_and_hf_token(hub, scored, tmp_path):
    """`hf-nuggets push DIR user/name --private` in a fresh process reaches the Hub at `HF_ENDPOINT`."""
    folder = _prospect_dir(scored, tmp_path / "run")
    code = "import sys; from hf_nuggets.cli.publish import push_main; sys.exit(push_main(sys.argv[1:]))"
    env = {
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", code, str(folder), REPO, "--private", "--no_diversity"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"Pushed to {hub.url}/datasets/{REPO}" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    assert hub.repos[REPO]["private"] is True
    assert "top10/train-00000-of-00001.parquet" in hub.files(REPO)  # --top defaults to the run's selection


def test_cli_push_without_token_exits_with_an_error(hub, scored, tmp_path, monkeypatch, capsys):
    """`hf-nuggets push` without a token prints a clear error and returns 1."""
    monkeypatch.delenv("HF_TOKEN")
    folder = _prospect_dir(scored, tmp_path / "run")
    assert push_main([str(folder), REPO, "--no_diversity"]) == 1
    assert "hf-nuggets push: error: No Hugging Face token found" in capsys.readouterr().err
    assert hub.calls == []


def test_export_keeps_flagged_rows_out_of_the_top_and_counts_them(tmp_path):
    """The published top holds no flagged row (it would hold them without gates); the card counts them apart."""
    from datasets import load_dataset

    ds = Dataset.from_dict(
        {
            "instruction": [f"q{i}" for i in range(8)],
            "output": [f"a{i}" for i in range(8)],
            "golden_score": [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3],
            "nuggets_gain": [0.0] * 8,
            "nuggets_flags": ["unaligned", "", "empty", "", "", "", "", ""],
        }
    )
    result = export_repo_folder(ds, tmp_path / "repo", top_percent=50, diversity=False)
    top = load_dataset(str(tmp_path / "repo"), "top50", split="train")
    assert top["instruction"] == ["q1", "q3", "q4", "q5"]
    assert "Flagged 2 of 8 rows: empty 1, unaligned 1" in result["card"].text
    ungated = export_repo_folder(ds, tmp_path / "plain", top_percent=50, diversity=False, gates=None)
    assert load_dataset(str(tmp_path / "plain"), "top50", split="train")["instruction"] == ["q0", "q1", "q2", "q3"]
    assert "Flagged" not in ungated["card"].text


def test_score_push_to_hub_publishes_the_run(hub, tiny_model_dir, tasks, tmp_path, capsys):
    """`hf-nuggets score DATA --push_to_hub REPO --top 50` scores, writes the run, then pushes it in one commit: the
    scored rows and the run's top 50% reach the Hub."""
    from hf_nuggets.cli import main

    data, task_file = tmp_path / "data.jsonl", tmp_path / "tasks.jsonl"
    rows = [{"instruction": f"Say {w}.", "output": f"{w.title()}."} for w in ("yes", "no", "hello", "red")]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    task_file.write_text("\n".join(json.dumps(t) for t in tasks) + "\n")
    args = ["score", str(data), "--tasks", str(task_file), "--model", str(tiny_model_dir), "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "out"), "--top", "50", "--push_to_hub", REPO, "--quiet"]) == 0
    assert f"Pushed to {hub.url}/datasets/{REPO}" in capsys.readouterr().out
    assert len(hub.commits()) == 1
    files = hub.files(REPO)
    assert "scored/train-00000-of-00001.parquet" in files and "top50/train-00000-of-00001.parquet" in files
    pushed = pq.read_table(io.BytesIO(files["scored/train-00000-of-00001.parquet"])).to_pylist()
    scored = load_dataset("parquet", data_files=str(tmp_path / "out" / "scored.parquet"), split="train")
    assert [r["golden_score"] for r in pushed] == scored["golden_score"]


def test_score_push_to_hub_without_token_fails_before_scoring(hub, tiny_model_dir, tmp_path, monkeypatch, capsys):
    """`score --push_to_hub` without a token fails in one line naming `--token`, before any row is scored."""
    from hf_nuggets.cli import main

    monkeypatch.delenv("HF_TOKEN")
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"instruction": "Say yes.", "output": "Yes."}) + "\n")
    out = tmp_path / "out"
    assert main(["score", str(data), "--model", str(tiny_model_dir), "--out", str(out), "--push_to_hub", REPO]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No Hugging Face token found: pass `--token`" in err[0]
    assert not out.exists() and hub.calls == []
