"""The frozen-feature cache: run the frozen backbone once, train the head on the cache.

Features are stored as a ``datasets`` Arrow table on disk (memory-mapped when read back), keyed by
everything that determines them: the backbone's weights, the preprocessing, and the data split's
fingerprint. A second run with the same key does not run the backbone at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    import datasets

    from tlhub.adapters.model import TransferModel


def default_cache_dir() -> Path:
    root = os.environ.get("TLHUB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tlhub")
    return Path(root) / "features"


def backbone_fingerprint(model: "TransferModel") -> str:
    """A hash of the backbone's weights (the head excluded): exact, and cheap next to one epoch."""
    import torch

    head = set(model.all_head_parameter_names())  # a head over several layers is no part of the backbone either
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            if name in head or not tensor.is_floating_point():
                continue
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


#: autocast dtypes of a frozen pass by precision name ("fp32": none)
PRECISION_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def cache_key(model: "TransferModel", preprocessing_fingerprint: str, data_fingerprint: str, layers=None, precision: str = "fp32") -> str:
    """``layers``: the layer-group indices of a table of several layers' features (the key of a
    last-layer table, ``None``, stays what it always was). ``precision``: the frozen pass's
    autocast ("fp32", "bf16", "fp16"; an fp32 key stays what it always was)."""
    payload = {
        "backbone": model.source,
        "revision": model.revision,
        "weights": backbone_fingerprint(model),
        "preprocessing": preprocessing_fingerprint,
        "data": data_fingerprint,
        "format": 1,
    }
    if layers is not None:
        payload["layers"] = [int(i) for i in layers]
        if model.layer_grid != 1:  # the pooling of the intermediate maps (1: the key as it always was)
            payload["layer_grid"] = int(model.layer_grid)
    if precision != "fp32":  # bf16 features differ from fp32 ones in their last digits: another table
        payload["precision"] = precision
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def cached_features(
    model: "TransferModel",
    loader_factory: Callable[[], object],
    *,
    key: str,
    cache_dir: str | os.PathLike | None = None,
    accelerator=None,
    desc: str = "features",
    layers=None,
    order=None,
    precision: str = "fp32",
) -> tuple["datasets.Dataset", bool]:
    """Features and labels for one split, from the cache or computed now (and cached).

    Returns ``(dataset with columns "features" and "label", hit)``. Only the main process
    computes and writes; the others wait and read the same files. ``order``: the loader yields
    the split's rows in this order (a permutation of its indices, e.g. texts by length); the
    table is stored in the split's own order regardless. ``precision``: the pass's autocast
    ("fp32": none; "bf16" or "fp16" on the accelerator's device), part of ``key``.
    """
    import datasets

    path = Path(cache_dir or default_cache_dir()) / key
    main = accelerator is None or accelerator.is_main_process
    hit = (path / "dataset_info.json").is_file()
    if not hit and main:
        # A cold pass must draw no random numbers the rest of the run would have drawn: iterating a
        # DataLoader takes its base seed from torch's global generator, a model or collate may draw
        # more. Without this, head dropout and augmentation after a cold pass see other numbers
        # than after a warm one, and the weights differ with the cache state (issue 11, item 6).
        with preserved_random_state():
            _compute_and_store(model, loader_factory(), path, accelerator=accelerator, desc=desc, layers=layers, order=order,
                               precision=precision)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return datasets.load_from_disk(str(path)), hit


@contextlib.contextmanager
def preserved_random_state():
    """Run the block, then put every global random generator back as it was: Python's
    ``random``, NumPy's legacy global generator, torch's CPU generator and every CUDA device's."""
    import random

    import numpy as np
    import torch

    py, npy = random.getstate(), np.random.get_state()
    # every visible GPU: the pass may run on any of them (and CPU-only machines have none)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


def _compute_and_store(model, loader, path: Path, *, accelerator, desc: str, layers=None, order=None, precision: str = "fp32") -> None:
    import datasets
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    device = accelerator.device if accelerator is not None else torch.device("cpu")
    model.eval().to(device)
    if precision != "fp32" and precision not in PRECISION_DTYPES:
        raise ValueError(f"unknown feature precision {precision!r}: use fp32, {', '.join(PRECISION_DTYPES)}")
    dtype = getattr(torch, PRECISION_DTYPES.get(precision, "float32"))
    chunks, labels = [], []
    with torch.inference_mode():
        bar = tqdm(loader, desc=desc, unit="batch", leave=False)
        for batch in bar:
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=dtype, enabled=precision != "fp32"):
                # several layers: one pass gives every requested group's pooled output
                feats = model.forward_layer_features(batch, layers) if layers is not None else [model.forward_features(batch)]
            chunks.append([f.float().cpu().numpy() for f in feats])
            labels.append(batch["labels"].cpu().numpy())
    names = [f"layer_{int(i)}" for i in layers] if layers is not None else ["features"]
    columns = {name: np.concatenate([c[j] for c in chunks]).astype(np.float32) for j, name in enumerate(names)}
    label = np.concatenate(labels).astype(np.int64)
    if order is not None:  # row k of the pass is row order[k] of the split
        order = np.asarray(order, dtype=np.int64)
        if len(order) != len(label):
            raise RuntimeError(f"the feature pass gave {len(label)} rows for an order of {len(order)}")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        columns = {name: col[inverse] for name, col in columns.items()}
        label = label[inverse]
    table = datasets.Dataset.from_dict(
        {**columns, "label": label},
        features=datasets.Features(
            {**{name: datasets.List(datasets.Value("float32"), length=col.shape[1]) for name, col in columns.items()},
             "label": datasets.Value("int64")}
        ),
    )
    # write next to the final place, then rename: a killed run never leaves half a cache entry
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    was_enabled = is_progress_bar_enabled()
    disable_progress_bar()  # a "Saving the dataset" bar for a few MB is noise
    try:
        table.save_to_disk(str(tmp))
    finally:
        if was_enabled:
            enable_progress_bar()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, path)
    except OSError:  # another process finished first: its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)


def as_tensors(table: "datasets.Dataset"):
    """The cached split as two tensors (features N x D, labels N), read from the memory map."""
    import torch

    arrays = table.with_format("numpy")[:]  # one read of the whole (memory-mapped) table
    return torch.from_numpy(arrays["features"]), torch.from_numpy(arrays["label"])


def as_layer_arrays(table: "datasets.Dataset", layers) -> tuple[dict[int, "np.ndarray"], "np.ndarray"]:
    """A several-layer table (``cached_features(..., layers=...)``) as ``{layer index: N x D_i}`` and the labels."""
    arrays = table.with_format("numpy")[:]
    return {int(i): arrays[f"layer_{int(i)}"] for i in layers}, arrays["label"]
