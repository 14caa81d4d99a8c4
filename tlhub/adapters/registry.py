"""Adapter discovery through the ``tlhub.adapters`` entry-point group.

The built-in adapters register through the very same group as third-party plugins (see
tlhub's ``pyproject.toml``). Each entry point is loaded and validated once, at discovery time:
a plugin that fails to import, breaks the contract, or claims a name that is already taken is
reported by name with the fix, and never takes the other adapters down.

Only entry points are ever imported: nothing is loaded from arbitrary paths.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from tlhub.adapters.contract import ADAPTER_API_VERSION, ADAPTER_HOOKS, MODALITIES, Adapter, signature_problems
from tlhub.errors import AdapterNotFoundError, PluginError, suggest

ENTRY_POINT_GROUP = "tlhub.adapters"
#: The distribution that ships the built-in adapters; no plugin may replace them.
BUILTIN_DISTRIBUTION = "tlhub"

#: Adapters we know of but that are not part of tlhub: name -> pip package that provides them.
KNOWN_PLUGINS = {
    "sentence-transformers": "tlhub-sentence-transformers",
    "audio": "tlhub-audio",
    "torchvision": "tlhub-torchvision",
}

#: Key a plugin may write into the ``config.json`` of the models it saves, naming itself, so that
#: ``tlhub.create_model(saved_dir)`` reloads them with the same adapter (see adapter_for_config).
SAVED_BY_KEY = "tlhub_adapter"


@dataclass
class AdapterInfo:
    """One entry point, as discovered: what it is, and whether it works."""

    name: str
    distribution: str
    version: str
    value: str  # "module:attr" the entry point points to
    modality: str = "?"
    status: str = "ok"  # ok | broken | conflict
    error: str | None = None
    fix: str | None = None
    adapter: Adapter | None = field(default=None, repr=False)
    #: where the distribution is installed (its .dist-info folder), to tell two copies apart
    location: str | None = None

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION

    def as_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "modality": self.modality,
            "status": self.status,
            "error": self.error,
            "fix": self.fix,
            "entry_point": self.value,
            "location": self.location,
        }


def _validate(adapter_obj: Any, ep_name: str) -> Adapter:
    """Instantiate and check an entry point's target against the contract; raise PluginError."""
    target = adapter_obj
    if inspect.isclass(target):
        if not issubclass(target, Adapter):
            raise PluginError(
                f"{target.__module__}.{target.__qualname__} is not a subclass of tlhub.adapters.Adapter",
                fix="subclass tlhub.adapters.Adapter (see docs/writing-a-plugin.md)",
            )
        if inspect.isabstract(target):
            missing = ", ".join(sorted(target.__abstractmethods__))
            raise PluginError(f"adapter class does not implement: {missing}", fix="implement those methods of tlhub.adapters.Adapter")
        target = target()
    if not isinstance(target, Adapter):
        raise PluginError(
            f"entry point must point to an Adapter subclass or instance, got {type(target).__name__}",
            fix="point the entry point at your Adapter subclass, e.g. 'my_pkg.adapter:MyAdapter'",
        )
    for attr in ("name", "modality", "pipeline_tag", "library_name"):
        if not isinstance(getattr(target, attr, None), str) or not getattr(target, attr):
            raise PluginError(f"adapter attribute {attr!r} is missing or not a string", fix=f"set the class attribute {attr} = '...'")
    if target.name != ep_name:
        raise PluginError(
            f"adapter says its name is {target.name!r} but is registered as {ep_name!r}",
            fix=f"use the same name in [project.entry-points.\"{ENTRY_POINT_GROUP}\"] and in the class attribute 'name'",
        )
    if target.modality not in MODALITIES:
        raise PluginError(f"unknown modality {target.modality!r}", fix=f"use one of {', '.join(MODALITIES)}")
    if target.api_version != ADAPTER_API_VERSION:
        raise PluginError(
            f"adapter implements contract version {target.api_version}, this tlhub implements {ADAPTER_API_VERSION}",
            fix="upgrade the plugin or tlhub so that both speak the same version",
        )
    problems = signature_problems(type(target), Adapter, ADAPTER_HOOKS)
    if problems:
        raise PluginError("; ".join(problems),
                          fix="give each overridden method the contract's parameters and defaults (docs/writing-a-plugin.md lists every hook)")
    if target.modality != "image" and type(target).make_collate is Adapter.make_collate:
        raise PluginError(f"adapter class does not implement: make_collate (only image adapters get tlhub's default collate)",
                          fix="implement Adapter.make_collate(model, *, train=False, augment=False)")
    missing = [req for req in target.requires if not _importable(req)]
    if missing:
        raise PluginError(f"required package(s) not installed: {', '.join(missing)}", fix=f"pip install {' '.join(missing)}")
    return target


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _entry_points() -> list[tuple[metadata.EntryPoint, str, str, str | None]]:
    found = []
    seen = set()
    for dist in metadata.distributions():
        dist_name = dist.metadata["Name"] or "?"
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            key = (dist_name.lower(), ep.name, ep.value, dist.version)
            if key in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add(key)
            found.append((ep, dist_name, dist.version, _location(dist)))
    return found


