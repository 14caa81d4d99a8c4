"""One module per ``tlhub`` subcommand: ``register(subparsers)`` adds it, ``args.handler`` runs it."""
