"""``hardneg train``: contrastive fine-tuning with mined hard negatives (one run or a TOML recipe)."""

from __future__ import annotations

import argparse

EPILOG = """\
examples:
  hardneg train --model minilm --data scifact --negatives runs/percpos95.jsonl --output runs/ft \\
      --num-negatives 4 --batch-size 32 --query-max-length 64 --passage-max-length 256
  hardneg train --config recipes/cpu-small.toml          # multi-stage recipe (stage 2 starts from stage 1)
  hardneg train ... --resume                             # continue from the last checkpoint after a kill

The output folder loads with SentenceTransformer(DIR); encode with model.encode_query(...) /
model.encode_document(...) so the saved prefixes, prefix masking and max lengths apply.
Multi-GPU (DDP): torchrun --nproc_per_node N -m hardneg train ...  (or accelerate launch -m hardneg train ...);
--batch-size is per device.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="fine-tune an embedding model on mined hard negatives",
                              description="InfoNCE over {positive} ∪ mined hard negatives (+ in-batch negatives), "
                              "on sentence-transformers' trainer.", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="TOML recipe with [[stage]] tables (other flags then ignored, except --resume)")
    p.add_argument("--model", help="base model: path, hub id (offline cache) or alias 'minilm'")
    p.add_argument("--data", action="append", help="training data (BEIR dir / name / JSONL / parquet); repeat "
                   "with --negatives for a mix")
    p.add_argument("--negatives", action="append", help="negatives JSONL from 'hardneg mine' (one per --data)")
    p.add_argument("--split", default="train", help="data split (default: train)")
    p.add_argument("--output", help="output folder (model + checkpoints/ + hardneg_train.meta.json)")
    p.add_argument("--num-negatives", type=int, default=1, help="hard negatives per example, taken in mined order")
    p.add_argument("--temperature", type=float, default=0.05,
                   help="InfoNCE temperature τ (scale 1/τ); default 0.05 = sentence-transformers' scale 20")
    p.add_argument("--no-in-batch-negatives", dest="in_batch_negatives", action="store_false",
                   help="contrast each query only with its own positive and hard negatives")
    p.add_argument("--mini-batch-size", type=int, help="GradCache mini-batch: large batches in bounded memory")
    p.add_argument("--query-prefix", default="", help="instruction put before queries, e.g. 'Instruct: ...\\nQuery: '")
    p.add_argument("--passage-prefix", default="", help="prefix put before passages")
    p.add_argument("--include-prefix-in-pooling", dest="exclude_prefix", action="store_false",
                   help="pool over the prefix tokens too (default: excluded, as in NV-Retriever)")
    p.add_argument("--query-max-length", type=int, default=64, help="query truncation in tokens (default 64)")
    p.add_argument("--passage-max-length", type=int, default=256, help="passage truncation in tokens (default 256)")
    p.add_argument("--lr", type=float, default=2e-5, help="peak learning rate (AdamW, linear decay)")
    p.add_argument("--warmup", type=float, default=0.1, help="warm-up: fraction of steps if < 1, else steps")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps")
    p.add_argument("--batch-size", type=int, default=32, help="examples per device per step")
    p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 on GPUs that have it, fp16 on other GPUs, fp32 on CPU")
    p.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps")
    p.add_argument("--max-examples", type=int, help="seeded subsample of each source's rows")
    p.add_argument("--lora", dest="lora", action="store_true", default=None,
                   help="train a LoRA adapter (default: on for decoder LLMs, off otherwise)")
    p.add_argument("--no-lora", dest="lora", action="store_false")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.1)
    p.add_argument("--lora-targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                   help="comma-separated module names to adapt")
    p.add_argument("--lora-adapter-only", dest="lora_merge", action="store_false",
                   help="save the adapter instead of merged weights")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    p.set_defaults(func=run)


def config_from_args(args):
    from hardneg.core.errors import HardnegError
    from hardneg.training.config import Source, TrainConfig

    missing = [f"--{n}" for n in ("model", "data", "negatives", "output") if not getattr(args, n)]
    if missing:
        raise HardnegError(f"missing {', '.join(missing)} (or pass --config recipe.toml)")
    if len(args.data) != len(args.negatives):
        raise HardnegError("give one --negatives file per --data")
    sources = tuple(Source(d, n, args.split, args.max_examples) for d, n in zip(args.data, args.negatives))
    return TrainConfig(
        model=args.model, sources=sources, output=args.output, num_negatives=args.num_negatives,
        temperature=args.temperature, in_batch_negatives=args.in_batch_negatives,
        mini_batch_size=args.mini_batch_size, query_prefix=args.query_prefix,
        passage_prefix=args.passage_prefix, exclude_prefix=args.exclude_prefix,
        query_max_length=args.query_max_length, passage_max_length=args.passage_max_length, lr=args.lr,
        warmup=args.warmup, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
        grad_accum=args.grad_accum, seed=args.seed, precision=args.precision, save_steps=args.save_steps,
        lora=args.lora, lora_r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        lora_targets=tuple(t.strip() for t in args.lora_targets.split(",") if t.strip()),
        lora_merge=args.lora_merge, resume=args.resume)


def run(args) -> int:
    if args.config:
        from hardneg.training.recipes import run_recipe

        out = run_recipe(args.config, resume=args.resume)
    else:
        from hardneg.training.trainer import train

        out = train(config_from_args(args))
    print(f"model: {out}")
    return 0
