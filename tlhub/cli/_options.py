"""Command-line options made from :class:`tlhub.engine.config.TrainConfig` fields (shared by the
commands that read data or train: ``train``, ``doctor``, ``select``). Importing it never imports torch."""

from __future__ import annotations

import argparse
from typing import Sequence


def add_config_options(parser: argparse.ArgumentParser, *, only: Sequence[str] | None = None,
                       title: str = "training options (also settable in the YAML file)") -> None:
    """One ``--field-name`` option per TrainConfig field (those in ``only`` when given), its help
    from the field's comment; unset options stay ``None`` so that they override nothing."""
    from dataclasses import fields

    from tlhub.engine.config import TrainConfig, field_help, field_types

    helps, types = field_help(), field_types()
    group = parser.add_argument_group(title)
    for f in fields(TrainConfig):
        if only is not None and f.name not in only:
            continue
        flag = "--" + f.name.replace("_", "-")
        text = f"{helps.get(f.name, '')} (default: {f.default})".strip()
        if types[f.name] is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            group.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(), help=text)


def config_overrides(args, names: Sequence[str]) -> dict:
    """The options of ``names`` that were given on the command line."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
