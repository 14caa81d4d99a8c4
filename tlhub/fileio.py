"""Files written so that a crash never leaves half of one: atomic JSON, atomic folder swaps."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON so that a crash leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def swap_in(staging: Path, directory: Path) -> None:
    """Put a completely written ``staging`` folder at ``directory``, replacing what was there.

    Two renames: the old folder stays whole until the new one is complete, so an interruption
    leaves one or the other (or the old one beside it as ``.NAME.old``), never a mix.
    """
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
        os.replace(staging, directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, directory)


#: the lock file :func:`lock_folder` keeps in a folder (left in place: deleting it would race)
LOCK_FILE = ".tlhub.lock"


class FolderLock:
    """An exclusive lock on a folder, held through an open file of this process.

    The operating system drops it when the process ends in any way (kill -9 and power cuts
    included), so a lock file left behind never blocks the next run: only a live holder does.
    """

    def __init__(self, folder: Path, fd: int):
        self.folder, self._fd = folder, fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file is what releases the lock
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_folder(folder: str | os.PathLike, *, purpose: str = "output folder") -> FolderLock:
    """Create ``folder`` if needed and lock it for this process, or fail at once if another holds it.

    Raises :class:`tlhub.errors.FolderInUseError` naming the holder's PID, and
    :class:`tlhub.errors.ConfigError` when the folder cannot be created or written.
    """
    from tlhub.errors import ConfigError, FolderInUseError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(
            f"cannot use {folder} as {purpose}: {exc.strerror or exc}",
            fix="choose a folder you can write to (not an existing file)",
        ) from None
    try:
        _try_lock(fd)
    except OSError:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
        except OSError:
            holder = ""
        finally:
            os.close(fd)
        raise FolderInUseError(
            f"{folder} is in use by another tlhub process" + (f" (PID {holder})" if holder.isdigit() else ""),
            fix=f"wait for it to finish (or stop it), or choose another {purpose}",
        ) from None
    # the PID is only for the message others get; the lock itself is the kernel's
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    return FolderLock(folder, fd)


def _try_lock(fd: int) -> None:
    """Take an exclusive lock on ``fd`` without waiting; OSError when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: a byte-range lock, also released when the process dies
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
