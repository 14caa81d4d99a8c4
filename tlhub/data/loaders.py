"""Batches for training and evaluation: :func:`make_dataloader` feeds a prepared split to a model.

Rows are decoded lazily (through ``Dataset.with_transform``) with the adapter's ``decode_input``
and batched with its collate. Nothing here imports torch (or ``datasets``) at module import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from tlhub.data.checks import image_name
from tlhub.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    import datasets
    import torch

class _DecodeInputs:
    """``with_transform`` function: raw ``input`` values -> what the adapter's collate takes."""

    def __init__(self, decode: Callable[[Any], Any], image: bool):
        self.decode = decode
        self.image = image

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        if self.image:
            from tlhub.adapters.images import load_image

            inputs = [self.decode(load_image(v, name=image_name(v))) for v in batch["input"]]
        else:
            inputs = [self.decode(v) for v in batch["input"]]
        return {"input": inputs, "label": batch["label"]}


class _CollateWithLabels:
    def __init__(self, collate: Callable[[list], dict]):
        self.collate = collate

    def __call__(self, batch) -> dict:
        import torch

        if isinstance(batch, dict):  # columns (a ds[list_of_indices] read)
            inputs, labels = batch["input"], batch["label"]
        else:  # rows (what DataLoader's fetcher gets from Dataset.__getitems__)
            inputs, labels = [r["input"] for r in batch], [r["label"] for r in batch]
        out = dict(self.collate(inputs))
        out["labels"] = torch.as_tensor(labels, dtype=torch.long)
        return out


def make_dataloader(
    split: "datasets.Dataset",
    *,
    decode: Callable[[Any], Any],
    collate: Callable[[list], dict],
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
    persistent_workers: bool | None = None,
) -> "torch.utils.data.DataLoader":
    """A ``DataLoader`` over a prepared split: batches of ``collate(decoded inputs)`` plus ``labels``.

    Rows are fetched a batch at a time (``Dataset.__getitems__``: one Arrow read per batch) and decoded lazily through
    ``split.with_transform``: images from their stored bytes/paths to RGB PIL images, then
    ``decode`` (the adapter's ``decode_input``); texts through ``decode`` as they are. Shuffling
    is deterministic: a ``torch.Generator`` seeded with ``seed`` orders every epoch (the same
    seed gives the same sequence of epochs), and worker seeds derive from it too.
    """
    import pickle

    import datasets
    import torch
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, not {batch_size!r}", fix="e.g. batch_size=32")
    if "input" not in split.column_names or "label" not in split.column_names:
        raise DataError(f"make_dataloader needs a prepared split with 'input' and 'label' columns (got {split.column_names})", fix="prepare the data with tlhub.data.loading.load_data")
    image = isinstance(split.features["input"], datasets.Image)
    ds = split.cast_column("input", datasets.Image(decode=False)) if image else split
    ds = ds.with_transform(_DecodeInputs(decode, image))

    sampler_gen = torch.Generator().manual_seed(int(seed))
    sampler = RandomSampler(ds, generator=sampler_gen) if shuffle else SequentialSampler(ds)
    batches = BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["persistent_workers"] = bool(persistent_workers) if persistent_workers is not None else False
        kwargs["generator"] = torch.Generator().manual_seed(int(seed) + 1)
        try:  # closures (a local collate) cannot go to spawned workers: fall back to fork where there is one
            pickle.dumps((decode, collate))
        except Exception:
            import multiprocessing

            if "fork" in multiprocessing.get_all_start_methods():
                kwargs["multiprocessing_context"] = "fork"
    return DataLoader(
        ds,
        batch_sampler=batches,  # a plain batch sampler: accelerate's prepare_data_loader shards it across processes
        collate_fn=_CollateWithLabels(collate),
        num_workers=num_workers,
        pin_memory=pin_memory,
        **kwargs,
    )

