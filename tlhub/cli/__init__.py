"""The ``tlhub`` command line. ``tlhub.cli.main`` builds the parser; each subcommand is a module
here with ``register(subparsers)`` and ``run(args)``, importing nothing heavy at the top, so
``tlhub --help`` never imports torch."""
