"""Re-mining with the student as it learns (``experiment.refresh``): plan, stats, the re-mined
negatives against a by-hand top-k of the checkpoint's vectors, and a SIGKILLed run that resumes to the
same negatives and weights as an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hardneg.cli.main import main
from hardneg.core.errors import HardnegError
from hardneg.core.provenance import is_committed, read_meta
from hardneg.data.negatives import read_negatives
from hardneg.experiment.refresh import changed_negatives, make_plan, round_path, train_with_refresh
from hardneg.training.config import Source, TrainConfig
from hardneg.training.trainer import is_finished, train


def _weights(path: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path / "model.safetensors"))


def test_plan_counts_steps_or_a_fraction_of_an_epoch():
    assert make_plan(2, 6, 2)["boundaries"] == [2, 4]       # never at the last step: nothing left to train
    p = make_plan(0.5, 8, 4)
    assert (p["every_steps"], p["boundaries"]) == (2, [2, 4, 6])
    assert make_plan(0.01, 3, 4)["boundaries"] == [1, 2]    # at least one step
    assert make_plan(10, 6, 2)["boundaries"] == []
    src = (Source("d", "n"),)
    for bad in (-1, 1.5):
        with pytest.raises(HardnegError, match="--refresh-every"):
            TrainConfig("m", src, "o", refresh_every=bad)


def test_changed_counts_slots_rows_and_new_ids():
    from types import SimpleNamespace as R

    old = [R(qid="q", pos_id="p", neg_ids=["a", "b", "c"]), R(qid="r", pos_id="s", neg_ids=["d"]),
           R(qid="gone", pos_id="x", neg_ids=["e", "f"])]
    new = [R(qid="q", pos_id="p", neg_ids=["a", "c", "b"]), R(qid="r", pos_id="s", neg_ids=["d", "g"]),
           R(qid="added", pos_id="y", neg_ids=["h"])]
    c = changed_negatives(old, new)
    # slots: q 3 (2 changed: b<->c), r 2 (1 changed: the extra g), added 1 (changed), gone 2 (changed)
    assert (c["slots"], c["changed_slots"]) == (8, 6) and c["changed"] == 0.75
    assert (c["negatives"], c["new_negatives"]) == (6, 2)  # g and h are new ids; b, c only moved
    assert changed_negatives([], [])["changed"] == 0.0


def test_training_alone_refuses_refresh_every(tiny_beir, tmp_path):
    cfg = TrainConfig("m", (Source(str(tiny_beir), "n.jsonl"),), str(tmp_path / "o"), refresh_every=2)
    with pytest.raises(HardnegError, match="train_with_refresh"):
        train(cfg)


def test_a_negatives_file_without_mining_meta_is_refused(tiny_model, tiny_beir, tmp_path):
    neg = tmp_path / "hand.jsonl"
    neg.write_text(json.dumps({"qid": "q1", "pos_id": "d1", "pos_score": 0.9, "neg_ids": ["d2"],
                               "neg_scores": [0.5], "neg_teachers": ["t"]}) + "\n")
    cfg = TrainConfig(str(tiny_model), (Source(str(tiny_beir), str(neg)),), str(tmp_path / "o"), refresh_every=1)
    with pytest.raises(HardnegError, match="mining settings"):
        train_with_refresh(cfg)
    two = TrainConfig(str(tiny_model), (Source(str(tiny_beir), str(neg)),) * 2, str(tmp_path / "o"), refresh_every=1)
    with pytest.raises(HardnegError, match="one --data"):
        train_with_refresh(two)


KILL = """
import os, signal, sys
from transformers import TrainerCallback
from hardneg.experiment.refresh import train_with_refresh
from hardneg.training.config import Source, TrainConfig

class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == 3:  # mid round 1: checkpoint-2 (the last) and round-1 negatives are done
            os.kill(os.getpid(), signal.SIGKILL)

