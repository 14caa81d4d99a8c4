"""``create_model``: the one entry point from a backbone name to a :class:`~tlhub.adapters.model.TransferModel`."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Sequence

from tlhub.adapters.registry import adapter_for_config, get_adapter
from tlhub.adapters.source import BackboneSource
from tlhub.core.names import parse_name, resolve

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.adapters.contract import Adapter
    from tlhub.adapters.model import TransferModel


def resolve_backbone(name: str, *, revision: str | None = None, adapter: str | None = None) -> tuple[BackboneSource, "Adapter"]:
    """Resolve ``name`` and pick its adapter: an explicit one, the name's prefix, or the repo's own config.

    A name with an adapter (``torchvision:mobilenet_v2``, or ``adapter=``) is first offered to
    that adapter's :meth:`~tlhub.adapters.contract.Adapter.resolve_name` hook, so a plugin can
    resolve names of its own library; when it returns ``None`` the name is a Hub repo id or a
    local folder, as for every other name.
    """
    bare, bare_revision, hint = parse_name(name, revision)
    chosen_name = adapter or hint
    if chosen_name:
        chosen = get_adapter(chosen_name)
        own = chosen.resolve_name(bare, bare_revision)
        if own is not None:
            if not isinstance(own, BackboneSource):
                from tlhub.errors import PluginError

                raise PluginError(f"adapter {chosen.name!r}: resolve_name({bare!r}) returned a {type(own).__name__}, not a BackboneSource or None",
                                  fix="return tlhub.adapters.BackboneSource(name=..., path=..., config=...) or None from resolve_name")
            return dataclasses.replace(own, resolved_by=chosen.name), chosen
        return resolve(name, revision=revision), chosen
    source = resolve(name, revision=revision)
    return source, adapter_for_config(source.config, where=source.display_name)


def load_backbone(chosen: "Adapter", source: BackboneSource, **kwargs: Any) -> "TransferModel":
    """``chosen.load(source, **kwargs)``, checked against the model contract, with the lineage
    of its weights (:meth:`~tlhub.adapters.contract.Adapter.weights_info`) attached."""
    model = chosen.load(source, **kwargs)
    problems = type(model).contract_problems()
    if problems:
        from tlhub.errors import PluginError

        raise PluginError(f"adapter {chosen.name!r}: " + "; ".join(problems),
                          fix="give each overridden TransferModel method the contract's parameters (docs/writing-a-plugin.md)")
    model.base_weights = chosen.weights_info(source)
    return model


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
    model = load_backbone(chosen, source, num_classes=num_classes, labels=labels, pretrained=pretrained)
    _restore_tlhub_state(model, source, chosen)
    return model


def _restore_tlhub_state(model: "TransferModel", source: BackboneSource, adapter: "Adapter") -> None:
    """A model saved by tlhub records how it was trained: keep the record, use its preprocessing
    again (an ``image_size`` changed for training must survive the reload, whatever the adapter),
    and keep its lineage (the folder itself is local; the record names the Hub backbone)."""
    from tlhub.adapters.contract import WeightsInfo
    from tlhub.core.record import RECORD_FILE, TrainingRecord

    if not (source.path / RECORD_FILE).is_file():
        return
    record = TrainingRecord.load(source.path)
    model.training_record = record
    adapter.restore_preprocessing(model, record.preprocessing)
    if record.layer_head is not None:
        _restore_layer_head(model, source, record.layer_head)
    if record.base_model is not None and (model.base_weights is None or model.base_weights.name is None):
        model.base_weights = WeightsInfo(record.base_model, record.base_model_revision, record.base_model_license)


def _restore_layer_head(model: "TransferModel", source: BackboneSource, spec: dict) -> None:
    """Attach the saved head over several layer groups (``layer_head.safetensors``), exactly as trained."""
    from tlhub.adapters.model import LayerHead
    from tlhub.core.record import LAYER_HEAD_FILE
    from tlhub.errors import TlhubError

    path = source.path / LAYER_HEAD_FILE
    fix = "copy the whole model folder again (or `tlhub train` again): the head lives in that file, beside the native weights"
    if not path.is_file():
        raise TlhubError(f"{source.display_name} was trained with a head over layer groups {spec.get('layers')}, but {LAYER_HEAD_FILE} is missing", fix=fix)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        # "grid": how its features were pooled (absent in models saved before it existed: global averages)
        head = LayerHead(spec["layers"], spec["widths"], int(spec["num_classes"]), grid=int(spec.get("grid", 1)))
        head.load_state_dict(load_file(str(path)))
    except (KeyError, TypeError, ValueError, RuntimeError, OSError, SafetensorError) as exc:  # SafetensorError: empty or truncated
        raise TlhubError(f"{path} cannot be read as the layer head {spec}: {exc}", fix=fix) from None
    if head.linear.out_features != model.num_classes:
        raise TlhubError(f"{path} has {head.linear.out_features} classes, the model {model.num_classes}", fix=fix)
    model.layer_grid = head.grid
    model.set_layer_head(head)


def describe(name: str, *, revision: str | None = None, adapter: str | None = None) -> dict[str, Any]:
    """What ``tlhub describe`` prints: adapter, feature dim, preprocessing, layer groups, labels."""
    source, chosen = resolve_backbone(name, revision=revision, adapter=adapter)
    model = load_backbone(chosen, source, pretrained=True)
    _restore_tlhub_state(model, source, chosen)
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
