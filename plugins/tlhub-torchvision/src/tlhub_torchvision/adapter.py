"""The 'torchvision' adapter. Light imports only (torch: model.py); collate, decoding, augmentation, Space: defaults."""
import os

from tlhub.adapters import Adapter, Preprocessing, WeightsInfo


class TorchvisionAdapter(Adapter):
    name = "torchvision"  # = the entry-point name
    modality, pipeline_tag, library_name = "image", "image-classification", "torchvision"
    requires = ("torch", "torchvision", "safetensors")
    allow_patterns = ("config.json", "model.safetensors", "README.md")

    def claims(self, config):
        return config.get("tlhub_adapter") == self.name

    def resolve_name(self, name, revision):  # "torchvision:mobilenet_v2[@IMAGENET1K_V1]"
        if "/" in name or os.path.exists(os.path.expanduser(name)):
            return None  # a Hub repo or a folder: tlhub resolves it
        from tlhub_torchvision.model import resolve
        return resolve(name, revision)

    def weights_info(self, source):  # torchvision's own weights are not on the Hub: no name, their licence
        if source.repo_id is None and "checkpoint" in source.config:
            return WeightsInfo(name=None, revision=source.config["weights"], license="bsd-3-clause")
        return super().weights_info(source)

    def load(self, source, *, num_classes=None, labels=None, pretrained=True):
        from tlhub.adapters import download_files
        from tlhub_torchvision.model import load_model
        if "checkpoint" not in source.config:
            source = download_files(source, self.allow_patterns)
        labels = [f"LABEL_{i}" for i in range(num_classes)] if labels is None and num_classes is not None else labels
        return load_model(source, labels=labels, pretrained=pretrained)

    def preprocessing(self, model):  # the model's preprocessing now: set_input_size changes tv_config
        c = model.tv_config
        return Preprocessing("image", input_size=(3, *c["image_size"]), mean=tuple(c["mean"]), std=tuple(c["std"]),
                             interpolation=c["interpolation"], crop_pct=c["crop_pct"])

    def save_native(self, model, directory):
        from tlhub_torchvision.model import save_model
        return save_model(model, directory)

    def native_load_snippet(self, repo_id):
        return (f"import json, torchvision\nfrom huggingface_hub import hf_hub_download as get\nfrom safetensors.torch import load_file\n"
                f"cfg = json.load(open(get({repo_id!r}, 'config.json')))   # labels, image_size, crop_pct, mean, std\n"
                f"model = torchvision.models.get_model(cfg['arch'], num_classes=len(cfg['labels']))\n"
                f"model.load_state_dict(load_file(get({repo_id!r}, 'model.safetensors')))")
