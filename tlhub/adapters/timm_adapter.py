"""The built-in ``timm`` adapter: image backbones from timm, loaded from Hub repos or folders.

Builds on timm's own transfer-learning API instead of re-inventing it: ``forward_features`` +
``forward_head(pre_logits=True)`` give the pooled features, ``get_classifier`` the head,
``group_matcher`` the layer groups, the pretrained config the preprocessing, and ``save_for_hf``
the native save layout that ``timm.create_model("hf-hub:...")`` reads back.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from tlhub.adapters.base import Adapter, Preprocessing, SpaceSpec


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

        from tlhub.hub import download_files

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
        from tlhub.adapters.timm_model import TimmTransferModel

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

    def make_collate(self, model, *, train=False, augment=False) -> Callable[[list[Any]], dict]:
        import torch
        from timm.data import create_transform

        from tlhub.images import to_rgb

        if train and augment:
            # Mild, label-preserving augmentation for fine-tuning on small data. timm's ImageNet
            # defaults (crops down to 8% of the image, colour jitter, random interpolation) are
            # built for training from scratch and wreck a pretrained head in the first epoch.
            policy = getattr(model, "auto_augment", None)
            transform = create_transform(
                **model.data_config,
                is_training=True,
                scale=(0.7, 1.0),
                ratio=(0.85, 1.18),
                hflip=0.5,
                color_jitter=0.0,
                auto_augment=None if policy == "trivialaugment" else policy,
            )
            if policy == "trivialaugment":
                # TrivialAugment (Mueller & Hutter 2021): one random op at a random strength per
                # image, no policy to tune; torchvision has it, timm does not. It goes where
                # timm puts its own policies: after crop and flip, before the tensor conversion.
                from torchvision.transforms import TrivialAugmentWide

                steps = list(transform.transforms)
                steps.insert(next(i for i, t in enumerate(steps) if "ToTensor" in type(t).__name__), TrivialAugmentWide())
                transform = type(transform)(steps)
        else:
            transform = create_transform(**model.data_config, is_training=False)

        def collate(images: list[Any]) -> dict:
            return {"pixel_values": torch.stack([transform(to_rgb(img)) for img in images])}

        return collate

    def decode_input(self, value: Any):
        from tlhub.images import load_image

        return load_image(value)

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
        return SpaceSpec("Image", {"type": "pil"}, "image", requirements=("timm", "torch", "safetensors"))


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
