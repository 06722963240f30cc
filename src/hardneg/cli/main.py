"""Command line: thin subcommands over the library. Each subcommand lives in
``hardneg.cli.<name>`` and exposes ``SUMMARY`` and ``register(subparsers)``, which builds its
flags from the library's config dataclasses (``hardneg.core.options``). Only the command being run
is registered in full (importing its configs); the others are one-line stubs, so ``hardneg --help``
stays fast. Heavy imports happen inside each command's run function."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hardneg import __version__
from hardneg.core.errors import HardnegError

COMMANDS = ["data", "evaluate", "mine", "export", "inspect", "train", "ablate", "tune", "compare"]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Every command in full; with ``argv``, only the command it names (the others as stubs)."""
    wanted = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    parser = argparse.ArgumentParser(
        prog="hardneg",
        description="Positive-aware hard-negative mining (NV-Retriever) and contrastive "
        "fine-tuning of text-embedding models.",
    )
    parser.add_argument("--version", action="version", version=f"hardneg {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"hardneg.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"hardneg.cli.{name}":
                continue  # command not built yet
            raise
        if wanted is None or wanted == name:
            mod.register(sub)
        else:
            sub.add_parser(name, help=mod.SUMMARY)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose + 1, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except HardnegError as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def one_line(message: str) -> str:
    """The error on one line: a wrapped library message may hold line breaks (e.g. transformers')."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


if __name__ == "__main__":
    sys.exit(main())
