"""Encode benchmark: passages/s, fidelity and NDCG@10 per backend on SciFact (or ``--data``).

    python benchmarks/encode.py --limit 1000          # quick: 1,000 passages (all test positives kept)
    python benchmarks/encode.py                        # the whole corpus (minutes per backend on CPU)

Rows: ``st-peer`` (plain ``SentenceTransformer.encode``, the reference speed), ``torch``, ``onnx``
and ``onnx-int8`` through ``hardneg.encode.load_encoder``. Columns: passages/s (wall clock of
``encode_passages``, never the embedding cache), speed ratio vs the peer, mean row cosine to the
torch fp32 vectors, NDCG@10 on the split (``hardneg.search.exact.topk`` + ``hardneg.evaluation.metrics``).
With ``--limit`` the corpus is the split's relevant passages plus the first others up to N, so
NDCG@10 is higher than on the full corpus but comparable across rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "scifact"
ROWS = ("st-peer", "torch", "onnx", "onnx-int8")


def subset(data, limit: int | None):
    """Corpus rows to use: every judged doc of the split first, then corpus order up to ``limit``."""
    n = len(data.corpus)
    if not limit or limit >= n:
        return list(range(n))
    pos = data.corpus.index
    keep = dict.fromkeys(pos[d] for q in data.qrels for d in data.qrels[q] if d in pos)
    for i in range(n):
        if len(keep) >= limit:
            break
        keep.setdefault(i)
    return sorted(keep)


def ndcg10(data, qids, q_emb, p_emb, ids) -> float:
    from hardneg.evaluation.metrics import score_run
    from hardneg.evaluation.run import run_from_topk
    from hardneg.search.exact import topk
    from hardneg.search.rank import id_order

    pos = {d: i for i, d in enumerate(ids)}
    exclude = [{pos[q]} if q in pos else set() for q in qids]
    scores, idx = topk(q_emb, p_emb, 10, key=id_order(ids), exclude=exclude)
    run = run_from_topk(qids, idx, scores, ids)
    return score_run({q: data.qrels[q] for q in qids}, run, ["ndcg@10"]).means["ndcg@10"]


def peer_encoder(model: str, batch_size: int):
    """Plain sentence-transformers, as a user would call it."""
    from sentence_transformers import SentenceTransformer

    from hardneg.encode.models import resolve_model

    st = SentenceTransformer(resolve_model(model), device="cpu")

    def enc(texts):
        return np.asarray(st.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)
    return enc, enc


def hardneg_encoder(model: str, backend: str, batch_size: int):
    from hardneg.encode.load import load_encoder

    e = load_encoder(model, backend=backend, batch_size=batch_size)
    return e.encode_queries, e.encode_passages


def bench_row(name, args, data, qids, texts, ids) -> dict:
    t = time.perf_counter()
    if name == "st-peer":
        enc_q, enc_p = peer_encoder(args.model, args.batch_size)
    else:
        enc_q, enc_p = hardneg_encoder(args.model, name, args.batch_size)
    load_s = time.perf_counter() - t
    enc_p(texts[: args.batch_size])  # warm-up (first-call allocations, ORT graph init)
    t = time.perf_counter()
    p = enc_p(texts)
    enc_s = time.perf_counter() - t
    q = enc_q([data.queries[x] for x in qids])
    row = {"backend": name, "load_s": round(load_s, 2), "encode_s": round(enc_s, 2),
           "passages_per_s": len(texts) / enc_s, "ndcg@10": ndcg10(data, qids, q, p, ids)}
    print(f"  {name}: {row['passages_per_s']:.1f} passages/s, NDCG@10 {row['ndcg@10']:.4f}",
          file=sys.stderr, flush=True)
    return row | {"_p": p}


def table(rows: list[dict]) -> str:
    peer = next((r for r in rows if r["backend"] == "st-peer"), None)
    ref = next(r for r in rows if r["backend"] == "torch")  # main() always runs it
    head = f"{'backend':<10} {'passages/s':>10} {'vs peer':>8} {'cos vs torch':>12} {'NDCG@10':>8} {'load s':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = r["passages_per_s"] / peer["passages_per_s"] if peer else None
        c = float(np.mean((r["_p"] * ref["_p"]).sum(1)))  # rows are unit vectors
        r["ratio_vs_peer"], r["mean_cos_vs_torch"] = ratio, c
        shown = f"{ratio:>7.2f}x" if ratio is not None else f"{'-':>8}"
        lines.append(f"{r['backend']:<10} {r['passages_per_s']:>10.1f} {shown} {c:>12.4f} "
                     f"{r['ndcg@10']:>8.4f} {r['load_s']:>7.1f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="BEIR folder (default: ../shared/data/scifact)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--model", default="minilm", help="alias, local path or hub id (default: minilm)")
    ap.add_argument("--limit", type=int, default=None, help="use about N passages (all judged ones kept)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--backends", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    ap.add_argument("--output", help="also write the rows as JSON here (+ .meta.json)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hardneg.core.files import write_json
    from hardneg.core.provenance import write_meta
    from hardneg.data.beir import load_beir
    from hardneg.encode.base import n_cores
    from hardneg.evaluation.metrics import judged_queries

    data = load_beir(args.data, args.split)
    rows_idx = subset(data, args.limit)
    texts = [data.corpus.passage_texts()[i] for i in rows_idx]
    ids = [data.corpus.ids[i] for i in rows_idx]
    qids = judged_queries(data.qrels)
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "torch" not in names:
        names.insert(0, "torch")  # the fidelity reference
    print(f"{args.model} on {args.data} ({args.split}): {len(texts)} passages, {len(qids)} queries, "
          f"batch {args.batch_size}, {n_cores()} cores", file=sys.stderr)
    rows = [bench_row(n, args, data, qids, texts, ids) for n in names]
    print(table(rows))
    if args.output:
        clean = [{k: v for k, v in r.items() if k != "_p"} for r in rows]
        write_json(args.output, clean)
        write_meta(args.output, vars(args), passages=len(texts), queries=len(qids), cores=n_cores())
    return 0


if __name__ == "__main__":
    sys.exit(main())
