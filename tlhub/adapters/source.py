"""``BackboneSource``: what an adapter is handed to load, a resolved backbone's files and config.

Names are resolved to sources by :mod:`tlhub.core.names`; an adapter fetches whatever else it
needs (weights, tokenizer) with :func:`download_files`, through ``huggingface_hub``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BackboneSource:
    """A resolved backbone: where its files are, and what its own config says."""

    name: str  # what the user wrote, without prefix and revision
    path: Path  # local folder (a Hub snapshot or the user's folder)
    config: dict[str, Any] = field(repr=False)
    repo_id: str | None = None
    revision: str | None = None  # what was asked for
    commit: str | None = None  # what it resolved to
    adapter_hint: str | None = None  # from an explicit prefix
    resolved_by: str | None = None  # the adapter whose resolve_name found it (set by tlhub)

    @property
    def display_name(self) -> str:
        """What tlhub prints and records as the backbone: the Hub repo id, else ``name`` for a source
        an adapter resolved itself (``resolve_name``, shown with its prefix), else the local folder."""
        return self.repo_id or (f"{self.resolved_by}:{self.name}" if self.resolved_by else str(self.path))


def download_files(source: BackboneSource, allow_patterns, *, required=()) -> BackboneSource:
    """Fetch the rest of a repo (weights, tokenizer) once the adapter knows what it needs.

    When every ``required`` pattern already matches a file of the (immutable, commit-pinned)
    snapshot on disk, nothing is asked of the Hub: a cached model loads with no network at all.
    """
    import fnmatch

    if source.repo_id is None:
        return source
    present = [p.name for p in source.path.iterdir()]
    if required and all(any(fnmatch.fnmatch(name, pattern) for name in present) for pattern in required):
        return source
    from huggingface_hub import snapshot_download

    path = Path(snapshot_download(source.repo_id, revision=source.commit or source.revision, allow_patterns=list(allow_patterns)))
    return BackboneSource(**{**source.__dict__, "path": path})


#: what to do about a model whose weights are missing or damaged
FIX_WEIGHTS = ("copy or download the model folder again (an interrupted copy or download leaves a truncated file; for a "
               "Hub model, remove it from the cache with `hf cache rm model/ORG/NAME` so that it is fetched again), or train it again")


def weights_problem(folder: str | Path, *, require: bool = False, ignore: tuple[str, ...] = ()):
    """What is wrong with the weights in ``folder``, as a :class:`~tlhub.errors.ModelFileError`
    naming the file, or ``None``: a ``*.safetensors`` file (in the folder or one level down) that
    is empty, truncated or not safetensors at all, checked by its header against its size without
    reading the tensors; with ``require``, no weights file in the folder at all (files named in
    ``ignore`` do not count: a head saved beside the native weights).

    Cheap enough for every read of a model folder; also called when a library fails to load one
    (see :class:`tlhub.adapters.contract.Adapter`), to turn its error (safetensors' "header too
    small", transformers' "no file named ...") into one that names the file and the fix.
    """
    from safetensors import safe_open

    from tlhub.errors import ModelFileError

    folder = Path(folder)
    if not folder.is_dir():
        return None
    files = sorted([*folder.glob("*.safetensors"), *folder.glob("*/*.safetensors")])
    for path in files:
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue  # a staging folder or a half-written file of a save in progress
        try:
            size = path.stat().st_size
            with safe_open(str(path), framework="numpy") as f:  # the header only; "numpy": no torch import
                f.keys()
        except OSError as exc:
            return ModelFileError(f"weights file {path} cannot be read ({exc.strerror or exc})", fix="check its permissions, or " + FIX_WEIGHTS)
        except Exception as exc:  # safetensors' own SafetensorError: empty, truncated, not safetensors
            what = "empty (0 bytes)" if size == 0 else f"truncated or not a safetensors file ({size:,} bytes; {exc})"
            return ModelFileError(f"weights file {path} is {what}", fix=FIX_WEIGHTS)
    if require and not any(p.parent == folder and p.name not in ignore for p in files) and not (folder / "pytorch_model.bin").is_file():
        return ModelFileError(f"{folder} has no weights file (no model.safetensors)",
                              fix="copy the whole model folder again (the weights are the largest file in it), or train it again")
    return None


#: ``ORG/NAME`` as the Hub spells repo ids (what a card's ``base_model`` may hold).
#: a Hub repo id, as huggingface_hub validates them (ORG/NAME, at most 96 characters each)
HUB_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def hub_repo_id(name: Any, *, check_disk: bool = True) -> str | None:
    """``name`` as a Hub repo id, or ``None`` when it is not one (a local folder, a bare name).

    ``hf-hub:ORG/NAME`` counts as ``ORG/NAME``, and a pinned ``@revision`` is dropped (it is
    recorded separately). With ``check_disk``, a name that is also an existing local path is taken
    to be the path: lineage must never show somebody's filesystem.
    """
    if not isinstance(name, str) or not name:
        return None
    if name.startswith("hf-hub:"):
        name = name[len("hf-hub:") :]
    name = name.split("@", 1)[0]
    if not HUB_REPO_ID_RE.match(name) or ".." in name or name.startswith((".", "~")):
        return None
    if check_disk and Path(name).expanduser().exists():
        return None
    return name


def card_metadata(folder: Path) -> dict[str, Any]:
    """The YAML front matter of ``folder/README.md`` (a Hub model card), or ``{}``."""
    readme = Path(folder) / "README.md"
    if not readme.is_file():
        return {}
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(readme).data.to_dict()
    except Exception:  # a README that is not a model card says nothing about lineage
        return {}


def default_weights_info(source: BackboneSource):
    """:meth:`Adapter.weights_info`'s default: name, commit and licence of ``source``'s weights.

    - a Hub snapshot: its repo id and commit; the licence from the README front matter, else the
      config (timm's ``pretrained_cfg.license``);
    - a local folder: the origin its own tlhub record names (``tlhub.json``: a model tlhub saved
      names the backbone it was fine-tuned from), else the README's ``base_model``; never the
      folder's path, so a folder of unknown origin has no name.
    """
    from tlhub.adapters.contract import WeightsInfo

    card = card_metadata(source.path)
    licence = _licence(card.get("license")) or _licence(source.config.get("license")) \
        or _licence((source.config.get("pretrained_cfg") or {}).get("license"))
    if source.repo_id is not None:
        return WeightsInfo(name=source.repo_id, revision=source.commit or source.revision, license=licence)
    record = _read_json(source.path / "tlhub.json")
    name = hub_repo_id(record.get("base_model"))
    if name:
        return WeightsInfo(name=name, revision=record.get("base_model_revision"),
                           license=_licence(record.get("base_model_license")) or licence)
    bases = card.get("base_model")
    name = hub_repo_id(bases[0] if isinstance(bases, list) and bases else bases)
    return WeightsInfo(name=name, revision=None, license=licence)


def _licence(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != "unknown" else None


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
