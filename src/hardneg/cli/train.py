"""``hardneg train``: contrastive fine-tuning with mined hard negatives (one run or a TOML recipe)."""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  hardneg train --model minilm --data scifact --negatives runs/percpos95.jsonl --output runs/ft \\
      --num-negatives 4 --batch-size 32 --query-max-length 64 --passage-max-length 256
  hardneg train --config recipes/cpu-small.toml          # multi-stage recipe (stage 2 starts from stage 1)
  hardneg train ... --resume                             # continue from the last checkpoint after a kill
  hardneg train ... --distill kl --distill-weight 1      # + KL to the teacher scores in the negatives file
  hardneg train ... --refresh-every 200                  # re-mine with the student every 200 steps (ANCE-style)
  hardneg train ... --push-to-hub me/minilm-scifact-hn   # then upload the folder to the Hugging Face Hub

The output folder loads with SentenceTransformer(DIR); its README.md is sentence-transformers' model
card plus how the negatives were mined (each negatives file's meta), the settings and an evaluation
table that 'hardneg evaluate --model DIR ... --card' fills. encode with model.encode_query(...) /
model.encode_document(...) so the saved prefixes, prefix masking and max lengths apply.
Multi-GPU (DDP): torchrun --nproc_per_node N -m hardneg train ...  (or accelerate launch -m hardneg train ...);
--batch-size is per device.
"""

SUMMARY = "fine-tune an embedding model on mined hard negatives"  # the line in `hardneg --help`


def register(subparsers) -> None:
    from hardneg.core.options import add_config_args
    from hardneg.training.config import Source, TrainConfig

    p = subparsers.add_parser("train", help=SUMMARY,
                              description="InfoNCE over {positive} ∪ mined hard negatives (+ in-batch negatives), "
                              "on sentence-transformers' trainer.", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="TOML recipe with [[stage]] tables (other flags then ignored, except --resume) "
                   "(default: none, the run is given by the flags)")
    # model, data, negatives and output are required unless --config gives them (checked in config_from_args)
    unless = "required unless --config gives it"
    add_config_args(p, TrainConfig, only=("model",), require_missing=False, missing_help=unless)
    add_config_args(p, Source, repeat=("data", "negatives"), require_missing=False, missing_help=unless)
    add_config_args(p, TrainConfig, exclude=("model", "sources"), require_missing=False, missing_help=unless)
    p.add_argument("--max-length", type=int, default=None, metavar="N",
                   help="query and passage truncation at once, as --max-length of mine, evaluate and tune; "
                        "--query-max-length / --passage-max-length given as well win for their kind (default: "
                        f"unset, {_field_default('query_max_length')} for queries and "
                        f"{_field_default('passage_max_length')} for passages)")
    p.set_defaults(query_max_length=None, passage_max_length=None)  # None = not given (see config_from_args)
    p.add_argument("--force", action="store_true",
                   help="write into an existing non-empty --output folder that is not a training output "
                        "(default: refuse; a finished output is refused either way, --resume continues one)")
    p.add_argument("--push-to-hub", metavar="REPO",
                   help="after training, upload the model folder (model, README.md card, meta; not checkpoints/) "
                        "to the Hugging Face Hub model repo REPO, creating it if needed; needs a token "
                        "(huggingface-cli login or HF_TOKEN) (default: not uploaded)")
    p.add_argument("--hub-private", action="store_true",
                   help="with --push-to-hub: create the repo private (default: the Hub's default, public)")
    p.set_defaults(func=run)


def _field_default(name: str):
    from dataclasses import fields

    from hardneg.training.config import TrainConfig

    return next(f.default for f in fields(TrainConfig) if f.name == name)


def _lengths(args) -> dict:
    """query/passage max lengths: the per-kind flag if given, else --max-length, else the field's default."""
    both = getattr(args, "max_length", None)
    out = {}
    for name in ("query_max_length", "passage_max_length"):
        given = getattr(args, name, None)
        out[name] = given if given is not None else both if both is not None else _field_default(name)
    return out


def guard(config, force: bool = False):
    """The output guard of one training run: ``config.output`` is a folder that is none of its inputs."""
    from hardneg.cli.guard import data_paths, model_paths, negatives_paths
    from hardneg.core.outputs import guard_output
    from hardneg.training.config import CHECKPOINTS, META_NAME

    inputs = [*model_paths(config.model), *data_paths(*(s.data for s in config.sources)),
              *negatives_paths(*(s.negatives for s in config.sources))]
    return guard_output(config.output, kind="dir", inputs=inputs, exists="ours", force=force,
                        markers=(CHECKPOINTS, f"{META_NAME}.meta.json", ".final.partial", "loss_log.json",
                                 "refresh"))  # refresh/: experiment.refresh's plan and round negatives


def config_from_args(args):
    from hardneg.core.errors import HardnegError
    from hardneg.core.options import config_from_args as from_args
    from hardneg.training.config import Source, TrainConfig

    missing = [f"--{n}" for n in ("model", "data", "negatives", "output") if not getattr(args, n)]
    if missing:
        raise HardnegError(f"missing {', '.join(missing)} (or pass --config recipe.toml)")
    if len(args.data) != len(args.negatives):
        raise HardnegError("give one --negatives file per --data")
    sources = tuple(from_args(Source, args, data=d, negatives=n) for d, n in zip(args.data, args.negatives))
    return from_args(TrainConfig, args, sources=sources, **_lengths(args))


def run(args) -> int:
    from contextlib import ExitStack

    with ExitStack() as stack:
        if args.config:
            from hardneg.training.recipes import load_recipe, run_recipe

            for stage in load_recipe(args.config)[1]:
                stack.enter_context(guard(stage, args.force))
            out = run_recipe(args.config, resume=args.resume)
        else:
            from hardneg.training.trainer import train

            config = config_from_args(args)
            stack.enter_context(guard(config, args.force))
            if config.refresh_every:  # re-mining between rounds: the experiment layer calls train and mine
                from hardneg.experiment.refresh import train_with_refresh

                out = train_with_refresh(config)
            else:
                out = train(config)
    print(f"model: {out}")
    if getattr(args, "push_to_hub", None):
        from hardneg.core.errors import HardnegError
        from hardneg.training.card import push_to_hub
        from hardneg.training.trainer import is_finished

        if not is_finished(out):
            raise HardnegError(f"--push-to-hub: training of {out} did not finish; nothing uploaded (--resume first)")

        print(f"uploaded to {args.push_to_hub}: {push_to_hub(out, args.push_to_hub, private=args.hub_private or None)}")
    return 0
