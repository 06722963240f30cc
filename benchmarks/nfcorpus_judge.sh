#!/usr/bin/env bash
# usage: bash benchmarks/nfcorpus_judge.sh [OUT_DIR]   (mining only, ~5 min on 2 CPU cores with a cold cache)
# NFCorpus train, sparse labels (--anchor-only): FN rate of mined negatives, and the agreement judge's precision/recall
set -uo pipefail
cd "$(dirname "$0")/.."
export HARDNEG_CACHE=${HARDNEG_CACHE:-$HOME/.cache/hardneg} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
O=${1:-runs/nfcorpus-judge}; mkdir -p $O
D=${HARDNEG_DATA_DIR:-../shared/data}/nfcorpus
hn() { .venv/bin/hardneg "$@"; }
C="--data $D --split train --anchor-only --num-negatives 4"
hn mine --teacher minilm $C --method naive --output $O/minilm-naive.jsonl > $O/log.txt 2>&1
hn mine --teacher minilm $C --method percpos --output $O/minilm-percpos.jsonl >> $O/log.txt 2>&1
hn mine --teacher minilm --teacher bm25 $C --method percpos --output $O/ens-percpos.jsonl >> $O/log.txt 2>&1
hn mine --teacher minilm --teacher bm25 $C --method percpos --judge agreement --judge-min-votes 1 --judge-frac 0.95 --output $O/ens-percpos-judge.jsonl >> $O/log.txt 2>&1
hn mine --teacher minilm $C --method naive --judge agreement --judge-min-votes 1 --judge-frac 0.95 --output $O/minilm-naive-judge1.jsonl >> $O/log.txt 2>&1
for f in minilm-naive minilm-percpos ens-percpos ens-percpos-judge minilm-naive-judge1; do
  echo "== $f" >> $O/summary.txt
  hn inspect $O/$f.jsonl --data $D --split train >> $O/summary.txt 2>&1
done
grep -h "judge\|rows short\|mined" $O/log.txt >> $O/summary.txt
cat $O/summary.txt
