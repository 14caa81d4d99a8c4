"""The built-in ``transformers`` adapter: text encoders from transformers, as sequence classifiers.

Models are built as ``AutoModelForSequenceClassification`` so that what tlhub saves is exactly
what ``pipeline("text-classification")`` and ``from_pretrained`` load, with the real label names
in ``id2label``. The pooled features are whatever the architecture's own classifier consumes
(BERT's pooler output, RoBERTa's first token...), captured at the classifier's input, so a linear
probe trained on cached features is the very head that gets saved.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from tlhub.adapters.base import Adapter, Preprocessing, SpaceSpec

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
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from tlhub.adapters.transformers_model import TransformersTransferModel
        from tlhub.hub import download_files

        source = download_files(source, self.allow_patterns, required=("*.safetensors", "tokenizer*"))
        if labels is None and num_classes is not None:
            labels = [f"LABEL_{i}" for i in range(num_classes)]
        config = AutoConfig.from_pretrained(source.path, trust_remote_code=False)
        has_head = any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
        if labels is None:
            # keep the checkpoint's own head and label names, if it has one; else headless
            labels = [config.id2label[i] for i in range(config.num_labels)] if has_head else []
        num_labels = len(labels)
        kwargs = dict(num_labels=max(num_labels, 1), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
        if num_labels and has_head and num_labels != config.num_labels:
            kwargs["ignore_mismatched_sizes"] = True  # a new head on a fine-tuned classifier
        # The "newly initialized classifier" warning is expected: attaching a new head is the point.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            if pretrained:
                model = AutoModelForSequenceClassification.from_pretrained(source.path, trust_remote_code=False, **kwargs)
            else:
                config = AutoConfig.from_pretrained(source.path, **kwargs)
                model = AutoModelForSequenceClassification.from_config(config)
        finally:
            hf_logging.set_verbosity(verbosity)
        tokenizer = AutoTokenizer.from_pretrained(source.path)
        max_length = _max_length(source.path, tokenizer, model.config)
        return TransformersTransferModel(
            model, tokenizer, max_length=max_length, adapter_name=self.name, source=source.display_name, labels=labels, revision=source.commit
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
        model.hf_model.config.id2label = dict(enumerate(model.labels))
        model.hf_model.config.label2id = {l: i for i, l in enumerate(model.labels)}
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


def _max_length(path, tokenizer, config) -> int:
    """The sequence length the checkpoint was trained for (sentence-transformers records it)."""
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        try:
            return int(json.loads(st_config.read_text())["max_seq_length"])
        except (KeyError, ValueError, TypeError):
            pass
    limits = [tokenizer.model_max_length, getattr(config, "max_position_embeddings", None), DEFAULT_MAX_LENGTH]
    return int(min(x for x in limits if isinstance(x, (int, float)) and x > 0))
