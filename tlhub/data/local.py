"""Local files as a data source: which files a folder holds, which split each belongs to (named
as ``datasets`` names them), which ``datasets`` builder reads them, and UTF-8 repair of text files.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlhub.data.context import LoadContext
from tlhub.data.spec import IMAGE_EXTENSIONS
from tlhub.errors import DataError

_SPLIT_KEYWORDS = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "testing", "eval", "evaluation"),
}
_AUDIO_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".opus", ".aiff")


def split_of(rel: str) -> str | None:
    """The split a relative path names (first folder, then the file name), datasets-style; or None."""
    import re

    parts = rel.split("/")
    parts[-1] = parts[-1].rsplit(".", 1)[0]
    for part in parts:
        for split, words in _SPLIT_KEYWORDS.items():
            for word in words:
                if re.search(rf"(?:^|[-._ 0-9]){word}(?:[-._ 0-9]|$)", part, flags=re.IGNORECASE):
                    return split
    return None


def module_for(path: Path) -> tuple[str | None, dict[str, Any]]:
    """The ``datasets`` builder (and its arguments) for a file, by its suffix; (None, {}) if none."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "imagefolder", {}
    if suffix in _AUDIO_EXTENSIONS:
        return "audiofolder", {}
    return {
        ".csv": ("csv", {}),
        ".tsv": ("csv", {"sep": "\t"}),
        ".json": ("json", {}),
        ".jsonl": ("json", {}),
        ".parquet": ("parquet", {}),
        ".arrow": ("arrow", {}),
    }.get(suffix, (None, {}))



def local_fix(module: str) -> str:
    """The fix sentence for a local file the ``module`` builder cannot read."""
    return {
        "csv": "check the file is comma-separated with a header row (quote fields that contain commas or line breaks)",
        "json": "use JSON Lines (one object per line) or a JSON array of objects with the same keys",
        "parquet": "re-export the Parquet file",
        "imagefolder": "put the images in one sub-folder per class (cat/1.png, dog/2.jpg)",
    }.get(module, "check the files' format")


@dataclass(frozen=True)
class LocalFiles:
    """What :func:`scan` found: the builder, its arguments, and each split's data files."""

    module: str
    kwargs: dict[str, Any]
    split_files: dict[str, list[str]]


