"""The package layout is the architecture: lower layers never import upper ones.

Layers, from the bottom (a module may import its own layer and any layer below it):

0. ``tlhub`` (the lazy facade), ``tlhub.errors``, ``tlhub.hashing``, ``tlhub.fileio``
1. ``tlhub.offline``     offline pretrained assets into the Hugging Face cache
2. ``tlhub.adapters``    the adapter contract, registry, shared helpers, timm and transformers
3. ``tlhub.core``        names -> sources, ``create_model``, prediction, the saved-model folder
4. ``tlhub.data``        sources, columns, splits, checks, built-in data sets
5. ``tlhub.engine``      config, strategies, trainer, checkpoints, features, evaluation, plots
6. ``tlhub.publishing``  model cards, Spaces, pushes
7. ``tlhub.plugins``     the conformance kit and the plugin scaffold
8. ``tlhub.cli``         the command line (and ``python -m tlhub``)

Every import counts, also those inside functions (they run too, only later).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "tlhub"
LAYERS = [
    ("tlhub", "tlhub.errors", "tlhub.hashing", "tlhub.fileio"),
    ("tlhub.offline",),
    ("tlhub.adapters",),
    ("tlhub.core",),
    ("tlhub.data",),
    ("tlhub.engine",),
    ("tlhub.publishing",),
    ("tlhub.plugins",),
    ("tlhub.cli", "tlhub.__main__"),
]


def layer_of(module: str) -> int:
    best, rank = -1, None
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, rank = len(name), i
    assert rank is not None, f"{module} is in no layer: add it to LAYERS"
    return rank


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def tlhub_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                out.append((node.lineno, f"{base}.{node.module}" if node.module else base))
            elif node.module:
                out.append((node.lineno, node.module))
    return [(line, name) for line, name in out if name == "tlhub" or name.startswith("tlhub.")]


SOURCES = sorted(p for p in ROOT.rglob("*.py") if "templates" not in p.relative_to(ROOT).parts)


def test_every_module_has_a_layer():
    for path in SOURCES:
        layer_of(module_name(path))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_import_goes_up(path: Path):
    importer = module_name(path)
    if importer == "tlhub":
        return  # the facade re-exports from every layer, lazily
    mine = layer_of(importer)
    upward = [f"line {line}: {name} (layer {layer_of(name)} > {mine})" for line, name in tlhub_imports(path) if layer_of(name) > mine]
    assert not upward, f"{importer} (layer {mine}) imports from above:\n  " + "\n  ".join(upward)


def test_flat_modules_are_gone():
    """Only the layer-0 modules stand at the top of the package; the rest live in packages."""
    flat = sorted(p.stem for p in ROOT.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert flat == ["errors", "fileio", "hashing"]


def _readme_layout() -> dict[str, set[str]]:
    """The package tree printed in the README's development section: ``dir/  a.py b.py  — what``."""
    text = (ROOT.parent / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- layout -->", 2)[1]
    listed: dict[str, set[str]] = {}
    for line in block.splitlines():
        words = line.split("—", 1)[0].split()
        if words and words[0].startswith("tlhub/"):
            listed[words[0].rstrip("/")] = {w for w in words[1:] if w.endswith(".py")}
    return listed


def test_readme_tree_matches_the_packages():
    """Every package and module is in the README's tree, and the tree names nothing that is gone."""
    actual: dict[str, set[str]] = {}
    for init in ROOT.rglob("__init__.py"):
        folder = init.parent
        rel = folder.relative_to(ROOT.parent).as_posix()
        if "templates" in rel.split("/") or "/metrics/" in rel + "/":
            continue  # template trees and the bundled `evaluate` metric modules are data, not code
        actual[rel] = {p.name for p in folder.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert _readme_layout() == actual
