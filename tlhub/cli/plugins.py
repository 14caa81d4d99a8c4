"""``tlhub plugins list|doctor|new|check`` (also ``tlhub adapters``): the installed backbone adapters.

- ``list``: name, package, version, modality and status of every adapter entry point
- ``doctor``: why each broken adapter is broken, and the command that fixes it (exit status 1
  when any is broken)
- ``new NAME --modality image|text|audio``: scaffold a plugin package that installs and passes
  the conformance kit
- ``check NAME BACKBONE --examples ... --labels ...``: run the conformance kit (tlhub.plugins.kit);
  an adapter whose entry point cannot be loaded is reported once, by name, not once per check
"""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("plugins", help="list, diagnose, scaffold and check backbone adapter plugins")
    psub = p.add_subparsers(dest="plugins_command", metavar="ACTION")
    lst = psub.add_parser("list", help="name, package, version, modality and status of each adapter")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(handler=run_list)
    doc = psub.add_parser("doctor", help="explain every broken adapter and how to fix it (exit status 1 if any is broken)")
    doc.add_argument("--json", action="store_true", help="print JSON")
    doc.set_defaults(handler=run_doctor)
    new = psub.add_parser("new", help="scaffold a new adapter plugin package (passes the conformance kit once installed)")
    new.add_argument("name", help="adapter name, e.g. 'my-audio' (the package becomes tlhub-my-audio)")
    new.add_argument("--modality", choices=("image", "text", "audio"), required=True, help="what the adapter's models take as input")
    new.add_argument("--dir", default=None, help="parent folder of the new package (default: the current folder)")
    new.add_argument("--force", action="store_true", help="write into an existing, non-empty folder")
    new.set_defaults(handler=run_new)
    chk = psub.add_parser("check", help="run the adapter conformance kit (tlhub.plugins.kit.check_adapter) on a real backbone")
    chk.add_argument("adapter", help="adapter (entry point) name")
    chk.add_argument("backbone", help="a small backbone the adapter loads (Hub repo id or local folder)")
    chk.add_argument("--examples", nargs="+", required=True, help="at least two example inputs (files, or texts for text adapters)")
    chk.add_argument("--labels", nargs="+", required=True, help="at least two class names")
    chk.add_argument("--checks", nargs="+", default=None, metavar="CHECK", help="run only these checks (default: all; see below)")
    chk.add_argument("--skip", nargs="*", default=[], metavar="CHECK", help="checks to skip")
    chk.add_argument("--json", action="store_true", help="print JSON")
    chk.set_defaults(handler=run_check)
    chk.epilog = "checks: " + ", ".join(_check_names())
    p.set_defaults(handler=run_list, json=False)
    alias = sub.add_parser("adapters", help="same as `tlhub plugins list`")
    alias.add_argument("--json", action="store_true", help="print JSON")
    alias.set_defaults(handler=run_list)


def run_list(args) -> int:
    from tlhub.adapters.registry import list_adapters
    from tlhub.cli._output import print_json

    infos = list_adapters()
    if args.json:
        print_json([i.as_row() for i in infos])
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tlhub adapters")
    rows = [(i.name, i.distribution, i.version, i.modality, i.status + ("" if i.status == "ok" else f": {i.error}")) for i in infos]
    for index, column in enumerate(("name", "package", "version", "modality")):
        table.add_column(column, no_wrap=True, min_width=max([len(column)] + [len(r[index]) for r in rows]))
    table.add_column("status", overflow="fold")
    for row in rows:
        table.add_row(*row, style=None if row[4] == "ok" else "red")
    Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160).print(table)
    if any(i.status != "ok" for i in infos):
        print("Some adapters do not work: `tlhub plugins doctor` says why and how to fix them.")
    return 0