def _location(dist: metadata.Distribution) -> str | None:
    path = getattr(dist, "_path", None)  # the .dist-info / .egg-info folder (PathDistribution)
    return str(path) if path is not None else None


def _import_failure(exc: BaseException, ep: metadata.EntryPoint, dist_name: str) -> tuple[str, str]:
    """``(error, fix)`` for an entry point whose module could not be imported or raised."""
    module = ep.value.split(":", 1)[0].strip()
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        missing = exc.name
        if module == missing or module.startswith(missing + "."):
            return (
                f"the entry point points to module {module!r}, which is not installed ({type(exc).__name__}: {exc})",
                f"the installed metadata of {dist_name} is stale or its files are gone: pip install --force-reinstall {dist_name} "
                f"(or pip uninstall {dist_name})",
            )
        top = missing.split(".", 1)[0]
        return (
            f"{type(exc).__name__}: {exc} (imported by {module})",
            f"{dist_name} needs the module {top!r}, which is not installed: pip install {top} (if that is its pip name), "
            f"or reinstall the plugin with its dependencies: pip install --force-reinstall {dist_name}; "
            f"if {dist_name} does not declare it, report it to its authors",
        )
    where = ""
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    if frames:
        code = frames[-1].tb_frame.f_code
        where = f" (at {code.co_filename}:{frames[-1].tb_lineno})"
    if isinstance(exc, ImportError):
        fix = f"a module {dist_name} imports is missing or incompatible: pip install --force-reinstall {dist_name}, or upgrade it and its dependencies"
    elif isinstance(exc, AttributeError) and ":" in ep.value:
        fix = f"the entry point {ep.value!r} names an attribute its module does not define: fix [project.entry-points.\"{ENTRY_POINT_GROUP}\"] of {dist_name} and reinstall it"
    else:
        fix = f"importing the plugin raised an error: fix it, or uninstall it (pip uninstall {dist_name}); reinstalling may help: pip install --force-reinstall {dist_name}"
    return f"{type(exc).__name__}: {exc}{where}", fix


_CACHE: dict[str, AdapterInfo] | None = None
_ALL: list[AdapterInfo] | None = None


def discover(refresh: bool = False) -> list[AdapterInfo]:
    """Every adapter entry point installed, loaded and validated (including broken ones)."""
    global _CACHE, _ALL
    if _ALL is not None and not refresh:
        return _ALL
    infos: list[AdapterInfo] = []
    for ep, dist_name, version, location in _entry_points():
        info = AdapterInfo(ep.name, dist_name, version, ep.value, location=location)
        try:
            info.adapter = _validate(ep.load(), ep.name)
            info.modality = info.adapter.modality
        except PluginError as exc:
            info.status, info.error, info.fix = "broken", exc.message, exc.fix
        except Exception as exc:  # an import error, or anything the plugin raises while loading
            info.status = "broken"
            info.error, info.fix = _import_failure(exc, ep, dist_name)
        infos.append(info)

    # Name conflicts: a built-in always wins; two plugins claiming one name are both refused,
    # because picking one silently would depend on install order.
    by_name: dict[str, list[AdapterInfo]] = {}
    for info in infos:
        by_name.setdefault(info.name, []).append(info)
    for name, claimants in by_name.items():
        if len(claimants) < 2:
            continue
        builtin = [c for c in claimants if c.builtin]
        losers = [c for c in claimants if not c.builtin] if builtin else claimants
        dists = sorted({c.distribution for c in claimants})
        others = ", ".join(dists)
        for c in losers:
            c.status = "conflict"
            if len(dists) == 1:  # one distribution installed twice (two site-packages, or a stale copy)
                copies = "; ".join(f"{x.version} at {x.location or '?'}" for x in claimants)
                c.error = f"{c.distribution} is installed more than once ({copies}), so adapter {name!r} is registered twice"
                c.fix = f"run `pip uninstall {c.distribution}` until none is left, then install it once"
            elif builtin:
                c.error = f"adapter name {name!r} is claimed by several packages: {others} (a built-in adapter)"
                c.fix = (f"built-in adapters cannot be replaced: {c.distribution} must register its entry point "
                         f"under another name (its {c.value} is not used)")
            else:
                c.error = f"adapter name {name!r} is claimed by several packages: {others}; none of them is used, " \
                          f"because picking one would depend on install order"
                c.fix = f"keep one: pip uninstall " + " or ".join(d for d in dists) + " (or ask their authors to use distinct names)"
            c.adapter = None
    _ALL = infos
    _CACHE = {i.name: i for i in infos if i.status == "ok"}
    return infos


