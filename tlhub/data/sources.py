"""Opening the data source: a built-in name, a local folder or file, a Hub dataset (with its
configuration), or an in-memory ``Dataset`` / ``DatasetDict``; and which source split plays
which role (train / validation / test).

:func:`open_source` returns a :class:`RawSource`: the source's splits as ``datasets`` read them,
plus what later stages need to know about where they came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tlhub.data.context import LoadContext
from tlhub.data.local import declared_configs, local_fix, rowless, scan, utf8_copy
from tlhub.data.spec import DATA_FILE_SUFFIXES, VALIDATION_SPLIT_NAMES
from tlhub.errors import DataError, suggest

if TYPE_CHECKING:  # pragma: no cover
    import datasets

#: The fix for a configuration asked of a source that has none.
_NO_CONFIGS_FIX = (
    "leave --data-config unset (data_config / DataSpec.config_name): only Hub datasets and dataset folders "
    "whose README.md declares configs have configurations"
)


@dataclass(frozen=True)
class RawSource:
    """The source's splits, unchanged, and where they came from."""

    splits: "datasets.DatasetDict"
    name: str  # honest name for reports and model cards
    info: dict[str, Any]  # provenance: origin, licence, citation, Hub id, configuration, ...
    split_files: dict[str, list[str]] = field(default_factory=dict)  # source split -> its local data files
    base_dir: Path | None = None  # relative image paths in a table resolve against this folder
    repaired_splits: frozenset[str] = frozenset()  # splits read from UTF-8-repaired copies
    trusted_mode: str | None = None  # built-in image data: every image has this mode, no check needed

    def file_of(self, split: str) -> str | None:
        """The split's data file when it has exactly one (to name it in the report)."""
        files = self.split_files.get(split)
        return files[0] if files and len(files) == 1 else None


def open_source(ctx: LoadContext) -> RawSource:
    import datasets

    spec = ctx.spec
    src = spec.source
    if not isinstance(src, str):
        _refuse_config(spec.config_name, "an in-memory dataset")
        dsd = src if isinstance(src, datasets.DatasetDict) else datasets.DatasetDict({spec.train_split: src})
        name = None
        for ds in dsd.values():
            name = name or ds.info.dataset_name
        return RawSource(_flatten(dsd), name or "in-memory dataset", {"origin": "in-memory datasets object"})

    from tlhub.data.builtin import load_builtin, resolve_builtin

    builtin = resolve_builtin(src)
    if builtin is not None:
        _refuse_config(spec.config_name, f"the built-in {builtin!r}")
        dsd, info = load_builtin(builtin, progress=ctx.progress)
        trusted = info.get("image_mode") if info.get("modality") == "image" else None
        return RawSource(dsd, info["source_name"], info, trusted_mode=trusted)

    path = Path(src).expanduser()
    if path.exists():
        return _open_local(ctx, path)
    looks_local = src.startswith((".", "/", "~", "\\")) or src.count("/") > 1 or Path(src).suffix.lower() in DATA_FILE_SUFFIXES
    if looks_local:
        raise DataError(f"data not found: {src} (no such file or folder)", fix="check the path, or name a built-in (fashion-mnist, vader-movies) or a Hub dataset")
    return _open_hub(ctx, src)


def _refuse_config(config_name: str | None, what: str) -> None:
    if config_name is not None:
        raise DataError(f"{what} has no configurations, but the configuration {config_name!r} was asked for", fix=_NO_CONFIGS_FIX)


def _flatten(dsd):
    import datasets

    out = {}
    for name, ds in dsd.items():
        if not isinstance(ds, datasets.Dataset):
            raise DataError(f"split {name!r} is a {type(ds).__name__}, not a datasets.Dataset", fix="pass a map-style Dataset/DatasetDict (not streaming)")
        out[name] = ds.flatten_indices(keep_in_memory=True) if ds._indices is not None else ds
    return datasets.DatasetDict(out)


