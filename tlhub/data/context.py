"""The state one :func:`~tlhub.data.loading.load_data` run shares between its stages.

Each stage (:mod:`~tlhub.data.sources`, :mod:`~tlhub.data.columns`,
:mod:`~tlhub.data.selection`, :mod:`~tlhub.data.checks`) is handed a :class:`LoadContext`
explicitly: what to load, what the model takes, the report they all write to, and the run's
one random generator (so every seeded draw comes from the same stream, in pipeline order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from tlhub.data.report import DataReport
from tlhub.data.spec import DataSpec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


@dataclass(frozen=True)
class LoadContext:
    spec: DataSpec
    report: DataReport
    #: the modality the model takes (the adapter's ``modality``), or None: any
    modality: str | None
    #: the adapter's ``decode_input``, run on every checked image (None: only PIL's decode)
    decode: Callable[[Any], Any] | None
    progress: bool
    rng: "np.random.Generator"

    @classmethod
    def create(cls, spec: DataSpec, *, modality: str | None, decode: Callable[[Any], Any] | None, progress: bool) -> "LoadContext":
        import numpy as np

        report = DataReport(source=spec.source_label, on_bad_input=spec.on_bad_input)
        return cls(spec=spec, report=report, modality=modality, decode=decode, progress=progress, rng=np.random.default_rng(spec.seed))