def scan(ctx: LoadContext, path: Path) -> LocalFiles:
    """The builder, its kwargs and split -> files for a local file or folder.

    Splits follow ``datasets``' conventions: a file or folder named with ``train``/``training``,
    ``validation``/``valid``/``val``/``dev`` or ``test``/``testing``/``eval``/``evaluation``
    (delimited by ``-._`` digits or spaces); with no such name, every file is the training split.
    """
    if path.is_file():
        module, kwargs = module_for(path)
        if module is None or module in ("imagefolder", "audiofolder"):
            raise DataError(
                f"tlhub cannot use {path.name} as a data file",
                fix="pass a CSV/TSV/JSON/JSONL/Parquet file, or a folder of images in class sub-folders",
            )
        files = {ctx.spec.train_split: [str(path)]}
        return LocalFiles(module, kwargs, files)

    found: list[tuple[str, Path]] = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        for name in sorted(names):
            if not name.startswith("."):
                full = Path(root) / name
                found.append((full.relative_to(path).as_posix(), full))
    kinds: dict[str, list[tuple[str, Path]]] = {"image": [], "audio": [], "table": [], "metadata": [], "other": []}
    for rel, full in found:
        module, _ = module_for(full)
        if module == "imagefolder":
            kinds["image"].append((rel, full))
        elif module == "audiofolder":
            kinds["audio"].append((rel, full))
        elif module is not None and full.stem == "metadata":
            kinds["metadata"].append((rel, full))
        elif module is not None:
            kinds["table"].append((rel, full))
        else:
            kinds["other"].append((rel, full))
    media = "image" if len(kinds["image"]) >= len(kinds["audio"]) else "audio"
    if kinds[media] and len(kinds[media]) >= len(kinds["table"]):
        module, kwargs = ("imagefolder" if media == "image" else "audiofolder"), {}
        chosen = kinds[media] + kinds["metadata"]
        if kinds["table"]:
            ctx.report.warn(
                f"{len(kinds['table'])} table file(s) in {path} are not used ({', '.join(r for r, _ in kinds['table'][:3])}): "
                f"the {media}s are labelled by their folder names; to use a table of file paths and labels, pass the file itself"
            )
    elif kinds["table"] or kinds["metadata"]:
        tables = kinds["table"] or kinds["metadata"]
        modules = Counter(module_for(full) [0] for _, full in tables)
        if len(modules) > 1:
            raise DataError(
                f"{path} mixes data file formats ({', '.join(sorted(modules))})",
                fix="keep one format per folder (e.g. train.csv and test.csv), or pass one file",
            )
        module, kwargs = module_for(tables[0][1])
        seps = {module_for(full)[1].get("sep") for _, full in tables}
        if len(seps) > 1:
            raise DataError(f"{path} mixes CSV and TSV files", fix="keep one format per folder, or pass one file")
        chosen = tables
    else:
        raise DataError(
            f"{path} holds no data files tlhub can read" + (f" ({len(found)} other files, e.g. {found[0][0]})" if found else " (it is empty)"),
            fix="use a folder of images in class sub-folders (cat/1.png, dog/2.jpg), or CSV/TSV/JSON/JSONL/Parquet files",
        )
    if module in ("imagefolder", "audiofolder") and not kinds["metadata"]:
        # datasets labels each file by the folder that holds it, and silently adds no label
        # column when that does not give two classes at one depth: say what is wrong with the tree
        problem = folder_layout_problem(path, [rel for rel, _ in kinds[media]], media)
        if problem is not None:
            raise DataError(problem[0], fix=problem[1])
    ignored = [rel for rel, _ in kinds["other"]]
    if ignored and module in ("imagefolder", "audiofolder"):
        ctx.report.warn(f"{len(ignored)} file(s) in {path} are not {media} files and are not used: {', '.join(ignored[:5])}{' ...' if len(ignored) > 5 else ''}")

    by_split: dict[str, list[str]] = {}
    unsplit: list[str] = []
    for rel, full in chosen:
        split = split_of(rel)
        if split is None:
            unsplit.append(str(full))
        else:
            by_split.setdefault(split, []).append(str(full))
    if not by_split:
        by_split = {ctx.spec.train_split: unsplit}
        tops = {rel.split("/")[0] for rel, _ in chosen if rel.count("/") >= 2}
        if module == "imagefolder" and len(tops) > 1:
            ctx.report.warn(
                f"the folders {', '.join(sorted(tops)[:5])} in {path} are not named train/validation/test: all their images "
                "form one training split, labelled by the folder that holds each image"
            )
    elif unsplit:
        meta = [f for f in unsplit if Path(f).stem == "metadata"]
        for split in by_split:
            by_split[split].extend(meta)  # a top-level metadata file describes every split
        rest = [f for f in unsplit if Path(f).stem != "metadata"]
        if rest:
            raise DataError(
                f"{len(rest)} file(s) in {path} belong to no split ({', '.join(Path(f).relative_to(path).as_posix() for f in rest[:3])}), "
                f"while others are in splits ({', '.join(sorted(by_split))})",
                fix="move every file into a train/validation/test folder (or name the files so), or pass one file",
            )
    return LocalFiles(module, kwargs, by_split)


def _below_split_folder(parts: list[str]) -> list[str]:
    """The folders below the first one named as a split (train/, val/, test-2024/), or all of them."""
    for i, part in enumerate(parts):
        if split_of(part + "/x") is not None:
            return parts[i + 1 :]
    return parts


