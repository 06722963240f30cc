"""--distill kl | margin-mse: the terms against hand formulas, masks, per-row normalisation, the teacher
columns built from a negatives file (relabelled rows, BM25 detection), and short training runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hardneg.cli.main import main
from hardneg.core.errors import HardnegError
from hardneg.core.provenance import write_meta
from hardneg.training.config import DISTILL_SCORE_UNIT, Source, TrainConfig
from hardneg.training.examples import DistillSettings, build_examples, normalize_rows, teacher_labels
from hardneg.training.losses import (DistillationLoss, distill_kl, margin_mse, own_negatives_logits,
                                     split_distill_labels)

S = [[2.0, 0.5, -1.0, 0.3], [0.1, 1.5, 0.2, -0.7], [1.0, 1.0, 3.0, 0.0]]  # student logits (B=3, 1 + n=3)
T = [[1.2, 0.0, -0.4, 0.9], [2.0, -1.0, 0.5, 0.1], [0.3, 0.2, 0.1, 0.0]]  # teacher logits
M = [[True, True, True, True], [True, True, False, True], [False, True, True, True]]  # row 3: no positive


def _softmax(x):
    e = [math.exp(v - max(x)) for v in x]
    return [v / sum(e) for v in e]


def hand_kl(s, t, m):
    """Mean over rows with a positive of sum_j p_t log(p_t / p_s) over the marked cells (plain python)."""
    out = []
    for si, ti, mi in zip(s, t, m):
        if not mi[0]:
            continue
        ps = _softmax([v for v, k in zip(si, mi) if k])
        pt = _softmax([v for v, k in zip(ti, mi) if k])
        out.append(sum(a * math.log(a / b) for a, b in zip(pt, ps)))
    return sum(out) / len(out)


def hand_margin_mse(s, t, m):
    err = [((si[0] - si[j]) - (ti[0] - ti[j])) ** 2 for si, ti, mi in zip(s, t, m) if mi[0]
           for j in range(1, len(si)) if mi[j]]
    return sum(err) / len(err)


def _t(x, dtype=torch.float32):
    return torch.tensor(x, dtype=dtype)


def test_kl_and_margin_mse_equal_hand_formulas():
    s, t, m = _t(S), _t(T), _t(M, torch.bool)
    assert distill_kl(s, t, m).item() == pytest.approx(hand_kl(S, T, M), rel=1e-5)
    assert margin_mse(s, t, m).item() == pytest.approx(hand_margin_mse(S, T, M), rel=1e-5)
    full = [[True] * 4] * 3
    assert distill_kl(s, t, _t(full, torch.bool)).item() == pytest.approx(hand_kl(S, T, full), rel=1e-5)
    assert distill_kl(t, t, _t(full, torch.bool)).item() == pytest.approx(0.0, abs=1e-6)  # student = teacher


@pytest.mark.parametrize("term", [distill_kl, margin_mse])
def test_masked_short_row_equals_the_truncated_row(term):
    s = torch.tensor([[2.0, 0.5, -1.0, 7.0, -3.0]], requires_grad=True)
    t = torch.tensor([[1.2, 0.0, -0.4, float("nan"), 1e30]])  # padding: any value, even NaN, never counts
    m = torch.tensor([[True, True, True, False, False]])
    short = s.detach()[:, :3].clone().requires_grad_(True)
    padded_loss, truncated = term(s, t, m), term(short, t[:, :3], m[:, :3])
    assert padded_loss.item() == pytest.approx(truncated.item(), rel=1e-6)
    padded_loss.backward()
    truncated.backward()
    assert torch.isfinite(s.grad).all() and s.grad[0, 3:].abs().sum() == 0
    assert torch.allclose(s.grad[:, :3], short.grad)


@pytest.mark.parametrize("term", [distill_kl, margin_mse])
def test_a_batch_without_any_teacher_score_gives_zero_on_the_graph(term):
    s = torch.randn(2, 3, requires_grad=True)
    loss = term(s, torch.zeros(2, 3), torch.tensor([[False, True, True], [False, True, True]]))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(s.grad, torch.zeros(2, 3))


def test_per_row_normalisation_known_answers():
    s = np.array([[4.0, 2.0, 0.0, 50.0], [1.0, 1.0, 1.0, 1.0]])
    m = np.array([[True, True, True, False], [True, True, True, True]])
    assert normalize_rows(s, m, "minmax").tolist() == [[1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    z = normalize_rows(s, m, "zscore")  # mean 2, population std sqrt(8/3)
    assert np.allclose(z[0], [2 / math.sqrt(8 / 3), 0.0, -2 / math.sqrt(8 / 3), 0.0]) and (z[1] == 0).all()
    assert normalize_rows(s, m, "none").tolist() == [[4.0, 2.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
    with pytest.raises(HardnegError, match="normalisation"):
        normalize_rows(s, m, "softmax")


# ---- teacher columns from a negatives file --------------------------------------------------------

def _write(path: Path, rows: list[dict], teacher: str = "t", meta_teacher: dict | None = None) -> Path:
    with open(path, "w") as f:
        for r in rows:
            n = len(r["neg_ids"])
            f.write(json.dumps({"qid": r["qid"], "pos_id": r["pos_id"], "pos_score": r.get("pos_score"),
                                "neg_ids": r["neg_ids"], "neg_scores": r["neg_scores"],
                                "neg_teachers": [teacher] * n, **({"relabeled": r["relabeled"]}
                                                                  if "relabeled" in r else {})}) + "\n")
    if meta_teacher is not None:
        write_meta(path, {"method": "test"}, teachers=[meta_teacher])
    return path


def _rows(path):
    from hardneg.data.negatives import read_negatives

    return read_negatives(path)


def _decode(labels, n):
    arr = np.array(labels, dtype=np.int64)
    return arr[:, : 1 + n] / DISTILL_SCORE_UNIT, arr[:, 1 + n:].astype(bool)


def test_cosine_teacher_logits_are_raw_scores_over_the_student_temperature(tmp_path):
    path = _write(tmp_path / "neg.jsonl", [
        {"qid": "q1", "pos_id": "d1", "pos_score": 0.8, "neg_ids": ["d3", "d5"], "neg_scores": [0.6, 0.4]},
        {"qid": "q2", "pos_id": "d2", "pos_score": None, "neg_ids": ["d6", "d1"], "neg_scores": [0.5, 0.3]}])
    labels, st = teacher_labels(_rows(path), set(), 2, DistillSettings(student_temperature=0.05), path)
    logits, mask = _decode(labels, 2)
    assert np.allclose(logits[0], [16.0, 12.0, 8.0]) and mask[0].all()
    assert not mask[1].any() and (logits[1] == 0).all()  # no positive score: out of the term, no NaN
    assert st["normalize"] == "none" and st["teacher_temperature"] == 0.05 and st["rows_without_positive_score"] == 1
    # a row with fewer negatives than n (kept by the caller): its missing cells are masked, not padded
    labels, st = teacher_labels(_rows(path)[:1], set(), 3, DistillSettings(), path)
    logits, mask = _decode(labels, 3)
    assert mask.tolist() == [[True, True, True, False]] and logits[0, 3] == 0.0


def test_bm25_teacher_is_detected_from_the_meta_and_normalised(tmp_path):
    rows = [{"qid": "q1", "pos_id": "d1", "pos_score": 4.0, "neg_ids": ["d3", "d5"], "neg_scores": [2.0, 0.0]}]
    path = _write(tmp_path / "bm25.jsonl", rows, "bm25", {"name": "bm25", "fingerprint": "bm25s:k1=0.9:b=0.4"})
    labels, st = teacher_labels(_rows(path), set(), 2, DistillSettings(), path)
    logits, _ = _decode(labels, 2)
    assert st["teacher_kind"] == "bm25" and st["normalize"] == "zscore" and st["teacher_temperature"] == 1.0
    assert np.allclose(logits[0], [1.224745, 0.0, -1.224745], atol=1e-6)
    labels, st = teacher_labels(_rows(path), set(), 2, DistillSettings("minmax", temperature=0.5), path)
    assert np.allclose(_decode(labels, 2)[0][0], [2.0, 1.0, 0.0]) and st["normalize"] == "minmax"
    with pytest.raises(HardnegError, match="BM25"):
        teacher_labels(_rows(path), set(), 2, DistillSettings("none"), path)
    dense = _write(tmp_path / "dense.jsonl", [{**rows[0], "pos_score": 0.8, "neg_scores": [0.6, 0.4]}], "minilm",
                   {"name": "minilm", "fingerprint": "dense:c4a57a7f:9aaa916c"})
    st = teacher_labels(_rows(dense), set(), 2, DistillSettings(), dense)[1]
    assert (st["teacher_kind"], st["normalize"]) == ("dense", "none")
    # no meta, but scores outside [-1, 1]: not a cosine teacher, auto normalises too
    plain = _write(tmp_path / "big.jsonl", rows, "mystery")
    assert teacher_labels(_rows(plain), set(), 2, DistillSettings(), plain)[1]["normalize"] == "zscore"


def test_several_teachers_are_refused(tmp_path):
    path = tmp_path / "mix.jsonl"
    path.write_text(json.dumps({"qid": "q1", "pos_id": "d1", "pos_score": 0.8, "neg_ids": ["d3", "d5"],
                                "neg_scores": [0.6, 3.0], "neg_teachers": ["minilm", "bm25"]}) + "\n")
    with pytest.raises(HardnegError, match="one teacher"):
        teacher_labels(_rows(path), set(), 2, DistillSettings(), path)


def test_relabelled_rows_take_the_audit_score_or_leave_the_term(tiny_beir, tmp_path):
    rows = [{"qid": "q1", "pos_id": "d1", "pos_score": 0.8, "neg_ids": ["d3", "d5"], "neg_scores": [0.6, 0.4],
             "relabeled": ["d4"]},
            {"qid": "q2", "pos_id": "d2", "pos_score": 0.7, "neg_ids": ["d6", "d3"], "neg_scores": [0.5, 0.2],
             "relabeled": ["d1"]}]
    path = _write(tmp_path / "neg.jsonl", rows)
    (tmp_path / "neg.audit.jsonl").write_text(json.dumps(
        {"qid": "q1", "doc_id": "d4", "teacher": "t", "score": 0.75, "positive_score": 0.8,
         "judge": "agreement", "judge_scores": {}, "decision": "relabeled"}) + "\n")
    cols, stats = build_examples(Source(str(tiny_beir), str(path)), 2, distill=DistillSettings())
    assert len(cols["label"]) == 4 and stats["relabeled_rows_added"] == 2  # (q1, d4) and (q2, d1) added
    logits, mask = _decode(cols["label"], 2)
    assert np.allclose(logits[1], [15.0, 12.0, 8.0]) and mask[1].all()  # d4: audit score 0.75 / 0.05
    assert not mask[3].any()  # d1 for q2: no audit score -> InfoNCE only
    d = stats["distill"]
    assert d["relabeled_rows_scored_from_audit"] == 1 and d["rows_without_positive_score"] == 1


def test_teacher_columns_follow_the_codes_and_survive_subsampling(tiny_beir, tmp_path):
    from hardneg.training.examples import Codes

    rows = [{"qid": q, "pos_id": p, "pos_score": 0.9 - 0.1 * i, "neg_ids": ["d3", "d6"], "neg_scores": [0.5, 0.1 * i]}
            for i, (q, p) in enumerate([("q1", "d1"), ("q1", "d4"), ("q2", "d2"), ("q3", "d5")])]
    path = _write(tmp_path / "neg.jsonl", rows)
    cols, _ = build_examples(Source(str(tiny_beir), str(path), max_examples=2), 2, codes=Codes(),
                             distill=DistillSettings())
    labels = torch.tensor(cols["label"])
    codes, teacher, mask = split_distill_labels(labels, 4, 3)
    assert labels.shape == (2, 4 + 3 + 3) and mask.all()
    for c, t in zip(codes.tolist(), teacher.tolist()):  # each row's teacher logits are its own row's scores
        src = next(r for r in rows if f"d{c[1] + 1}" == r["pos_id"])  # corpus row k is d{k+1}
        assert np.allclose(t, [src["pos_score"] / 0.05, 10.0, src["neg_scores"][1] / 0.05], atol=1e-5)


# ---- config, loss module, CLI, training -----------------------------------------------------------

def test_config_validation():
    src = (Source("d", "n"),)
    for kw, msg in [({"distill": "kl", "num_negatives": 0}, "num-negatives >= 1"),
                    ({"distill": "kl", "mini_batch_size": 2}, "GradCache"),
                    ({"distill_only": True}, "--distill-only needs"),
                    ({"distill": "kl", "distill_weight": 0}, "weight"),
                    ({"distill": "js"}, "--distill is one of"),
                    ({"distill": "kl", "distill_temperature": 0.0}, "temperature"),
                    ({"distill": "kl", "distill_normalize": "rank"}, "normalize")]:
        with pytest.raises(HardnegError, match=msg):
            TrainConfig("m", src, "o", **kw)
    TrainConfig("m", src, "o", distill="margin-mse", distill_only=True)


def test_loss_module_is_infonce_plus_weighted_term_on_the_same_embeddings(tiny_model):
    from sentence_transformers import SentenceTransformer

    from hardneg.training.losses import _masked_class

    model = SentenceTransformer(str(tiny_model))
    torch.manual_seed(0)
    emb = [torch.randn(3, 8) for _ in range(3)]  # anchor, positive, negative_1
    codes = torch.tensor([[0, 10, 13], [1, 11, 14], [2, 12, 10]])
    teacher = torch.tensor([[3.0, 1.0], [0.0, 2.0], [1.0, 1.0]])
    mask = torch.tensor([[1, 1], [1, 1], [0, 0]])
    labels = torch.cat([codes, (teacher * DISTILL_SCORE_UNIT).long(), mask], dim=1)
    base = _masked_class()(model, {0: [10, 12], 1: [11], 2: [12]}, scale=20.0)
    loss = DistillationLoss(model, base, "kl", weight=0.5, num_negatives=1, scale=20.0, n_codes=3)
    out = loss.compute_loss_from_embeddings(emb, labels)
    assert set(out) == {"infonce", "distill_kl"}
    assert out["infonce"].item() == pytest.approx(base.compute_loss_from_embeddings(emb, codes).item(), rel=1e-6)
    student = own_negatives_logits(emb[0], emb[1:], 20.0)
    want = 0.5 * hand_kl(student.tolist(), teacher.tolist(), mask.bool().tolist())
    assert out["distill_kl"].item() == pytest.approx(want, rel=1e-5)
    assert loss.distill_stats == {"batches": 1, "rows": 3, "rows_used": 2, "pairs_used": 2}
    alone = DistillationLoss(model, None, "margin-mse", num_negatives=1, scale=20.0, n_codes=3)
    assert set(alone.compute_loss_from_embeddings(emb, labels)) == {"distill_margin_mse"}
    with pytest.raises(ValueError, match="label"):
        loss.compute_loss_from_embeddings(emb, codes)


def test_cli_help_lists_the_distillation_flags_with_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split()).split(" examples: ")[0]  # the options, not the epilog
    for flag, default in [("--distill {kl,margin-mse}", "off"), ("--distill-weight", "1.0"),
                          ("--distill-only", "off"), ("--distill-temperature", "--temperature on raw scores"),
                          ("--distill-normalize {auto,none,zscore,minmax}", "auto")]:
        assert flag in text
        assert f"(default: {default}" in text.rsplit(flag, 1)[1][:600]


def _weights(path: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path / "model.safetensors"))


def _train(tiny_model, tiny_beir, negs, out, *extra):
    rc = main(["train", "--model", str(tiny_model), "--data", str(tiny_beir), "--negatives", str(negs),
               "--output", str(out), "--num-negatives", "2", "--batch-size", "2", "--lr", "1e-3", "--warmup", "0",
               "--max-steps", "3", "--save-steps", "100", "--logging-steps", "1", *extra])
    assert rc == 0
    return json.loads((out / "hardneg_train.meta.json").read_text())


@pytest.fixture
def cosine_negs(tmp_path):
    rows = [{"qid": q, "pos_id": p, "pos_score": s, "neg_ids": n, "neg_scores": ns}
            for q, p, s, n, ns in [("q1", "d1", 0.9, ["d3", "d5"], [0.4, 0.2]), ("q1", "d4", 0.8, ["d3", "d6"], [0.7, 0.1]),
                                   ("q2", "d2", 0.7, ["d6", "d1"], [0.65, 0.3]), ("q3", "d5", 0.6, ["d3", "d4"], [0.2, 0.1])]]
    return _write(tmp_path / "neg.jsonl", rows, "minilm")


@pytest.mark.parametrize("kind", ["kl", "margin-mse"])
def test_training_with_distillation_runs_records_and_repeats(tiny_model, tiny_beir, cosine_negs, tmp_path, kind):
    meta = _train(tiny_model, tiny_beir, cosine_negs, tmp_path / "a", "--distill", kind, "--distill-weight", "2")
    assert meta["steps"] == 3 and meta["config"]["distill"] == kind and meta["config"]["distill_weight"] == 2.0
    assert meta["loss"]["class"] == "DistillationLoss" and meta["loss"]["infonce"]["class"] == "MaskedRankingLoss"
    assert meta["data"][0]["distill"]["normalize"] == "none" and meta["data"][0]["distill"]["teacher"] == "minilm"
    d = meta["distillation"]
    assert d["batches"] == meta["positives_mask"]["batches"] == 3 and d["rows_used"] == d["rows"] >= 3
    logged = json.loads((tmp_path / "a" / "loss_log.json").read_text())
    term = f"distill_{kind.replace('-', '_')}"
    assert all(term in h and "infonce" in h for h in logged)
    again = _train(tiny_model, tiny_beir, cosine_negs, tmp_path / "b", "--distill", kind, "--distill-weight", "2")
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert again["final_loss"] == meta["final_loss"] and all(np.array_equal(a[k], b[k]) for k in a)


def test_distillation_changes_training_and_can_train_alone(tiny_model, tiny_beir, cosine_negs, tmp_path):
    _train(tiny_model, tiny_beir, cosine_negs, tmp_path / "plain")
    _train(tiny_model, tiny_beir, cosine_negs, tmp_path / "kl", "--distill", "kl")
    meta = _train(tiny_model, tiny_beir, cosine_negs, tmp_path / "only", "--distill", "margin-mse", "--distill-only",
                  "--no-in-batch-negatives")
    assert meta["loss"]["infonce"] is None and meta["positives_mask"] is None
    assert all(set(h) >= {"distill_margin_mse"} and "infonce" not in h
               for h in json.loads((tmp_path / "only" / "loss_log.json").read_text()))
    base, plain, kl, only = (_weights(p) for p in (Path(tiny_model), tmp_path / "plain", tmp_path / "kl",
                                                    tmp_path / "only"))
    assert any(not np.allclose(plain[k], kl[k]) for k in plain)  # the term changes the gradient
    assert any(not np.allclose(base[k], only[k]) for k in base)  # the term alone trains
