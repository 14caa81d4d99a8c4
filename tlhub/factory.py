"""``create_model``: the one entry point from a backbone name to a :class:`~tlhub.model.TransferModel`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from tlhub.adapters.registry import adapter_for_config, get_adapter
from tlhub.hub import BackboneSource, resolve

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.adapters.base import Adapter
    from tlhub.model import TransferModel


def resolve_backbone(name: str, *, revision: str | None = None, adapter: str | None = None) -> tuple[BackboneSource, "Adapter"]:
    """Resolve ``name`` and pick its adapter: an explicit one, the name's prefix, or the repo's own config."""
    source = resolve(name, revision=revision)
    chosen = adapter or source.adapter_hint
    if chosen:
        return source, get_adapter(chosen)
    return source, adapter_for_config(source.config, where=source.display_name)


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    labels: Sequence[str] | None = None,
    pretrained: bool = True,
    revision: str | None = None,
    adapter: str | None = None,
) -> "TransferModel":
    """Load a backbone (Hub repo id, ``hf-hub:`` name, ``adapter:`` prefixed name or local folder).

    Without ``num_classes``/``labels`` the checkpoint's own head and labels are kept (an ImageNet
    classifier stays one; a fine-tuned tlhub model comes back as it was saved). With them, a new
    head of that size sits on the pretrained backbone. ``pretrained=False`` gives the same
    architecture with random weights, for from-scratch baselines.
    """
    source, chosen = resolve_backbone(name, revision=revision, adapter=adapter)
    if labels is not None:
        labels = [str(label) for label in labels]
        if num_classes is not None and num_classes != len(labels):
            from tlhub.errors import ConfigError

            raise ConfigError(f"num_classes={num_classes} but {len(labels)} labels were given", fix="give one of them, or make them agree")
    model = chosen.load(source, num_classes=num_classes, labels=labels, pretrained=pretrained)
    _restore_tlhub_state(model, source)
    return model


def _restore_tlhub_state(model, source: BackboneSource) -> None:
    """A model saved by tlhub records the preprocessing it was trained with: use it again."""
    import json

    record = source.path / "tlhub.json"
    if not record.is_file():
        return
    info = json.loads(record.read_text(encoding="utf-8"))
    model.training_record = info
    lineage = info.get("base_model")
    if lineage:
        model.base_model = lineage


def describe(name: str, *, revision: str | None = None, adapter: str | None = None) -> dict[str, Any]:
    """What ``tlhub describe`` prints: adapter, feature dim, preprocessing, layer groups, labels."""
    source, chosen = resolve_backbone(name, revision=revision, adapter=adapter)
    model = chosen.load(source, pretrained=True)
    groups = model.layer_groups()
    return {
        "name": source.display_name,
        "revision": source.commit or source.revision,
        "adapter": chosen.name,
        "modality": chosen.modality,
        "num_features": model.num_features,
        "preprocessing": chosen.preprocessing(model).to_dict(),
        "layer_groups": [(g.name, sum(dict(model.named_parameters())[p].numel() for p in g.parameter_names)) for g in groups],
        "parameters": model.trainable_summary()["parameters"],
        "num_classes": model.num_classes,
        "labels": model.labels,
    }
