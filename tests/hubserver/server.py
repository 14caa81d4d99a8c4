"""A local Hugging Face Hub for tests: olah (read side) behind a small write-side proxy.

Layout on disk (``--root``): one git repository per Hub repo, ``models|datasets|spaces/ORG/NAME``.
Each is a normal (non-bare) git repository whose work tree is never checked out: everything is
written with git plumbing, LFS objects live in ``.git/lfs/objects/aa/bb/<sha256>`` and the Hub
settings we keep (private flag, Space SDK) in ``.git/hub.json``.

- olah 0.5.4, started as a subprocess with ``offline = true`` and ``mirrors-path = [root]``, serves
  those repositories read-only (repo info, tree, paths-info, refs, commits, resolve/ downloads).
- This proxy (Starlette on uvicorn) sits in front of it and implements what the official
  ``huggingface_hub`` client needs for writes: whoami, repo create/delete/settings, README
  metadata validation, preupload, the LFS batch API + PUT, and the NDJSON commit endpoint, which
  becomes a real git commit. All other requests are passed through to olah, after the proxy has
  checked repo/revision/file existence itself so that the client gets the same 401/404 +
  ``X-Error-Code`` answers as from huggingface.co (olah 0.5.4 answers 401 or 500 there offline).

Everything listens on 127.0.0.1. olah's upstream (``hf-netloc``/``hf-lfs-netloc``) points at a
local port that is bound but never listening, so its pass-through routes (e.g. whoami) fail fast
with "connection refused" instead of reaching huggingface.co.

Standalone use (``TLHUB_OLAH_PYTHON`` may name a Python that has olah installed)::

    python -m tests.hubserver.server --root /tmp/hub --port 8765 --token secret
    HF_ENDPOINT=http://127.0.0.1:8765 HF_TOKEN=secret HF_HUB_DISABLE_XET=1 python ...

This file only depends on the standard library, starlette, uvicorn, httpx and PyYAML, and is run
as a script by the pytest fixture (``tests/hubserver/fixture.py``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fnmatch
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import yaml
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

HOST = "127.0.0.1"
DEFAULT_USER = "tester"
# Files at least this big are stored with LFS (binary files and files matching a `filter=lfs`
# pattern of the repo's .gitattributes are always LFS, like on huggingface.co).
DEFAULT_LFS_THRESHOLD = 10 * 1024 * 1024

REPO_TYPES = {"model": "models", "dataset": "datasets", "space": "spaces"}
URL_PREFIX = {"models": "", "datasets": "datasets/", "spaces": "spaces/"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
OID_RE = re.compile(r"^[0-9a-f]{64}$")
LFS_POINTER_RE = re.compile(rb"^version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize (\d+)\n$")
# Same front-matter regex as huggingface_hub.repocard.REGEX_YAML_BLOCK.
YAML_BLOCK_RE = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")

# The .gitattributes huggingface.co puts in the initial commit of a new repo (abridged).
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z *.arrow *.bin *.bz2 *.ckpt *.ftz *.gz *.h5 *.joblib *.lfs.* *.mlmodel *.model *.msgpack *.npy "
        "*.npz *.onnx *.ot *.parquet *.pb *.pickle *.pkl *.pt *.pth *.rar *.safetensors saved_model/**/* "
        "*.tar.* *.tar *.tflite *.tgz *.wasm *.xz *.zip *.zst *tfevents*"
    ).split()
)

# Routes, matched against the raw (still percent-encoded) path: the client quotes revisions with
# safe="", so "refs/pr/1" arrives as one segment "refs%2Fpr%2F1".
API_REPO_RE = re.compile(r"^/api/(models|datasets|spaces)/([^/]+)/([^/]+)(?:/(.*))?$")
RESOLVE_RE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")
LFS_BATCH_RE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+)\.git/info/lfs/objects/batch$")
LFS_UPLOAD_RE = re.compile(r"^/_lfs/(upload|verify)/(models|datasets|spaces)/([^/]+)/([^/]+)(?:/([0-9a-f]{64}))?$")
HOP_HEADERS = {"host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "content-length"}


class HubError(Exception):
    """An error answered the way huggingface.co does: status, X-Error-Code, X-Error-Message."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code

    def response(self, method: str = "GET") -> Response:
        headers = {"X-Error-Message": self.message.splitlines()[0][:200]}
        if self.code:
            headers["X-Error-Code"] = self.code
        if method == "HEAD":
            return Response(status_code=self.status, headers=headers)
        return JSONResponse({"error": self.message}, status_code=self.status, headers=headers)


def repo_not_found() -> HubError:
    return HubError(404, "Repository not found", "RepoNotFound")


