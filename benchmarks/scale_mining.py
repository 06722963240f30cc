"""Mining-stage search at scale with precomputed embeddings: exact (sharded, streaming) vs FAISS.

    python benchmarks/scale_mining.py --backends exact,ivf-flat,ivf-pq --peer   # 1M x 100k (~50 min here)
    python benchmarks/scale_mining.py --passages 200000 --queries 20000    # a few minutes
    python benchmarks/scale_mining.py --passages 200000 --queries 20000 --peer   # + sentence-transformers

Data: random unit vectors (d=384) written as float32 corpus shards by ``hardneg.scale.shards.encode_sharded``
(an encoder that makes row i's vector from the seed); every query is a planted positive's vector
plus noise (cosine ~0.78 to its positive; random passages score ~N(0, 1/d)), so the positive is its
true top-1. Each backend runs in its own subprocess (wall time = the search call: index build +
search + exact rescoring of the candidates; peak RSS = VmHWM of that process, which counts the
memory-mapped shard pages it touched, plus its RSS after imports and loading queries as a baseline):

* ``exact``     ``hardneg.search.dispatch.search(q, ShardSet, k)``: shards streamed, running top-k per query
* ``ivf-flat``, ``hnsw``, ``ivf-pq``: ``hardneg.search.ann`` with its size-scaled defaults, one index per
  shard, results merged per query; recall@k vs exact over ALL queries, and the share of queries
  whose planted positive is in the top k.
* ``st-torch``, ``st-faiss`` (``--peer``): sentence-transformers' ``mine_hard_negatives`` fed the
  SAME precomputed vectors through its own embedding cache (``cache_folder``: we write
  ``query_embeddings_<hash>.npy`` / ``corpus_embeddings_<hash>.npy`` under the hash it computes, texts
  are the row names), range_max = k - 1, relative_margin 0.05, 4 negatives, top. Its torch path
  materialises ``faiss_batch_size`` x N scores (default 16384 x N: 65 GB at 1M passages); we pass
  ``--peer-batch`` (default 1024) so it can run at all; its faiss path is an exact ``IndexFlatIP``
  holding a second copy of the corpus. Its time includes its filtering (small next to the search).

Uniform random vectors are the worst case for ANN (no clusters): recall vs exact among the random
neighbours is low, while the planted positive is found; real embeddings cluster and do better.

Measured (1M x 100k, d=384, k=100, shards of 100k, 2-core EPYC without AVX2, idle, 2026-11-25;
``--backends exact,ivf-flat,ivf-pq --peer``; FAISS indexes built and saved in this run):

| backend | search s | time / exact | peak RSS MB | RSS / matrix | recall@100 vs exact | positive in top 100 |
|---|---|---|---|---|---|---|
| exact (hardneg, streamed shards) | 727.5 | 1.00x | 1000 | 0.68x | 1.0 | 1.0 |
| exact, faiss.knn blocks (later, ``--backends exact``) | 573.0 | 0.79x | 998 | 0.68x | 1.0 | 1.0 |
| ivf-flat | 547.0 | 0.75x | 2501 | 1.71x | 0.259 | 0.934 |
| ivf-pq | 282.4 | 0.39x | 2343 | 1.60x | 0.187 | 0.935 |
| st-torch (peer, batch 1024) | 863.0 | 1.19x | 8030 | 5.48x | - | - |
| st-faiss (peer, IndexFlatIP) | 499.4 | 0.69x | 5013 | 3.42x | - | - |

(matrix 1465 MB; baselines after imports: hardneg 367-380 MB with torch and the 146 MB of queries, the
peer 786 MB.) The ANN rows above read mapped shards (pages stayed in RSS); ann_search now reads one
shard at a time and reuses the saved indexes: rerun ``--backends ivf-flat,ivf-pq`` gave ivf-flat 509.1 s
at 1135 MB (0.77x) and ivf-pq 224.1 s at 958 MB (0.65x), same recall. 200k x 20k (``--passages 200000 --queries 20000
--backends exact --peer``, current code): exact 23.8 s at 532 MB, st-torch 29.5 s at 2060 MB, st-faiss
23.1 s at 1459 MB. Exact now costs 5.7 ns per query-passage pair here: ``faiss.knn`` of k + 1 per
1024 x 65536 block (tiled sgemm + heaps, no score matrix), the exact tie rule only where the k-th and
(k+1)-th scores tie, one rank per query block (was 7.3 ns with torch matmul + torch.topk).
The peer's torch path materialises ``faiss_batch_size`` x N scores (default 16384 x N: 65 GB at 1M;
we pass 1024), its faiss path holds a second copy of the corpus. Extrapolation to 10M / 100M: README.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("exact", "ivf-flat", "hnsw", "ivf-pq")
PEERS = ("st-torch", "st-faiss")


def rss_mb(field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of this process, MB.

    Not ``ru_maxrss``: Linux carries it across fork + exec, so a worker would report the parent's
    peak (here: the data generation). VmHWM belongs to the worker's own address space.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SyntheticEncoder:
    """Text "i" -> unit vector of row i, made from (seed, first row, count) of each call."""

    name = "synthetic"

    def __init__(self, dim: int, seed: int):
        self.dim, self.seed = dim, seed
        self.fingerprint = f"synthetic-normal:d={dim}:seed={seed}"

    def encode_passages(self, texts):
        rng = np.random.default_rng([self.seed, int(texts[0]), len(texts)])
        x = rng.standard_normal((len(texts), self.dim), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    encode_queries = encode_passages


def generate(work: Path, n: int, nq: int, dim: int, shard_size: int, seed: int, noise: float) -> None:
    """Corpus shards + queries.npy (planted positive + noise) + positives.npy under ``work``."""
    from hardneg.scale.shards import encode_sharded

    ss = encode_sharded(SyntheticEncoder(dim, seed), [str(i) for i in range(n)], work / "corpus",
                        shard_size=shard_size, progress=True)
    if (work / "queries.npy").is_file() and len(np.load(work / "queries.npy", mmap_mode="r")) == nq:
        return
    rng = np.random.default_rng(seed + 1)
    pos = np.sort(rng.choice(n, nq, replace=False))
    rows = np.empty((nq, dim), np.float32)
    for off, arr in ss:
        m = (pos >= off) & (pos < off + len(arr))
        rows[m] = arr[pos[m] - off]
    noise_v = rng.standard_normal((nq, dim), dtype=np.float32)
    noise_v *= noise / np.linalg.norm(noise_v, axis=1, keepdims=True)
    q = rows + noise_v
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    order = rng.permutation(nq)  # queries not sorted by their positive's row
    np.save(work / "queries.npy", q[order])
    np.save(work / "positives.npy", pos[order])


def worker(args) -> dict:
    """Run one backend in this process; write its top-k rows and return timings and memory."""
    work = Path(args.workdir)
    q = np.load(work / "queries.npy")
    if args.worker in PEERS:
        return worker_peer(args, q)
    import torch  # noqa: F401 - imported before the baseline and the timer, as the peer's is

    from hardneg.scale.shards import ShardSet
    from hardneg.search.dispatch import search
    if args.worker != "exact":
        import faiss  # noqa: F401
    ss = ShardSet.open(work / "corpus")
    base = rss_mb("VmRSS")
    info: dict = {}
    t0 = time.perf_counter()
    scores, idx = search(q, ss, args.k, backend=args.worker, info=info)
    wall = time.perf_counter() - t0
    np.save(work / f"{args.worker}.idx.npy", idx)
    return {"backend": args.worker, "wall_s": round(wall, 2), "peak_rss_mb": round(rss_mb(), 1),
            "baseline_rss_mb": round(base, 1), "params": info}


def _st_hash(items, model_name: str) -> str:
    return hashlib.sha256(repr((model_name, None, None, items)).encode(), usedforsecurity=False).hexdigest()


def worker_peer(args, q: np.ndarray) -> dict:
    """sentence-transformers' miner fed the same vectors through its embedding cache files."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    from hardneg.encode.models import resolve_model
    from hardneg.scale.shards import ShardSet

    work = Path(args.workdir)
    ss = ShardSet.open(work / "corpus")
    pos = np.load(work / "positives.npy")
    corpus = [f"p{i}" for i in range(len(ss))]
    queries = [f"q{j}" for j in range(len(q))]
    model = SentenceTransformer(resolve_model("minilm"), device="cpu")
    name = model.model_card_data.base_model or ""
    cache = work / "st-cache"
    if not (cache / f"corpus_embeddings_{_st_hash(corpus, name)}.npy").is_file():
        raise RuntimeError("prepare_peer() writes the peer's cache files first")  # not here: it would
    # count a transient copy of the corpus in this process's peak RSS
    ds = Dataset.from_dict({"anchor": queries, "positive": [corpus[i] for i in pos]})
    base = rss_mb("VmRSS")
    t0 = time.perf_counter()
    out = mine_hard_negatives(ds, model, corpus=corpus, range_max=args.k - 1, relative_margin=0.05,
                              num_negatives=4, sampling_strategy="top", output_format="n-tuple",
                              faiss_batch_size=args.peer_batch, use_faiss=args.worker == "st-faiss",
                              cache_folder=str(cache), verbose=False)
    wall = time.perf_counter() - t0
    return {"backend": args.worker, "wall_s": round(wall, 2), "peak_rss_mb": round(rss_mb(), 1),
            "baseline_rss_mb": round(base, 1), "rows_out": len(out),
            "params": {"faiss_batch_size": args.peer_batch}}


