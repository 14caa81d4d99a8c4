"""Evaluate a trained model on a dataset split: what ``tlhub evaluate`` runs.

The labels of the data are matched to the model's labels by name, so a test set whose classes
come in another order still scores right; a class the model never saw stops the evaluation
with the rows named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tlhub.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.evaluation import EvalResult


def evaluate(
    model: Any,
    *,
    data: Any = None,
    split: str = "test",
    input_column: str | None = None,
    label_column: str | None = None,
    batch_size: int = 128,
    max_samples: int | None = None,
    progress: bool = True,
) -> "EvalResult":
    """Metrics of ``model`` (a TransferModel, or a saved model's folder or repo) on ``data[split]``.

    ``data`` defaults to the dataset the model was trained on (from its training record).
    """
    import numpy as np

    from tlhub.adapters.registry import get_adapter
    from tlhub.data import DataSpec, load_data, make_dataloader
    from tlhub.evaluation import compute_metrics, evaluate_model
    from tlhub.factory import create_model

    if isinstance(model, str):
        model = create_model(model)
        model.set_channels_last(True)  # faster image inference; our own copy, so nobody else sees it
    record = getattr(model, "training_record", {}) or {}
    trained = record.get("config", {})
    if data is None:
        data = trained.get("data")
        if data is None:
            raise DataError("no data given and the model records none", fix="pass --data (a built-in name, folder, file or Hub dataset)")
        input_column = input_column or trained.get("input_column")
        label_column = label_column or trained.get("label_column")
    adapter = get_adapter(model.adapter_name)
    spec = DataSpec(
        source=data,
        input_column=input_column,
        label_column=label_column,
        test_split=split,
        max_eval_samples=max_samples,
        max_train_samples=10,  # the training split is not evaluated: keep its preparation cheap
    )
    prepared = load_data(spec, modality=adapter.modality, decode=adapter.decode_input, progress=progress)
    if "test" not in prepared.splits:
        raise DataError(f"split {split!r} has no usable labelled rows", fix="choose another --split; see the data report above")
    unknown = sorted(set(prepared.labels) - set(model.labels))
    if unknown:
        raise DataError(
            f"the data has classes the model was not trained on: {', '.join(unknown)}",
            fix=f"evaluate on data with the model's classes ({', '.join(model.labels[:10])}...) or fine-tune on these classes",
        )
    # data class id -> model class id, by name
    mapping = np.array([model.labels.index(name) for name in prepared.labels])
    loader = make_dataloader(
        prepared.splits["test"],
        decode=adapter.decode_input,
        collate=adapter.make_collate(model, train=False),
        batch_size=batch_size,
        shuffle=False,
    )
    preds, refs, loss = evaluate_model(model, _remap(loader, mapping), progress=progress)
    return compute_metrics(preds, refs, model.labels, split=split, loss=loss)


def _remap(loader, mapping):
    import torch

    table = torch.as_tensor(mapping)
    for batch in loader:
        batch["labels"] = table[batch["labels"]]
        yield batch
