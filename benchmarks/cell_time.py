"""Where one ablation cell's time goes (train + evaluate), side by side with plain sentence-transformers.

One cell = train the student on a negatives file, then evaluate it (encode the evaluation corpus and
queries, search, metrics). This script runs, in one process and on the same rows:

* **plain ST**: what a user writes with sentence-transformers alone (MNRL at scale 1/τ, NO_DUPLICATES
  batches, the same columns, lengths, lr, warm-up and seed);
* **hardneg**: ``hardneg train`` with the given settings (its id-masked loss included);
* **hardneg --bucket-batches** (if the option exists): the same with length-bucketed batches.

and splits each training run's wall time into: collate (tokenise + pad, in the data collator),
forward (loss incl. the model's forward), backward, optimizer step, and the rest (scheduler,
logging, data loading). Padding: real vs padded tokens over the run, per column kind. The floor:
forward + backward FLOPs of the real (unpadded) tokens (≈ 3 x forward: 2 FLOPs per weight per
token in the encoder's GEMMs + the attention matmuls) over this machine's fp32 GEMM rate, measured
in the same run on a GEMM of the encoder's own shape.

Then evaluation: the trained model's evaluation corpus is encoded with each backend (torch fp32
length-sorted = today's default, onnx fp32, onnx-int8, and plain ST ``model.encode`` as the peer),
with NDCG@10 of each against torch fp32 (a backend is "exact enough" when |Δ| <= 0.001).

    python benchmarks/cell_time.py --data ../shared/data/scifact --negatives runs/scifact-percpos.jsonl \
        --output /tmp/cell_time.json

Timings are wall seconds on this machine; compare the ratios, which hold when both sides share the load.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("cell_time")


class Profile:
    """Accumulates phase times and token counts while installed (class-level monkeypatches)."""

    def __init__(self):
        self.t = defaultdict(float)
        self.tokens = defaultdict(lambda: [0, 0])  # kind -> [real, padded]
        self.lengths: list[int] = []  # real length of every sequence seen (for the FLOP floor)
        self.steps = 0

    @contextmanager
    def installed(self):
        import accelerate
        from sentence_transformers.base.data_collator import BaseDataCollator
        from sentence_transformers.base.trainer import BaseTrainer

        prof = self
        orig_call, orig_loss, orig_bwd = BaseDataCollator.__call__, BaseTrainer.compute_loss, accelerate.Accelerator.backward

        def call(self_, features):
            t0 = time.perf_counter()
            out = orig_call(self_, features)
            prof.t["collate"] += time.perf_counter() - t0
            for key, value in out.items():
                if key.endswith("attention_mask") and hasattr(value, "sum"):
                    kind = "query" if key.startswith("anchor") else "passage"
                    prof.tokens[kind][0] += int(value.sum())
                    prof.tokens[kind][1] += int(value.numel())
                    prof.lengths.extend(int(x) for x in value.sum(dim=1))
            return out

        def compute_loss(self_, *a, **kw):
            t0 = time.perf_counter()
            out = orig_loss(self_, *a, **kw)
            prof.t["forward"] += time.perf_counter() - t0
            return out

        def backward(self_, *a, **kw):
            t0 = time.perf_counter()
            out = orig_bwd(self_, *a, **kw)
            prof.t["backward"] += time.perf_counter() - t0
            return out

        BaseDataCollator.__call__, BaseTrainer.compute_loss, accelerate.Accelerator.backward = call, compute_loss, backward
        try:
            yield self
        finally:
            BaseDataCollator.__call__, BaseTrainer.compute_loss, accelerate.Accelerator.backward = orig_call, orig_loss, orig_bwd

    def callback(self):
        from transformers import TrainerCallback

        prof = self

        class OptTimer(TrainerCallback):
            def on_pre_optimizer_step(self, args, state, control, **kw):
                prof._t_opt = time.perf_counter()

            def on_optimizer_step(self, args, state, control, **kw):
                prof.t["optimizer"] += time.perf_counter() - prof._t_opt
                prof.steps += 1

        return OptTimer()


def gemm_gflops(m: int, k: int, n: int, repeats: int = 20) -> float:
    """Best-of fp32 GEMM rate (GFLOP/s) of an (m, k) x (k, n) product on this machine's threads."""
    import torch

    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best / 1e9