def _open_local(ctx: LoadContext, path: Path) -> RawSource:
    import datasets

    spec = ctx.spec
    path = path.resolve()
    base_dir = path if path.is_dir() else path.parent
    info = {"origin": f"local {'folder' if path.is_dir() else 'file'} {path}"}
    if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
        _refuse_config(spec.config_name, f"the saved dataset {path}")
        try:
            obj = datasets.load_from_disk(str(path))
        except Exception as exc:
            raise DataError(f"cannot read the saved dataset in {path} ({_root_cause(exc)})", fix="re-save it with save_to_disk") from None
        dsd = obj if isinstance(obj, datasets.DatasetDict) else datasets.DatasetDict({spec.train_split: obj})
        return RawSource(_flatten(dsd), f"{path.name} (local saved dataset)", info, base_dir=base_dir)

    configs = declared_configs(path)
    if configs:  # a dataset repository's folder: its README says which files make each configuration
        try:
            dsd = _load_configured(str(path), spec.config_name, lambda: configs)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"cannot read the dataset folder {path}: {_root_cause(exc)}", fix="check the data files that its README.md names under configs:") from None
        info["config_name"] = spec.config_name
        name = path.name + (f":{spec.config_name}" if spec.config_name else "") + " (local dataset folder)"
        return RawSource(_as_dict(dsd, spec.train_split), name, info, base_dir=base_dir)

    _refuse_config(spec.config_name, f"the local {'folder' if path.is_dir() else 'file'} {path} (its README.md declares no configs)")
    found = scan(ctx, path)
    module, data_files, repaired = found.module, found.split_files, set()
    if module in ("csv", "json"):
        copies = {}
        for split, files in data_files.items():
            copies[split] = []
            for f in files:
                copy, was_repaired = utf8_copy(ctx, f)
                copies[split].append(copy)
                if was_repaired:
                    repaired.add(split)
        data_files = copies
    if module in ("csv", "json"):
        for split, files in found.split_files.items():
            why = [(f, rowless(f, module)) for f in files]
            if all(w is not None for _, w in why):
                shown = "; ".join(f"{Path(f).name} {w}" for f, w in why[:3])
                raise DataError(
                    f"the {split!r} split of {path} has no data rows: {shown}",
                    fix=("add rows below the header (one example per line: its input and its label)" if module == "csv"
                         else "add records (one JSON object per line, with its input and its label)") + ", or pass a file that has them",
                )
    try:
        # explicit file lists: datasets' own pattern search globs the tree once per split keyword
        # (seconds for a few thousand images); one os.walk here finds the same files
        dsd = datasets.load_dataset(module, data_files=data_files, **found.kwargs)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read {path} with the {module!r} loader: {_root_cause(exc)}", fix=local_fix(module)) from None
    return RawSource(
        _flatten(dsd),
        f"{path.name} (local {module} data)",
        info,
        split_files=found.split_files,
        base_dir=base_dir,
        repaired_splits=frozenset(repaired),
    )


def _open_hub(ctx: LoadContext, name: str) -> RawSource:
    spec = ctx.spec
    try:
        dsd = _load_configured(name, spec.config_name, lambda: _hub_configs(name))
    except DataError:
        raise
    except Exception as exc:
        cause = _root_cause(exc)
        offline = _hub_offline()
        from tlhub.data.builtin import builtin_names

        close = suggest(name, builtin_names())
        fix = (
            "offline (HF_HUB_OFFLINE=1) a Hub dataset must already be in the datasets cache (HF_DATASETS_CACHE / HF_HOME): load it once online"
            if offline
            else "check the name on https://huggingface.co/datasets (and the configuration: --data-config), or use a local folder/file; "
            "without network access set HF_HUB_OFFLINE=1 to use the datasets cache"
        )
        if close:
            fix = f"did you mean the built-in {close[0]!r}? otherwise {fix}"
        raise DataError(f"cannot load the dataset {name!r}: {cause}", fix=fix) from None
    info = {"origin": "Hugging Face Hub", "hub_id": name, "config_name": spec.config_name}
    return RawSource(_as_dict(dsd, spec.train_split), name + (f":{spec.config_name}" if spec.config_name else ""), info)


def _as_dict(obj, train_split: str):
    import datasets

    return _flatten(obj if isinstance(obj, datasets.DatasetDict) else datasets.DatasetDict({train_split: obj}))


