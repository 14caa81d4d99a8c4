"""``tlhub describe BACKBONE``: adapter, feature dim, input size, layer groups, labels."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("describe", help="show what a backbone is: adapter, features, preprocessing, layer groups, labels")
    p.add_argument("backbone", help="Hub repo id, hf-hub:NAME, ADAPTER:NAME or a local folder (optionally @REVISION)")
    p.add_argument("--revision", help="branch, tag or commit")
    p.add_argument("--adapter", help="force an adapter instead of reading the repo's config")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from tlhub.cli._output import print_json, print_table
    from tlhub.core.factory import describe

    info = describe(args.backbone, revision=args.revision, adapter=args.adapter)
    if args.json:
        print_json(info)
        return 0
    print(f"backbone      {info['name']}" + (f" @ {info['revision']}" if info["revision"] else ""))
    print(f"adapter       {info['adapter']} ({info['modality']})")
    print(f"parameters    {info['parameters']:,}")
    print(f"features      {info['num_features']}")
    for key, value in info["preprocessing"].items():
        if key != "modality":
            print(f"{key:<13} {value}")
    labels = info["labels"]
    shown = ", ".join(labels[:5]) + (f", ... ({len(labels)} in all)" if len(labels) > 5 else "")
    print(f"labels        {shown or 'none (headless backbone)'}")
    print_table(("#", "layer group (input -> output)", "parameters"),
                [(i, name, f"{n:,}") for i, (name, n) in enumerate(info["layer_groups"])])
    return 0
