"""``tlhub plugins new NAME --modality image|text|audio``: scaffold an adapter plugin package.

The package it writes is complete and small: a ``pyproject.toml`` that registers the adapter in
the ``tlhub.adapters`` entry-point group; ``src/<package>/adapter.py`` (the adapter);
``backbone.py`` (a tiny self-contained PyTorch network, the part to replace with your library's
model); ``native.py`` (the ``TransferModel`` around it, saved as ``config.json`` +
``model.safetensors``, and a helper that writes such a backbone with random weights); a README;
and a test that runs tlhub's conformance kit on it. It installs with ``pip install -e`` and passes
the kit as written (see docs/writing-a-plugin.md).

Templates live in ``tlhub/plugins/templates/``: ``common/`` for every modality and
``<modality>/`` for the adapter and model of one; ``{{key}}`` names are replaced by plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tlhub.errors import ConfigError

MODALITIES = ("image", "text", "audio")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_KEY = re.compile(r"\{\{(\w+)\}\}")
#: template file names that cannot be stored under their real name (a ``.gitignore`` would apply
#: to tlhub's own tree); a ``__package__`` folder becomes the import name, ``.tmpl`` is dropped
_RENAMES = {"gitignore": ".gitignore"}


@dataclass
class ScaffoldResult:
    path: Path
    name: str
    distribution: str
    package: str
    modality: str
    files: list[str] = field(default_factory=list)


def templates_dir() -> Path:
    return Path(__file__).resolve().parent / "templates"


def plugin_names(name: str) -> dict[str, str]:
    """Adapter name -> distribution, import package and class names."""
    if not NAME_RE.match(name or ""):
        raise ConfigError(
            f"{name!r} is not a valid adapter name",
            fix="use lowercase letters, digits and single hyphens, starting with a letter (e.g. 'my-audio')",
        )
    from tlhub.adapters.registry import discover

    bare = name[len("tlhub-"):] if name.startswith("tlhub-") else name
    # every entry point tlhub itself registers, working or not (the registry refuses a plugin
    # under a built-in name, so the scaffold must not write one)
    if any(info.name == bare and info.builtin for info in discover()):
        raise ConfigError(f"{bare!r} is a built-in adapter: a plugin cannot replace it", fix="choose another name")
    distribution = f"tlhub-{bare}"
    package = distribution.replace("-", "_")  # "tlhub_" + [a-z0-9_]: always an identifier, never a keyword
    class_name = "".join(part.capitalize() for part in bare.split("-"))
    return {"name": bare, "distribution": distribution, "package": package, "class_name": class_name}


def create_plugin(name: str, *, modality: str, parent: str | Path | None = None, force: bool = False) -> ScaffoldResult:
    """Write the package for adapter ``name`` into ``parent/tlhub-NAME`` and return what was written."""
    if modality not in MODALITIES:
        raise ConfigError(f"unknown modality {modality!r}", fix=f"use one of {', '.join(MODALITIES)}")
    names = plugin_names(name)
    root = Path(parent or ".").expanduser().resolve() / names["distribution"]
    if root.exists() and any(root.iterdir()) and not force:
        raise ConfigError(f"{root} already exists and is not empty", fix="choose another --dir, remove the folder, or pass --force")
    from tlhub import __version__

    values = {**names, "modality": modality, "tlhub_version": __version__,
              "pipeline_tag": {"image": "image-classification", "text": "text-classification", "audio": "audio-classification"}[modality]}
    written: list[str] = []
    for source_root in (templates_dir() / "common", templates_dir() / modality):
        for template in sorted(p for p in source_root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            relative = template.relative_to(source_root)
            parts = [_RENAMES.get(part, part).replace("__package__", names["package"]) for part in relative.parts]
            if parts[-1].endswith(".tmpl"):
                parts[-1] = parts[-1][: -len(".tmpl")]
            target = root.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(template.read_text(encoding="utf-8"), values, where=str(relative)), encoding="utf-8")
            written.append(Path(*parts).as_posix())
    for py in root.rglob("*.py"):
        compile(py.read_text(encoding="utf-8"), str(py), "exec")  # a template bug fails here, not in the user's hands
    return ScaffoldResult(root, names["name"], names["distribution"], names["package"], modality, sorted(written))


def render(text: str, values: dict[str, str], *, where: str = "template") -> str:
    def sub(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            raise ConfigError(f"plugin template {where} uses an unknown key {{{{{key}}}}}", fix="report this as a tlhub bug")
        return str(values[key])

    return _KEY.sub(sub, text)
