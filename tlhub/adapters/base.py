"""The adapter contract: what every backbone adapter, built-in or third-party, implements.

An adapter teaches tlhub one library (timm, transformers, ...). It is registered in the
``tlhub.adapters`` entry-point group and must not import heavy libraries (torch, the backbone's
own library) at module import time, so that ``tlhub adapters`` stays instant.

The adapter returns a :class:`tlhub.model.TransferModel`: a ``torch.nn.Module`` with
``forward_features`` (pooled features, batch x D), ``forward_head`` (features -> logits) and
``layer_groups`` (ordered input -> output), which is all transfer learning needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.hub import BackboneSource
    from tlhub.model import TransferModel

#: Bump when the contract changes incompatibly; plugins declare the version they implement.
ADAPTER_API_VERSION = 1

MODALITIES = ("image", "text", "audio", "tabular", "video", "multimodal")


@dataclass(frozen=True)
class Preprocessing:
    """What the backbone's own config prescribes for its inputs.

    Image fields follow timm's pretrained data config; text fields name the tokenizer and the
    maximum sequence length; audio fields the sampling rate. Unused fields stay ``None``.
    """

    modality: str
    input_size: tuple[int, ...] | None = None  # (C, H, W) for images
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str | None = None
    crop_pct: float | None = None
    crop_mode: str | None = None
    tokenizer: str | None = None  # path or repo id of the tokenizer
    max_length: int | None = None
    sampling_rate: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}

    def fingerprint(self) -> str:
        """A stable hash: part of the feature-cache key."""
        import hashlib
        import json

        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SpaceSpec:
    """How a Gradio Space demos this adapter's models.

    ``input_component`` is a Gradio component class name (``"Image"``, ``"Textbox"``, ``"Audio"``);
    ``input_kwargs`` its keyword arguments; ``example_kind`` how an example from the validation
    data is written into the Space folder (``"image"`` -> PNG file, ``"text"`` -> string,
    ``"audio"`` -> WAV file).
    """

    input_component: str
    input_kwargs: dict[str, Any] = field(default_factory=dict)
    example_kind: str = "text"
    requirements: tuple[str, ...] = ()
    #: Folder of a Space template (``app.py`` etc.) shipped by the adapter's package; ``None``
    #: uses tlhub's template for the adapter's library under ``spaces/``.
    template: str | None = None


class Adapter(ABC):
    """Base class of every backbone adapter.

    Subclasses set the class attributes and implement the abstract methods. tlhub checks all of
    this when the plugin is loaded (see :mod:`tlhub.adapters.registry`), not when first called.
    """

    #: Entry-point name, e.g. ``"timm"``. Must equal the name the entry point is registered under.
    name: ClassVar[str]
    #: One of :data:`MODALITIES`.
    modality: ClassVar[str]
    #: Hub pipeline tag of the models it produces, e.g. ``"image-classification"``.
    pipeline_tag: ClassVar[str]
    #: Hub ``library_name`` of the saved models, e.g. ``"timm"``.
    library_name: ClassVar[str]
    #: Contract version implemented.
    api_version: ClassVar[int] = ADAPTER_API_VERSION
    #: Files worth downloading from a backbone repo (huggingface_hub ``allow_patterns``).
    allow_patterns: ClassVar[Sequence[str]] = ("*.json", "*.safetensors", "*.txt", "*.md")
    #: Python packages whose absence makes the adapter unusable, and the pip command fixing it.
    requires: ClassVar[Sequence[str]] = ()

    # -- discovery ---------------------------------------------------------------------------
    @abstractmethod
    def claims(self, config: dict[str, Any]) -> bool:
        """True when a repo's own ``config.json`` says it belongs to this adapter's library."""

    # -- loading -----------------------------------------------------------------------------
    @abstractmethod
    def load(
        self,
        source: "BackboneSource",
        *,
        num_classes: int | None = None,
        labels: Sequence[str] | None = None,
        pretrained: bool = True,
    ) -> "TransferModel":
        """Build the model from ``source``.

        With ``num_classes``/``labels`` unset the checkpoint's own head is kept (if it has one);
        otherwise a new head of that size is attached to the pretrained backbone.
        ``pretrained=False`` builds the same architecture with random weights (for baselines).
        """

    @abstractmethod
    def preprocessing(self, model: "TransferModel") -> Preprocessing:
        """The preprocessing this model's own config prescribes."""

    @abstractmethod
    def make_collate(self, model: "TransferModel", *, train: bool = False, augment: bool = False) -> Callable[[list[Any]], dict]:
        """Return ``collate(raw_inputs) -> dict of tensors`` (the model's batch), for a list of raw
        inputs (PIL images, strings, audio arrays). ``train``/``augment`` turn on augmentation."""

    # -- saving ------------------------------------------------------------------------------
    @abstractmethod
    def save_native(self, model: "TransferModel", directory: str) -> list[str]:
        """Save in the backbone library's own layout, so that library loads it without tlhub.
        Returns the written file names."""

    def native_load_snippet(self, repo_id: str) -> str:
        """Python code that loads a saved model with the native library (for model cards)."""
        return f"# load with tlhub\nimport tlhub\nmodel = tlhub.create_model({repo_id!r})"

    # -- Spaces ------------------------------------------------------------------------------
    def space_spec(self) -> SpaceSpec:
        """How to demo this adapter's models in a Gradio Space."""
        default = {"image": SpaceSpec("Image", {"type": "pil"}, "image"), "text": SpaceSpec("Textbox", {"lines": 3}, "text")}
        return default.get(self.modality, SpaceSpec("Textbox", {}, "text"))

    def save_example(self, value: Any, folder, stem: str) -> str | None:
        """Write one decoded input as a file for a Space's examples; return its name, or ``None``
        when the input is text (text examples go into ``examples.json``)."""
        if isinstance(value, str):
            return None
        if hasattr(value, "save"):  # a PIL image
            value.save(f"{folder}/{stem}.png")
            return f"{stem}.png"
        return None

    def decode_input(self, value: Any) -> Any:
        """Turn one raw input (a path, bytes, a PIL image, a string) into what ``make_collate`` takes."""
        return value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={getattr(self, 'name', '?')!r} modality={getattr(self, 'modality', '?')!r}>"