def run_doctor(args) -> int:
    import platform

    from tlhub import __version__
    from tlhub.adapters.contract import ADAPTER_API_VERSION
    from tlhub.adapters.registry import ENTRY_POINT_GROUP, list_adapters

    infos = list_adapters()
    checks = {i.name: _diagnose(i) for i in infos if i.status == "ok"}
    bad = [i for i in infos if i.status != "ok"]
    warned = {name: problems for name, problems in checks.items() if problems}
    if getattr(args, "json", False):
        from tlhub.cli._output import print_json

        print_json({
            "tlhub": __version__, "adapter_api_version": ADAPTER_API_VERSION, "python": sys.executable,
            "adapters": [{**i.as_row(), "warnings": checks.get(i.name, []) if i.status == "ok" else []} for i in infos],
            "conformance_checks": list(_check_names()),
        })
        return 1 if bad else 0
    print(f"tlhub {__version__} (adapter contract v{ADAPTER_API_VERSION}), Python {platform.python_version()} at {sys.executable}")
    print(f"entry-point group {ENTRY_POINT_GROUP!r}: {len(infos)} entry point(s)\n")
    for info in infos:
        mark = "ok " if info.status == "ok" and not checks.get(info.name) else "!! "
        print(f"{mark}{info.name} ({info.distribution} {info.version}, entry point {info.value}): {info.status}")
        if info.status != "ok":
            print(f"     problem: {info.error}")
            print(f"     fix:     {info.fix}")
            if info.location:
                print(f"     from:    {info.location}")
        for problem, fix in checks.get(info.name, []) if info.status == "ok" else []:
            print(f"     warning: {problem}")
            print(f"     fix:     {fix}")
    print(f"\n{len(infos) - len(bad)} working, {len(bad)} broken" + (f", {len(warned)} with warnings" if warned else ""))
    if bad:
        names = ", ".join(sorted({i.name for i in bad}))
        print(f"broken: {names}")
    kit_checks = _check_names()
    print(f"conformance: `tlhub plugins check NAME BACKBONE --examples ... --labels ...` runs the kit's {len(kit_checks)} checks "
          f"({', '.join(kit_checks)})")
    return 1 if bad else 0


def _diagnose(info) -> list[tuple[str, str]]:
    """An adapter may define ``diagnose() -> [(problem, fix), ...]`` to check its runtime needs
    (system libraries, ...) beyond importable modules. Optional; its own failure is reported too."""
    hook = getattr(info.adapter, "diagnose", None)
    if not callable(hook):
        return []
    try:
        return [(str(p), str(f)) for p, f in (hook() or [])]
    except Exception as exc:  # a plugin's diagnose() must not take doctor down
        return [(f"{info.name}.diagnose() raised {type(exc).__name__}: {exc}", f"report it to the authors of {info.distribution}")]


def run_new(args) -> int:
    from tlhub.plugins.scaffold import create_plugin

    result = create_plugin(args.name, modality=args.modality, parent=args.dir, force=args.force)
    print(f"created {result.path} ({len(result.files)} files): adapter {result.name!r}, package {result.distribution}")
    for f in result.files:
        print(f"  {f}")
    print("\nnext:")
    print(f"  pip install -e {result.path}")
    print(f"  pytest {result.path / 'tests'}            # runs tlhub's conformance kit on a small backbone")
    src = f"src/{result.package}"
    print(f"  then replace the tiny network in {src}/backbone.py with your library's model, and its load/save in "
          f"{src}/native.py (adapter.py where your preprocessing differs); see docs/writing-a-plugin.md")
    return 0


def run_check(args) -> int:
    from tlhub.plugins.kit import check_adapter

    # unknown check names and too few examples/labels raise ConfigError: main() prints it (exit 2)
    report = check_adapter(args.adapter, args.backbone, args.examples, args.labels, checks=args.checks, skip=args.skip,
                           raise_on_failure=False)
    if args.json:
        from tlhub.cli._output import print_json

        print_json(report.to_dict())
    else:
        print(report)
    return 0 if report.ok else 1


def _check_names() -> tuple[str, ...]:
    # kit.py imports torch only inside its functions, so listing the checks stays light
    from tlhub.plugins.kit import CHECKS

    return CHECKS