def prepare_peer(work: Path) -> None:
    """Write the vectors where sentence-transformers' miner looks for cached embeddings (in this
    parent process, so the peer's own peak RSS does not count the copy made for the file)."""
    from sentence_transformers import SentenceTransformer

    from hardneg.encode.models import resolve_model
    from hardneg.scale.shards import ShardSet

    ss = ShardSet.open(work / "corpus")
    q = np.load(work / "queries.npy")
    name = SentenceTransformer(resolve_model("minilm"), device="cpu").model_card_data.base_model or ""
    cache = work / "st-cache"
    cache.mkdir(exist_ok=True)
    corpus_file = cache / f"corpus_embeddings_{_st_hash([f'p{i}' for i in range(len(ss))], name)}.npy"
    if not corpus_file.is_file():
        with open(corpus_file.with_suffix(".tmp"), "wb") as f:  # shard by shard: no second full copy
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                     "shape": (len(ss), ss.dim)})
            for _, arr in ss.arrays():
                f.write(np.ascontiguousarray(arr, dtype="<f4").tobytes())
        corpus_file.with_suffix(".tmp").rename(corpus_file)
    np.save(cache / f"query_embeddings_{_st_hash([f'q{j}' for j in range(len(q))], name)}.npy", q)


def run_one(name: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--workdir", str(args.workdir), "--k", str(args.k),
           "--peer-batch", str(args.peer_batch)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        return {"backend": name, "error": res.stderr.strip().splitlines()[-1:] or ["?"],
                "process_s": round(time.perf_counter() - t0, 1)}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_s"] = round(time.perf_counter() - t0, 1)
    return out


def quality(work: Path, rows: list[dict], k: int) -> None:
    """recall@k vs exact over all queries; share of queries whose planted positive is in the top k."""
    pos = np.load(work / "positives.npy")
    exact = np.load(work / "exact.idx.npy") if (work / "exact.idx.npy").is_file() else None
    for r in rows:
        f = work / f"{r['backend']}.idx.npy"
        if "error" in r or not f.is_file():
            continue
        idx = np.load(f)
        r["positive_at_k"] = round(float(np.mean((idx == pos[:, None]).any(axis=1))), 4)
        if exact is not None:
            hits = sum(len(np.intersect1d(a, b)) for a, b in zip(idx, exact))
            r["recall_at_k"] = round(hits / exact.size, 4)


def table(rows: list[dict], matrix_mb: float, k: int) -> str:
    ex = next((r for r in rows if r["backend"] == "exact" and "error" not in r), None)
    head = (f"| backend | search s | time / exact | peak RSS MB | RSS / matrix | baseline MB | recall@{k} vs exact "
            f"| positive in top {k} |")
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | failed: {r['error'][0][:80]} |" + " |" * 6)
            continue
        ratio = f"{r['wall_s'] / ex['wall_s']:.2f}x" if ex else "-"
        lines.append(f"| {r['backend']} | {r['wall_s']:.1f} | {ratio} | {r['peak_rss_mb']:.0f} | "
                     f"{r['peak_rss_mb'] / matrix_mb:.2f}x | {r['baseline_rss_mb']:.0f} | "
                     f"{r.get('recall_at_k', '-')} | {r.get('positive_at_k', '-')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=100, help="depth (candidates per query)")
    ap.add_argument("--shard-size", type=int, default=100_000)
    ap.add_argument("--noise", type=float, default=0.8, help="norm of the noise added to a positive")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--peer", action="store_true", help="also run sentence-transformers' mine_hard_negatives")
    ap.add_argument("--peer-batch", type=int, default=1024, help="the peer's faiss_batch_size")
    ap.add_argument("--workdir", type=Path, default=None, help="default: /tmp/hardneg-scale-<P>x<Q>")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    args.workdir = args.workdir or Path(f"/tmp/hardneg-scale-{args.passages}x{args.queries}")
    t0 = time.perf_counter()
    generate(args.workdir, args.passages, args.queries, args.dim, args.shard_size, args.seed, args.noise)
    print(f"data ready in {time.perf_counter() - t0:.1f}s: {args.workdir}", flush=True)
    names = [b for b in args.backends.split(",") if b] + (list(PEERS) if args.peer else [])
    rows = []
    if args.peer:
        prepare_peer(args.workdir)
    for name in names:
        rows.append(run_one(name, args))
        print(json.dumps(rows[-1]), flush=True)
    quality(args.workdir, rows, args.k)
    matrix_mb = args.passages * args.dim * 4 / 2**20
    print(f"\n{args.passages:,} passages x {args.queries:,} queries, d={args.dim}, k={args.k}, "
          f"shards of {args.shard_size:,}; embedding matrix {matrix_mb:.0f} MB float32\n")
    print(table(rows, matrix_mb, args.k))
    (args.workdir / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                           "matrix_mb": matrix_mb, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
