#!/usr/bin/env bash
# usage: scripts/byte_identity.sh SRC_DIR OUT_DIR
# Runs the same mine / export / evaluate / quick-ablate commands with the hardneg source in SRC_DIR
# (e.g. `git worktree add /tmp/before <commit>` then /tmp/before/src) into OUT_DIR, with a fresh cache.
# Compare two OUT_DIRs with cmp: data files must be identical (meta files differ in timestamps).
set -euo pipefail
SRC=$1; OUT=$2; mkdir -p "$OUT"
HERE=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH=$SRC HARDNEG_CACHE=$OUT/cache HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=${PY:-$HERE/.venv/bin/python}
D=${HARDNEG_DATA_DIR:-$HERE/../shared/data}/scifact
hn() { "$PY" -m hardneg "$@" >> "$OUT/log.txt" 2>&1; }
hn mine --teacher bm25 --data "$D" --output "$OUT/bm25-percpos.jsonl" --method percpos
hn mine --teacher bm25 --data "$D" --output "$OUT/bm25-sampled.jsonl" --method percpos --select sampled --sample-temperature 1.0
hn mine --teacher minilm --data "$D" --output "$OUT/minilm-percpos.jsonl" --method percpos
hn mine --teacher minilm --data "$D" --output "$OUT/minilm-sampled.jsonl" --method percpos --select sampled
hn mine --teacher minilm --teacher bm25 --data "$D" --output "$OUT/ens-naive.jsonl" --method naive --select top1-sampled
for f in flagembedding tevatron; do hn export "$OUT/minilm-percpos.jsonl" --data "$D" --format $f --output "$OUT/exp-$f.jsonl"; done
hn export "$OUT/minilm-percpos.jsonl" --data "$D" --format tevatron --group-by-query --output "$OUT/exp-tev-group.jsonl"
hn export "$OUT/minilm-percpos.jsonl" --data "$D" --format sentence-transformers --output "$OUT/exp-st.parquet"
hn export "$OUT/minilm-percpos.jsonl" --data "$D" --format sentence-transformers --st-format triplet --output "$OUT/exp-st-triplet.jsonl"
hn evaluate --model minilm --data "$D" --split test --output "$OUT/eval.json" --no-progress
hn ablate --output "$OUT/quick"
echo "done: $OUT"
