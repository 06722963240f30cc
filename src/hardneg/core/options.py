"""Every option written once: a config dataclass field carries its default, help text and choices,
and the command line is built from the fields (as Tevatron's ``arguments.py`` feeds ``HfArgumentParser``).

    @dataclass(frozen=True)
    class Toy:
        method: str = opt("top", "how to pick", choices=SELECTIONS)   # --method {top,...}
        depth: int = opt(100, "candidates per query")                 # --depth DEPTH
        floor: float | None = opt(None, "keep s >= this", default_help="off")
        dedup: bool = opt(True, "drop duplicates", flag="--keep-duplicates")  # store_false
        names: tuple[str, ...] = opt(("a", "b"), "modules")           # --names a,b

    add_config_args(parser, Toy)                 # help ends in "(default: 100)" etc.
    config = config_from_args(Toy, parser.parse_args(argv))

Flag types follow the annotation: ``int``/``float``/``str`` (optionally ``| None``), ``bool``
(``False`` -> a ``--name`` switch, ``True`` -> ``--no-name``, ``None`` -> both, tri-state) and
``tuple[T, ...]`` (a comma-separated list; the flag may be repeated, ``--names a --names b,c``
= ``("a", "b", "c")``, the first use replacing the default). ``convert`` turns the given string into
the field's value when the config is built (so its errors are the library's, e.g. ``parse_bytes``;
an empty string means unset).

Old spellings stay as hidden aliases: ``opt(..., deprecated=("--query-prefix",))`` (or
``add_alias(parser, "--old", of="--new")`` for a hand-written flag) accepts ``--old`` exactly as
``--new``, leaves it out of ``--help`` and logs one line naming the new flag when it is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Callable, Iterable

KEY = "hardneg.option"
log = logging.getLogger("hardneg.cli")


@dataclass(frozen=True)
class Option:
    """What a field's metadata says about its command-line flag."""

    help: str
    choices: tuple | None = None
    flag: str | None = None            # default: --field-name (--no-field-name for a True bool); no dash: positional
    aliases: tuple[str, ...] = ()
    metavar: str | None = None
    default_help: str | None = None    # how the default reads in --help; default: the value itself
    group: str | None = None           # argument group title
    negate_flag: str | None = None     # tri-state bools: the off switch (default --no-field-name)
    negate_help: str | None = None
    convert: Callable[[str], Any] | None = None
    deprecated: tuple[str, ...] = ()   # old spellings: hidden aliases that log a deprecation notice


