"""The ``sentence-transformers`` adapter.

A sentence-transformers repo is a pipeline of modules listed in ``modules.json``: a transformers
encoder (``Transformer``), then ``Pooling`` (mean, CLS, max...), and optionally ``Dense`` and
``Normalize``. The sentence embedding is what comes out of that whole pipeline; tlhub's built-in
``transformers`` adapter would instead feed BERT's *pooler* output (a tanh layer on the CLS token
that all-MiniLM-L6-v2 never trained) to the classifier. This adapter reads the module configs and
runs the model's own pipeline on transformers' ``AutoModel``, so the features are exactly the
embeddings ``SentenceTransformer.encode`` returns (the tests check it), and attaches the
classification head after them.

Saved models are sentence-transformers folders: the encoder, the same modules, and the head as a
final ``Dense`` module (identity activation) whose output is the logits, with the label names in
``config.json``'s ``id2label``. ``SentenceTransformer(path).encode(texts)`` therefore returns the
logits, and this adapter reloads the folder with the head.

Nothing heavy is imported at module level: tlhub imports this module at discovery time.
"""

from __future__ import annotations

from typing import Any, Callable

from tlhub.adapters.contract import Adapter, Preprocessing, SpaceSpec

#: tlhub's marker in a saved model's config.json: which adapter reloads it.
MARKER = "tlhub_adapter"
#: The ``name`` of the classification head in a saved modules.json.
HEAD_MODULE_NAME = "classifier"
#: used when a repo records no max_seq_length (sentence-transformers' own fallback is the tokenizer's)
DEFAULT_MAX_LENGTH = 256


class SentenceTransformersAdapter(Adapter):
    name = "sentence-transformers"
    modality = "text"
    pipeline_tag = "text-classification"
    library_name = "sentence-transformers"
    requires = ("transformers", "torch", "safetensors")
    allow_patterns = (
        "config.json",
        "modules.json",
        "config_sentence_transformers.json",
        "sentence_bert_config.json",
        "model.safetensors",
        "tokenizer*",
        "vocab*",
        "merges.txt",
        "special_tokens_map.json",
        "spiece.model",
        "sentencepiece.bpe.model",
        "*_Pooling/*",
        "*_Dense/*",
        "*_Normalize/*",
        "*_Transformer/*",
        "README.md",
    )

    def claims(self, config: dict[str, Any]) -> bool:
        # A repo's config.json alone cannot tell a sentence-transformers repo from a plain
        # transformers one (modules.json is a separate file), and tlhub prefers the built-in
        # transformers adapter anyway: users pick this adapter with the "sentence-transformers:"
        # prefix. Models saved by this adapter carry tlhub's marker and are recognised by it.
        return config.get(MARKER) == self.name or config.get("library_name") == self.name

    def load(self, source, *, num_classes=None, labels=None, pretrained=True):
        from tlhub.adapters import download_files
        from tlhub_sentence_transformers.model import build_model

        source = download_files(source, self.allow_patterns)
        if labels is None and num_classes is not None:
            labels = [f"LABEL_{i}" for i in range(num_classes)]
        model = build_model(source.path, labels=labels, pretrained=pretrained, default_max_length=DEFAULT_MAX_LENGTH)
        model.adapter_name = self.name
        model.source = source.display_name
        model.revision = source.commit
        return model

    def preprocessing(self, model) -> Preprocessing:
        return Preprocessing(
            modality="text",
            tokenizer=model.tokenizer.name_or_path,
            max_length=model.max_length,
            extra={
                "tokenizer_class": type(model.tokenizer).__name__,
                "do_lower_case": model.do_lower_case,
                "pipeline": model.pipeline_description(),
            },
        )

    def make_collate(self, model, *, train=False, augment=False) -> Callable[[list[Any]], dict]:
        tokenizer, max_length, lower = model.tokenizer, model.max_length, model.do_lower_case

        def collate(texts: list[Any]) -> dict:
            # as sentence-transformers tokenizes: strip, optionally lower-case, pad to the longest
            texts = [str(t).strip() for t in texts]
            if lower:
                texts = [t.lower() for t in texts]
            return dict(tokenizer(texts, padding=True, truncation="longest_first", max_length=max_length, return_tensors="pt"))

        return collate

    def decode_input(self, value: Any) -> str:
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", errors="replace")
        if isinstance(value, dict) and "text" in value:
            return str(value["text"])
        return str(value)

    def save_native(self, model, directory: str) -> list[str]:
        from tlhub_sentence_transformers.model import save_sentence_transformer

        return save_sentence_transformer(model, directory, marker={MARKER: self.name}, head_name=HEAD_MODULE_NAME)

    def native_load_snippet(self, repo_id: str) -> str:
        return (
            "# pip install sentence-transformers\n"
            "from sentence_transformers import SentenceTransformer\n"
            "from transformers import AutoConfig\n"
            f'model = SentenceTransformer("{repo_id}")\n'
            f'labels = AutoConfig.from_pretrained("{repo_id}").id2label\n'
            '# the last module is the classifier: encode() returns logits\n'
            'probs = model.encode(["A gripping, beautifully acted film."], convert_to_tensor=True).softmax(-1)\n'
            "print({labels[i]: float(p) for i, p in enumerate(probs[0])})\n"
            "# the sentence embeddings (without the classifier): SentenceTransformer(modules=list(model)[:-1])"
        )

    def space_spec(self) -> SpaceSpec:
        return SpaceSpec(
            "Textbox",
            {"lines": 3, "label": "Text"},
            "text",
            requirements=("sentence-transformers>=3.0", "transformers", "torch", "safetensors"),
            template=_space_template(),
        )


def _space_template() -> str | None:
    """The Space template shipped with this package (runs with sentence-transformers, no tlhub)."""
    from pathlib import Path

    folder = Path(__file__).with_name("space_template")
    return str(folder) if (folder / "classifier.py").is_file() else None
