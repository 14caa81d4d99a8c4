"""Runs with timm and torch only (no tlhub): timm loads the fine-tuned model and its preprocessing
(input size, crop, mean/std from the model's pretrained config) from the folder or the Hub."""

import timm
import torch


def load_classifier(source: str, local: bool):
    """A function from one PIL image to ``{label: probability}`` over every class."""
    model = timm.create_model(f"local-dir:{source}" if local else f"hf-hub:{source}", pretrained=True).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    labels = model.pretrained_cfg.get("label_names") or [f"LABEL_{i}" for i in range(model.num_classes)]

    def probabilities(image):
        x = transform(image.convert("RGB")).unsqueeze(0)
        with torch.inference_mode():
            probs = model(x).softmax(-1)[0]
        return dict(zip(labels, probs.tolist()))

    return probabilities