def train_flops(lengths: list[int], layers: int, d: int, d_ff: int) -> float:
    """Forward+backward FLOPs of an encoder over sequences of these real lengths (backward = 2 x forward).

    Per layer and sequence of length l: 2*l*(4*d*d + 2*d*d_ff) for the projections and the MLP, plus
    4*l*l*d for QK^T and AV. Embedding lookups, norms and softmax are ignored (a floor, not a model).
    """
    fwd = sum(layers * (2 * n * (4 * d * d + 2 * d * d_ff) + 4 * n * n * d) for n in lengths)
    return 3.0 * fwd


SIDE_OPTIONS = {  # hardneg sides: TrainConfig fields on top of the shared settings
    "hardneg": {},
    "hardneg-bucket": {"bucket_batches": True},
    "hardneg-bf16": {"precision": "bf16"},  # bf16 autocast on the CPU (HF Trainer's CPU AMP)
    "hardneg-bucket-bf16": {"bucket_batches": True, "precision": "bf16"},
}


def plain_st_train(args, dataset, out: Path, prof: Profile) -> float:
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hardneg.encode.models import resolve_model

    model = SentenceTransformer(resolve_model(args.model))
    model.max_seq_length = args.passage_max_length
    model[0].query_length = args.query_max_length
    routes = {c: ("query" if c == "anchor" else "document") for c in dataset.column_names}
    targs = SentenceTransformerTrainingArguments(
        output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=args.batch_size,
        learning_rate=2e-5, warmup_steps=0.1, seed=args.seed, data_seed=args.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES, router_mapping=routes, save_strategy="no",
        logging_steps=10, report_to="none", dataloader_pin_memory=False, disable_tqdm=True)
    trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=dataset,
                                         loss=MultipleNegativesRankingLoss(model, scale=1 / args.temperature),
                                         callbacks=[prof.callback()])
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    model.save(str(out / "model"))
    return wall


def hardneg_train(args, out: Path, prof: Profile, **extra) -> float:
    from hardneg.training.config import Source, TrainConfig
    from hardneg.training.trainer import train

    cfg = TrainConfig(args.model, (Source(args.data, args.negatives, args.split),), str(out),
                      num_negatives=args.num_negatives, temperature=args.temperature,
                      query_max_length=args.query_max_length, passage_max_length=args.passage_max_length,
                      lr=2e-5, warmup=0.1, epochs=1, batch_size=args.batch_size, seed=args.seed,
                      save_steps=10 ** 9, **extra)
    t0 = time.perf_counter()
    train(cfg, callbacks=[prof.callback()])
    return time.perf_counter() - t0  # includes loading the rows (hardneg reads ids -> texts itself)


def print_cells(cells, results, evals) -> None:
    """Whole cells (train + evaluate) against the first, today's: time ratio and paired-bootstrap NDCG@10."""
    from hardneg.analysis.significance import paired_bootstrap

    train = {r["side"]: r["wall_s"] for r in results}
    rows = [(side, backend, next(r for r in evals[side] if r["backend"] == backend)) for side, backend in cells]
    _, _, today = rows[0]
    today_s = train[cells[0][0]] + today["seconds"]
    print("\nwhole cells (train + evaluate), against the first (today's):\n")
    print("| cell | train s | evaluate s | cell s | speed-up | NDCG@10 | Δ vs first [95% CI] | interval holds 0 |")
    print("|---|---|---|---|---|---|---|---|")
    for side, backend, r in rows:
        cell_s = train[side] + r["seconds"]
        if r is today:
            delta, holds = "–", "–"
        else:
            d = paired_bootstrap(today["per_query"], r["per_query"])
            delta, holds = f"{d.mean:+.4f} [{d.lo:+.4f}, {d.hi:+.4f}]", "yes" if d.lo <= 0 <= d.hi else "no"
        print(f"| {side} + {backend} | {train[side]:.1f} | {r['seconds']:.1f} | {cell_s:.1f} | "
              f"{today_s / cell_s:.2f}x | {r['ndcg@10']:.4f} | {delta} | {holds} |")


