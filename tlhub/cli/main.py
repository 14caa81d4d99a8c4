"""The ``tlhub`` command line.

Each subcommand lives in ``tlhub/cli/<name>.py`` with ``register(subparsers)`` and
``run(args)``. Those modules import nothing heavy at the top, so ``tlhub --help`` and
``tlhub plugins list`` never import torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tlhub import __version__

#: subcommand modules, in the order ``--help`` lists them
COMMANDS = ("demo", "doctor", "select", "train", "evaluate", "compare", "predict", "describe", "push", "space", "plugins", "assets")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tlhub",
        description="Transfer learning from Hugging Face Hub backbones: train, evaluate, publish.",
    )
    parser.add_argument("--version", action="version", version=f"tlhub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"tlhub.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"tlhub.cli.{name}":
                continue  # command not part of this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tlhub.errors import TlhubError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    from tlhub.engine.allocator import keep_freed_memory

    keep_freed_memory()  # every command that gets here may run a model on the CPU: tlhub.engine.allocator
    try:
        return int(args.handler(args) or 0)
    except TlhubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"  fix: {exc.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tlhub ... | head`: the reader has gone, nothing more to say to it
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else Python's exit flush fails again
        except (OSError, ValueError):  # stdout is no real file (captured in tests)
            pass
        return 141  # 128 + SIGPIPE, as a shell reports a process the pipe stopped


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
