"""core.options: config dataclass fields -> argparse flags -> the same config back (known answers)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
from dataclasses import dataclass

import pytest

from hardneg.cli.main import build_parser, main
from hardneg.core.options import add_alias, add_config_args, config_from_args, opt, show_default

COLORS = ("red", "green", "blue")


@dataclass(frozen=True)
class Toy:
    name: str = opt(help="a required name")
    color: str = opt("red", "paint", choices=COLORS)
    depth: int = opt(100, "candidates per query")
    floor: float | None = opt(None, "keep s >= this", default_help="off")
    limit: int | None = opt(None, "at most this many")
    dedup: bool = opt(True, "keep duplicates", flag="--keep-duplicates")
    verbose: bool = opt(False, "say more")
    lora: bool | None = opt(None, "train an adapter", default_help="auto", negate_help="train every weight")
    names: tuple[str, ...] = opt(("a", "b"), "module names")
    seeds: tuple[int, ...] = opt((0,), "seeds")
    size: int | None = opt(None, "a size like 2k", metavar="SIZE", convert=lambda s: int(s.rstrip("k")) * 1000)
    prompt: str = opt("", "text before queries", flag="--query-prompt", deprecated=("--query-prefix",))
    strict: bool = opt(True, "allow anything", deprecated=("--lenient",))
    hidden: int = 3  # no opt: library-only


def _parser(**kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="toy")
    add_config_args(p, Toy, **kw)
    return p


def test_round_trip_defaults_and_values():
    assert config_from_args(Toy, _parser().parse_args(["--name", "x"])) == Toy(name="x")
    argv = ["--name", "y", "--color", "blue", "--depth", "7", "--floor", "0.5", "--limit", "3", "--keep-duplicates",
            "--verbose", "--no-lora", "--names", "q, k,,v", "--seeds", "1,2", "--size", "2k"]
    got = config_from_args(Toy, _parser().parse_args(argv), hidden=9)
    assert got == Toy("y", "blue", 7, 0.5, 3, False, True, False, ("q", "k", "v"), (1, 2), 2000, hidden=9)
    assert config_from_args(Toy, _parser().parse_args(["--name", "z", "--lora"])).lora is True


def test_choices_types_and_errors():
    p = _parser()
    color = next(a for a in p._actions if a.dest == "color")
    assert color.choices is COLORS  # the constant itself, not a copy
    for bad in (["--name", "x", "--color", "pink"], ["--name", "x", "--depth", "1.5"], ["--name", "x", "--seeds", "a"],
                []):  # [] : --name is required
        with pytest.raises(SystemExit):
            p.parse_args(bad)
    optional = _parser(require_missing=False).parse_args([])
    assert optional.name is None


def test_help_states_every_default():
    text = _parser().format_help()
    flat = " ".join(text.split())
    for expected in ("paint (default: red)", "candidates per query (default: 100)", "keep s >= this (default: off)",
                     "at most this many (default: none)", "keep duplicates (default: off)", "say more (default: off)",
                     "train an adapter (default: auto)", "train every weight", "module names (default: a,b)",
                     "--size SIZE", "{red,green,blue}"):
        assert expected in flat, expected
    assert "--hidden" not in text and "a required name" in flat and "a required name (default" not in flat


def test_list_fields_take_repeats_and_comma_lists():
    p = _parser()
    assert p.parse_args(["--name", "x", "--names", "q", "--names", "k,v"]).names == ("q", "k", "v")  # default replaced
    assert p.parse_args(["--name", "x", "--seeds", "3", "--seeds", "1,2"]).seeds == (3, 1, 2)
    assert p.parse_args(["--name", "x"]).names == ("a", "b")
    assert _parser().parse_args(["--name", "x", "--names", "c"]).names == ("c",)  # a fresh parse starts over


def test_deprecated_spellings_are_hidden_aliases_that_say_the_new_flag(caplog):
    p = _parser()
    with caplog.at_level(logging.WARNING, logger="hardneg.cli"):
        args = p.parse_args(["--name", "x", "--query-prefix", "q: ", "--lenient"])
    assert config_from_args(Toy, args) == Toy("x", prompt="q: ", strict=False)
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 2 and "--query-prefix is deprecated: use --query-prompt" in notes[0]
    assert "--lenient is deprecated: use --no-strict" in notes[1]
    caplog.clear()
    assert p.parse_args(["--name", "x", "--query-prompt", "q: "]).prompt == "q: " and not caplog.records
    text = p.format_help()
    assert "--query-prompt" in text and "--query-prefix" not in text and "--lenient" not in text


def test_add_alias_keeps_type_and_choices():
    p = argparse.ArgumentParser()
    add_config_args(p, Toy)
    add_alias(p, "--colour", of="--color")
    add_alias(p, "--maximum-depth", of="--depth")
    args = p.parse_args(["--name", "x", "--colour", "blue", "--maximum-depth", "5"])
    assert (args.color, args.depth) == ("blue", 5)
    for bad in (["--name", "x", "--colour", "pink"], ["--name", "x", "--maximum-depth", "a"]):
        with pytest.raises(SystemExit):
            p.parse_args(bad)
    with pytest.raises(ValueError, match="--nope is not a flag"):
        add_alias(p, "--old", of="--nope")


def test_missing_help_replaces_the_default_of_optional_required_fields():
    p = argparse.ArgumentParser()
    add_config_args(p, Toy, require_missing=False, missing_help="required unless --config gives it")
    flat = " ".join(p.format_help().split())
    assert "a required name (required unless --config gives it)" in flat


def test_only_exclude_prefix_and_groups():
    p = argparse.ArgumentParser()
    add_config_args(p, Toy, only=("depth", "verbose"), prefix="t-", title="toy things")
    args = p.parse_args(["--t-depth", "5", "--t-verbose"])
    assert (args.t_depth, args.t_verbose) == (5, True)
    assert config_from_args(Toy, args, prefix="t-", name="n") == Toy(name="n", depth=5, verbose=True)
    assert "toy things:" in p.format_help()
    with pytest.raises(ValueError, match="no field nope"):
        add_config_args(argparse.ArgumentParser(), Toy, exclude=("nope",))


def test_show_default():
    assert [show_default(v) for v in (None, "", 2e-5, ("x",), False)] == ["none", "none", "2e-05", "x", "False"]


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


def _option_helps(text: str) -> dict[str, str]:
    """--flag -> its help text, from argparse's two-column layout."""
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^  (-{1,2}[\w-]+(?:, --[\w-]+)?)(?: \S+)?(?:\s{2,}(.*))?$", line)
        if m:
            current = m.group(1).split(", ")[-1]
            out[current] = m.group(2) or ""
        elif current and line.startswith(" " * 10):
            out[current] += " " + line.strip()
        else:
            current = None
    return out


