"""Hugging Face helpers shared by adapters built on transformers: the built-in ``transformers``
adapter, tlhub-sentence-transformers and tlhub-audio use them, and so can a plugin.

- :func:`quiet_transformers_logging`: silence transformers' expected warnings while loading;
- :func:`load_classifier`: an ``AutoModelFor...Classification`` with a new or its own head;
- :func:`label_kwargs` / :func:`write_labels`: ``id2label``/``label2id`` in and out of a config;
- :func:`find_classifier` and :class:`InputCapture`: the head's final Linear and its input
  (the features, whatever pooling the architecture does);
- :func:`layer_index_groups`: layer groups from parameter names such as ``encoder.layer.N.``;
- :func:`max_sequence_length`: the sequence length a checkpoint was trained for.

Importing this module is light; torch and transformers are imported by the functions.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from tlhub.errors import TlhubError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from tlhub.adapters.model import LayerGroup

#: ``.layer.3.``, ``.layers.3.``, ``.block.3.``, ``.h.3.`` (GPT-2): a transformer layer's index.
LAYER_INDEX = re.compile(r"\.(?:layer|layers|block|blocks|h)\.(\d+)\.")
#: parameter-name fragments of embedding layers
EMBEDDING_MARKERS = (".embeddings.", ".embed_", ".wte.", ".wpe.")
#: attribute names of classification heads, in the order transformers architectures use them
HEAD_ATTRIBUTES = ("classifier", "score", "logits_proj", "head")


@contextlib.contextmanager
def quiet_transformers_logging() -> Iterator[None]:
    """Only errors from transformers inside the block: "newly initialized classifier" and the
    like are expected when a new head is the point of transfer learning."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def label_kwargs(labels: Sequence[str]) -> dict[str, Any]:
    """``num_labels``/``id2label``/``label2id`` config arguments for ``labels`` (at least one label)."""
    return {"num_labels": max(len(labels), 1), "id2label": dict(enumerate(labels)), "label2id": {l: i for i, l in enumerate(labels)}}


def write_labels(config: Any, labels: Sequence[str], marker: dict[str, str] | None = None) -> None:
    """Record ``labels`` (and tlhub's ``{"tlhub_adapter": name}`` marker) in a transformers config
    before ``save_pretrained``, so ``pipeline(...)`` shows the real label names."""
    for key, value in (marker or {}).items():
        setattr(config, key, value)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}


