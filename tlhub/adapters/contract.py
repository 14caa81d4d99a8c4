"""The adapter contract: what every backbone adapter, built-in or third-party, implements.

An adapter teaches tlhub one library (timm, transformers, ...). It is registered in the
``tlhub.adapters`` entry-point group and must not import heavy libraries (torch, the backbone's
own library) at module import time, so that ``tlhub adapters`` stays instant.

The adapter returns a :class:`tlhub.adapters.model.TransferModel`: a ``torch.nn.Module`` with
``forward_features`` (pooled features, batch x D), ``forward_head`` (features -> logits) and
``layer_groups`` (ordered input -> output), which is all transfer learning needs.

Every hook tlhub calls is declared here (and on ``TransferModel``) with a default or a clear
"not supported" error, so tlhub never probes an adapter with ``hasattr``; :data:`ADAPTER_HOOKS`
lists the overridable ones, and the registry checks each override's signature when the plugin
is loaded (:func:`signature_problems`).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from tlhub.adapters.source import BackboneSource
    from tlhub.adapters.model import TransferModel

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

    def __post_init__(self) -> None:
        # Lists are accepted for convenience, kept as tuples: equality, the cache fingerprint and
        # a save/load round trip must not depend on which a plugin passed.
        for name in ("input_size", "mean", "std"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        """The inverse of :meth:`to_dict` (JSON lists back to tuples; unknown keys go to ``extra``)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        extra = {**dict(values.pop("extra", None) or {}), **{k: v for k, v in data.items() if k not in known}}
        for key in ("input_size", "mean", "std"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values, extra=extra)

    def fingerprint(self) -> str:
        """A stable hash: part of the feature-cache key."""
        import hashlib
        import json

        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class WeightsInfo:
    """Where a model's pretrained weights came from: the lineage a model card shows.

    ``name`` is a Hub repo id, or ``None`` when the weights came from a local folder with no
    recorded origin: a card never shows a local filesystem path. ``license`` is the weights'
    licence as the Hub spells it (``apache-2.0``), or ``None`` when unknown.
    """

    name: str | None = None
    revision: str | None = None
    license: str | None = None


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        load = cls.__dict__.get("load")
        if load is not None and not getattr(load, "_tlhub_explains_weights", False):
            cls.load = _explaining_damaged_weights(load)

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

    def make_collate(self, model: "TransferModel", *, train: bool = False, augment: bool = False) -> Callable[[list[Any]], dict]:
        """Return ``collate(decoded_inputs) -> dict of tensors`` (the model's batch), for a list of
        decoded inputs (PIL images, strings, audio arrays). ``train``/``augment`` turn on augmentation.

        Default, for image adapters only: :func:`tlhub.adapters.images.image_collate` built from
        ``self.preprocessing(model)`` (so it follows ``set_input_size``) and ``model.auto_augment``,
        under ``model.image_key``. Every other modality must implement it (checked at discovery).
        """
        if self.modality != "image":
            from tlhub.errors import PluginError

            raise PluginError(f"adapter {self.name!r} ({self.modality}) does not implement make_collate",
                              fix="implement Adapter.make_collate: only image adapters get tlhub's default collate")
        from tlhub.adapters.images import image_collate

        return image_collate(self.preprocessing(model), train=train, augment=augment,
                             auto_augment=model.auto_augment, key=model.image_key or "pixel_values")

    def restore_preprocessing(self, model: "TransferModel", saved: Preprocessing) -> None:
        """Make a reloaded model use the preprocessing it was trained with (``saved``, from its
        tlhub record), where that differs from what the model's own config gives.

        Default: re-applies ``input_size``/``crop_pct`` through ``model.set_input_size`` and
        ``max_length`` through ``model.set_max_length`` (which raise a ConfigError when the model
        cannot change them). Override it for preprocessing of your own (``extra`` fields).
        """
        current = self.preprocessing(model)
        size = crop = None
        if saved.input_size and current.input_size and tuple(saved.input_size[-2:]) != tuple(current.input_size[-2:]):
            h, w = (int(x) for x in saved.input_size[-2:])
            size = h if h == w else (h, w)
        if saved.crop_pct is not None and saved.crop_pct != current.crop_pct:
            crop = float(saved.crop_pct)
        if size is not None or crop is not None:
            model.set_input_size(size, crop)
        if saved.max_length and saved.max_length != current.max_length:
            model.set_max_length(int(saved.max_length))

    # -- names and lineage -------------------------------------------------------------------
    def resolve_name(self, name: str, revision: str | None) -> "BackboneSource | None":
        """Resolve a name written with this adapter's prefix (``torchvision:mobilenet_v2`` gives
        ``name="mobilenet_v2"``) to a :class:`~tlhub.adapters.source.BackboneSource` of your own,
        e.g. a folder in your library's cache. Default ``None``: tlhub resolves it as a Hub repo
        id or a local folder."""
        return None

    def weights_info(self, source: "BackboneSource") -> WeightsInfo:
        """Where the pretrained weights of ``source`` come from (the card's ``base_model`` and
        ``license``). Default: the Hub repo id and commit, the licence from the snapshot's README
        front matter or its config; for a local folder its tlhub record or README ``base_model``,
        else no name (a card never shows a local path). See
        :func:`tlhub.adapters.source.default_weights_info`."""
        from tlhub.adapters.source import default_weights_info

        return default_weights_info(source)

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
        when the input is text (text examples go into ``examples.json``).

        Default: a PIL image as PNG, an audio clip (``{"array", "sampling_rate"}``) as 16-bit WAV,
        ``None`` for anything else."""
        if isinstance(value, str):
            return None
        if self.modality == "image":
            from PIL import Image

            if isinstance(value, Image.Image):
                value.save(f"{folder}/{stem}.png")
                return f"{stem}.png"
        if self.modality == "audio" and isinstance(value, dict) and "array" in value:
            from tlhub.adapters.audio import write_wav

            write_wav(f"{folder}/{stem}.wav", value["array"], value.get("sampling_rate") or 16000)
            return f"{stem}.wav"
        return None

    def decode_input(self, value: Any) -> Any:
        """Turn one raw input (a path, bytes, a PIL image, a string) into what ``make_collate`` takes.

        Default: image adapters get :func:`tlhub.adapters.images.load_image` (any image form ->
        RGB PIL image, failures name the file); other modalities get ``value`` unchanged."""
        if self.modality == "image":
            from tlhub.adapters.images import load_image

            return load_image(value)
        return value

    def diagnose(self) -> list[tuple[str, str]]:
        """``[(problem, fix), ...]`` for runtime needs an import check cannot see (system
        libraries, drivers), shown by ``tlhub plugins doctor``. Default: nothing to report."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={getattr(self, 'name', '?')!r} modality={getattr(self, 'modality', '?')!r}>"


