"""``tlhub plugins list|doctor`` (also ``tlhub adapters``): the installed backbone adapters."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("plugins", help="list the installed backbone adapters (built-in and plugins)")
    psub = p.add_subparsers(dest="plugins_command", metavar="ACTION")
    lst = psub.add_parser("list", help="name, package, version, modality and status of each adapter")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(handler=run_list)
    doc = psub.add_parser("doctor", help="explain every broken adapter and how to fix it")
    doc.set_defaults(handler=run_doctor)
    p.set_defaults(handler=run_list, json=False)
    alias = sub.add_parser("adapters", help="same as `tlhub plugins list`")
    alias.add_argument("--json", action="store_true", help="print JSON")
    alias.set_defaults(handler=run_list)


def run_list(args) -> int:
    from tlhub.adapters.registry import list_adapters
    from tlhub.commands._output import print_json, print_table

    infos = list_adapters()
    if args.json:
        print_json([i.as_row() for i in infos])
        return 0
    rows = [
        (i.name, i.distribution, i.version, i.modality, i.status + ("" if i.status == "ok" else f": {i.error}"))
        for i in infos
    ]
    print_table(("name", "package", "version", "modality", "status"), rows, title="tlhub adapters")
    if any(i.status != "ok" for i in infos):
        print("Some adapters do not work: `tlhub plugins doctor` says why and how to fix them.")
    return 0


def run_doctor(args) -> int:
    from tlhub.adapters.registry import list_adapters

    infos = list_adapters()
    bad = [i for i in infos if i.status != "ok"]
    for info in infos:
        mark = "ok " if info.status == "ok" else "!! "
        print(f"{mark}{info.name} ({info.distribution} {info.version}, entry point {info.value}): {info.status}")
        if info.status != "ok":
            print(f"     problem: {info.error}")
            print(f"     fix:     {info.fix}")
    print(f"\n{len(infos) - len(bad)} working, {len(bad)} broken")
    return 1 if bad else 0