def load_classifier(auto_class: Any, path: str | Path, *, labels: Sequence[str] | None, pretrained: bool = True,
                    head_suffixes: Sequence[str] = ("ForSequenceClassification",)) -> tuple[Any, list[str]]:
    """``(model, labels)``: ``auto_class`` (e.g. ``AutoModelForSequenceClassification``) from ``path``.

    ``labels`` given: a new head of that size (the checkpoint's own is replaced when its size
    differs). ``labels=None``: the checkpoint's head and label names when its architecture (one of
    ``head_suffixes``) has one, else headless with ``labels == []``. ``pretrained=False``: the same
    architecture with random weights. Never runs remote code.
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    has_head = any(a.endswith(tuple(head_suffixes)) for a in (config.architectures or []))
    if labels is None:
        labels = [config.id2label[i] for i in range(config.num_labels)] if has_head else []
    labels = [str(label) for label in labels]
    kwargs = label_kwargs(labels)
    with quiet_transformers_logging():
        if pretrained:
            mismatched = bool(labels) and has_head and len(labels) != config.num_labels  # a new head on a fine-tuned classifier
            model = auto_class.from_pretrained(path, trust_remote_code=False, ignore_mismatched_sizes=mismatched, **kwargs)
        else:
            model = auto_class.from_config(AutoConfig.from_pretrained(path, trust_remote_code=False, **kwargs))
    return model, labels


def find_classifier(model: "nn.Module", attributes: Sequence[str] = HEAD_ATTRIBUTES) -> "nn.Linear":
    """The last Linear of a transformers model's classification head (``classifier``,
    ``classifier.out_proj``, ``score``...)."""
    from torch import nn

    for attr in attributes:
        head = getattr(model, attr, None)  # transformers architectures name their heads differently
        if isinstance(head, nn.Linear):
            return head
        if isinstance(head, nn.Module):
            linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
            if linears:
                return linears[-1]
    raise TlhubError(f"cannot find the classification head of {type(model).__name__} (looked for {', '.join(attributes)})",
                     fix="this architecture needs its own adapter plugin; see docs/writing-a-plugin.md")


class InputCapture:
    """Keeps the input of ``module`` from the last forward pass: the features a classifier sees,
    whatever pooling the architecture does before it. ``take()`` returns it and lets it go."""

    def __init__(self, module: "nn.Module"):
        self._value = None
        module.register_forward_pre_hook(self._hook)

    def _hook(self, module, args) -> None:
        self._value = args[0]

    def take(self):
        value, self._value = self._value, None
        if value is None:
            raise TlhubError("the classifier did not run in the forward pass, so there are no features to return",
                             fix="the model's forward must go through its classification head")
        return value


def is_embedding(name: str) -> bool:
    return any(marker in name for marker in EMBEDDING_MARKERS)


def layer_index_groups(names: Iterable[str], *, first: Sequence[tuple[str, Callable[[str], bool]]] = (("embeddings", is_embedding),),
                       rest: str = "pooler", last: Sequence[tuple[str, Callable[[str], bool]]] = (),
                       pattern: re.Pattern = LAYER_INDEX) -> list["LayerGroup"]:
    """Layer groups, input -> output, from parameter names: the ``first`` groups (name,
    predicate; embeddings by default), one group ``layer.N`` per layer index that ``pattern``
    finds (``encoder.layer.N.``), a ``rest`` group for whatever else there is (pooler, final
    norm), then the ``last`` groups. A name goes to the first group whose predicate accepts it
    (``last`` predicates are tried first); empty groups are left out. Leave the head's
    parameters out of ``names``."""
    from tlhub.adapters.model import LayerGroup

    heads: dict[str, list[str]] = {g: [] for g, _ in first}
    tails: dict[str, list[str]] = {g: [] for g, _ in last}
    layers: dict[int, list[str]] = {}
    others: list[str] = []
    for name in names:
        group = next((g for g, accepts in last if accepts(name)), None)
        if group is not None:
            tails[group].append(name)
            continue
        group = next((g for g, accepts in first if accepts(name)), None)
        match = pattern.search(name) if group is None else None
        if group is not None:
            heads[group].append(name)
        elif match:
            layers.setdefault(int(match.group(1)), []).append(name)
        else:
            others.append(name)
    groups = [LayerGroup(g, tuple(n)) for g, n in heads.items() if n]
    groups += [LayerGroup(f"layer.{i}", tuple(n)) for i, n in sorted(layers.items())]
    if others:
        groups.append(LayerGroup(rest, tuple(others)))
    groups += [LayerGroup(g, tuple(n)) for g, n in tails.items() if n]
    return groups


def max_sequence_length(path: str | Path, tokenizer: Any, config: Any, default: int) -> int:
    """The sequence length a checkpoint was trained for: sentence-transformers'
    ``max_seq_length`` when the folder records one, else the smallest of the tokenizer's
    ``model_max_length``, the config's ``max_position_embeddings`` and ``default`` (transformers'
    own cap is often 512 or "infinite", and longer inputs cost quadratic time)."""
    st_config = Path(path) / "sentence_bert_config.json"
    if st_config.is_file():
        try:
            value = int(json.loads(st_config.read_text(encoding="utf-8"))["max_seq_length"])
            if value > 0:
                return value
        except (KeyError, ValueError, TypeError):
            pass
    limits = [tokenizer.model_max_length, getattr(config, "max_position_embeddings", None), default]
    return int(min(x for x in limits if isinstance(x, (int, float)) and x > 0))