def available() -> dict[str, AdapterInfo]:
    discover()
    assert _CACHE is not None
    return _CACHE


def adapter_names() -> set[str]:
    """Every name that is an adapter prefix: installed adapters, working or not, and the plugins
    tlhub knows of. ``broken:ORG/NAME`` must reach :func:`get_adapter`, which says why the plugin
    cannot be used, instead of being taken for a repo id that is then "not found"."""
    return {i.name for i in discover()} | set(KNOWN_PLUGINS)


def get_adapter(name: str) -> Adapter:
    """The working adapter registered under ``name``; a clear error otherwise."""
    infos = discover()
    working = available()
    if name in working:
        return working[name].adapter  # type: ignore[return-value]
    broken = [i for i in infos if i.name == name]
    if broken:
        info = broken[0]
        state = "is installed but cannot be used" if info.status == "broken" else "is refused (name conflict)"
        raise PluginError(f"adapter {name!r} from {info.distribution} {info.version} {state}: {info.error}",
                          fix=f"{info.fix} (`tlhub plugins doctor` explains every plugin)")
    if name in KNOWN_PLUGINS:
        raise AdapterNotFoundError(f"no adapter named {name!r} is installed", fix=f"pip install {KNOWN_PLUGINS[name]}")
    close = suggest(name, list(working) + list(KNOWN_PLUGINS))
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"installed adapters: {', '.join(sorted(working)) or 'none'}"
    raise AdapterNotFoundError(f"no adapter named {name!r}; {hint}", fix="run `tlhub plugins list` to see the installed adapters")


def adapter_for_config(config: dict[str, Any], *, where: str) -> Adapter:
    """The adapter whose library the repo's own ``config.json`` names.

    A model saved by tlhub through a plugin may record that plugin in its ``config.json``
    (:data:`SAVED_BY_KEY`, e.g. ``"tlhub_adapter": "audio"``): a wav2vec2 classifier saved by the
    audio plugin is also a valid transformers config, and the built-in adapter, preferred below,
    would otherwise load it the wrong way. The marker is honoured only when the named adapter is
    installed, working and itself claims the config; when it is missing the error names the
    package to install instead of silently loading the model with another adapter.
    """
    marker = config.get(SAVED_BY_KEY)
    if isinstance(marker, str) and marker:
        adapter = get_adapter(marker)  # raises with the pip command when it is not installed or broken
        if _safe_claims(adapter, config):
            return adapter
    claimants = [i.adapter for i in available().values() if i.adapter is not None and _safe_claims(i.adapter, config)]
    # Built-ins first, so a plugin that claims broadly never hijacks a timm/transformers repo.
    claimants.sort(key=lambda a: not available()[a.name].builtin)
    if claimants:
        return claimants[0]
    library = config.get("library_name") or config.get("model_type") or config.get("architecture")
    broken = [i for i in discover() if i.status != "ok"]
    if broken:
        # the adapter for it may be installed and failing: say so rather than "install it"
        names = ", ".join(f"{i.name!r} ({i.distribution}: {i.error})" for i in broken)
        raise AdapterNotFoundError(
            f"no working adapter recognises {where} (its config.json names {library!r}); installed but broken: {names}",
            fix="repair or uninstall the broken plugin (`tlhub plugins doctor` says how), or name the adapter with a prefix such as 'timm:'",
        )
    raise AdapterNotFoundError(
        f"no installed adapter recognises {where} (its config.json names {library!r})",
        fix="name the adapter explicitly with a prefix such as 'timm:' or 'transformers:', or install the adapter plugin for that library",
    )


def _safe_claims(adapter: Adapter, config: dict[str, Any]) -> bool:
    try:
        return bool(adapter.claims(config))
    except Exception:  # a plugin's bug must not break resolution for everybody else
        return False


def list_adapters() -> list[AdapterInfo]:
    """Every installed adapter entry point, working or not (what ``tlhub plugins list`` shows)."""
    return discover()
