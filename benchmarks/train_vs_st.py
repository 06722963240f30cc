"""Step time of ``hardneg train`` vs a plain sentence-transformers MNRL training, same configuration.

Both sides: the same model, the same (anchor, positive, negative_1..n) rows built from one
negatives file, batch size, lr, warm-up, seed, NO_DUPLICATES batches, MultipleNegativesRankingLoss
with scale 1/τ, and ``max_steps`` optimizer steps. The plain side is what a user would write with
sentence-transformers alone (one ``max_seq_length`` = the passage length; --query-max-length is
also applied there through the same Transformer ``query_length`` so the token counts match).
Timing = wall time of ``trainer.train()`` / steps; runs alternate (ST, hardneg, ST, hardneg ...)
so that load on a shared machine hits both sides alike.

    python benchmarks/train_vs_st.py --data scifact --negatives runs/scifact-bm25.jsonl \
        --steps 64 --batch-size 16 --num-negatives 1 --repeats 1 --output /tmp/train_vs_st.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("train_vs_st")


def plain_st_step_time(args, dataset) -> float:
    """A sentence-transformers-only training run; returns seconds per optimizer step."""
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hardneg.encode.models import resolve_model

    model = SentenceTransformer(resolve_model(args.model))
    model.max_seq_length = args.passage_max_length
    model[0].query_length = args.query_max_length
    routes = {c: ("query" if c == "anchor" else "document") for c in dataset.column_names}
    with tempfile.TemporaryDirectory() as tmp:
        targs = SentenceTransformerTrainingArguments(
            output_dir=tmp, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
            learning_rate=2e-5, warmup_steps=0.1, seed=args.seed, data_seed=args.seed,
            batch_sampler=BatchSamplers.NO_DUPLICATES, router_mapping=routes, save_strategy="no",
            logging_steps=10, report_to="none", dataloader_pin_memory=False)
        trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=dataset,
                                             loss=MultipleNegativesRankingLoss(model, scale=1 / args.temperature))
        t0 = time.perf_counter()
        trainer.train()
        return (time.perf_counter() - t0) / args.steps


def hardneg_step_time(args, out: Path) -> float:
    from hardneg.training.config import Source, TrainConfig
    from hardneg.training.trainer import train

    cfg = TrainConfig(args.model, (Source(args.data, args.negatives, args.split, args.steps * args.batch_size),),
                      str(out), num_negatives=args.num_negatives, temperature=args.temperature,
                      query_max_length=args.query_max_length, passage_max_length=args.passage_max_length,
                      lr=2e-5, warmup=0.1, max_steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                      save_steps=10 ** 9)
    train(cfg)
    meta = json.loads((out / "hardneg_train.meta.json").read_text())
    return meta["timings"]["train_s"] / meta["steps"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="minilm")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--negatives", required=True)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-negatives", type=int, default=1)
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--query-max-length", type=int, default=64)
    p.add_argument("--passage-max-length", type=int, default=256)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--repeats", type=int, default=1, help="alternating pairs of runs")
    p.add_argument("--output", help="write the result JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from datasets import Dataset

    from hardneg.training.config import Source
    from hardneg.training.examples import build_examples

    cols, _ = build_examples(Source(args.data, args.negatives, args.split, args.steps * args.batch_size),
                             args.num_negatives, seed=args.seed)
    dataset = Dataset.from_dict(cols)
    st_times, hn_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            st_times.append(plain_st_step_time(args, dataset))
            hn_times.append(hardneg_step_time(args, Path(tmp) / f"hn{r}"))
            log.info("repeat %d: ST %.3f s/step, hardneg %.3f s/step", r, st_times[-1], hn_times[-1])
    st, hn = statistics.median(st_times), statistics.median(hn_times)
    result = {"config": vars(args), "examples": len(dataset), "st_s_per_step": st_times,
              "hardneg_s_per_step": hn_times, "ratio_hardneg_over_st": round(hn / st, 3),
              "cpu_threads": os.cpu_count()}
    print(f"{'':10s} {'s/step':>8s}\nplain ST   {st:8.3f}\nhardneg    {hn:8.3f}\nratio      {hn / st:8.3f}")
    if args.output:
        from hardneg.core.files import write_json

        write_json(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
