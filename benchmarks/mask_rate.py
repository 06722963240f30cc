"""How often the positives mask fires: NFCorpus-style batches where a query's other positives sit in
the batch (as another row's positive or hard negative) and plain MNRL would push them away.

    python benchmarks/mask_rate.py NEGATIVES.jsonl --data nfcorpus [--split train] [--batch-size 32] [--seeds 0,1,2]

Builds the training rows exactly as ``hardneg train`` does (``training.examples``: relabelled rows,
the ``label`` codes), batches them with sentence-transformers' ``NoDuplicatesBatchSampler`` (the
trainer's sampler) for each seed, and counts with ``training.losses.sibling_mask``. No model, no
training: seconds. Prints one table row per seed plus the mean.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("negatives")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--num-negatives", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()

    import torch
    from datasets import Dataset
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    from hardneg.training.config import Source
    from hardneg.training.examples import Codes, build_examples
    from hardneg.training.losses import sibling_mask

    t0 = time.perf_counter()
    codes = Codes()
    cols, stats = build_examples(Source(args.data, args.negatives, args.split), args.num_negatives, codes=codes)
    labels = torch.tensor(cols["label"])
    known = {q: torch.tensor(sorted(set(p))) for q, p in codes.known.items()}
    dataset = Dataset.from_dict({k: v for k, v in cols.items()})
    n_pos = np.array([len(p) for p in codes.known.values()])
    print(f"{args.negatives}: {stats['examples']} training rows, {len(known)} queries, known positives per query "
          f"mean {n_pos.mean():.1f} (max {n_pos.max()}); {stats['relabeled_rows_added']} relabelled rows added; "
          f"built in {time.perf_counter() - t0:.1f}s")
    print("| seed | batches | batches where it fires | rows with a masked candidate | masked cells per batch "
          "| of them in-batch positives | of them hard negatives |")
    print("|---|---|---|---|---|---|---|")
    summary = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        sampler = NoDuplicatesBatchSampler(dataset, args.batch_size, drop_last=False, valid_label_columns=["label"],
                                           generator=torch.Generator().manual_seed(seed), seed=seed)
        batches = fired = rows = masked_rows = cells = in_pos = 0
        for batch in sampler:
            lab = labels[batch]
            cand = lab[:, 1:].T.reshape(-1)
            sib = sibling_mask(cand, lab[:, 0], known)
            b = len(batch)
            batches += 1
            rows += b
            fired += bool(sib.any())
            masked_rows += int(sib.any(dim=1).sum())
            cells += int(sib.sum())
            in_pos += int(sib[:, :b].sum())
        row = (seed, batches, fired / batches, masked_rows / rows, cells / batches, in_pos / max(cells, 1),
               1 - in_pos / max(cells, 1) if cells else 0.0)
        summary.append(row)
        print(f"| {seed} | {batches} | {row[2]:.1%} | {row[3]:.1%} | {row[4]:.2f} | {row[5]:.1%} | {row[6]:.1%} |")
    m = np.mean([r[2:] for r in summary], axis=0)
    print(f"| mean | | {m[0]:.1%} | {m[1]:.1%} | {m[2]:.2f} | {m[3]:.1%} | {m[4]:.1%} |")


if __name__ == "__main__":
    main()