model, data, neg, out = sys.argv[1:]
train_with_refresh(TrainConfig(model, (Source(data, neg),), out, **{ARGS}), callbacks=[Kill()])
"""


def test_refresh_remines_with_the_student_and_a_killed_run_resumes(tiny_model, tiny_beir, tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    from hardneg.core.fingerprint import model_fingerprint
    from hardneg.search.rank import id_order, rank

    cache = tmp_path / "cache"
    monkeypatch.setenv("HARDNEG_CACHE", str(cache))
    neg = tmp_path / "neg.jsonl"  # random teacher; q1's second positive d4 held out (anchor-only)
    assert main(["mine", "--teacher", "random", "--data", str(tiny_beir), "--method", "naive", "--anchor-only",
                 "--num-negatives", "2", "--depth", "6", "--output", str(neg)]) == 0
    args = dict(num_negatives=2, batch_size=2, epochs=3, lr=1e-2, warmup=0, save_steps=100, save_total_limit=5)
    flags = ["--num-negatives", "2", "--batch-size", "2", "--epochs", "3", "--lr", "1e-2", "--warmup", "0",
             "--save-total-limit", "5"]  # checkpoints at the refreshes and the end only

    # uninterrupted, from the command line: 3 rows / batch 2 = 2 steps an epoch, 6 steps, refreshes at 2 and 4
    full = tmp_path / "full"
    assert main(["train", "--model", str(tiny_model), "--data", str(tiny_beir), "--negatives", str(neg),
                 "--output", str(full), *flags, "--refresh-every", "2"]) == 0
    assert is_finished(full)
    meta = json.loads((full / "hardneg_train.meta.json").read_text())
    rounds = meta["refresh"]["rounds"]
    assert meta["steps"] == 6 and meta["refresh"]["plan"]["boundaries"] == [2, 4]
    assert [(r["round"], r["step"]) for r in rounds] == [(1, 2), (2, 4)]
    assert meta["config"]["sources"][0]["negatives"] == str(round_path(full, 2)) and meta["resumed_from"] == "checkpoint-4"

    # round 1 = the top-2 non-anchor passages by checkpoint-2's own vectors (by hand)
    data_ids = [d["_id"] for d in map(json.loads, (tiny_beir / "corpus.jsonl").read_text().splitlines())]
    corpus = {d["_id"]: (d["title"] + " " + d["text"]).strip()
              for d in map(json.loads, (tiny_beir / "corpus.jsonl").read_text().splitlines())}
    queries = {q["_id"]: q["text"] for q in map(json.loads, (tiny_beir / "queries.jsonl").read_text().splitlines())}
    ckpt2 = full / "checkpoints" / "checkpoint-2"
    st = SentenceTransformer(str(ckpt2))
    p = st.encode_document([corpus[d] for d in data_ids])
    orig, r1, r2 = read_negatives(neg), read_negatives(round_path(full, 1)), read_negatives(round_path(full, 2))
    assert [(r.qid, r.pos_id) for r in r1] == [(r.qid, r.pos_id) for r in orig] == [("q1", "d1"), ("q2", "d2"),
                                                                                     ("q3", "d5")]
    for r in r1:
        s = (st.encode_query([queries[r.qid]]) @ p.T).astype(np.float32)
        s[0, data_ids.index(r.pos_id)] = -np.inf
        top = rank(s, id_order(data_ids), 2)[0]
        assert r.neg_ids == [data_ids[i] for i in top]
        assert set(r.neg_teachers) == {"student-step2"}

    # per-refresh stats, counted by hand
    for rec, before, after in ((rounds[0], orig, r1), (rounds[1], r1, r2)):
        changed = sum(a != b for x, y in zip(before, after) for a, b in zip(x.neg_ids, y.neg_ids))
        assert rec["changed"]["changed_slots"] == changed and rec["changed"]["slots"] == 6
        q1 = [r for r in after if r.qid == "q1"][0]
        assert rec["fn"]["rate"] == q1.neg_ids.count("d4") / 2 and rec["fn"]["queries"] == 1  # only q1 holds one out
        assert set(rec["seconds"]) == {"encode_search", "mine", "total"}
    assert meta["refresh"]["original"]["fn"]["rate"] == [r for r in orig if r.qid == "q1"][0].neg_ids.count("d4") / 2
    assert rounds[0]["changed"]["changed_slots"] > 0  # the student does not pick the random teacher's negatives
    # the cache key has the checkpoint's weights: each checkpoint encoded the corpus itself
    teacher_fp = read_meta(round_path(full, 1))["teachers"][0]["fingerprint"]
    assert model_fingerprint(ckpt2) in teacher_fp
    encoded = {json.loads(f.read_text())["encoder"] for f in (cache / "embeddings").glob("*/info.json")
               if json.loads(f.read_text())["kind"] == "passage"}
    assert {str(ckpt2), str(full / "checkpoints" / "checkpoint-4")} <= encoded

    # SIGKILL at step 3 (round 1 under way), then the same run with --resume
    part = tmp_path / "part"
    script = tmp_path / "kill.py"
    script.write_text(KILL.replace("{ARGS}", repr({**args, "refresh_every": 2})))
    proc = subprocess.run([sys.executable, str(script), str(tiny_model), str(tiny_beir), str(neg), str(part)],
                          env={**os.environ, "HARDNEG_CACHE": str(cache)}, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert is_committed(round_path(part, 1)) and not round_path(part, 2).exists() and not is_finished(part)
    cfg = TrainConfig(str(tiny_model), (Source(str(tiny_beir), str(neg)),), str(part), refresh_every=2, **args)
    with pytest.raises(HardnegError, match="--resume"):
        train_with_refresh(cfg)
    with pytest.raises(HardnegError, match="--refresh-every 2, not 3"):
        train_with_refresh(TrainConfig(**{**cfg.__dict__, "refresh_every": 3, "resume": True}))
    resumed = train_with_refresh(TrainConfig(**{**cfg.__dict__, "resume": True}))
    assert is_finished(resumed)
    assert read_meta(round_path(part, 1))["refresh"]["changed"] == rounds[0]["changed"]
    assert round_path(part, 2).read_bytes() == round_path(full, 2).read_bytes()
    a, b = _weights(full), _weights(resumed)
    for key in a:  # same seed -> same weights (resume tolerance of test_train)
        np.testing.assert_allclose(a[key], b[key], atol=1e-6, rtol=0)
    assert train_with_refresh(TrainConfig(**{**cfg.__dict__, "resume": True})) == resumed  # finished: nothing to do


def test_help_states_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--refresh-every N" in out and "(default: 0, off)" in out