#: The methods of :class:`Adapter` a plugin may override (the abstract ones must be); the registry
#: checks the signature of each override against these when the plugin is loaded.
ADAPTER_HOOKS = (
    "claims", "load", "preprocessing", "make_collate", "restore_preprocessing", "save_native", "native_load_snippet",
    "resolve_name", "weights_info", "space_spec", "save_example", "decode_input", "diagnose",
)


def _explaining_damaged_weights(load: Callable) -> Callable:
    """Every adapter's ``load``, wrapped: when the library fails on a damaged weights file (empty,
    truncated, not safetensors) or a local folder without weights, the error names the file and the
    fix instead of the library's traceback. Other failures pass through unchanged."""
    import functools

    @functools.wraps(load)
    def checked(self, source, *args, **kwargs):
        from tlhub.errors import TlhubError

        try:
            return load(self, source, *args, **kwargs)
        except TlhubError:
            raise
        except Exception:
            folder = getattr(source, "path", None)
            if folder is None:
                raise
            from tlhub.adapters.source import weights_problem

            # a local folder has nothing left to download: without any weights file, that is the fault
            local = getattr(source, "repo_id", None) is None and kwargs.get("pretrained", True)
            problem = weights_problem(folder, require=local, ignore=("layer_head.safetensors",))  # tlhub.core.record.LAYER_HEAD_FILE
            if problem is None:
                raise
            raise problem from None

    checked._tlhub_explains_weights = True
    return checked


def signature_problems(cls: type, base: type, hooks: Sequence[str]) -> list[str]:
    """One sentence per method of ``cls`` that overrides a hook of ``base`` with a signature
    tlhub cannot call the way it calls the base's (a missing or renamed keyword, a parameter too
    few, a new required one)."""
    problems = []
    for name in hooks:
        mine, theirs = inspect.getattr_static(cls, name, None), base.__dict__.get(name)
        if mine is theirs or theirs is None:
            continue
        if not inspect.isfunction(mine):
            problems.append(f"{cls.__qualname__}.{name} must be a method (found {type(mine).__name__})")
            continue
        why = _incompatible(inspect.signature(theirs), inspect.signature(mine))
        if why:
            problems.append(f"{cls.__qualname__}.{name}{inspect.signature(mine)} does not match the contract "
                            f"{base.__name__}.{name}{inspect.signature(theirs)}: {why}")
    return problems


def _incompatible(base: inspect.Signature, sig: inspect.Signature) -> str | None:
    P = inspect.Parameter
    params = list(sig.parameters.values())
    var_pos = any(p.kind is P.VAR_POSITIONAL for p in params)
    var_kw = any(p.kind is P.VAR_KEYWORD for p in params)
    positional = [p for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    by_name = {p.name: p for p in params if p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)}
    base_positional = [p for p in base.parameters.values() if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    for i, bp in enumerate(base_positional):
        if i >= len(positional):
            if not var_pos:
                return f"it takes no positional parameter {bp.name!r}"
        elif bp.default is not P.empty and positional[i].default is P.empty:
            return f"parameter {positional[i].name!r} needs a default (tlhub may leave {bp.name!r} out)"
    for bp in base.parameters.values():
        if bp.kind is not P.KEYWORD_ONLY:
            continue
        p = by_name.get(bp.name)
        if p is None and not var_kw:
            return f"keyword parameter {bp.name!r} is missing"
        if p is not None and bp.default is not P.empty and p.default is P.empty:
            return f"keyword parameter {bp.name!r} needs a default"
    known = {p.name for p in base.parameters.values()}
    for i, p in enumerate(params):
        if p.default is not P.empty or p.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD):
            continue
        if p.kind is P.KEYWORD_ONLY and p.name not in known:
            return f"it requires keyword {p.name!r}, which tlhub never passes"
        if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD) and i >= len(base_positional) and p.name not in known:
            return f"it requires parameter {p.name!r}, which tlhub never passes"
    return None