def _load_configured(name: str, config_name: str | None, configs: Callable[[], list[str]]):
    """``datasets.load_dataset(name, config_name)``.

    When that fails because a configuration is missing (the dataset has several) or unknown, a
    :class:`DataError` that lists the configurations (``configs()``, asked only then); any other
    failure is re-raised as it is, for the caller to explain.
    """
    import datasets

    try:
        return datasets.load_dataset(name, config_name)
    except Exception:
        available = configs()
        listing = ", ".join(available)
        if config_name is None and len(available) > 1:
            raise DataError(
                f"the dataset {name!r} has {len(available)} configurations and none was chosen: {listing}",
                fix=f"pass --data-config NAME (data_config: NAME in the YAML file; DataSpec(config_name=...)) with one of them, e.g. --data-config {available[0]}",
            ) from None
        if config_name is not None and available and config_name not in available:
            close = suggest(config_name, available)
            raise DataError(
                f"the dataset {name!r} has no configuration {config_name!r} (configurations: {listing})",
                fix=(f"did you mean --data-config {close[0]}? " if close else "") + "pass --data-config NAME with one of the configurations above",
            ) from None
        raise


def _hub_configs(name: str) -> list[str]:
    """The configurations of a Hub dataset: from the Hub (online), else from the datasets cache."""
    import datasets

    try:
        names = list(datasets.get_dataset_config_names(name))
    except Exception:  # unreachable or unknown: the caller's error says so
        names = []
    if names in ([], ["default"]):  # offline, datasets answers "default" for any cached dataset
        names = _cached_configs(name) or names
    return names


def _cached_configs(name: str) -> list[str]:
    """Configurations of ``name`` in the datasets cache, laid out by ``datasets`` as
    ``HF_DATASETS_CACHE/<namespace>___<name>/<configuration>/<version>/<hash>``."""
    import datasets.config
    from datasets.naming import camelcase_to_snakecase

    parts = name.split("/")
    parts[-1] = camelcase_to_snakecase(parts[-1])
    root = Path(datasets.config.HF_DATASETS_CACHE).expanduser() / "___".join(parts)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _hub_offline() -> bool:
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover
        return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")



def _root_cause(exc: BaseException) -> str:
    """The innermost exception of a chain, in one line (what actually went wrong)."""
    seen = set()
    while True:
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(exc))
        exc = nxt
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def pick_splits(ctx: LoadContext, source: RawSource) -> dict[str, str]:
    """Role (train / validation / test) -> the source split that plays it, as the spec asks."""
    spec, raw = ctx.spec, source.splits
    available = list(raw.keys())
    for name in available:
        ctx.report.source_rows[name] = len(raw[name])
    listing = ", ".join(repr(s) for s in available) or "none"

    def missing(kind: str, name: str, option: str) -> DataError:
        close = suggest(name, available)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return DataError(f"the {kind} split {name!r} is not in the data (splits: {listing})", fix=f"{hint}pass {option} NAME with one of the splits above")

    if spec.train_split not in raw:
        raise missing("training", spec.train_split, "--train-split")
    roles = {"train": spec.train_split}
    if spec.validation_split is not None:
        if spec.validation_split not in raw:
            raise missing("validation", spec.validation_split, "--validation-split")
        roles["validation"] = spec.validation_split
    else:
        unused = [s for s in available if s.lower() in VALIDATION_SPLIT_NAMES]
        if unused:
            ctx.report.warn(f"the data has a {unused[0]!r} split, which is not used: validation rows are carved out of {spec.train_split!r} (pass --validation-split {unused[0]} to use it)")
    if spec.test_split is not None:
        if spec.test_split in raw:
            roles["test"] = spec.test_split
        elif spec.test_split == "test":
            ctx.report.warn(f"the data has no 'test' split (splits: {listing}): no test evaluation (pass --test-split NAME to evaluate on another split)")
        else:
            raise missing("test", spec.test_split, "--test-split")
    for role, name in roles.items():
        if len(raw[name]) == 0:
            raise DataError(f"the {role} split {name!r} is empty (splits: {', '.join(f'{s} ({len(raw[s]):,} rows)' for s in available)})", fix=f"add rows to it, or choose another split with --{role}-split")
    return roles
