"""One vocabulary across commands: every option states its default, old spellings still work (and say
so), list flags take repeats and comma lists alike, the peers' parameter table in ``mine --help`` names
real flags, and third-party log noise stays out of the default level."""

from __future__ import annotations

import argparse
import logging

import pytest

from hardneg.cli.main import COMMANDS, QuietThirdParty, build_parser, main

MINE = ["mine", "--teacher", "bm25", "--data", "d", "--output", "o"]


def _subparsers(parser: argparse.ArgumentParser):
    """(name, parser) of every command and sub-action (``data download``, ``data info``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner, subsub in _subparsers(sub):
                    yield f"{name} {inner}", subsub


def _partners(parser) -> dict[str, int]:
    """dest -> how many visible option actions write it (a tri-state --x / --no-x pair writes one dest twice)."""
    count: dict[str, int] = {}
    for a in parser._actions:
        if a.option_strings and a.help != argparse.SUPPRESS:
            count[a.dest] = count.get(a.dest, 0) + 1
    return count


def test_every_option_of_every_command_states_its_default():
    parser = build_parser()
    seen, missing = 0, []
    for name, sub in _subparsers(parser):
        pairs = _partners(sub)
        for a in sub._actions:
            if not a.option_strings or a.help == argparse.SUPPRESS or isinstance(a, argparse._HelpAction):
                continue
            if isinstance(a, argparse._SubParsersAction):
                continue
            seen += 1
            text = " ".join((a.help or "").split())
            if a.required or "default" in text or "required unless" in text:
                continue
            if a.nargs == 0 and pairs[a.dest] == 2 and text:  # the off half of a tri-state pair says what it does
                continue
            missing.append(f"{name} {a.option_strings[0]}: {text!r}")
    assert seen > 150  # every command registered in full
    assert not missing, "\n".join(missing)
    top = {a.option_strings[0]: a.help for a in parser._actions if a.option_strings}
    assert "default" in top["-v"]


def test_every_command_is_walked():
    names = {n.split()[0] for n, _ in _subparsers(build_parser())}
    assert names == set(COMMANDS)


@pytest.mark.parametrize("old,new,dest,value", [
    ("--query-prefix", "--query-prompt", "query_prefix", "q: "),
    ("--passage-prefix", "--passage-prompt", "passage_prefix", "p: "),
])
def test_train_old_prompt_spellings_work_hidden_and_warn(old, new, dest, value, caplog, capsys):
    base = ["train", "--model", "m", "--data", "d", "--negatives", "n", "--output", "o"]
    parser = build_parser()
    with caplog.at_level(logging.WARNING, logger="hardneg.cli"):
        args = parser.parse_args([*base, old, value])
    assert getattr(args, dest) == value == getattr(parser.parse_args([*base, new, value]), dest)
    notes = [r.getMessage() for r in caplog.records if r.name == "hardneg.cli"]
    assert len(notes) == 1 and old in notes[0] and new in notes[0] and "deprecated" in notes[0]
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert new in text and old not in text


def test_train_include_prompt_alias_and_the_config_it_builds(caplog):
    from hardneg.cli.train import config_from_args

    base = ["train", "--model", "m", "--data", "d", "--negatives", "n", "--output", "o"]
    old = config_from_args(build_parser().parse_args([*base, "--include-prefix-in-pooling", "--query-prefix", "i: "]))
    new = config_from_args(build_parser().parse_args([*base, "--include-prompt-in-pooling", "--query-prompt", "i: "]))
    assert old == new and old.exclude_prefix is False and old.query_prefix == "i: "
    assert sum("deprecated" in r.getMessage() for r in caplog.records) == 2


def test_ablate_old_spellings():
    parser = build_parser()
    for flags in (["--teachers", "bm25,minilm"], ["--teacher", "bm25", "--teacher", "minilm"],
                  ["--teacher", "bm25,minilm"]):
        assert parser.parse_args(["ablate", "-o", "x", *flags]).teachers == ("bm25", "minilm"), flags
    assert parser.parse_args(["ablate", "-o", "x", "--quiet"]).no_progress is True
    assert parser.parse_args(["ablate", "-o", "x"]).teachers is None  # None: the recipe's


def test_train_max_length_sets_both_and_per_kind_flags_win():
    from hardneg.cli.train import config_from_args

    base = ["train", "--model", "m", "--data", "d", "--negatives", "n", "--output", "o"]

    def lengths(*extra):
        c = config_from_args(build_parser().parse_args([*base, *extra]))
        return c.query_max_length, c.passage_max_length

    assert lengths() == (64, 256)  # unchanged defaults
    assert lengths("--max-length", "128") == (128, 128)
    assert lengths("--max-length", "128", "--query-max-length", "32") == (32, 128)
    assert lengths("--query-max-length", "32", "--max-length", "128") == (32, 128)  # order does not matter
    assert lengths("--passage-max-length", "300") == (64, 300)


def test_lists_take_repeats_and_comma_lists_everywhere():
    parser = build_parser()
    for flags in (["--teacher", "bm25", "--teacher", "random"], ["--teacher", "bm25,random"],
                  ["--teacher", "bm25, random"]):
        args = parser.parse_args(["mine", "--data", "d", "--output", "o", *flags, "--judge-teacher", "a,b",
                                  "--judge-teacher", "c"])
        assert tuple(args.teacher) == ("bm25", "random") and tuple(args.judge_teacher) == ("a", "b", "c"), flags
    assert parser.parse_args(MINE).judge_teacher == ()
    tune = parser.parse_args(["tune", "--data", "d", "--teacher", "bm25,random", "--methods", "naive",
                              "--methods", "percpos:0.9,abs:0.5"])
    from hardneg.core.options import config_from_args
    from hardneg.experiment.tune import TuneConfig

    config = config_from_args(TuneConfig, tune)
    assert config.teacher == ("bm25", "random") and config.methods == ("naive", "percpos:0.9", "abs:0.5")
    lora = parser.parse_args(["train", "--lora-targets", "q_proj", "--lora-targets", "v_proj,k_proj"]).lora_targets
    assert lora == ("q_proj", "v_proj", "k_proj")
    assert parser.parse_args(["compare", "a", "b", "--metric", "ndcg@10", "--metric", "mrr@10,p@10"]).metric == \
        ("ndcg@10", "mrr@10", "p@10")
    assert parser.parse_args(["ablate", "-o", "x", "--seeds", "0", "--seeds", "1,2"]).seeds == (0, 1, 2)


def test_one_spelling_per_concept():
    """The same concept has the same flag in every command that takes it."""
    parser = build_parser()
    flags = {name: {s for a in sub._actions if a.help != argparse.SUPPRESS for s in a.option_strings}
             for name, sub in _subparsers(parser)}
    for command in ("mine", "evaluate", "train"):
        assert {"--query-prompt", "--passage-prompt", "--max-length"} <= flags[command], command
    for command in ("mine", "tune", "ablate"):
        assert "--teacher" in flags[command] and "--teachers" not in flags[command], command
    for old in ("--query-prefix", "--passage-prefix", "--include-prefix-in-pooling", "--quiet"):
        assert all(old not in f for f in flags.values()), old
    assert "--no-progress" in flags["evaluate"] and "--no-progress" in flags["ablate"]
    defaults = {c: parser.parse_args([*c.split(), *req]).split for c, req in (
        ("data info", ["x"]), ("mine", MINE[1:]), ("export", ["n", "--data", "d", "--format", "tevatron", "--output", "o"]),
        ("inspect", ["n", "--data", "d"]), ("tune", ["--teacher", "bm25", "--data", "d"]),
        ("train", []), ("evaluate", ["--model", "m", "--data", "d"]))}
    assert defaults == {"data info": "train", "mine": "train", "export": "train", "inspect": "train", "tune": "train",
                        "train": "train", "evaluate": "test"}


def test_mine_help_maps_the_peers_parameters(capsys):
    with pytest.raises(SystemExit):
        main(["mine", "--help"])
    text = capsys.readouterr().out
    for peer in ("range_min", "range_max", "max_score", "min_score", "absolute_margin", "relative_margin",
                 "num_negatives", "sampling_strategy", "use_faiss", "cross_encoder", "batch_size", "query_prompt",
                 "corpus_prompt", "range_for_sampling", "negative_number", "use_gpu_for_searching",
                 "query_instruction_for_retrieval"):
        assert peer in text, peer
    flat = " ".join(text.split())
    assert "relative_margin=0.05 --method percpos --perc 0.95" in flat
    assert "range_min=10 --method shifted --shift 10" in flat
    assert "absolute_margin=0.05 --method marginpos --margin 0.05" in flat


def test_every_mapped_flag_parses_to_what_the_table_says():
    from hardneg.cli.mine import FE_MAPPING, ST_MAPPING
    from hardneg.core.options import config_from_args
    from hardneg.mining.config import MineConfig

    parser = build_parser()
    parsed = 0
    for peer, argv, _ in (*ST_MAPPING, *FE_MAPPING):
        if not argv:
            continue
        if argv[0] == "export":
            args = parser.parse_args(["export", "n", "--data", "d", "--output", "o.jsonl", *argv[1:]])
        else:
            args = parser.parse_args([*MINE, *argv])
            config_from_args(MineConfig, args)  # a valid mining config, not only parseable flags
        parsed += 1
    assert parsed >= 25
    # the semantics the table states: relative_margin r == --perc 1-r, except at the threshold itself
    # (hardneg keeps s < t, the peer s <= t); the drop-in's own rule (compat.window) is the peer's side
    import numpy as np

    from hardneg.compat.window import PeerRules, _score_steps
    from hardneg.mining.filters import method_mask

    cfg = config_from_args(MineConfig, parser.parse_args([*MINE, "--method", "percpos", "--perc", "0.75"]))
    s, p = np.array([[0.3, 0.375, 0.4], [-0.7, -0.625, -0.6]]), np.array([0.5, -0.5])  # t = p - |p| * 0.25
    ours = method_mask(cfg.method, s, p, np.ones_like(s, bool), **cfg.filter_params())
    (name, keep), = _score_steps(s, p, None, PeerRules(range_max=3, num_negatives=1, relative_margin=0.25))
    assert name == "relative_margin"
    assert ours.tolist() == [[True, False, False]] * 2
    assert keep(np.ones_like(s, bool)).tolist() == [[True, True, False]] * 2


def _mine_bm25(tiny_beir, tmp_path, *extra) -> int:
    return main([*extra, "mine", "--teacher", "bm25", "--data", str(tiny_beir), "--output", str(tmp_path / "n.jsonl"),
                 "--num-negatives", "1", "--method", "naive", "--cache-dir", str(tmp_path / "cache")])


@pytest.fixture(autouse=True)
def _default_verbosity():
    """-v changes transformers' verbosity process-wide: undo it after each test."""
    yield
    from hardneg.cli.main import _transformers_verbosity

    _transformers_verbosity(0)


