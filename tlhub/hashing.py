"""Content hashes, as the Hub names files: sha256 for LFS objects, git blob sha1 otherwise.

Each takes the content itself (``bytes``) or a file to read in chunks.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterator

_CHUNK = 1 << 20


def sha256_of(source: bytes | str | os.PathLike) -> str:
    h = hashlib.sha256()
    for chunk in _chunks(source):
        h.update(chunk)
    return h.hexdigest()


def git_blob_id(source: bytes | str | os.PathLike) -> str:
    """The id git (and the Hub's file listing) gives a regular, non-LFS file."""
    size = len(source) if isinstance(source, bytes) else os.path.getsize(source)
    h = hashlib.sha1(b"blob %d\0" % size)
    for chunk in _chunks(source):
        h.update(chunk)
    return h.hexdigest()


def _chunks(source: bytes | str | os.PathLike) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    with open(source, "rb") as f:
        yield from iter(lambda: f.read(_CHUNK), b"")
