"""Peak memory of ``hardneg.mine_hard_negatives`` (the drop-in) vs sentence-transformers' own, same inputs.

    python benchmarks/dropin_memory.py                                  # 20k passages x 2k queries (~1-2 min)
    python benchmarks/dropin_memory.py --passages 200000 --queries 20000   # the issue's size (quiet machine)

Data: random unit vectors (d=384) from a fast fake ``SentenceTransformer`` (text ``"d17"`` -> row 17 of
a seeded passage table, ``"q17"`` -> a query built as passage 17 + noise, so passage 17 is its planted
positive); the dataset is the (q_i, d_i) pairs, the corpus every passage. Both sides get the same
call: ``relative_margin=0.05, num_negatives=3, output_format="n-tuple"``, no cache folder, the peer's
default ``faiss_batch_size`` (16384; ``--peer-batch`` to change it), and its torch path (``use_faiss``
off; hardneg's search is exact either way).

Each side runs in its own subprocess, twice: once for resident memory (peak RSS = VmHWM after
resetting it through ``/proc/self/clear_refs``, minus the RSS before the call: the same imports on
both sides (torch, FAISS, sentence-transformers, hardneg), the fake model and its tables are the baseline) and once under ``tracemalloc`` (peak of Python + numpy
allocations during the call; torch's own allocations are invisible to it, RSS sees them). Printed: a
table with each peak and its ratio to the (N, d) float32 embedding matrix, and hardneg / peer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ARMS = ("hardneg", "peer")


def rss_mb(field: str) -> float:
    """VmHWM (peak) or VmRSS (current) of this process, MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False where that is refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class FastModel:
    """The parts of a ``SentenceTransformer`` both sides call, over two seeded vector tables."""

    def __init__(self, n: int, nq: int, dim: int, seed: int, noise: float = 0.7):
        import torch
        from types import SimpleNamespace

        rng = np.random.default_rng(seed)
        self.p = _unit(rng.standard_normal((n, dim), dtype=np.float32))
        self.q = _unit(self.p[:nq] + noise * _unit(rng.standard_normal((nq, dim), dtype=np.float32)))
        self.device = torch.device("cpu")
        self.model_card_data = SimpleNamespace(base_model="fast-fake")
        self.prompts, self.max_seq_length, self.similarity_fn_name = {}, 128, "cosine"
        self.dim = dim

    def get_embedding_dimension(self) -> int:
        return self.dim

    def _rows(self, table, texts):
        return table[np.fromiter((int(t[1:]) for t in texts), dtype=np.int64, count=len(texts))]

    def encode_query(self, texts, **kw):
        return self._rows(self.q, texts)

    def encode_document(self, texts, **kw):
        return self._rows(self.p, texts)

    def similarity(self, a, b):
        from sentence_transformers.util import cos_sim

        return cos_sim(a, b)

    def similarity_pairwise(self, a, b):
        from sentence_transformers.util import pairwise_cos_sim

        return pairwise_cos_sim(a, b)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def worker(args) -> dict:
    """One measurement of one arm, in this (fresh) process."""
    import logging

    from datasets import Dataset

    # the same imports on both sides before the baseline (a drop-in user has sentence-transformers loaded),
    # so neither side's peak counts a library being loaded: torch, FAISS, datasets, hardneg's search
    import faiss  # noqa: F401
    import torch  # noqa: F401
    from sentence_transformers.util import mine_hard_negatives as peer

    import hardneg.search.exact  # noqa: F401
    from hardneg.compat.sentence_transformers import mine_hard_negatives as ours

    mine_hard_negatives = peer if args.arm == "peer" else ours
    extra = {}
    if args.arm == "hardneg" and args.shard_rows:
        from hardneg.scale.engine import EngineConfig

        extra["engine"] = EngineConfig(shard_rows=args.shard_rows)
    logging.disable(logging.WARNING)  # the shortfall warning is not what is measured
    model = FastModel(args.passages, args.queries, args.dim, args.seed)
    pairs = Dataset.from_dict({"query": [f"q{i}" for i in range(args.queries)],
                               "answer": [f"d{i}" for i in range(args.queries)]})
    corpus = [f"d{i}" for i in range(args.passages)]
    kw = dict(corpus=corpus, relative_margin=0.05, num_negatives=3, output_format="n-tuple", verbose=False,
              faiss_batch_size=args.peer_batch, **extra)
    out: dict = {"arm": args.arm, "measure": args.measure}
    if args.measure == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
        t0 = time.perf_counter()
        ds = mine_hard_negatives(pairs, model, **kw)
        out["seconds"] = time.perf_counter() - t0
        out["peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    else:
        base = rss_mb("VmRSS")
        out["peak_reset"] = reset_peak()
        t0 = time.perf_counter()
        ds = mine_hard_negatives(pairs, model, **kw)
        out["seconds"] = time.perf_counter() - t0
        out["baseline_mb"], out["peak_mb"] = base, rss_mb("VmHWM") - base
    out["rows"] = len(ds)
    return out


def run_arm(arm: str, measure: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--arm", arm, "--measure", measure, "--passages", str(args.passages),
           "--queries", str(args.queries), "--dim", str(args.dim), "--seed", str(args.seed),
           "--peer-batch", str(args.peer_batch), "--shard-rows", str(args.shard_rows)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{arm}/{measure} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(rows: list[dict], matrix_mb: float) -> str:
    by = {(r["arm"], r["measure"]): r for r in rows}
    lines = ["| side | seconds | rows | peak RSS over baseline MB | RSS / matrix | tracemalloc peak MB | "
             "tracemalloc / matrix |", "|---|---|---|---|---|---|---|"]
    for arm in ARMS:
        rss, tm = by.get((arm, "rss")), by.get((arm, "tracemalloc"))
        if rss is None:
            continue
        tm_cells = f"{tm['peak_mb']:.0f} | {tm['peak_mb'] / matrix_mb:.2f}x" if tm else "– | –"  # --no-tracemalloc
        lines.append(f"| {arm} | {rss['seconds']:.1f} | {rss['rows']} | {rss['peak_mb']:.0f} | "
                     f"{rss['peak_mb'] / matrix_mb:.2f}x | {tm_cells} |")
    if all((a, "rss") in by for a in ARMS) and not all((a, "tracemalloc") in by for a in ARMS):
        ratio = by[("hardneg", "rss")]["peak_mb"] / max(by[("peer", "rss")]["peak_mb"], 1e-9)
        lines.append(f"| hardneg / peer | | | {ratio:.2f}x | | | |")
    if all((a, m) in by for a in ARMS for m in ("rss", "tracemalloc")):
        ratio = lambda m: by[("hardneg", m)]["peak_mb"] / max(by[("peer", m)]["peak_mb"], 1e-9)  # noqa: E731
        lines.append(f"| hardneg / peer | | | {ratio('rss'):.2f}x | | {ratio('tracemalloc'):.2f}x | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--passages", type=int, default=20000, help="corpus size N (default 20000)")
    ap.add_argument("--queries", type=int, default=2000, help="anchors (default 2000)")
    ap.add_argument("--dim", type=int, default=384, help="vector size (default 384)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the vector tables (default 0)")
    ap.add_argument("--peer-batch", type=int, default=16384, help="faiss_batch_size for both (the peer's default, "
                    "16384; it bounds the peer's score block to min(16384, queries) x N)")
    ap.add_argument("--shard-rows", type=int, default=0, help="hardneg: corpus rows per shard (its sharded, "
                    "streamed path); default 0 = the drop-in's own choice (in memory up to 102,400 passages, "
                    "shards of 102,400 above)")
    ap.add_argument("--arms", default="hardneg,peer", help="comma-separated: hardneg, peer (default both)")
    ap.add_argument("--no-tracemalloc", action="store_true", help="only the RSS runs")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)
    ap.add_argument("--measure", choices=("rss", "tracemalloc"), default="rss", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    matrix_mb = args.passages * args.dim * 4 / 2**20
    rows = []
    for arm in [a for a in args.arms.split(",") if a]:
        for measure in ("rss",) + (() if args.no_tracemalloc else ("tracemalloc",)):
            rows.append(run_arm(arm, measure, args))
            print(f"# {arm} {measure}: {rows[-1]}", flush=True)
    print(f"\n{args.passages} passages x {args.queries} queries, d={args.dim}: embedding matrix {matrix_mb:.0f} MB; "
          f"peer score block min({args.peer_batch}, {args.queries}) x {args.passages} = "
          f"{min(args.peer_batch, args.queries) * args.passages * 4 / 2**20:.0f} MB\n")
    print(table(rows, matrix_mb))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
