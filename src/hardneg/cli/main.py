"""Command line: thin subcommands over the library. Each subcommand lives in
``hardneg.cli.<name>`` and exposes ``SUMMARY`` and ``register(subparsers)``, which builds its
flags from the library's config dataclasses (``hardneg.core.options``). Only the command being run
is registered in full (importing its configs); the others are one-line stubs, so ``hardneg --help``
stays fast. Heavy imports happen inside each command's run function."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
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
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging: hardneg's debug lines and the third-party libraries' own info/debug "
                        "logs (bm25s, faiss, sentence-transformers, transformers; -vv: transformers' debug too) "
                        "(default: hardneg's info lines, other libraries' warnings and errors only)")
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
    setup_logging(args.verbose, progress=not (getattr(args, "no_progress", False) or getattr(args, "quiet", False)))
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


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OURS = "hardneg"  # loggers of this package (and its children) keep INFO at the default level


class QuietThirdParty(logging.Filter):
    """At the default level, only warnings and errors of other libraries' loggers get through.

    A handler filter, not logger levels: bm25s sets its own logger to DEBUG when it is imported
    (lazily, long after this setup), and faiss's loader logs INFO ("Loading faiss with AVX2
    support", "No module named 'faiss.swigfaiss_avx2'") as it is imported.

    >>> f = QuietThirdParty()
    >>> rec = lambda name, level: logging.LogRecord(name, level, "", 0, "m", None, None)
    >>> [f.filter(rec("bm25s", logging.DEBUG)), f.filter(rec("faiss.loader", logging.WARNING)),
    ...  f.filter(rec("hardneg.mining.mine", logging.INFO)), f.filter(rec("hardneg_x", logging.INFO))]
    [False, True, True, False]
    """

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == OURS or record.name.startswith(OURS + ".")
        return ours or record.levelno >= logging.WARNING


def setup_logging(verbose: int = 0, *, progress: bool = True) -> None:
    """The one place the command line sets up logging and third-party noise.

    * default: hardneg's INFO lines; every other library only from WARNING up (``QuietThirdParty`` on
      the root handlers), transformers at its own default (warnings);
    * ``-v``: every logger from DEBUG up, transformers at INFO; ``-vv``: transformers at DEBUG too;
    * transformers' / huggingface_hub's weight-loading and download bars: off with ``progress=False``
      (``--no-progress``, ``--quiet``) or when stderr is not a terminal, unless the user set
      ``HF_HUB_DISABLE_PROGRESS_BARS`` themselves. hardneg's own bars follow their commands' flags.

    Like ``logging.basicConfig``, a root logger that already has handlers (an application's, pytest's)
    keeps them and its level; they get the same filter.
    """
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S")
    for handler in root.handlers:
        for f in [f for f in handler.filters if isinstance(f, QuietThirdParty)]:
            handler.removeFilter(f)
        if not verbose:
            handler.addFilter(QuietThirdParty())
    _transformers_verbosity(verbose)
    _loading_bars(progress and _isatty(sys.stderr))


_OUR_ENV: dict[str, str | None] = {}  # variables this module set -> their value before (restored when undone)


def _set_env(name: str, value: str | None, *, override: bool = False) -> bool:
    """Set (``value``) or undo (``None``) one of our environment variables; a user's own value is kept
    unless ``override``. True when something changed."""
    if value is None:
        if name not in _OUR_ENV:
            return False
        before = _OUR_ENV.pop(name)
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
        return True
    if name not in _OUR_ENV:
        if name in os.environ and not override:
            return False  # the user's
        _OUR_ENV[name] = os.environ.get(name)
    os.environ[name] = value
    return True


def _transformers_verbosity(verbose: int) -> None:
    """transformers logs through its own handler (it does not propagate to ours): its verbosity is set by
    environment before its import, by its API when it is already imported; the default undoes ours."""
    name = {0: None, 1: "info"}.get(verbose, "debug")
    if _set_env("TRANSFORMERS_VERBOSITY", name, override=True) and "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        level = getattr(logging, (os.environ.get("TRANSFORMERS_VERBOSITY") or "warning").upper(), logging.WARNING)
        hf_logging.set_verbosity(level if isinstance(level, int) else logging.WARNING)


def _loading_bars(show: bool) -> None:
    """Weight-loading / download bars of transformers and huggingface_hub on or off (a user's own
    ``HF_HUB_DISABLE_PROGRESS_BARS`` wins)."""
    if _set_env("HF_HUB_DISABLE_PROGRESS_BARS", None if show else "1"):  # read when huggingface_hub imports
        if "huggingface_hub" in sys.modules:
            from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

            (enable_progress_bars if show else disable_progress_bars)()
        if "transformers" in sys.modules:
            from transformers.utils import logging as hf_logging

            (hf_logging.enable_progress_bar if show else hf_logging.disable_progress_bar)()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def one_line(message: str) -> str:
    """The error on one line: a wrapped library message may hold line breaks (e.g. transformers')."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


if __name__ == "__main__":
    sys.exit(main())