NOISE = ("bm25s", "faiss", "sentence_transformers", "transformers", "huggingface_hub")


def test_default_level_keeps_third_party_noise_out(tiny_beir, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    assert _mine_bm25(tiny_beir, tmp_path) == 0
    noisy = [r for r in caplog.records if r.name.split(".")[0] in NOISE and r.levelno < logging.WARNING]
    assert not noisy, [(r.name, r.getMessage()) for r in noisy]
    out = capsys.readouterr()
    assert "Building index" not in out.err + out.out and "wrote" in out.out
    # -v lets them through again: bm25s' own DEBUG line about building its index
    caplog.clear()
    assert _mine_bm25(tiny_beir, tmp_path / "v", "-v") == 0
    assert any(r.name == "bm25s" and "Building index" in r.getMessage() for r in caplog.records)


def test_third_party_info_lines_are_filtered_and_ours_kept(caplog):
    from hardneg.cli.main import setup_logging

    caplog.set_level(logging.DEBUG)

    setup_logging(0)
    for name, level in (("faiss.loader", logging.INFO), ("sentence_transformers.SentenceTransformer", logging.INFO),
                        ("bm25s", logging.DEBUG), ("hardneg.mining.mine", logging.INFO),
                        ("faiss.loader", logging.WARNING)):
        logging.getLogger(name).log(level, "message from %s", name)
    got = [r.name for r in caplog.records if r.getMessage().startswith("message from")]
    assert got == ["hardneg.mining.mine", "faiss.loader"]
    caplog.clear()
    setup_logging(1)
    logging.getLogger("faiss.loader").info("message from faiss")
    assert [r.name for r in caplog.records] == ["faiss.loader"]
    setup_logging(0)
    assert all(any(isinstance(f, QuietThirdParty) for f in h.filters) for h in logging.getLogger().handlers)


def test_loading_bars_follow_no_progress_and_a_users_choice(monkeypatch):
    import os

    import importlib

    cli_main = importlib.import_module("hardneg.cli.main")  # the module (hardneg.cli.main is also the function)

    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "x")  # recorded: restored (to unset) after the test
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")
    monkeypatch.setattr(cli_main, "_OUR_ENV", {})
    monkeypatch.setattr(cli_main, "_isatty", lambda stream: True)
    cli_main.setup_logging(0, progress=False)
    assert os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1"
    cli_main.setup_logging(0, progress=True)  # undone: our own setting only
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    monkeypatch.setattr(cli_main, "_isatty", lambda stream: False)
    cli_main.setup_logging(0, progress=True)  # not a terminal: hidden
    assert os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1"
    cli_main.setup_logging(0, progress=True)
    monkeypatch.setattr(cli_main, "_OUR_ENV", {})
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")  # the user's: kept
    cli_main.setup_logging(0, progress=False)
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"
