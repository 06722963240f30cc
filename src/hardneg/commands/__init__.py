"""One module per subcommand: ``register(subparsers)`` adds it; imports inside ``run`` stay lazy."""
