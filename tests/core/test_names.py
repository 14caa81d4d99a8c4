"""Backbone names resolve through huggingface_hub (offline from the cache here)."""

from __future__ import annotations

import pytest

from tlhub.errors import BackboneNotFoundError, RevisionNotFoundError
from tlhub.core.factory import resolve_backbone
from tlhub.core.names import parse_name, resolve


def test_parse_name_forms():
    assert parse_name("hf-hub:timm/resnet50.a1_in1k") == ("timm/resnet50.a1_in1k", None, "timm")
    assert parse_name("transformers:org/name@v1") == ("org/name", "v1", "transformers")
    assert parse_name("org/name", revision="abc") == ("org/name", "abc", None)
    with pytest.raises(RevisionNotFoundError):
        parse_name("org/name@v1", revision="v2")


def test_adapter_chosen_from_repo_metadata(offline_assets):
    source, adapter = resolve_backbone(offline_assets["lite0"])
    assert adapter.name == "timm" and source.config["architecture"] == "tf_efficientnet_lite0"
    source, adapter = resolve_backbone(offline_assets["minilm"])
    assert adapter.name == "transformers" and source.config["model_type"] == "bert"
    # an explicit prefix wins over metadata
    _, adapter = resolve_backbone("hf-hub:" + offline_assets["lite0"])
    assert adapter.name == "timm"


def test_revision_by_commit_and_bad_revision(offline_assets):
    source = resolve(offline_assets["lite0"])
    assert len(source.commit) == 40
    again = resolve(f"{offline_assets['lite0']}@{source.commit}")
    assert again.path == source.path
    with pytest.raises(RevisionNotFoundError, match="not at revision 'v9'") as info:
        resolve(offline_assets["lite0"], revision="v9")
    assert "cached" in str(info.value)


def test_unknown_backbone_suggests_close_name(offline_assets):
    with pytest.raises(BackboneNotFoundError, match="did you mean 'tlhub-offline/tf_efficientnet_lite0.in1k'"):
        resolve("tlhub-offline/tf_efficientnet_lite0.in1k_typo")
    with pytest.raises(BackboneNotFoundError, match="HF_HUB_OFFLINE|tlhub assets install"):
        resolve("nobody/nothing-like-this-exists")
    with pytest.raises(BackboneNotFoundError, match="neither a local folder"):
        resolve("just-a-word")


def test_local_folder(offline_assets, tmp_path):
    source = resolve(offline_assets["lite0"])
    local = resolve(str(source.path))
    assert local.repo_id is None and local.config == source.config
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackboneNotFoundError, match="no config.json"):
        resolve(str(empty))
