"""Publishing a saved model (and its Gradio Space) to the Hugging Face Hub.

``push_model(MODEL_DIR, "user/name", space=True)`` creates or updates

- the model repo: the backbone library's native files (so ``timm.create_model("hf-hub:user/name",
  pretrained=True)`` or ``transformers.pipeline(model="user/name")`` work without tlhub), tlhub's
  training record, evaluation and log, the plots under ``images/``, the validation examples, and a
  model card (``README.md``) generated from those files;
- optionally the Space ``user/name-demo`` (see :mod:`tlhub.publishing.spaces`), whose ``models:`` lists the
  model repo, while the model card links to the Space.

Each repo gets exactly ONE commit (``HfApi.create_commit`` with all operations, its parent pinned
to the head that was compared against), so a push that fails or is interrupted leaves the repo as
it was; running the same command again finishes the job (LFS files already uploaded are not sent
again). Only the files that differ from the repo's head are sent, and the commit message says
which. The endpoint comes from ``HF_ENDPOINT``, the token from huggingface_hub's usual sources
(``HF_TOKEN``, ``hf auth login``); the token is never written to a file, a card or a log, and
tlhub refuses to push a file that contains it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from tlhub.publishing.card import REPO_ID_RE, SavedModel, _fmt, build_model_card, metric_spec, read_saved_model, validate_card
from tlhub.hashing import git_blob_id, sha256_of
from tlhub.errors import PublishError
from tlhub.core.saving import RECORD_FILE

logger = logging.getLogger("tlhub.publishing.push")

#: never pushed from a model folder: temporary and hidden files, training checkpoints
EXCLUDE_DIRS = ("checkpoints", "__pycache__")
EXCLUDE_SUFFIXES = (".tmp", ".lock", ".pyc", ".incomplete")
#: remote files tlhub owns: removed from the repo when they are gone from the folder (stale
#: weight shards would break loading); other remote files (added by hand) are kept
MANAGED_PREFIXES = ("images/", "examples/")
MANAGED_SUFFIXES = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")
#: files of a Space that tlhub writes (others, e.g. added by hand on the Hub, are kept)
SPACE_MANAGED = ("app.py", "requirements.txt", "README.md")


@dataclass
class RepoPush:
    """The outcome of pushing one repo."""

    repo_id: str
    repo_type: str
    url: str
    commit_message: str
    commit_oid: str | None = None
    commit_url: str | None = None
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    created: bool = False
    private: bool | None = None

    @property
    def up_to_date(self) -> bool:
        return not (self.added or self.changed or self.deleted)


@dataclass
class PushResult:
    model: RepoPush
    space: RepoPush | None = None
    card: str = ""


# --------------------------------------------------------------------------------------------
# helpers


def model_files(model_dir: str | Path) -> dict[str, Path]:
    """Repo path -> local file for everything in ``model_dir`` that is pushed (README.md is generated)."""
    root = Path(model_dir)
    out: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if rel.parts[0] in EXCLUDE_DIRS or p.suffix in EXCLUDE_SUFFIXES or rel.as_posix() == "README.md":
            continue
        out[rel.as_posix()] = p
    return out


def _endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _token(token: str | None, *, required: bool = True) -> str | None:
    """The token to push with; ``None`` when there is none and none is ``required`` (a dry run)."""
    if token:
        return token
    from huggingface_hub import get_token

    found = get_token()
    if not found and required:
        raise PublishError("no Hugging Face token: pushing needs one with write access",
                           fix="run `hf auth login`, or set HF_TOKEN to a write token (a --dry-run needs none)")
    return found or None


def _check_no_token(files: dict[str, Path | bytes], token: str | None, where: str) -> None:
    """Refuse to upload anything that contains the token (e.g. a config that recorded it)."""
    if not token:  # a dry run without a token: there is nothing to leak
        return
    needle = token.encode()
    if len(needle) < 8:
        return
    for name, source in files.items():
        if isinstance(source, bytes):
            found = needle in source
        else:
            found = False
            with open(source, "rb") as f:
                tail = b""
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    if needle in tail + chunk:
                        found = True
                        break
                    tail = chunk[-len(needle) :]
        if found:
            raise PublishError(f"{where}/{name} contains your Hugging Face token, so it was not pushed",
                               fix="remove the token from that file (never put tokens in configs; use HF_TOKEN or `hf auth login`)")


def _http_error(exc: Exception, repo_id: str, repo_type: str, action: str) -> PublishError:
    from huggingface_hub import errors as hf_errors

    if isinstance(exc, PublishError):  # already explained (a network failure after its retries)
        return exc
    kind = "Space" if repo_type == "space" else "model repo"
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return PublishError(f"{action} {kind} {repo_id} failed: offline mode is on (HF_HUB_OFFLINE), and pushing needs the Hub",
                            fix="unset HF_HUB_OFFLINE for this command: a push, and a --dry-run comparing with the repo, need the Hub")
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, hf_errors.RepositoryNotFoundError) or status == 404:
        return PublishError(f"{action} {kind} {repo_id} failed: not found, or not visible to this token",
                            fix="check the repo id and that your token can write to that namespace")
    if status == 401:
        return PublishError(f"{action} {kind} {repo_id} failed: the token was rejected (401)",
                            fix="log in again with `hf auth login`, or set HF_TOKEN to a valid write token")
    if status == 403:
        return PublishError(f"{action} {kind} {repo_id} failed: this token may not write there (403)",
                            fix="use a token with write access to that user or organisation")
    if status in (409, 412) or "parent commit" in str(exc).lower():
        return PublishError(f"{action} {kind} {repo_id} failed: the repo changed while tlhub was pushing",
                            fix="run the same command again: it compares against the new head")
    if isinstance(exc, hf_errors.HfHubHTTPError):
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return PublishError(f"{action} {kind} {repo_id} failed: {first}",
                            fix="run the same command again; nothing is committed until every file is uploaded")
    return PublishError(f"{action} {kind} {repo_id} failed: {type(exc).__name__}: {exc}",
                        fix="check your connection and HF_ENDPOINT, then run the same command again (the repo is unchanged)")


# --------------------------------------------------------------------------------------------
# the network: every request bounded in time, transient failures retried a bounded number of times

#: seconds a request may go without an answer (connect, send, wait for the reply) before it fails;
#: huggingface_hub's own HF_HUB_DOWNLOAD_TIMEOUT, when set, and ``--timeout`` override it
DEFAULT_TIMEOUT = 60.0
#: attempts of each Hub call before giving up, waiting RETRY_WAIT * 2**n seconds in between
ATTEMPTS = 3
RETRY_WAIT = 1.0
#: a call that takes longer than this says it is still waiting, every HEARTBEAT seconds
HEARTBEAT = 15.0


def resolve_timeout(timeout: float | None) -> float:
    """``timeout``, else ``HF_HUB_DOWNLOAD_TIMEOUT`` when the user set it, else DEFAULT_TIMEOUT."""
    if timeout is None:
        from huggingface_hub import constants

        timeout = constants.HF_HUB_DOWNLOAD_TIMEOUT if os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT") else DEFAULT_TIMEOUT
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        timeout = -1.0
    if not timeout > 0:
        raise PublishError(f"timeout {timeout!r} is not a positive number of seconds", fix="use e.g. --timeout 60")
    return timeout


def _bounded_timeouts(seconds: float):
    """huggingface_hub sends many requests with ``timeout=None`` (wait forever) on a client made
    with ``timeout=None``. A transport under the client fills every unset timeout with ``seconds``."""
    import httpx2

    class BoundedTimeouts(httpx2.BaseTransport):
        def __init__(self, inner):
            self.inner = inner

        def handle_request(self, request):
            limits = dict(request.extensions.get("timeout") or {})
            for phase in ("connect", "read", "write", "pool"):
                if limits.get(phase) is None:
                    limits[phase] = seconds
            request.extensions = {**request.extensions, "timeout": limits}
            return self.inner.handle_request(request)

        def close(self):
            self.inner.close()

    return BoundedTimeouts


def _with_timeouts(push):
    """Run ``push`` with huggingface_hub's shared HTTP client bounded by the timeout: its client
    factory (``set_client_factory``) is wrapped for the call and restored afterwards, keeping
    whatever the user configured there (proxies, certificates)."""
    import functools

    @functools.wraps(push)
    def bounded(*args, timeout: float | None = None, **kwargs):
        from huggingface_hub.utils import _http, set_client_factory

        seconds = resolve_timeout(timeout)
        previous = _http._GLOBAL_CLIENT_FACTORY  # no public getter; restored below
        transport = _bounded_timeouts(seconds)

        def factory():
            client = previous()
            client._transport = transport(client._transport)  # and the proxy transports, if any
            client._mounts = {k: (transport(v) if v is not None else None) for k, v in client._mounts.items()}
            return client

        set_client_factory(factory)
        try:
            return push(*args, timeout=seconds, **kwargs)
        finally:
            set_client_factory(previous)

    return bounded


class _Network:
    """Calls to one Hub endpoint: retried with backoff when the failure is transient (timeouts,
    dropped connections, 429/5xx), reported while they wait, and turned into a PublishError that
    names the endpoint when they keep failing."""

    def __init__(self, endpoint: str, timeout: float, progress: Callable[[str], None]):
        self.endpoint, self.timeout, self.progress = endpoint, timeout, progress

    @staticmethod
    def transient(exc: BaseException) -> bool:
        import httpx2

        if isinstance(exc, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)):
            return True
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return status in (408, 429, 500, 502, 503, 504)

    def call(self, what: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
        import threading
        import time

        for attempt in range(1, ATTEMPTS + 1):
            done = threading.Event()
            started = time.monotonic()

            def heartbeat():
                while not done.wait(HEARTBEAT):
                    self.progress(f"  still {what} on {self.endpoint} ({time.monotonic() - started:.0f} s)")

            beat = threading.Thread(target=heartbeat, daemon=True)
            beat.start()
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not self.transient(exc):
                    raise
                reason = _network_reason(exc, self.timeout)
                if attempt == ATTEMPTS:
                    raise PublishError(
                        f"{what} failed: {self.endpoint} {reason} ({ATTEMPTS} attempts)",
                        fix=f"check your connection and that HF_ENDPOINT ({self.endpoint}) is the Hub you mean; on a slow "
                        "link raise --timeout (or HF_HUB_DOWNLOAD_TIMEOUT); then run the same command again "
                        "(nothing is committed until every file is uploaded)",
                    ) from None
                wait = RETRY_WAIT * 2 ** (attempt - 1)
                self.progress(f"  {self.endpoint} {reason} while {what}; retrying in {wait:g} s (attempt {attempt + 1} of {ATTEMPTS})")
                time.sleep(wait)
            finally:
                done.set()
        raise AssertionError("unreachable")  # the loop returns or raises


def _network_reason(exc: BaseException, timeout: float) -> str:
    import httpx2

    if isinstance(exc, httpx2.ConnectTimeout):
        return f"could not be connected to within {timeout:g} s"
    if isinstance(exc, httpx2.TimeoutException):
        return f"did not answer within {timeout:g} s"
    if isinstance(exc, httpx2.ConnectError):
        return f"could not be reached ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'connection refused'})"
    if isinstance(exc, (httpx2.NetworkError, httpx2.RemoteProtocolError)):
        return f"dropped the connection ({type(exc).__name__})"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"answered HTTP {status}"


def _remote_state(api, repo_id: str, repo_type: str) -> tuple[str | None, dict[str, Any]]:
    """``(head commit, {path: RepoSibling})`` of an existing repo."""
    info = api.repo_info(repo_id, repo_type=repo_type, files_metadata=True)
    return info.sha, {s.rfilename: s for s in (info.siblings or [])}


def _diff(local: dict[str, Path | bytes], remote: dict[str, Any], managed: Callable[[str], bool]):
    added, changed, unchanged = [], [], []
    for path, source in local.items():
        sibling = remote.get(path)
        if sibling is None:
            added.append(path)
            continue
        if sibling.lfs is not None:
            sha = sibling.lfs.get("sha256") if isinstance(sibling.lfs, dict) else getattr(sibling.lfs, "sha256", None)
            same = sha == sha256_of(source)
        else:
            same = sibling.blob_id == git_blob_id(source)
        (unchanged if same else changed).append(path)
    added, changed, unchanged = sorted(added), sorted(changed), sorted(unchanged)
    stale = sorted(p for p in remote if p not in local and p != ".gitattributes")
    deleted = [p for p in stale if managed(p)]
    kept = [p for p in stale if not managed(p)]
    return added, changed, unchanged, deleted, kept


def _summarise(paths: Sequence[str], limit: int = 4) -> str:
    paths = list(paths)
    return ", ".join(paths[:limit]) + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def headline_text(saved: SavedModel) -> str:
    """``accuracy 0.89 on fashion-mnist test`` (from eval_results.json), or ``""``."""
    head = saved.headline
    if not head:
        return ""
    key, value = head
    where = f"{saved.dataset_name} {saved.eval_split}" if saved.eval_split else saved.dataset_name
    return f"{metric_spec(key)[1].lower()} {_fmt(round(value, 4) if isinstance(value, float) else value)} on {where}"


def _describe_changes(added, changed, deleted) -> str:
    parts = []
    if changed:
        parts.append(f"changed {_summarise(changed)}")
    if added:
        parts.append(f"added {_summarise(added)}")
    if deleted:
        parts.append(f"removed {_summarise(deleted)}")
    return "; ".join(parts)


def _commit_description(added, changed, deleted, kept, sizes: dict[str, int]) -> str:
    from tlhub import __version__

    lines = []
    for title, paths in (("Added", added), ("Changed", changed), ("Removed", deleted)):
        if paths:
            lines.append(f"{title}:")
            lines += [f"- {p}" + (f" ({sizes[p]:,} bytes)" if p in sizes else "") for p in paths]
    if kept:
        lines.append("Kept (in the repo but not in the local folder): " + ", ".join(kept))
    lines.append(f"\nPushed with tlhub {__version__}.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# one repo


def _push_repo(
    api,
    repo_id: str,
    repo_type: str,
    files: dict[str, Path | bytes],
    *,
    token: str,
    private: bool | None,
    title_new: str,
    title_update: Callable[[str], str],
    message: str | None,
    managed: Callable[[str], bool],
    first_marker: str,
    space_sdk: str | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda s: None,
    net: "_Network",
) -> RepoPush:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub import errors as hf_errors

    _check_no_token(files, token, "the upload")
    kind = "Space" if repo_type == "space" else "model repo"
    url_prefix = f"{api.endpoint}/spaces/" if repo_type == "space" else f"{api.endpoint}/"
    result = RepoPush(repo_id=repo_id, repo_type=repo_type, url=url_prefix + repo_id, commit_message="")

    # the repo: create it, or read its head
    head, remote, exists = None, {}, True
    try:
        head, remote = net.call(f"reading {kind} {repo_id}", _remote_state, api, repo_id, repo_type)
    except hf_errors.RepositoryNotFoundError:
        exists = False
    except Exception as exc:  # connection refused, 401...
        raise _http_error(exc, repo_id, repo_type, "reading") from None
    if not exists:
        if dry_run:
            result.created = True
        else:
            try:
                net.call(f"creating {kind} {repo_id}", api.create_repo, repo_id, repo_type=repo_type, private=bool(private),
                         exist_ok=True, space_sdk=space_sdk)
                head, remote = net.call(f"reading {kind} {repo_id}", _remote_state, api, repo_id, repo_type)
            except Exception as exc:
                raise _http_error(exc, repo_id, repo_type, "creating") from None
            result.created = True
            progress(f"created {'private ' if private else ''}{kind} {result.url}")
    elif private:
        try:
            info = net.call(f"reading {kind} {repo_id}", api.repo_info, repo_id, repo_type=repo_type)
            if not info.private and not dry_run:
                net.call(f"updating {kind} {repo_id}", api.update_repo_settings, repo_id, repo_type=repo_type, private=True)
                progress(f"made {kind} {repo_id} private")
        except Exception as exc:
            raise _http_error(exc, repo_id, repo_type, "updating the settings of") from None
    result.private = private

    added, changed, unchanged, deleted, kept = _diff(files, remote, managed)
    result.added, result.changed, result.unchanged, result.deleted, result.kept = added, changed, unchanged, deleted, kept
    if first_marker not in remote:  # nothing of ours there yet (an empty repo, or one made by hand)
        title = title_new
    else:
        title = title_update(_describe_changes(added, changed, deleted))
    if message:
        title = message
    result.commit_message = title
    if result.up_to_date:
        result.commit_oid = head
        progress(f"{kind} {repo_id} is already up to date ({len(unchanged)} files unchanged)")
        return result
    if dry_run:
        progress(f"would commit to {kind} {repo_id}: {title}")
        return result

    sizes = {p: (len(s) if isinstance(s, bytes) else s.stat().st_size) for p, s in files.items()}
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=files[p]) for p in added + changed]
    operations += [CommitOperationDelete(path_in_repo=p) for p in deleted]
    progress(f"uploading {len(added) + len(changed)} file(s) to {kind} {repo_id} in one commit ({sum(sizes[p] for p in added + changed):,} bytes)")
    try:
        info = net.call(
            f"uploading to {kind} {repo_id}",
            api.create_commit,
            repo_id,
            operations,
            commit_message=title,
            commit_description=_commit_description(added, changed, deleted, kept, sizes),
            repo_type=repo_type,
            parent_commit=head,
        )
    except (Exception, KeyboardInterrupt) as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise PublishError(f"push to {kind} {repo_id} interrupted before its commit: the repo is unchanged",
                               fix="run the same command again to finish it") from None
        raise _http_error(exc, repo_id, repo_type, "pushing to") from None
    result.commit_oid = info.oid
    result.commit_url = info.commit_url
    progress(f"committed {str(info.oid)[:12]} to {result.url}: {title}")
    return result


def _linked_space(api, repo_id: str) -> str | None:
    """``USER/NAME-demo`` when that Space exists and lists ``repo_id`` in its ``models:``."""
    candidate = f"{repo_id}-demo"
    try:
        from huggingface_hub.repocard import metadata_load

        if not api.repo_exists(candidate, repo_type="space"):  # fails fast (no retries) when offline
            return None
        readme = api.hf_hub_download(repo_id=candidate, filename="README.md", repo_type="space")
        models = (metadata_load(readme) or {}).get("models") or []
    except Exception:  # no such Space (or unreadable): no link
        return None
    return candidate if repo_id in models else None


# --------------------------------------------------------------------------------------------
# the public API


@_with_timeouts
def push_model(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    space: bool = False,
    space_id: str | None = None,
    message: str | None = None,
    license: str | None = None,
    examples: Sequence[str | Path] | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> PushResult:
    """Push ``model_dir`` to ``repo_id`` (and, with ``space``, its demo Space). See the module doc.

    ``timeout``: seconds any request may wait for the Hub (default: HF_HUB_DOWNLOAD_TIMEOUT when
    set, else DEFAULT_TIMEOUT); each call is tried ATTEMPTS times, with backoff, before a
    PublishError that names the endpoint."""
    from huggingface_hub import HfApi

    from tlhub import __version__

    progress = progress or (lambda s: logger.info(s))
    saved = read_saved_model(model_dir)
    for rid, what in ((repo_id, "--repo-id"), (space_id, "--space-id")):
        if rid is not None and not REPO_ID_RE.match(rid):
            raise PublishError(f"{what} {rid!r} is not a Hub repo id", fix="use USER/NAME, e.g. alice/lite0-fashion")
    push_space = bool(space or space_id)
    space_id = space_id or (f"{repo_id}-demo" if push_space else None)
    if space_id == repo_id:
        raise PublishError("the Space and the model repo have the same id", fix="give the Space another name with --space-id")
    base = _endpoint(endpoint)
    # A dry run reads the repos (to show what would change) but writes nothing: no token needed.
    the_token = _token(token, required=not dry_run)
    if the_token is None:
        progress("no Hugging Face token: the dry run compares with what anyone can see (a private repo would look new)")
    # token=False: anonymous, rather than huggingface_hub looking for a token again
    api = HfApi(endpoint=base, token=the_token or False, library_name="tlhub", library_version=__version__)
    net = _Network(base, timeout, progress)  # timeout: resolved to seconds by @_with_timeouts

    if not space_id:
        space_id = _linked_space(api, repo_id)  # keep the card's link to a demo pushed earlier
        if space_id:
            progress(f"the model card keeps its link to the Space {space_id} (pushed earlier; not updated now)")

    if not (license or saved.license):
        progress("licence unknown: the card says `license: unknown`; pass --license (e.g. apache-2.0) to set it")

    # -- model repo
    card = build_model_card(saved, repo_id, space_id=space_id, endpoint=base, license=license)
    card_text = str(card)
    problems = validate_card(card_text, model_dir=saved.path)
    if problems:
        raise PublishError("the generated model card is invalid: " + "; ".join(problems), fix="report this as a tlhub bug")
    files: dict[str, Path | bytes] = dict(model_files(saved.path))
    files["README.md"] = card_text.encode("utf-8")
    head = headline_text(saved)
    what = f"fine-tuned {saved.short_name}"
    suffix = f" ({head})" if head else ""

    def managed_model(path: str) -> bool:
        return path.startswith(MANAGED_PREFIXES) or path.endswith(MANAGED_SUFFIXES)

    model_push = _push_repo(
        api, repo_id, "model", files, token=the_token, private=private,
        title_new=f"Upload {what}{suffix}",
        title_update=lambda changes: f"Update {what}{suffix}: {changes}",
        message=message, managed=managed_model, first_marker=RECORD_FILE, dry_run=dry_run, progress=progress, net=net,
    )
    result = PushResult(model=model_push, card=card_text)

    # -- Space
    if space_id and push_space:
        from tlhub.publishing.spaces import build_space

        with tempfile.TemporaryDirectory(prefix="tlhub-space-") as tmp:
            build = build_space(saved, Path(tmp) / "space", model_id=repo_id, examples=examples, license=license,
                                include_model=False, endpoint=base)
            space_files: dict[str, Path | bytes] = {p: build.path / p for p in build.files()}

            def managed_space(path: str) -> bool:
                return path in SPACE_MANAGED or path.startswith("examples/")

            if private:
                progress(f"the Space is private and loads a private model: add a read token as the secret HF_TOKEN in the "
                         f"Space settings ({base}/spaces/{space_id}/settings) so app.py can download {repo_id}")
            result.space = _push_repo(
                api, space_id, "space", space_files, token=the_token, private=private,
                title_new=f"Upload Gradio demo of {repo_id}",
                title_update=lambda changes: f"Update Gradio demo of {repo_id}: {changes}",
                message=None if message is None else f"{message} (demo Space)",
                managed=managed_space, first_marker="app.py", space_sdk="gradio", dry_run=dry_run, progress=progress,
                net=net,
            )
    return result
