"""``hardneg tune``: choose the mining threshold for this data and teacher, without training."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Choose the mining setting for THIS data and teacher, without training: a threshold that suits one
teacher's score scale may skip most candidates with another.

Takes the --split queries with two or more positives (grade > 0); each keeps its best-graded
positive as the anchor, the others are held out. Each --teacher's pool (top --depth) is fetched
once (cached), then mined with every setting of the sweep, and each setting is measured:
  FN rate   share of the selected negatives that are held-out positives
  full rows rows with all --num-negatives negatives (yield: their share)
  neg/row   mean negatives per row
  neg-pos   hardness: mean (negative score - its teacher's positive score); closer to 0 = harder
  judge     with >= 2 teachers: the agreement judge's flagged count, precision P and recall R
            against the held-out positives
Recommends the setting with the most full rows whose FN rate is at or under --max-fn-rate (ties:
harder negatives), or, if none is, the one with the lowest FN rate, and prints its `hardneg mine`
command. `hardneg mine` knows every positive, so its FN rate is at most the tuned one.
"""

EPILOG = """example:
  hardneg tune --teacher minilm --data nfcorpus --split train
  hardneg tune --teacher minilm --teacher bm25 --data nfcorpus --methods percpos:0.9,percpos:0.95+agreement:0.9 --output runs/tune
"""

SUMMARY = "choose the mining threshold for your data and teacher (held-out FN rate vs yield)"


def register(subparsers) -> None:
    from hardneg.core.options import add_config_args
    from hardneg.experiment.tune import TuneConfig

    p = subparsers.add_parser("tune", help=SUMMARY, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, TuneConfig, repeat=("teacher",))
    p.set_defaults(func=run)


def run(args) -> int:
    from hardneg.cli.guard import data_paths, model_paths
    from hardneg.core.options import config_from_args
    from hardneg.core.outputs import guard_output
    from hardneg.experiment.tune import TuneConfig

    config = config_from_args(TuneConfig, args)  # validate before any loading
    inputs = [*data_paths(config.data), *model_paths(*config.teacher)]
    with guard_output(config.output, kind="dir", inputs=inputs):
        return _run(config)


def _run(config) -> int:
    from hardneg.analysis.tune import format_table
    from hardneg.data.load import load_data
    from hardneg.experiment.tune import tune, write_tune
    from hardneg.mining.teachers.load import TeacherSettings, load_teacher

    data = load_data(config.data, config.split)
    settings = TeacherSettings(backend=config.backend, cache_dir=config.cache_dir, max_length=config.max_length)
    teachers = [load_teacher(t, settings, seed=config.seed) for t in config.teacher]
    result = tune(data, teachers, config)
    rec = result.recommendation
    print(f"tuned on {result.queries} queries of {config.split} with >= 2 positives "
          f"({result.held_out} held-out positives), teachers {', '.join(config.teacher)}, "
          f"n={config.num_negatives}, depth {config.depth}")
    print(format_table(result.settings, rec["index"]))
    print(("recommended: " if rec["met"] else "NOT MET: ") + f"{rec['setting']} - {rec['reason']}")
    print(f"  {rec['command']}")
    if config.output:
        paths = write_tune(config.output, result, config, data=data)
        print(f"wrote {paths['json']} and {paths['png']}")
    return 0
