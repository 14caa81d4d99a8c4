"""Backbone adapters: the contract every adapter implements, the entry-point registry, the
helpers adapters share, and the built-in ``timm`` and ``transformers`` adapters.

This package is what a plugin imports. Everything here is light: torch and the backbone libraries
are imported by the adapters' ``load`` methods (and by the helpers' functions), never at import time.

- the contract: :class:`Adapter` (:data:`ADAPTER_HOOKS`), :class:`Preprocessing`,
  :class:`WeightsInfo`, :class:`SpaceSpec`, :class:`BackboneSource`; the model side is
  ``tlhub.adapters.model.TransferModel`` (imports torch, so import it in your model module);
- image helpers: :func:`image_collate`, :func:`image_transform`, :func:`load_image`, :func:`to_rgb`;
- audio helpers: :func:`write_wav`, :func:`wav_bytes`, :class:`CropRandom`, :func:`crop`;
- Hugging Face helpers (:mod:`tlhub.adapters.hf`): :func:`load_classifier`, :func:`find_classifier`,
  :class:`InputCapture`, :func:`layer_index_groups`, :func:`quiet_transformers_logging`,
  :func:`write_labels`, :func:`label_kwargs`, :func:`max_sequence_length`;
- lineage: :func:`default_weights_info`, :func:`hub_repo_id`, :func:`card_metadata`.
"""

from tlhub.adapters.audio import CropRandom, crop, wav_bytes, write_wav
from tlhub.adapters.contract import ADAPTER_API_VERSION, ADAPTER_HOOKS, MODALITIES, Adapter, Preprocessing, SpaceSpec, WeightsInfo
from tlhub.adapters.hf import (
    InputCapture,
    find_classifier,
    label_kwargs,
    layer_index_groups,
    load_classifier,
    max_sequence_length,
    quiet_transformers_logging,
    write_labels,
)
from tlhub.adapters.images import image_collate, image_transform, load_image, to_rgb
from tlhub.adapters.registry import ENTRY_POINT_GROUP, AdapterInfo, discover, get_adapter
from tlhub.adapters.source import BackboneSource, card_metadata, default_weights_info, download_files, hub_repo_id

__all__ = [
    "ADAPTER_API_VERSION",
    "ADAPTER_HOOKS",
    "MODALITIES",
    "Adapter",
    "AdapterInfo",
    "BackboneSource",
    "CropRandom",
    "ENTRY_POINT_GROUP",
    "InputCapture",
    "Preprocessing",
    "SpaceSpec",
    "WeightsInfo",
    "card_metadata",
    "crop",
    "default_weights_info",
    "discover",
    "download_files",
    "find_classifier",
    "get_adapter",
    "hub_repo_id",
    "image_collate",
    "image_transform",
    "label_kwargs",
    "layer_index_groups",
    "load_classifier",
    "load_image",
    "max_sequence_length",
    "quiet_transformers_logging",
    "to_rgb",
    "wav_bytes",
    "write_labels",
    "write_wav",
]