def _flags(cls, *, exclude=()) -> list[str]:
    from hardneg.core.options import KEY, option_fields

    flags = []
    for f in option_fields(cls, exclude=exclude):
        o = f.metadata[KEY]
        positive_bool = f.type in ("bool",) and f.default is True
        flags.append(o.flag or "--" + ("no-" if positive_bool else "") + f.name.replace("_", "-"))
    return flags


def test_mine_help_lists_every_config_field_with_its_default(capsys):
    from hardneg.mining.config import MineConfig
    from hardneg.mining.teachers.load import TeacherSettings
    from hardneg.scale.engine import EngineConfig

    helps = _option_helps(_help("mine", capsys))
    assert len(_flags(MineConfig)) == len(dataclasses.fields(MineConfig))  # every field has an opt
    for flag in _flags(MineConfig) + _flags(TeacherSettings) + ["--engine", "--ray-address", "--workers",
                                                                "--cpus-per-worker", "--max-memory", "--shard-dtype"]:
        assert flag in helps, flag
        assert "default" in helps[flag], (flag, helps[flag])


def test_train_help_lists_every_config_field_with_its_default(capsys):
    from hardneg.training.config import Source, TrainConfig

    helps = _option_helps(_help("train", capsys))
    for flag in _flags(TrainConfig, exclude=("sources",)) + _flags(Source) + ["--no-lora"]:
        assert flag in helps, flag
    required = {"--model", "--output", "--data", "--negatives", "--no-lora"}
    for flag in set(_flags(TrainConfig, exclude=("sources",)) + _flags(Source)) - required:
        assert "default" in helps[flag], (flag, helps[flag])
    for flag in ("--epochs", "--seed", "--no-lora", "--lora-r", "--lora-alpha", "--lora-dropout"):
        assert helps[flag].strip(), flag  # these had no help before


