"""Writing snapshots into the Hugging Face cache the way huggingface_hub itself does::

    HF_HUB_CACHE/models--ORG--NAME/
        blobs/<etag>                      (sha256 for LFS-type files, git blob sha1 for the rest)
        snapshots/<commit>/<file>  ->  ../../blobs/<etag>     (relative symlinks)
        refs/main                         (the commit)

The commit is a sha1 derived from the repo id and the files' content, so writing the same files
again gives the same commit. Nothing heavy is imported here.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from tlhub.errors import OfflineAssetError
from tlhub.hashing import git_blob_id, sha256_of


def cache_root(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def repo_folder(root: Path, repo_id: str) -> Path:
    return root / ("models--" + repo_id.replace("/", "--"))


# patterns of the Hub's default .gitattributes that matter here; the Hub also stores anything
# over 10 MB through LFS
_DEFAULT_LFS_PATTERNS = (
    "*.safetensors", "*.bin", "*.pth", "*.pt", "*.ckpt", "*.onnx", "*.h5", "*.msgpack", "*.ot", "*.pkl",
    "*.tflite", "*.model", "*.npy", "*.npz", "*.zip", "*.gz", "*.tar.*", "*.tgz",
)  # fmt: skip
_LFS_SIZE = 10 * 1024 * 1024


def _lfs_patterns(gitattributes: Path | None) -> tuple[str, ...]:
    if gitattributes is None or not gitattributes.is_file():
        return _DEFAULT_LFS_PATTERNS
    patterns = []
    for line in gitattributes.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return tuple(patterns)


def _is_lfs(rel: str, size: int, patterns: Sequence[str]) -> bool:
    if size > _LFS_SIZE:
        return True
    base = rel.rsplit("/", 1)[-1]
    for pat in patterns:
        if "/" in pat.rstrip("/"):
            if fnmatch.fnmatch(rel, pat):
                return True
        elif fnmatch.fnmatch(base, pat):
            return True
    return False


@dataclass(frozen=True)
class CacheFile:
    rel: str  # path inside the repo, with "/"
    src: Path  # where the content is now
    etag: str  # blob name: sha256 (LFS) or git blob sha1, as huggingface_hub names blobs
    size: int


def describe_files(files: Mapping[str, Path], gitattributes: Path | None = None) -> list[CacheFile]:
    patterns = _lfs_patterns(gitattributes)
    out = []
    for rel in sorted(files):
        src = files[rel]
        size = src.stat().st_size
        etag = sha256_of(src) if _is_lfs(rel, size, patterns) else git_blob_id(src)
        out.append(CacheFile(rel=rel, src=src, etag=etag, size=size))
    return out


def folder_files(src: Path) -> dict[str, Path]:
    return {p.relative_to(src).as_posix(): p for p in sorted(src.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def commit_for(repo_id: str, files: Sequence[CacheFile]) -> str:
    h = hashlib.sha1(f"tlhub offline snapshot\nrepo {repo_id}\n".encode())
    for f in files:
        h.update(f"{f.rel}\0{f.etag}\0{f.size}\n".encode())
    return h.hexdigest()


def read_ref(repo: Path, ref: str = "main") -> str | None:
    try:
        return (repo / "refs" / ref).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def snapshot_complete(repo: Path, commit: str, files: Sequence[CacheFile]) -> bool:
    snap = repo / "snapshots" / commit
    for f in files:
        p = snap / f.rel
        blob = repo / "blobs" / f.etag
        if not p.exists() or not blob.is_file() or blob.stat().st_size != f.size:
            return False
        if p.is_symlink() and Path(os.path.realpath(p)) != Path(os.path.realpath(blob)):
            return False
    return True


def links_ok(snap: Path) -> bool:
    entries = [p for p in snap.rglob("*") if p.is_symlink() or p.is_file()]
    return bool(entries) and all(p.exists() for p in entries)


def _link(blob: Path, dst: Path) -> None:
    """Relative symlink dst -> blob, as huggingface_hub makes them; a copy where symlinks are unsupported."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        os.symlink(os.path.relpath(blob, dst.parent), dst)
    except (OSError, NotImplementedError):
        shutil.copyfile(blob, dst)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_snapshot(repo: Path, commit: str, files: Sequence[CacheFile], *, force: bool) -> None:
    blobs = repo / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    for f in files:
        blob = blobs / f.etag
        if force or not blob.is_file() or blob.stat().st_size != f.size:
            tmp = blobs / f".{f.etag}.{os.getpid()}.incomplete"
            shutil.copyfile(f.src, tmp)
            os.replace(tmp, blob)
        _link(blob, repo / "snapshots" / commit / f.rel)
    atomic_write_text(repo / "refs" / "main", commit)


def install_lock(root: Path, repo_id: str):
    from filelock import FileLock  # a dependency of huggingface_hub

    lock_dir = root / ".locks" / repo_folder(root, repo_id).name
    lock_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_dir / "tlhub-install.lock"))


def check_resolves(repo_id: str, files: Sequence[CacheFile], root: Path) -> None:
    """huggingface_hub's own cache lookup must find every file (what offline loading will do)."""
    from huggingface_hub import try_to_load_from_cache

    for f in files:
        found = try_to_load_from_cache(repo_id, f.rel, cache_dir=root)
        if not isinstance(found, str) or os.path.getsize(found) != f.size:
            raise OfflineAssetError(
                f"{repo_id}/{f.rel} was written but huggingface_hub does not find it in {root}",
                fix="report this as a tlhub bug, with your huggingface_hub version",
            )
