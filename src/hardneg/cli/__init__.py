"""Command line: ``main`` builds the parser; one module per subcommand, each with ``register(subparsers)``.
Heavy imports happen inside each command's ``run`` so ``hardneg --help`` stays fast. Nothing imports cli."""

from hardneg.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