# --------------------------------------------------------------------------------------------
# Git storage
# --------------------------------------------------------------------------------------------


class GitRepo:
    """One Hub repository stored as a git repository (plumbing only, no work tree)."""

    _locks: dict[str, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, root: Path, rtype: str, org: str, name: str):
        self.rtype, self.org, self.name = rtype, org, name
        self.repo_id = f"{org}/{name}"
        self.path = root / rtype / org / name
        self.git_dir = self.path / ".git"
        with GitRepo._locks_guard:
            self.lock = GitRepo._locks.setdefault(str(self.path), threading.Lock())

    # -- basics ---------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.git_dir / "HEAD").is_file()

    def git(self, *args: str, input: bytes | None = None, env: dict | None = None, check: bool = True) -> bytes:
        proc = subprocess.run(
            ["git", "-C", str(self.path), *args],
            input=input,
            capture_output=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    @property
    def meta(self) -> dict:
        try:
            return json.loads((self.git_dir / "hub.json").read_text())
        except FileNotFoundError:
            return {}

    def save_meta(self, meta: dict) -> None:
        (self.git_dir / "hub.json").write_text(json.dumps(meta, indent=2))

    def resolve(self, revision: str) -> str | None:
        """Commit sha of a branch, tag or (full/abbreviated) sha, or None."""
        if not revision or revision.startswith("-"):
            return None
        out = self.git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False).strip()
        return out.decode() or None

    def object_type(self, commit: str, path: str) -> str | None:
        """'blob' or 'tree' for a path in a commit, None when it does not exist."""
        if not path.strip("/"):
            return "tree"
        out = self.git("cat-file", "-t", f"{commit}:{path.strip('/')}", check=False).strip()
        return out.decode() or None

    def ls_tree(self, commit: str) -> dict[str, tuple[str, str, int]]:
        """{path: (mode, blob sha, size)} of all files of a commit."""
        files = {}
        for line in self.git("ls-tree", "-r", "-l", "-z", commit).split(b"\0"):
            if line:
                info, path = line.split(b"\t", 1)
                mode, _type, sha, size = info.split()
                files[path.decode()] = (mode.decode(), sha.decode(), int(size) if size != b"-" else 0)
        return files

    def read_blob(self, sha: str) -> bytes:
        return self.git("cat-file", "blob", sha)

    def write_blob(self, data: bytes) -> str:
        """Store a loose git blob (what `git hash-object -w` does) and return its sha1."""
        raw = b"blob %d\0" % len(data) + data
        sha = hashlib.sha1(raw).hexdigest()
        target = self.git_dir / "objects" / sha[:2] / sha[2:]
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".tmp-{secrets.token_hex(4)}")
            tmp.write_bytes(zlib.compress(raw))
            os.replace(tmp, target)
        return sha

    # -- LFS ------------------------------------------------------------------------------
    def lfs_path(self, oid: str) -> Path:
        return self.git_dir / "lfs" / "objects" / oid[:2] / oid[2:4] / oid

    def lfs_info(self, blob_sha: str, size: int) -> tuple[str, int] | None:
        """(sha256, size) when the blob is an LFS pointer. Pointers are ~130 bytes."""
        if not 100 < size < 200:
            return None
        m = LFS_POINTER_RE.match(self.read_blob(blob_sha))
        return (m.group(1).decode(), int(m.group(2))) if m else None

    def lfs_patterns(self, commit: str) -> list[str]:
        files = self.ls_tree(commit)
        if ".gitattributes" not in files:
            return []
        patterns = []
        for line in self.read_blob(files[".gitattributes"][1]).decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) > 1 and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
                patterns.append(parts[0])
        return patterns

    # -- writes ---------------------------------------------------------------------------
    def init(self, user: str, meta: dict) -> str:
        self.path.mkdir(parents=True)
        self.git("init", "--quiet", "--initial-branch=main")
        self.save_meta(meta)
        # huggingface.co repos start with an "initial commit" holding .gitattributes; olah
        # also cannot serve a repository without any commit.
        ops = [("add", ".gitattributes", self.write_blob(DEFAULT_GITATTRIBUTES.encode()))]
        return self._commit("main", ops, "initial commit\n", user, initial=True)

    def commit(self, branch: str, ops: list[tuple], message: str, user: str, parent: str | None = None) -> str:
        """Apply ("add", path, blob_sha) / ("delete", path) / ("delete_folder", path) to the
        branch head and commit. Returns the new commit sha."""
        with self.lock:
            return self._commit(branch, ops, message, user, parent)

    def _commit(self, branch: str, ops: list[tuple], message: str, user: str,
                parent: str | None = None, initial: bool = False) -> str:
        # The caller holds self.lock.
        head = None if initial else self.resolve(f"refs/heads/{branch}")
        if head is None and not initial:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        if parent is not None and head is not None and not head.startswith(parent.lower()):
            raise HubError(412, f"A commit has happened since. Please refresh and try again. "
                                f"(parent commit {parent} is not the head {head} of {branch})")
        files = {} if head is None else {p: (m, s) for p, (m, s, _) in self.ls_tree(head).items()}
        for op in ops:
            if op[0] == "add":
                mode = files.get(op[1], ("100644",))[0]
                files[op[1]] = (mode if mode in ("100644", "100755") else "100644", op[2])
            elif op[0] == "delete":
                if files.pop(op[1], None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {op[1]}", "EntryNotFound")
            else:  # delete_folder
                prefix = op[1].strip("/") + "/"
                doomed = [p for p in files if p.startswith(prefix)]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {op[1]}", "EntryNotFound")
                for p in doomed:
                    del files[p]
        env = {
            "GIT_AUTHOR_NAME": user, "GIT_AUTHOR_EMAIL": f"{user}@users.noreply.localhost",
            "GIT_COMMITTER_NAME": user, "GIT_COMMITTER_EMAIL": f"{user}@users.noreply.localhost",
        }
        with tempfile.TemporaryDirectory() as tmp:
            # Build the tree in a throw-away index: the repository's own index and work tree
            # are never used.
            index_env = {**env, "GIT_INDEX_FILE": os.path.join(tmp, "index")}
            entries = b"".join(f"{m} {s}\t{p}".encode() + b"\0" for p, (m, s) in sorted(files.items()))
            self.git("update-index", "-z", "--index-info", input=entries, env=index_env)
            tree = self.git("write-tree", env=index_env).strip().decode()
        parents = [] if head is None else ["-p", head]
        sha = self.git("commit-tree", tree, *parents, "-F", "-", input=message.encode(), env=env).strip().decode()
        # Compare-and-swap, so a concurrent writer outside this process cannot be lost.
        self.git("update-ref", f"refs/heads/{branch}", sha, head or "0" * 40)
        return sha


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def validate_readme(text: str) -> list[str]:
    """Errors in the YAML metadata block of a README.md (like /api/validate-yaml on the Hub)."""
    match = YAML_BLOCK_RE.search(text)
    if match is None:
        return []  # no metadata block at all is fine
    try:
        data = yaml.safe_load(match.group(2))
    except yaml.YAMLError as exc:
        return [f"YAML Metadata Error: invalid YAML in the README.md metadata block: {exc}"]
    if data is not None and not isinstance(data, dict):
        return [f"YAML Metadata Error: the metadata block must be a mapping, got {type(data).__name__}"]
    return []


async def json_body(request: Request):
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise HubError(400, f"Invalid JSON body: {exc}") from None


def is_binary(sample: bytes) -> bool:
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sample is cut at 512 bytes: a multi-byte character may be cut at its end.
        return exc.start < len(sample) - 3
    return False


def check_path(path: str) -> str:
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path:
        raise HubError(400, f"Invalid path in repo: {path!r}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or parts[0] == ".git":
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def dead_port() -> tuple[socket.socket, int]:
    """A loopback port that is bound but never listens: connecting to it is refused at once,
    and no other process can take it while the socket lives."""
    s = socket.socket()
    s.bind((HOST, 0))
    return s, s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# The proxy application
# --------------------------------------------------------------------------------------------


class HubProxy:
    def __init__(self, root: Path, olah_url: str, token: str, user: str = DEFAULT_USER,
                 lfs_threshold: int = DEFAULT_LFS_THRESHOLD):
        self.root, self.olah_url, self.token, self.user = Path(root), olah_url.rstrip("/"), token, user
        self.lfs_threshold = lfs_threshold
        self.secret = secrets.token_bytes(32)  # signs LFS upload URLs (the client PUTs without auth)
        # trust_env=False: never send loopback traffic through an HTTP(S)_PROXY from the environment.
        self.client = httpx.AsyncClient(timeout=60, trust_env=False)
        self.app = Starlette(
            routes=[Route("/{path:path}", self.dispatch, methods=["GET", "HEAD", "POST", "PUT", "DELETE"])],
            lifespan=self.lifespan,
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        yield
        await self.client.aclose()

    # -- auth -----------------------------------------------------------------------------
    def token_state(self, request: Request) -> bool | None:
        """True for the configured token, False for a wrong one, None when none was sent."""
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), self.token)

    def require_auth(self, request: Request) -> None:
        if self.token_state(request) is not True:
            # This exact message makes huggingface_hub raise a plain 401 HfHubHTTPError rather
            # than RepositoryNotFoundError.
            raise HubError(401, "Invalid credentials in Authorization header")

    def repo(self, rtype: str, org: str, name: str, request: Request, must_exist: bool = True) -> GitRepo:
        repo = GitRepo(self.root, rtype, unquote(org), unquote(name))
        if not (NAME_RE.match(repo.org) and NAME_RE.match(repo.name)):
            raise repo_not_found()
        if must_exist:
            if not repo.exists():
                raise repo_not_found()
            if repo.meta.get("private") and self.token_state(request) is not True:
                # huggingface.co: a private repo looks like a missing one without a valid token.
                raise HubError(401, "Repository not found", "RepoNotFound")
        return repo

    def revision(self, repo: GitRepo, revision: str) -> str:
        sha = repo.resolve(unquote(revision))
        if sha is None:
            raise HubError(404, f"Invalid rev id: {unquote(revision)}", "RevisionNotFound")
        return sha

    def repo_url(self, request: Request, repo: GitRepo) -> str:
        return f"{str(request.base_url).rstrip('/')}/{URL_PREFIX[repo.rtype]}{repo.repo_id}"

    # -- dispatch ---------------------------------------------------------------------------
    async def dispatch(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode() or quote(request.url.path)
        raw_path = raw_path.split("?", 1)[0]
        method = request.method
        try:
            if self.token_state(request) is False:
                self.require_auth(request)  # a wrong token is refused everywhere, like on the Hub
            if raw_path == "/_hubserver/health":
                return await self.health()
            if raw_path == "/api/whoami-v2":
                return self.whoami(request)
            if raw_path == "/api/validate-yaml" and method == "POST":
                return await self.validate_yaml(request)
            if raw_path == "/api/repos/create" and method == "POST":
                return await self.create_repo(request)
            if raw_path == "/api/repos/delete" and method == "DELETE":
                return await self.delete_repo(request)
            if m := LFS_BATCH_RE.match(raw_path):
                return await self.lfs_batch(request, m[1] or "models", m[2], m[3])
            if m := LFS_UPLOAD_RE.match(raw_path):
                return await self.lfs_upload(request, *m.groups())
            if m := API_REPO_RE.match(raw_path):
                return await self.api_repo(request, m[1], m[2], m[3], m[4] or "")
            if m := RESOLVE_RE.match(raw_path):
                return await self.resolve_file(request, m[1] or "models", m[2], m[3], m[4], m[5])
            return await self.forward(request, raw_path)
        except HubError as err:
            return err.response(method)

    async def health(self) -> Response:
        try:
            # Any HTTP answer means olah is up (its "/" page itself fails with a 500 in 0.5.4).
            await self.client.get(self.olah_url + "/api/whoami-v2", timeout=5)
            ok = True
        except httpx.HTTPError:
            ok = False
        return JSONResponse({"olah": ok}, status_code=200 if ok else 503)

    # -- account / repo management -------------------------------------------------------------
    def whoami(self, request: Request) -> Response:
        self.require_auth(request)
        return JSONResponse({
            "type": "user", "id": hashlib.sha1(self.user.encode()).hexdigest()[:24], "name": self.user,
            "fullname": self.user, "email": f"{self.user}@users.noreply.localhost", "emailVerified": True,
            "isPro": False, "orgs": [], "canPay": False,
            "auth": {"type": "access_token", "accessToken": {"displayName": "local-test-hub", "role": "write"}},
        })

    async def validate_yaml(self, request: Request) -> Response:
        body = await json_body(request)
        errors = validate_readme(str(body.get("content", "")))
        if request.headers.get("accept") == "text/plain":  # RepoCard.validate() asks for text
            return Response("\n".join(errors), status_code=400 if errors else 200, media_type="text/plain")
        return JSONResponse({"errors": [{"message": e} for e in errors], "warnings": []},
                            status_code=400 if errors else 200)

    async def create_repo(self, request: Request) -> Response:
        self.require_auth(request)
        body = await json_body(request)
        rtype = REPO_TYPES.get(body.get("type") or "model")
        name, org = body.get("name") or "", body.get("organization") or self.user
        if rtype is None or not NAME_RE.match(name) or not NAME_RE.match(org):
            raise HubError(400, f"Invalid repo name or type: {org}/{name} ({body.get('type')})")
        if rtype == "spaces" and not body.get("sdk"):
            raise HubError(400, "Missing sdk for a Space (gradio, docker or static)")
        repo = self.repo(rtype, org, name, request, must_exist=False)
        url = self.repo_url(request, repo)
        private = body.get("visibility", "private" if body.get("private") else "public") != "public"
        meta = {"private": private, "created_by": self.user}
        if rtype == "spaces":
            meta["sdk"] = body["sdk"]
        if not await run_in_threadpool(self._init_repo, repo, meta):
            return JSONResponse({"error": f"You already created this {rtype[:-1]} repo", "url": url},
                                status_code=409)
        return JSONResponse({"url": url, "name": repo.repo_id, "id": repo.repo_id})

    def _init_repo(self, repo: GitRepo, meta: dict) -> bool:
        """Create the repository; False when it exists already."""
        with repo.lock:
            if repo.exists():
                return False
            try:
                repo.init(self.user, meta)
            except BaseException:
                shutil.rmtree(repo.path, ignore_errors=True)
                raise
            return True

    async def delete_repo(self, request: Request) -> Response:
        self.require_auth(request)
        body = await json_body(request)
        rtype = REPO_TYPES.get(body.get("type") or "model")
        if rtype is None:
            raise HubError(400, f"Invalid repo type: {body.get('type')}")
        repo = self.repo(rtype, body.get("organization") or self.user, body.get("name") or "", request)

        def delete() -> None:
            with repo.lock:
                shutil.rmtree(repo.path)

        await run_in_threadpool(delete)
        return Response()

    async def settings(self, request: Request, repo: GitRepo) -> Response:
        self.require_auth(request)
        body = await json_body(request)
        meta = repo.meta
        if "visibility" in body:
            meta["private"] = body["visibility"] != "public"
        if "private" in body:
            meta["private"] = bool(body["private"])
        if "gated" in body:
            meta["gated"] = body["gated"]
        repo.save_meta(meta)
        return JSONResponse({"private": meta.get("private", False), "gated": meta.get("gated", False)})

    # -- /api/{type}s/{org}/{name}/... -------------------------------------------------------
    async def api_repo(self, request: Request, rtype: str, org: str, name: str, rest: str) -> Response:
        repo = self.repo(rtype, org, name, request)
        base = f"/api/{rtype}/{repo.repo_id}"
        kind, _, arg = rest.partition("/")
        method = request.method
        if kind == "" and method in ("GET", "HEAD"):
            # olah 0.5.4 offline answers 401 for the revision-less info route: ask for the
            # default branch instead.
            return await self.repo_info(request, repo, "main")
        if kind == "revision" and method in ("GET", "HEAD"):
            return await self.repo_info(request, repo, arg)
        if kind == "tree" and method in ("GET", "HEAD"):
            rev, _, path = arg.partition("/")
            sha = self.revision(repo, rev)
            if repo.object_type(sha, unquote(path)) != "tree":
                raise HubError(404, f"Entry not found: {unquote(path)}", "EntryNotFound")
            # olah redirects ".../tree/REV" to ".../tree/REV/" (to its own address): go there directly.
            return await self.forward(request, f"{base}/tree/{sha}/{path}")
        if kind in ("paths-info", "commits") and method in ("GET", "HEAD", "POST"):
            sha = self.revision(repo, arg)
            response = await self.forward(request, f"{base}/{kind}/{sha}", buffer=kind == "commits")
            return self.fix_commits(response) if kind == "commits" else response
        if kind == "refs" and method == "GET":
            return await self.forward(request, f"{base}/refs")
        if kind == "preupload" and method == "POST":
            return await self.preupload(request, repo, arg)
        if kind == "commit" and method == "POST":
            return await self.commit(request, repo, arg)
        if kind == "settings" and method == "PUT":
            return await self.settings(request, repo)
        raise HubError(404, f"Not implemented by the local test hub: {method} {base}/{rest}")

    async def repo_info(self, request: Request, repo: GitRepo, revision: str) -> Response:
        sha = self.revision(repo, revision)
        response = await self.forward(request, f"/api/{repo.rtype}/{repo.repo_id}/revision/{sha}", buffer=True)
        if response.status_code != 200 or request.method == "HEAD":
            return response
        info = json.loads(response.body)
        meta = repo.meta
        info.update(private=meta.get("private", False), gated=meta.get("gated", False))
        if repo.rtype == "spaces":
            info.setdefault("sdk", meta.get("sdk"))
        if request.query_params.get("blobs") in ("1", "true", "True"):
            # model_info(files_metadata=True): olah only lists names; add sizes, blob ids and LFS info.
            siblings = []
            for path, (_mode, blob, size) in sorted(repo.ls_tree(sha).items()):
                entry = {"rfilename": path, "size": size, "blobId": blob}
                if lfs := repo.lfs_info(blob, size):
                    entry["size"] = lfs[1]
                    entry["lfs"] = {"sha256": lfs[0], "size": lfs[1], "pointerSize": size}
                siblings.append(entry)
            info["siblings"] = siblings
        return JSONResponse(info)

    @staticmethod
    def fix_commits(response: Response) -> Response:
        """olah puts the whole git message into "title" and names authors "name": answer like the
        Hub (title + message, authors[].user)."""
        if response.status_code != 200:
            return response
        commits = json.loads(response.body)
        for c in commits:
            title, _, body = (c.get("title") or "").partition("\n")
            c["title"], c["message"] = title, body.strip()
            c["authors"] = [{"user": a.get("user") or a.get("name"), "avatar": a.get("avatar")}
                            for a in c.get("authors", [])]
        return JSONResponse(commits)

    # -- downloads ----------------------------------------------------------------------------
    async def resolve_file(self, request: Request, rtype: str, org: str, name: str, rev: str, path: str) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise HubError(405, "Method not allowed")
        repo = self.repo(rtype, org, name, request)
        sha = self.revision(repo, rev)
        if repo.object_type(sha, unquote(path)) != "blob":
            # olah 0.5.4 answers 401 (HEAD) or 500 (GET) for a missing file of an existing repo.
            raise HubError(404, "Entry not found", "EntryNotFound")
        # Pin the resolved commit so the check above and olah agree (and refs with "/" work).
        return await self.forward(request, f"/{URL_PREFIX[rtype]}{repo.repo_id}/resolve/{sha}/{path}")

    # -- uploads ------------------------------------------------------------------------------
    async def preupload(self, request: Request, repo: GitRepo, rev: str) -> Response:
        self.require_auth(request)
        if request.query_params.get("create_pr"):
            raise HubError(400, "Pull requests are not supported by the local test hub")
        sha = self.revision(repo, rev)
        body = await json_body(request)
        files, patterns = repo.ls_tree(sha), repo.lfs_patterns(sha)
        answer = []
        for item in body.get("files", []):
            path = check_path(item.get("path"))
            size = int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample") or "")
            lfs = size > 0 and (
                size >= self.lfs_threshold
                or is_binary(sample)
                or any(fnmatch.fnmatch(path if "/" in p else path.rsplit("/", 1)[-1], p) for p in patterns)
            )
            oid = None
            if path in files:  # lets the client skip files that did not change
                _mode, blob, blob_size = files[path]
                lfs_info = repo.lfs_info(blob, blob_size)
                oid = lfs_info[0] if lfs_info else blob
            answer.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return JSONResponse({"files": answer, "commitOid": sha})

    def upload_signature(self, repo: GitRepo, oid: str, size: int) -> str:
        msg = f"{repo.rtype}/{repo.repo_id}/{oid}/{size}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    async def lfs_batch(self, request: Request, rtype: str, org: str, name: str) -> Response:
        self.require_auth(request)
        repo = self.repo(rtype, org, name, request)
        body = await json_body(request)
        if body.get("operation") != "upload":
            raise HubError(400, "Only LFS uploads are supported; downloads go through /resolve/")
        base = str(request.base_url).rstrip("/")
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj.get("oid"), obj.get("size")
            if not (isinstance(oid, str) and OID_RE.match(oid) and isinstance(size, int) and size >= 0):
                objects.append({"oid": str(oid), "size": size if isinstance(size, int) else 0,
                                "error": {"code": 422, "message": "Invalid oid or size"}})
                continue
            stored = repo.lfs_path(oid)
            if stored.is_file() and stored.stat().st_size == size:
                objects.append({"oid": oid, "size": size})  # already there: no actions, no upload
                continue
            sig = self.upload_signature(repo, oid, size)
            objects.append({
                "oid": oid, "size": size, "authenticated": True,
                "actions": {
                    # Like the Hub's pre-signed storage URL: the client PUTs here without auth.
                    "upload": {"href": f"{base}/_lfs/upload/{repo.rtype}/{repo.repo_id}/{oid}?size={size}&sig={sig}",
                               "expires_in": 3600},
                    "verify": {"href": f"{base}/_lfs/verify/{repo.rtype}/{repo.repo_id}", "expires_in": 3600},
                },
            })
        return JSONResponse({"transfer": "basic", "objects": objects}, media_type="application/vnd.git-lfs+json")

    async def lfs_upload(self, request: Request, action: str, rtype: str, org: str, name: str,
                         oid: str | None) -> Response:
        if action == "verify":
            self.require_auth(request)
            repo = self.repo(rtype, org, name, request)
            body = await json_body(request)
            oid = str(body.get("oid"))
            if not (OID_RE.match(oid) and repo.lfs_path(oid).is_file()
                    and repo.lfs_path(oid).stat().st_size == body.get("size")):
                raise HubError(404, "LFS object not found")
            return JSONResponse({"oid": body["oid"], "size": body["size"]})
        if request.method != "PUT" or oid is None:
            raise HubError(405, "Method not allowed")
        repo = self.repo(rtype, org, name, request, must_exist=False)
        if not repo.exists():
            raise repo_not_found()
        size = int(request.query_params.get("size", "-1")) if request.query_params.get("size", "").isdigit() else -1
        if not hmac.compare_digest(request.query_params.get("sig", ""), self.upload_signature(repo, oid, size)):
            raise HubError(403, "Invalid or missing upload signature")
        # Stream to a temporary file next to the objects, then check size and sha256 before
        # moving it into place: an object stored under its oid is always correct.
        tmp_dir = repo.git_dir / "lfs" / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir)
        digest, written = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in request.stream():
                    digest.update(chunk)
                    f.write(chunk)
                    written += len(chunk)
            if written != size or digest.hexdigest() != oid:
                raise HubError(400, f"Uploaded content does not match the LFS object: expected sha256 {oid} and "
                                    f"{size} bytes, got {digest.hexdigest()} and {written} bytes")
            target = repo.lfs_path(oid)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return Response(status_code=200, headers={"ETag": f'"{oid}"'})

    async def commit(self, request: Request, repo: GitRepo, rev: str) -> Response:
        self.require_auth(request)
        if request.query_params.get("create_pr"):
            raise HubError(400, "Pull requests are not supported by the local test hub")
        branch = unquote(rev)
        try:
            lines = [json.loads(line) for line in (await request.body()).splitlines() if line.strip()]
        except ValueError as exc:
            raise HubError(400, f"Invalid NDJSON commit payload: {exc}") from None
        header = next((item["value"] for item in lines if item.get("key") == "header"), None)
        if header is None or not header.get("summary"):
            raise HubError(400, "Missing commit header or summary")
        message = header["summary"].strip() + "\n"
        if (header.get("description") or "").strip():
            message += "\n" + header["description"].strip() + "\n"

        ops, readme = [], None
        for item in lines:
            key, value = item.get("key"), item.get("value") or {}
            if key == "header":
                continue
            path = check_path(value.get("path", "").rstrip("/") if key == "deletedFolder" else value.get("path"))
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
                data = base64.b64decode(value.get("content", ""))
                ops.append(("add", path, data))
                readme = data if path == "README.md" else readme
            elif key == "lfsFile":
                oid = str(value.get("oid", ""))
                stored = repo.lfs_path(oid)
                if not (OID_RE.match(oid) and stored.is_file()):
                    raise HubError(400, f"LFS object {oid} for {path} was not uploaded")
                size = stored.stat().st_size
                if value.get("size") is not None and int(value["size"]) != size:
                    raise HubError(400, f"LFS object {oid} has {size} bytes, not {value['size']}")
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"
                ops.append(("add", path, pointer.encode()))
                readme = stored.read_bytes() if path == "README.md" else readme
            elif key == "deletedFile":
                ops.append(("delete", path))
            elif key == "deletedFolder":
                ops.append(("delete_folder", path))
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        if readme is not None:
            errors = validate_readme(readme.decode("utf-8", errors="replace"))
            if errors:
                raise HubError(400, "Invalid metadata in README.md.\n" + "\n".join(f"- {e}" for e in errors))

        def write() -> str:
            blobs = [(op[0], op[1], repo.write_blob(op[2])) if op[0] == "add" else op for op in ops]
            return repo.commit(branch, blobs, message, self.user, parent=header.get("parentCommit"))

        sha = await run_in_threadpool(write)
        return JSONResponse({
            "success": True, "commitOid": sha, "commitMessage": message.strip(),
            "commitUrl": f"{self.repo_url(request, repo)}/commit/{sha}", "hookOutput": "", "pullRequestUrl": None,
        })

    # -- pass-through ---------------------------------------------------------------------------
    async def forward(self, request: Request, path: str, buffer: bool = False) -> Response:
        """Send the request to olah at `path` (raw, percent-encoded) and relay the answer."""
        url = self.olah_url + path + (f"?{request.url.query}" if request.url.query else "")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS]
        body = await request.body() if request.method in ("POST", "PUT") else None
        upstream = await self.client.send(
            self.client.build_request(request.method, url, headers=headers, content=body), stream=True)
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS - {"content-length"}}
        if "location" in out_headers and out_headers["location"].startswith(self.olah_url):
            # Never send the client to olah directly.
            out_headers["location"] = str(request.base_url).rstrip("/") + out_headers["location"][len(self.olah_url):]
        if buffer:
            content = await upstream.aread()
            await upstream.aclose()
            out_headers.pop("content-length", None)
            out_headers.pop("content-encoding", None)
            return Response(content, status_code=upstream.status_code, headers=out_headers)
        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=out_headers,
                                 background=BackgroundTask(upstream.aclose))


