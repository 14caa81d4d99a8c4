"""Backbone adapters: the contract (:class:`Adapter`) and the entry-point registry."""

from tlhub.adapters.base import ADAPTER_API_VERSION, MODALITIES, Adapter, Preprocessing, SpaceSpec
from tlhub.adapters.registry import ENTRY_POINT_GROUP, AdapterInfo, discover, get_adapter

__all__ = [
    "ADAPTER_API_VERSION",
    "MODALITIES",
    "Adapter",
    "Preprocessing",
    "SpaceSpec",
    "ENTRY_POINT_GROUP",
    "AdapterInfo",
    "discover",
    "get_adapter",
]