def test_cli_choices_come_from_library_constants():
    from hardneg.data.export import FORMATS, ST_FORMATS
    from hardneg.encode.base import ENCODER_BACKENDS
    from hardneg.mining.ensemble import ENSEMBLES
    from hardneg.mining.filters import METHODS
    from hardneg.mining.select import SELECTIONS
    from hardneg.scale.engine import ENGINES
    from hardneg.search.ann import SEARCH_BACKENDS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices

    def choices(command, dest):
        return next(a for a in sub[command]._actions if a.dest == dest).choices

    assert choices("mine", "method") == METHODS and choices("mine", "select") == SELECTIONS
    assert choices("mine", "ensemble") == ENSEMBLES and choices("mine", "backend") == ENCODER_BACKENDS
    assert choices("mine", "search_backend") == SEARCH_BACKENDS and choices("mine", "name") == ENGINES
    assert choices("evaluate", "backend") == ENCODER_BACKENDS
    assert choices("export", "format") == FORMATS and choices("export", "st_format") == ST_FORMATS
    assert choices("ablate", "teacher_backend") == ENCODER_BACKENDS == choices("ablate", "eval_backend")


def test_lora_targets_written_once():
    from hardneg.training.config import LORA_TARGETS, Source, TrainConfig
    from hardneg.training.decoder import LoraSettings

    assert LoraSettings().target_modules is LORA_TARGETS
    assert TrainConfig("m", (Source("d", "n"),), "o").lora_targets is LORA_TARGETS


def test_train_cli_builds_the_same_config_as_the_library():
    from hardneg.cli.train import config_from_args as train_config
    from hardneg.training.config import Source, TrainConfig

    p = build_parser()
    args = p.parse_args(["train", "--model", "m", "--data", "d1", "--negatives", "n1", "--data", "d2",
                         "--negatives", "n2", "--output", "o", "--split", "dev", "--max-examples", "5", "--no-lora",
                         "--lora-targets", "q_proj, v_proj", "--no-in-batch-negatives", "--num-negatives", "2",
                         "--include-prompt-in-pooling", "--lora-adapter-only"])
    want = TrainConfig("m", (Source("d1", "n1", "dev", 5), Source("d2", "n2", "dev", 5)), "o", num_negatives=2,
                       in_batch_negatives=False, exclude_prefix=False, lora=False, lora_targets=("q_proj", "v_proj"),
                       lora_merge=False)
    assert train_config(args) == want
    plain = train_config(p.parse_args(["train", "--model", "m", "--data", "d", "--negatives", "n", "--output", "o"]))
    assert plain == TrainConfig("m", (Source("d", "n"),), "o")


def test_mine_cli_builds_default_configs():
    from hardneg.cli.mine import engine_config
    from hardneg.mining.config import MineConfig
    from hardneg.mining.teachers.load import TeacherSettings
    from hardneg.scale.engine import EngineConfig

    args = build_parser().parse_args(["mine", "--teacher", "bm25", "--data", "d", "--output", "o"])
    assert config_from_args(MineConfig, args) == MineConfig()
    assert config_from_args(TeacherSettings, args) == TeacherSettings()
    assert engine_config(args) == EngineConfig()
    args = build_parser().parse_args(["mine", "--teacher", "bm25", "--data", "d", "--output", "o",
                                      "--max-memory", "2MB", "--engine", "ray", "--ray-address", "auto"])
    assert engine_config(args) == EngineConfig(name="ray", address="auto", max_memory=2 << 20)


def test_only_the_named_command_is_registered_in_full():
    def commands(parser):
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices

    sub = commands(build_parser(["-v", "mine", "--teacher", "bm25"]))
    assert any(a.dest == "method" for a in sub["mine"]._actions)
    assert [a.dest for a in sub["train"]._actions] == ["help"]  # a stub: its flags are not built
    assert all(len(p._actions) == 1 for p in commands(build_parser(["--help"])).values())