# --------------------------------------------------------------------------------------------
# Launching olah and the proxy
# --------------------------------------------------------------------------------------------


def olah_python() -> str:
    """The interpreter that runs olah: $TLHUB_OLAH_PYTHON, else the small venv of its own that
    the setup script makes at the repository root (.venv-olah, see README.md), else this one."""
    if os.environ.get("TLHUB_OLAH_PYTHON"):
        return os.environ["TLHUB_OLAH_PYTHON"]
    own_venv = Path(__file__).resolve().parents[2] / ".venv-olah" / "bin" / "python"
    return str(own_venv) if own_venv.exists() else sys.executable


def has_olah(python: str) -> bool:
    """Whether `python` can find the olah package (cheap: importing olah takes seconds)."""
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('olah') is None)"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def clean_env(**extra: str) -> dict:
    """Environment for child processes: no HTTP proxies, loopback never proxied."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", HF_HUB_DISABLE_TELEMETRY="1",
               **extra)
    return env


def start_olah(root: Path, workdir: Path, port: int, public_netloc: str, upstream_port: int,
               python: str | None = None) -> subprocess.Popen:
    """Start olah serving the git repositories under `root` (offline, loopback only)."""
    python = python or olah_python()
    if not has_olah(python):
        raise RuntimeError(f"olah is not installed for {python}. Install it (pip install olah==0.5.4), "
                           f"or point TLHUB_OLAH_PYTHON at a Python that has it (see README.md).")
    workdir.mkdir(parents=True, exist_ok=True)
    upstream = f"{HOST}:{upstream_port}"  # refuses connections: olah's upstream calls fail fast, locally
    config = workdir / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "{HOST}"\nport = {port}\n'
        f'repos-path = "{workdir / "cache"}"\n'
        f'hf-scheme = "http"\nhf-netloc = "{upstream}"\nhf-lfs-netloc = "{upstream}"\n'
        f'mirror-scheme = "http"\nmirror-netloc = "{public_netloc}"\nmirror-lfs-netloc = "{public_netloc}"\n'
        f"mirrors-path = [{json.dumps(str(root))}]\n"
        "xet-passthrough = false\n"
        "[accessibility]\noffline = true\n"
    )
    log = open(workdir / "olah.log", "ab")
    return subprocess.Popen(
        [python, "-m", "olah.server", "--config", str(config), "--log-path", str(workdir / "logs")],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=False,
    )


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 30, ok=lambda status: True) -> None:
    """Wait until `url` answers over HTTP (with a status that `ok` accepts)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process for {url} exited with code {proc.returncode}")
            try:
                if ok(client.get(url, timeout=5).status_code):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, type=Path, help="folder of the git repositories")
    parser.add_argument("--port", type=int, default=0, help="port of the hub (0: a free one)")
    parser.add_argument("--token", required=True, help="the token that writes need (Authorization: Bearer)")
    parser.add_argument("--user", default=DEFAULT_USER, help="user name (whoami, default namespace)")
    parser.add_argument("--workdir", type=Path, help="olah config, cache and logs (default: a temporary folder)")
    parser.add_argument("--olah-port", type=int, default=0)
    parser.add_argument("--lfs-threshold", type=int, default=DEFAULT_LFS_THRESHOLD)
    args = parser.parse_args(argv)

    import uvicorn

    args.root.mkdir(parents=True, exist_ok=True)
    for rtype in REPO_TYPES.values():
        (args.root / rtype).mkdir(exist_ok=True)
    port = args.port or free_port()
    olah_port = args.olah_port or free_port()
    upstream_sock, upstream_port = dead_port()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tlhub-olah-"))
    olah = start_olah(args.root.resolve(), workdir, olah_port, f"{HOST}:{port}", upstream_port)

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        wait_http(f"http://{HOST}:{olah_port}/api/whoami-v2", olah)
        proxy = HubProxy(args.root.resolve(), f"http://{HOST}:{olah_port}", args.token, args.user, args.lfs_threshold)
        print(f"local hub: http://{HOST}:{port} (olah on {olah_port}, repos in {args.root})", flush=True)
        uvicorn.run(proxy.app, host=HOST, port=port, log_level="warning", timeout_graceful_shutdown=3)
    finally:
        olah.terminate()
        try:
            olah.wait(10)
        except subprocess.TimeoutExpired:
            olah.kill()
        upstream_sock.close()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
