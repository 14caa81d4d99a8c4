"""The built-in ``timm`` adapter: image backbones from timm, loaded from Hub repos or folders.

Builds on timm's own transfer-learning API instead of re-inventing it: ``forward_features`` +
``forward_head(pre_logits=True)`` give the pooled features, ``get_classifier`` the head,
``group_matcher`` the layer groups, the pretrained config the preprocessing, and ``save_for_hf``
the native save layout that ``timm.create_model("hf-hub:...")`` reads back. Batches come from
the contract's default image collate (:func:`tlhub.adapters.images.image_collate`) and inputs are
decoded by its default ``decode_input``.
"""

from __future__ import annotations

from typing import Any

from tlhub.adapters.contract import Adapter, Preprocessing, SpaceSpec


class TimmAdapter(Adapter):
    name = "timm"
    modality = "image"
    pipeline_tag = "image-classification"
    library_name = "timm"
    requires = ("timm", "torch")
    allow_patterns = ("config.json", "model.safetensors", "README.md")

    def claims(self, config: dict[str, Any]) -> bool:
        # timm's hub config has a top-level "architecture" (transformers' has "architectures")
        return config.get("library_name") == "timm" or ("architecture" in config and "pretrained_cfg" in config)

    def load(self, source, *, num_classes=None, labels=None, pretrained=True):
        import timm

        from tlhub.adapters.source import download_files

        if pretrained:
            source = download_files(source, self.allow_patterns, required=("model.safetensors",))
            if not (source.path / "model.safetensors").is_file() and not (source.path / "pytorch_model.bin").is_file():
                from tlhub.errors import BackboneNotFoundError

                raise BackboneNotFoundError(
                    f"{source.display_name} has a config.json but no model.safetensors",
                    fix="use a repo that ships safetensors weights, or save the model with timm.models.save_for_hf(..., safe_serialization=True)",
                )
        kwargs = {}
        if labels is not None and num_classes is None:
            num_classes = len(labels)
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        # local-dir: reads config.json (architecture, pretrained_cfg, model args) and the weights
        # from the folder, exactly as hf-hub: would from the cache; the classifier is dropped by
        # timm when num_classes differs from the checkpoint's.
        model = timm.create_model(f"local-dir:{source.path}", pretrained=pretrained, **kwargs)
        if labels is None:
            labels = _labels_from_cfg(model.pretrained_cfg, model.num_classes)
        from tlhub.adapters.timm.model import TimmTransferModel

        return TimmTransferModel(model, adapter_name=self.name, source=source.display_name, labels=labels, revision=source.commit)

    def preprocessing(self, model) -> Preprocessing:
        cfg = model.data_config
        return Preprocessing(
            modality="image",
            input_size=tuple(cfg["input_size"]),
            mean=tuple(cfg["mean"]),
            std=tuple(cfg["std"]),
            interpolation=cfg["interpolation"],
            crop_pct=cfg["crop_pct"],
            crop_mode=cfg.get("crop_mode"),
        )

    def save_native(self, model, directory: str) -> list[str]:
        import torch
        from timm.models import save_for_hf

        layout = model.memory_format
        model.set_channels_last(False)  # safetensors stores tensors in the default layout only
        try:
            save_for_hf(
                model.model,
                directory,
                model_config={"label_names": list(model.labels)} if model.labels else None,
                data_config={k: model.data_config[k] for k in ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")},
                safe_serialization=True,
            )
        finally:
            model.set_channels_last(layout == torch.channels_last)
        return ["config.json", "model.safetensors"]

    def native_load_snippet(self, repo_id: str) -> str:
        return (
            "import timm, torch\n"
            f'model = timm.create_model("hf-hub:{repo_id}", pretrained=True).eval()\n'
            "cfg = timm.data.resolve_data_config({}, model=model)\n"
            "transform = timm.data.create_transform(**cfg)\n"
            "labels = model.pretrained_cfg['label_names']\n"
            "# probs = model(transform(img.convert('RGB')).unsqueeze(0)).softmax(-1)"
        )

    def space_spec(self) -> SpaceSpec:
        return SpaceSpec("Image", {"type": "pil", "label": "Image", "height": 320}, "image", requirements=("timm", "torch", "safetensors"))


def _labels_from_cfg(cfg: dict[str, Any], num_classes: int) -> list[str]:
    """Human-readable class names from a timm pretrained config (ImageNet synsets -> 'espresso')."""
    names = cfg.get("label_names")
    descriptions = cfg.get("label_descriptions") or {}
    if names is None and num_classes in (1000, 11821, 21841, 21843):
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(cfg)
        if subset:
            info = ImageNetInfo(subset)
            return [info.index_to_description(i) for i in range(num_classes)]
    if names is None:
        return [f"LABEL_{i}" for i in range(num_classes)]
    if isinstance(names, dict):  # {index: name}, with possible gaps
        names = [names.get(str(i), names.get(i, f"LABEL_{i}")) for i in range(num_classes)]
    if not descriptions and len(names) == 1000 and str(names[0]).startswith("n0"):
        from timm.data import ImageNetInfo

        info = ImageNetInfo("imagenet-1k")
        return [info.index_to_description(i) for i in range(num_classes)]
    return [descriptions.get(n, n) for n in names]