def eval_backends(args, model_dir: Path, data, backends: str | None = None) -> list[dict]:
    """Encode + evaluate one trained model with each backend (no cache: every encode is timed)."""
    from hardneg.encode.load import load_encoder
    from hardneg.evaluation.run import evaluate

    rows = []
    for backend in (backends or args.eval_backends).split(","):
        if backend == "st":
            rows.append(st_eval(args, model_dir, data))
            continue
        enc = load_encoder(str(model_dir), backend=backend, max_length=args.eval_max_length)
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            res = evaluate(enc, data, cache_dir=cache, progress=False)
            rows.append({"backend": backend, "seconds": time.perf_counter() - t0,
                         "ndcg@10": res.metrics["ndcg@10"], "per_query": res.per_query["ndcg@10"]})
        log.info("eval %s: %.1fs ndcg@10 %.4f", backend, rows[-1]["seconds"], rows[-1]["ndcg@10"])
    return rows


def st_eval(args, model_dir: Path, data) -> dict:
    """The peer: ST model.encode of queries and corpus (its own length sort), exact cosine top-100."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from hardneg.evaluation.metrics import score_run

    model = SentenceTransformer(str(model_dir))
    if args.eval_max_length:
        model.max_seq_length = args.eval_max_length
    t0 = time.perf_counter()
    qids = data.query_ids()
    q = model.encode([data.queries[i] for i in qids], batch_size=32, normalize_embeddings=True)
    p = model.encode(data.corpus.passage_texts(), batch_size=32, normalize_embeddings=True)
    scores = q @ p.T
    top = np.argsort(-scores, axis=1)[:, :100]
    run = {qid: {data.corpus.ids[j]: float(scores[i, j]) for j in top[i]} for i, qid in enumerate(qids)}
    metrics = score_run({qid: data.qrels[qid] for qid in qids}, run)  # (qrels, run)
    return {"backend": "st", "seconds": time.perf_counter() - t0, "ndcg@10": metrics.means["ndcg@10"]}


def summarise(name: str, wall: float, prof: Profile, rate: float, dims: tuple[int, int, int]) -> dict:
    phases = {k: prof.t.get(k, 0.0) for k in ("collate", "forward", "backward", "optimizer")}
    phases["other"] = wall - sum(phases.values())
    real = sum(v[0] for v in prof.tokens.values())
    padded = sum(v[1] for v in prof.tokens.values())
    floor = train_flops(prof.lengths, *dims) / (rate * 1e9)
    return {"side": name, "wall_s": wall, "steps": prof.steps, **{f"{k}_s": v for k, v in phases.items()},
            "real_tokens": real, "padded_tokens": padded, "pad_fraction": 1 - real / max(1, padded),
            "tokens": {k: list(v) for k, v in prof.tokens.items()}, "floor_s": floor,
            "fwd_bwd_over_floor": (phases["forward"] + phases["backward"]) / floor if floor else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="minilm", help="student (default: minilm)")
    p.add_argument("--data", required=True, help="BEIR folder")
    p.add_argument("--split", default="train", help="training split (default: train)")
    p.add_argument("--eval-split", default="test", help="evaluation split (default: test)")
    p.add_argument("--negatives", required=True, help="negatives file mined from --data --split")
    p.add_argument("--batch-size", type=int, default=32, help="(default: 32)")
    p.add_argument("--num-negatives", type=int, default=1, help="(default: 1)")
    p.add_argument("--temperature", type=float, default=0.05, help="(default: 0.05)")
    p.add_argument("--query-max-length", type=int, default=32, help="(default: 32, the quick recipe's)")
    p.add_argument("--passage-max-length", type=int, default=128, help="(default: 128, the quick recipe's)")
    p.add_argument("--eval-max-length", type=int, default=None,
                   help="evaluation truncation, every side alike (default: the base model's own max length)")
    p.add_argument("--eval-backends", default="torch,onnx,onnx-int8,st",
                   help="comma list of evaluation backends; 'st' = plain model.encode (default: %(default)s)")
    p.add_argument("--sides", default="st,hardneg,hardneg-bucket,hardneg-bf16",
                   help=f"training sides, of st,{','.join(SIDE_OPTIONS)} (default: %(default)s)")
    p.add_argument("--quality-sides", default="st,hardneg-bucket,hardneg-bf16,hardneg-bucket-bf16",
                   help="sides whose models are also evaluated (torch fp32) and compared with the hardneg model "
                        "by a paired bootstrap over queries (default: %(default)s)")
    p.add_argument("--eval-side", default="hardneg", help="comma list of the sides whose trained models the evaluation backends encode (default: %(default)s)")
    p.add_argument("--cells", default="",
                   help="comma list of whole cells SIDE:BACKEND (a training side, then the evaluation backend of its "
                        "model), each timed train + evaluate and compared with today's cell (the first entry, e.g. "
                        "hardneg:torch) by NDCG@10 with a paired bootstrap over queries; e.g. "
                        "hardneg:torch,hardneg-bf16:torch-bf16 (default: none)")
    p.add_argument("--seed", type=int, default=42, help="(default: 42)")
    p.add_argument("--output", help="write the result JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("sentence_transformers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from datasets import Dataset

    from hardneg.data.load import load_data
    from hardneg.encode.models import resolve_model
    from hardneg.training.config import Source, TrainConfig
    from hardneg.training.examples import build_examples
    from transformers import AutoConfig

    hf = AutoConfig.from_pretrained(resolve_model(args.model))
    dims = (hf.num_hidden_layers, hf.hidden_size, hf.intermediate_size)
    tokens_per_batch = args.batch_size * (args.query_max_length + (1 + args.num_negatives) * args.passage_max_length) // (2 + args.num_negatives)
    rate = gemm_gflops(tokens_per_batch, dims[1], dims[2])
    log.info("fp32 GEMM (%d x %d x %d): %.1f GFLOP/s on %d threads", tokens_per_batch, dims[1], dims[2], rate,
             torch.get_num_threads())
    cols, _ = build_examples(Source(args.data, args.negatives, args.split), args.num_negatives, seed=args.seed)
    dataset = Dataset.from_dict(cols)
    eval_data = load_data(args.data, args.eval_split)
    if args.eval_max_length is None:  # every side's model read at the base model's own length (ST saves the
        from hardneg.encode.models import read_st_config  # training length with the model; hardneg does not)

        args.eval_max_length = read_st_config(resolve_model(args.model))["max_length"]
    log.info("evaluation max length: %s tokens (queries and passages)", args.eval_max_length)
    sides = args.sides.split(",")
    cells = [tuple(c.split(":", 1)) for c in args.cells.split(",") if c]
    sides += [side for side, _ in cells if side not in sides]
    if "hardneg-bucket" in sides and "bucket_batches" not in TrainConfig.__dataclass_fields__:
        log.warning("this hardneg has no bucket_batches option: skipping the hardneg-bucket side")
        sides.remove("hardneg-bucket")
    results, evals, trained = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in sides:  # every side trains first: a failing evaluation backend cannot cost a training run
            prof = Profile()
            out = Path(tmp) / side
            with prof.installed():
                if side == "st":
                    wall = plain_st_train(args, dataset, out, prof)
                    trained[side] = out / "model"
                else:
                    wall = hardneg_train(args, out, prof, **SIDE_OPTIONS[side])
                    trained[side] = out
            results.append(summarise(side, wall, prof, rate, dims))
            log.info("%s: %.1fs train", side, wall)
        for side in args.eval_side.split(","):
            if side in trained:
                evals[side] = eval_backends(args, trained[side], eval_data)
        for side in [s for s in args.quality_sides.split(",") if s in trained and s not in evals]:
            evals[side] = eval_backends(args, trained[side], eval_data, backends="torch")
        for side, backend in cells:  # an evaluation already run for that side and backend is reused
            if not any(r["backend"] == backend for r in evals.get(side, [])):
                evals.setdefault(side, []).extend(eval_backends(args, trained[side], eval_data, backends=backend))
    ref = next((r for r in results if r["side"] == "st"), results[0])
    print(f"\nfp32 GEMM rate: {rate:.1f} GFLOP/s ({torch.get_num_threads()} threads); {len(dataset)} rows, "
          f"batch {args.batch_size}, q{args.query_max_length}/p{args.passage_max_length}, {args.num_negatives} neg\n")
    print("| side | train s | × plain ST | collate | forward | backward | optimizer | other | padded tokens | "
          "floor s | (fwd+bwd)/floor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['side']} | {r['wall_s']:.1f} | {r['wall_s'] / ref['wall_s']:.2f} | {r['collate_s']:.1f} | "
              f"{r['forward_s']:.1f} | {r['backward_s']:.1f} | {r['optimizer_s']:.1f} | {r['other_s']:.1f} | "
              f"{100 * r['pad_fraction']:.0f}% | {r['floor_s']:.1f} | {r['fwd_bwd_over_floor']:.1f} |")
    for side, rows in evals.items():
        if side not in args.eval_side.split(","):
            continue
        base = next((r for r in rows if r["backend"] == "torch"), rows[0])
        peer = next((r for r in rows if r["backend"] == "st"), None)
        print(f"\nevaluation of the {side} model ({len(eval_data.corpus.ids)} passages, "
              f"{len(eval_data.query_ids())} queries):\n")
        print("| backend | seconds | × plain ST encode | NDCG@10 | Δ vs torch fp32 | within 0.001 |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            ratio = f"{r['seconds'] / peer['seconds']:.2f}" if peer else "–"
            d = r["ndcg@10"] - base["ndcg@10"]
            print(f"| {r['backend']} | {r['seconds']:.1f} | {ratio} | {r['ndcg@10']:.4f} | {d:+.4f} | "
                  f"{'yes' if abs(d) <= 0.001 else 'no'} |")
    ref_eval = next((r for r in evals.get("hardneg", []) if r["backend"] == "torch"), None)
    if ref_eval:
        from hardneg.analysis.significance import paired_bootstrap

        print("\nthe trained models against the hardneg fp32 model (torch fp32 evaluation, paired bootstrap over "
              "queries, 95%):\n")
        print("| side | NDCG@10 | Δ vs hardneg | 95% interval | interval holds 0 |")
        print("|---|---|---|---|---|")
        for side, rows in evals.items():
            r = next((x for x in rows if x["backend"] == "torch"), None)
            if r is None or side == "hardneg":
                continue
            d = paired_bootstrap(ref_eval["per_query"], r["per_query"])
            r["vs_hardneg"] = {"mean": d.mean, "lo": d.lo, "hi": d.hi}
            print(f"| {side} | {r['ndcg@10']:.4f} | {d.mean:+.4f} | [{d.lo:+.4f}, {d.hi:+.4f}] | "
                  f"{'yes' if d.lo <= 0 <= d.hi else 'no'} |")
    if cells:
        print_cells(cells, results, evals)
    if args.output:
        from hardneg.core.files import write_json

        write_json(args.output, {"config": vars(args), "gemm_gflops": rate, "rows": len(dataset),
                                 "train": results, "eval": evals, "cpu_threads": os.cpu_count()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
