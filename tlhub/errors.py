"""Every error tlhub raises on purpose.

Each class also subclasses the builtin it resembles (as huggingface_hub's errors do), so
``except LookupError`` keeps working for callers who don't know about tlhub. Every error
carries a ``fix``: one sentence telling the user what to do next.
"""

from __future__ import annotations


class TlhubError(Exception):
    """Base class: a message that names the problem, and a ``fix`` that names the remedy."""

    def __init__(self, message: str, *, fix: str | None = None):
        self.message = message
        self.fix = fix
        super().__init__(message if not fix else f"{message}\n  fix: {fix}")


class ConfigError(TlhubError, ValueError):
    """A configuration value is invalid (raised when the config is created, not when used)."""


class BackboneNotFoundError(TlhubError, LookupError):
    """No backbone under that name: not a local folder, not on the Hub, not in the offline cache."""


class RevisionNotFoundError(TlhubError, LookupError):
    """The backbone exists but not at the requested revision."""


class AdapterNotFoundError(TlhubError, LookupError):
    """No installed adapter can load this backbone (or no adapter has that name)."""


class PluginError(TlhubError, ImportError):
    """An installed adapter plugin could not be loaded or breaks the adapter contract."""


class ImageLoadError(TlhubError, ValueError):
    """An image file is missing, truncated or not an image."""


class DataError(TlhubError, ValueError):
    """The training or evaluation data cannot be used as given."""


class OfflineAssetError(TlhubError, RuntimeError):
    """An offline pretrained asset could not be installed or verified."""


class ModelFileError(TlhubError, ValueError):
    """A model's weights file is missing, truncated or not a safetensors file."""


class CheckpointError(TlhubError, RuntimeError):
    """A training checkpoint is missing, incomplete or belongs to another run."""


class PublishError(TlhubError, RuntimeError):
    """Pushing a model or a Space to the Hub failed."""


class FolderInUseError(TlhubError, RuntimeError):
    """Another tlhub process holds the lock on this output folder."""


def suggest(name: str, candidates, n: int = 3) -> list[str]:
    """Close matches for ``name`` (case-insensitive), for 'did you mean' hints."""
    import difflib

    by_lower = {c.lower(): c for c in candidates}
    return [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)]
