"""Resolve a backbone name to files on disk, through huggingface_hub.

Accepted names:

- a Hub repo id: ``timm/tf_efficientnet_lite0.in1k``, ``sentence-transformers/all-MiniLM-L6-v2``
- timm's form: ``hf-hub:timm/tf_efficientnet_lite0.in1k`` (implies the timm adapter)
- an explicit adapter prefix: ``transformers:ORG/NAME``, ``timm:ORG/NAME``, ``PLUGIN:ORG/NAME``
- a local folder holding a ``config.json``
- any of the above with ``@REVISION`` (a branch, tag or commit), or ``revision=`` passed in.

Downloads go through ``huggingface_hub``, so the same name works online against the Hub (or the
endpoint in ``HF_ENDPOINT``) and offline (``HF_HUB_OFFLINE=1``) from the local cache.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tlhub.adapters.source import BackboneSource
from tlhub.errors import BackboneNotFoundError, RevisionNotFoundError, suggest


def parse_name(name: str, revision: str | None = None) -> tuple[str, str | None, str | None]:
    """Split ``[prefix:]name[@revision]`` -> (name, revision, adapter_hint)."""
    from tlhub.adapters.registry import adapter_names

    hint = None
    if name.startswith("hf-hub:"):
        name, hint = name[len("hf-hub:") :], "timm"
    elif ":" in name and not Path(name).exists():
        prefix, rest = name.split(":", 1)
        # only an adapter name counts as a prefix (keeps Windows paths and URLs intact); a broken
        # or missing plugin's name too, so that get_adapter says what is wrong with the plugin
        if prefix in adapter_names() or prefix in ("timm", "transformers"):
            name, hint = rest, prefix
        elif re.fullmatch(r"[A-Za-z_][\w.-]+", prefix) and not rest.startswith("//"):
            # a word before ':' (not a drive letter, not a URL) can only mean an adapter prefix;
            # passed on, it would reach huggingface_hub as an invalid repo id
            from tlhub.errors import AdapterNotFoundError

            installed = ", ".join(sorted(adapter_names() | {"timm", "transformers"}))
            raise AdapterNotFoundError(f"unknown adapter prefix {prefix!r} in {name!r} (installed adapters: {installed})",
                                       fix=f"use one of them, e.g. transformers:{rest}, or drop the prefix to pick the adapter from the repo's config.json")
    if "@" in name and not Path(name).exists():
        name, rev = name.rsplit("@", 1)
        if revision and rev != revision:
            raise RevisionNotFoundError(f"two revisions given for {name}: {rev!r} and {revision!r}", fix="give the revision once")
        revision = rev
    return name, revision, hint


def _is_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().is_dir()


def resolve(name: str, *, revision: str | None = None, allow_patterns=None) -> BackboneSource:
    """Resolve ``name`` to a :class:`BackboneSource` (downloading what is missing, when online)."""
    name, revision, hint = parse_name(name, revision)
    if _is_local(name):
        path = Path(name).expanduser().resolve()
        if not path.is_dir():
            raise BackboneNotFoundError(f"local path {path} does not exist", fix="check the path (it is read as a local folder because it starts with '.', '/' or '~')")
        return BackboneSource(name=name, path=path, config=_read_config(path, name), adapter_hint=hint)

    from huggingface_hub import snapshot_download
    from huggingface_hub import errors as hf_errors

    if name.count("/") != 1:
        _raise_not_found(name, reason="it is neither a local folder nor a Hub repo id of the form ORG/NAME")
    try:
        # config.json first: it decides the adapter, which decides what else to fetch.
        path = Path(snapshot_download(name, revision=revision, allow_patterns=list(allow_patterns or ["config.json"])))
    except hf_errors.RevisionNotFoundError:
        raise RevisionNotFoundError(
            f"{name} has no revision {revision!r}", fix=f"use an existing branch, tag or commit of {name}, or drop '@{revision}'"
        ) from None
    except hf_errors.RepositoryNotFoundError:
        _raise_not_found(name, reason="the Hub has no such repository (or it is private and no token was given)")
    except hf_errors.LocalEntryNotFoundError:
        # offline, or the Hub is unreachable, and nothing is cached
        cached_repo = _cached_revisions(name)
        if revision and cached_repo:
            raise RevisionNotFoundError(
                f"{name} is in the offline cache, but not at revision {revision!r} (cached: {', '.join(cached_repo)})",
                fix=f"use one of the cached revisions, or go online to download {name}@{revision}",
            ) from None
        _raise_not_found(name, reason="it is not in the local Hugging Face cache and the Hub cannot be reached")
    config = _read_config(path, name)
    return BackboneSource(
        name=name, path=path, config=config, repo_id=name, revision=revision, commit=path.name, adapter_hint=hint
    )


def _read_config(path: Path, name: str) -> dict[str, Any]:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise BackboneNotFoundError(
            f"{name} has no config.json, so its library cannot be told",
            fix="point at a folder saved by timm (save_for_hf) or transformers (save_pretrained), or at its Hub repo",
        )
    try:
        return json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackboneNotFoundError(f"{config_file} is not valid JSON: {exc}", fix="re-download or re-save the model") from None


def _cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_models() -> list[str]:
    """Repo ids of the models in the local Hugging Face cache."""
    root = _cache_dir()
    if not root.is_dir():
        return []
    out = []
    for entry in root.iterdir():
        if entry.name.startswith("models--") and (entry / "snapshots").is_dir():
            out.append(entry.name[len("models--") :].replace("--", "/", 1))
    return sorted(out)


def _cached_revisions(repo_id: str) -> list[str]:
    repo = _cache_dir() / ("models--" + repo_id.replace("/", "--"))
    refs = [p.name for p in (repo / "refs").iterdir()] if (repo / "refs").is_dir() else []
    commits = [p.name[:12] for p in (repo / "snapshots").iterdir()] if (repo / "snapshots").is_dir() else []
    return refs + commits


def _raise_not_found(name: str, *, reason: str):
    from tlhub.offline.catalogue import list_assets

    parent = Path(name).expanduser().parent
    if parent != Path(".") and parent.is_dir():
        # `models/mine` beside an existing `models/`: meant as a local path, not a Hub repo id
        raise BackboneNotFoundError(
            f"local path {Path(name).expanduser().resolve()} does not exist (the folder {parent} does, and {name!r} is not a cached Hub repo either)",
            fix=f"check the path; the folders in {parent} are: {', '.join(sorted(p.name for p in parent.iterdir() if p.is_dir())[:10]) or 'none'}",
        ) from None
    known = set(cached_models()) | {a.repo_id for a in list_assets()}
    close = suggest(name, known)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if close:
        fix = f"did you mean {' or '.join(repr(c) for c in close)}?"
    elif offline:
        fix = "run `tlhub assets install` for the offline pretrained backbones, or unset HF_HUB_OFFLINE to download from the Hub"
    else:
        fix = "check the spelling on huggingface.co, or give a local folder"
    raise BackboneNotFoundError(f"backbone {name!r} not found: {reason}", fix=fix) from None