def folder_layout_problem(root: Path, rels: list[str], media: str = "image") -> tuple[str, str] | None:
    """What keeps a folder of images (or audio) from being labelled by its class folders, as
    ``(message, fix)``; None when the tree is one level of at least two class folders (under
    optional split folders). ``rels`` are the files' paths relative to ``root``.

    The label of a file is the folder that directly holds it (``datasets``' rule), so the
    problems are: files outside any class folder (a flat folder, or files beside the class
    folders), files at different depths, and a single class (one folder, or class folders that
    each hold one more level of folders with the same name).
    """
    if not rels:
        return None
    expected = f"the expected layout is one folder per class holding its {media}s: {root}/cat/1.png, {root}/dog/2.png " \
               "(optionally under train/ and test/ split folders: train/cat/1.png)"
    folders = [rel.split("/")[:-1] for rel in rels]
    # a split folder (train/, test/) is not a class: strip it before judging the class folder
    classes = [_below_split_folder(parts) for parts in folders]
    loose = [rel for rel, parts in zip(rels, classes) if not parts]
    if loose and len(loose) == len(rels):
        where = "directly in " + (str(root) if all(len(f) == 0 for f in folders) else f"the split folders of {root}")
        return (
            f"{root} has no class folders: all {len(rels):,} {media}s lie {where} (e.g. {loose[0]}), so tlhub cannot tell their classes",
            f"move each {media} into a folder named after its class; {expected}",
        )
    if loose:
        return (
            f"{len(loose):,} {media}(s) in {root} are not in any class folder ({', '.join(loose[:3])}{' ...' if len(loose) > 3 else ''}), "
            f"while {len(rels) - len(loose):,} are",
            f"move them into their class's folder, or delete them; {expected}",
        )
    depths = {len(parts) for parts in classes}
    if len(depths) > 1:
        by_depth: dict[int, str] = {}
        for rel, parts in zip(rels, classes):
            by_depth.setdefault(len(parts), rel)
        examples = ", ".join(by_depth[d] for d in sorted(by_depth))
        return (
            f"the {media}s in {root} are at different folder depths (e.g. {examples}): tlhub takes the folder that directly holds "
            f"each {media} as its class, so the tree must have one level of class folders",
            f"flatten the deeper folders into their class folders (or pass one sub-folder as --data); {expected}",
        )
    names = {parts[-1] for parts in classes}
    if len(names) == 1:
        name = next(iter(names))
        parents = sorted({"/".join(parts) for parts in folders})
        if len(parents) > 1:
            return (
                f"the {media}s in {root} are nested one level too deep: every {media} is in a folder named {name!r} "
                f"({', '.join(p + '/' for p in parents[:3])}{' ...' if len(parents) > 3 else ''}), and the folder directly "
                f"holding each {media} is its class, so they would all be one class",
                f"move the {media}s up out of the {name!r} folders into their class folders; {expected}",
            )
        return (
            f"{root} has a single class folder ({name}/, {len(rels):,} {media}s): a classifier needs at least two classes",
            f"add a folder of {media}s for each other class beside {name}/; {expected}",
        )
    return None


def rowless(file: str, module: str) -> str | None:
    """Why a CSV/TSV/JSON(L) data file holds no data rows (it is empty, or a header only), or None.

    Only the first few lines are read. ``datasets`` answers such a file with its own internals
    ('Instruction "train" corresponds to no data!', 'StopIteration'), which say nothing to a user.
    """
    import csv
    import io

    try:
        with open(file, "rb") as fh:
            head = fh.read(1 << 16)
            more = bool(fh.read(1))
    except OSError:
        return None  # the loader reports an unreadable file itself
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if not text.strip():
        return "is empty" if not more else None
    if module == "csv":
        if more:
            return None
        delimiter = "\t" if file.lower().endswith(".tsv") else ","
        records = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in r)]
        if len(records) == 1:
            return f"has a header row ({', '.join(c.strip() for c in records[0][:6])}) but no data rows"
        return None
    if module == "json" and not more and text.strip() in ("[]", "{}"):
        return f"holds no records ({text.strip()})"
    return None


def utf8_copy(ctx: LoadContext, file: str) -> tuple[str, bool]:
    """``(file, False)`` if it is valid UTF-8; else a copy decoded with replacement characters
    (recorded in the report) and True."""
    path = Path(file)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 24):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return file, False
    except UnicodeDecodeError:
        pass
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}", fix="check the file's permissions") from None
    raw = path.read_bytes()
    bad_lines = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_lines.append(lineno)
            ctx.report.repaired.append({"file": str(path), "line": lineno, "reason": f"invalid UTF-8 byte {line[exc.start:exc.start + 1]!r} replaced with U+FFFD"})
    text = raw.decode("utf-8", errors="replace")
    digest = hashlib.sha256(raw).hexdigest()[:16]
    from tlhub.data.builtin import cache_root

    out = cache_root() / "repaired" / digest / path.name
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    ctx.report.warn(
        f"{path.name} is not valid UTF-8 ({len(bad_lines)} line(s): {', '.join(map(str, bad_lines[:10]))}{', ...' if len(bad_lines) > 10 else ''}): "
        "the bad bytes were replaced with U+FFFD; if the file is in another encoding (Latin-1, cp1252), re-save it as UTF-8"
    )
    return str(out), True



def declared_configs(path: Path) -> list[str]:
    """The configurations a dataset folder's ``README.md`` declares (``configs:`` in its YAML
    header, as a Hub dataset repository does); [] for a plain folder.

    Such a folder is read by ``datasets.load_dataset(folder, config_name)``, which honours the
    declared data files per configuration; a plain scan would mix every configuration's files.
    """
    readme = path / "README.md"
    if not path.is_dir() or not readme.is_file():
        return []
    from huggingface_hub.repocard import metadata_load

    try:
        meta = metadata_load(readme) or {}
    except Exception:  # a README whose YAML header is broken is only documentation here
        return []
    configs = meta.get("configs")
    if not isinstance(configs, list):
        return []
    return [str(c["config_name"]) for c in configs if isinstance(c, dict) and c.get("config_name")]
