"""Training and evaluation data: sources read with ``datasets``, checked completely before any
training starts, split into train/validation/test, and the built-in data sets.

The stages of :func:`load_data`, one module each: :mod:`~tlhub.data.sources` (open the source,
pick the splits; local files in :mod:`~tlhub.data.local`), :mod:`~tlhub.data.columns` (input
and label columns, class names and codes), :mod:`~tlhub.data.selection` (the rows of each
prepared split), :mod:`~tlhub.data.checks` (input checks and the ledger of bad rows); the
pipeline itself is :mod:`~tlhub.data.loading`, batches come from :mod:`~tlhub.data.loaders`.
"""

from tlhub.data.loaders import make_dataloader
from tlhub.data.loading import PreparedData, load_data
from tlhub.data.report import DataReport
from tlhub.data.spec import DataSpec

__all__ = ["DataReport", "DataSpec", "PreparedData", "load_data", "make_dataloader"]
