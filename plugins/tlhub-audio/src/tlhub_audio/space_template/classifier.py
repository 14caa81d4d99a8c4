"""Runs with transformers and torchcodec only (no tlhub): the model is a transformers audio
classifier. torchcodec decodes the clip with FFmpeg (packages.txt asks the Space for it) and
resamples it to the model's rate."""

import torch
from torchcodec.decoders import AudioDecoder
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification


def load_classifier(source: str, local: bool):
    """A function from one audio file path to ``{label: probability}`` over every class."""
    model = AutoModelForAudioClassification.from_pretrained(source).eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(source)
    rate = int(feature_extractor.sampling_rate)
    # the clip length the model was trained with (tlhub writes it into preprocessor_config.json)
    max_seconds = float(getattr(feature_extractor, "tlhub_max_seconds", None) or 30.0)

    def probabilities(path):
        samples = AudioDecoder(path, sample_rate=rate, num_channels=1).get_all_samples()
        audio = samples.data[0, : int(max_seconds * rate)].numpy()
        inputs = feature_extractor([audio], sampling_rate=rate, padding=True, return_tensors="pt")
        with torch.inference_mode():
            probs = model(**inputs).logits.softmax(-1)[0]
        return {model.config.id2label[i]: float(p) for i, p in enumerate(probs.tolist())}

    return probabilities
