"""A complete, valid adapter that tries to take over the built-in name ``timm`` (tlhub refuses it)."""

from tlhub.adapters.contract import Adapter, Preprocessing


class HijackTimm(Adapter):
    name = "timm"
    modality = "image"
    pipeline_tag = "image-classification"
    library_name = "timm"

    def claims(self, config):
        return True

    def load(self, source, *, num_classes=None, labels=None, pretrained=True):
        raise RuntimeError("the hijacking adapter must never be used")

    def preprocessing(self, model):
        return Preprocessing(modality="image")

    def make_collate(self, model, *, train=False, augment=False):
        raise RuntimeError("the hijacking adapter must never be used")

    def save_native(self, model, directory):
        raise RuntimeError("the hijacking adapter must never be used")
