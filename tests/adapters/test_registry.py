"""Entry-point discovery: built-ins register like plugins; broken plugins are reported by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tlhub.adapters import Adapter, discover, get_adapter
from tlhub.adapters.registry import _validate
from tlhub.errors import AdapterNotFoundError, PluginError


def test_builtins_are_discovered_through_entry_points():
    infos = {i.name: i for i in discover(refresh=True)}
    for name, modality in (("timm", "image"), ("transformers", "text")):
        assert infos[name].status == "ok", infos[name].error
        assert infos[name].distribution == "tlhub"
        assert infos[name].modality == modality
        assert isinstance(get_adapter(name), Adapter)


def test_unknown_adapter_suggests_close_names():
    with pytest.raises(AdapterNotFoundError, match="did you mean 'timm'"):
        get_adapter("tim")


def test_known_but_missing_plugin_names_the_pip_package(monkeypatch):
    from tlhub.adapters.registry import KNOWN_PLUGINS

    # an adapter we know of but that is not installed here
    monkeypatch.setitem(KNOWN_PLUGINS, "point-clouds", "tlhub-point-clouds")
    with pytest.raises(AdapterNotFoundError, match="pip install tlhub-point-clouds"):
        get_adapter("point-clouds")


class _Incomplete(Adapter):
    name = "incomplete"
    modality = "image"
    pipeline_tag = "image-classification"
    library_name = "x"

    def claims(self, config):
        return False


def test_contract_is_checked_when_loaded():
    with pytest.raises(PluginError, match="does not implement"):
        _validate(_Incomplete, "incomplete")
    with pytest.raises(PluginError, match="not a subclass"):
        _validate(dict, "x")
    from tlhub.adapters.timm.adapter import TimmAdapter

    with pytest.raises(PluginError, match="registered as 'vision'"):
        _validate(TimmAdapter, "vision")


def _install(tmp_path, name: str, module_source: str, entry_points: dict[str, str]) -> str:
    """pip-install a throwaway plugin package into a target folder; returns that folder."""
    pkg = tmp_path / name
    (pkg / name.replace("-", "_")).mkdir(parents=True)
    (pkg / name.replace("-", "_") / "__init__.py").write_text(textwrap.dedent(module_source))
    eps = "\n".join(f'{k} = "{v}"' for k, v in entry_points.items())
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "{name}"
            version = "0.0.1"
            [project.entry-points."tlhub.adapters"]
            """
        )
        + eps
        + "\n"
    )
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(pkg)],
        check=True,
    )
    return str(target)


def _plugins_list(site: str) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": site}
    out = subprocess.run([sys.executable, "-m", "tlhub", "plugins", "list", "--json"], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_broken_plugin_is_reported_and_others_keep_working(tmp_path):
    site = _install(
        tmp_path,
        "tlhub-broken-demo",
        "import this_module_does_not_exist\n",
        {"broken-demo": "tlhub_broken_demo:Adapter", "timm": "tlhub_broken_demo:Hijack"},
    )
    rows = {(r["name"], r["distribution"]): r for r in _plugins_list(site)}
    broken = rows[("broken-demo", "tlhub-broken-demo")]
    assert broken["status"] == "broken"
    assert "this_module_does_not_exist" in broken["error"]
    assert "tlhub-broken-demo" in broken["fix"]
    # a plugin cannot replace a built-in: the built-in keeps working, the claim is refused
    assert rows[("timm", "tlhub")]["status"] == "ok"
    assert rows[("timm", "tlhub-broken-demo")]["status"] == "conflict"
    assert rows[("transformers", "tlhub")]["status"] == "ok"


def test_doctor_explains_the_broken_plugin(tmp_path):
    site = _install(tmp_path, "tlhub-bad-contract", "class NotAnAdapter: pass\n", {"bad-contract": "tlhub_bad_contract:NotAnAdapter"})
    env = {**os.environ, "PYTHONPATH": site}
    out = subprocess.run([sys.executable, "-m", "tlhub", "plugins", "doctor"], env=env, capture_output=True, text=True)
    assert out.returncode == 1
    assert "bad-contract" in out.stdout and "not a subclass of tlhub.adapters.Adapter" in out.stdout
    assert "fix:" in out.stdout
