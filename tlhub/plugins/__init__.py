"""For plugin authors: the conformance kit (``tlhub.plugins.kit``) and the scaffold behind
``tlhub plugins new`` (``tlhub.plugins.scaffold``).

``check_adapter`` is imported lazily, so ``tlhub plugins list`` never pays for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.plugins.kit import ConformanceError, ConformanceReport, check_adapter

__all__ = ["ConformanceError", "ConformanceReport", "check_adapter"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tlhub.plugins import kit

        return getattr(kit, name)
    raise AttributeError(f"module 'tlhub.plugins' has no attribute {name!r}")
