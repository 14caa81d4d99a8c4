"""The built-in ``transformers`` adapter: text encoders from transformers, as sequence classifiers.

Models are built as ``AutoModelForSequenceClassification`` so that what tlhub saves is exactly
what ``pipeline("text-classification")`` and ``from_pretrained`` load, with the real label names
in ``id2label``. The pooled features are whatever the architecture's own classifier consumes
(BERT's pooler output, RoBERTa's first token...), captured at the classifier's input, so a linear
probe trained on cached features is the very head that gets saved.
"""

from __future__ import annotations

from typing import Any, Callable

from tlhub.adapters.contract import Adapter, Preprocessing, SpaceSpec

#: transformers' own cap is often 512 or "infinite" (1e30); longer inputs cost quadratic time.
DEFAULT_MAX_LENGTH = 256


class TransformersAdapter(Adapter):
    name = "transformers"
    modality = "text"
    pipeline_tag = "text-classification"
    library_name = "transformers"
    requires = ("transformers", "torch")
    allow_patterns = (
        "config.json",
        "model.safetensors",
        "model-*.safetensors",
        "model.safetensors.index.json",
        "tokenizer*",
        "vocab*",
        "merges.txt",
        "special_tokens_map.json",
        "spiece.model",
        "sentencepiece.bpe.model",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
        "README.md",
    )

    def claims(self, config: dict[str, Any]) -> bool:
        # only architectures transformers can build a sequence classifier for: a wav2vec2 or
        # ViT repo also has a model_type, and belongs to another adapter
        if "model_type" not in config or "architecture" in config:
            return False
        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

        return config["model_type"] in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    def load(self, source, *, num_classes=None, labels=None, pretrained=True):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from tlhub.adapters.hf import load_classifier, max_sequence_length
        from tlhub.adapters.source import download_files
        from tlhub.adapters.transformers.model import TransformersTransferModel

        source = download_files(source, self.allow_patterns, required=("*.safetensors", "tokenizer*"))
        if labels is None and num_classes is not None:
            labels = [f"LABEL_{i}" for i in range(num_classes)]
        model, labels = load_classifier(AutoModelForSequenceClassification, source.path, labels=labels, pretrained=pretrained)
        tokenizer = AutoTokenizer.from_pretrained(source.path)
        max_length = max_sequence_length(source.path, tokenizer, model.config, DEFAULT_MAX_LENGTH)
        return TransformersTransferModel(
            model, tokenizer, max_length=max_length, pooling=source.config.get("tlhub_pooling") or _pooling(source.path), adapter_name=self.name, source=source.display_name, labels=labels, revision=source.commit
        )

    def preprocessing(self, model) -> Preprocessing:
        return Preprocessing(modality="text", tokenizer=model.tokenizer.name_or_path, max_length=model.max_length,
                             extra={"tokenizer_class": type(model.tokenizer).__name__})

    def make_collate(self, model, *, train=False, augment=False) -> Callable[[list[Any]], dict]:
        tokenizer, max_length = model.tokenizer, model.max_length

        def collate(texts: list[Any]) -> dict:
            # dynamic padding: pad to the longest text of the batch, not to max_length
            return dict(tokenizer([str(t) for t in texts], padding=True, truncation=True, max_length=max_length, return_tensors="pt"))

        return collate

    def decode_input(self, value: Any) -> str:
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        return str(value)

    def save_native(self, model, directory: str) -> list[str]:
        from tlhub.adapters.hf import write_labels

        write_labels(model.hf_model.config, model.labels)
        # the token pooling of hidden layers (a head over several layers reads them): the saved
        # folder has no 1_Pooling/ to read it from again
        model.hf_model.config.tlhub_pooling = model.pooling
        model.hf_model.save_pretrained(directory, safe_serialization=True)
        model.tokenizer.model_max_length = model.max_length
        model.tokenizer.save_pretrained(directory)
        return ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]

    def native_load_snippet(self, repo_id: str) -> str:
        return (
            "from transformers import pipeline\n"
            f'classifier = pipeline("text-classification", model="{repo_id}", top_k=3)\n'
            'classifier("A gripping, beautifully acted film.")'
        )

    def space_spec(self) -> SpaceSpec:
        return SpaceSpec("Textbox", {"lines": 3, "label": "Text"}, "text", requirements=("transformers", "torch", "safetensors"))



def _pooling(path) -> str:
    """How the checkpoint's authors pool tokens: sentence-transformers folders say so in
    ``1_Pooling/config.json`` (mean over the attention mask for MiniLM); else the first token."""
    import json
    from pathlib import Path

    config = Path(path) / "1_Pooling" / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    except (OSError, ValueError):
        data = {}
    return "mean" if data.get("pooling_mode_mean_tokens") else "cls"