def opt(default: Any = MISSING, help: str = "", *, default_factory: Any = MISSING, choices: Iterable | None = None,
        flag: str | None = None, aliases: Iterable[str] = (), metavar: str | None = None,
        default_help: str | None = None, group: str | None = None, negate_flag: str | None = None,
        negate_help: str | None = None, convert: Callable[[str], Any] | None = None,
        deprecated: Iterable[str] = ()) -> Any:
    """A ``dataclasses.field`` whose metadata describes its command-line flag (see the module doc)."""
    meta = {KEY: Option(help, tuple(choices) if choices is not None else None, flag, tuple(aliases), metavar,
                        default_help, group, negate_flag, negate_help, convert, tuple(deprecated))}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def option_fields(cls, *, only: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> list:
    """The fields of ``cls`` that carry an ``opt``, in declaration order, filtered by name."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [n for n in [*(only or ()), *exclude] if n not in names]
    if unknown:
        raise ValueError(f"{cls.__name__} has no field {', '.join(unknown)}")
    keep = set(only) if only is not None else None
    return [f for f in dataclasses.fields(cls)
            if KEY in f.metadata and (keep is None or f.name in keep) and f.name not in set(exclude)]


def add_config_args(parser, cls, *, only: Iterable[str] | None = None, exclude: Iterable[str] = (),
                    prefix: str = "", title: str | None = None, repeat: Iterable[str] = (),
                    require_missing: bool = True, missing_help: str | None = None) -> None:
    """Add one flag per ``opt`` field of ``cls`` to ``parser`` (a parser or an argument group).

    Fields with a ``group`` go into that argument group, the others into ``title``'s group (or
    ``parser`` itself). ``prefix`` goes before every flag and dest (``--teacher-batch-size``);
    fields named in ``repeat`` may be given several times (a list); fields without a default are
    required unless ``require_missing=False`` (then ``missing_help``, e.g. "required unless --config gives
    it", ends their help in place of a default).
    """
    hints = typing.get_type_hints(cls)
    groups: dict[str | None, Any] = {}

    def group(name: str | None):
        if name not in groups:
            groups[name] = parser.add_argument_group(name) if name else parser
        return groups[name]

    repeat = set(repeat)
    for f in option_fields(cls, only=only, exclude=exclude):
        o: Option = f.metadata[KEY]
        target = group(o.group or title)
        for flags, kwargs in _arguments(f, o, hints[f.name], prefix, f.name in repeat, require_missing,
                                        missing_help):
            target.add_argument(*flags, **kwargs)
        for old in o.deprecated:
            add_alias(parser, old, of=o.flag or _flag(prefix, ("no_" if f.default is True and hints[f.name] is bool
                                                               else "") + f.name))


def add_alias(parser, old: str, *, of: str) -> None:
    """``old`` as a hidden alias of the existing flag ``of``: same dest, type, choices and action, absent
    from ``--help``; using it logs ``"--old is deprecated: use --new"`` (once per use).

    >>> p = argparse.ArgumentParser(); _ = p.add_argument("--query-prompt", default="")
    >>> add_alias(p, "--query-prefix", of="--query-prompt")
    >>> p.parse_args(["--query-prefix", "q: "]).query_prompt
    'q: '
    """
    new = parser._option_string_actions.get(of)
    if new is None:
        raise ValueError(f"add_alias: {of} is not a flag of this parser")
    kwargs: dict[str, Any] = {"dest": new.dest, "default": argparse.SUPPRESS, "help": argparse.SUPPRESS,
                              "action": _deprecated(type(new), of)}
    if new.nargs != 0:  # a flag with a value (switches take none)
        kwargs.update(type=getattr(new, "item", new.type), choices=new.choices, metavar=new.metavar)
        if new.nargs is not None:
            kwargs["nargs"] = new.nargs
    parser.add_argument(old, **kwargs)


def _deprecated(base: type, new_flag: str) -> type:
    """``base`` (an argparse action class) that logs the deprecation of the spelling used."""

    class Deprecated(base):  # type: ignore[misc, valid-type]
        def __call__(self, parser, namespace, values, option_string=None):
            log.warning("%s is deprecated: use %s (same meaning; the old spelling goes away in a later release)",
                        option_string, new_flag)
            super().__call__(parser, namespace, values, option_string)

    Deprecated.__name__ = f"Deprecated{base.__name__}"
    return Deprecated


class ListAction(argparse.Action):
    """A list flag that takes comma lists and repeats alike: ``--teacher a,b --teacher c`` -> ``("a", "b", "c")``.

    The first use replaces the default, later uses extend it; ``type`` parses one item (default ``str``).

    >>> p = argparse.ArgumentParser(); _ = p.add_argument("--t", action=ListAction, default=("x",))
    >>> p.parse_args(["--t", "a, b", "--t", "c"]).t, p.parse_args([]).t
    (('a', 'b', 'c'), ('x',))
    """

    def __init__(self, option_strings, dest, type=None, **kwargs):
        self.item = type or str
        super().__init__(option_strings, dest, type=csv_list(self.item), **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        first = current is None or current is self.default or not isinstance(current, tuple)
        setattr(namespace, self.dest, tuple(values) if first else (*current, *values))


def config_from_args(cls, args: argparse.Namespace, *, prefix: str = "", **extra: Any):
    """``cls(**values)``: each ``opt`` field present in ``args`` (after its ``convert``), then ``extra``."""
    values = {}
    for f in option_fields(cls):
        dest = _dest(prefix, f.name)
        if f.name in extra or not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        convert = f.metadata[KEY].convert
        if convert and isinstance(value, str):
            value = convert(value) if value else None  # "" = unset
        values[f.name] = value
    return cls(**values, **extra)


def _dest(prefix: str, name: str) -> str:
    return f"{prefix}{name}".replace("-", "_")


def _flag(prefix: str, name: str) -> str:
    return "--" + f"{prefix}{name}".replace("_", "-")


def _arguments(f, o: Option, hint, prefix: str, repeat: bool, require_missing: bool,
               missing_help: str | None = None) -> list[tuple[tuple, dict]]:
    """(option strings, add_argument keywords) for one field: two pairs for a tri-state bool."""
    dest = _dest(prefix, f.name)
    missing = f.default is MISSING and f.default_factory is MISSING
    default = None if missing else f.default if f.default is not MISSING else f.default_factory()
    base, optional = _unwrap(hint)
    if base is bool and not repeat:
        return _bool_arguments(f.name, o, dest, default, optional, prefix)
    help_text = _help(o, default, missing)
    if missing and not require_missing and missing_help and flag_of(o, prefix, f.name).startswith("-"):
        help_text = _escape(f"{o.help.rstrip()} ({missing_help})")
    kw: dict[str, Any] = {"dest": dest, "default": default, "help": help_text}
    if o.choices is not None:
        kw["choices"] = o.choices
    if o.metavar:
        kw["metavar"] = o.metavar
    if o.convert is None:
        kw["type"] = _parser_for(base, f.name)
    if typing.get_origin(base) is tuple and o.convert is None:  # comma lists, repeatable
        kw["action"], kw["type"] = ListAction, typing.get_args(base)[0]
    elif repeat:
        kw["action"] = "append"
        kw["default"] = None
    flag = o.flag or _flag(prefix, f.name)
    if not flag.startswith("-"):  # positional: its name is the dest
        del kw["dest"]
        if not missing:
            kw["nargs"] = "?"
    elif missing and require_missing:
        kw["required"] = True
    return [((flag, *o.aliases), kw)]


def flag_of(o: Option, prefix: str, name: str) -> str:
    return o.flag or _flag(prefix, name)


def _bool_arguments(name: str, o: Option, dest: str, default, optional: bool, prefix: str):
    if optional:  # tri-state: --name / --no-name, default None
        on = ((o.flag or _flag(prefix, name), *o.aliases),
              {"dest": dest, "action": "store_true", "default": default, "help": _help(o, default, False)})
        off_help = o.negate_help or f"the opposite of {on[0][0]}"
        off = ((o.negate_flag or _flag(prefix, "no_" + name),),
               {"dest": dest, "action": "store_false", "default": default, "help": _escape(off_help)})
        return [on, off]
    flag = o.flag or _flag(prefix, ("no_" if default else "") + name)
    action = "store_false" if default else "store_true"
    return [((flag, *o.aliases), {"dest": dest, "action": action, "default": bool(default),
                                  "help": _help(o, "off", False)})]


def _unwrap(hint) -> tuple[Any, bool]:
    """``int | None`` -> (int, True); ``tuple[str, ...]`` -> (tuple[str, ...], False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _parser_for(base, name: str) -> Callable[[str], Any]:
    if base in (int, float, str):
        return base
    if typing.get_origin(base) is tuple:
        item = typing.get_args(base)[0]
        return csv_list(item)
    raise TypeError(f"field {name!r}: no command-line type for {base!r}; exclude it or give it a convert")


def csv_list(item: type) -> Callable[[str], tuple]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``, each item parsed as ``item``."""

    def parse(text: str) -> tuple:
        try:
            return tuple(item(t.strip()) for t in text.split(",") if t.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {item.__name__}, got {text!r}") from None
    parse.__name__ = f"comma-separated {item.__name__}"
    return parse


def show_default(value: Any) -> str:
    """How a default reads in ``--help``.

    >>> [show_default(v) for v in (None, "", 0.05, ("q", "k"), "top")]
    ['none', 'none', '0.05', 'q,k', 'top']
    """
    if value is None or value == "":
        return "none"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def _help(o: Option, default: Any, missing: bool) -> str:
    text = o.help.rstrip()
    if not missing:
        shown = o.default_help if o.default_help is not None else show_default(default)
        text = f"{text} (default: {shown})" if text else f"default: {shown}"
    return _escape(text)


def _escape(text: str) -> str:
    return text.replace("%", "%%")  # argparse %-formats help strings
